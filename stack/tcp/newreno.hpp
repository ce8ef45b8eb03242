// NewReno window management (RFC 5681 + RFC 6582; the connection runs the
// recovery itself): slow start with Appropriate Byte Counting (RFC 3465),
// byte-counted congestion avoidance, RFC 7661 growth only while cwnd-limited,
// and Linux-style undo and restart-after-idle.
#pragma once
#include <cstdint>
#include <string_view>

#include "stack/tcp/congestion.hpp"

namespace xs {

class CcHolder;

namespace cc {

// RFC 6928: IW = 10 segments (Linux TCP_INIT_CWND).
inline constexpr uint32_t kInitialWindowSegments = 10;
// "Arbitrarily high" initial ssthresh (RFC 5681 3.1; Linux TCP_INFINITE_SSTHRESH).
inline constexpr uint32_t kInfiniteSsthresh = 0x7fffffff;
// Upper bound on cwnd so that byte arithmetic can never overflow uint32_t.
inline constexpr uint32_t kMaxCwnd = 0x3fffffff;
// RFC 3465 2.2: during slow start grow by at most L = 2*SMSS per ACK.
inline constexpr uint32_t kAbcLimitSegments = 2;

// State that undo() restores (Linux prior_cwnd / prior_ssthresh).
struct UndoState {
  uint32_t cwnd = 0;
  uint32_t ssthresh = 0;
  bool valid = false;
};

// Which kind of window reduction is in progress.
enum class Episode : uint8_t { None, FastRecovery, Timeout };

// Linux tcp_cwnd_restart(): the window is halved for every RTO the connection
// sat idle, but not below the restart window min(IW, cwnd). Returns the new cwnd.
uint32_t restart_cwnd(uint32_t cwnd, uint32_t mss, Duration idle, Duration rto);

// Rescales a byte count from one MSS to another keeping it in segments.
uint32_t rescale(uint32_t bytes, uint32_t old_mss, uint32_t new_mss);

}  // namespace cc

class NewReno final : public CongestionControl {
 public:
  std::string_view name() const override { return "reno"; }
  void init(Instant now, uint32_t mss) override;
  void set_mss(uint32_t mss) override;
  void on_ack(Instant now, const AckSample& s) override;
  void on_loss(Instant now, uint32_t bytes_in_flight) override;
  void on_recovery_exit(Instant now) override;
  void on_rto(Instant now, uint32_t bytes_in_flight) override;
  void undo() override;
  void on_idle_restart(Instant now, Duration idle, Duration rto) override;

 private:
  friend class CcHolder;
  // Algorithm switch while established (Linux tcp_reinit_congestion_control
  // keeps the current window).
  void set_state(uint32_t cwnd, uint32_t ssthresh);
  // Enters a window reduction; returns false if one is already in progress,
  // in which case ssthresh is not reduced a second time.
  bool begin_reduction(cc::Episode e);

  uint32_t ca_acked_ = 0;  // bytes acked towards the next +1 MSS in congestion avoidance
  cc::UndoState undo_;
  cc::Episode episode_ = cc::Episode::None;
};

}  // namespace xs
