// RFC 6298 RTT estimation with Linux's RTO floor, backoff and windowed min RTT.
#include <gtest/gtest.h>

#include "stack/tcp/rtt_estimator.hpp"

namespace xs {
namespace {

RttEstimator linux_defaults() { return RttEstimator(TcpConfig{}); }

TEST(RttEstimator, InitialRtoFromConfig) {
  auto r = linux_defaults();
  EXPECT_FALSE(r.has_sample());
  EXPECT_EQ(r.rto(), seconds(1));  // RFC 6298 2.1
  EXPECT_LT(r.min_rtt().us, 0);
}

TEST(RttEstimator, ExactValuesAfterSampleSequence) {
  auto r = linux_defaults();
  Instant t{0};
  // RFC 6298 2.2: SRTT = R, RTTVAR = R/2.
  r.on_sample(t, millis(100));
  EXPECT_TRUE(r.has_sample());
  EXPECT_EQ(r.srtt(), millis(100));
  EXPECT_EQ(r.rttvar(), millis(50));
  // RTO = SRTT + max(4*RTTVAR, 200 ms) = 100 + 200.
  EXPECT_EQ(r.rto(), millis(300));

  // RFC 6298 2.3: RTTVAR = 3/4*50 + 1/4*|100-200| = 62.5 ms; SRTT = 7/8*100 + 1/8*200 = 112.5 ms.
  r.on_sample(t + millis(200), millis(200));
  EXPECT_EQ(r.rttvar(), micros(62500));
  EXPECT_EQ(r.srtt(), micros(112500));
  EXPECT_EQ(r.rto(), micros(112500 + 250000));  // 4*RTTVAR = 250 ms > 200 ms

  // RTTVAR = 3/4*62.5 + 1/4*62.5 = 62.5 ms; SRTT = (7*112.5 + 50)/8 = 104.6875 ms (truncated to us).
  r.on_sample(t + millis(400), millis(50));
  EXPECT_EQ(r.rttvar(), micros(62500));
  EXPECT_EQ(r.srtt(), micros(104687));
  EXPECT_EQ(r.rto(), micros(104687 + 250000));
  EXPECT_EQ(r.latest(), millis(50));
  EXPECT_EQ(r.min_rtt(), millis(50));
}

TEST(RttEstimator, RtoFloorIsSrttPlus200ms) {
  // 1 ms path: Linux's RTO is ~201 ms (srtt + rto_min), not a flat 200 ms.
  auto r = linux_defaults();
  for (int i = 0; i < 50; ++i) r.on_sample(Instant{i * 1000}, millis(1));
  EXPECT_EQ(r.srtt(), millis(1));
  EXPECT_EQ(r.rto(), millis(201));
  EXPECT_GE(r.rto(), millis(200));
}

TEST(RttEstimator, RtoClampedToMax) {
  auto r = linux_defaults();
  r.on_sample(Instant{0}, seconds(100));  // 100 s + max(200 s, 0.2 s) = 300 s
  EXPECT_EQ(r.rto(), seconds(120));
}

TEST(RttEstimator, CustomMinApplies) {
  RttEstimator r(seconds(1), millis(50), seconds(60));
  r.on_sample(Instant{0}, millis(4));  // 4 + max(8, 50)
  EXPECT_EQ(r.rto(), millis(54));
}

TEST(RttEstimator, BackoffDoublesUpToMaxAndSampleResets) {
  auto r = linux_defaults();
  r.on_sample(Instant{0}, millis(100));
  ASSERT_EQ(r.rto(), millis(300));
  r.backoff();
  EXPECT_EQ(r.rto(), millis(600));
  r.backoff();
  EXPECT_EQ(r.rto(), millis(1200));
  for (int i = 0; i < 100; ++i) r.backoff();  // must saturate, not overflow
  EXPECT_EQ(r.rto(), seconds(120));
  EXPECT_LT(r.backoff_count(), 20u);
  r.on_sample(Instant{1000}, millis(100));  // RFC 6298 5.7
  EXPECT_EQ(r.backoff_count(), 0u);
  EXPECT_LT(r.rto(), seconds(1));
}

TEST(RttEstimator, BackoffBeforeFirstSample) {
  auto r = linux_defaults();
  r.backoff();
  EXPECT_EQ(r.rto(), seconds(2));
  r.reset_backoff();
  EXPECT_EQ(r.rto(), seconds(1));
}

TEST(RttEstimator, SynFallbackOnlyWithoutSample) {
  auto r = linux_defaults();
  r.use_syn_fallback();
  EXPECT_EQ(r.rto(), seconds(3));  // RFC 6298 5.7
  auto s = linux_defaults();
  s.on_sample(Instant{0}, millis(10));
  const Duration before = s.rto();
  s.use_syn_fallback();
  EXPECT_EQ(s.rto(), before);
}

TEST(RttEstimator, MinRttExpiresToBestRemainingNotNewest) {
  auto r = linux_defaults();
  r.on_sample(Instant{0}, millis(10));
  r.on_sample(Instant{0} + seconds(100), millis(30));
  r.on_sample(Instant{0} + seconds(200), millis(20));
  EXPECT_EQ(r.min_rtt(), millis(10));
  // The 10 ms sample leaves the 300 s window: the 20 ms one (still inside)
  // takes over, not the 40 ms newest.
  r.on_sample(Instant{0} + seconds(301), millis(40));
  EXPECT_EQ(r.min_rtt(), millis(20));
  // A new lower sample wins at once.
  r.on_sample(Instant{0} + seconds(302), millis(5));
  EXPECT_EQ(r.min_rtt(), millis(5));
}

TEST(WindowedMin, EverythingExpiredTakesNewSample) {
  WindowedMin m(seconds(10));
  m.update(Instant{0}, millis(1));
  EXPECT_EQ(m.update(Instant{0} + seconds(11), millis(9)), millis(9));
}

}  // namespace
}  // namespace xs
