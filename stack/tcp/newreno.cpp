#include "stack/tcp/newreno.hpp"

#include <algorithm>

namespace xs {

namespace cc {

uint32_t restart_cwnd(uint32_t cwnd, uint32_t mss, Duration idle, Duration rto) {
  const uint32_t restart = std::min(kInitialWindowSegments * mss, cwnd);
  if (rto.us <= 0) return restart;
  // Same loop shape as Linux: one halving for each full RTO beyond the first
  // boundary the idle period crosses, stopping at the restart window.
  int64_t delta = idle.us;
  while ((delta -= rto.us) > 0 && cwnd > restart) cwnd >>= 1;
  return std::max(cwnd, restart);
}

uint32_t rescale(uint32_t bytes, uint32_t old_mss, uint32_t new_mss) {
  if (old_mss == 0 || bytes >= kInfiniteSsthresh) return bytes;
  const uint64_t v = uint64_t(bytes) * new_mss / old_mss;
  return uint32_t(std::min<uint64_t>(v, kMaxCwnd));
}

}  // namespace cc

void NewReno::init(Instant, uint32_t mss) {
  mss_ = mss;
  cwnd_ = cc::kInitialWindowSegments * mss;  // RFC 6928
  ssthresh_ = cc::kInfiniteSsthresh;          // RFC 5681 3.1
  ca_acked_ = 0;
  undo_ = {};
  episode_ = cc::Episode::None;
}

void NewReno::set_state(uint32_t cwnd, uint32_t ssthresh) {
  cwnd_ = std::max(cwnd, mss_);
  ssthresh_ = ssthresh;
  ca_acked_ = 0;
}

void NewReno::set_mss(uint32_t mss) {
  if (mss == 0 || mss == mss_) return;
  cwnd_ = std::max(cc::rescale(cwnd_, mss_, mss), mss);
  ssthresh_ = cc::rescale(ssthresh_, mss_, mss);
  undo_.cwnd = cc::rescale(undo_.cwnd, mss_, mss);
  undo_.ssthresh = cc::rescale(undo_.ssthresh, mss_, mss);
  ca_acked_ = 0;
  mss_ = mss;
}

void NewReno::on_ack(Instant, const AckSample& s) {
  // After a timeout the connection slow-starts without a recovery-exit call
  // (Linux's Loss state ends without tcp_end_cwnd_reduction). Forward
  // progress means the next timeout is for new data, so it may reduce
  // ssthresh again (the "same segment retransmitted" hold of RFC 5681 3.1 ends).
  if (episode_ == cc::Episode::Timeout && s.acked_bytes > 0) episode_ = cc::Episode::None;
  // RFC 7661 4.3 (and Linux tcp_is_cwnd_limited): a window the application
  // does not fill has not been validated by the network, so it must not grow.
  if (!s.cwnd_limited || s.acked_bytes == 0) return;
  uint32_t acked = s.acked_bytes;

  if (cwnd_ < ssthresh_) {
    // RFC 5681 3.1 slow start with RFC 3465 byte counting: increase by the
    // bytes acked, at most L = 2*SMSS per ACK (stretch ACKs after ACK loss
    // must not cause a burst). Stop at ssthresh; the rest of the ACK counts
    // towards congestion avoidance, as in Linux tcp_slow_start().
    const uint32_t grow = std::min({acked, cc::kAbcLimitSegments * mss_, ssthresh_ - cwnd_});
    cwnd_ = std::min(cwnd_ + grow, cc::kMaxCwnd);
    if (cwnd_ < ssthresh_) return;
    acked -= std::min(acked, grow);
    if (acked == 0) return;
  }

  // RFC 5681 3.1 congestion avoidance, byte-counting form (RFC 3465 2.1):
  // one SMSS per cwnd bytes acknowledged ~ cwnd += SMSS*SMSS/cwnd per ACK,
  // without the rounding that starves the per-ACK formula at large cwnd.
  ca_acked_ += acked;
  if (ca_acked_ >= cwnd_) {
    const uint32_t incr = ca_acked_ / cwnd_;
    ca_acked_ -= incr * cwnd_;
    cwnd_ = std::min(cwnd_ + incr * mss_, cc::kMaxCwnd);
  }
}

bool NewReno::begin_reduction(cc::Episode e) {
  const bool fresh = episode_ == cc::Episode::None;
  if (fresh) {
    // Remember the pre-reduction state for undo (Linux prior_cwnd /
    // prior_ssthresh); a later reduction inside the same episode keeps the
    // original, so that undo returns to the state before the whole episode.
    undo_ = {cwnd_, ssthresh_, true};
  }
  episode_ = e;
  ca_acked_ = 0;
  return fresh;
}

void NewReno::on_loss(Instant, uint32_t bytes_in_flight) {
  if (begin_reduction(cc::Episode::FastRecovery)) {
    // RFC 5681 eq. (4): ssthresh = max(FlightSize / 2, 2*SMSS).
    ssthresh_ = std::max(bytes_in_flight / 2, 2 * mss_);
  }
  // RFC 6582 3.2 step 2 would add 3*SMSS of inflation; the connection does
  // that itself (or uses the RFC 6675 pipe), so only the base window is set.
  cwnd_ = ssthresh_;
}

void NewReno::on_recovery_exit(Instant) {
  // RFC 6582 3.2 step 5 / RFC 6937: deflate to ssthresh. After a timeout the
  // window has been slow-starting up from 1 MSS and is left alone (Linux only
  // resets cwnd at the end of CWR/Recovery, not of the Loss state).
  if (episode_ == cc::Episode::FastRecovery) cwnd_ = ssthresh_;
  episode_ = cc::Episode::None;
}

void NewReno::on_rto(Instant, uint32_t bytes_in_flight) {
  // RFC 5681 3.1: "when a segment is retransmitted more than once, ssthresh
  // is held constant"; likewise an RTO during fast recovery keeps the
  // ssthresh that recovery already set (Linux tcp_enter_loss).
  if (begin_reduction(cc::Episode::Timeout)) {
    ssthresh_ = std::max(bytes_in_flight / 2, 2 * mss_);  // RFC 5681 eq. (4)
  }
  cwnd_ = mss_;  // RFC 5681 3.1: loss window = 1 SMSS
}

void NewReno::undo() {
  // Linux tcp_undo_cwnd_reduction: never shrink because of an undo.
  if (!undo_.valid) return;
  cwnd_ = std::max(cwnd_, undo_.cwnd);
  ssthresh_ = std::max(ssthresh_, undo_.ssthresh);
  undo_.valid = false;
  episode_ = cc::Episode::None;
  ca_acked_ = 0;
}

void NewReno::on_idle_restart(Instant, Duration idle, Duration rto) {
  if (idle <= rto) return;
  // Linux tcp_cwnd_restart: keep memory of the old window in ssthresh
  // (tcp_current_ssthresh = max(ssthresh, 3/4 cwnd)) so that slow start can
  // quickly return to it, then shrink the window (RFC 5681 4.1, RFC 7661).
  if (episode_ == cc::Episode::None) {
    ssthresh_ = std::max(ssthresh_, (cwnd_ >> 1) + (cwnd_ >> 2));
  }
  cwnd_ = cc::restart_cwnd(cwnd_, mss_, idle, rto);
  ca_acked_ = 0;
}

}  // namespace xs
