// A TCP socket: the transmission control block (RFC 9293 3.3.1) and the
// socket calls made on it. Created by TcpLayer::open(); after close() the
// handle is the layer's, which frees it when the connection reaches CLOSED.
//
// Threading: none. The engine serialises every call; `now` is passed in.
#pragma once
#include <array>
#include <boost/intrusive/list.hpp>
#include <boost/intrusive/set.hpp>
#include <boost/intrusive/unordered_set.hpp>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "stack/base/addr.hpp"
#include "stack/base/bytes.hpp"
#include "stack/base/events.hpp"
#include "stack/base/expected.hpp"
#include "stack/base/seq.hpp"
#include "stack/base/sock_error.hpp"
#include "stack/base/time.hpp"
#include "stack/tcp/assembler.hpp"
#include "stack/tcp/byte_ring.hpp"
#include "stack/tcp/recv_queue.hpp"
#include "stack/tcp/cc_holder.hpp"
#include "stack/tcp/rtt_estimator.hpp"
#include "stack/tcp/sack_scoreboard.hpp"
#include "stack/tcp/syn_cookie.hpp"
#include "stack/tcp/tcp_types.hpp"
#include "stack/wire/tcp.hpp"

namespace xs {

class TcpLayerImpl;
struct Ipv4Packet;

namespace bi = boost::intrusive;
using TcpTableHook = bi::unordered_set_member_hook<bi::link_mode<bi::safe_link>>;
using TcpTimerHook = bi::set_member_hook<bi::link_mode<bi::safe_link>>;
using TcpQueueHook = bi::list_member_hook<bi::link_mode<bi::safe_link>>;

// Per-socket options, with Linux's defaults.
struct TcpSocketOptions {
  bool nodelay = false;       // TCP_NODELAY
  bool cork = false;          // TCP_CORK
  bool keepalive = false;     // SO_KEEPALIVE
  bool reuseaddr = false;     // SO_REUSEADDR
  bool reuseport = false;     // SO_REUSEPORT
  bool linger_on = false;     // SO_LINGER
  int linger_seconds = 0;
  Duration keep_idle{0};      // TCP_KEEPIDLE (0: the stack default)
  Duration keep_interval{0};  // TCP_KEEPINTVL
  uint32_t keep_count = 0;    // TCP_KEEPCNT
  Duration user_timeout{0};   // TCP_USER_TIMEOUT (0: off)
  uint16_t user_mss = 0;      // TCP_MAXSEG before connect (0: from MTU)
  Duration defer_accept{0};   // TCP_DEFER_ACCEPT
  uint8_t tos = 0;            // IP_TOS
  uint8_t pmtudisc = 1;       // IP_MTU_DISCOVER (IP_PMTUDISC_WANT)
  uint8_t ttl = 0;            // IP_TTL (0: stack default)
  uint32_t rcvlowat = 1;      // SO_RCVLOWAT
  uint32_t syn_count = 0;     // TCP_SYNCNT (0: stack default)
  bool oobinline = false;     // SO_OOBINLINE: urgent bytes stay in the stream
  bool zc_frames = false;     // XS_ZC_RX_FRAMES: keep payloads in their frames
  // TCP_LINGER2 (Linux tp->linger2): orphaned FIN_WAIT_2 lifetime in seconds;
  // 0: the stack's fin_wait2_timeout; < 0: reset at once (tcp_close).
  int linger2 = 0;
  // TCP_NOTSENT_LOWAT (Linux tp->notsent_lowat): writable only while fewer
  // unsent bytes are queued (0: the stack default, no limit).
  uint32_t notsent_lowat = 0;
  // TCP_WINDOW_CLAMP (Linux tp->window_clamp set by the user): the receive
  // window advertised never exceeds it (0: no clamp but the buffer).
  uint32_t window_clamp = 0;
};

class TcpSocket {
 public:
  // ---- socket calls (errors as Linux reports them, typed) ----------------
  Status<SockError> bind(Endpoint local);
  Status<SockError> listen(int backlog);
  // Starts the handshake. Returns InProgress (the engine waits or reports
  // EINPROGRESS), or an immediate error.
  Status<SockError> connect(Instant now, Endpoint remote);
  // Next established connection, or WouldBlock / InvalidArgument (not listening).
  Expected<TcpSocket*, SockError> accept(Instant now);
  // Queues data; returns bytes taken (may be fewer than offered), WouldBlock
  // when the buffer is full. `more` = MSG_MORE (hold a partial segment).
  // `urgent` = MSG_OOB: when bytes were taken, the last byte queued is urgent
  // (Linux tcp_mark_urg: SND.UP = the end of the queue).
  Expected<size_t, SockError> send(Instant now, Bytes data, bool more = false, bool urgent = false);
  // Copies received data; 0 means end of stream. `peek` = MSG_PEEK. Stops at
  // the urgent mark and, without SO_OOBINLINE, passes over the urgent byte
  // (Linux tcp_recvmsg).
  // peek_off: SO_PEEK_OFF, where a peek starts (bytes past the read point).
  Expected<size_t, SockError> recv(Instant now, MutBytes out, bool peek = false, size_t peek_off = 0);
  // recv(MSG_OOB), Linux tcp_recv_urg: the urgent byte kept aside (marked
  // read unless `peek`), or nullopt at end of stream; InvalidArgument with
  // SO_OOBINLINE, with no urgent data, or when it was read; NotConnected
  // after a reset; WouldBlock (never blocks) while the urgent pointer is
  // known but the byte has not arrived.
  Expected<std::optional<uint8_t>, SockError> recv_urgent(bool peek);
  // SIOCATMARK (Linux tcp_ioctl): the next byte to read is the urgent mark.
  bool at_urgent_mark() const;
  // Whether a recv() would return data now (the urgent byte at the mark,
  // skipped without SO_OOBINLINE, does not count).
  bool has_normal_data() const;
  // FIONREAD / SIOCINQ, Linux tcp_inq: bytes up to the urgent mark while one
  // is ahead (without SO_OOBINLINE), else all queued bytes.
  size_t inq() const;
  Status<SockError> shutdown(Instant now, bool read, bool write);

