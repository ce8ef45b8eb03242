// Algorithm selection by Linux name, stored inline.
#include <gtest/gtest.h>

#include "stack/tcp/cc_holder.hpp"

namespace xs {
namespace {

constexpr uint32_t kMss = 1460;
constexpr Instant kT0{1'000'000};

TEST(CcHolder, DefaultIsCubicAndInline) {
  CcHolder h;
  EXPECT_EQ(h.name(), "cubic");
  // The algorithm lives inside the holder: no heap allocation per connection.
  const auto* base = reinterpret_cast<const char*>(&h);
  const auto* algo = reinterpret_cast<const char*>(&h.get());
  EXPECT_GE(algo, base);
  EXPECT_LT(algo, base + sizeof(h));
  EXPECT_EQ(CcHolder(false).name(), "reno");
}

TEST(CcHolder, KnownNames) {
  EXPECT_TRUE(CcHolder::is_known("cubic"));
  EXPECT_TRUE(CcHolder::is_known("reno"));
  EXPECT_FALSE(CcHolder::is_known("bbr"));
  EXPECT_FALSE(CcHolder::is_known("Cubic"));
  EXPECT_FALSE(CcHolder::is_known(""));
}

TEST(CcHolder, UnknownNameRejectedAndStateKept) {
  CcHolder h;
  h.get().init(kT0, kMss);
  h.get().on_loss(kT0, 40 * kMss);
  const uint32_t cwnd = h.get().cwnd();
  EXPECT_FALSE(h.select("bbr", kT0, kMss));
  EXPECT_EQ(h.name(), "cubic");
  EXPECT_EQ(h.get().cwnd(), cwnd);
}

TEST(CcHolder, SelectBeforeInitGivesInitialWindow) {
  CcHolder h;
  ASSERT_TRUE(h.select("reno", kT0, kMss));
  EXPECT_EQ(h.name(), "reno");
  EXPECT_EQ(h.get().cwnd(), 10 * kMss);
  EXPECT_EQ(h.get().ssthresh(), 0x7fffffffu);
}

TEST(CcHolder, SwitchMidConnectionKeepsWindow) {
  CcHolder h;
  h.get().init(kT0, kMss);
  h.get().on_loss(kT0, 40 * kMss);  // cubic: ssthresh = cwnd = 28 MSS
  h.get().on_recovery_exit(kT0);
  const uint32_t cwnd = h.get().cwnd();
  const uint32_t ssthresh = h.get().ssthresh();
  ASSERT_EQ(cwnd, 28 * kMss);

  ASSERT_TRUE(h.select("reno", kT0, kMss));
  EXPECT_EQ(h.name(), "reno");
  EXPECT_EQ(h.get().cwnd(), cwnd);  // not reset to IW
  EXPECT_EQ(h.get().ssthresh(), ssthresh);
  // And the new algorithm runs from there: Reno's congestion avoidance.
  AckSample s;
  s.acked_bytes = kMss;
  s.cwnd_limited = true;
  for (int i = 0; i < 28; ++i) h.get().on_ack(kT0, s);
  EXPECT_EQ(h.get().cwnd(), 29 * kMss);

  ASSERT_TRUE(h.select("cubic", kT0, kMss));
  EXPECT_EQ(h.get().cwnd(), 29 * kMss);
  EXPECT_EQ(h.get().ssthresh(), ssthresh);
}

TEST(CcHolder, SelectingCurrentIsNoop) {
  CcHolder h;
  h.get().init(kT0, kMss);
  h.get().on_loss(kT0, 10 * kMss);
  const uint32_t cwnd = h.get().cwnd();
  ASSERT_EQ(cwnd, 7 * kMss);
  EXPECT_TRUE(h.select("cubic", kT0, kMss));
  EXPECT_EQ(h.get().cwnd(), cwnd);
  // The algorithm was not re-created: its undo record survived.
  h.get().undo();
  EXPECT_EQ(h.get().cwnd(), 10 * kMss);
}

}  // namespace
}  // namespace xs
