// Shared-IP mode support (socketapi/kernel_net, socketapi/port_reservation)
// against the kernel, over a veth pair joining two network namespaces that
// each test creates and deletes:
//
//   namespace A (the test thread, after setns)     namespace B (kernel only)
//   va 198.18.0.1/24                      <--> vb 198.18.0.2/24
//   d0 198.19.200.1/24 <--> d1 (both in A: "another interface")
//
// Needs root. With CI=true a test that cannot run fails; elsewhere it skips.
#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "socketapi/kernel_net.hpp"
#include "socketapi/port_reservation.hpp"
#include "tests/veth/netns_pair.hpp"

namespace xs {

// Readable failure messages (found by ADL; internal linkage keeps them to this file).
[[maybe_unused]] static void PrintTo(const Ipv4Addr& a, std::ostream* os) { *os << a.to_string(); }
[[maybe_unused]] static void PrintTo(const MacAddr& m, std::ostream* os) { *os << m.to_string(); }

namespace {

using vethtest::in_ci;
using vethtest::sh;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr Ipv4Addr kIpA = Ipv4Addr::from_octets(198, 18, 0, 1);
constexpr Ipv4Addr kIpB = Ipv4Addr::from_octets(198, 18, 0, 2);
constexpr uint8_t kTcp = IPPROTO_TCP;
constexpr uint8_t kUdp = IPPROTO_UDP;

Ipv4Addr ip(const char* s) {
  Ipv4Addr a;
  EXPECT_TRUE(Ipv4Addr::parse(s, &a)) << s;
  return a;
}

MacAddr mac(const std::string& s) {
  MacAddr m;
  unsigned b[6] = {};
  EXPECT_EQ(sscanf(s.c_str(), "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]), 6) << s;
  for (int i = 0; i < 6; ++i) m.b[i] = uint8_t(b[i]);
  return m;
}

sockaddr_in make_sa(Ipv4Addr addr, uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(addr.v);
  return sa;
}

uint16_t local_port(int fd) {
  sockaddr_in sa{};
  socklen_t len = sizeof(sa);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) return 0;
  return ntohs(sa.sin_port);
}

class Lab : public vethtest::NetnsPair {
 protected:
  void SetUp() override {
    // A second interface, for routes and neighbours that are not ours (a
    // veth pair with both ends in A: no dummy module needed).
    set_up_pair("-kn", "", {"ip -n {a} link add d0 type veth peer name d1", "ip -n {a} addr add 198.19.200.1/24 dev d0",
                            "ip -n {a} link set d0 up", "ip -n {a} link set d1 up"});
  }

  // `ip <args>` in namespace A; the test fails when it does.
  void ip_a(const std::string& args) {
    std::string out;
    EXPECT_EQ(sh("ip -n " + ns_a_ + " " + args, &out), 0) << "ip " << args << ": " << out;
  }
  void sysctl_a(const std::string& setting) {
    std::string out;
    EXPECT_EQ(sh("ip netns exec " + ns_a_ + " sysctl -qw " + setting, &out), 0) << setting << ": " << out;
  }

  std::unique_ptr<KernelNetWatcher> open_watcher() {
    auto w = KernelNetWatcher::open(ifindex_);
    EXPECT_TRUE(w.has_value()) << (w ? "" : w.error());
    return w ? std::move(*w) : nullptr;
  }

  // Processes notifications, recording neighbour events, until done() or the timeout.
  bool pump(KernelNetWatcher& w, const std::function<bool()>& done, std::chrono::milliseconds timeout = 2000ms) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      w.process([this](const KernelNeighbour& n) {
        events_.push_back(n);
        if (n.kind == NeighKind::Gone) {
          state_.erase(n.ip.v);
        } else {
          state_[n.ip.v] = n;
        }
      });
      if (done() || Clock::now() >= deadline) return done();
      pollfd p{w.fd(), POLLIN, 0};
      poll(&p, 1, 20);
    }
  }