  // ---- zero-copy (docs/zerocopy.md) ----------------------------------------
  // Receive by borrowing: lends up to max_len of the oldest readable bytes in
  // place, as at most out.size() spans: one per frame the bytes stayed in
  // (set_zc_frames), then one or two of the receive ring (two where it
  // wraps). Lent bytes keep occupying the receive window until zc_release();
  // the ring does not move or grow while any of its bytes are lent. Returns
  // the number of spans; 0 is end of stream (or out empty). Errors as recv().
  Expected<size_t, SockError> zc_borrow(size_t max_len, std::span<Bytes> out);
  // Gives back the oldest n lent bytes; the window reopens as after recv().
  // InvalidArgument when n exceeds what is lent.
  Status<SockError> zc_release(Instant now, size_t n);
  size_t zc_lent() const { return rcv_lent_; }
  // Keep in-order payloads in the frames they arrived in (when the stack has
  // a FrameLender and it lends), instead of copying them into the ring.
  // Accepted sockets inherit it from the listener.
  void set_zc_frames(bool on);
  // Frames one socket may hold at once; beyond that segments are copied.
  static constexpr size_t kZcFrameSlots = 256;
  bool zc_frames() const { return opt_.zc_frames; }
  // Received bytes now held in frames (diagnostics, tests).
  size_t rx_frame_bytes() const { return rcv_q_.frame_bytes(); }
  // Send without an extra copy: up to len bytes of free send-buffer space
  // (as much as send() would take now), as one or two writable spans after
  // the queued data. A new reservation replaces an open one (bytes already
  // written keep their stream positions); while one is open send() fails
  // with Busy, since it would write into the same space.
  Expected<std::array<MutBytes, 2>, SockError> zc_reserve(size_t len);
  // Queues the first n reserved bytes exactly as send() would queue them
  // (Nagle, cork, `more` = MSG_MORE) and ends the reservation. InvalidArgument
  // when n exceeds the reservation (which then stays open); connection errors
  // as send() (the reservation is dropped).
  Expected<size_t, SockError> zc_commit(Instant now, size_t n, bool more = false);
  size_t zc_reserved() const { return snd_reserved_; }
  // Releases the handle. With unread data or SO_LINGER 0 the connection is
  // reset (as Linux does); otherwise it closes gracefully in the background.
  void close(Instant now);

