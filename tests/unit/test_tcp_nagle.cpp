// Sender-side batching: Nagle with Minshall's refinement (RFC 896, Linux
// tcp_nagle_check), TCP_NODELAY, TCP_CORK (200 ms ceiling) and MSG_MORE.
#include <gtest/gtest.h>

#include "tests/support/tcp_test_util.hpp"

namespace xs::test {
namespace {

TEST(TcpNagle, SmallSegmentHeldWhileSmallSegmentUnacked) {
  Passive p;
  send_str(p.s, at_ms(1), "a");
  check(p.h.expect_one(), {.flags = kA | kP, .seq = p.L(0), .ack = p.R(0), .payload = "a"});
  send_str(p.s, at_ms(2), "b");
  send_str(p.s, at_ms(3), "c");
  p.h.expect_none();
  EXPECT_EQ(p.s->bytes_unsent(), 2u);
  p.h.recv(at_ms(10), {.flags = kA, .seq = p.R(0), .ack = p.L(1)});
  check(p.h.expect_one(), {.flags = kA | kP, .seq = p.L(1), .payload = "bc"});
}

// Nagle never holds a full-sized segment.
TEST(TcpNagle, FullSegmentNotHeld) {
  Passive p;
  send_str(p.s, at_ms(1), "a");
  p.h.expect_one();
  send_str(p.s, at_ms(2), bytes_of(1470));
  auto v = p.h.take();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].seq, p.L(1));
  EXPECT_EQ(v[0].payload.size(), 1460u);
  EXPECT_EQ(p.s->bytes_unsent(), 10u);  // the 10-byte tail waits for "a" to be acked
}

// Minshall: full segments in flight do not hold a small one; only an
// unacknowledged *small* segment does. Checked for several ISNs so that the
// sequence comparison is exercised on both halves of the number space.
TEST(TcpNagle, SmallTailAfterFullSegmentsGoesOut) {
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    Passive p(TcpHarness::default_config(), TcpHarness::default_syn(), at_ms(0), at_ms(0), seed);
    send_str(p.s, at_ms(1), bytes_of(3000));
    auto v = p.h.take();
    ASSERT_EQ(v.size(), 3u) << "seed " << seed << " iss " << p.iss;
    EXPECT_EQ(v[2].payload.size(), 80u);
    EXPECT_EQ(v[2].seq, p.L(2920));
  }
}

TEST(TcpNagle, NodelaySendsAtOnce) {
  Passive p;
  p.s->set_nodelay(at_ms(0), true);
  send_str(p.s, at_ms(1), "a");
  check(p.h.expect_one(), {.seq = p.L(0), .payload = "a"});
  send_str(p.s, at_ms(2), "b");
  check(p.h.expect_one(), {.seq = p.L(1), .payload = "b"});
}

// Setting TCP_NODELAY pushes what Nagle was holding (Linux).
TEST(TcpNagle, SettingNodelayFlushes) {
  Passive p;
  send_str(p.s, at_ms(1), "a");
  p.h.expect_one();
  send_str(p.s, at_ms(2), "b");
  p.h.expect_none();
  p.s->set_nodelay(at_ms(3), true);
  check(p.h.expect_one(), {.seq = p.L(1), .payload = "b"});
}

TEST(TcpCork, HoldsPartialSegmentUntilCorkLimit) {
  Passive p;
  p.s->set_cork(at_ms(1), true);
  send_str(p.s, at_ms(1), bytes_of(100));
  p.h.expect_none();
  p.h.run_until(at_ms(200));
  p.h.expect_none();
  p.h.run_until(at_ms(201));  // 200 ms after the data was held
  check(p.h.expect_one(), {.seq = p.L(0)});
  EXPECT_EQ(p.s->bytes_unsent(), 0u);
}

TEST(TcpCork, UncorkReleases) {
  Passive p;
  p.s->set_cork(at_ms(1), true);
  send_str(p.s, at_ms(1), "abc");
  send_str(p.s, at_ms(2), "def");
  p.h.expect_none();
  p.s->set_cork(at_ms(3), false);
  check(p.h.expect_one(), {.seq = p.L(0), .payload = "abcdef"});
  // No stale cork timer fires later.
  p.h.run_until(at_ms(150));
  p.h.expect_none();
}

TEST(TcpCork, FullSegmentsPassTheCork) {
  Passive p;
  p.s->set_cork(at_ms(1), true);
  send_str(p.s, at_ms(1), bytes_of(3000));
  auto v = p.h.take();
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].payload.size(), 1460u);
  EXPECT_EQ(v[1].payload.size(), 1460u);
  EXPECT_EQ(p.s->bytes_unsent(), 80u);
  p.s->set_cork(at_ms(2), false);
  Sent tail = p.h.expect_one();
  EXPECT_EQ(tail.seq, p.L(2920));
  EXPECT_EQ(tail.payload.size(), 80u);
}

// MSG_MORE holds a partial segment until a send without it.
TEST(TcpMsgMore, HeldUntilSendWithoutMore) {
  Passive p;
  send_str(p.s, at_ms(1), "abc", /*more=*/true);
  p.h.expect_none();
  send_str(p.s, at_ms(2), "def");
  check(p.h.expect_one(), {.seq = p.L(0), .payload = "abcdef"});
}

// MSG_MORE data is not held forever (here: the cork limit).
TEST(TcpMsgMore, EventuallyReleased) {
  Passive p;
  send_str(p.s, at_ms(1), "abc", /*more=*/true);
  p.h.expect_none();
  p.h.run_until(at_ms(200));
  p.h.expect_none();
  p.h.run_until(at_ms(201));
  check(p.h.expect_one(), {.seq = p.L(0), .payload = "abc"});
}

}  // namespace
}  // namespace xs::test
