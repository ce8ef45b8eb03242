// Segment-level TCP test fixture (STYLE 10): a TcpLayer whose IP output is
// captured, so a test feeds one segment at a time t and asserts the exact
// segments sent back.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "stack/base/counters.hpp"
#include "stack/base/random.hpp"
#include "stack/net/ip_output.hpp"
#include "stack/tcp/tcp_layer.hpp"
#include "stack/tcp/tcp_layer_impl.hpp"
#include "stack/tcp/tcp_socket.hpp"
#include "stack/wire/tcp.hpp"

namespace xs::test {

inline constexpr Ipv4Addr kLocalIp = Ipv4Addr::from_octets(198, 18, 0, 1);
inline constexpr Ipv4Addr kRemoteIp = Ipv4Addr::from_octets(198, 18, 0, 2);
inline constexpr uint16_t kLocalPort = 80;
inline constexpr uint16_t kRemotePort = 49152;
inline constexpr uint32_t kRemoteIss = 1000000;

inline Instant at_ms(int64_t ms) { return Instant{ms * 1000}; }
inline Instant at_us(int64_t us) { return Instant{us}; }

// A segment as the test writes it: only the fields it cares about.
struct Seg {
  uint8_t flags = tcpflag::kAck;
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint16_t window = 65535;
  std::optional<uint16_t> mss;
  std::optional<uint8_t> wscale;
  bool sack_permitted = false;
  std::optional<TcpTimestamps> ts;
  std::vector<SackBlock> sack;
  std::string payload;
  uint16_t urgent = 0;  // the urgent pointer field (set kUrg in flags too)
};

// A segment the stack sent, decoded (checksum verified).
struct Sent {
  uint8_t flags = 0;
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint16_t window = 0;
  TcpOptions opts;
  std::string payload;
  Ipv4Addr src, dst;
  uint16_t src_port = 0, dst_port = 0;
  std::vector<uint8_t> raw;  // the TCP header and payload as emitted (option layout checks)
  uint16_t urgent = 0;       // the urgent pointer field
  bool has(uint8_t f) const { return (flags & f) != 0; }
};

std::string flags_str(uint8_t f);

class CaptureIp final : public IpOutput {
 public:
  MutBytes begin(Instant now, const IpTxParams& p, size_t l4_len) override;
  void commit() override;
  uint16_t path_mtu(Ipv4Addr) const override { return mtu; }
  std::optional<Ipv4Addr> source_for(Ipv4Addr a) const override {
    if (no_route && a == *no_route) return std::nullopt;
    return kLocalIp;
  }
  bool is_local(Ipv4Addr a) const override { return a == kLocalIp; }

  uint16_t mtu = 1500;
  std::optional<Ipv4Addr> no_route;  // a destination without a route
  bool drop_all = false;  // simulate "no TX buffer"
  std::vector<Sent> sent;
  std::vector<IpTxParams> params;

 private:
  std::vector<uint8_t> buf_;
  IpTxParams cur_;
};

class TcpHarness {
 public:
  explicit TcpHarness(TcpConfig cfg = default_config(), uint64_t seed = 1);
  static TcpConfig default_config();

  // Feeds a segment from the remote endpoint at time `now`.
  void recv(Instant now, const Seg& s, uint16_t src_port = kRemotePort, uint16_t dst_port = kLocalPort);
  // The same, with the payload given as bytes that stay where they are
  // (s.payload is ignored): zero-copy receive tests hold them as frames.
  void recv_in_place(Instant now, const Seg& s, Bytes payload, uint16_t src_port = kRemotePort,
                     uint16_t dst_port = kLocalPort);
  void poll(Instant now) { tcp.poll(now); }
  // Runs timers up to and including `until`, in deadline order.
  void run_until(Instant until);

  std::vector<Sent> take() { auto v = std::move(ip.sent); ip.sent.clear(); return v; }
  // Asserts exactly one segment was sent and returns it.
  Sent expect_one();
  void expect_none();

  // A listening socket on kLocalPort with `backlog`.
  TcpSocket* listener(int backlog = 128);
  // Passive open up to ESTABLISHED via the listener; returns the accepted
  // socket. Our ISS is returned in *iss. Options offered by the "peer": given by `syn`.
  TcpSocket* accept_established(Instant now, uint32_t* iss, Seg syn = default_syn());
  // Active open up to ESTABLISHED; the peer answers with `synack` options.
  TcpSocket* connect_established(Instant now, uint32_t* iss, Seg synack = default_syn());
  static Seg default_syn();

  SeededRandom rng;
  StackCounters counters;
  CaptureIp ip;
  TcpLayer tcp;
  TcpSocket* listen_sock = nullptr;
};

}  // namespace xs::test