  std::optional<KernelNeighbour> last_event_for(Ipv4Addr a) const {
    for (auto it = events_.rbegin(); it != events_.rend(); ++it) {
      if (it->ip == a) return *it;
    }
    return std::nullopt;
  }

  MacAddr mac_of_vb() {
    std::string out;
    EXPECT_EQ(sh("ip netns exec " + ns_b_ + " cat /sys/class/net/vb/address", &out), 0) << out;
    return mac(out);
  }

  int kernel_socket(int type, bool in_b = false) {
    if (in_b) {
      EXPECT_EQ(setns(fd_b_, CLONE_NEWNET), 0);
    }
    const int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    if (in_b) {
      EXPECT_EQ(setns(fd_a_, CLONE_NEWNET), 0);
    }
    EXPECT_GE(fd, 0) << strerror(errno);
    sockets_.push_back(fd);
    return fd;
  }

  // bind() of a fresh kernel socket: 0 or the errno.
  int kernel_bind(int type, Ipv4Addr addr, uint16_t port, bool reuseaddr = false) {
    const int fd = kernel_socket(type);
    const int on = 1;
    if (reuseaddr) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    sockaddr_in sa = make_sa(addr, port);
    return bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0 ? 0 : errno;
  }

  static std::pair<int, int> local_port_range() {
    std::ifstream f("/proc/sys/net/ipv4/ip_local_port_range");  // this thread's namespace
    int lo = 0, hi = 0;
    f >> lo >> hi;
    return {lo, hi};
  }

