// CUBIC congestion control (RFC 9438) with Linux's constants, and HyStart++
// (RFC 9406) to leave the initial slow start before it overshoots.
// Window arithmetic is in segments as doubles, as in the RFC's formulas; it
// runs once per ACK, not per byte.
#pragma once
#include <cstdint>
#include <string_view>

#include "stack/tcp/congestion.hpp"
#include "stack/tcp/newreno.hpp"

namespace xs {

class CcHolder;

class Cubic final : public CongestionControl {
 public:
  // RFC 9438 4.1/4.6 (and Linux tcp_cubic.c: beta = 717/1024, C = 410/1024).
  static constexpr double kC = 0.4;
  static constexpr double kBeta = 0.7;
  // RFC 9438 4.3: alpha_cubic = 3 * (1 - beta) / (1 + beta).
  static constexpr double kAlpha = 3.0 * (1.0 - kBeta) / (1.0 + kBeta);

  // RFC 9406 4.3 constants.
  static constexpr Duration kHyMinRttThresh = millis(4);
  static constexpr Duration kHyMaxRttThresh = millis(16);
  static constexpr int64_t kHyMinRttDivisor = 8;
  static constexpr uint32_t kHyNRttSample = 8;
  static constexpr uint32_t kHyCssGrowthDivisor = 4;
  static constexpr uint32_t kHyCssRounds = 5;

  enum class HyPhase : uint8_t { SlowStart, Css, Done };

  std::string_view name() const override { return "cubic"; }
  void init(Instant now, uint32_t mss) override;
  void set_mss(uint32_t mss) override;
  void on_ack(Instant now, const AckSample& s) override;
  void on_loss(Instant now, uint32_t bytes_in_flight) override;
  void on_recovery_exit(Instant now) override;
  void on_rto(Instant now, uint32_t bytes_in_flight) override;
  void undo() override;
  void on_idle_restart(Instant now, Duration idle, Duration rto) override;

  // Introspection for tests and diagnostics (TCP_INFO-like). Segments.
  double w_max() const { return w_max_; }
  double k_seconds() const { return k_; }
  bool epoch_started() const { return epoch_valid_; }
  double w_est() const { return w_est_; }
  HyPhase hystart_phase() const { return hy_phase_; }

  // RFC 9438 eq. (1): W_cubic(t) = C*(t - K)^3 + W_max, t and K in seconds.
  static double w_cubic(double t, double k, double w_max);
  // RFC 9438 eq. (2): K = cbrt((W_max - cwnd_epoch) / C), 0 if the window
  // already reaches W_max.
  static double k_for(double w_max, double cwnd_epoch);

 private:
  friend class CcHolder;
  void set_state(uint32_t cwnd, uint32_t ssthresh);
  bool begin_reduction(cc::Episode e);
  void hystart_on_ack(const AckSample& s);
  void grow(Instant now, const AckSample& s);
  void congestion_avoidance(Instant now, uint32_t acked, Duration rtt);
  Duration rtt_for_target(const AckSample& s) const;

  // CUBIC state (segments / seconds).
  double w_max_ = 0;       // window before the last reduction (after fast convergence); 0 = none
  double cwnd_prior_ = 0;  // cwnd when ssthresh was last set (RFC 9438 4.3 alpha switch)
  bool epoch_valid_ = false;
  Instant epoch_start_;
  double k_ = 0;
  double origin_ = 0;      // the plateau W_cubic returns to: max(W_max, cwnd_epoch)
  double w_est_ = 0;       // Reno-friendly estimate (RFC 9438 4.3)
  double cwnd_frac_ = 0;   // fractional bytes of cwnd growth not applied yet
  Duration delay_min_{-1}; // own min RTT, used when the ACK carries none
  bool app_limited_ = false;
  Instant app_limited_since_;

  // HyStart++ (RFC 9406 4.2).
  HyPhase hy_phase_ = HyPhase::SlowStart;
  bool round_started_ = false;
  uint32_t round_target_ = 0;  // bytes in flight when the round began (~ windowEnd)
  uint32_t round_acked_ = 0;
  Duration last_round_min_{-1};
  Duration cur_round_min_{-1};
  uint32_t rtt_sample_count_ = 0;
  Duration css_baseline_{-1};
  uint32_t css_rounds_ = 0;

  // Reduction / undo.
  cc::Episode episode_ = cc::Episode::None;
  struct Undo {
    cc::UndoState base;
    double w_max = 0;
    double cwnd_prior = 0;
  } undo_;
};

}  // namespace xs
