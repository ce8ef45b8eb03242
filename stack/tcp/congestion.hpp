// Pluggable congestion control, shaped after Linux's tcp_congestion_ops.
// Windows are in bytes (RFC 5681). The connection owns loss detection and
// recovery; the algorithm only decides cwnd and ssthresh.
#pragma once
#include <cstdint>
#include <string_view>

#include "stack/base/time.hpp"

namespace xs {

struct AckSample {
  uint32_t acked_bytes = 0;     // newly cumulatively acked (and newly SACKed) bytes
  uint32_t bytes_in_flight = 0; // before this ACK
  bool cwnd_limited = false;    // the sender was limited by cwnd, not by the app (RFC 7661)
  Duration rtt{-1};             // RTT sample from this ACK, negative if none
  Duration min_rtt{-1};         // smallest RTT seen on the connection, negative if none
};

class CongestionControl {
 public:
  virtual ~CongestionControl() = default;
  virtual std::string_view name() const = 0;

  // Connection established (or algorithm switched): initial window per RFC 6928
  // (10 segments), ssthresh "arbitrarily high" (RFC 5681 3.1).
  virtual void init(Instant now, uint32_t mss) = 0;
  // The MSS changed (PMTU): keep the window in segments.
  virtual void set_mss(uint32_t mss) = 0;

  // An ACK advanced snd_una (or SACKed new data) outside loss recovery.
  virtual void on_ack(Instant now, const AckSample& s) = 0;
  // Loss detected by duplicate ACKs / SACK / RACK: enter recovery. Sets
  // ssthresh (RFC 5681 eq. 4, or CUBIC's beta) and cwnd for recovery.
  virtual void on_loss(Instant now, uint32_t bytes_in_flight) = 0;
  // Loss recovery finished (snd_una passed the recovery point): cwnd = ssthresh.
  virtual void on_recovery_exit(Instant now) = 0;
  // Retransmission timeout: ssthresh = max(flight/2, 2*MSS) (RFC 5681 eq. 4), cwnd = 1 MSS.
  virtual void on_rto(Instant now, uint32_t bytes_in_flight) = 0;
  // An earlier RTO or fast retransmit was spurious (RFC 5682/DSACK): restore the state before it.
  virtual void undo() = 0;
  // Sending restarts after idle longer than one RTO: RFC 5681 4.1 / RFC 7661 restart window.
  virtual void on_idle_restart(Instant now, Duration idle, Duration rto) = 0;

  uint32_t cwnd() const { return cwnd_; }
  uint32_t ssthresh() const { return ssthresh_; }
  bool in_slow_start() const { return cwnd_ < ssthresh_; }

 protected:
  uint32_t cwnd_ = 0;
  uint32_t ssthresh_ = 0x7fffffff;
  uint32_t mss_ = 536;
};

}  // namespace xs
