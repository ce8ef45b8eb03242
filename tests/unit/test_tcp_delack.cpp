// Receiver ACK policy: Linux quick-ACK mode at the start, then an ACK for
// every second full segment (RFC 9293 3.8.6.3 / RFC 5681 4.2), the 40 ms
// delayed-ACK timer, and immediate ACKs with SACK for out-of-order data (RFC 2018).
#include <gtest/gtest.h>

#include "tests/support/tcp_test_util.hpp"

namespace xs::test {
namespace {

void data(Passive& p, Instant t, uint32_t off, uint32_t len) {
  p.h.recv(t, {.flags = kA, .seq = p.R(off), .ack = p.L(0), .payload = bytes_of(len)});
}

TEST(TcpDelack, QuickAckAtStartThenEverySecondSegment) {
  Passive p;
  // Quick-ACK mode: the first 16 segments are each acknowledged at once.
  for (uint32_t i = 0; i < 16; ++i) {
    data(p, at_ms(10 + i), i * 1460, 1460);
    check(p.h.expect_one(), {.flags = kA, .seq = p.L(0), .ack = p.R((i + 1) * 1460)});
  }
  data(p, at_ms(30), 16 * 1460, 1460);
  p.h.expect_none();  // one full segment: delayed
  data(p, at_ms(31), 17 * 1460, 1460);
  check(p.h.expect_one(), {.flags = kA, .ack = p.R(18 * 1460)});  // second full segment
  data(p, at_ms(50), 18 * 1460, 1460);
  p.h.expect_none();
  p.h.run_until(at_ms(89));
  p.h.expect_none();
  p.h.run_until(at_ms(90));  // delack_min = 40 ms
  check(p.h.expect_one(), {.flags = kA, .ack = p.R(19 * 1460)});
  EXPECT_EQ(p.h.counters.tcp_delayed_acks, 1u);
}

TEST(TcpDelack, SingleSegmentAckedByTimer) {
  Passive p;
  p.s->set_quickack(false);
  data(p, at_ms(10), 0, 100);
  p.h.expect_none();
  p.h.run_until(at_ms(49));
  p.h.expect_none();
  p.h.run_until(at_ms(50));
  check(p.h.expect_one(), {.flags = kA, .seq = p.L(0), .ack = p.R(100)});
  // The timer is not re-armed without new data.
  p.h.run_until(at_ms(1000));
  p.h.expect_none();
}

// Data we send piggybacks the pending ACK and cancels the timer.
TEST(TcpDelack, PiggybackedOnData) {
  Passive p;
  p.s->set_quickack(false);
  data(p, at_ms(10), 0, 100);
  p.h.expect_none();
  send_str(p.s, at_ms(20), "reply");
  check(p.h.expect_one(), {.flags = kA | kP, .seq = p.L(0), .ack = p.R(100), .payload = "reply"});
  p.h.run_until(at_ms(200));
  p.h.expect_none();
}

// RFC 5681 4.2 / RFC 2018: out-of-order data is acknowledged at once with
// SACK blocks, the first reporting the most recently received segment.
TEST(TcpDelack, OutOfOrderAckedImmediatelyWithSack) {
  Seg syn = TcpHarness::default_syn();
  syn.sack_permitted = true;
  Passive p(TcpHarness::default_config(), syn);
  p.s->set_quickack(false);
  data(p, at_ms(10), 1460, 100);
  Sent a1 = p.h.expect_one();
  check(a1, {.flags = kA, .seq = p.L(0), .ack = p.R(0)});
  ASSERT_EQ(a1.opts.sack_count, 1);
  EXPECT_EQ(a1.opts.sack[0], (SackBlock{Seq(p.R(1460)), Seq(p.R(1560))}));
  data(p, at_ms(11), 3000, 100);
  Sent a2 = p.h.expect_one();
  check(a2, {.flags = kA, .ack = p.R(0)});
  ASSERT_EQ(a2.opts.sack_count, 2);
  EXPECT_EQ(a2.opts.sack[0], (SackBlock{Seq(p.R(3000)), Seq(p.R(3100))}));
  EXPECT_EQ(a2.opts.sack[1], (SackBlock{Seq(p.R(1460)), Seq(p.R(1560))}));
  // A segment extending the older block moves it to the front.
  data(p, at_ms(12), 1560, 100);
  Sent a3 = p.h.expect_one();
  ASSERT_EQ(a3.opts.sack_count, 2);
  EXPECT_EQ(a3.opts.sack[0], (SackBlock{Seq(p.R(1460)), Seq(p.R(1660))}));
  EXPECT_EQ(a3.opts.sack[1], (SackBlock{Seq(p.R(3000)), Seq(p.R(3100))}));
  // Filling the hole is acknowledged at once too.
  data(p, at_ms(13), 0, 1460);
  Sent a4 = p.h.expect_one();
  check(a4, {.flags = kA, .ack = p.R(1660)});
  ASSERT_EQ(a4.opts.sack_count, 1);
  EXPECT_EQ(a4.opts.sack[0], (SackBlock{Seq(p.R(3000)), Seq(p.R(3100))}));
  EXPECT_EQ(recv_str(p.s, at_ms(14)).size(), 1660u);
}

// Without SACK the out-of-order ACK is a plain duplicate ACK.
TEST(TcpDelack, OutOfOrderWithoutSackIsDupAck) {
  Passive p;
  p.s->set_quickack(false);
  data(p, at_ms(10), 1460, 100);
  Sent a = p.h.expect_one();
  check(a, {.flags = kA, .ack = p.R(0)});
  EXPECT_EQ(a.opts.sack_count, 0);
}

// An entirely old segment (the peer missed our ACK) is acknowledged at once.
TEST(TcpDelack, DuplicateSegmentAckedAtOnce) {
  Passive p;
  data(p, at_ms(10), 0, 100);
  p.h.expect_one();
  p.s->set_quickack(false);
  data(p, at_ms(20), 0, 100);
  check(p.h.expect_one(), {.flags = kA, .ack = p.R(100)});
}

}  // namespace
}  // namespace xs::test
