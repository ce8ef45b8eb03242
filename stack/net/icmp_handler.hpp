// ICMPv4 (RFC 792, RFC 1122 3.2.2): answers echo requests, sends destination
// unreachable / time exceeded errors under Linux's rate limits, and hands
// received errors to the transport that sent the quoted packet.
#pragma once
#include <array>
#include <cstdint>

#include "stack/base/addr.hpp"
#include "stack/base/bytes.hpp"
#include "stack/base/counters.hpp"
#include "stack/base/time.hpp"
#include "stack/wire/ipv4.hpp"

namespace xs {

class IpLayer;
class TcpLayer;
class UdpLayer;

struct IcmpConfig {
  // Linux icmp_msgs_per_sec / icmp_msgs_burst: a global token bucket for errors.
  uint32_t msgs_per_sec = 1000;
  uint32_t msgs_burst = 50;
  // Linux icmp_ratelimit: per destination host, one error per this interval,
  // with a burst of XRLIM_BURST_FACTOR (6) intervals.
  Duration ratelimit = seconds(1);
  uint32_t burst_factor = 6;
};

class IcmpHandler {
 public:
  IcmpHandler(IpLayer& ip, StackCounters& counters, const IcmpConfig& cfg);

  void set_transports(TcpLayer* tcp, UdpLayer* udp) { tcp_ = tcp; udp_ = udp; }

  // An ICMP message addressed to our unicast address.
  void on_icmp(Instant now, const Ipv4Packet& pkt);
  // One of our packets (IPv4 header onward) could not leave: its next hop
  // did not resolve. Reported to its transport as ICMP host unreachable,
  // as Linux does (ipv4_link_failure).
  void on_local_unreachable(Instant now, Bytes ip_packet);

  // Sends an error (dest unreachable, time exceeded) about `offending`, unless
  // RFC 1122 3.2.2 forbids it (offending is an ICMP error, a non-initial
  // fragment, sent to a broadcast/multicast address or link-layer broadcast,
  // or from a source that is not a unique host) or the rate limit says no.
  // Quotes the IP header and the first 8 data bytes (RFC 792). `rest` is the
  // header's second word (next-hop MTU for fragmentation needed).
  // Returns true if sent.
  bool send_error(Instant now, uint8_t type, uint8_t code, uint32_t rest,
                  const Ipv4Packet& offending, bool link_broadcast);

 private:
  struct Peer {
    Ipv4Addr addr;
    int64_t tokens_us = 0;  // accumulated credit, capped at burst_factor * ratelimit
    Instant last;
    bool used = false;
  };
  static constexpr size_t kPeers = 64;

  bool rate_allow(Instant now, Ipv4Addr dst);
  void on_error(Instant now, const Ipv4Packet& pkt, uint8_t type, uint8_t code, uint16_t mtu,
                Bytes quoted);

  IpLayer& ip_;
  StackCounters& c_;
  IcmpConfig cfg_;
  TcpLayer* tcp_ = nullptr;
  UdpLayer* udp_ = nullptr;

  // Global bucket, in millitokens so that refill is exact at 1000/s.
  int64_t global_milli_ = 0;
  Instant global_last_;
  bool global_init_ = false;
  std::array<Peer, kPeers> peers_{};
};

}  // namespace xs
