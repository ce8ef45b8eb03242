// FramePool's kLent state: a received frame a socket keeps past its RX
// callback (zero-copy receive) until it gives it back. No AF_XDP socket is
// needed; the pool is plain bookkeeping (the veth tests cover the rings).
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "xdp/frame_pool.hpp"

namespace xs {
namespace {

using State = FramePool::State;

TEST(FramePoolLent, RxFrameLentAndReleasedKeepsTheInvariant) {
  FramePool p(8, 2048);
  EXPECT_STREQ(FramePool::state_name(State::kLent), "lent");
  auto a = p.take(State::kFill);
  ASSERT_TRUE(a.has_value());
  // RX descriptors point past the kernel's 256-byte headroom in the chunk.
  const uint64_t desc = *a + 256;
  ASSERT_TRUE(p.move(desc, State::kFill, State::kRx));
  ASSERT_TRUE(p.move(desc, State::kRx, State::kLent));
  EXPECT_EQ(p.state_of(*a), State::kLent);
  EXPECT_EQ(p.count(State::kLent), 1u);
  EXPECT_EQ(p.count(State::kRx), 0u);
  EXPECT_EQ(p.free_count(), 7u);
  EXPECT_EQ(p.check_invariant(), "");

  ASSERT_TRUE(p.move(*a, State::kLent, State::kFree));
  EXPECT_EQ(p.count(State::kLent), 0u);
  EXPECT_EQ(p.free_count(), 8u);
  EXPECT_EQ(p.check_invariant(), "");
  // The free list holds the chunk, not the descriptor address: reusable as usual.
  auto again = p.take(State::kFill);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, *a);
  EXPECT_EQ(p.check_invariant(), "");
}

TEST(FramePoolLent, WrongTransitionsAreRefusedAndChangeNothing) {
  FramePool p(4, 4096);
  auto a = p.take(State::kFill);
  ASSERT_TRUE(a.has_value());
  // Only a frame being delivered (kRx) can be lent.
  EXPECT_FALSE(p.move(*a, State::kRx, State::kLent));
  ASSERT_TRUE(p.move(*a, State::kFill, State::kRx));
  ASSERT_TRUE(p.move(*a, State::kRx, State::kLent));
  // Once lent it is no longer kRx (poll_rx must not free it) ...
  EXPECT_FALSE(p.move(*a, State::kRx, State::kFree));
  // ... and a release of a frame in another state is refused.
  auto b = p.take(State::kTxInFlight);
  ASSERT_TRUE(b.has_value());
  EXPECT_FALSE(p.move(*b, State::kLent, State::kFree));
  EXPECT_FALSE(p.move(4 * 4096, State::kLent, State::kFree));  // outside the UMEM
  EXPECT_EQ(p.count(State::kLent), 1u);
  EXPECT_EQ(p.check_invariant(), "");
  EXPECT_TRUE(p.move(*a, State::kLent, State::kFree));
  EXPECT_FALSE(p.move(*a, State::kLent, State::kFree));  // released twice
  EXPECT_EQ(p.count(State::kLent), 0u);
  EXPECT_EQ(p.free_count(), 3u);
  EXPECT_EQ(p.check_invariant(), "");
}

TEST(FramePoolLent, LentFramesAreNeverHandedOutAgain) {
  FramePool p(16, 2048);
  std::set<uint64_t> lent;
  for (int i = 0; i < 5; ++i) {
    auto f = p.take(State::kFill);
    ASSERT_TRUE(f.has_value());
    ASSERT_TRUE(p.move(*f, State::kFill, State::kRx));
    ASSERT_TRUE(p.move(*f, State::kRx, State::kLent));
    lent.insert(*f);
  }
  EXPECT_EQ(p.count(State::kLent), 5u);
  // Every other frame can be taken, and none of them is a lent one.
  for (int i = 0; i < 11; ++i) {
    auto f = p.take(State::kFill);
    ASSERT_TRUE(f.has_value());
    EXPECT_EQ(lent.count(*f), 0u) << "lent frame " << *f << " handed out";
  }
  EXPECT_FALSE(p.take(State::kFill).has_value());
  EXPECT_EQ(p.check_invariant(), "");
  for (uint64_t f : lent) EXPECT_TRUE(p.move(f, State::kLent, State::kFree));
  EXPECT_EQ(p.free_count(), 5u);
  EXPECT_EQ(p.count(State::kFill), 11u);
  EXPECT_EQ(p.check_invariant(), "");
}

}  // namespace
}  // namespace xs
