#include "stack/tcp/rtt_estimator.hpp"

namespace xs {

// ---- WindowedMin ---------------------------------------------------------

Duration WindowedMin::reset_to(Sample s) {
  s_[0] = s_[1] = s_[2] = s;
  valid_ = true;
  return s.v;
}

Duration WindowedMin::update(Instant now, Duration v) {
  const Sample val{now, v};
  // A new overall minimum, or every kept sample has left the window: start over.
  if (!valid_ || v <= s_[0].v || now - s_[2].t > window_) return reset_to(val);

  if (v <= s_[1].v) {
    s_[2] = s_[1] = val;
  } else if (v <= s_[2].v) {
    s_[2] = val;
  }

  const Duration dt = now - s_[0].t;
  if (dt > window_) {
    // The best sample aged out without being beaten: promote the runners-up.
    // The second may have aged out too (the third is known to be inside).
    s_[0] = s_[1];
    s_[1] = s_[2];
    s_[2] = val;
    if (now - s_[0].t > window_) {
      s_[0] = s_[1];
      s_[1] = s_[2];
      s_[2] = val;
    }
  } else if (s_[1].t == s_[0].t && dt > window_ / 4) {
    // A quarter window passed with no second choice: take one from the
    // second quarter so that the estimate has somewhere to fall back to.
    s_[2] = s_[1] = val;
  } else if (s_[2].t == s_[1].t && dt > window_ / 2) {
    // Likewise a third choice from the second half.
    s_[2] = val;
  }
  return s_[0].v;
}

// ---- RttEstimator --------------------------------------------------------

RttEstimator::RttEstimator(Duration rto_initial, Duration rto_min, Duration rto_max)
    : rto_min_(rto_min), rto_max_(rto_max), base_rto_(rto_initial) {}

void RttEstimator::on_sample(Instant now, Duration rtt) {
  // A zero sample happens on loopback with coarse clocks; treat it as 1 us
  // so that srtt stays positive (Linux does the same: tcp_rtt_estimator).
  if (rtt.us <= 0) rtt = micros(1);
  latest_ = rtt;
  min_rtt_.update(now, rtt);

  if (!has_sample_) {
    // RFC 6298 2.2: SRTT <- R, RTTVAR <- R/2.
    srtt_ = rtt;
    rttvar_ = rtt / 2;
    has_sample_ = true;
  } else {
    // RFC 6298 2.3, beta = 1/4 and alpha = 1/8; RTTVAR uses the old SRTT,
    // so it is updated first.
    const Duration err = srtt_ > rtt ? srtt_ - rtt : rtt - srtt_;
    rttvar_ = Duration{(3 * rttvar_.us + err.us) / 4};
    srtt_ = Duration{(7 * srtt_.us + rtt.us) / 8};
  }

  // RFC 6298 2.3 has RTO = SRTT + max(G, 4*RTTVAR). Linux puts its 200 ms
  // floor in place of the clock granularity G (tcp_set_rto: srtt + max(mdev,
  // rto_min)), so a 1 ms path gets a ~201 ms RTO, not 200 ms flat.
  Duration rto = srtt_ + max(rttvar_ * 4, rto_min_);
  if (rto < rto_min_) rto = rto_min_;
  if (rto > rto_max_) rto = rto_max_;
  base_rto_ = rto;
  // RFC 6298 5.7: a new valid sample ends the backoff.
  backoff_ = 0;
}

void RttEstimator::backoff() {
  // Stop counting once the doubled value is already at the ceiling, so the
  // shift below cannot overflow however many times the timer fires.
  if (rto() < rto_max_) ++backoff_;
}

void RttEstimator::use_syn_fallback() {
  if (!has_sample_ && base_rto_ < kSynFallbackRto) base_rto_ = kSynFallbackRto;
}

Duration RttEstimator::rto() const {
  Duration r = base_rto_;
  for (uint32_t i = 0; i < backoff_ && r < rto_max_; ++i) r = r * 2;
  if (r > rto_max_) r = rto_max_;
  if (r < rto_min_) r = rto_min_;
  return r;
}

}  // namespace xs
