// Shared-IP mode: the kernel owns ARP for our address, so the stack learns
// IPv4 routes and neighbours from the kernel over rtnetlink (raw
// NETLINK_ROUTE sockets) and asks the kernel to resolve neighbours it lacks.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "stack/base/addr.hpp"
#include "stack/base/expected.hpp"

namespace xs {

// A main-table IPv4 route. Routes that send nothing (blackhole, unreachable,
// prohibit, throw) are kept with ifindex 0 so they still win the prefix match
// and next_hop() says "not via us", as the kernel would refuse the packet.
struct KernelRoute {
  Ipv4Cidr dst;
  std::optional<Ipv4Addr> gateway;
  int ifindex = 0;
  uint32_t metric = 0;
};

// How a kernel neighbour entry is reported:
//  Valid  - NUD_REACHABLE/STALE/DELAY/PROBE/PERMANENT/NOARP with a 6-byte lladdr:
//           the kernel would transmit to this MAC now (STALE/DELAY/PROBE entries
//           are still used while the kernel re-verifies them).
//  Failed - NUD_FAILED: resolution gave up; frames waiting for it should go.
//  Gone   - RTM_DELNEIGH (deleted, garbage-collected, or the link went away).
// NUD_INCOMPLETE and NUD_NONE are not reported: resolution is still running
// and ends in Valid or Failed, so there is nothing to act on yet.
enum class NeighKind : uint8_t { Valid, Failed, Gone };

struct KernelNeighbour {
  Ipv4Addr ip;
  MacAddr mac;  // zero unless kind == Valid
  NeighKind kind = NeighKind::Valid;
};

class KernelNetWatcher {
 public:
  // Subscribes to RTNLGRP_NEIGH, RTNLGRP_IPV4_ROUTE, and (for the reason in
  // process()) RTNLGRP_LINK and RTNLGRP_IPV4_IFADDR; then dumps the main-table
  // IPv4 routes and the IPv4 neighbours of `ifindex`.
  static Expected<std::unique_ptr<KernelNetWatcher>, std::string> open(int ifindex);
  ~KernelNetWatcher();
  KernelNetWatcher(const KernelNetWatcher&) = delete;
  KernelNetWatcher& operator=(const KernelNetWatcher&) = delete;

  // Non-blocking; readable when notifications are pending (the engine epolls it).
  int fd() const { return notify_fd_; }

  // Drains pending notifications without blocking, updating the route table,
  // and calls on_neigh for each neighbour change on our ifindex (a Valid event
  // with the MAC already reported is not passed on; Failed always is). When the
  // socket overran (ENOBUFS: events were lost) both tables are dumped again
  // and on_neigh receives the differences, including Gone for lost deletions.
  // IPv4 does not send RTM_DELROUTE for routes it flushes when a link goes
  // down or an address is removed, so link and address events re-dump routes.
  void process(const std::function<void(const KernelNeighbour&)>& on_neigh);

  // The neighbours of our ifindex found by open()'s dump (Valid and Failed only).
  const std::vector<KernelNeighbour>& initial_neighbours() const { return initial_; }

  // Longest-prefix match over the main table, lowest metric among equal
  // prefixes: the next hop for dst (dst itself for an on-link route), or
  // nullopt when there is no route or the best route does not leave through
  // our interface. Policy rules and other tables are not consulted.
  std::optional<Ipv4Addr> next_hop(Ipv4Addr dst) const;
  const std::vector<KernelRoute>& routes() const { return routes_; }

  // Asks the kernel to resolve ip on our interface: RTM_NEWNEIGH with
  // NLM_F_CREATE and NTF_USE, which runs the kernel's neigh_event_send() as if
  // a packet were queued, so an unknown or failed entry becomes INCOMPLETE and
  // an ARP request goes out at once; the result arrives through process().
  // A STALE entry is re-verified (DELAY, then a unicast probe); a reachable or
  // resolving entry is left as it is. A PERMANENT or NOARP entry is not sent
  // the request at all, since NTF_USE would strip NUD_PERMANENT from it.
  // Returns the MAC when the kernel already has a usable one: then no event
  // may follow (the entry does not change), so the caller must use it now.
  Expected<std::optional<MacAddr>, std::string> resolve(Ipv4Addr ip);

  // Times the notification socket overran and the tables were re-dumped.
  uint64_t overruns() const { return overruns_; }

 private:
  KernelNetWatcher(int notify_fd, int request_fd, int ifindex)
      : notify_fd_(notify_fd), request_fd_(request_fd), ifindex_(ifindex) {}

  Status<std::string> dump_routes();
  // ip's entry on our interface (state and lladdr); nullopt when there is none.
  struct NeighEntry {
    uint16_t state = 0;
    std::optional<MacAddr> mac;
  };
  Expected<std::optional<NeighEntry>, std::string> neigh_state(Ipv4Addr ip);
  Status<std::string> dump_neighbours(const std::function<void(const KernelNeighbour&)>* on_neigh);
  void apply_route(bool add, const KernelRoute& r);
  void note_neighbour(const KernelNeighbour& n, const std::function<void(const KernelNeighbour&)>* on_neigh);

  int notify_fd_ = -1;   // multicast notifications only
  int request_fd_ = -1;  // dumps and requests, so replies never mix with events
  int ifindex_ = 0;
  uint32_t seq_ = 0;
  uint64_t overruns_ = 0;
  std::vector<KernelRoute> routes_;
  std::vector<KernelNeighbour> initial_;
  std::map<uint32_t, KernelNeighbour> known_;  // last reported state per address
  std::vector<uint8_t> rx_buf_;
};

}  // namespace xs
