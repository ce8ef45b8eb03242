// IPv4 for one Ethernet interface: routing (on-link / broadcast / default
// gateway), output with ARP resolution and fragmentation (RFC 791), a path-MTU
// table fed by ICMP (RFC 1191), and input validation, reassembly and dispatch
// to TCP, UDP and ICMP.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "stack/base/addr.hpp"
#include "stack/base/bytes.hpp"
#include "stack/base/counters.hpp"
#include "stack/base/random.hpp"
#include "stack/base/time.hpp"
#include "stack/net/loopback_queue.hpp"
#include "stack/net/arp_cache.hpp"
#include "stack/net/frame_sink.hpp"
#include "stack/net/icmp_handler.hpp"
#include "stack/net/ip_output.hpp"
#include "stack/net/reassembly.hpp"
#include "stack/wire/ipv4.hpp"

namespace xs {

class TcpLayer;
class UdpLayer;

struct IpConfig {
  MacAddr mac;
  Ipv4Cidr addr;
  std::optional<Ipv4Addr> gateway;
  uint16_t mtu = 1500;
  uint16_t min_pmtu = 552;            // net.ipv4.route.min_pmtu
  Duration pmtu_expires = seconds(600);  // net.ipv4.route.mtu_expires
  ReassemblyConfig reassembly;
  IcmpConfig icmp;
};

class IpLayer final : public IpOutput, public ArpFailureObserver {
 public:
  IpLayer(const IpConfig& cfg, FrameSink& sink, ArpCache& arp, Random& rng, StackCounters& counters);
  IpLayer(const IpLayer&) = delete;
  IpLayer& operator=(const IpLayer&) = delete;

  // The transport protocols input is dispatched to (either may be null).
  void set_transports(TcpLayer* tcp, UdpLayer* udp);

  // ---- IpOutput ------------------------------------------------------------
  MutBytes begin(Instant now, const IpTxParams& p, size_t l4_len) override;
  void commit() override;
  uint16_t path_mtu(Ipv4Addr dst) const override;
  std::optional<Ipv4Addr> source_for(Ipv4Addr dst) const override;
  bool is_local(Ipv4Addr a) const override { return a == cfg_.addr.addr; }
  // The interface MTU (IP_PMTUDISC_PROBE/INTERFACE/OMIT ignore learned PMTUs).
  uint16_t device_mtu() const { return cfg_.mtu; }

  // ---- input ---------------------------------------------------------------
  // An IPv4 packet (Ethernet payload). `link_broadcast`: it arrived in a frame
  // sent to the broadcast MAC (no ICMP errors for those, RFC 1122 3.2.2).
  void on_ipv4(Instant now, Bytes packet, bool link_broadcast = false);

  // ---- routing and path MTU -------------------------------------------------
  // Limited (255.255.255.255) or directed subnet broadcast.
  bool is_broadcast(Ipv4Addr a) const {
    return a.is_broadcast() || (cfg_.addr.prefix_len < 31 && a == cfg_.addr.subnet_broadcast());
  }
  // The neighbour to hand a packet for `dst` to, or nullopt without a route.
  std::optional<Ipv4Addr> next_hop(Ipv4Addr dst) const;
  // Lowers the path MTU toward `dst` (ICMP fragmentation needed, RFC 1191);
  // clamped below at min_pmtu, never raised. Returns the new path MTU.
  uint16_t update_pmtu(Instant now, Ipv4Addr dst, uint16_t mtu);

  // Reassembly timeouts and PMTU expiry.
  void poll(Instant now);
  Instant poll_at() const;

  const IpConfig& config() const { return cfg_; }
  Ipv4Addr addr() const { return cfg_.addr.addr; }
  MacAddr mac() const { return cfg_.mac; }
  IcmpHandler& icmp() { return icmp_; }
  // ArpFailureObserver: a frame whose next hop never resolved.
  void on_unresolved(Instant now, Bytes frame) override;
  Reassembly& reassembly() { return reasm_; }
  StackCounters& counters() { return c_; }

 private:
  enum class Pending : uint8_t { None, Sink, ArpQueue, Scratch, Loop };
  struct PmtuEntry {
    Ipv4Addr dst;
    uint16_t mtu = 0;
    Instant expires;
  };
  static constexpr size_t kPmtuEntries = 64;
  static constexpr size_t kFrameHeaders = 14 + kIpv4MinHeaderLen;

  // Acquires a frame buffer for one packet toward the pending next hop: a sink
  // buffer when the MAC is known, else an ARP queue buffer.
  MutBytes acquire_frame(Instant now, Pending* kind);
  void finish_frame(Pending kind, size_t len);
  void write_headers(uint8_t* frame, const Ipv4Repr& ip);
  void deliver(Instant now, const Ipv4Packet& pkt, bool broadcast, bool link_broadcast);
  // on_ipv4, or (looped) a packet the stack sent itself.
  void input(Instant now, Bytes packet, bool link_broadcast, bool looped);
  // Our own address or 127.0.0.0/8: sent through the loopback queue.
  bool is_self(Ipv4Addr a) const {
    return a.is_loopback() || (a == cfg_.addr.addr && !a.is_unspecified());
  }

  IpConfig cfg_;
  FrameSink& sink_;
  ArpCache& arp_;
  StackCounters& c_;
  TcpLayer* tcp_ = nullptr;
  UdpLayer* udp_ = nullptr;
  Reassembly reasm_;
  IcmpHandler icmp_;
  LoopbackQueue loop_;
  bool looped_ = false;  // the packet between begin() and commit() goes to loop_

  uint16_t next_ident_;

  // State between begin() and commit().
  Pending pending_ = Pending::None;
  IpTxParams p_;
  size_t l4_len_ = 0;
  Ipv4Addr hop_;
  MacAddr dst_mac_;
  bool mac_known_ = false;
  MutBytes frame_;
  uint16_t frag_mtu_ = 0;
  Instant now_;
  std::vector<uint8_t> scratch_;  // 64 KiB: datagrams to be fragmented at commit()

  std::array<PmtuEntry, kPmtuEntries> pmtu_{};
  size_t pmtu_count_ = 0;
  Instant pmtu_now_;  // latest time seen; path_mtu() has no `now` of its own
};

}  // namespace xs