  std::vector<KernelNeighbour> events_;
  std::map<uint32_t, KernelNeighbour> state_;
};

class KernelNetLab : public Lab {};
class PortReservationLab : public Lab {};

// ---------------------------------------------------------------- routes

TEST_F(KernelNetLab, RouteDumpAndLongestPrefixMatch) {
  ip_a("route add 198.19.5.0/24 via 198.18.0.2");
  ip_a("route add 198.19.5.128/25 via 198.18.0.3");
  ip_a("route add blackhole 198.19.5.64/26");
  ip_a("route add 198.19.6.0/24 via 198.18.0.2 metric 100");
  ip_a("route add 198.19.6.0/24 via 198.18.0.4 metric 50");
  auto w = open_watcher();
  ASSERT_TRUE(w);

  bool onlink = false, via = false;
  for (const auto& r : w->routes()) {
    if (r.dst.addr == ip("198.18.0.0") && r.dst.prefix_len == 24) {
      onlink = true;
      EXPECT_FALSE(r.gateway.has_value());
      EXPECT_EQ(r.ifindex, ifindex_);
    }
    if (r.dst.addr == ip("198.19.5.0") && r.dst.prefix_len == 24) {
      via = true;
      EXPECT_EQ(r.gateway, ip("198.18.0.2"));
      EXPECT_EQ(r.ifindex, ifindex_);
    }
  }
  EXPECT_TRUE(onlink) << "no on-link 198.18.0.0/24 in the dump";
  EXPECT_TRUE(via) << "no 198.19.5.0/24 via 198.18.0.2 in the dump";

  EXPECT_EQ(w->next_hop(ip("198.18.0.77")), ip("198.18.0.77"));  // on-link: the host itself
  EXPECT_EQ(w->next_hop(ip("198.19.5.7")), ip("198.18.0.2"));
  EXPECT_EQ(w->next_hop(ip("198.19.5.200")), ip("198.18.0.3"));  // the /25 beats the /24
  EXPECT_EQ(w->next_hop(ip("198.19.5.70")), std::nullopt);       // blackhole /26
  EXPECT_EQ(w->next_hop(ip("198.19.6.1")), ip("198.18.0.4"));    // lower metric
  EXPECT_EQ(w->next_hop(ip("198.19.200.5")), std::nullopt);      // leaves through d0
  EXPECT_EQ(w->next_hop(ip("198.19.100.1")), std::nullopt);      // no default route
}

TEST_F(KernelNetLab, RouteChangesArriveThroughProcess) {
  auto w = open_watcher();
  ASSERT_TRUE(w);
  const Ipv4Addr far = ip("198.19.100.1");
  ASSERT_EQ(w->next_hop(far), std::nullopt);

  ip_a("route add default via 198.18.0.2");
  EXPECT_TRUE(pump(*w, [&] { return w->next_hop(far) == ip("198.18.0.2"); }));
  ip_a("route add 198.19.7.0/24 via 198.18.0.3");
  EXPECT_TRUE(pump(*w, [&] { return w->next_hop(ip("198.19.7.1")) == ip("198.18.0.3"); }));
  ip_a("route del 198.19.7.0/24");
  EXPECT_TRUE(pump(*w, [&] { return w->next_hop(ip("198.19.7.1")) == ip("198.18.0.2"); }));
  ip_a("route replace default via 198.18.0.5");
  EXPECT_TRUE(pump(*w, [&] { return w->next_hop(far) == ip("198.18.0.5"); }));
  ip_a("route add 198.19.0.0/16 via 198.19.200.2 dev d0");  // a longer prefix through d0
  EXPECT_TRUE(pump(*w, [&] { return !w->next_hop(far).has_value(); }));
  ip_a("route del 198.19.0.0/16");
  EXPECT_TRUE(pump(*w, [&] { return w->next_hop(far) == ip("198.18.0.5"); }));

  // The kernel flushes IPv4 routes of a downed link without RTM_DELROUTE
  // (`ip monitor route` shows none); the link event makes the watcher re-dump.
  ip_a("link set va down");
  EXPECT_TRUE(pump(*w, [&] { return !w->next_hop(ip("198.18.0.9")).has_value(); }));
  EXPECT_EQ(w->next_hop(far), std::nullopt);  // the default via va went too
  ip_a("link set va up");
  EXPECT_TRUE(pump(*w, [&] { return w->next_hop(ip("198.18.0.9")) == ip("198.18.0.9"); }));
}

// ---------------------------------------------------------------- neighbours

TEST_F(KernelNetLab, NeighbourDumpAndEvents) {
  const Ipv4Addr n50 = ip("198.18.0.50");
  ip_a("neigh replace 198.18.0.50 lladdr 02:00:00:00:00:50 dev va nud permanent");
  ip_a("neigh replace 198.18.0.51 dev va nud failed");
  auto w = open_watcher();
  ASSERT_TRUE(w);
  std::map<uint32_t, KernelNeighbour> initial;
  for (const auto& n : w->initial_neighbours()) initial[n.ip.v] = n;
  ASSERT_EQ(initial.count(n50.v), 1u);
  EXPECT_EQ(initial[n50.v].kind, NeighKind::Valid);
  EXPECT_EQ(initial[n50.v].mac, mac("02:00:00:00:00:50"));
  if (initial.count(ip("198.18.0.51").v) != 0) {
    EXPECT_EQ(initial[ip("198.18.0.51").v].kind, NeighKind::Failed);
  }

  // Another interface's neighbour is not ours; it goes first so the va event proves it was skipped.
  ip_a("neigh replace 198.19.200.9 lladdr 02:00:00:00:00:09 dev d0 nud permanent");
  ip_a("neigh replace 198.18.0.50 lladdr 02:00:00:00:00:51 dev va nud permanent");
  EXPECT_TRUE(pump(*w, [&] {
    auto e = last_event_for(n50);
    return e && e->kind == NeighKind::Valid && e->mac == mac("02:00:00:00:00:51");
  }));
  EXPECT_FALSE(last_event_for(ip("198.19.200.9")).has_value());

  ip_a("neigh del 198.18.0.50 dev va");
  EXPECT_TRUE(pump(*w, [&] {
    auto e = last_event_for(n50);
    return e && e->kind == NeighKind::Gone;
  }));
}

TEST_F(KernelNetLab, ResolveLearnsThePeersMac) {
  auto w = open_watcher();
  ASSERT_TRUE(w);
  const MacAddr vb = mac_of_vb();
  ASSERT_FALSE(vb.is_zero());
  ASSERT_FALSE(last_event_for(kIpB).has_value());
  const auto t0 = Clock::now();
  auto s = w->resolve(kIpB);
  ASSERT_TRUE(s.has_value()) << s.error();
  EXPECT_FALSE(s->has_value());  // nothing known yet: the answer comes as an event
  // Valid needs the ARP reply from B, so the kernel must have sent the request.
  EXPECT_TRUE(pump(*w, [&] {
    auto e = last_event_for(kIpB);
    return e && e->kind == NeighKind::Valid;
  }));
  RecordProperty("resolve_ms", std::to_string((Clock::now() - t0) / 1ms));
  auto e = last_event_for(kIpB);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->mac, vb);
  // And B learned us from that request.
  std::string out;
  sh("ip -n " + ns_b_ + " neigh show 198.18.0.1 dev vb", &out);
  EXPECT_NE(out.find("lladdr"), std::string::npos) << out;
  // Asked again, the entry does not change (no event), so the MAC comes back at once.
  auto again = w->resolve(kIpB);
  ASSERT_TRUE(again.has_value()) << again.error();
  ASSERT_TRUE(again->has_value());
  EXPECT_EQ(**again, vb);
}

