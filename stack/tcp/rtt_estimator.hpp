// Round-trip time estimation and the retransmission timeout (RFC 6298), with
// the Linux twist that makes RTO ~ SRTT + 200 ms on low-latency paths, and a
// windowed minimum RTT for congestion control (CUBIC, HyStart++, RACK).
#pragma once
#include <cstdint>

#include "stack/base/time.hpp"
#include "stack/tcp/tcp_config.hpp"

namespace xs {

// Running minimum over a sliding time window, keeping the best, second-best
// and third-best samples from successive sub-windows (Kathleen Nichols'
// algorithm, as in Linux lib/win_minmax.c). O(1) time and space: when the
// best sample ages out, the second-best (from a later part of the window)
// takes over instead of the estimate jumping to the newest sample.
class WindowedMin {
 public:
  explicit WindowedMin(Duration window) : window_(window) {}
  // Adds a sample taken at `now` and returns the current windowed minimum.
  Duration update(Instant now, Duration v);
  bool empty() const { return !valid_; }
  Duration get() const { return valid_ ? s_[0].v : Duration{-1}; }
  void reset() { valid_ = false; }

 private:
  struct Sample {
    Instant t;
    Duration v;
  };
  Duration reset_to(Sample s);

  Duration window_;
  Sample s_[3]{};
  bool valid_ = false;
};

class RttEstimator {
 public:
  // Linux keeps min_rtt over 5 minutes (sysctl tcp_min_rtt_wlen = 300 s).
  static constexpr Duration kMinRttWindow = seconds(300);
  // RFC 6298 5.7: RTO used once data flows if the SYN (or SYN-ACK) had to be retransmitted.
  static constexpr Duration kSynFallbackRto = seconds(3);

  RttEstimator(Duration rto_initial, Duration rto_min, Duration rto_max);
  explicit RttEstimator(const TcpConfig& cfg)
      : RttEstimator(cfg.rto_initial, cfg.rto_min, cfg.rto_max) {}

  // A valid RTT measurement (Karn's algorithm is the caller's job: no samples
  // from retransmitted segments unless timestamps disambiguate them, RFC 6298 3 / RFC 7323 4).
  // Also clears the exponential backoff (RFC 6298 5.7).
  void on_sample(Instant now, Duration rtt);

  // RTO expired: double the timer (RFC 6298 5.5), bounded by rto_max.
  void backoff();
  void reset_backoff() { backoff_ = 0; }
  uint32_t backoff_count() const { return backoff_; }

  // The handshake completed after the SYN was retransmitted and no RTT sample
  // was taken: RFC 6298 5.7 re-initializes RTO to 3 s (Linux TCP_TIMEOUT_FALLBACK).
  void use_syn_fallback();

  bool has_sample() const { return has_sample_; }
  Duration srtt() const { return srtt_; }
  Duration rttvar() const { return rttvar_; }
  Duration latest() const { return latest_; }
  Duration min_rtt() const { return min_rtt_.get(); }  // negative before the first sample
  // Current timeout, backoff applied, within [rto_min, rto_max].
  Duration rto() const;
  // RTO without backoff.
  Duration base_rto() const { return base_rto_; }

 private:
  Duration rto_min_, rto_max_;
  Duration srtt_{0}, rttvar_{0}, latest_{-1};
  Duration base_rto_;
  uint32_t backoff_ = 0;
  bool has_sample_ = false;
  WindowedMin min_rtt_{kMinRttWindow};
};

}  // namespace xs