  // ---- options --------------------------------------------------------------
  TcpSocketOptions& options() { return opt_; }
  const TcpSocketOptions& options() const { return opt_; }
  void set_nodelay(Instant now, bool on);
  void set_cork(Instant now, bool on);
  void set_keepalive(Instant now, bool on);
  void set_quickack(bool on);
  // setsockopt(TCP_QUICKACK, val) as Linux: also flushes a delayed ACK.
  void set_quickack(Instant now, int val);
  // TCP_NOTSENT_LOWAT: 0 restores the default (net.ipv4.tcp_notsent_lowat,
  // UINT_MAX: no limit). Writers waiting may wake (Linux sk_write_space).
  void set_notsent_lowat(uint32_t bytes) {
    opt_.notsent_lowat = bytes;
    notify();
  }
  // ip_dont_fragment: DF under IP_PMTUDISC_WANT and DO only.
  bool ip_df() const { return opt_.pmtudisc == 1 || opt_.pmtudisc == 2; }
  uint32_t notsent_lowat() const { return opt_.notsent_lowat ? opt_.notsent_lowat : UINT32_MAX; }
  // TCP_WINDOW_CLAMP (Linux tcp_set_window_clamp): 0 is allowed only on a
  // closed socket (InvalidArgument otherwise); other values are raised to
  // SOCK_MIN_RCVBUF / 2. A smaller clamp never shrinks a window already
  // advertised (RFC 7323 2.4).
  Status<SockError> set_window_clamp(int bytes);
  // getsockopt(TCP_WINDOW_CLAMP): the clamp set; once connected without one,
  // the largest window the buffer lets us advertise (Linux: tcp_full_space).
  uint32_t window_clamp() const;
  // TCP_QUICKACK as getsockopt reports it (Linux: !inet_csk_in_pingpong_mode):
  // 0 once the socket is in delayed-ACK "ping-pong" mode, entered by
  // set_quickack(false) or by sending data soon after receiving some.
  bool quickack() const { return !pingpong_; }
  // SO_RCVBUF / SO_SNDBUF: stores twice the value (Linux doubling), clamped.
  void set_rcvbuf(uint32_t bytes);
  void set_sndbuf(uint32_t bytes);
  uint32_t rcvbuf() const { return rcvbuf_; }
  uint32_t sndbuf() const { return sndbuf_; }
  Status<SockError> set_maxseg(uint32_t mss);
  uint32_t maxseg() const;
  Status<SockError> set_congestion(Instant now, std::string_view name);
  std::string_view congestion() const { return cc_.name(); }

  // ---- state ----------------------------------------------------------------
  TcpState state() const { return state_; }
  Endpoint local() const { return local_; }
  Endpoint remote() const { return remote_; }
  bool is_bound() const { return bound_; }
  // epoll bits exactly as Linux's tcp_poll computes them.
  uint32_t readiness() const;
  // SO_ERROR: returns and clears the pending error.
  std::optional<SockError> take_error();
  std::optional<SockError> pending_error() const { return error_; }
  // A blocking connect() that failed (tcp_disconnect from
  // __inet_stream_connect): the source address the connect picked is
  // forgotten (getsockname then reads 0.0.0.0) unless bind() named it.
  void forget_connect_source();
  size_t bytes_readable() const { return rcv_q_.size() - rcv_lent_; }  // FIONREAD (lent bytes are read)
  size_t bytes_unacked_or_unsent() const { return snd_buf_.size(); }  // SIOCOUTQ
  size_t bytes_unsent() const;                                       // SIOCOUTQNSD
  bool accept_queue_empty() const { return accept_q_.empty(); }
  size_t accept_queue_len() const { return accept_q_.size(); }
  int backlog() const { return backlog_; }
  TcpInfo info(Instant now) const;
  // When in-order data last arrived (SO_TIMESTAMP on recvmsg; Instant{} before any).
  Instant last_data_received() const { return last_data_rcv_; }
  // One line of internal sequence state, for diagnostics (xstack-stat -v, test failures).
  std::string debug_string() const;
  bool sack_enabled() const { return sack_ok_; }
  bool timestamps_enabled() const { return ts_ok_; }
  uint8_t snd_wscale() const { return snd_wscale_; }
  uint8_t rcv_wscale() const { return rcv_wscale_; }
  uint32_t cwnd() const { return cc_.get().cwnd(); }
  uint32_t ssthresh() const { return cc_.get().ssthresh(); }
  uint32_t snd_mss() const { return snd_mss_; }