TEST_F(KernelNetLab, ResolveLeavesAPermanentEntryAlone) {
  ip_a("neigh replace 198.18.0.60 lladdr 02:00:00:00:00:60 dev va nud permanent");
  auto w = open_watcher();
  ASSERT_TRUE(w);
  auto s = w->resolve(ip("198.18.0.60"));
  ASSERT_TRUE(s.has_value()) << s.error();
  ASSERT_TRUE(s->has_value());
  EXPECT_EQ(**s, mac("02:00:00:00:00:60"));
  pump(*w, [] { return false; }, 300ms);
  std::string out;
  sh("ip -n " + ns_a_ + " neigh show 198.18.0.60 dev va", &out);
  EXPECT_NE(out.find("02:00:00:00:00:60 PERMANENT"), std::string::npos) << out;
  auto e = last_event_for(ip("198.18.0.60"));
  EXPECT_TRUE(!e || (e->kind == NeighKind::Valid && e->mac == mac("02:00:00:00:00:60")));
}

TEST_F(KernelNetLab, ResolveOfAnAbsentHostReportsFailedEachTime) {
  sysctl_a("net.ipv4.neigh.va.retrans_time_ms=100");
  sysctl_a("net.ipv4.neigh.va.mcast_solicit=2");
  auto w = open_watcher();
  ASSERT_TRUE(w);
  const Ipv4Addr nobody = ip("198.18.0.99");
  for (int round = 0; round < 2; ++round) {
    events_.clear();
    auto s = w->resolve(nobody);
    ASSERT_TRUE(s.has_value()) << s.error();
    EXPECT_TRUE(pump(*w, [&] {
      auto e = last_event_for(nobody);
      return e && e->kind == NeighKind::Failed;
    })) << "round " << round;
  }
}

TEST_F(KernelNetLab, OverrunIsRecoveredByRedump) {
  ip_a("neigh replace 198.18.0.40 lladdr 02:00:00:00:00:40 dev va nud permanent");
  auto w = open_watcher();
  ASSERT_TRUE(w);
  pump(*w, [] { return false; }, 100ms);
  // A tiny receive buffer (the kernel rounds it up to its minimum) overflows at once.
  const int tiny = 1;
  ASSERT_EQ(setsockopt(w->fd(), SOL_SOCKET, SO_RCVBUF, &tiny, sizeof(tiny)), 0);
  std::string batch;
  constexpr int kCount = 200;
  for (int i = 1; i <= kCount; ++i) {
    char line[128];
    snprintf(line, sizeof(line), "neigh replace 198.18.2.%d lladdr 02:00:00:00:02:%02x dev va nud permanent\n",
             i, i);
    batch += line;
  }
  batch += "neigh del 198.18.0.40 dev va\n";
  ip_a("route add 198.19.8.0/24 via 198.18.0.8");
  FILE* f = popen(("ip -n " + ns_a_ + " -batch -").c_str(), "w");
  ASSERT_NE(f, nullptr);
  fwrite(batch.data(), 1, batch.size(), f);
  ASSERT_EQ(pclose(f), 0);

  state_[ip("198.18.0.40").v] = KernelNeighbour{ip("198.18.0.40"), mac("02:00:00:00:00:40"), NeighKind::Valid};
  pump(*w, [] { return false; }, 200ms);
  EXPECT_GE(w->overruns(), 1u);
  EXPECT_EQ(state_.count(ip("198.18.0.40").v), 0u) << "the lost deletion must come back as Gone";
  int valid = 0;
  for (const auto& [a, n] : state_) valid += n.kind == NeighKind::Valid;
  EXPECT_EQ(valid, kCount);
  EXPECT_EQ(w->next_hop(ip("198.19.8.1")), ip("198.18.0.8"));
}

