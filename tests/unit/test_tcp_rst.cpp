// Reset processing (RFC 9293 3.10.7.4 second check, RFC 5961 blind-attack
// mitigations) and resets for segments that match no connection (3.10.7.1).
#include <gtest/gtest.h>

#include "tests/support/tcp_test_util.hpp"

namespace xs::test {
namespace {

// RST with SEG.SEQ = RCV.NXT resets: recv reports ECONNRESET once, then EOF (Linux).
TEST(TcpRst, ExactRstInEstablishedResets) {
  Passive p;
  p.h.recv(at_ms(10), {.flags = kR, .seq = p.R(0)});
  p.h.expect_none();
  EXPECT_EQ(p.s->state(), TcpState::Closed);
  EXPECT_TRUE(p.s->readiness() & ev::kErr);
  auto r = recv_raw(p.s, at_ms(11));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), SockError::ConnectionReset);
  EXPECT_TRUE(recv_eof(p.s, at_ms(12)));
  EXPECT_FALSE(p.s->readiness() & ev::kErr);
  EXPECT_EQ(p.h.counters.tcp_in_rsts, 1u);
  EXPECT_EQ(p.h.counters.tcp_estab_resets, 1u);
}

// RFC 5961 3.2: an in-window RST that is not exact gets a challenge ACK.
TEST(TcpRst, InWindowRstGetsChallengeAck) {
  Passive p;
  p.h.recv(at_ms(10), {.flags = kR, .seq = p.R(100)});
  check(p.h.expect_one(), {.flags = kA, .seq = p.L(0), .ack = p.R(0)});
  EXPECT_EQ(p.s->state(), TcpState::Established);
  EXPECT_EQ(p.h.counters.tcp_challenge_acks, 1u);
  // The peer answers the challenge with the exact RST: now it resets.
  p.h.recv(at_ms(11), {.flags = kR, .seq = p.R(0)});
  EXPECT_EQ(p.s->state(), TcpState::Closed);
}

// An RST outside the window is silently dropped.
TEST(TcpRst, OutOfWindowRstIgnored) {
  Passive p;
  p.h.recv(at_ms(10), {.flags = kR, .seq = p.R(70000)});  // window is 65535
  p.h.recv(at_ms(11), {.flags = kR, .seq = p.R(0) - 1});
  p.h.expect_none();
  EXPECT_EQ(p.s->state(), TcpState::Established);
}

// RFC 5961 4.2: any SYN in a synchronized state gets a challenge ACK.
TEST(TcpRst, SynInEstablishedGetsChallengeAck) {
  Passive p;
  p.h.recv(at_ms(10), {.flags = kS, .seq = p.R(5), .mss = 1460});
  check(p.h.expect_one(), {.flags = kA, .seq = p.L(0), .ack = p.R(0)});
  EXPECT_EQ(p.s->state(), TcpState::Established);
  // Also at exactly RCV.NXT.
  p.h.recv(at_ms(11), {.flags = kS, .seq = p.R(0), .mss = 1460});
  check(p.h.expect_one(), {.flags = kA, .seq = p.L(0), .ack = p.R(0)});
  EXPECT_EQ(p.s->state(), TcpState::Established);
  EXPECT_EQ(p.h.counters.tcp_challenge_acks, 2u);
}

// RFC 5961 5.2: an ACK for data never sent is answered with an ACK and the
// segment (with its data) is dropped.
TEST(TcpRst, AckOfUnsentDataAckedAndDropped) {
  Passive p;
  p.h.recv(at_ms(10), {.flags = kA | kP, .seq = p.R(0), .ack = p.L(100), .payload = "zz"});
  check(p.h.expect_one(), {.flags = kA, .seq = p.L(0), .ack = p.R(0)});
  EXPECT_EQ(p.s->bytes_readable(), 0u);
  EXPECT_EQ(p.s->state(), TcpState::Established);
}

// RFC 5961 5.2: an ACK older than SND.UNA - MAX.SND.WND is dropped with an ACK too.
TEST(TcpRst, TooOldAckAckedAndDropped) {
  Passive p;
  p.h.recv(at_ms(10), {.flags = kA | kP, .seq = p.R(0), .ack = p.L(0) - 70000, .payload = "zz"});
  check(p.h.expect_one(), {.flags = kA, .seq = p.L(0), .ack = p.R(0)});
  EXPECT_EQ(p.s->bytes_readable(), 0u);
}