  void set_observer(SocketObserver* o, void* cookie) { observer_ = o; cookie_ = cookie; }
  void* cookie() const { return cookie_; }

  // The earliest deadline of this connection's timers.
  Instant next_deadline() const;

  explicit TcpSocket(TcpLayerImpl& layer);
  ~TcpSocket();
  TcpSocket(const TcpSocket&) = delete;
  TcpSocket& operator=(const TcpSocket&) = delete;

 private:
  friend class TcpLayerImpl;
  friend struct TcpSocketTestAccess;

  enum class Recovery : uint8_t { None, Fast, Loss };
  static constexpr uint8_t kRcvShutdown = 1;
  static constexpr uint8_t kSendShutdown = 2;

  // ---- input (tcp_input.cpp) ---------------------------------------------
  void on_segment(Instant now, const TcpRepr& seg);
  void on_segment_syn_sent(Instant now, const TcpRepr& seg);
  void on_segment_synchronized(Instant now, const TcpRepr& seg);
  bool check_paws(Instant now, const TcpRepr& seg);
  void note_duplicate(const TcpRepr& seg);
  void send_oow_ack(Instant now, const TcpRepr& seg);
  bool check_seq_acceptable(const TcpRepr& seg) const;
  bool process_rst(Instant now, const TcpRepr& seg);
  bool process_ack(Instant now, const TcpRepr& seg);
  void process_data(Instant now, const TcpRepr& seg);
  void process_fin(Instant now);
  void update_send_window(const TcpRepr& seg, bool ack_advanced);
  void take_peer_options(const TcpRepr& syn);
  void challenge_ack(Instant now);
  void enter_established(Instant now);
  // Urgent data, RFC 9293 3.10.7.4 sixth check (Linux tcp_urg / tcp_check_urg).
  void process_urg(const TcpRepr& seg);
  void check_urg(const TcpRepr& seg);
  // The sequence number of the next byte the application reads (Linux copied_seq).
  Seq read_seq() const {
    return rcv_nxt_ - static_cast<uint32_t>(rcv_q_.size() - rcv_lent_) - (fin_received_ ? 1u : 0u);
  }
  // Reading moved past the urgent byte: the urgent state ends (tcp_recvmsg).
  void urg_after_read();

  // ---- loss recovery and RTT (tcp_recovery.cpp) -----------------------------
  void on_ack_advanced(Instant now, uint32_t acked, uint32_t flight_before, bool rtx_acked_only);
  void on_dupack(Instant now, bool sack_progress);
  void enter_recovery(Instant now);
  void maybe_exit_recovery(Instant now);
  uint32_t pipe() const;
  Seq lost_edge() const;
  void take_rtt_sample(Instant now, const TcpRepr& seg, Seq acked_to);
  void on_rto(Instant now);
  void on_dsack(Instant now, const SackBlock& b, std::optional<Seq> fack);