// ---------------------------------------------------------------- port reservations

TEST_F(PortReservationLab, TcpFixedPortIsRefusedToKernelBind) {
  PortReservations res;
  auto r = res.reserve(kTcp, kIpA, 7000);
  ASSERT_TRUE(r.has_value()) << strerror(r.error());
  EXPECT_EQ(*r, 7000);
  EXPECT_GE(res.fd_of(kTcp, 7000), 0);
  EXPECT_EQ(res.fd_of(kUdp, 7000), -1);
  EXPECT_EQ(kernel_bind(SOCK_STREAM, kIpA, 7000), EADDRINUSE);
  EXPECT_EQ(kernel_bind(SOCK_STREAM, Ipv4Addr::any(), 7000), EADDRINUSE);
  EXPECT_EQ(kernel_bind(SOCK_STREAM, kIpA, 7000, true), EADDRINUSE);  // ours has no SO_REUSEADDR
  auto again = res.reserve(kTcp, kIpA, 7000, true);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error(), EADDRINUSE);
  EXPECT_EQ(kernel_bind(SOCK_DGRAM, kIpA, 7000), 0);  // UDP's port space is separate

  res.release(kTcp, 7000);
  EXPECT_EQ(res.fd_of(kTcp, 7000), -1);
  EXPECT_EQ(kernel_bind(SOCK_STREAM, kIpA, 7000), 0);

  // A port the kernel already holds cannot be reserved.
  const int l = kernel_socket(SOCK_STREAM);
  sockaddr_in sa = make_sa(kIpA, 7100);
  ASSERT_EQ(bind(l, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
  ASSERT_EQ(listen(l, 4), 0);
  auto taken = res.reserve(kTcp, kIpA, 7100);
  ASSERT_FALSE(taken.has_value());
  EXPECT_EQ(taken.error(), EADDRINUSE);

  // The documented caveat: with reuseaddr, another SO_REUSEADDR socket may share the port.
  ASSERT_TRUE(res.reserve(kTcp, kIpA, 7200, true).has_value());
  EXPECT_EQ(kernel_bind(SOCK_STREAM, kIpA, 7200), EADDRINUSE);
  EXPECT_EQ(kernel_bind(SOCK_STREAM, kIpA, 7200, true), 0);
}

TEST_F(PortReservationLab, UdpFixedPortIsRefusedToKernelBind) {
  PortReservations res;
  auto r = res.reserve(kUdp, kIpA, 7000);
  ASSERT_TRUE(r.has_value()) << strerror(r.error());
  EXPECT_EQ(*r, 7000);
  EXPECT_EQ(kernel_bind(SOCK_DGRAM, kIpA, 7000), EADDRINUSE);
  EXPECT_EQ(kernel_bind(SOCK_DGRAM, Ipv4Addr::any(), 7000), EADDRINUSE);
  EXPECT_EQ(kernel_bind(SOCK_DGRAM, kIpA, 7000, true), EADDRINUSE);
  res.release(kUdp, 7000);
  EXPECT_EQ(kernel_bind(SOCK_DGRAM, kIpA, 7000), 0);
  auto bad = res.reserve(1, kIpA, 7000);  // ICMP has no ports
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error(), EPROTONOSUPPORT);
}

