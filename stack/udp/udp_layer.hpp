// The UDP protocol instance of a stack (RFC 768, RFC 1122 4.1): owns the
// sockets, demultiplexes datagrams to them the way Linux __udp4_lib_lookup
// scores candidates, and routes ICMP errors to connected sockets.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "stack/base/addr.hpp"
#include "stack/base/bytes.hpp"
#include "stack/base/counters.hpp"
#include "stack/base/ephemeral_ports.hpp"
#include "stack/base/random.hpp"
#include "stack/base/siphash.hpp"
#include "stack/base/time.hpp"
#include "stack/net/frame_lender.hpp"
#include "stack/udp/udp_socket.hpp"
#include "stack/wire/ipv4.hpp"

namespace xs {

class IpLayer;

struct UdpConfig {
  uint16_t ephemeral_low = 32768, ephemeral_high = 60999;  // ip_local_port_range
  uint32_t rmem_default = 212992, wmem_default = 212992;   // net.core.[rw]mem_default
  uint32_t rmem_max = 212992, wmem_max = 212992;           // net.core.[rw]mem_max
  uint8_t default_ttl = 64;                                // ip_default_ttl
  // Charged against rcvbuf per datagram on top of its payload, standing in for
  // Linux's skb truesize overhead, so that floods of tiny datagrams stay bounded.
  uint32_t datagram_overhead = 256;
  bool rx_frames = false;  // new sockets start with zc_frames on (TcpConfig::rx_frames)
};

enum class UdpInput : uint8_t { Delivered, NoPort, Dropped };

class UdpLayer {
 public:
  static constexpr size_t kMaxPayload = 65507;  // 65535 - 20 (IP) - 8 (UDP)

  UdpLayer(IpLayer& ip, Random& rng, StackCounters& counters, const UdpConfig& cfg = {});
  ~UdpLayer();
  UdpLayer(const UdpLayer&) = delete;
  UdpLayer& operator=(const UdpLayer&) = delete;

  // A new unbound socket, owned by the layer until close().
  UdpSocket* open();
  void close(UdpSocket* s);
  size_t socket_count() const { return sockets_.size(); }
  // Calls f(const UdpSocket&) for every open socket, at most `max` of them
  // (diagnostics: the engine's stats segment). f must not open or close sockets.
  template <class F>
  void for_each_socket(F&& f, size_t max = SIZE_MAX) const {
    for (const auto& s : sockets_) {
      if (max-- == 0) return;
      f(static_cast<const UdpSocket&>(*s));
    }
  }

  // A datagram addressed to our address (or a broadcast, `broadcast`).
  // Verifies it (parse_udp) and queues it on the matching socket(s). NoPort
  // tells the IP layer to answer with ICMP port unreachable.
  UdpInput on_datagram(Instant now, const Ipv4Packet& ip, bool broadcast);

  // ICMP error quoting a datagram we sent: `quoted_l4` starts with its UDP header.
  void on_icmp_error(Instant now, uint8_t type, uint8_t code, const Ipv4Repr& quoted_ip, Bytes quoted_l4);

  const UdpConfig& config() const { return cfg_; }
  StackCounters& counters() { return c_; }
  IpLayer& ip() { return ip_; }
  // Zero-copy receive (Stack::set_frame_lender); null when frames must be copied.
  FrameLender* frame_lender() const { return lender_; }
  void set_frame_lender(FrameLender* l) { lender_ = l; }

 private:
  friend class UdpSocket;

  // Linux __udp4_lib_lookup: the best-scoring socket bound to dport (exact
  // local address beats wildcard, connected beats unconnected); among equal
  // SO_REUSEPORT sockets, one chosen by a hash of the 4-tuple.
  UdpSocket* lookup(Ipv4Addr saddr, uint16_t sport, Ipv4Addr daddr, uint16_t dport) const;
  // Would binding `s` to (addr, port) conflict with another socket? (Linux udp_lib_lport_inuse)
  bool conflicts(const UdpSocket* s, Ipv4Addr addr, uint16_t port) const;
  std::optional<uint16_t> pick_port(const UdpSocket* s, Ipv4Addr addr, std::optional<Endpoint> remote);
  void hash(UdpSocket* s);    // appends to its port's chain (join order = reuseport order)
  void unhash(UdpSocket* s);

  IpLayer& ip_;
  StackCounters& c_;
  UdpConfig cfg_;
  FrameLender* lender_ = nullptr;
  EphemeralPorts ports_;
  SipKey reuseport_key_;
  std::vector<std::unique_ptr<UdpSocket>> sockets_;
  std::vector<UdpSocket*> by_port_;  // 65536 chain heads
};

}  // namespace xs