  // ---- output (tcp_output.cpp) ---------------------------------------------
  void transmit(Instant now);
  bool send_one_retransmission(Instant now);
  bool send_new_data(Instant now, uint32_t window_room);
  bool nagle_allows(Instant now, uint32_t len);
  void send_segment(Instant now, Seq seq, uint8_t flags, uint32_t data_off, uint32_t len,
                    bool retransmission);
  void send_ack(Instant now) { send_segment(now, acceptable_seq(), tcpflag::kAck, 0, 0, false); }
  // The sequence number for a segment without data (Linux tcp_acceptable_seq):
  // SND.NXT, unless the peer's window has shrunk below it; then the window's
  // right edge, or the peer would find the ACK outside its window and drop it
  // (RFC 9293 3.10.7.4), losing the acknowledgement it carries.
  Seq acceptable_seq() const {
    const Seq edge = snd_una_ + snd_wnd_;
    return snd_nxt_ <= edge ? snd_nxt_ : edge;
  }
  void send_syn(Instant now, bool with_ack);
  void send_probe(Instant now);
  void send_rst(Instant now);
  uint16_t window_to_advertise();
  uint32_t current_mss() const;
  uint32_t receive_space() const;
  uint32_t full_space() const;  // the largest window we would offer (Linux tcp_full_space, clamped)
  void build_options(TcpOptions& o, uint8_t flags, Instant now);
  uint32_t ts_now(Instant now) const { return uint32_t(now.us / 1000) + ts_offset_; }
  void schedule_ack(Instant now, bool immediately);
  void flush_ack(Instant now);

  // ---- timers (tcp_timers.cpp) ---------------------------------------------
  void on_timers(Instant now);
  void arm_rtx(Instant now);
  void on_retransmit_timer(Instant now);
  void on_keepalive_timer(Instant now);
  void arm_keepalive(Instant now);
  Duration keepalive_idle() const;
  Duration fin_wait2_timeout() const;
  Duration keepalive_interval() const;
  uint32_t keepalive_count() const;

  // ---- lifecycle -----------------------------------------------------------
  void set_state(TcpState s);
  void reset_connection(Instant now, SockError err);   // abort, no RST sent
  void abort_with_rst(Instant now, SockError err);     // send RST, then abort
  void enter_time_wait(Instant now);
  void release_buffers();
  void notify();
  bool orphaned() const { return user_closed_; }
  uint32_t data_in_flight() const;
  Seq fin_seq() const;  // sequence number our FIN occupies (valid once queued)
  bool fin_sent() const { return fin_queued_ && snd_nxt_ > fin_seq(); }
  bool fin_acked() const { return fin_queued_ && snd_una_ > fin_seq(); }
  static uint8_t wscale_for(uint32_t max_space);
  void inherit_from(const TcpSocket& listener);
  void on_passive_syn(Instant now, const TcpRepr& syn, std::optional<Seq> isn_override);
  void on_cookie_ack(Instant now, const TcpRepr& ack, uint16_t mss, const std::optional<CookieTsOptions>& tso);
  void on_icmp_error(Instant now, uint8_t type, uint8_t code, uint16_t mtu, Seq seq);
  void move_to_accept_queue(Instant now);
  void detach_from_listener();
  bool ensure_rcv_capacity(size_t bytes);
  void compute_mss(uint16_t path_mtu);
  void rcv_space_adjust(Instant now, size_t copied);
  // After n bytes left the receive ring (recv or zc_release): auto-tuning and
  // the window update.
  void after_rcv_consume(Instant now, size_t n);
  void expand_sndbuf();

  TcpLayerImpl& layer_;
  TcpState state_ = TcpState::Closed;
  Endpoint local_;
  Endpoint remote_;
  bool bound_ = false;
  size_t bind_index_ = 0;  // position in the layer's chain for local_.port (while bound_)
  bool bind_explicit_ = false;
  bool addr_explicit_ = false;  // bind() named the local address (Linux SOCK_BINDADDR_LOCK)
  bool user_closed_ = false;
  bool fin_received_ = false;   // Linux SOCK_DONE: reads return 0 from now on
  bool connect_pending_ = false;
  uint8_t shutdown_ = 0;
  std::optional<SockError> error_;       // sk_err
  std::optional<SockError> soft_error_;  // sk_err_soft, reported on timeout
  TcpSocketOptions opt_;
  SocketObserver* observer_ = nullptr;
  void* cookie_ = nullptr;

