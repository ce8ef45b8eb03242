// Internals of TcpLayer: the tables that find a socket for a segment, the
// timer set, and the services every connection shares (ISN, SYN cookies,
// ports, segment output, the challenge-ACK budget).
#pragma once
#include <boost/intrusive/set.hpp>
#include <boost/intrusive/unordered_set.hpp>
#include <memory>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "stack/base/counters.hpp"
#include "stack/base/ephemeral_ports.hpp"
#include "stack/base/random.hpp"
#include "stack/net/frame_lender.hpp"
#include "stack/net/ip_output.hpp"
#include "stack/tcp/isn.hpp"
#include "stack/tcp/syn_cookie.hpp"
#include "stack/tcp/tcp_config.hpp"
#include "stack/tcp/tcp_socket.hpp"
#include "stack/wire/ipv4.hpp"

namespace xs {

struct TcpTupleOf {
  using type = FourTuple;
  FourTuple operator()(const TcpSocket& s) const { return {s.local(), s.remote()}; }
};

struct TcpTimerLess {
  bool operator()(const TcpSocket& a, const TcpSocket& b) const { return a.timer_key_ < b.timer_key_; }
};

class TcpLayerImpl {
 public:
  TcpLayerImpl(const TcpConfig& cfg, IpOutput& ip, Random& rng, StackCounters& counters);
  ~TcpLayerImpl();

  TcpSocket* open();

  void on_segment(Instant now, const Ipv4Packet& ip, const TcpRepr& seg);
  void on_icmp_error(Instant now, uint8_t type, uint8_t code, uint16_t mtu, const Ipv4Repr& qip,
                     Bytes ql4);
  void poll(Instant now);
  Instant poll_at() const;

  // ---- services for sockets ----------------------------------------------
  const TcpConfig& cfg() const { return cfg_; }
  StackCounters& counters() { return counters_; }
  // Zero-copy receive (Stack::set_frame_lender); null when frames must be copied.
  FrameLender* frame_lender() const { return lender_; }
  void set_frame_lender(FrameLender* l) { lender_ = l; }
  IpOutput& ip() { return ip_; }
  Random& rng() { return rng_; }
  const IsnGenerator& isn() const { return isn_; }

  // Writes one segment. `payload` is up to two spans (from a ByteRing).
  // Returns false if the packet could not be queued (it is then lost).
  // df: the IP DF bit (ip_dont_fragment: IP_PMTUDISC_WANT or DO).
  bool output(Instant now, Ipv4Addr src, Ipv4Addr dst, const TcpRepr& hdr,
              const std::array<Bytes, 2>& payload, uint8_t tos, uint8_t ttl, bool df = true);
  // RST in reply to `seg` (RFC 9293 3.10.7.1), used for segments that match no socket.
  void send_reset_reply(Instant now, Ipv4Addr src, Ipv4Addr dst, const TcpRepr& seg);
  // RFC 5961 7: at most challenge_ack_limit challenge ACKs per second, stack-wide.
  bool challenge_ack_allowed(Instant now);

  Status<SockError> bind(TcpSocket* s, Endpoint ep);
  // Auto-bind for connect: picks a local address and an ephemeral port unique for the 4-tuple.
  Status<SockError> bind_for_connect(TcpSocket* s, Endpoint remote);
  void unbind(TcpSocket* s);
  void add_bind(TcpSocket* s);  // onto its port's chain (binds_), recording its index
  Status<SockError> start_listening(TcpSocket* s);
  void stop_listening(TcpSocket* s);
  void insert_connection(TcpSocket* s);
  void remove_connection(TcpSocket* s);
  TcpSocket* find_connection(const FourTuple& t);
  // The socket is done (CLOSED and released by the user): free it.
  void destroy(TcpSocket* s);
  // Moves `s` in the timer set if its earliest deadline moved earlier.
  void reschedule(TcpSocket* s);
  // Marks a socket so that it is freed at the end of the current entry point.
  void defer_destroy(TcpSocket* s);

  const SynCookies& cookies() const { return cookies_; }
  size_t connection_count() const { return conns_.size(); }
  size_t socket_count() const { return all_.size(); }
  // Sockets in TIME_WAIT (TcpSocket::set_state keeps the count), held to
  // TcpConfig::max_tw_buckets.
  size_t time_wait_count() const { return time_wait_; }
  void count_time_wait(bool entered) { entered ? ++time_wait_ : --time_wait_; }
  const std::unordered_set<TcpSocket*>& sockets() const { return all_; }
  // Sockets still delivering data or a FIN after the application closed them
  // (FIN_WAIT_1, CLOSING, LAST_ACK).
  size_t closing_count() const {
    size_t n = 0;
    for (const TcpSocket* s : all_) {
      TcpState st = s->state();
      n += st == TcpState::FinWait1 || st == TcpState::Closing || st == TcpState::LastAck;
    }
    return n;
  }

 private:
  using ConnTable =
      bi::unordered_set<TcpSocket, bi::member_hook<TcpSocket, TcpTableHook, &TcpSocket::table_hook_>,
                        bi::key_of_value<TcpTupleOf>, bi::hash<FourTupleHash>,
                        bi::constant_time_size<true>, bi::power_2_buckets<true>>;
  using TimerSet =
      bi::multiset<TcpSocket, bi::member_hook<TcpSocket, TcpTimerHook, &TcpSocket::timer_hook_>,
                   bi::compare<TcpTimerLess>, bi::constant_time_size<false>>;

  void on_listen_segment(Instant now, TcpSocket* l, const Ipv4Packet& ip, const TcpRepr& seg);
  void on_syn_for_listener(Instant now, TcpSocket* l, const Ipv4Packet& ip, const TcpRepr& seg,
                           std::optional<Seq> isn_override);
  void on_cookie_ack(Instant now, TcpSocket* l, const Ipv4Packet& ip, const TcpRepr& seg);
  TcpSocket* make_child(TcpSocket* listener, const Ipv4Packet& ip, const TcpRepr& seg);
  TcpSocket* find_listener(Ipv4Addr dst, uint16_t port, const FourTuple& t);
  bool port_in_use_for(Ipv4Addr local, uint16_t port, Endpoint remote) const;
  void grow_table();
  void flush_destroyed();

  TcpConfig cfg_;
  IpOutput& ip_;
  Random& rng_;
  StackCounters& counters_;
  FrameLender* lender_ = nullptr;
  IsnGenerator isn_;
  SynCookies cookies_;
  EphemeralPorts ports_;

  std::vector<ConnTable::bucket_type> buckets_;
  ConnTable conns_;
  TimerSet timers_;
  std::unordered_map<uint16_t, std::vector<TcpSocket*>> binds_;
  std::unordered_map<uint16_t, std::vector<TcpSocket*>> listeners_;
  std::unordered_set<TcpSocket*> all_;
  size_t time_wait_ = 0;
  std::vector<TcpSocket*> to_destroy_;
  int64_t challenge_second_ = -1;
  uint32_t challenge_count_ = 0;
};

}  // namespace xs
