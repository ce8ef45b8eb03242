// Connection termination (RFC 9293 3.6): active, passive and simultaneous
// close, half-close, abortive close (Linux), and TIME_WAIT (incl. RFC 6191).
#include <gtest/gtest.h>

#include "tests/support/tcp_test_util.hpp"

namespace xs::test {
namespace {

// ESTABLISHED -> FIN_WAIT_1 -> FIN_WAIT_2 -> TIME_WAIT.
TEST(TcpClose, ActiveClose) {
  Passive p;
  p.s->close(at_ms(10));
  check(p.h.expect_one(), {.flags = kF | kA, .seq = p.L(0), .ack = p.R(0), .payload = ""});
  EXPECT_EQ(p.s->state(), TcpState::FinWait1);
  p.h.recv(at_ms(20), {.flags = kA, .seq = p.R(0), .ack = p.L(1)});
  p.h.expect_none();
  EXPECT_EQ(p.s->state(), TcpState::FinWait2);
  p.h.recv(at_ms(30), {.flags = kF | kA, .seq = p.R(0), .ack = p.L(1)});
  check(p.h.expect_one(), {.flags = kA, .seq = p.L(1), .ack = p.R(1)});
  EXPECT_EQ(p.s->state(), TcpState::TimeWait);
}

// FIN_WAIT_1 receiving FIN+ACK (acking our FIN) goes straight to TIME_WAIT.
TEST(TcpClose, FinWait1FinAckToTimeWait) {
  Passive p;
  p.s->close(at_ms(10));
  p.h.expect_one();
  p.h.recv(at_ms(20), {.flags = kF | kA, .seq = p.R(0), .ack = p.L(1)});
  check(p.h.expect_one(), {.flags = kA, .seq = p.L(1), .ack = p.R(1)});
  EXPECT_EQ(p.s->state(), TcpState::TimeWait);
}

// Simultaneous close: FIN_WAIT_1 -> CLOSING -> TIME_WAIT.
TEST(TcpClose, SimultaneousClose) {
  Passive p;
  p.s->close(at_ms(10));
  p.h.expect_one();
  // The peer's FIN crossed ours: it does not acknowledge our FIN.
  p.h.recv(at_ms(20), {.flags = kF | kA, .seq = p.R(0), .ack = p.L(0)});
  check(p.h.expect_one(), {.flags = kA, .seq = p.L(1), .ack = p.R(1)});
  EXPECT_EQ(p.s->state(), TcpState::Closing);
  p.h.recv(at_ms(30), {.flags = kA, .seq = p.R(1), .ack = p.L(1)});
  p.h.expect_none();
  EXPECT_EQ(p.s->state(), TcpState::TimeWait);
}

// ESTABLISHED -> CLOSE_WAIT -> LAST_ACK -> CLOSED (and the socket is freed).
TEST(TcpClose, PassiveClose) {
  Passive p;
  p.h.recv(at_ms(10), {.flags = kF | kA, .seq = p.R(0), .ack = p.L(0)});
  check(p.h.expect_one(), {.flags = kA, .seq = p.L(0), .ack = p.R(1)});
  EXPECT_EQ(p.s->state(), TcpState::CloseWait);
  EXPECT_TRUE(recv_eof(p.s, at_ms(11)));  // end of stream
  // Sending is still allowed in CLOSE_WAIT.
  send_str(p.s, at_ms(12), "bye");
  check(p.h.expect_one(), {.flags = kA | kP, .seq = p.L(0), .ack = p.R(1), .payload = "bye"});
  p.h.recv(at_ms(13), {.flags = kA, .seq = p.R(1), .ack = p.L(3)});
  const size_t before = p.h.tcp.socket_count();
  p.s->close(at_ms(14));
  check(p.h.expect_one(), {.flags = kF | kA, .seq = p.L(3), .ack = p.R(1)});
  EXPECT_EQ(p.s->state(), TcpState::LastAck);
  p.h.recv(at_ms(20), {.flags = kA, .seq = p.R(1), .ack = p.L(4)});
  p.h.expect_none();
  EXPECT_EQ(p.h.tcp.socket_count(), before - 1);
  // The 4-tuple is gone: a late segment gets a RST from the layer.
  p.h.recv(at_ms(30), {.flags = kA, .seq = p.R(1), .ack = p.L(4)});
  check(p.h.expect_one(), {.flags = kR, .seq = p.L(4)});
}

// LAST_ACK with a user still holding the socket: CLOSED, no error reported.
TEST(TcpClose, LastAckViaShutdownKeepsHandle) {
  Passive p;
  p.h.recv(at_ms(10), {.flags = kF | kA, .seq = p.R(0), .ack = p.L(0)});
  p.h.expect_one();
  ASSERT_TRUE(p.s->shutdown(at_ms(11), false, true).has_value());
  check(p.h.expect_one(), {.flags = kF | kA, .seq = p.L(0), .ack = p.R(1)});
  EXPECT_EQ(p.s->state(), TcpState::LastAck);
  p.h.recv(at_ms(20), {.flags = kA, .seq = p.R(1), .ack = p.L(1)});
  EXPECT_EQ(p.s->state(), TcpState::Closed);
  EXPECT_EQ(p.s->pending_error(), std::nullopt);
}

// shutdown(SHUT_WR): our FIN goes out, data keeps flowing in.
TEST(TcpClose, HalfCloseKeepsReceiving) {
  Passive p;
  ASSERT_TRUE(p.s->shutdown(at_ms(10), false, true).has_value());
  check(p.h.expect_one(), {.flags = kF | kA, .seq = p.L(0), .ack = p.R(0)});
  EXPECT_EQ(p.s->state(), TcpState::FinWait1);
  auto w = p.s->send(at_ms(11), as_bytes("x"));
  ASSERT_FALSE(w.has_value());
  EXPECT_EQ(w.error(), SockError::BrokenPipe);
  p.h.recv(at_ms(20), {.flags = kA, .seq = p.R(0), .ack = p.L(1)});
  EXPECT_EQ(p.s->state(), TcpState::FinWait2);
  p.h.recv(at_ms(30), {.flags = kA | kP, .seq = p.R(0), .ack = p.L(1), .payload = "more data"});
  check(p.h.expect_one(), {.flags = kA, .seq = p.L(1), .ack = p.R(9)});
  EXPECT_EQ(recv_str(p.s, at_ms(31)), "more data");
  p.h.recv(at_ms(40), {.flags = kF | kA, .seq = p.R(9), .ack = p.L(1)});
  check(p.h.expect_one(), {.flags = kA, .seq = p.L(1), .ack = p.R(10)});
  EXPECT_EQ(p.s->state(), TcpState::TimeWait);
  EXPECT_TRUE(recv_eof(p.s, at_ms(41)));
}

// Linux tcp_close: closing with unread data sends RST, not FIN (RFC 2525 2.17).
TEST(TcpClose, CloseWithUnreadDataSendsRst) {
  Passive p;
  p.h.recv(at_ms(10), {.flags = kA | kP, .seq = p.R(0), .ack = p.L(0), .payload = "unread"});
  p.h.expect_one();
  const size_t before = p.h.tcp.socket_count();
  p.s->close(at_ms(20));
  check(p.h.expect_one(), {.flags = kR | kA, .seq = p.L(0), .ack = p.R(6)});
  EXPECT_EQ(p.h.counters.tcp_abort_on_close, 1u);
  p.h.poll(at_ms(21));
  EXPECT_EQ(p.h.tcp.socket_count(), before - 1);
}

// SO_LINGER with a zero timeout: close() aborts with RST.
TEST(TcpClose, LingerZeroSendsRst) {
  Passive p;
  send_str(p.s, at_ms(5), "abc");
  p.h.expect_one();
  p.s->options().linger_on = true;
  p.s->options().linger_seconds = 0;
  p.s->close(at_ms(10));
  check(p.h.expect_one(), {.flags = kR | kA, .seq = p.L(3), .ack = p.R(0)});
  EXPECT_EQ(p.h.counters.tcp_abort_on_linger, 1u);
  // Nothing of the connection is left: no retransmission ever.
  p.h.run_until(at_ms(100000));
  p.h.expect_none();
}

// An orphan with new data arriving after close() (FIN_WAIT_1/2) is reset
// (Linux TCPAbortOnData).
TEST(TcpClose, DataAfterCloseResets) {
  Passive p;
  p.s->close(at_ms(10));
  p.h.expect_one();
  p.h.recv(at_ms(20), {.flags = kA | kP, .seq = p.R(0), .ack = p.L(1), .payload = "late"});
  check(p.h.expect_one(), {.flags = kR | kA, .seq = p.L(1)});
  EXPECT_EQ(p.h.counters.tcp_abort_on_data, 1u);
}

// Linux tcp_rcv_state_process: the same for a socket the application still
// holds after shutdown(SHUT_RDWR) (RFC 1122 4.2.2.13): reset, ECONNRESET.
TEST(TcpClose, DataAfterShutdownRdWrResets) {
  Passive p;
  ASSERT_TRUE(p.s->shutdown(at_ms(10), true, true).has_value());
  check(p.h.expect_one(), {.flags = kF | kA, .seq = p.L(0), .ack = p.R(0)});
  EXPECT_EQ(p.s->state(), TcpState::FinWait1);
  p.h.recv(at_ms(20), {.flags = kA | kP, .seq = p.R(0), .ack = p.L(1), .payload = "late"});
  check(p.h.expect_one(), {.flags = kR | kA, .seq = p.L(1)});
  EXPECT_EQ(p.s->state(), TcpState::Closed);
  EXPECT_EQ(p.s->pending_error(), SockError::ConnectionReset);
  EXPECT_EQ(p.h.counters.tcp_abort_on_data, 1u);
}

// shutdown(SHUT_WR) alone leaves receiving open: FIN_WAIT takes the data.
TEST(TcpClose, DataAfterShutdownWrIsReceived) {
  Passive p;
  ASSERT_TRUE(p.s->shutdown(at_ms(10), false, true).has_value());
  p.h.expect_one();
  p.h.recv(at_ms(20), {.flags = kA | kP, .seq = p.R(0), .ack = p.L(1), .payload = "late"});
  EXPECT_EQ(recv_str(p.s, at_ms(21)), "late");
  EXPECT_EQ(p.s->state(), TcpState::FinWait2);
  EXPECT_EQ(p.h.counters.tcp_abort_on_data, 0u);
}

// Our FIN is retransmitted on RTO like data.
TEST(TcpClose, FinRetransmittedOnRto) {
  Passive p(TcpHarness::default_config(), TcpHarness::default_syn(), at_ms(0), at_ms(10));
  p.s->close(at_ms(20));
  check(p.h.expect_one(), {.flags = kF | kA, .seq = p.L(0)});
  p.h.run_until(at_ms(229));
  p.h.expect_none();
  p.h.run_until(at_ms(230));  // RTO = 10 ms + 200 ms (srtt + max(4 rttvar, rto_min))
  check(p.h.expect_one(), {.flags = kF | kA, .seq = p.L(0), .ack = p.R(0)});
}

// Linux: an orphaned FIN_WAIT_2 lives tcp_fin_timeout, then disappears
// silently (it is a TIME_WAIT mini-socket in substate FIN_WAIT2; no RST).
TEST(TcpClose, OrphanFinWait2TimesOutSilently) {
  TcpConfig cfg = TcpHarness::default_config();
  cfg.fin_wait2_timeout = seconds(10);
  Passive p(cfg);
  p.s->close(at_ms(10));
  p.h.expect_one();
  p.h.recv(at_ms(20), {.flags = kA, .seq = p.R(0), .ack = p.L(1)});
  EXPECT_EQ(p.s->state(), TcpState::FinWait2);
  const size_t before = p.h.tcp.socket_count();
  p.h.run_until(at_ms(10019));
  EXPECT_EQ(p.h.tcp.socket_count(), before);
  p.h.run_until(at_ms(10020));
  p.h.expect_none();
  EXPECT_EQ(p.h.tcp.socket_count(), before - 1);
}

// ---- TIME_WAIT ---------------------------------------------------------------

// Builds an orphaned TIME_WAIT at t = 30 ms (we closed first).
struct TimeWaitConn : Passive {
  explicit TimeWaitConn(TcpConfig cfg = TcpHarness::default_config(), Seg syn = TcpHarness::default_syn())
      : Passive(cfg, syn) {
    s->close(at_ms(10));
    h.expect_one();
    Seg finack{.flags = kF | kA, .seq = R(0), .ack = L(1)};
    if (syn.ts) finack.ts = TcpTimestamps{syn.ts->val + 50, *our_tsval};
    h.recv(at_ms(30), finack);
    h.expect_one();
    EXPECT_EQ(s->state(), TcpState::TimeWait);
  }
};

TEST(TcpTimeWait, ExpiresAfter2MslAndFreesSocket) {
  TimeWaitConn p;
  const size_t before = p.h.tcp.socket_count();
  p.h.run_until(at_ms(60029));
  EXPECT_EQ(p.h.tcp.socket_count(), before);
  p.h.run_until(at_ms(60030));
  EXPECT_EQ(p.h.tcp.socket_count(), before - 1);
  p.h.expect_none();
}

TEST(TcpTimeWait, LengthIsConfigurable) {
  TcpConfig cfg = TcpHarness::default_config();
  cfg.time_wait = seconds(5);
  TimeWaitConn p(cfg);
  const size_t before = p.h.tcp.socket_count();
  p.h.run_until(at_ms(5029));
  EXPECT_EQ(p.h.tcp.socket_count(), before);
  p.h.run_until(at_ms(5030));
  EXPECT_EQ(p.h.tcp.socket_count(), before - 1);
}

// Linux tcp_max_tw_buckets: a connection that would exceed it closes at once
// (TCPTimeWaitOverflow); below it TIME_WAIT keeps its 2MSL.
TcpConfig with_tw_limit(uint32_t n) {
  TcpConfig cfg = TcpHarness::default_config();
  cfg.max_tw_buckets = n;
  return cfg;
}

TEST(TcpTimeWait, BeyondMaxTwBucketsAConnectionClosesAtOnce) {
  TimeWaitConn p(with_tw_limit(0));
  EXPECT_EQ(p.h.counters.tcp_tw_overflows, 1u);
  const size_t before = p.h.tcp.socket_count();
  p.h.run_until(at_ms(31));
  EXPECT_EQ(p.h.tcp.socket_count(), before - 1) << "kept in TIME_WAIT beyond tcp_max_tw_buckets";
  p.h.expect_none();
}

TEST(TcpTimeWait, BelowMaxTwBucketsTimeWaitLasts2Msl) {
  TimeWaitConn p(with_tw_limit(1));
  EXPECT_EQ(p.h.counters.tcp_tw_overflows, 0u);
  const size_t before = p.h.tcp.socket_count();
  p.h.run_until(at_ms(60029));
  EXPECT_EQ(p.h.tcp.socket_count(), before);
}

// A retransmitted FIN in TIME_WAIT is acknowledged again and restarts 2MSL.
TEST(TcpTimeWait, RetransmittedFinReAckedAndTimerRestarted) {
  TimeWaitConn p;
  const size_t before = p.h.tcp.socket_count();
  p.h.recv(at_ms(30000), {.flags = kF | kA, .seq = p.R(0), .ack = p.L(1)});
  check(p.h.expect_one(), {.flags = kA, .seq = p.L(1), .ack = p.R(1)});
  p.h.run_until(at_ms(60030));
  EXPECT_EQ(p.h.tcp.socket_count(), before);  // restarted at 30 s
  p.h.run_until(at_ms(89999));
  EXPECT_EQ(p.h.tcp.socket_count(), before);
  p.h.run_until(at_ms(90000));
  EXPECT_EQ(p.h.tcp.socket_count(), before - 1);
}

// RST in TIME_WAIT closes it (RFC 9293; Linux does the same unless
// tcp_rfc1337 is set).
TEST(TcpTimeWait, RstClosesTimeWait) {
  TimeWaitConn p;
  const size_t before = p.h.tcp.socket_count();
  p.h.recv(at_ms(1000), {.flags = kR, .seq = p.R(1)});
  p.h.expect_none();
  EXPECT_EQ(p.h.tcp.socket_count(), before - 1);
}

// RFC 6191: a SYN with a newer timestamp reopens the 4-tuple through the
// listener; the new ISN is beyond the old connection's (Linux: snd_nxt + 65537).
TEST(TcpTimeWait, NewerTimestampSynReopens) {
  TimeWaitConn p(TcpHarness::default_config(), syn_with_all_options(1000));
  Seg syn = syn_with_all_options(5000);
  syn.seq = kRemoteIss - 100000;  // the sequence number may even be lower: the timestamp decides
  p.h.recv(at_ms(2000), syn);
  Sent sa = p.h.expect_one();
  check(sa, {.flags = kS | kA, .seq = p.L(1) + 65535 + 2, .ack = syn.seq + 1});
  EXPECT_EQ(p.h.counters.tcp_time_wait_recycled, 1u);
  Seg ack{.flags = kA, .seq = syn.seq + 1, .ack = sa.seq + 1};
  ack.ts = TcpTimestamps{5001, sa.opts.ts->val};
  p.h.recv(at_ms(2001), ack);
  p.h.expect_none();
  auto c = p.h.listen_sock->accept(at_ms(2002));
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ((*c)->state(), TcpState::Established);
}

// A connection that reached TIME_WAIT before the program closed it (it shut
// down its side, then read the peer's FIN) is recycled by a new SYN while
// the program still holds it: the old socket must stay alive, Closed, until
// the program's close() frees it (found by haproxy's close path under ASan).
TEST(TcpTimeWait, ReopenedWhileTheProgramStillHoldsTheSocket) {
  Passive p;
  ASSERT_TRUE(p.s->shutdown(at_ms(10), false, true).has_value());
  check(p.h.expect_one(), {.flags = kF | kA, .seq = p.L(0), .ack = p.R(0)});
  p.h.recv(at_ms(30), {.flags = kF | kA, .seq = p.R(0), .ack = p.L(1)});
  p.h.expect_one();
  ASSERT_EQ(p.s->state(), TcpState::TimeWait);
  const size_t before = p.h.tcp.socket_count();
  Seg syn = TcpHarness::default_syn();
  syn.seq = kRemoteIss + 100000;
  p.h.recv(at_ms(2000), syn);
  check(p.h.expect_one(), {.flags = kS | kA, .seq = p.L(1) + 65537, .ack = syn.seq + 1});
  EXPECT_EQ(p.h.counters.tcp_time_wait_recycled, 1u);
  // The program's socket: Closed, at end of stream, no error; still counted.
  EXPECT_EQ(p.s->state(), TcpState::Closed);
  uint8_t buf[4];
  auto r = p.s->recv(at_ms(2001), MutBytes(buf, sizeof buf));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, 0u);
  EXPECT_FALSE(p.s->take_error().has_value());
  EXPECT_EQ(p.h.tcp.socket_count(), before + 1);  // plus the new incarnation
  p.s->close(at_ms(2002));
  p.h.run_until(at_ms(2003));
  EXPECT_EQ(p.h.tcp.socket_count(), before);
  // The new incarnation completes and is accepted.
  p.h.recv(at_ms(2004), {.flags = kA, .seq = syn.seq + 1, .ack = p.L(1) + 65538});
  auto c = p.h.listen_sock->accept(at_ms(2005));
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ((*c)->state(), TcpState::Established);
}

// A SYN whose timestamp is not newer does not reopen TIME_WAIT; it is
// answered with an ACK for the old connection (PAWS).
TEST(TcpTimeWait, OldTimestampSynDoesNotReopen) {
  TimeWaitConn p(TcpHarness::default_config(), syn_with_all_options(1000));
  Seg syn = syn_with_all_options(900);
  syn.seq = kRemoteIss + 500000;
  p.h.recv(at_ms(2000), syn);
  check(p.h.expect_one(), {.flags = kA, .seq = p.L(1), .ack = p.R(1)});
  EXPECT_EQ(p.h.counters.tcp_time_wait_recycled, 0u);
  EXPECT_FALSE(p.h.listen_sock->accept(at_ms(2001)).has_value());
}

// A SYN in the same timestamp tick as the old connection's last segment (a
// fast reconnect) reopens TIME_WAIT by its higher sequence number, as Linux
// does; before, it met an ACK, the peer's RST and a 1 s SYN retransmission.
TEST(TcpTimeWait, SameTimestampHigherSeqSynReopens) {
  TimeWaitConn p(TcpHarness::default_config(), syn_with_all_options(1000));
  Seg syn = syn_with_all_options(1050);  // equal to TS.Recent (the FIN's)
  syn.seq = kRemoteIss + 100000;
  p.h.recv(at_ms(2000), syn);
  check(p.h.expect_one(), {.flags = kS | kA, .seq = p.L(1) + 65537, .ack = syn.seq + 1});
  EXPECT_EQ(p.h.counters.tcp_time_wait_recycled, 1u);
}

// The same timestamp with a sequence number not beyond the old connection's
// is neither new by timestamp nor by sequence: the old connection answers.
TEST(TcpTimeWait, SameTimestampLowerSeqSynDoesNotReopen) {
  TimeWaitConn p(TcpHarness::default_config(), syn_with_all_options(1000));
  Seg syn = syn_with_all_options(1050);
  syn.seq = kRemoteIss - 100000;
  p.h.recv(at_ms(2000), syn);
  check(p.h.expect_one(), {.flags = kA, .seq = p.L(1), .ack = p.R(1)});
  EXPECT_EQ(p.h.counters.tcp_time_wait_recycled, 0u);
}

// Without timestamps, RFC 6191 falls back to the sequence number (RFC 1122 4.2.2.13).
TEST(TcpTimeWait, HigherSeqSynReopensWithoutTimestamps) {
  TimeWaitConn p;
  Seg syn = TcpHarness::default_syn();
  syn.seq = kRemoteIss + 100000;
  p.h.recv(at_ms(2000), syn);
  check(p.h.expect_one(), {.flags = kS | kA, .seq = p.L(1) + 65537, .ack = syn.seq + 1});
}

}  // namespace
}  // namespace xs::test
