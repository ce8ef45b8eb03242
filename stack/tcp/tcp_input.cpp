// Segment arrival (RFC 9293 3.10.7), one handler per group of states.
#include <algorithm>

#include "stack/tcp/tcp_layer_impl.hpp"
#include "stack/tcp/tcp_socket.hpp"
#include "stack/wire/icmp.hpp"

namespace xs {

namespace {
constexpr Duration kPawsIdle = seconds(24 * 24 * 3600);  // RFC 7323 5.5: 24 days
}

void TcpSocket::take_peer_options(const TcpRepr& syn) {
  const TcpConfig& c = layer_.cfg();
  // RFC 9293 3.7.1: without an MSS option assume 536.
  peer_mss_ = syn.opts.mss.value_or(536);
  if (peer_mss_ < 88) peer_mss_ = 88;
  // RFC 7323 2.2: scaling is used only if both sides sent the option.
  ws_ok_ = c.window_scaling && syn.opts.wscale.has_value();
  if (ws_ok_) {
    snd_wscale_ = std::min<uint8_t>(*syn.opts.wscale, kMaxWindowScale);
  } else {
    snd_wscale_ = 0;
    rcv_wscale_ = 0;
  }
  ts_ok_ = c.timestamps && syn.opts.ts.has_value();
  if (ts_ok_) {
    ts_recent_ = syn.opts.ts->val;
    ts_recent_stamp_ = last_rcv_;
  }
  sack_ok_ = c.sack && syn.opts.sack_permitted;
}

void TcpSocket::on_passive_syn(Instant now, const TcpRepr& syn, std::optional<Seq> isn_override) {
  const TcpConfig& c = layer_.cfg();
  last_rcv_ = now;
  irs_ = syn.seq;
  rcv_nxt_ = syn.seq + 1;
  rcv_adv_ = rcv_nxt_;
  iss_ = isn_override ? *isn_override : layer_.isn().isn(now, local_.addr, local_.port, remote_.addr, remote_.port);
  ts_offset_ = c.timestamps ? layer_.isn().ts_offset(local_.addr, remote_.addr) : 0;
  snd_una_ = snd_nxt_ = iss_;
  snd_buf_seq_ = iss_ + 1;
  // tcp_select_initial_window: the scale covers the largest buffer, within
  // TCP_WINDOW_CLAMP (inherited from the listener).
  uint32_t ws_space = std::max(c.rmem_max, rcvbuf_);
  if (opt_.window_clamp) ws_space = std::min(ws_space, opt_.window_clamp);
  rcv_wscale_ = c.window_scaling ? wscale_for(ws_space) : 0;
  take_peer_options(syn);
  snd_wnd_ = syn.window;  // RFC 7323 2.2: the window in a SYN is never scaled
  max_snd_wnd_ = snd_wnd_;
  snd_wl1_ = syn.seq;
  snd_wl2_ = iss_;
  compute_mss(layer_.ip().path_mtu(remote_.addr));
  stats_.segs_in++;
  set_state(TcpState::SynReceived);
  send_syn(now, true);
  snd_nxt_ = iss_ + 1;
  arm_rtx(now);
}

void TcpSocket::on_cookie_ack(Instant now, const TcpRepr& ack, uint16_t mss,
                              const std::optional<CookieTsOptions>& tso) {
  const TcpConfig& c = layer_.cfg();
  last_rcv_ = now;
  irs_ = ack.seq - 1;
  rcv_nxt_ = ack.seq;
  rcv_adv_ = rcv_nxt_;
  iss_ = ack.ack - 1;
  ts_offset_ = c.timestamps ? layer_.isn().ts_offset(local_.addr, remote_.addr) : 0;
  snd_una_ = snd_nxt_ = ack.ack;
  snd_buf_seq_ = ack.ack;
  peer_mss_ = mss;
  ts_ok_ = tso.has_value();
  if (ts_ok_) {
    ts_recent_ = ack.opts.ts->val;
    ts_recent_stamp_ = now;
  }
  ws_ok_ = tso && tso->wscale.has_value();
  snd_wscale_ = ws_ok_ ? std::min<uint8_t>(*tso->wscale, kMaxWindowScale) : 0;
  uint32_t ws_space = std::max(c.rmem_max, rcvbuf_);
  if (opt_.window_clamp) ws_space = std::min(ws_space, opt_.window_clamp);
  rcv_wscale_ = ws_ok_ ? wscale_for(ws_space) : 0;
  sack_ok_ = tso && tso->sack && c.sack;
  snd_wnd_ = uint32_t(ack.window) << snd_wscale_;
  max_snd_wnd_ = snd_wnd_;
  snd_wl1_ = ack.seq;
  snd_wl2_ = ack.ack;
  compute_mss(layer_.ip().path_mtu(remote_.addr));
  stats_.segs_in++;
  enter_established(now);
  move_to_accept_queue(now);
  if (!ack.payload.empty() || ack.has(tcpflag::kFin)) {
    process_urg(ack);
    process_data(now, ack);
    if (ack.has(tcpflag::kFin)) process_fin(now);
  }
}

void TcpSocket::enter_established(Instant now) {
  set_state(TcpState::Established);
  connect_pending_ = false;
  cc_.get().init(now, snd_mss_);
  rcvq_time_ = now;
  rcvq_space_ = std::min<uint32_t>(rcvbuf_, 10 * adv_mss_);
  // Linux starts in quick-ACK mode so slow start is not slowed by delayed ACKs.
  quickacks_ = 16;
  arm_keepalive(now);
  expand_sndbuf();
}

void TcpSocket::on_segment(Instant now, const TcpRepr& seg) {
  stats_.segs_in++;
  if (!seg.payload.empty()) stats_.data_segs_in++;
  switch (state_) {
    case TcpState::Closed:
    case TcpState::Listen:
      layer_.send_reset_reply(now, local_.addr, remote_.addr, seg);
      return;
    case TcpState::SynSent:
      on_segment_syn_sent(now, seg);
      return;
    default:
      on_segment_synchronized(now, seg);
      return;
  }
}

// RFC 9293 3.10.7.3 (SYN-SENT).
void TcpSocket::on_segment_syn_sent(Instant now, const TcpRepr& seg) {
  // First, check the ACK: it must acknowledge our SYN exactly.
  bool ack_ok = false;
  if (seg.has(tcpflag::kAck)) {
    if (seg.ack <= iss_ || seg.ack > snd_nxt_) {
      if (!seg.has(tcpflag::kRst)) layer_.send_reset_reply(now, local_.addr, remote_.addr, seg);
      return;
    }
    ack_ok = true;
  }
  // Second, the RST: only believed with an acceptable ACK (RFC 5961 3.2 note).
  if (seg.has(tcpflag::kRst)) {
    if (ack_ok) {
      layer_.counters().tcp_attempt_fails++;
      reset_connection(now, SockError::ConnectionRefused);
    }
    return;
  }
  if (!seg.has(tcpflag::kSyn)) return;
  last_rcv_ = now;
  irs_ = seg.seq;
  rcv_nxt_ = seg.seq + 1;
  rcv_adv_ = rcv_nxt_;
  take_peer_options(seg);
  if (ts_ok_) {
    ts_recent_ = seg.opts.ts->val;
    ts_recent_stamp_ = now;
  }
  compute_mss(pmtu_);
  if (ack_ok) {
    snd_una_ = seg.ack;
    snd_buf_seq_ = snd_una_;
    // RTT of the handshake (Karn: only if the SYN was not retransmitted).
    if (retries_ == 0 && rtt_pending_) rtt_.on_sample(now, now - rtt_time_);
    // RFC 6298 5.7: a retransmitted SYN with no RTT sample leaves a 3 s RTO.
    else if (retries_ > 0 && !rtt_.has_sample()) rtt_.use_syn_fallback();
    rtt_pending_ = false;
    retries_ = 0;
    rtt_.reset_backoff();
    rtx_deadline_ = kNever;
    snd_wnd_ = uint32_t(seg.window);  // SYN windows are not scaled (RFC 7323 2.2)
    max_snd_wnd_ = snd_wnd_;
    snd_wl1_ = seg.seq;
    snd_wl2_ = seg.ack;
    enter_established(now);
    send_ack(now);
    transmit(now);
    return;
  }
  // Simultaneous open (RFC 9293 figure 7): answer SYN with SYN-ACK.
  snd_wnd_ = seg.window;
  max_snd_wnd_ = snd_wnd_;
  snd_wl1_ = seg.seq;
  set_state(TcpState::SynReceived);
  snd_nxt_ = iss_;
  send_syn(now, true);
  snd_nxt_ = iss_ + 1;
  arm_rtx(now);
}

void TcpSocket::send_oow_ack(Instant now, const TcpRepr& seg) {
  // Linux tcp_oow_rate_limited (tcp_invalid_ratelimit = 500 ms): a segment
  // without data (or a SYN) outside the window is answered at most twice a
  // second per socket, so two stacks cannot ping-pong ACKs forever. Data
  // segments are always answered: that ACK (and its D-SACK) is useful.
  bool dataless = seg.payload.empty() || seg.has(tcpflag::kSyn);
  if (dataless && last_oow_ack_ != kNever && now - last_oow_ack_ < millis(500)) return;
  if (dataless) last_oow_ack_ = now;
  send_ack(now);
}

void TcpSocket::note_duplicate(const TcpRepr& seg) {
  // RFC 2883 4.1 (Linux tcp_send_dupack): old data is reported back in a
  // D-SACK block so the sender can tell a late original from a loss.
  if (!sack_ok_ || seg.payload.empty() || !(seg.seq < rcv_nxt_)) return;
  Seq end = seg.seq + static_cast<uint32_t>(seg.payload.size());
  dsack_ = SackBlock{seg.seq, seq_min(end, rcv_nxt_)};
}

bool TcpSocket::check_paws(Instant now, const TcpRepr& seg) {
  // RFC 7323 5.3 R1: a segment whose TSval is older than TS.Recent is an old
  // duplicate, unless TS.Recent itself is more than 24 days old.
  if (!ts_ok_ || !seg.opts.ts || seg.has(tcpflag::kRst)) return true;
  if (static_cast<int32_t>(seg.opts.ts->val - ts_recent_) >= 0) return true;
  if (now - ts_recent_stamp_ > kPawsIdle) {
    ts_recent_ = seg.opts.ts->val;
    ts_recent_stamp_ = now;
    return true;
  }
  layer_.counters().tcp_paws_drops++;
  note_duplicate(seg);
  send_oow_ack(now, seg);
  return false;
}

bool TcpSocket::check_seq_acceptable(const TcpRepr& seg) const {
  // RFC 9293 3.10.7.4, first check: the four cases of segment length x window.
  uint32_t wnd = rcv_adv_ > rcv_nxt_ ? static_cast<uint32_t>(rcv_adv_ - rcv_nxt_) : 0;
  uint32_t len = seg.seg_len();
  if (len == 0) {
    if (wnd == 0) return seg.seq == rcv_nxt_;
    return seg.seq.in_window(rcv_nxt_, wnd);
  }
  if (wnd == 0) return false;
  Seq last = seg.seq + (len - 1);
  return seg.seq.in_window(rcv_nxt_, wnd) || last.in_window(rcv_nxt_, wnd) ||
         // a segment that starts before and ends after the window (covers it)
         (seg.seq < rcv_nxt_ && last >= rcv_nxt_);
}

void TcpSocket::challenge_ack(Instant now) {
  if (layer_.challenge_ack_allowed(now)) send_ack(now);
}

bool TcpSocket::process_rst(Instant now, const TcpRepr& seg) {
  // RFC 5961 3.2: only an exact match resets; in-window RSTs get a challenge ACK.
  uint32_t wnd = std::max<uint32_t>(rcv_adv_ > rcv_nxt_ ? static_cast<uint32_t>(rcv_adv_ - rcv_nxt_) : 0, 1);
  if (seg.seq != rcv_nxt_) {
    if (seg.seq.in_window(rcv_nxt_, wnd)) challenge_ack(now);
    return false;
  }
  layer_.counters().tcp_in_rsts++;
  switch (state_) {
    case TcpState::SynReceived:
      // Passive open: forget the embryonic connection; active (simultaneous): refused.
      reset_connection(now, listener_ ? SockError::ConnectionReset : SockError::ConnectionRefused);
      break;
    case TcpState::CloseWait: reset_connection(now, SockError::BrokenPipe); break;
    case TcpState::Closing:
    case TcpState::LastAck:
    case TcpState::TimeWait:
      reset_connection(now, SockError::ConnectionReset);
      error_.reset();
      break;
    default: reset_connection(now, SockError::ConnectionReset); break;
  }
  return false;
}

void TcpSocket::update_send_window(const TcpRepr& seg, bool ack_advanced) {
  // RFC 9293 3.10.7.4 fifth check: update only from newer segments (SND.WL1/WL2).
  // An ACK that advanced SND.UNA always carries the newest window (Linux
  // tcp_may_update_window), even on a retransmission with an old SEG.SEQ: keep
  // the old window then and SND.UNA + SND.WND would lie beyond the right edge
  // the peer offered, and we would send data (and ACKs) outside its window.
  if (ack_advanced || (seg.ack >= snd_una_ && (snd_wl1_ < seg.seq || (snd_wl1_ == seg.seq && snd_wl2_ <= seg.ack)))) {
    uint32_t wnd = uint32_t(seg.window) << snd_wscale_;
    bool opened = snd_wnd_ == 0 && wnd > 0;
    snd_wnd_ = wnd;
    max_snd_wnd_ = std::max(max_snd_wnd_, wnd);
    snd_wl1_ = seg.seq;
    snd_wl2_ = seg.ack;
    if (opened && persist_) {
      persist_ = false;
      probes_ = 0;
      rtt_.reset_backoff();  // Linux tcp_ack_probe: icsk_backoff = 0
      rtx_deadline_ = kNever;
    }
  }
}

bool TcpSocket::process_ack(Instant now, const TcpRepr& seg) {
  // RFC 5961 5.2: an ACK for data never sent, or older than the largest window
  // the peer could have seen, is answered with an ACK and dropped.
  if (seg.ack > snd_nxt_) {
    challenge_ack(now);
    return false;
  }
  if (seg.ack < snd_una_ - std::max<uint32_t>(max_snd_wnd_, 1)) {
    challenge_ack(now);
    return false;
  }
  last_ack_rcv_ = now;
  // Linux tcp_ack: any acceptable ACK shows the peer is alive, so the count of
  // unanswered zero-window probes starts again (a peer that keeps answering
  // with a zero window is probed forever, RFC 9293 3.8.6.1).
  probes_ = 0;
  const uint32_t flight_before = data_in_flight();
  bool dsack = false;
  uint32_t newly_sacked = 0;
  if (sack_ok_ && seg.opts.sack_count > 0) {
    std::optional<Seq> fack = sb_.highest_sacked();
    newly_sacked = sb_.update(snd_una_, snd_nxt_, std::span<const SackBlock>(seg.opts.sack.data(), seg.opts.sack_count), &dsack);
    if (dsack) on_dsack(now, seg.opts.sack[0], fack);
  }
  if (seg.ack > snd_una_) {
    uint32_t acked = static_cast<uint32_t>(seg.ack - snd_una_);
    // Bytes of the send buffer now acknowledged (the FIN is not in the buffer).
    int32_t buf_acked = seg.ack - snd_buf_seq_;
    if (buf_acked > 0) {
      size_t n = std::min<size_t>(static_cast<size_t>(buf_acked), snd_buf_.size());
      snd_buf_.consume(n);
      snd_buf_seq_ += static_cast<uint32_t>(n);
      stats_.bytes_acked += n;
    }
    take_rtt_sample(now, seg, seg.ack);
    snd_una_ = seg.ack;
    // Linux tcp_clean_rtx_queue: urgent mode ends once SND.UP is acknowledged.
    if (snd_up_ && *snd_up_ <= snd_una_) snd_up_.reset();
    sb_.on_ack(snd_una_);
    if (high_rxt_ < snd_una_) high_rxt_ = snd_una_;
    retries_ = 0;
    probes_ = 0;
    rtt_.reset_backoff();
    user_timeout_start_ = snd_una_ == snd_nxt_ ? kNever : now;
    on_ack_advanced(now, acked, flight_before, false);
    // RFC 6298 5.2/5.3: stop the timer when all is acked, else restart it.
    if (snd_una_ == snd_nxt_) {
      if (!persist_) rtx_deadline_ = kNever;
    } else {
      rtx_deadline_ = now + rtt_.rto();
    }
    update_send_window(seg, true);
    expand_sndbuf();
    notify();  // send space may have opened
    return true;
  }
  // ack == snd_una (or older but acceptable): maybe a duplicate ACK (RFC 5681 2).
  uint32_t old_wnd = snd_wnd_;
  update_send_window(seg, false);
  bool is_dup = seg.ack == snd_una_ && seg.payload.empty() && !seg.has(tcpflag::kSyn) &&
                !seg.has(tcpflag::kFin) && snd_una_ != snd_nxt_ && (snd_wnd_ == old_wnd || newly_sacked > 0);
  if (is_dup) on_dupack(now, newly_sacked > 0);
  return true;
}

// RFC 9293 3.10.7.4 (all synchronized states).
void TcpSocket::on_segment_synchronized(Instant now, const TcpRepr& seg) {
  if (!check_paws(now, seg)) return;
  // Simultaneous open (RFC 9293 figure 8, step 4): in SYN-RECEIVED reached
  // from SYN-SENT, the peer's SYN-ACK repeats its SYN (SEG.SEQ = IRS, so the
  // sequence check below would reject it) and acknowledges ours. Linux
  // (tcp_validate_incoming) lets exactly this segment through; it completes
  // the handshake and, being a retransmitted SYN, is acknowledged.
  const bool simopen_synack = state_ == TcpState::SynReceived && !listener_ && seg.has(tcpflag::kSyn) &&
                              seg.has(tcpflag::kAck) && !seg.has(tcpflag::kRst) && seg.seq == irs_ &&
                              seg.ack == snd_nxt_;
  // First: sequence number.
  if (!simopen_synack && !check_seq_acceptable(seg)) {
    if (!seg.has(tcpflag::kRst)) {
      // A retransmitted SYN while we wait in SYN-RECEIVED: repeat the SYN-ACK.
      if (state_ == TcpState::SynReceived && seg.has(tcpflag::kSyn) && seg.seq == irs_) {
        snd_nxt_ = iss_;
        send_syn(now, true);
        snd_nxt_ = iss_ + 1;
        return;
      }
      if (state_ == TcpState::TimeWait && seg.has(tcpflag::kFin)) state_deadline_ = now + layer_.cfg().time_wait;
      note_duplicate(seg);
      send_oow_ack(now, seg);
    }
    return;
  }
  last_rcv_ = now;
  if (opt_.keepalive) probes_ = 0;
  // Second: RST.
  if (seg.has(tcpflag::kRst)) {
    process_rst(now, seg);
    return;
  }
  // RFC 7323 4.3: TS.Recent follows the segment that covers Last.ACK.sent.
  if (ts_ok_ && seg.opts.ts && seg.seq <= last_ack_sent_) {
    ts_recent_ = seg.opts.ts->val;
    ts_recent_stamp_ = now;
  }
  // Fourth: SYN in a synchronized state gets a challenge ACK (RFC 5961 4.2).
  if (seg.has(tcpflag::kSyn) && !simopen_synack) {
    if (state_ == TcpState::SynReceived && seg.seq == irs_) {
      snd_nxt_ = iss_;
      send_syn(now, true);
      snd_nxt_ = iss_ + 1;
      return;
    }
    challenge_ack(now);
    return;
  }
  // Fifth: ACK.
  if (!seg.has(tcpflag::kAck)) return;
  if (state_ == TcpState::SynReceived) {
    if (!(seg.ack > snd_una_ && seg.ack <= snd_nxt_)) {
      layer_.send_reset_reply(now, local_.addr, remote_.addr, seg);
      return;
    }
    // TCP_DEFER_ACCEPT: a bare ACK does not complete the handshake yet; the
    // connection is accepted when data arrives (Linux tcp_check_req).
    if (opt_.defer_accept.us > 0 && listener_ && seg.payload.empty() && !seg.has(tcpflag::kFin)) {
      defer_acked_ = true;
      if (state_deadline_ == kNever) state_deadline_ = now + opt_.defer_accept;
      return;
    }
    if (listener_ && listener_->accept_q_.size() > static_cast<size_t>(listener_->backlog_)) {
      // Accept queue full: drop the ACK; the SYN-ACK timer will try again (Linux).
      layer_.counters().tcp_listen_overflows++;
      layer_.counters().tcp_listen_drops++;
      return;
    }
    snd_una_ = seg.ack;
    snd_buf_seq_ = snd_una_;
    if (synack_retries_ == 0 && rtt_pending_) rtt_.on_sample(now, now - rtt_time_);
    rtt_pending_ = false;
    retries_ = 0;
    rtt_.reset_backoff();
    rtx_deadline_ = kNever;
    state_deadline_ = kNever;
    // RFC 7323 2.2: the window of a SYN-ACK is never scaled.
    snd_wnd_ = simopen_synack ? uint32_t(seg.window) : uint32_t(seg.window) << snd_wscale_;
    max_snd_wnd_ = snd_wnd_;
    snd_wl1_ = seg.seq;
    snd_wl2_ = seg.ack;
    enter_established(now);
    move_to_accept_queue(now);
    if (simopen_synack) schedule_ack(now, true);
  } else {
    if (!process_ack(now, seg)) return;  // RFC 5961 5.2: unacceptable ACK, segment dropped
    if (state_ == TcpState::Closed) return;
  }
  switch (state_) {
    case TcpState::FinWait1:
      if (fin_acked()) {
        set_state(TcpState::FinWait2);
        rtx_deadline_ = kNever;
        if (orphaned()) {
          // tcp_rcv_state_process: an orphan with TCP_LINGER2 < 0 is reset
          // as soon as it reaches FIN_WAIT_2; others wait tcp_fin_time().
          if (opt_.linger2 < 0) {
            layer_.counters().tcp_abort_on_data++;
            abort_with_rst(now, SockError::ConnectionReset);
            return;
          }
          state_deadline_ = now + fin_wait2_timeout();
        }
      }
      break;
    case TcpState::Closing:
      if (fin_acked()) enter_time_wait(now);
      break;
    case TcpState::LastAck:
      if (fin_acked()) {
        reset_connection(now, SockError::ConnectionReset);
        error_.reset();
        return;
      }
      break;
    case TcpState::TimeWait:
      // Only a retransmitted FIN can arrive: acknowledge it and restart 2MSL.
      if (seg.has(tcpflag::kFin)) {
        send_ack(now);
        state_deadline_ = now + layer_.cfg().time_wait;
      }
      return;
    default: break;
  }
  // Sixth: the URG bit (Linux tcp_urg runs for every segment while an urgent
  // byte is awaited).
  if (seg.has(tcpflag::kUrg) || urg_state_ == UrgState::NotYet) [[unlikely]] process_urg(seg);
  // Seventh: segment text.
  bool has_text = !seg.payload.empty();
  if (has_text) {
    switch (state_) {
      case TcpState::Established:
      case TcpState::FinWait1:
      case TcpState::FinWait2:
        // Linux tcp_rcv_state_process (RFC 1122 4.2.2.13): in FIN-WAIT-1/2,
        // new data for a socket whose receive side is shut down (close(), or
        // shutdown(SHUT_RD) with the FIN sent) can never be read: reset
        // (TCPAbortOnData), whether or not the application still holds it.
        if ((state_ == TcpState::FinWait1 || state_ == TcpState::FinWait2) && (shutdown_ & kRcvShutdown) &&
            seg.seq + static_cast<uint32_t>(seg.payload.size()) > rcv_nxt_) {
          layer_.counters().tcp_abort_on_data++;
          abort_with_rst(now, SockError::ConnectionReset);
          return;
        }
        process_data(now, seg);
        break;
      default: break;  // CLOSE-WAIT and later: the peer already sent FIN; ignore
    }
  }
  // Eighth: FIN.
  if (seg.has(tcpflag::kFin)) {
    Seq fin_at = seg.seq + static_cast<uint32_t>(seg.payload.size());
    if (fin_at == rcv_nxt_) {
      process_fin(now);
    } else if (fin_at > rcv_nxt_) {
      ofo_fin_ = fin_at;  // processed when the data before it arrives
      schedule_ack(now, true);
    }
  }
  if (state_ != TcpState::Closed) transmit(now);
}

void TcpSocket::process_urg(const TcpRepr& seg) {
  if (seg.has(tcpflag::kUrg)) check_urg(seg);
  // Linux tcp_urg: take the urgent byte from the first segment that carries
  // it, which may come after the one that announced the pointer.
  if (urg_state_ != UrgState::NotYet) return;
  const Seq data_seq = seg.seq + (seg.has(tcpflag::kSyn) ? 1u : 0u);
  const uint32_t off = static_cast<uint32_t>(urg_seq_ - data_seq);
  if (off < seg.payload.size()) {
    urg_byte_ = seg.payload[off];
    urg_state_ = UrgState::Valid;
    notify();  // EPOLLPRI
  }
}

void TcpSocket::check_urg(const TcpRepr& seg) {
  // Linux tcp_check_urg. RFC 6093 / RFC 9293 3.8.5 leave the BSD reading in
  // use everywhere: the pointer is one past the urgent byte (tcp_stdurg = 0).
  uint32_t up = seg.urgent;
  if (up != 0) up--;
  const Seq ptr = seg.seq + up;
  const Seq copied = read_seq();
  // Urgent data already seen and read, or already received (no replay).
  if (copied > ptr || ptr < rcv_nxt_) return;
  // A newer (or the same) pointer is already known.
  if (urg_state_ != UrgState::None && ptr <= urg_seq_) return;
  // The old urgent byte is next to read and would be read again as data once
  // the mark moves: drop it from the stream (only at the ring's front).
  if (urg_seq_ == copied && urg_state_ != UrgState::None && !opt_.oobinline && copied != rcv_nxt_ &&
      rcv_lent_ == 0 && !rcv_q_.empty()) {
    rcv_q_.consume(1);
  }
  urg_state_ = UrgState::NotYet;
  urg_seq_ = ptr;
}

void TcpSocket::process_data(Instant now, const TcpRepr& seg) {
  Seq seq = seg.seq;
  Bytes data = seg.payload;
  // Trim what we already have (RFC 9293 3.10.7.4 "trim to window").
  if (seq < rcv_nxt_) {
    uint32_t dup = static_cast<uint32_t>(rcv_nxt_ - seq);
    // RFC 2883 4.1: report the duplicate part in the first SACK block, so the
    // sender learns its retransmission was spurious.
    if (sack_ok_) dsack_ = SackBlock{seq, seq + std::min<uint32_t>(dup, static_cast<uint32_t>(data.size()))};
    if (dup >= data.size()) {
      // Entirely old: the peer missed our ACK; answer at once (RFC 5681 4.2).
      schedule_ack(now, true);
      return;
    }
    data = data.subspan(dup);
    seq = rcv_nxt_;
  }
  uint32_t limit = std::max<uint32_t>(receive_space(), rcv_adv_ > rcv_nxt_ ? static_cast<uint32_t>(rcv_adv_ - rcv_nxt_) : 0);
  uint32_t offset = static_cast<uint32_t>(seq - rcv_nxt_);
  if (offset >= limit) {
    layer_.counters().tcp_rcv_window_drops++;
    schedule_ack(now, true);
    return;
  }
  if (data.size() > limit - offset) {
    layer_.counters().tcp_rcv_window_drops++;
    data = data.first(limit - offset);
  }
  ByteRing& ring = rcv_q_.ring();
  const size_t base = ring.size();  // ring offsets start after frame-held bytes
  // Zero-copy receive: the next in-sequence segment stays in its frame when
  // nothing waits in the ring (RecvQueue keeps frames ahead of ring bytes)
  // and no urgent byte is pending (its handling reads the ring).
  bool in_frame = false;
  if (offset == 0 && opt_.zc_frames && !data.empty() && ofo_.empty() && urg_state_ == UrgState::None) {
    FrameLender* lender = layer_.frame_lender();
    // The frame list is allocated once per socket, with its first data (as
    // the ring is), so sockets that never receive cost nothing.
    if (lender != nullptr && rcv_q_.frame_capacity() == 0) rcv_q_.enable_frames(kZcFrameSlots);
    if (lender != nullptr && rcv_q_.can_hold_frame()) {
      if (auto handle = lender->hold(data)) {
        rcv_q_.append_frame(data, *handle, *lender);
        in_frame = true;
      }
    }
  }
  if (!in_frame && !ensure_rcv_capacity(base + offset + data.size())) {
    // Zero-copy loans pin the ring (it cannot grow under lent bytes): keep
    // what fits; the sender retransmits the rest.
    const size_t fit = ring.capacity() - base;
    if (offset >= fit) {
      layer_.counters().tcp_rcv_window_drops++;
      schedule_ack(now, true);
      return;
    }
    data = data.first(std::min<size_t>(data.size(), fit - offset));
  }
  const uint32_t len = static_cast<uint32_t>(data.size());
  rcv_mss_ = std::max<uint32_t>(rcv_mss_, std::min<uint32_t>(len, adv_mss_));
  last_data_rcv_ = now;
  if (offset == 0) {
    if (!in_frame) ring.write_at(base, data);
    uint32_t had_ofo = ofo_.empty() ? 0 : 1;
    ofo_.shift(len);
    uint32_t more = ofo_.pop_front();
    if (!in_frame) ring.commit(len + more);
    rcv_nxt_ += len + more;
    stats_.bytes_received += len;
    if (ofo_fin_ && *ofo_fin_ == rcv_nxt_) {
      ofo_fin_.reset();
      process_fin(now);
      return;
    }
    rcv_unacked_bytes_ += len;
    // RFC 5681 4.2: ACK at once when a segment fills (part of) a hole.
    schedule_ack(now, had_ofo != 0);
    notify();
  } else {
    if (!ofo_.add(offset, len)) {
      layer_.counters().tcp_ofo_drops++;
      schedule_ack(now, true);
      return;
    }
    ring.write_at(base + offset, data);
    layer_.counters().tcp_ofo_queue++;
    stats_.rcv_ooopack++;
    stats_.bytes_received += len;
    // RFC 5681 4.2: an out-of-order segment is acknowledged immediately (dup ACK with SACK).
    schedule_ack(now, true);
  }
}

void TcpSocket::process_fin(Instant now) {
  rcv_nxt_ += 1;
  fin_received_ = true;
  shutdown_ |= kRcvShutdown;
  schedule_ack(now, true);
  switch (state_) {
    case TcpState::SynReceived:
    case TcpState::Established: set_state(TcpState::CloseWait); break;
    case TcpState::FinWait1:
      if (fin_acked()) enter_time_wait(now);
      else set_state(TcpState::Closing);
      break;
    case TcpState::FinWait2: enter_time_wait(now); break;
    default: break;
  }
  notify();
}

void TcpSocket::enter_time_wait(Instant now) {
  // Linux tcp_time_wait: with tcp_max_tw_buckets TIME_WAIT sockets already,
  // the connection closes at once (TCPTimeWaitOverflow). Here its 2MSL
  // timer is due at the next poll, outside this segment's processing.
  const bool overflow = layer_.time_wait_count() >= layer_.cfg().max_tw_buckets;
  if (overflow) layer_.counters().tcp_tw_overflows++;
  set_state(TcpState::TimeWait);
  rtx_deadline_ = delack_deadline_ = keepalive_deadline_ = cork_deadline_ = kNever;
  persist_ = false;
  state_deadline_ = overflow ? now : now + layer_.cfg().time_wait;
  release_buffers();
}

void TcpSocket::release_buffers() {
  // TIME_WAIT keeps only the sequence state (Linux uses a small tw sock).
  // Memory under a zero-copy reservation stays: the application may still
  // be writing into it (its commit will fail with EPIPE).
  if (snd_reserved_ == 0) snd_buf_ = ByteRing();
  else snd_buf_.clear();
  rcv_q_.drop_ring_if_empty();
  ofo_.clear();
  sb_.reset();
}

void TcpSocket::on_icmp_error(Instant now, uint8_t type, uint8_t code, uint16_t mtu, Seq seq) {
  // RFC 5927 4.1: believe only errors quoting a sequence number in flight.
  if (state_ != TcpState::SynSent && !(seq >= snd_una_ && seq < snd_nxt_)) return;
  if (type == icmptype::kDestUnreachable && code == icmpcode::kFragNeeded) {
    // RFC 1191: lower the MSS and resend what did not fit, without treating it as congestion.
    // tcp_v4_mtu_reduced: not under IP_PMTUDISC_DONT, nor where
    // ip_sk_accept_pmtu refuses (INTERFACE, OMIT).
    const bool accept = opt_.pmtudisc != 0 && opt_.pmtudisc != 4 && opt_.pmtudisc != 5;
    if (accept && mtu >= 68 && mtu < pmtu_) {
      layer_.counters().tcp_pmtu_updates++;
      compute_mss(std::max<uint16_t>(mtu, 552));
      if (recovery_ == Recovery::None && snd_una_ != snd_nxt_) {
        high_rxt_ = snd_una_;
        recovery_ = Recovery::Loss;
        recovery_point_ = snd_nxt_;
      }
      transmit(now);
    }
    return;
  }
  SockError err = SockError::HostUnreachable;
  if (type == icmptype::kDestUnreachable) {
    switch (code) {
      case icmpcode::kNetUnreachable: err = SockError::NetUnreachable; break;
      case icmpcode::kPortUnreachable: err = SockError::ConnectionRefused; break;
      case icmpcode::kProtoUnreachable: err = SockError::ProtocolOption; break;
      default: err = SockError::HostUnreachable; break;
    }
  }
  // Linux tcp_v4_err: during the handshake any unreachable ends the attempt;
  // later it is only a soft error reported if the connection times out.
  if (state_ == TcpState::SynSent || state_ == TcpState::SynReceived) {
    layer_.counters().tcp_attempt_fails++;
    reset_connection(now, err);
  } else {
    soft_error_ = err;
  }
}

}  // namespace xs