// RFC 5961 7: challenge ACKs are rate limited (tcp_challenge_ack_limit per second).
TEST(TcpRst, ChallengeAckRateLimit) {
  TcpConfig cfg = TcpHarness::default_config();
  cfg.challenge_ack_limit = 2;
  Passive p(cfg);
  p.h.recv(at_ms(1000), {.flags = kR, .seq = p.R(10)});
  p.h.expect_one();
  p.h.recv(at_ms(1500), {.flags = kR, .seq = p.R(20)});
  p.h.expect_one();
  p.h.recv(at_ms(1999), {.flags = kR, .seq = p.R(30)});
  p.h.expect_none();
  EXPECT_EQ(p.h.counters.tcp_challenge_acks, 2u);
  EXPECT_EQ(p.h.counters.tcp_challenge_acks_limited, 1u);
  // The SYN challenge shares the budget.
  p.h.recv(at_ms(1999), {.flags = kS, .seq = p.R(30)});
  p.h.expect_none();
  // Next second: allowed again.
  p.h.recv(at_ms(2000), {.flags = kR, .seq = p.R(40)});
  check(p.h.expect_one(), {.flags = kA, .seq = p.L(0), .ack = p.R(0)});
  EXPECT_EQ(p.s->state(), TcpState::Established);
}

// RST in CLOSE_WAIT: the error is EPIPE (Linux tcp_reset).
TEST(TcpRst, RstInCloseWaitIsBrokenPipe) {
  Passive p;
  p.h.recv(at_ms(10), {.flags = kF | kA, .seq = p.R(0), .ack = p.L(0)});
  p.h.expect_one();
  EXPECT_EQ(p.s->state(), TcpState::CloseWait);
  p.h.recv(at_ms(20), {.flags = kR, .seq = p.R(1)});
  EXPECT_EQ(p.s->state(), TcpState::Closed);
  EXPECT_EQ(p.s->take_error(), SockError::BrokenPipe);
}

// RST in SYN-RECEIVED (passive) forgets the embryonic connection.
TEST(TcpRst, RstInSynReceivedDropsRequest) {
  TcpHarness h;
  TcpSocket* l = h.listener();
  const size_t before = h.tcp.socket_count();
  h.recv(at_ms(0), TcpHarness::default_syn());
  Sent sa = h.expect_one();
  EXPECT_EQ(h.tcp.socket_count(), before + 1);
  h.recv(at_ms(1), {.flags = kR, .seq = kRemoteIss + 1});
  h.expect_none();
  EXPECT_EQ(h.tcp.socket_count(), before);
  // The late ACK finds no connection; the listener answers it with a RST.
  h.recv(at_ms(2), {.flags = kA, .seq = kRemoteIss + 1, .ack = sa.seq + 1});
  check(h.expect_one(), {.flags = kR, .seq = sa.seq + 1});
  EXPECT_FALSE(l->accept(at_ms(3)).has_value());
}

// ---- segments for no connection (RFC 9293 3.10.7.1) ------------------------

// SYN to a closed port: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
TEST(TcpRstClosedPort, SynGetsRstAck) {
  TcpHarness h;
  h.recv(at_ms(0), TcpHarness::default_syn(), kRemotePort, 81);
  Sent r = h.expect_one();
  check(r, {.flags = kR | kA, .seq = 0, .ack = kRemoteIss + 1, .window = 0, .payload = ""});
  EXPECT_EQ(r.src_port, 81);
  EXPECT_EQ(r.dst_port, kRemotePort);
  EXPECT_EQ(h.counters.tcp_out_rsts, 1u);
}

// With ACK: <SEQ=SEG.ACK><CTL=RST>.
TEST(TcpRstClosedPort, AckGetsRstWithItsAck) {
  TcpHarness h;
  h.recv(at_ms(0), {.flags = kA | kP, .seq = 5, .ack = 777, .payload = "abc"}, kRemotePort, 81);
  check(h.expect_one(), {.flags = kR, .seq = 777, .window = 0});
}

// Without ACK the RST acknowledges everything the segment occupied (data + SYN + FIN).
TEST(TcpRstClosedPort, DataAndFinWithoutAckCounted) {
  TcpHarness h;
  h.recv(at_ms(0), {.flags = kF, .seq = 5, .payload = "abc"}, kRemotePort, 81);
  check(h.expect_one(), {.flags = kR | kA, .seq = 0, .ack = 9});
}

// Never answer a RST.
TEST(TcpRstClosedPort, RstNotAnswered) {
  TcpHarness h;
  h.recv(at_ms(0), {.flags = kR | kA, .seq = 5, .ack = 9}, kRemotePort, 81);
  h.recv(at_ms(0), {.flags = kR, .seq = 5}, kRemotePort, 81);
  h.expect_none();
}

// LISTEN (3.10.7.2): an ACK gets <SEQ=SEG.ACK><CTL=RST>, a RST is ignored.
TEST(TcpRstClosedPort, ListenerAnswersAckWithRst) {
  TcpHarness h;
  h.listener();
  h.recv(at_ms(0), {.flags = kA, .seq = 5, .ack = 1234});
  check(h.expect_one(), {.flags = kR, .seq = 1234});
  h.recv(at_ms(0), {.flags = kR, .seq = 5});
  h.expect_none();
}

}  // namespace
}  // namespace xs::test