TEST_F(PortReservationLab, EphemeralPortsComeFromTheLocalPortRange) {
  const auto [lo, hi] = local_port_range();
  ASSERT_GT(lo, 0);
  ASSERT_GE(hi, lo);
  PortReservations res;
  for (uint8_t proto : {kTcp, kUdp}) {
    std::set<uint16_t> ports;
    for (int i = 0; i < 8; ++i) {
      auto r = res.reserve(proto, kIpA, 0);
      ASSERT_TRUE(r.has_value()) << strerror(r.error());
      EXPECT_GE(*r, lo);
      EXPECT_LE(*r, hi);
      EXPECT_TRUE(ports.insert(*r).second) << "port " << *r << " handed out twice";
      EXPECT_GE(res.fd_of(proto, *r), 0);
      EXPECT_EQ(kernel_bind(proto == kTcp ? SOCK_STREAM : SOCK_DGRAM, kIpA, *r), EADDRINUSE);
    }
  }
  EXPECT_EQ(res.size(), 16u);
}

// connect() autobind in a range of 8 ports, 4 of them reserved: the kernel hands
// out only the other 4, then runs out rather than take a reserved one.
TEST_F(PortReservationLab, TcpConnectAutobindSkipsReservedPorts) {
  sysctl_a("net.ipv4.ip_local_port_range='40000 40007'");
  ASSERT_EQ(local_port_range(), std::make_pair(40000, 40007));
  PortReservations res;
  const std::set<uint16_t> reserved = {40000, 40003, 40004, 40007};
  for (uint16_t p : reserved) ASSERT_TRUE(res.reserve(kTcp, kIpA, p).has_value()) << p;

  const int l = kernel_socket(SOCK_STREAM, true);
  sockaddr_in sa = make_sa(kIpB, 6000);
  ASSERT_EQ(bind(l, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
  ASSERT_EQ(listen(l, 16), 0);
  std::set<uint16_t> used;
  for (int i = 0; i < 4; ++i) {
    const int c = kernel_socket(SOCK_STREAM);
    ASSERT_EQ(connect(c, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0) << i << ": " << strerror(errno);
    const uint16_t p = local_port(c);
    EXPECT_EQ(reserved.count(p), 0u) << "connect() took reserved port " << p;
    EXPECT_GE(p, 40000);
    EXPECT_LE(p, 40007);
    used.insert(p);
  }
  EXPECT_EQ(used.size(), 4u);
  const int c = kernel_socket(SOCK_STREAM);
  EXPECT_NE(connect(c, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0) << "got port " << local_port(c);
  EXPECT_EQ(errno, EADDRNOTAVAIL);
}

TEST_F(PortReservationLab, UdpConnectAutobindSkipsReservedPorts) {
  sysctl_a("net.ipv4.ip_local_port_range='40000 40007'");
  PortReservations res;
  const std::set<uint16_t> reserved = {40001, 40002, 40005, 40006};
  for (uint16_t p : reserved) ASSERT_TRUE(res.reserve(kUdp, kIpA, p).has_value()) << p;
  const sockaddr_in sa = make_sa(kIpB, 6000);
  std::set<uint16_t> used;
  for (int i = 0; i < 4; ++i) {
    const int c = kernel_socket(SOCK_DGRAM);
    ASSERT_EQ(connect(c, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)), 0) << i << ": " << strerror(errno);
    const uint16_t p = local_port(c);
    EXPECT_EQ(reserved.count(p), 0u) << "connect() took reserved port " << p;
    used.insert(p);
  }
  EXPECT_EQ(used.size(), 4u);
  const int c = kernel_socket(SOCK_DGRAM);
  EXPECT_NE(connect(c, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)), 0) << "got port " << local_port(c);
  EXPECT_EQ(errno, EAGAIN);
}

}  // namespace
}  // namespace xs
