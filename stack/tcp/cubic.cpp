#include "stack/tcp/cubic.hpp"

#include <algorithm>
#include <cmath>

namespace xs {

namespace {

constexpr double to_seconds(Duration d) { return double(d.us) / 1e6; }

// A Duration that is negative means "no value"; pick the smaller valid one.
constexpr Duration min_valid(Duration a, Duration b) {
  if (a.us < 0) return b;
  if (b.us < 0) return a;
  return a < b ? a : b;
}

}  // namespace

double Cubic::w_cubic(double t, double k, double w_max) {
  const double d = t - k;
  return kC * d * d * d + w_max;
}

double Cubic::k_for(double w_max, double cwnd_epoch) {
  if (w_max <= cwnd_epoch) return 0.0;
  return std::cbrt((w_max - cwnd_epoch) / kC);
}

void Cubic::init(Instant, uint32_t mss) {
  const uint32_t keep_mss = mss;
  *this = Cubic{};
  mss_ = keep_mss;
  cwnd_ = cc::kInitialWindowSegments * mss;  // RFC 6928
  ssthresh_ = cc::kInfiniteSsthresh;          // RFC 5681 3.1
}

void Cubic::set_state(uint32_t cwnd, uint32_t ssthresh) {
  cwnd_ = std::max(cwnd, mss_);
  ssthresh_ = ssthresh;
  epoch_valid_ = false;
  cwnd_frac_ = 0;
  // HyStart++ only governs the initial slow start (RFC 9406 4.3).
  if (ssthresh_ < cc::kInfiniteSsthresh) hy_phase_ = HyPhase::Done;
}

void Cubic::set_mss(uint32_t mss) {
  // Everything CUBIC remembers is in segments already; only the byte
  // counters of the base class and the undo record need rescaling.
  if (mss == 0 || mss == mss_) return;
  cwnd_ = std::max(cc::rescale(cwnd_, mss_, mss), mss);
  ssthresh_ = cc::rescale(ssthresh_, mss_, mss);
  undo_.base.cwnd = cc::rescale(undo_.base.cwnd, mss_, mss);
  undo_.base.ssthresh = cc::rescale(undo_.base.ssthresh, mss_, mss);
  round_target_ = cc::rescale(round_target_, mss_, mss);
  cwnd_frac_ = 0;
  mss_ = mss;
}

Duration Cubic::rtt_for_target(const AckSample& s) const {
  // RFC 9438 4.2 projects the window one RTT ahead; like Linux (delay_min)
  // use the minimum RTT so that queueing delay does not inflate the target.
  return min_valid(s.min_rtt, delay_min_);
}

void Cubic::hystart_on_ack(const AckSample& s) {
  // Rounds: RFC 9406 ends a round when the ACK covers windowEnd = SND.NXT
  // at the round's start. The ACK sample carries no sequence numbers, so a
  // round is approximated as "the bytes that were in flight when it began
  // have been acknowledged".
  if (!round_started_) {
    round_started_ = true;
    round_target_ = std::max(s.bytes_in_flight, mss_);
    round_acked_ = 0;
  }

  if (s.rtt.us >= 0) {
    cur_round_min_ = min_valid(cur_round_min_, s.rtt);
    ++rtt_sample_count_;
  }

  if (rtt_sample_count_ >= kHyNRttSample && cur_round_min_.us >= 0) {
    if (hy_phase_ == HyPhase::SlowStart && last_round_min_.us >= 0) {
      // RFC 9406 4.2: RttThresh = clamp(lastRoundMinRTT / 8, 4 ms, 16 ms).
      const Duration thresh = std::clamp(last_round_min_ / kHyMinRttDivisor, kHyMinRttThresh,
                                         kHyMaxRttThresh);
      if (cur_round_min_ >= last_round_min_ + thresh) {
        // Delay rose: the queue is building. Go to Conservative Slow Start.
        css_baseline_ = cur_round_min_;
        css_rounds_ = 0;
        hy_phase_ = HyPhase::Css;
      }
    } else if (hy_phase_ == HyPhase::Css && cur_round_min_ < css_baseline_) {
      // RFC 9406 4.2: the rise was spurious (RTT fell back below the
      // baseline); resume standard slow start.
      css_baseline_ = Duration{-1};
      hy_phase_ = HyPhase::SlowStart;
    }
  }

  round_acked_ += std::min(s.acked_bytes, cc::kMaxCwnd - round_acked_);
  if (round_acked_ >= round_target_) {
    round_started_ = false;
    last_round_min_ = cur_round_min_;
    cur_round_min_ = Duration{-1};
    rtt_sample_count_ = 0;
    if (hy_phase_ == HyPhase::Css && ++css_rounds_ >= kHyCssRounds) {
      // CSS_ROUNDS of conservative growth without a loss: enter congestion
      // avoidance at the current window.
      ssthresh_ = std::max(cwnd_, 2 * mss_);
      hy_phase_ = HyPhase::Done;
    }
  }
}

void Cubic::on_ack(Instant now, const AckSample& s) {
  if (s.rtt.us >= 0) delay_min_ = min_valid(delay_min_, s.rtt.us == 0 ? micros(1) : s.rtt);
  // Progress after a timeout ends its episode, as in NewReno::on_ack.
  if (episode_ == cc::Episode::Timeout && s.acked_bytes > 0) episode_ = cc::Episode::None;
  // RFC 9406 4.2 runs its RTT checks after the ACK's window growth, so the
  // ACK that triggers CSS still grows at the slow-start rate.
  const bool hystart = hy_phase_ != HyPhase::Done && cwnd_ < ssthresh_;

  if (!s.cwnd_limited) {
    // RFC 7661 / RFC 9438 5.8: no growth while application-limited, and
    // the time spent so is later cut out of the cubic epoch so that W_cubic
    // does not leap forward when the application catches up.
    if (epoch_valid_ && !app_limited_) {
      app_limited_ = true;
      app_limited_since_ = now;
    }
  } else {
    if (app_limited_) {
      if (epoch_valid_) epoch_start_ += now - app_limited_since_;
      app_limited_ = false;
    }
    grow(now, s);
  }
  if (hystart) hystart_on_ack(s);
}

void Cubic::grow(Instant now, const AckSample& s) {
  uint32_t acked = s.acked_bytes;
  if (acked == 0) return;
  if (cwnd_ < ssthresh_) {
    // Slow start with ABC, L = 2 (RFC 3465), as NewReno. In HyStart++'s
    // Conservative Slow Start growth is divided by CSS_GROWTH_DIVISOR.
    uint32_t inc = std::min(acked, cc::kAbcLimitSegments * mss_);
    if (hy_phase_ == HyPhase::Css) inc /= kHyCssGrowthDivisor;
    inc = std::min(inc, ssthresh_ - cwnd_);
    cwnd_ = std::min(cwnd_ + inc, cc::kMaxCwnd);
    if (cwnd_ < ssthresh_) return;
    acked -= std::min(acked, inc);
    if (acked == 0) return;
  }
  congestion_avoidance(now, acked, rtt_for_target(s));
}

void Cubic::congestion_avoidance(Instant now, uint32_t acked, Duration rtt) {
  const double mss = double(mss_);
  const double cwnd_segs = double(cwnd_) / mss;

  if (!epoch_valid_) {
    // RFC 9438 4.2: a congestion-avoidance stage begins; t counts from here.
    epoch_valid_ = true;
    epoch_start_ = now;
    app_limited_ = false;
    origin_ = std::max(w_max_, cwnd_segs);
    k_ = k_for(origin_, cwnd_segs);
    w_est_ = cwnd_segs;  // RFC 9438 4.3: W_est = cwnd_epoch
    cwnd_frac_ = 0;
  }

  // RFC 9438 4.3: Reno-friendly estimate, W_est += alpha * segments_acked / cwnd.
  // alpha switches to 1 once W_est reaches the window before the last
  // reduction, so that from there on it grows as fast as Reno would.
  const double acked_segs = double(acked) / mss;
  const double alpha = w_est_ >= cwnd_prior_ ? 1.0 : kAlpha;
  w_est_ += alpha * acked_segs / cwnd_segs;

  const double t = to_seconds(now - epoch_start_);
  double target;
  if (w_cubic(t, k_, origin_) < w_est_) {
    // Reno-friendly region: CUBIC would be slower than Reno here (short RTT
    // or small BDP), so follow Reno's window.
    target = w_est_;
    const double bytes = target * mss;
    if (bytes > double(cwnd_)) {
      cwnd_ = uint32_t(std::min(bytes, double(cc::kMaxCwnd)));
      cwnd_frac_ = 0;
    }
    return;
  }

  // Concave (cwnd < W_max) or convex (cwnd >= W_max) region: aim for the
  // curve one RTT ahead, bounded to [cwnd, 1.5 cwnd] (RFC 9438 4.4/4.5),
  // growing by (target - cwnd) / cwnd per acknowledged segment.
  target = w_cubic(t + to_seconds(max(rtt, Duration{0})), k_, origin_);
  target = std::clamp(target, cwnd_segs, 1.5 * cwnd_segs);
  cwnd_frac_ += (target - cwnd_segs) / cwnd_segs * double(acked);
  if (cwnd_frac_ >= 1.0) {
    const double whole = std::floor(cwnd_frac_);
    cwnd_frac_ -= whole;
    cwnd_ = uint32_t(std::min(double(cwnd_) + whole, double(cc::kMaxCwnd)));
  }
}

bool Cubic::begin_reduction(cc::Episode e) {
  const bool fresh = episode_ == cc::Episode::None;
  if (fresh) undo_ = {{cwnd_, ssthresh_, true}, w_max_, cwnd_prior_};
  episode_ = e;
  // Any reduction ends the initial slow start and the current epoch.
  hy_phase_ = HyPhase::Done;
  epoch_valid_ = false;
  app_limited_ = false;
  cwnd_frac_ = 0;
  return fresh;
}

void Cubic::on_loss(Instant, uint32_t bytes_in_flight) {
  if (begin_reduction(cc::Episode::FastRecovery)) {
    const double cwnd_segs = double(cwnd_) / double(mss_);
    // RFC 9438 4.7 fast convergence: a loss below the previous W_max means
    // a new flow is taking bandwidth; release some by remembering less.
    if (cwnd_segs < w_max_) {
      w_max_ = cwnd_segs * (1.0 + kBeta) / 2.0;
    } else {
      w_max_ = cwnd_segs;
    }
    cwnd_prior_ = cwnd_segs;
    // RFC 9438 4.6: ssthresh = flight_size * beta_cubic, at least 2 segments.
    ssthresh_ = std::max(uint32_t(double(bytes_in_flight) * kBeta), 2 * mss_);
  }
  cwnd_ = ssthresh_;
}

void Cubic::on_recovery_exit(Instant) {
  // As NewReno: deflate after fast recovery; after a timeout cwnd has been
  // slow-starting from 1 MSS and stays where it is.
  if (episode_ == cc::Episode::FastRecovery) cwnd_ = ssthresh_;
  episode_ = cc::Episode::None;
}

void Cubic::on_rto(Instant, uint32_t bytes_in_flight) {
  if (begin_reduction(cc::Episode::Timeout)) {
    // RFC 9438 4.8: ssthresh from beta_cubic as for a loss (Linux computes
    // it the same way in tcp_enter_loss); held constant across repeated
    // timeouts (RFC 5681 3.1).
    cwnd_prior_ = double(cwnd_) / double(mss_);
    ssthresh_ = std::max(uint32_t(double(bytes_in_flight) * kBeta), 2 * mss_);
  }
  // RFC 9438 4.8: the first CA stage after a timeout uses K = 0 and
  // W_max = cwnd at its start, i.e. forget W_max (Linux bictcp_reset).
  w_max_ = 0;
  cwnd_ = mss_;
}

void Cubic::undo() {
  if (!undo_.base.valid) return;
  cwnd_ = std::max(cwnd_, undo_.base.cwnd);
  ssthresh_ = std::max(ssthresh_, undo_.base.ssthresh);
  w_max_ = undo_.w_max;
  cwnd_prior_ = undo_.cwnd_prior;
  undo_.base.valid = false;
  episode_ = cc::Episode::None;
  epoch_valid_ = false;
  cwnd_frac_ = 0;
}

void Cubic::on_idle_restart(Instant, Duration idle, Duration rto) {
  if (idle <= rto) return;
  if (episode_ == cc::Episode::None) {
    ssthresh_ = std::max(ssthresh_, (cwnd_ >> 1) + (cwnd_ >> 2));
  }
  cwnd_ = cc::restart_cwnd(cwnd_, mss_, idle, rto);
  // Idle time must not count as epoch time (RFC 9438 5.8; Linux shifts the
  // epoch on CA_EVENT_TX_START). Start a fresh epoch instead of shifting:
  // W_est still holds the pre-idle window and would otherwise restore it on
  // the next ACK through the Reno-friendly branch, undoing the restart.
  epoch_valid_ = false;
  app_limited_ = false;
  cwnd_frac_ = 0;
}

}  // namespace xs
