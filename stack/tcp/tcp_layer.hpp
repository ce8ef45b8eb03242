// The TCP protocol instance of a stack: demultiplexes segments to connections
// and listeners, answers segments for no connection with RST, and drives
// every connection's timers. (Socket-facing API: tcp_socket.hpp.)
#pragma once
#include <cstdint>
#include <memory>
#include <type_traits>

#include "stack/base/addr.hpp"
#include "stack/base/bytes.hpp"
#include "stack/base/counters.hpp"
#include "stack/base/random.hpp"
#include "stack/base/time.hpp"
#include "stack/net/frame_lender.hpp"
#include "stack/net/ip_output.hpp"
#include "stack/wire/ipv4.hpp"
#include "stack/wire/tcp.hpp"
#include "stack/tcp/tcp_config.hpp"

namespace xs {

class TcpLayerImpl;
class TcpSocket;

class TcpLayer {
 public:
  TcpLayer(const TcpConfig& cfg, IpOutput& ip, Random& rng, StackCounters& counters);
  ~TcpLayer();
  TcpLayer(const TcpLayer&) = delete;
  TcpLayer& operator=(const TcpLayer&) = delete;

  // A new socket in CLOSED. Owned by the layer; release it with TcpSocket::close().
  TcpSocket* open();
  const TcpConfig& config() const;
  size_t socket_count() const;
  // Closed by the application, still sending data or FIN (a process exiting waits for these).
  size_t closing_count() const;
  // Calls f(const TcpSocket&) for every socket the layer owns (listeners,
  // connections, closing ones), in no particular order, at most `max` of
  // them. For diagnostics (the engine's stats segment, which has room for a
  // few thousand rows while a busy server holds a million sockets in
  // TIME_WAIT): f must not open or close sockets.
  template <class F>
  void for_each_socket(F&& f, size_t max = SIZE_MAX) const {
    using Fn = std::remove_reference_t<F>;
    visit_sockets([](void* ctx, const TcpSocket& s) { (*static_cast<Fn*>(ctx))(s); }, &f, max);
  }
  void visit_sockets(void (*fn)(void*, const TcpSocket&), void* ctx, size_t max) const;

  // A parsed, checksum-verified segment addressed to one of our addresses.
  void on_segment(Instant now, const Ipv4Packet& ip, const TcpRepr& seg);

  // ICMP destination unreachable / time exceeded quoting one of our TCP
  // segments: `quoted_ip` is the quoted IPv4 header, `quoted_l4` the first
  // bytes (at least 8) of the quoted TCP header.
  void on_icmp_error(Instant now, uint8_t type, uint8_t code, uint16_t next_hop_mtu,
                     const Ipv4Repr& quoted_ip, Bytes quoted_l4);

  // Runs due timers and sends whatever connections have ready.
  void poll(Instant now);
  // Earliest instant poll() has work to do (kNever if none).
  Instant poll_at() const;

  // Zero-copy receive (Stack::set_frame_lender).
  void set_frame_lender(FrameLender* lender);

  TcpLayerImpl& impl() { return *impl_; }

 private:
  std::unique_ptr<TcpLayerImpl> impl_;
};

}  // namespace xs
