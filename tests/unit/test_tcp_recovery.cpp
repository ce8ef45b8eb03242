// Fast retransmit / fast recovery: NewReno (RFC 6582) without SACK and
// SACK-based loss recovery (RFC 6675).
#include <gtest/gtest.h>

#include "tests/support/tcp_test_util.hpp"

namespace xs::test {
namespace {

SackBlock blk(uint32_t a, uint32_t b) { return SackBlock{Seq(a), Seq(b)}; }

TEST(TcpRecovery, NewRenoFastRetransmitAndPartialAck) {
  Passive p(TcpHarness::default_config(), TcpHarness::default_syn(), at_ms(0), at_ms(10));
  ASSERT_FALSE(p.s->sack_enabled());
  send_str(p.s, at_ms(20), bytes_of(7300));
  EXPECT_EQ(p.h.take().size(), 5u);
  p.h.recv(at_ms(30), {.flags = kA, .seq = p.R(0), .ack = p.L(0)});
  p.h.recv(at_ms(31), {.flags = kA, .seq = p.R(0), .ack = p.L(0)});
  p.h.expect_none();  // two duplicate ACKs are not enough
  p.h.recv(at_ms(32), {.flags = kA, .seq = p.R(0), .ack = p.L(0)});
  Sent r1 = p.h.expect_one();
  check(r1, {.flags = kA, .seq = p.L(0), .ack = p.R(0)});
  EXPECT_EQ(r1.payload.size(), 1460u);
  EXPECT_EQ(p.h.counters.tcp_reno_recovery, 1u);
  EXPECT_EQ(p.h.counters.tcp_fast_retrans, 1u);
  EXPECT_LT(p.s->cwnd(), 7300u);
  // Partial ACK (RFC 6582 3.2 step 5): the next hole is resent at once.
  p.h.recv(at_ms(40), {.flags = kA, .seq = p.R(0), .ack = p.L(1460)});
  Sent r2 = p.h.expect_one();
  EXPECT_EQ(r2.seq, p.L(1460));
  EXPECT_EQ(r2.payload.size(), 1460u);
  // The full ACK ends recovery; nothing else is resent.
  p.h.recv(at_ms(50), {.flags = kA, .seq = p.R(0), .ack = p.L(7300)});
  p.h.expect_none();
  EXPECT_EQ(p.h.counters.tcp_timeouts, 0u);
}

// Window updates are not duplicate ACKs (RFC 5681 2, condition (e)).
TEST(TcpRecovery, WindowUpdateIsNotDupAck) {
  Passive p(TcpHarness::default_config(), TcpHarness::default_syn(), at_ms(0), at_ms(10));
  send_str(p.s, at_ms(20), bytes_of(7300));
  p.h.take();
  p.h.recv(at_ms(30), {.flags = kA, .seq = p.R(0), .ack = p.L(0), .window = 60000});
  p.h.recv(at_ms(31), {.flags = kA, .seq = p.R(0), .ack = p.L(0), .window = 50000});
  p.h.recv(at_ms(32), {.flags = kA, .seq = p.R(0), .ack = p.L(0), .window = 40000});
  p.h.expect_none();
  EXPECT_EQ(p.h.counters.tcp_fast_retrans, 0u);
}

// RFC 6675: with SACK, only the holes are retransmitted.
TEST(TcpRecovery, SackRetransmitsOnlyHoles) {
  Seg syn = TcpHarness::default_syn();
  syn.sack_permitted = true;
  Passive p(TcpHarness::default_config(), syn, at_ms(0), at_ms(10));
  ASSERT_TRUE(p.s->sack_enabled());
  send_str(p.s, at_ms(20), bytes_of(8760));
  EXPECT_EQ(p.h.take().size(), 6u);
  // Segments 1 and 3 are lost; 2, 4, 5, 6 arrive.
  Seg d1{.flags = kA, .seq = p.R(0), .ack = p.L(0)};
  d1.sack = {blk(p.L(1460), p.L(2920))};
  p.h.recv(at_ms(30), d1);
  Seg d2 = d1;
  d2.sack = {blk(p.L(4380), p.L(5840)), blk(p.L(1460), p.L(2920))};
  p.h.recv(at_ms(31), d2);
  p.h.expect_none();
  Seg d3 = d1;
  d3.sack = {blk(p.L(4380), p.L(8760)), blk(p.L(1460), p.L(2920))};
  p.h.recv(at_ms(32), d3);
  auto v = p.h.take();
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].seq, p.L(0));
  EXPECT_EQ(v[0].payload.size(), 1460u);
  EXPECT_EQ(v[1].seq, p.L(2920));
  EXPECT_EQ(v[1].payload.size(), 1460u);
  EXPECT_EQ(p.h.counters.tcp_sack_recovery, 1u);
  // More duplicate ACKs: nothing SACKed is ever resent.
  p.h.recv(at_ms(33), d3);
  p.h.expect_none();
  Seg done{.flags = kA, .seq = p.R(0), .ack = p.L(8760)};
  p.h.recv(at_ms(40), done);
  p.h.expect_none();
  p.h.run_until(at_ms(5000));
  p.h.expect_none();
}

// RTO recovery resends from SND.UNA in slow start (cwnd = 1 segment).
TEST(TcpRecovery, RtoResendsOneSegmentThenSlowStart) {
  Passive p(TcpHarness::default_config(), TcpHarness::default_syn(), at_ms(0), at_ms(10));
  send_str(p.s, at_ms(20), bytes_of(4380));
  EXPECT_EQ(p.h.take().size(), 3u);
  p.h.run_until(at_ms(230));
  Sent r = p.h.expect_one();
  EXPECT_EQ(r.seq, p.L(0));
  EXPECT_EQ(p.s->cwnd(), 1460u);
  // ACK of the first segment: cwnd 2, the next two are resent.
  p.h.recv(at_ms(240), {.flags = kA, .seq = p.R(0), .ack = p.L(1460)});
  auto v = p.h.take();
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].seq, p.L(1460));
  EXPECT_EQ(v[1].seq, p.L(2920));
}

}  // namespace
}  // namespace xs::test
