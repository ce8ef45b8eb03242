// What a connection sends and when: new data under the congestion and peer
// windows, Nagle/cork, retransmissions chosen by loss recovery, ACKs, probes.
#include <algorithm>

#include "stack/tcp/tcp_layer_impl.hpp"
#include "stack/tcp/tcp_socket.hpp"

namespace xs {

uint32_t TcpSocket::full_space() const {
  // Linux __tcp_select_window: full_space = min(window_clamp, tcp_full_space).
  return opt_.window_clamp ? std::min(opt_.window_clamp, rcvbuf_) : rcvbuf_;
}

uint32_t TcpSocket::receive_space() const {
  // Lent bytes (zero-copy receive) count as queued: the window reopens only
  // when they are released. TCP_WINDOW_CLAMP bounds the whole window.
  const uint32_t full = full_space();
  uint32_t space = full > rcv_q_.size() ? full - static_cast<uint32_t>(rcv_q_.size()) : 0;
  // While bytes are lent the ring cannot grow: never offer more than it holds.
  if (rcv_lent_ > rcv_q_.frame_bytes()) space = std::min<uint32_t>(space, static_cast<uint32_t>(rcv_q_.ring().free_space()));
  return space;
}

uint32_t TcpSocket::current_mss() const {
  // Linux tcp_current_mss: SACK blocks we are about to send take room from the
  // payload, or a full segment would exceed the path MTU (and DF is set).
  if (!sack_ok_ || (ofo_.empty() && !dsack_)) return snd_mss_;
  size_t blocks = std::min<size_t>(ofo_.range_count() + (dsack_ ? 1 : 0), ts_ok_ ? 3 : 4);
  uint32_t opt = static_cast<uint32_t>(4 + 8 * blocks);  // NOP,NOP,kind,len + blocks
  return snd_mss_ > opt + 64 ? snd_mss_ - opt : 64;
}

uint16_t TcpSocket::window_to_advertise() {
  uint32_t space = receive_space();
  uint32_t cur = rcv_adv_ > rcv_nxt_ ? static_cast<uint32_t>(rcv_adv_ - rcv_nxt_) : 0;
  uint32_t wnd = cur;
  // RFC 9293 3.8.6.2.2 (receiver SWS avoidance): move the right edge only by a
  // useful amount; RFC 7323 2.4: never move it back.
  // The step is at most half the (clamped) full window, or a small clamp
  // would never open (Linux __tcp_select_window caps mss at full_space).
  if (space > cur && space - cur >= std::min<uint32_t>(std::max<uint32_t>(full_space() / 2, 1), rcv_mss_)) wnd = space;
  const uint32_t max_wnd = 65535u << rcv_wscale_;
  wnd = std::min(wnd, max_wnd);
  // Round up to the scale unit so the shift never shrinks the window (Linux does the same).
  uint32_t unit = 1u << rcv_wscale_;
  uint32_t field = std::min<uint32_t>((wnd + unit - 1) >> rcv_wscale_, 65535);
  Seq edge = rcv_nxt_ + (field << rcv_wscale_);
  if (edge > rcv_adv_) rcv_adv_ = edge;
  return static_cast<uint16_t>(field);
}

void TcpSocket::build_options(TcpOptions& o, uint8_t flags, Instant now) {
  o = TcpOptions{};
  const TcpConfig& c = layer_.cfg();
  if (flags & tcpflag::kSyn) {
    o.mss = adv_mss_;
    if (flags & tcpflag::kAck) {  // SYN-ACK: echo only what the peer offered
      if (ws_ok_) o.wscale = rcv_wscale_;
      o.sack_permitted = sack_ok_;
      if (ts_ok_) o.ts = TcpTimestamps{ts_now(now), ts_recent_};
    } else {
      if (c.window_scaling) o.wscale = rcv_wscale_;
      o.sack_permitted = c.sack;
      if (c.timestamps) o.ts = TcpTimestamps{ts_now(now), 0};
    }
    return;
  }
  if (ts_ok_) o.ts = TcpTimestamps{ts_now(now), ts_recent_};
  if (sack_ok_ && (!ofo_.empty() || dsack_)) {
    // RFC 2018 4: as many blocks as fit; 3 beside timestamps. A D-SACK block
    // goes first (RFC 2883 4).
    size_t max_blocks = ts_ok_ ? 3 : 4;
    size_t n = 0;
    if (dsack_) o.sack[n++] = *dsack_;
    n += ofo_.sack_blocks(rcv_nxt_, std::span<SackBlock>(o.sack.data() + n, max_blocks - n));
    o.sack_count = static_cast<uint8_t>(n);
  }
}

void TcpSocket::send_segment(Instant now, Seq seq, uint8_t flags, uint32_t data_off, uint32_t len,
                             bool retransmission) {
  TcpRepr h;
  h.src_port = local_.port;
  h.dst_port = remote_.port;
  h.seq = seq;
  h.flags = flags;
  if (flags & tcpflag::kAck) h.ack = rcv_nxt_;
  // Linux __tcp_transmit_skb: while in urgent mode every segment starting
  // before SND.UP carries URG and the pointer as an offset from its SEQ
  // (RFC 9293 3.8.5), clamped to 0xFFFF when SND.UP is 64 KiB or more ahead.
  if (snd_up_ && seq < *snd_up_) [[unlikely]] {
    if (*snd_up_ < seq + 0x10000u) {
      h.urgent = static_cast<uint16_t>(*snd_up_ - seq);
      h.flags |= tcpflag::kUrg;
    } else if (seq + 0xFFFFu > snd_nxt_) {
      h.urgent = 0xFFFF;
      h.flags |= tcpflag::kUrg;
    }
  }
  h.window = window_to_advertise();
  build_options(h.opts, flags, now);
  std::array<Bytes, 2> payload{};
  if (len) payload = snd_buf_.segments(data_off, len);
  if (!layer_.output(now, local_.addr, remote_.addr, h, payload, opt_.tos, opt_.ttl, ip_df())) return;
  stats_.segs_out++;
  if (len) {
    stats_.data_segs_out++;
    stats_.bytes_sent += len;
    last_data_sent_ = now;
    // Linux tcp_event_data_sent: data sent within the ACK timeout (ATO, at
    // least TCP_ATO_MIN = delack_min) of receiving data is a reply: enter
    // ping-pong mode (tcp_pingpong_thresh defaults to 1).
    if (stats_.data_segs_in > 0 && now - last_data_rcv_ < layer_.cfg().delack_min) pingpong_ = true;
    if (retransmission) {
      stats_.bytes_retrans += len;
      stats_.total_retrans++;
      layer_.counters().tcp_retrans_segs++;
    }
  }
  if (flags & tcpflag::kAck) {
    dsack_.reset();
    ack_pending_ = false;
    ack_now_ = false;
    rcv_unacked_bytes_ = 0;
    delack_deadline_ = kNever;
    last_ack_sent_ = rcv_nxt_;
  }
  last_send_ = now;
}

void TcpSocket::send_syn(Instant now, bool with_ack) {
  TcpRepr h;
  h.src_port = local_.port;
  h.dst_port = remote_.port;
  h.seq = iss_;
  h.flags = tcpflag::kSyn | (with_ack ? tcpflag::kAck : 0);
  if (with_ack) h.ack = rcv_nxt_;
  // RFC 7323 2.2: the window in a SYN is not scaled.
  uint32_t wnd = std::min<uint32_t>(receive_space(), 65535);
  h.window = static_cast<uint16_t>(wnd);
  rcv_adv_ = rcv_nxt_ + wnd;
  build_options(h.opts, h.flags, now);
  if (layer_.output(now, local_.addr, remote_.addr, h, {}, opt_.tos, opt_.ttl, ip_df())) stats_.segs_out++;
  if (with_ack) last_ack_sent_ = rcv_nxt_;
  if (!rtt_pending_ && retries_ == 0 && synack_retries_ == 0) {
    rtt_pending_ = true;
    rtt_seq_ = iss_ + 1;
    rtt_time_ = now;
  }
  last_send_ = now;
}

void TcpSocket::send_probe(Instant now) {
  // Linux tcp_xmit_probe_skb: an old sequence number with no data makes the
  // peer answer with an ACK carrying its current window (keepalive, RFC 9293 3.8.4;
  // zero-window probe, 3.8.6.1).
  send_segment(now, snd_una_ - 1, tcpflag::kAck, 0, 0, false);
}

void TcpSocket::send_rst(Instant now) {
  TcpRepr h;
  h.src_port = local_.port;
  h.dst_port = remote_.port;
  h.seq = snd_nxt_;
  h.ack = rcv_nxt_;
  h.flags = tcpflag::kRst | tcpflag::kAck;
  h.window = 0;
  if (ts_ok_) h.opts.ts = TcpTimestamps{ts_now(now), ts_recent_};
  if (layer_.output(now, local_.addr, remote_.addr, h, {}, opt_.tos, opt_.ttl, ip_df())) {
    layer_.counters().tcp_out_rsts++;
    stats_.segs_out++;
  }
}

void TcpSocket::schedule_ack(Instant now, bool immediately) {
  ack_pending_ = true;
  // Linux __tcp_ack_snd_check: ACK at once in quick-ACK mode or when more than
  // one full segment is unacknowledged; otherwise delay (at most delack_min).
  // Quick-ACK mode does not apply in ping-pong mode (tcp_in_quickack_mode).
  const bool quick = quickacks_ > 0 && !pingpong_;
  if (immediately || quick || rcv_unacked_bytes_ > rcv_mss_) {
    if (quick && !immediately) quickacks_--;
    ack_now_ = true;
    return;
  }
  if (delack_deadline_ == kNever) delack_deadline_ = now + layer_.cfg().delack_min;
}

void TcpSocket::flush_ack(Instant now) {
  if (ack_pending_ && ack_now_ && state_ != TcpState::Closed && state_ != TcpState::Listen &&
      state_ != TcpState::SynSent) {
    send_ack(now);
  }
}

bool TcpSocket::nagle_allows(Instant now, uint32_t len) {
  (void)len;
  // Linux tcp_nagle_test: no Nagle, cork or MSG_MORE hold in urgent mode.
  if (snd_up_) return true;
  // TCP_CORK and MSG_MORE hold a partial segment until uncorked, more data
  // completes it, or the cork limit (200 ms, as Linux) expires.
  if (opt_.cork || more_pending_) {
    if (cork_expired_) return true;
    if (cork_deadline_ == kNever) cork_deadline_ = now + layer_.cfg().cork_limit;
    return false;
  }
  if (opt_.nodelay) return true;
  // RFC 896 with Minshall's refinement (Linux tcp_nagle_check): hold a small
  // segment only while an earlier small segment is unacknowledged.
  // Linux tcp_minshall_check: after(snd_sml, snd_una) && !after(snd_sml, snd_nxt).
  // The upper bound matters: before any small segment is sent snd_sml_ holds
  // no sequence of this connection, and a one-sided test would hold data on
  // about half of all ISNs.
  if (snd_una_ == snd_nxt_) return true;
  return !(snd_sml_ > snd_una_ && snd_sml_ <= snd_nxt_);
}

bool TcpSocket::send_new_data(Instant now, uint32_t room) {
  if (fin_sent()) return false;
  const uint32_t sent_off = static_cast<uint32_t>(std::max<int32_t>(snd_nxt_ - snd_buf_seq_, 0));
  const uint32_t unsent = static_cast<uint32_t>(snd_buf_.size()) - std::min<uint32_t>(sent_off, static_cast<uint32_t>(snd_buf_.size()));
  if (unsent == 0 && !fin_queued_) return false;
  const int32_t wnd_room_s = (snd_una_ + snd_wnd_) - snd_nxt_;
  const uint32_t wnd_room = wnd_room_s > 0 ? static_cast<uint32_t>(wnd_room_s) : 0;
  const uint32_t mss = current_mss();
  uint32_t len = std::min({unsent, mss, wnd_room});
  const bool fin_now = fin_queued_ && len == unsent;
  if (len == 0 && !(fin_now && (wnd_room > 0 || snd_una_ == snd_nxt_))) return false;
  // RFC 6675 / 5681: new data only while the pipe leaves room for it.
  if (len > room || (len == 0 && room == 0)) {
    cwnd_limited_ = true;
    return false;
  }
  if (len > 0 && len < mss && !fin_now) {
    if (len < unsent) {
      // Limited by the peer's window: sender SWS avoidance (RFC 9293
      // 3.8.6.2.1) waits for the window to open unless nothing is in flight.
      if (snd_una_ != snd_nxt_) return false;
    } else if (!nagle_allows(now, len)) {
      return false;
    }
  }
  uint8_t flags = tcpflag::kAck;
  if (len == unsent && len > 0) flags |= tcpflag::kPsh;
  if (fin_now) flags |= tcpflag::kFin;
  send_segment(now, snd_nxt_, flags, sent_off, len, false);
  if (len > 0) {
    // Log the send time; when the log is full the oldest entry is overwritten
    // (its ACK then simply yields no sample).
    size_t slot = (tx_log_head_ + tx_log_len_) % kTxLog;
    if (tx_log_len_ == kTxLog) {
      tx_log_head_ = (tx_log_head_ + 1) % kTxLog;
      slot = (tx_log_head_ + kTxLog - 1) % kTxLog;
    } else {
      tx_log_len_++;
    }
    tx_log_[slot] = TxStamp{snd_nxt_ + len, now};
  }
  if (snd_una_ == snd_nxt_) user_timeout_start_ = now;
  snd_nxt_ += len + (fin_now ? 1u : 0u);
  if (len < mss) {
    snd_sml_ = snd_nxt_;
    cork_deadline_ = kNever;
    cork_expired_ = false;
  }
  if (rtx_deadline_ == kNever || persist_) {
    persist_ = false;
    rtx_deadline_ = now + rtt_.rto();
  }
  return true;
}

void TcpSocket::transmit(Instant now) {
  switch (state_) {
    case TcpState::Established:
    case TcpState::CloseWait:
    case TcpState::FinWait1:
    case TcpState::Closing:
    case TcpState::LastAck: break;
    default: return;
  }
  // RFC 5681 4.1 / RFC 7661: after an idle period longer than the RTO the
  // old cwnd no longer reflects the path.
  if (snd_una_ == snd_nxt_ && last_send_ != kNever && now - last_send_ > rtt_.rto() &&
      (bytes_unsent() > 0)) {
    cc_.get().on_idle_restart(now, now - last_send_, rtt_.rto());
  }
  cwnd_limited_ = false;
  for (int budget = 0; budget < 4096; ++budget) {
    const uint32_t cwnd = cc_.get().cwnd();
    const uint32_t p = pipe();
    if (recovery_ != Recovery::None && (force_rtx_ || p + snd_mss_ <= cwnd)) {
      bool sent = send_one_retransmission(now);
      force_rtx_ = false;
      if (sent) continue;
    }
    if (!send_new_data(now, cwnd > p ? cwnd - p : 0)) break;
  }
  // Zero window with data waiting and nothing in flight: persist (RFC 9293 3.8.6.1).
  if (snd_una_ == snd_nxt_ && (bytes_unsent() > 0 || (fin_queued_ && !fin_sent())) && snd_wnd_ == 0) {
    if (!persist_) {
      persist_ = true;
      rtx_deadline_ = now + rtt_.rto();
    }
  }
}

}  // namespace xs
