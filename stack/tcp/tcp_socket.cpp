// Socket calls, options and lifecycle of a TCP socket. Error choices follow
// Linux (net/ipv4/af_inet.c, tcp.c) so the API layer can map them 1:1 to errno.
#include <algorithm>
#include <cstdio>

#include "stack/tcp/tcp_layer_impl.hpp"
#include "stack/tcp/tcp_socket.hpp"

namespace xs {

TcpSocket::TcpSocket(TcpLayerImpl& layer) : layer_(layer), rtt_(layer.cfg()) {
  const TcpConfig& c = layer.cfg();
  rcvbuf_ = c.rmem_default;
  sndbuf_ = c.wmem_default;
  opt_.zc_frames = c.rx_frames;
  cc_.select(c.default_cubic ? "cubic" : "reno", Instant{}, snd_mss_);
}

TcpSocket::~TcpSocket() = default;

uint8_t TcpSocket::wscale_for(uint32_t max_space) {
  // RFC 7323 2.2: the smallest shift that lets the largest buffer be advertised.
  uint8_t ws = 0;
  while (ws < kMaxWindowScale && (65535u << ws) < max_space) ws++;
  return ws;
}

void TcpSocket::inherit_from(const TcpSocket& l) {
  // Accepted sockets inherit the listener's options (Linux sk_clone_lock).
  opt_ = l.opt_;
  rcvbuf_ = l.rcvbuf_;
  sndbuf_ = l.sndbuf_;
  rcvbuf_locked_ = l.rcvbuf_locked_;
  sndbuf_locked_ = l.sndbuf_locked_;
  cc_.select(l.cc_.name(), Instant{}, snd_mss_);
}

void TcpSocket::set_state(TcpState s) {
  if (s == state_) return;
  // Linux forgets ping-pong mode (TCP_QUICKACK 0) on listen()
  // (inet_csk_listen_start -> inet_csk_delack_init) and on the SYN-ACK
  // (tcp_rcv_synsent_state_process -> tcp_enter_quickack_mode).
  if (s == TcpState::Listen || (state_ == TcpState::SynSent && s == TcpState::Established)) pingpong_ = false;
  if (state_ == TcpState::Established || state_ == TcpState::CloseWait) {
    if (s == TcpState::Closed) layer_.counters().tcp_estab_resets++;
  }
  if (state_ == TcpState::TimeWait) layer_.count_time_wait(false);
  if (s == TcpState::TimeWait) layer_.count_time_wait(true);
  state_ = s;
  notify();
}

void TcpSocket::notify() {
  if (observer_) observer_->on_socket_event(cookie_);
}

Seq TcpSocket::fin_seq() const { return snd_buf_seq_ + static_cast<uint32_t>(snd_buf_.size()); }

uint32_t TcpSocket::data_in_flight() const { return static_cast<uint32_t>(snd_nxt_ - snd_una_); }

size_t TcpSocket::bytes_unsent() const {
  if (state_ == TcpState::Closed || state_ == TcpState::Listen || state_ == TcpState::SynSent) return snd_buf_.size();
  int32_t sent = snd_nxt_ - snd_buf_seq_;
  if (sent < 0) sent = 0;
  size_t s = std::min<size_t>(static_cast<size_t>(sent), snd_buf_.size());
  return snd_buf_.size() - s;
}

void TcpSocket::compute_mss(uint16_t path_mtu) {
  pmtu_ = path_mtu;
  uint32_t from_mtu = path_mtu > 40 ? path_mtu - 40u : 536u;
  adv_mss_ = static_cast<uint16_t>(std::min<uint32_t>(from_mtu, opt_.user_mss ? opt_.user_mss : 65495));
  uint32_t mss = std::min<uint32_t>(peer_mss_, from_mtu);
  if (opt_.user_mss) mss = std::min<uint32_t>(mss, opt_.user_mss);
  // Timestamps take 12 bytes of every segment (Linux mss_cache excludes them).
  if (ts_ok_) mss -= 12;
  snd_mss_ = std::max<uint32_t>(mss, 64);
  cc_.get().set_mss(snd_mss_);
}

bool TcpSocket::ensure_rcv_capacity(size_t bytes) {
  // The ring grows on demand up to the receive buffer, so an idle connection
  // costs little memory; growth is amortised, never per segment in steady state.
  ByteRing& ring = rcv_q_.ring();
  if (bytes <= ring.capacity()) return true;
  // Growing moves the ring's bytes, and lent ones (zero-copy receive) must
  // stay where the application sees them: the caller takes only what fits.
  // Bytes lent from frames are not in the ring and do not pin it.
  if (rcv_lent_ > rcv_q_.frame_bytes()) return false;
  // Always at least double: the logical limit (rcvbuf_) may creep up a little
  // at a time under auto-tuning, and each growth copies the ring.
  ring.reserve(std::max(bytes, std::max<size_t>(ring.capacity() * 2, 16384)));
  return true;
}

// ---- socket calls -----------------------------------------------------------

Status<SockError> TcpSocket::bind(Endpoint local) {
  if (state_ != TcpState::Closed || bound_) return unexpected(SockError::InvalidArgument);
  auto r = layer_.bind(this, local);
  if (r && !local.addr.is_unspecified()) addr_explicit_ = true;
  return r;
}

void TcpSocket::forget_connect_source() {
  if (state_ == TcpState::Closed && !addr_explicit_) local_.addr = Ipv4Addr::any();
}

Status<SockError> TcpSocket::listen(int backlog) {
  if (state_ != TcpState::Closed && state_ != TcpState::Listen) return unexpected(SockError::InvalidArgument);
  // Linux: a backlog larger than somaxconn (or negative, as unsigned) is clamped.
  uint32_t b = static_cast<uint32_t>(backlog);
  if (b > layer_.cfg().somaxconn) b = layer_.cfg().somaxconn;
  backlog_ = static_cast<int>(b);
  if (state_ == TcpState::Listen) return {};
  if (!bound_) {
    auto r = layer_.bind(this, Endpoint{local_.addr, 0});
    if (!r) return r;
    bind_explicit_ = true;
  }
  auto r = layer_.start_listening(this);
  if (!r) return r;
  set_state(TcpState::Listen);
  return {};
}

Status<SockError> TcpSocket::connect(Instant now, Endpoint remote) {
  switch (state_) {
    case TcpState::SynSent:
    case TcpState::SynReceived: return unexpected(SockError::AlreadyInProgress);
    case TcpState::Closed: break;
    default: return unexpected(SockError::IsConnected);
  }
  if (remote.addr.is_broadcast() || remote.addr.is_multicast() || remote.addr.is_unspecified())
    return unexpected(SockError::NetUnreachable);
  auto r = layer_.bind_for_connect(this, remote);
  if (!r) return r;
  remote_ = remote;
  error_.reset();
  soft_error_.reset();
  fin_received_ = false;
  shutdown_ = 0;
  snd_up_.reset();
  urg_state_ = UrgState::None;
  const TcpConfig& c = layer_.cfg();
  iss_ = layer_.isn().isn(now, local_.addr, local_.port, remote.addr, remote.port);
  ts_offset_ = c.timestamps ? layer_.isn().ts_offset(local_.addr, remote.addr) : 0;
  snd_una_ = snd_nxt_ = iss_;
  snd_buf_seq_ = iss_ + 1;
  // Linux tcp_select_initial_window: the scale covers the larger of
  // tcp_rmem[2] and the buffer, but no more than TCP_WINDOW_CLAMP.
  uint32_t ws_space = std::max(c.rmem_max, rcvbuf_);
  if (opt_.window_clamp) ws_space = std::min(ws_space, opt_.window_clamp);
  rcv_wscale_ = c.window_scaling ? wscale_for(ws_space) : 0;
  peer_mss_ = 536;
  compute_mss(layer_.ip().path_mtu(remote.addr));
  layer_.insert_connection(this);
  set_state(TcpState::SynSent);
  connect_pending_ = true;
  layer_.counters().tcp_active_opens++;
  send_syn(now, false);
  snd_nxt_ = iss_ + 1;
  arm_rtx(now);
  layer_.reschedule(this);
  return unexpected(SockError::InProgress);
}

Expected<TcpSocket*, SockError> TcpSocket::accept(Instant now) {
  (void)now;
  if (state_ != TcpState::Listen) return unexpected(SockError::InvalidArgument);
  if (accept_q_.empty()) return unexpected(SockError::WouldBlock);
  TcpSocket* c = &accept_q_.front();
  accept_q_.pop_front();
  c->in_accept_q_ = false;
  c->listener_ = nullptr;
  return c;
}

void TcpSocket::move_to_accept_queue(Instant now) {
  (void)now;
  if (!listener_ || in_accept_q_) return;
  if (queue_hook_.is_linked()) {
    listener_->syn_q_.erase(listener_->syn_q_.iterator_to(*this));
    listener_->syn_q_len_--;
  }
  listener_->accept_q_.push_back(*this);
  in_accept_q_ = true;
  listener_->notify();
}

void TcpSocket::detach_from_listener() {
  if (!listener_) return;
  if (queue_hook_.is_linked()) {
    if (in_accept_q_) listener_->accept_q_.erase(listener_->accept_q_.iterator_to(*this));
    else { listener_->syn_q_.erase(listener_->syn_q_.iterator_to(*this)); listener_->syn_q_len_--; }
  }
  in_accept_q_ = false;
  listener_ = nullptr;
}

Expected<size_t, SockError> TcpSocket::send(Instant now, Bytes data, bool more, bool urgent) {
  // Linux tcp_sendmsg_locked + sk_stream_wait_connect.
  if (state_ != TcpState::Established && state_ != TcpState::CloseWait) {
    if (error_) return unexpected(*take_error());
    if (state_ == TcpState::SynSent || state_ == TcpState::SynReceived) return unexpected(SockError::WouldBlock);
    return unexpected(SockError::BrokenPipe);
  }
  if (error_) return unexpected(*take_error());
  if (shutdown_ & kSendShutdown) return unexpected(SockError::BrokenPipe);
  // A zero-copy reservation owns the free space push() would write into.
  if (snd_reserved_ > 0) return unexpected(SockError::Busy);
  if (data.empty()) return size_t{0};
  size_t room = snd_buf_.size() < sndbuf_ ? sndbuf_ - snd_buf_.size() : 0;
  if (room == 0) return unexpected(SockError::WouldBlock);
  size_t want = std::min(room, data.size());
  // TCP_NOTSENT_LOWAT (Linux sk_stream_memory_free via tcp_stream_memory_free):
  // queue more only while fewer unsent bytes than the mark wait; Linux then
  // fills one more skb, taken here as at most one segment past the mark.
  if (const uint32_t lowat = notsent_lowat(); lowat != UINT32_MAX) {
    const size_t unsent = bytes_unsent();
    if (unsent >= lowat) return unexpected(SockError::WouldBlock);
    want = std::min<size_t>(want, lowat - unsent + snd_mss_);
  }
  if (snd_buf_.free_space() < want) {
    // Physical capacity doubles (amortised); sndbuf_ bounds what is queued.
    snd_buf_.reserve(std::max(snd_buf_.size() + want, std::max<size_t>(snd_buf_.capacity() * 2, 16384)));
  }
  size_t n = snd_buf_.push(data.first(want));
  more_pending_ = more;
  if (!more) cork_expired_ = false;
  // Linux tcp_push -> tcp_mark_urg: SND.UP = write_seq, before the push, so
  // the segment carrying the urgent byte has URG (tcp_output.cpp).
  if (urgent && n > 0) snd_up_ = snd_buf_seq_ + static_cast<uint32_t>(snd_buf_.size());
  transmit(now);
  layer_.reschedule(this);
  return n;
}

Expected<size_t, SockError> TcpSocket::recv(Instant now, MutBytes out, bool peek, size_t peek_off) {
  if (state_ == TcpState::Listen) return unexpected(SockError::NotConnected);
  // SO_PEEK_OFF (tcp_recvmsg_locked): a peek starts `peek_off` bytes in.
  const size_t start = peek ? peek_off : 0;
  if (rcv_q_.size() > rcv_lent_ + start) {
    if (out.empty()) return size_t{0};
    // The queue frees bytes only from its front, where lent bytes sit: a
    // consuming read must wait until they are released (MSG_PEEK may look).
    if (rcv_lent_ > 0 && !peek) return unexpected(SockError::Busy);
    const size_t avail = rcv_q_.size() - rcv_lent_;
    size_t skip = start;
    if (urg_state_ != UrgState::None) {
      // Linux tcp_recvmsg: a read stops before the urgent byte; one starting
      // at it passes over it unless SO_OOBINLINE (it is read with MSG_OOB).
      const uint32_t urg_off = static_cast<uint32_t>(urg_seq_ - read_seq());
      if (urg_off < avail && urg_off >= start) {
        if (urg_off > start) out = out.first(std::min<size_t>(out.size(), urg_off - start));
        else if (!opt_.oobinline) skip = start + 1;
      }
    }
    size_t n = skip < avail ? rcv_q_.read(out, rcv_lent_ + skip) : 0;
    if (!peek) {
      rcv_q_.consume(skip + n);
      urg_after_read();
      after_rcv_consume(now, skip + n);
    }
    if (n > 0) return n;
    // Only the skipped urgent byte was queued: as if nothing were (below).
  }
  if (fin_received_) return size_t{0};
  if (error_) return unexpected(*take_error());
  if (shutdown_ & kRcvShutdown) return size_t{0};
  if (state_ == TcpState::Closed) return unexpected(SockError::NotConnected);
  return unexpected(SockError::WouldBlock);
}

Expected<std::optional<uint8_t>, SockError> TcpSocket::recv_urgent(bool peek) {
  // Linux tcp_recvmsg_locked (LISTEN: ENOTCONN), then tcp_recv_urg.
  if (state_ == TcpState::Listen) return unexpected(SockError::NotConnected);
  if (opt_.oobinline || urg_state_ == UrgState::None || urg_state_ == UrgState::Read)
    return unexpected(SockError::InvalidArgument);
  if (state_ == TcpState::Closed && !fin_received_) return unexpected(SockError::NotConnected);
  if (urg_state_ == UrgState::Valid) {
    if (!peek) urg_state_ = UrgState::Read;
    return std::optional<uint8_t>(urg_byte_);
  }
  if (state_ == TcpState::Closed || (shutdown_ & kRcvShutdown)) return std::optional<uint8_t>();
  // "this call should never block, independent of the blocking state of the socket"
  return unexpected(SockError::WouldBlock);
}

bool TcpSocket::at_urgent_mark() const {
  return urg_state_ != UrgState::None && urg_seq_ == read_seq();
}

bool TcpSocket::has_normal_data() const {
  return bytes_readable() > (at_urgent_mark() && !opt_.oobinline ? 1u : 0u);
}

size_t TcpSocket::inq() const {
  if (state_ == TcpState::SynSent || state_ == TcpState::SynReceived) return 0;
  const Seq rd = read_seq();
  if (opt_.oobinline || urg_state_ == UrgState::None || urg_seq_ < rd || urg_seq_ >= rd + static_cast<uint32_t>(bytes_readable()))
    return bytes_readable();
  return static_cast<uint32_t>(urg_seq_ - rd);
}

void TcpSocket::urg_after_read() {
  // Linux tcp_recvmsg: once copied_seq passes urg_seq the urgent data is
  // over, read with MSG_OOB or not (an unread urgent byte is lost).
  if (urg_state_ != UrgState::None && read_seq() > urg_seq_) urg_state_ = UrgState::None;
}

void TcpSocket::after_rcv_consume(Instant now, size_t n) {
  rcv_space_adjust(now, n);
  // RFC 9293 3.8.6.2.2: tell the peer once the window has opened by a
  // useful amount (at least an MSS or half the buffer), not byte by byte.
  if (state_ == TcpState::Established || state_ == TcpState::FinWait1 || state_ == TcpState::FinWait2) {
    uint32_t adv = rcv_adv_ > rcv_nxt_ ? static_cast<uint32_t>(rcv_adv_ - rcv_nxt_) : 0;
    uint32_t space = std::min<uint32_t>(receive_space(), 65535u << rcv_wscale_);
    if (space > adv && space - adv >= std::min<uint32_t>(full_space() / 2, 2 * rcv_mss_)) {
      send_ack(now);
    }
  }
  layer_.reschedule(this);
}

// ---- zero-copy ------------------------------------------------------------------

Expected<size_t, SockError> TcpSocket::zc_borrow(size_t max_len, std::span<Bytes> out) {
  // Same order of checks as recv(): queued data first, then end of stream,
  // then a pending error.
  if (state_ == TcpState::Listen) return unexpected(SockError::NotConnected);
  const size_t avail = rcv_q_.size() - rcv_lent_;
  if (avail > 0 && max_len > 0 && !out.empty()) {
    // The first loan of ring bytes pins the ring: grow it to the whole
    // receive buffer now, while nothing in it is lent, so the window need not
    // shrink below rcvbuf because the ring may no longer grow.
    ByteRing& ring = rcv_q_.ring();
    if (rcv_lent_ <= rcv_q_.frame_bytes() && ring.capacity() < rcvbuf_) ring.reserve(rcvbuf_);
    const size_t n = rcv_q_.segments(rcv_lent_, std::min(avail, max_len), out);
    for (size_t i = 0; i < n; ++i) rcv_lent_ += out[i].size();
    urg_after_read();  // lent bytes are read; the urgent byte is lent inline
    return n;
  }
  if (avail > 0) return size_t{0};  // nothing asked for
  if (fin_received_) return size_t{0};
  if (error_) return unexpected(*take_error());
  if (shutdown_ & kRcvShutdown) return size_t{0};
  if (state_ == TcpState::Closed) return unexpected(SockError::NotConnected);
  return unexpected(SockError::WouldBlock);
}

void TcpSocket::set_zc_frames(bool on) {
  opt_.zc_frames = on;  // the frame list is allocated with the first frame (process_data)
}

Status<SockError> TcpSocket::zc_release(Instant now, size_t n) {
  if (n > rcv_lent_) return unexpected(SockError::InvalidArgument);
  if (n == 0) return {};
  rcv_q_.consume(n);
  rcv_lent_ -= n;
  after_rcv_consume(now, n);
  return {};
}

Expected<std::array<MutBytes, 2>, SockError> TcpSocket::zc_reserve(size_t len) {
  // The checks of send(): Linux tcp_sendmsg_locked + sk_stream_wait_connect.
  if (state_ != TcpState::Established && state_ != TcpState::CloseWait) {
    if (error_) return unexpected(*take_error());
    if (state_ == TcpState::SynSent || state_ == TcpState::SynReceived) return unexpected(SockError::WouldBlock);
    return unexpected(SockError::BrokenPipe);
  }
  if (error_) return unexpected(*take_error());
  if (shutdown_ & kSendShutdown) return unexpected(SockError::BrokenPipe);
  if (len == 0) return unexpected(SockError::InvalidArgument);
  snd_reserved_ = 0;  // a new reservation replaces the open one
  size_t room = snd_buf_.size() < sndbuf_ ? sndbuf_ - snd_buf_.size() : 0;
  if (room == 0) return unexpected(SockError::WouldBlock);
  const size_t want = std::min(room, len);
  if (snd_buf_.free_space() < want) {
    // As in send(). reserve() keeps bytes beyond size() at their offsets, so
    // what was written into a replaced reservation survives the move.
    snd_buf_.reserve(std::max(snd_buf_.size() + want, std::max<size_t>(snd_buf_.capacity() * 2, 16384)));
  }
  std::array<MutBytes, 2> w = snd_buf_.writable();
  const size_t first = std::min(want, w[0].size());
  snd_reserved_ = want;
  return std::array<MutBytes, 2>{w[0].first(first), w[1].first(want - first)};
}

Expected<size_t, SockError> TcpSocket::zc_commit(Instant now, size_t n, bool more) {
  if (n > snd_reserved_) return unexpected(SockError::InvalidArgument);
  snd_reserved_ = 0;
  // The connection may have failed or been shut down since the reservation:
  // report it as send() would, and drop the reserved bytes.
  if (state_ != TcpState::Established && state_ != TcpState::CloseWait) {
    if (error_) return unexpected(*take_error());
    return unexpected(SockError::BrokenPipe);
  }
  if (error_) return unexpected(*take_error());
  if (shutdown_ & kSendShutdown) return unexpected(SockError::BrokenPipe);
  if (n == 0) return size_t{0};
  // The bytes are already in place after the queued data: queueing them is
  // only making them part of the send queue (what push() does after its copy).
  snd_buf_.commit(n);
  more_pending_ = more;
  if (!more) cork_expired_ = false;
  transmit(now);
  layer_.reschedule(this);
  return n;
}

Status<SockError> TcpSocket::shutdown(Instant now, bool rd, bool wr) {
  // Linux inet_shutdown.
  switch (state_) {
    case TcpState::Closed:
      shutdown_ |= (rd ? kRcvShutdown : 0) | (wr ? kSendShutdown : 0);
      notify();
      return unexpected(SockError::NotConnected);
    case TcpState::Listen:
      if (!rd) return {};
      [[fallthrough]];
    case TcpState::SynSent:
      // disconnect(): a listener stops listening, a connect attempt is abandoned.
      if (state_ == TcpState::Listen) {
        layer_.stop_listening(this);
        while (!syn_q_.empty() || !accept_q_.empty()) {
          TcpSocket* c = !syn_q_.empty() ? &syn_q_.front() : &accept_q_.front();
          c->detach_from_listener();
          c->abort_with_rst(now, SockError::ConnectionReset);
          c->user_closed_ = true;
          layer_.defer_destroy(c);
        }
      } else {
        layer_.remove_connection(this);
        // tcp_disconnect: an abandoned connect reports ECONNRESET (SO_ERROR,
        // POLLERR), as the connect's own failure would.
        error_ = SockError::ConnectionReset;
      }
      set_state(TcpState::Closed);
      rtx_deadline_ = kNever;
      return {};
    default: break;
  }
  shutdown_ |= (rd ? kRcvShutdown : 0) | (wr ? kSendShutdown : 0);
  if (wr && !fin_queued_ &&
      (state_ == TcpState::Established || state_ == TcpState::CloseWait || state_ == TcpState::SynReceived)) {
    fin_queued_ = true;
    set_state(state_ == TcpState::CloseWait ? TcpState::LastAck : TcpState::FinWait1);
    transmit(now);
  }
  notify();
  layer_.reschedule(this);
  return {};
}

void TcpSocket::close(Instant now) {
  user_closed_ = true;
  observer_ = nullptr;
  // Zero-copy loans end with the descriptor: lent bytes were delivered to
  // the application (they are read, not unread data), a reservation is dropped.
  rcv_q_.consume(rcv_lent_);
  rcv_lent_ = 0;
  snd_reserved_ = 0;
  detach_from_listener();
  switch (state_) {
    case TcpState::Listen:
      (void)shutdown(now, true, false);
      layer_.defer_destroy(this);
      return;
    case TcpState::Closed:
    case TcpState::SynSent:
      layer_.remove_connection(this);
      state_ = TcpState::Closed;
      layer_.defer_destroy(this);
      return;
    default: break;
  }
  // Linux tcp_close: unread data means the peer's data was lost, so say so
  // with a RST instead of a FIN (RFC 9293 3.10.4, RFC 2525 2.17).
  if (!rcv_q_.empty() || !ofo_.empty()) {
    layer_.counters().tcp_abort_on_close++;
    abort_with_rst(now, SockError::ConnectionReset);
    layer_.defer_destroy(this);
    return;
  }
  if (opt_.linger_on && opt_.linger_seconds == 0) {
    layer_.counters().tcp_abort_on_linger++;
    if (state_ != TcpState::TimeWait) abort_with_rst(now, SockError::ConnectionReset);
    else reset_connection(now, SockError::ConnectionReset);
    layer_.defer_destroy(this);
    return;
  }
  shutdown_ = kRcvShutdown | kSendShutdown;
  if (!fin_queued_ && (state_ == TcpState::Established || state_ == TcpState::CloseWait ||
                       state_ == TcpState::SynReceived)) {
    fin_queued_ = true;
    set_state(state_ == TcpState::CloseWait ? TcpState::LastAck : TcpState::FinWait1);
    transmit(now);
  }
  if (state_ == TcpState::FinWait2) {
    // Linux tcp_close: with TCP_LINGER2 < 0 an orphan in FIN_WAIT_2 is reset
    // at once; otherwise it waits tcp_fin_time() for the peer's FIN.
    if (opt_.linger2 < 0) {
      layer_.counters().tcp_abort_on_linger++;
      abort_with_rst(now, SockError::ConnectionReset);
      layer_.defer_destroy(this);
      return;
    }
    state_deadline_ = now + fin_wait2_timeout();
  }
  if (state_ == TcpState::Closed) layer_.defer_destroy(this);
  layer_.reschedule(this);
}

void TcpSocket::reset_connection(Instant now, SockError err) {
  (void)now;
  if (state_ != TcpState::Listen) error_ = err;
  layer_.remove_connection(this);
  shutdown_ = kRcvShutdown | kSendShutdown;
  rtx_deadline_ = delack_deadline_ = keepalive_deadline_ = state_deadline_ = cork_deadline_ = kNever;
  persist_ = false;
  snd_buf_.clear();
  fin_queued_ = false;
  snd_up_.reset();
  recovery_ = Recovery::None;
  sb_.reset();
  set_state(TcpState::Closed);
  if (listener_ && !in_accept_q_) {
    // A connection that dies before accept() is forgotten (Linux reqsk drop).
    detach_from_listener();
    user_closed_ = true;
  }
  if (user_closed_) layer_.defer_destroy(this);
}

void TcpSocket::abort_with_rst(Instant now, SockError err) {
  if (state_ != TcpState::Closed && state_ != TcpState::Listen && state_ != TcpState::SynSent &&
      state_ != TcpState::TimeWait) {
    send_rst(now);
  }
  reset_connection(now, err);
}

std::optional<SockError> TcpSocket::take_error() {
  auto e = error_;
  error_.reset();
  return e;
}

// ---- options ------------------------------------------------------------------

void TcpSocket::set_nodelay(Instant now, bool on) {
  opt_.nodelay = on;
  // Linux: setting TCP_NODELAY pushes pending data at once.
  if (on) transmit(now);
  layer_.reschedule(this);
}

void TcpSocket::set_cork(Instant now, bool on) {
  opt_.cork = on;
  if (!on) {
    cork_deadline_ = kNever;
    cork_expired_ = false;
    transmit(now);
    layer_.reschedule(this);
  }
}

void TcpSocket::set_keepalive(Instant now, bool on) {
  opt_.keepalive = on;
  probes_ = 0;
  if (on) arm_keepalive(now);
  else keepalive_deadline_ = kNever;
  layer_.reschedule(this);
}

void TcpSocket::set_quickack(bool on) {
  // TCP_QUICKACK: leave (or enter) delayed-ACK mode for the next ACKs.
  quickacks_ = on ? 16 : 0;
  pingpong_ = !on;
}

void TcpSocket::set_quickack(Instant now, int val) {
  set_quickack(val != 0);
  // Linux __tcp_sock_set_quickack: a nonzero value also sends an ACK being
  // delayed now (ICSK_ACK_PUSHED + tcp_cleanup_rbuf); an even one then
  // returns to ping-pong mode.
  if (val != 0 && ack_pending_ && (state_ == TcpState::Established || state_ == TcpState::CloseWait)) {
    send_ack(now);
    if (!(val & 1)) pingpong_ = true;
  }
}

void TcpSocket::set_rcvbuf(uint32_t bytes) {
  // Linux sock_setsockopt SO_RCVBUF: min(val, rmem_max) * 2, at least SOCK_MIN_RCVBUF.
  uint32_t v = std::min(bytes, layer_.cfg().core_rmem_max);
  rcvbuf_ = std::max<uint32_t>(v * 2, 2304);
  rcvbuf_locked_ = true;
}

void TcpSocket::set_sndbuf(uint32_t bytes) {
  uint32_t v = std::min(bytes, layer_.cfg().core_wmem_max);
  sndbuf_ = std::max<uint32_t>(v * 2, 4608);
  sndbuf_locked_ = true;
}

Status<SockError> TcpSocket::set_window_clamp(int bytes) {
  if (bytes == 0) {
    if (state_ != TcpState::Closed) return unexpected(SockError::InvalidArgument);
    opt_.window_clamp = 0;
    return {};
  }
  // Linux sends no window update here: the next ACK carries the new window.
  opt_.window_clamp = static_cast<uint32_t>(std::max(bytes, 2304 / 2));  // SOCK_MIN_RCVBUF / 2
  return {};
}

uint32_t TcpSocket::window_clamp() const {
  if (opt_.window_clamp || state_ == TcpState::Closed || state_ == TcpState::Listen) return opt_.window_clamp;
  return std::min(full_space(), 65535u << rcv_wscale_);
}

Status<SockError> TcpSocket::set_maxseg(uint32_t mss) {
  // Linux do_tcp_setsockopt TCP_MAXSEG: 0 resets; otherwise 88..65535 (TCP_MIN_MSS = 88).
  if (mss != 0 && (mss < 88 || mss > 65535)) return unexpected(SockError::InvalidArgument);
  opt_.user_mss = static_cast<uint16_t>(mss);
  if (state_ != TcpState::Closed && state_ != TcpState::Listen) compute_mss(pmtu_);
  return {};
}

uint32_t TcpSocket::maxseg() const {
  // Linux: before the connection exists TCP_MAXSEG reads back the user value or
  // the default 536; afterwards the current MSS.
  if (state_ == TcpState::Closed || state_ == TcpState::Listen) return opt_.user_mss ? opt_.user_mss : 536;
  return snd_mss_;
}

Status<SockError> TcpSocket::set_congestion(Instant now, std::string_view name) {
  if (!CcHolder::is_known(name)) return unexpected(SockError::NotFound);
  // CcHolder keeps cwnd/ssthresh across the switch (Linux tcp_reinit_congestion_control).
  cc_.select(name, now, snd_mss_);
  return {};
}

// ---- readiness ----------------------------------------------------------------

uint32_t TcpSocket::readiness() const {
  // Linux tcp_poll, line by line.
  if (state_ == TcpState::Listen) return accept_q_.empty() ? 0 : (ev::kIn | ev::kRdNorm);
  uint32_t mask = 0;
  if (shutdown_ == (kRcvShutdown | kSendShutdown) || state_ == TcpState::Closed) mask |= ev::kHup;
  if (shutdown_ & kRcvShutdown) mask |= ev::kIn | ev::kRdNorm | ev::kRdHup;
  if (state_ != TcpState::SynSent && state_ != TcpState::SynReceived) {
    // At the mark without SO_OOBINLINE the urgent byte is not readable data.
    const size_t target = std::max<uint32_t>(opt_.rcvlowat, 1) + (at_urgent_mark() && !opt_.oobinline ? 1 : 0);
    if (bytes_readable() >= target) mask |= ev::kIn | ev::kRdNorm;
    if (!(shutdown_ & kSendShutdown)) {
      // __sk_stream_is_writeable(sk, 1): free space at least half of what is
      // queued, and (tcp_stream_memory_free with wake = 1) twice the unsent
      // bytes below TCP_NOTSENT_LOWAT.
      size_t queued = snd_buf_.size();
      size_t free_space = sndbuf_ > queued ? sndbuf_ - queued : 0;
      const bool notsent_ok = (uint64_t{bytes_unsent()} << 1) < notsent_lowat();
      if (free_space >= queued / 2 && free_space > 0 && notsent_ok) mask |= ev::kOut | ev::kWrNorm;
    } else {
      mask |= ev::kOut | ev::kWrNorm;
    }
  }
  if (urg_state_ == UrgState::Valid) mask |= ev::kPri;  // urg_data & TCP_URG_VALID
  if (error_) mask |= ev::kErr;
  return mask;
}

// ---- tcp_info -------------------------------------------------------------------

TcpInfo TcpSocket::info(Instant now) const {
  TcpInfo i = stats_;
  auto ms_since = [&](Instant t) -> uint32_t {
    if (t.us == 0) return static_cast<uint32_t>(now.us / 1000);
    return static_cast<uint32_t>((now - t).us / 1000);
  };
  i.state = linux_state_number(state_);
  i.reordering = reordering_;
  i.ca_state = recovery_ == Recovery::None ? (dupacks_ ? 1 : 0) : (recovery_ == Recovery::Fast ? 3 : 4);
  i.retransmits = static_cast<uint8_t>(std::min<uint32_t>(retries_, 255));
  i.probes = static_cast<uint8_t>(std::min<uint32_t>(probes_, 255));
  i.backoff = static_cast<uint8_t>(std::min<uint32_t>(retries_, 255));
  i.options = (ts_ok_ ? tcpi_opt::kTimestamps : 0) | (sack_ok_ ? tcpi_opt::kSack : 0) |
              (ws_ok_ ? tcpi_opt::kWscale : 0);
  i.snd_wscale = snd_wscale_;
  i.rcv_wscale = rcv_wscale_;
  i.rto_us = static_cast<uint32_t>(rtt_.rto().us);
  i.ato_us = static_cast<uint32_t>(layer_.cfg().delack_min.us);
  i.snd_mss = snd_mss_;
  i.rcv_mss = rcv_mss_;
  uint32_t mss = std::max<uint32_t>(snd_mss_, 1);
  i.unacked = (data_in_flight() + mss - 1) / mss;
  i.sacked = (sb_.sacked_bytes() + mss - 1) / mss;
  i.last_data_sent_ms = ms_since(last_data_sent_);
  i.last_ack_sent_ms = 0;
  i.last_data_recv_ms = ms_since(last_data_rcv_);
  i.last_ack_recv_ms = ms_since(last_ack_rcv_);
  i.pmtu = pmtu_;
  i.rcv_ssthresh = receive_space();
  i.rtt_us = static_cast<uint32_t>(rtt_.srtt().us);
  i.rttvar_us = static_cast<uint32_t>(rtt_.rttvar().us);
  uint32_t ssth = cc_.get().ssthresh();
  i.snd_ssthresh = ssth >= 0x7fffffff ? 0x7fffffff : ssth / mss;
  i.snd_cwnd = cc_.get().cwnd() / mss;
  i.advmss = adv_mss_;
  i.rcv_rtt_us = static_cast<uint32_t>(rcv_rtt_.us);
  i.rcv_space = rcvq_space_;
  i.notsent_bytes = static_cast<uint32_t>(bytes_unsent());
  i.min_rtt_us = rtt_.has_sample() ? static_cast<uint32_t>(rtt_.min_rtt().us) : 0;
  i.snd_wnd = snd_wnd_;
  i.rcv_wnd = rcv_adv_ > rcv_nxt_ ? static_cast<uint32_t>(rcv_adv_ - rcv_nxt_) : 0;
  i.snd_queue_bytes = static_cast<uint32_t>(snd_buf_.size());
  i.rcv_queue_bytes = static_cast<uint32_t>(rcv_q_.size());
  return i;
}

void TcpSocket::rcv_space_adjust(Instant now, size_t copied) {
  // Linux tcp_rcv_space_adjust (dynamic right-sizing): once per RTT, if the
  // application drained more than the current space, grow the buffer to twice
  // what it drained, so the window keeps up with the bandwidth-delay product.
  if (rcvbuf_locked_ || !layer_.cfg().moderate_rcvbuf) return;
  rcvq_space_copied_ += static_cast<uint32_t>(copied);
  Duration rtt = rtt_.has_sample() ? rtt_.srtt() : (rcv_rtt_.us > 0 ? rcv_rtt_ : Duration{0});
  if (rtt.us <= 0) rtt = millis(1);
  if (now - rcvq_time_ < rtt) return;
  uint32_t copied_rtt = rcvq_space_copied_;
  rcvq_space_copied_ = 0;
  rcvq_time_ = now;
  if (copied_rtt <= rcvq_space_) return;
  rcvq_space_ = copied_rtt;
  uint64_t want = uint64_t(copied_rtt) * 4;
  uint32_t target = static_cast<uint32_t>(std::min<uint64_t>(want, layer_.cfg().rmem_max));
  if (target > rcvbuf_) rcvbuf_ = target;
}

void TcpSocket::expand_sndbuf() {
  // Linux tcp_sndbuf_expand: room for two congestion windows of data.
  if (sndbuf_locked_) return;
  uint64_t want = uint64_t(std::max<uint32_t>(cc_.get().cwnd(), 10 * snd_mss_)) * 2;
  uint32_t target = static_cast<uint32_t>(std::min<uint64_t>(want, layer_.cfg().wmem_max));
  if (target > sndbuf_) {
    sndbuf_ = target;
    notify();
  }
}

std::string TcpSocket::debug_string() const {
  char b[512];
  std::snprintf(b, sizeof b,
                "%s una=%u nxt=%u sndq=%zu wnd=%u rcv_nxt=%u adv=%u rcvq=%zu ofo=%zu/%u rec=%d hrxt=%u rp=%u "
                "sacked=%u ranges=%zu dup=%u cwnd=%u rto=%lld retries=%u rtx@%lld persist=%d",
                to_string(state_), snd_una_.raw() - iss_.raw(), snd_nxt_.raw() - iss_.raw(), snd_buf_.size(),
                snd_wnd_, rcv_nxt_.raw() - irs_.raw(), rcv_adv_.raw() - irs_.raw(), rcv_q_.size(),
                ofo_.range_count(), ofo_.total_bytes(), int(recovery_), high_rxt_.raw() - iss_.raw(),
                recovery_point_.raw() - iss_.raw(), sb_.sacked_bytes(), sb_.range_count(), dupacks_,
                cc_.get().cwnd(), (long long)rtt_.rto().us, retries_, (long long)rtx_deadline_.us, int(persist_));
  return b;
}

Instant TcpSocket::next_deadline() const {
  return min(min(min(rtx_deadline_, delack_deadline_), min(keepalive_deadline_, state_deadline_)), cork_deadline_);
}

}  // namespace xs