  // Send sequence space (RFC 9293 3.3.1).
  // snd_nxt_ is the highest sequence number sent so far (+1): retransmissions
  // name their sequence number explicitly and never move it back.
  Seq iss_, snd_una_, snd_nxt_, snd_wl1_, snd_wl2_;
  uint32_t snd_wnd_ = 0;        // scaled
  uint32_t max_snd_wnd_ = 0;
  ByteRing snd_buf_;            // data from snd_buf_seq_ on (unacked + unsent)
  Seq snd_buf_seq_;
  bool fin_queued_ = false;
  Seq snd_sml_;                 // end of the last small segment sent (Minshall's Nagle)
  bool more_pending_ = false;   // MSG_MORE held data
  // SND.UP (Linux snd_up, BSD interpretation: one past the urgent byte) while
  // urgent mode lasts, i.e. until SND.UNA reaches it (tcp_clean_rtx_queue).
  std::optional<Seq> snd_up_;
  Instant cork_started_ = kNever;

  // Receive sequence space.
  Seq irs_, rcv_nxt_, rcv_adv_;  // rcv_adv_: right edge of the last advertised window
  RecvQueue rcv_q_;
  size_t rcv_lent_ = 0;       // zero-copy: bytes at the front of rcv_q_ lent to the application
  size_t snd_reserved_ = 0;   // zero-copy: bytes after snd_buf_.size() reserved by zc_reserve
  Assembler ofo_;
  // Received urgent data (Linux tp->urg_data / urg_seq): the pointer is known
  // (NotYet), the byte arrived and is kept aside (Valid, read with MSG_OOB),
  // or it was read (Read). The byte also stays in rcv_q_ at urg_seq_, where
  // recv() stops and, without SO_OOBINLINE, skips it.
  enum class UrgState : uint8_t { None, NotYet, Valid, Read };
  UrgState urg_state_ = UrgState::None;
  uint8_t urg_byte_ = 0;
  Seq urg_seq_;  // the urgent byte (the pointer minus one, RFC 6093)
  uint32_t rcvbuf_ = 0, sndbuf_ = 0;
  bool rcvbuf_locked_ = false, sndbuf_locked_ = false;
  uint32_t rcv_ssthresh_ = 0;
  // Receive-buffer auto-tuning (Linux tcp_rcv_space_adjust).
  uint32_t rcvq_space_ = 0;
  uint32_t rcvq_space_copied_ = 0;
  Seq rcvq_seq_;
  Instant rcvq_time_;
  Duration rcv_rtt_{0};
  Seq rcv_rtt_seq_;
  Instant rcv_rtt_time_ = kNever;

  // Negotiated options.
  bool ws_ok_ = false, sack_ok_ = false, ts_ok_ = false;
  uint8_t snd_wscale_ = 0, rcv_wscale_ = 0;
  uint32_t ts_recent_ = 0;
  Instant ts_recent_stamp_;
  uint32_t ts_offset_ = 0;
  Seq last_ack_sent_;
  uint16_t peer_mss_ = 536;
  uint32_t snd_mss_ = 536;  // payload bytes per full segment, options excluded
  uint32_t rcv_mss_ = 536;  // estimate of the peer's segment size (delayed ACK)
  uint16_t adv_mss_ = 1460;
  uint16_t pmtu_ = 1500;

