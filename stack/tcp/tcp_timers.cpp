// Timer expiry. A connection records its deadlines; the layer's timer set
// calls on_timers() when the earliest one is due (stale entries are skipped).
#include <algorithm>

#include "stack/tcp/tcp_layer_impl.hpp"
#include "stack/tcp/tcp_socket.hpp"

namespace xs {

void TcpSocket::arm_rtx(Instant now) { rtx_deadline_ = now + rtt_.rto(); }

Duration TcpSocket::keepalive_idle() const {
  return opt_.keep_idle.us > 0 ? opt_.keep_idle : layer_.cfg().keepalive_idle;
}
Duration TcpSocket::keepalive_interval() const {
  return opt_.keep_interval.us > 0 ? opt_.keep_interval : layer_.cfg().keepalive_interval;
}
uint32_t TcpSocket::keepalive_count() const {
  return opt_.keep_count > 0 ? opt_.keep_count : layer_.cfg().keepalive_probes;
}

Duration TcpSocket::fin_wait2_timeout() const {
  // Linux tcp_fin_time: TCP_LINGER2 or tcp_fin_timeout, but at least 3.5 RTO
  // so the peer can still retransmit its FIN.
  Duration t = opt_.linger2 > 0 ? seconds(opt_.linger2) : layer_.cfg().fin_wait2_timeout;
  const Duration rto = rtt_.rto();
  const Duration floor{rto.us * 4 - rto.us / 2};
  return t.us < floor.us ? floor : t;
}

void TcpSocket::arm_keepalive(Instant now) {
  if (!opt_.keepalive) return;
  if (state_ == TcpState::Closed || state_ == TcpState::Listen || state_ == TcpState::SynSent) return;
  keepalive_deadline_ = now + keepalive_idle();
}

void TcpSocket::on_timers(Instant now) {
  if (state_deadline_ <= now) {
    state_deadline_ = kNever;
    switch (state_) {
      case TcpState::TimeWait:
        reset_connection(now, SockError::ConnectionReset);
        error_.reset();
        return;
      case TcpState::FinWait2:
        // Linux: an orphan in FIN_WAIT_2 lives tcp_fin_timeout as a TIME_WAIT
        // mini-socket (substate FIN_WAIT2) and then vanishes silently
        // (inet_twsk_kill); no RST is sent.
        if (orphaned()) {
          reset_connection(now, SockError::ConnectionReset);
          error_.reset();
          return;
        }
        break;
      case TcpState::SynReceived:
        // TCP_DEFER_ACCEPT expired after the client's ACK: accept it anyway (Linux).
        if (defer_acked_) {
          enter_established(now);
          move_to_accept_queue(now);
          rtx_deadline_ = kNever;
        }
        break;
      default: break;
    }
  }
  if (delack_deadline_ <= now) {
    delack_deadline_ = kNever;
    if (ack_pending_) {
      // Linux tcp_delack_timer_handler: a delayed ACK that no reply carried
      // ends ping-pong mode.
      pingpong_ = false;
      layer_.counters().tcp_delayed_acks++;
      send_ack(now);
    }
  }
  if (cork_deadline_ <= now) {
    cork_deadline_ = kNever;
    cork_expired_ = true;
    transmit(now);
  }
  if (rtx_deadline_ <= now) {
    rtx_deadline_ = kNever;
    on_retransmit_timer(now);
    if (state_ == TcpState::Closed) return;
  }
  if (keepalive_deadline_ <= now) {
    keepalive_deadline_ = kNever;
    on_keepalive_timer(now);
  }
  flush_ack(now);
}

void TcpSocket::on_retransmit_timer(Instant now) {
  const TcpConfig& c = layer_.cfg();
  switch (state_) {
    case TcpState::SynSent: {
      uint32_t limit = opt_.syn_count ? opt_.syn_count : c.syn_retries;
      if (retries_ >= limit) {
        layer_.counters().tcp_attempt_fails++;
        reset_connection(now, soft_error_.value_or(SockError::TimedOut));
        return;
      }
      retries_++;
      rtt_.backoff();
      rtt_pending_ = false;
      snd_nxt_ = iss_;
      send_syn(now, false);
      snd_nxt_ = iss_ + 1;
      arm_rtx(now);
      return;
    }
    case TcpState::SynReceived: {
      if (synack_retries_ >= c.synack_retries) {
        // The embryonic connection expires silently (Linux reqsk timeout).
        layer_.counters().tcp_attempt_fails++;
        reset_connection(now, SockError::TimedOut);
        return;
      }
      synack_retries_++;
      rtt_.backoff();
      rtt_pending_ = false;
      snd_nxt_ = iss_;
      send_syn(now, true);
      snd_nxt_ = iss_ + 1;
      arm_rtx(now);
      return;
    }
    default: break;
  }
  if (persist_) {
    // RFC 9293 3.8.6.1: probe a zero window with exponential backoff, for as
    // long as the peer keeps answering; give up after retries2 unanswered.
    if (probes_ >= c.retries2) {
      layer_.counters().tcp_abort_on_timeout++;
      reset_connection(now, SockError::TimedOut);
      return;
    }
    probes_++;
    layer_.counters().tcp_zero_window_probes++;
    send_probe(now);
    // The backoff lives in the RTO estimator (Linux icsk_backoff), not in
    // probes_: answered probes reset probes_ (see process_ack) but the
    // interval keeps doubling until the window opens (tcp_probe0_when).
    rtt_.backoff();
    rtx_deadline_ = now + rtt_.rto();
    return;
  }
  if (snd_una_ == snd_nxt_) return;
  on_rto(now);
}

void TcpSocket::on_keepalive_timer(Instant now) {
  // Linux tcp_keepalive_timer: only an idle connection is probed.
  if (!opt_.keepalive || state_ == TcpState::Closed || state_ == TcpState::Listen ||
      state_ == TcpState::SynSent || state_ == TcpState::TimeWait) return;
  if (snd_una_ != snd_nxt_ || bytes_unsent() > 0) {
    keepalive_deadline_ = now + keepalive_idle();
    return;
  }
  Duration elapsed = now - last_rcv_;
  if (elapsed < keepalive_idle() && probes_ == 0) {
    keepalive_deadline_ = last_rcv_ + keepalive_idle();
    return;
  }
  // Linux tcp_keepalive_timer: with TCP_USER_TIMEOUT set, the connection
  // dies when it has been silent that long with a probe outstanding, and the
  // probe count (TCP_KEEPCNT) is not consulted; without it, after keep_count probes.
  const bool give_up = opt_.user_timeout.us > 0 ? (probes_ > 0 && elapsed >= opt_.user_timeout)
                                                : probes_ >= keepalive_count();
  if (give_up) {
    layer_.counters().tcp_keepalive_timeouts++;
    abort_with_rst(now, soft_error_.value_or(SockError::TimedOut));
    return;
  }
  probes_++;
  layer_.counters().tcp_keepalive_probes++;
  send_probe(now);
  keepalive_deadline_ = now + keepalive_interval();
}

}  // namespace xs
