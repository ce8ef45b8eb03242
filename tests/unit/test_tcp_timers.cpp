// Retransmission timeout (RFC 6298), SYN / SYN-ACK retransmission, keepalive
// (RFC 9293 3.8.4, Linux tcp_keepalive_timer) and TCP_USER_TIMEOUT (RFC 5482).
#include <gtest/gtest.h>

#include "tests/support/tcp_test_util.hpp"

namespace xs::test {
namespace {

// Handshake RTT 10 ms: SRTT 10, RTTVAR 5, RTO = 10 + max(4 * 5, 200) = 210 ms (Linux tcp_set_rto).
Passive rtt10(TcpConfig cfg = TcpHarness::default_config()) {
  return Passive(cfg, TcpHarness::default_syn(), at_ms(0), at_ms(10));
}

TEST(TcpRto, RetransmitAfterRtoWithBackoff) {
  Passive p = rtt10();
  EXPECT_EQ(TcpSocketTestAccess::rto(*p.s), millis(210));
  send_str(p.s, at_ms(20), "data");
  check(p.h.expect_one(), {.seq = p.L(0), .payload = "data"});
  p.h.run_until(at_ms(229));
  p.h.expect_none();
  p.h.run_until(at_ms(230));
  // The retransmission keeps the original PSH (Linux resends the skb with its flags).
  check(p.h.expect_one(), {.flags = kA | tcpflag::kPsh, .seq = p.L(0), .ack = p.R(0), .payload = "data"});
  p.h.run_until(at_ms(649));
  p.h.expect_none();
  p.h.run_until(at_ms(650));  // doubled: 420 ms
  check(p.h.expect_one(), {.seq = p.L(0), .payload = "data"});
  p.h.run_until(at_ms(1490));  // 840 ms
  check(p.h.expect_one(), {.seq = p.L(0), .payload = "data"});
  EXPECT_EQ(p.h.counters.tcp_timeouts, 3u);
  // An ACK ends it and clears the backoff.
  p.h.recv(at_ms(1500), {.flags = kA, .seq = p.R(0), .ack = p.L(4)});
  p.h.run_until(at_ms(100000));
  p.h.expect_none();
  EXPECT_EQ(TcpSocketTestAccess::rto(*p.s), millis(210));
}

// RTO = SRTT + max(4 RTTVAR, 200 ms): a 100 ms path gives 300 ms.
TEST(TcpRto, MeasuredRto) {
  Passive p(TcpHarness::default_config(), TcpHarness::default_syn(), at_ms(0), at_ms(100));
  send_str(p.s, at_ms(200), "x");
  p.h.expect_one();
  p.h.run_until(at_ms(499));
  p.h.expect_none();
  p.h.run_until(at_ms(500));
  check(p.h.expect_one(), {.seq = p.L(0), .payload = "x"});
}

// The floor is rto_min (200 ms) even on a near-zero RTT path.
TEST(TcpRto, MinimumRto) {
  Passive p;  // handshake RTT ~0
  EXPECT_GE(TcpSocketTestAccess::rto(*p.s), millis(200));
  EXPECT_LT(TcpSocketTestAccess::rto(*p.s), millis(201));
  send_str(p.s, at_ms(10), "x");
  p.h.expect_one();
  p.h.run_until(at_ms(209));
  p.h.expect_none();
  p.h.run_until(at_ms(211));
  EXPECT_EQ(p.h.take().size(), 1u);
}

// After tcp_retries2 timeouts the connection is dropped with ETIMEDOUT (no RST).
TEST(TcpRto, GiveUpAfterRetries2) {
  TcpConfig cfg = TcpHarness::default_config();
  cfg.retries2 = 3;
  Passive p = rtt10(cfg);
  send_str(p.s, at_ms(20), "data");
  p.h.expect_one();
  p.h.run_until(at_ms(1490));
  EXPECT_EQ(p.h.take().size(), 3u);  // 230, 650, 1490
  EXPECT_EQ(p.s->state(), TcpState::Established);
  p.h.run_until(at_ms(3169));
  p.h.expect_none();
  EXPECT_EQ(p.s->state(), TcpState::Established);
  p.h.run_until(at_ms(3170));
  p.h.expect_none();
  EXPECT_EQ(p.s->state(), TcpState::Closed);
  EXPECT_TRUE(p.s->readiness() & ev::kErr);
  EXPECT_EQ(p.s->take_error(), SockError::TimedOut);
  EXPECT_EQ(p.h.counters.tcp_abort_on_timeout, 1u);
}

// SYN retransmission: initial RTO 1 s, doubling; ETIMEDOUT after tcp_syn_retries.
TEST(TcpSynRetransmit, BackoffAndTimeout) {
  TcpConfig cfg = TcpHarness::default_config();
  cfg.syn_retries = 3;
  TcpHarness h(cfg);
  TcpSocket* s = h.tcp.open();
  (void)s->connect(at_ms(0), {kRemoteIp, kRemotePort});
  Sent syn = h.expect_one();
  h.run_until(at_ms(999));
  h.expect_none();
  for (int64_t t : {1000, 3000, 7000}) {
    h.run_until(at_ms(t - 1));
    h.expect_none();
    h.run_until(at_ms(t));
    check(h.expect_one(), {.flags = kS, .seq = syn.seq}, "SYN retransmission");
  }
  EXPECT_EQ(s->state(), TcpState::SynSent);
  h.run_until(at_ms(14999));
  h.expect_none();
  h.run_until(at_ms(15000));
  h.expect_none();
  EXPECT_EQ(s->state(), TcpState::Closed);
  EXPECT_EQ(s->take_error(), SockError::TimedOut);
}

// SYN-ACK retransmission from SYN-RECEIVED: 1 s, 2 s, ...
TEST(TcpSynRetransmit, SynAckBackoff) {
  TcpHarness h;
  h.listener();
  h.recv(at_ms(0), TcpHarness::default_syn());
  Sent sa = h.expect_one();
  h.run_until(at_ms(999));
  h.expect_none();
  h.run_until(at_ms(1000));
  check(h.expect_one(), {.flags = kS | kA, .seq = sa.seq, .ack = kRemoteIss + 1});
  h.run_until(at_ms(2999));
  h.expect_none();
  h.run_until(at_ms(3000));
  check(h.expect_one(), {.flags = kS | kA, .seq = sa.seq});
}

// RFC 6298 5.7: if the SYN had to be retransmitted (no RTT sample), the RTO
// for data is 3 s (Linux TCP_TIMEOUT_FALLBACK).
TEST(TcpSynRetransmit, RtoFallbackAfterSynRetransmit) {
  TcpHarness h;
  TcpSocket* s = h.tcp.open();
  (void)s->connect(at_ms(0), {kRemoteIp, kRemotePort});
  Sent syn = h.expect_one();
  h.run_until(at_ms(1000));
  h.expect_one();
  Seg sa = TcpHarness::default_syn();
  sa.flags = kS | kA;
  sa.ack = syn.seq + 1;
  h.recv(at_ms(1100), sa, kRemotePort, syn.src_port);
  h.expect_one();
  EXPECT_EQ(s->state(), TcpState::Established);
  send_str(s, at_ms(1200), "x");
  h.expect_one();
  h.run_until(at_ms(4199));
  h.expect_none();
  h.run_until(at_ms(4200));
  check(h.expect_one(), {.seq = syn.seq + 1, .payload = "x"});
}

// ---- keepalive ----------------------------------------------------------------

struct Keepalive : Passive {
  explicit Keepalive(Duration user_timeout = Duration{0}, uint32_t count = 3)
      : Passive(TcpHarness::default_config(), TcpHarness::default_syn(), at_ms(0), at_ms(10)) {
    s->options().keep_idle = seconds(10);
    s->options().keep_interval = seconds(2);
    s->options().keep_count = count;
    s->options().user_timeout = user_timeout;
    s->set_keepalive(at_ms(10), true);
  }
};

TEST(TcpKeepalive, ProbesThenTimeout) {
  Keepalive p;
  p.h.run_until(at_ms(10009));
  p.h.expect_none();
  for (int64_t t : {10010, 12010, 14010}) {
    p.h.run_until(at_ms(t - 1));
    p.h.expect_none();
    p.h.run_until(at_ms(t));
    check(p.h.expect_one(), {.flags = kA, .seq = p.L(0) - 1, .ack = p.R(0), .payload = ""}, "keepalive probe");
  }
  EXPECT_EQ(p.h.counters.tcp_keepalive_probes, 3u);
  p.h.run_until(at_ms(16009));
  p.h.expect_none();
  p.h.run_until(at_ms(16010));
  check(p.h.expect_one(), {.flags = kR | kA, .seq = p.L(0), .ack = p.R(0)});
  EXPECT_EQ(p.s->state(), TcpState::Closed);
  EXPECT_EQ(p.s->take_error(), SockError::TimedOut);
  EXPECT_EQ(p.h.counters.tcp_keepalive_timeouts, 1u);
}

// A reply resets the probe count; the next probe comes keep_idle after it.
TEST(TcpKeepalive, ReplyResets) {
  Keepalive p;
  p.h.run_until(at_ms(10010));
  p.h.expect_one();
  p.h.recv(at_ms(10500), {.flags = kA, .seq = p.R(0), .ack = p.L(0)});
  p.h.expect_none();
  p.h.run_until(at_ms(20499));
  p.h.expect_none();
  p.h.run_until(at_ms(20500));
  check(p.h.expect_one(), {.flags = kA, .seq = p.L(0) - 1});
  EXPECT_EQ(p.s->state(), TcpState::Established);
}

// Received data postpones the first probe.
TEST(TcpKeepalive, TrafficPostponesProbe) {
  Keepalive p;
  p.h.recv(at_ms(5000), {.flags = kA | kP, .seq = p.R(0), .ack = p.L(0), .payload = "x"});
  p.h.expect_one();
  p.h.run_until(at_ms(14999));
  p.h.expect_none();
  p.h.run_until(at_ms(15000));
  check(p.h.expect_one(), {.flags = kA, .seq = p.L(0) - 1, .ack = p.R(1)});
}

// Linux: with TCP_USER_TIMEOUT set, keepalive gives up when the connection
// has been silent that long (and a probe is outstanding), not after keep_count.
TEST(TcpKeepalive, UserTimeoutOverridesCount) {
  Keepalive p(seconds(15), /*count=*/1);
  p.h.run_until(at_ms(10010));
  p.h.expect_one();
  p.h.run_until(at_ms(12010));  // count 1 reached, but user timeout not yet
  check(p.h.expect_one(), {.flags = kA, .seq = p.L(0) - 1});
  EXPECT_EQ(p.s->state(), TcpState::Established);
  p.h.run_until(at_ms(14010));
  check(p.h.expect_one(), {.flags = kA, .seq = p.L(0) - 1});
  p.h.run_until(at_ms(16010));  // silent 16 s >= 15 s
  check(p.h.expect_one(), {.flags = kR | kA});
  EXPECT_EQ(p.s->take_error(), SockError::TimedOut);
}

TEST(TcpKeepalive, UserTimeoutShorterThanCount) {
  Keepalive p(seconds(11), /*count=*/9);
  p.h.run_until(at_ms(10010));
  p.h.expect_one();
  p.h.run_until(at_ms(12010));
  check(p.h.expect_one(), {.flags = kR | kA});
  EXPECT_EQ(p.s->state(), TcpState::Closed);
}

// TCP_USER_TIMEOUT on unacknowledged data: the connection is dropped once the
// oldest unacknowledged data is that old; Linux clamps the RTO timer to the
// remaining time (tcp_clamp_rto_to_user_timeout).
TEST(TcpUserTimeout, DropsUnackedDataConnection) {
  Passive p = rtt10();
  p.s->options().user_timeout = seconds(1);
  send_str(p.s, at_ms(20), "data");
  p.h.expect_one();
  p.h.run_until(at_ms(650));
  EXPECT_EQ(p.h.take().size(), 2u);  // 230, 650
  p.h.run_until(at_ms(1019));
  p.h.expect_none();
  EXPECT_EQ(p.s->state(), TcpState::Established);
  p.h.run_until(at_ms(1020));
  EXPECT_EQ(p.s->state(), TcpState::Closed);
  EXPECT_EQ(p.s->take_error(), SockError::TimedOut);
}

}  // namespace
}  // namespace xs::test