  // Congestion control and loss recovery.
  CcHolder cc_;
  RttEstimator rtt_;
  SackScoreboard sb_;
  Recovery recovery_ = Recovery::None;
  Seq recovery_point_, high_rxt_;
  Seq reno_lost_edge_;      // NewReno (no SACK): the segment presumed lost ends here
  // Reordering tolerance (Linux tp->reordering): the DupThresh of RFC 6675,
  // raised when D-SACKs prove retransmissions were spurious (RFC 4015 spirit).
  uint32_t reordering_ = 3;
  uint32_t undo_retrans_ = 0;   // retransmissions of this episode not yet D-SACKed
  Seq fack_at_recovery_;        // highest SACKed sequence when the episode began
  bool episode_was_rto_ = false;
  bool undo_possible_ = false;  // a cwnd reduction that a D-SACK may undo
  bool force_rtx_ = false;  // RFC 6675 4.3: first retransmission ignores pipe
  uint32_t dupacks_ = 0;
  // RTT sampling (RFC 6298 3, Karn's rule): the send time of recent new-data
  // segments, so most ACKs yield a sample (Linux takes one per ACK as well;
  // HyStart++ needs several per round). Cleared when anything is retransmitted.
  struct TxStamp {
    Seq end;
    Instant at;
  };
  static constexpr size_t kTxLog = 64;
  std::array<TxStamp, kTxLog> tx_log_{};
  size_t tx_log_head_ = 0, tx_log_len_ = 0;
  Duration last_rtt_sample_{-1};
  bool rtt_pending_ = false;  // handshake RTT only
  Seq rtt_seq_;
  Instant rtt_time_;
  Instant last_send_ = kNever;  // for idle restart
  bool cwnd_limited_ = false;

  // Timers.
  Instant rtx_deadline_ = kNever;       // RTO, SYN retransmit, persist
  Instant delack_deadline_ = kNever;
  Instant keepalive_deadline_ = kNever;
  Instant state_deadline_ = kNever;     // TIME_WAIT, FIN_WAIT_2, SYN-RECEIVED defer
  Instant cork_deadline_ = kNever;
  bool cork_expired_ = false;
  Instant cookie_sent_at_ = kNever;  // listener: last SYN cookie sent
  std::optional<Seq> ofo_fin_;       // a FIN that arrived ahead of missing data
  std::optional<SackBlock> dsack_;   // RFC 2883: duplicate data to report in the next ACK
  Instant last_oow_ack_ = kNever;    // last rate-limited out-of-window ACK
  Instant user_timeout_start_ = kNever;
  uint32_t retries_ = 0;                // consecutive RTOs (backoff)
  uint32_t probes_ = 0;                 // zero-window or keepalive probes unanswered
  bool persist_ = false;
  Instant last_rcv_;                    // any segment
  Instant last_data_rcv_, last_data_sent_, last_ack_rcv_, last_ack_sent_t_;

  // Delayed ACK (RFC 9293 3.8.6.3; Linux quick-ACK mode).
  bool ack_pending_ = false;
  bool ack_now_ = false;  // send the pending ACK before the entry point returns
  uint32_t rcv_unacked_bytes_ = 0;
  uint32_t quickacks_ = 0;
  // Linux icsk_ack.pingpong (tcp_pingpong_thresh = 1): interactive traffic,
  // so ACKs wait to ride on replies; quick ACKs are suppressed meanwhile.
  bool pingpong_ = false;

  // Listener and its queues (Linux: SYN queue = request socks, accept queue).
  TcpSocket* listener_ = nullptr;
  int backlog_ = 0;

 public:
  // Intrusive hooks: public because Boost.Intrusive names them in container types.
  TcpQueueHook queue_hook_;  // in the listener's SYN or accept queue
  TcpTableHook table_hook_;  // in the connection table
  TcpTimerHook timer_hook_;  // in the timer set
  Instant timer_key_ = kNever;
 private:
  using Queue = bi::list<TcpSocket, bi::member_hook<TcpSocket, TcpQueueHook, &TcpSocket::queue_hook_>,
                         bi::constant_time_size<false>>;
  Queue syn_q_;
  Queue accept_q_;
  size_t syn_q_len_ = 0;
  bool in_accept_q_ = false;
  bool defer_acked_ = false;       // TCP_DEFER_ACCEPT: handshake ACK seen, waiting for data
  uint32_t synack_retries_ = 0;

  // Per-connection counters for tcp_info.
  TcpInfo stats_;
};

}  // namespace xs
