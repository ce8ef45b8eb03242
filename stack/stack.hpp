// One network stack on one Ethernet interface: the ARP cache, IPv4 (with
// ICMP and reassembly), TCP and UDP, wired together. The engine feeds it
// frames and time; it writes frames into a FrameSink.
#pragma once
#include <optional>

#include "stack/base/addr.hpp"
#include "stack/base/bytes.hpp"
#include "stack/base/counters.hpp"
#include "stack/base/random.hpp"
#include "stack/base/time.hpp"
#include "stack/net/arp_cache.hpp"
#include "stack/net/frame_lender.hpp"
#include "stack/net/frame_sink.hpp"
#include "stack/net/ip_layer.hpp"
#include "stack/tcp/tcp_config.hpp"
#include "stack/tcp/tcp_layer.hpp"
#include "stack/udp/udp_layer.hpp"

namespace xs {

struct StackConfig {
  MacAddr mac;
  Ipv4Cidr addr;
  std::optional<Ipv4Addr> gateway;
  uint16_t mtu = 1500;
  TcpConfig tcp;
  ArpConfig arp;
};

class Stack {
 public:
  Stack(const StackConfig& cfg, Random& rng, FrameSink& sink);
  Stack(const Stack&) = delete;
  Stack& operator=(const Stack&) = delete;

  // An Ethernet frame from the device.
  void receive_frame(Instant now, Bytes frame);
  // Where sockets that receive into frames (zero-copy receive) borrow them;
  // null (the default) makes every socket copy. Must outlive the stack.
  void set_frame_lender(FrameLender* lender);
  // Runs every layer's due timers (ARP, reassembly, TCP).
  void poll(Instant now);
  // Earliest instant poll() has work to do.
  Instant poll_at() const;

  TcpLayer& tcp() { return tcp_; }
  UdpLayer& udp() { return udp_; }
  IpLayer& ip() { return ip_; }
  ArpCache& arp() { return arp_; }
  const StackCounters& counters() const { return counters_; }
  StackCounters& counters() { return counters_; }
  const StackConfig& config() const { return cfg_; }

 private:
  StackConfig cfg_;
  StackCounters counters_;  // first: every layer below holds a reference
  ArpCache arp_;
  IpLayer ip_;
  TcpLayer tcp_;
  UdpLayer udp_;
};

}  // namespace xs
