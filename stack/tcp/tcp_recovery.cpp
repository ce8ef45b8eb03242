// Loss detection and recovery: SACK-based (RFC 6675) when the peer permits
// SACK, NewReno (RFC 6582) otherwise, RTO recovery (RFC 6298, RFC 5681 3.1),
// and RTT sampling (RFC 6298 3, Karn's rule).
#include <algorithm>

#include "stack/tcp/tcp_layer_impl.hpp"
#include "stack/tcp/tcp_socket.hpp"

namespace xs {

Seq TcpSocket::lost_edge() const {
  switch (recovery_) {
    case Recovery::None: return snd_una_;
    case Recovery::Loss: return snd_nxt_;
    case Recovery::Fast: break;
  }
  if (!sack_ok_) return reno_lost_edge_;
  // RFC 6675 IsLost is monotonic (lower holes have more SACKed data above),
  // so the lost region is every hole up to the last one that IsLost.
  Seq edge = seq_min(snd_una_ + snd_mss_, snd_nxt_);  // entering recovery: the first segment is lost
  auto top = sb_.highest_sacked();
  if (!top) return edge;
  Seq from = snd_una_;
  while (auto h = sb_.next_hole(from, *top)) {
    if (!sb_.is_lost(h->first, snd_mss_, reordering_)) break;
    edge = seq_max(edge, h->second);
    from = h->second;
  }
  return edge;
}

uint32_t TcpSocket::pipe() const {
  // RFC 6675 SetPipe(): bytes believed to be in the network.
  const uint32_t outstanding = data_in_flight();
  uint32_t p = outstanding;
  if (sack_ok_) {
    p -= std::min(p, sb_.sacked_bytes());
  } else {
    // Without SACK each duplicate ACK means one segment left the network (RFC 5681 3.2).
    p -= std::min(p, dupacks_ * snd_mss_);
  }
  if (recovery_ != Recovery::None) {
    Seq start = seq_max(high_rxt_, snd_una_);
    Seq edge = lost_edge();
    if (edge > start) {
      uint32_t lost = static_cast<uint32_t>(edge - start);
      if (sack_ok_) lost -= std::min(lost, sb_.sacked_between(start, edge));
      p -= std::min(p, lost);
    }
  }
  return p;
}

bool TcpSocket::send_one_retransmission(Instant now) {
  // RFC 6675 NextSeg() rule 1: the first lost, not yet retransmitted, un-SACKed byte.
  const Seq edge = lost_edge();
  const Seq start = seq_max(high_rxt_, snd_una_);
  if (!(start < edge)) return false;
  Seq a = start, b = edge;
  if (sack_ok_) {
    auto h = sb_.next_hole(start, edge);
    if (!h) return false;
    a = h->first;
    b = h->second;
  }
  uint32_t len = std::min<uint32_t>(static_cast<uint32_t>(b - a), current_mss());
  uint8_t flags = tcpflag::kAck;
  if (fin_sent()) {
    const Seq f = fin_seq();
    if (a >= f) {
      len = 0;
      flags |= tcpflag::kFin;
    } else if (a + len >= f) {
      len = static_cast<uint32_t>(f - a);
      if (b > f) flags |= tcpflag::kFin;
    }
  }
  if (a < snd_buf_seq_) return false;  // only the SYN precedes the buffer; never here
  // Keep PSH on a retransmission that ends where the sent data ends (Linux
  // retransmits the original skb with its flags).
  if (len > 0 && a + len == seq_min(snd_nxt_, fin_sent() ? fin_seq() : snd_nxt_)) flags |= tcpflag::kPsh;
  send_segment(now, a, flags, static_cast<uint32_t>(a - snd_buf_seq_), len, true);
  high_rxt_ = a + len + ((flags & tcpflag::kFin) ? 1u : 0u);
  // Karn: an ACK covering retransmitted data gives no RTT sample.
  tx_log_len_ = 0;
  if (undo_possible_) undo_retrans_++;
  return true;
}

void TcpSocket::take_rtt_sample(Instant now, const TcpRepr& seg, Seq acked_to) {
  (void)seg;
  last_rtt_sample_ = Duration{-1};
  // The newest logged segment this ACK covers gives the sample (its send
  // time is the one that ACK answers; older ones waited for it).
  bool found = false;
  Instant sent{};
  while (tx_log_len_ > 0 && tx_log_[tx_log_head_].end <= acked_to) {
    sent = tx_log_[tx_log_head_].at;
    found = true;
    tx_log_head_ = (tx_log_head_ + 1) % kTxLog;
    tx_log_len_--;
  }
  if (found && recovery_ == Recovery::None) {
    last_rtt_sample_ = now - sent;
    rtt_.on_sample(now, last_rtt_sample_);
  }
}

void TcpSocket::on_ack_advanced(Instant now, uint32_t acked, uint32_t flight_before, bool) {
  AckSample s;
  s.acked_bytes = acked;
  s.bytes_in_flight = flight_before;
  s.cwnd_limited = cwnd_limited_ || flight_before + snd_mss_ >= cc_.get().cwnd();
  s.rtt = last_rtt_sample_;  // negative when this ACK gave no sample
  s.min_rtt = rtt_.min_rtt();
  if (recovery_ == Recovery::Fast) {
    maybe_exit_recovery(now);
  } else {
    dupacks_ = 0;
    cc_.get().on_ack(now, s);
    if (recovery_ == Recovery::Loss) maybe_exit_recovery(now);
  }
}

void TcpSocket::on_dupack(Instant now, bool sack_progress) {
  (void)sack_progress;
  dupacks_++;
  if (recovery_ != Recovery::None) return;
  // RFC 6675 5: DupThresh duplicate ACKs, or IsLost(SND.UNA) from SACK info.
  if (dupacks_ >= reordering_ || (sack_ok_ && sb_.is_lost(snd_una_, snd_mss_, reordering_))) enter_recovery(now);
}

void TcpSocket::enter_recovery(Instant now) {
  recovery_ = Recovery::Fast;
  recovery_point_ = snd_nxt_;
  high_rxt_ = snd_una_;
  reno_lost_edge_ = seq_min(snd_una_ + snd_mss_, snd_nxt_);
  cc_.get().on_loss(now, data_in_flight());
  fack_at_recovery_ = sb_.highest_sacked().value_or(snd_una_ + snd_mss_);
  episode_was_rto_ = false;
  undo_possible_ = true;
  undo_retrans_ = 0;
  force_rtx_ = true;
  tx_log_len_ = 0;
  layer_.counters().tcp_fast_retrans++;
  if (sack_ok_) layer_.counters().tcp_sack_recovery++;
  else layer_.counters().tcp_reno_recovery++;
}

void TcpSocket::maybe_exit_recovery(Instant now) {
  if (recovery_ == Recovery::None) return;
  if (snd_una_ >= recovery_point_) {
    if (recovery_ == Recovery::Fast) cc_.get().on_recovery_exit(now);
    recovery_ = Recovery::None;
    dupacks_ = 0;
    return;
  }
  if (recovery_ == Recovery::Fast && !sack_ok_) {
    // RFC 6582 3.2 step 5 (partial ACK): the next segment is lost too; resend it now.
    reno_lost_edge_ = seq_min(snd_una_ + snd_mss_, snd_nxt_);
    high_rxt_ = snd_una_;
    dupacks_ = 0;
    force_rtx_ = true;
  }
}

void TcpSocket::on_dsack(Instant now, const SackBlock& b, std::optional<Seq> fack) {
  (void)now;
  (void)fack;
  layer_.counters().tcp_dsack_recv++;
  stats_.dsack_dups++;
  // RFC 2883 / Linux tcp_check_sack_reordering: data we resent arrived twice,
  // so the original was only late. Tolerate reordering that deep from now on.
  // The depth is measured against what had been SACKed when the segment was
  // declared lost: that many later segments overtook it.
  // After an RTO everything unSACKed was resent, so D-SACKs then say nothing
  // about reordering. Growth is at most doubling per event (damped), and
  // capped at 16: without RACK a deeper threshold delays real loss detection
  // until the RTO (measured on the simulator: worse than the spurious resends).
  if (undo_possible_ && !episode_was_rto_ && fack_at_recovery_ > b.left) {
    uint32_t depth = static_cast<uint32_t>(fack_at_recovery_ - b.left) / std::max<uint32_t>(snd_mss_, 1) + 1;
    reordering_ = std::min<uint32_t>({std::max(reordering_, depth), reordering_ * 2, 16});
    stats_.reord_seen++;
  }
  // Linux tcp_try_undo_dsack: when every retransmission of the episode has
  // been D-SACKed, the cwnd reduction was a mistake: undo it.
  if (undo_possible_ && undo_retrans_ > 0 && --undo_retrans_ == 0) {
    cc_.get().undo();
    undo_possible_ = false;
    layer_.counters().tcp_spurious_rtos += recovery_ == Recovery::Loss ? 1 : 0;
  }
}

void TcpSocket::on_rto(Instant now) {
  const TcpConfig& c = layer_.cfg();
  uint32_t limit = orphaned() ? (c.orphan_retries ? c.orphan_retries : 8) : c.retries2;
  bool user_expired = opt_.user_timeout.us > 0 && user_timeout_start_ != kNever &&
                      now - user_timeout_start_ >= opt_.user_timeout;
  if (retries_ >= limit || user_expired) {
    layer_.counters().tcp_abort_on_timeout++;
    reset_connection(now, soft_error_.value_or(SockError::TimedOut));
    return;
  }
  retries_++;
  layer_.counters().tcp_timeouts++;
  cc_.get().on_rto(now, data_in_flight());
  episode_was_rto_ = true;
  undo_possible_ = true;
  undo_retrans_ = 0;
  // RFC 6675 5.1 / RFC 5681 3.1: everything not SACKed is presumed lost and
  // resent in slow start, starting at SND.UNA.
  recovery_ = Recovery::Loss;
  recovery_point_ = snd_nxt_;
  high_rxt_ = snd_una_;
  dupacks_ = 0;
  force_rtx_ = true;
  tx_log_len_ = 0;
  rtt_.backoff();
  transmit(now);
  rtx_deadline_ = now + rtt_.rto();
  // Linux tcp_clamp_rto_to_user_timeout: never sleep past TCP_USER_TIMEOUT,
  // so the connection is dropped when it expires, not at the next backoff.
  if (opt_.user_timeout.us > 0 && user_timeout_start_ != kNever) {
    const Instant expiry = user_timeout_start_ + opt_.user_timeout;
    if (expiry < rtx_deadline_) rtx_deadline_ = expiry > now ? expiry : now + millis(1);
  }
}

}  // namespace xs
