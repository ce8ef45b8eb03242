// CUBIC (RFC 9438) and HyStart++ (RFC 9406).
#include <gtest/gtest.h>

#include <cmath>

#include "stack/tcp/cubic.hpp"

namespace xs {
namespace {

constexpr uint32_t kMss = 1000;
constexpr Instant kT0{5'000'000};

AckSample ack(uint32_t bytes, bool limited = true, Duration rtt = Duration{-1},
              Duration min_rtt = Duration{-1}, uint32_t flight = 0) {
  AckSample s;
  s.acked_bytes = bytes;
  s.cwnd_limited = limited;
  s.rtt = rtt;
  s.min_rtt = min_rtt;
  s.bytes_in_flight = flight;
  return s;
}

double segs(const Cubic& c) { return double(c.cwnd()) / kMss; }

// A CUBIC flow that reached 100 segments in slow start, lost, and finished
// fast recovery: W_max = 100, cwnd = ssthresh = 70 (beta 0.7).
Cubic after_loss_at_100() {
  Cubic c;
  c.init(kT0, kMss);
  for (int i = 0; i < 90; ++i) c.on_ack(kT0, ack(kMss));
  EXPECT_EQ(c.cwnd(), 100 * kMss);
  c.on_loss(kT0, 100 * kMss);
  c.on_recovery_exit(kT0);
  return c;
}

// Drives an ACK clock for `dur`: every RTT the whole window is acknowledged,
// one segment per ACK, ACKs evenly spaced. Returns the end time.
Instant run(Cubic& c, Instant start, Duration dur, Duration rtt) {
  Instant t = start;
  while (t < start + dur) {
    const uint32_t n = std::max(1u, c.cwnd() / kMss);
    const Duration gap = rtt / int64_t(n);
    for (uint32_t i = 0; i < n; ++i) {
      c.on_ack(t, ack(kMss, true, rtt, rtt));
      t += gap;
    }
  }
  return t;
}

TEST(Cubic, Constants) {
  EXPECT_DOUBLE_EQ(Cubic::kC, 0.4);
  EXPECT_DOUBLE_EQ(Cubic::kBeta, 0.7);
  EXPECT_NEAR(Cubic::kAlpha, 0.5294, 1e-4);  // 3 * 0.3 / 1.7
}

TEST(Cubic, FormulaAndK) {
  // K = cbrt(W_max * (1 - beta) / C) = cbrt(100 * 0.3 / 0.4) = cbrt(75).
  EXPECT_NEAR(Cubic::k_for(100, 70), 4.2171633, 1e-6);
  EXPECT_DOUBLE_EQ(Cubic::k_for(50, 60), 0.0);
  const double k = std::cbrt(75.0);
  EXPECT_NEAR(Cubic::w_cubic(0, k, 100), 70.0, 1e-9);   // starts at beta * W_max
  EXPECT_NEAR(Cubic::w_cubic(k, k, 100), 100.0, 1e-9);  // plateau at W_max
  EXPECT_NEAR(Cubic::w_cubic(1.0, k, 100), 0.4 * std::pow(1.0 - k, 3) + 100, 1e-9);
  EXPECT_NEAR(Cubic::w_cubic(6.0, k, 100), 0.4 * std::pow(6.0 - k, 3) + 100, 1e-9);
}

TEST(Cubic, LossSetsWmaxSsthreshAndK) {
  auto c = after_loss_at_100();
  EXPECT_DOUBLE_EQ(c.w_max(), 100.0);
  EXPECT_EQ(c.ssthresh(), 70 * kMss);
  EXPECT_EQ(c.cwnd(), 70 * kMss);
  EXPECT_FALSE(c.epoch_started());
  c.on_ack(kT0, ack(kMss, true, millis(100), millis(100)));
  EXPECT_TRUE(c.epoch_started());
  EXPECT_NEAR(c.k_seconds(), std::cbrt(75.0), 1e-9);
}

TEST(Cubic, PerAckIncrementMatchesRfcTarget) {
  // RFC 9438 4.4: cwnd += (W_cubic(t + RTT) - cwnd) / cwnd per acked segment.
  auto c = after_loss_at_100();
  const Duration rtt = millis(100);
  const double k = std::cbrt(75.0);
  // Epoch starts at kT0 with W_est = cwnd_epoch = 70. At t = 0 the curve is
  // at 70 exactly, below W_est = 70 + alpha / 70 after this ACK: RFC 9438
  // 4.3 puts the first ACK in the Reno-friendly region, cwnd = W_est.
  c.on_ack(kT0, ack(kMss, true, rtt, rtt));
  EXPECT_EQ(c.cwnd(), uint32_t((70 + Cubic::kAlpha / 70) * 1000));
  // One second later the curve is far above W_est: the cubic target one
  // RTT ahead decides.
  const uint32_t before = c.cwnd();
  const double cw = double(before) / kMss;
  c.on_ack(kT0 + seconds(1), ack(kMss, true, rtt, rtt));
  const double delta = (Cubic::w_cubic(1.1, k, 100) - cw) / cw * 1000;  // ~248 bytes
  EXPECT_EQ(c.cwnd(), before + uint32_t(delta));
  EXPECT_GT(delta, 200.0);
}

TEST(Cubic, WindowTracksCubicCurve) {
  // Long RTT: CUBIC's curve is above the Reno-friendly estimate, so cwnd
  // follows W_cubic between t and t + RTT (concave, plateau, convex).
  auto c = after_loss_at_100();
  const Duration rtt = millis(100);
  const double k = std::cbrt(75.0);
  Instant t = kT0;
  for (double at : {1.0, 2.0, 4.0, 5.0, 6.0}) {
    t = run(c, t, Instant{kT0.us + int64_t(at * 1e6)} - t, rtt);
    const double elapsed = double((t - kT0).us) / 1e6;
    const double lo = Cubic::w_cubic(elapsed - 0.1, k, 100);
    const double hi = Cubic::w_cubic(elapsed + 0.1, k, 100);
    EXPECT_GE(segs(c), lo - 1.5) << "t=" << elapsed;
    EXPECT_LE(segs(c), hi + 1.5) << "t=" << elapsed;
  }
  // Convex region well past K: above the old maximum.
  EXPECT_GT(segs(c), 100.0);
}

TEST(Cubic, RenoFriendlyRegionTakesOverOnSmallRtt) {
  // 1 ms RTT: 200 RTTs pass in 200 ms, Reno would gain ~150 segments, while
  // W_cubic(0.2 s) is still ~74 segments. RFC 9438 4.3: cwnd follows W_est.
  auto c = after_loss_at_100();
  const double k = std::cbrt(75.0);
  run(c, kT0, millis(200), millis(1));
  EXPECT_LT(Cubic::w_cubic(0.2, k, 100), 80.0);
  EXPECT_GT(segs(c), 150.0);
  EXPECT_NEAR(segs(c), c.w_est(), 1.0);

  // Same time with a 100 ms RTT stays on the cubic curve.
  auto d = after_loss_at_100();
  run(d, kT0, millis(200), millis(100));
  EXPECT_LT(segs(d), 80.0);
}

TEST(Cubic, FastConvergenceLowersWmax) {
  auto c = after_loss_at_100();
  ASSERT_DOUBLE_EQ(c.w_max(), 100.0);
  // Second loss below the previous W_max (70 < 100): RFC 9438 4.7 remembers
  // W_max = cwnd * (1 + beta) / 2 instead of cwnd.
  c.on_loss(kT0, 70 * kMss);
  EXPECT_NEAR(c.w_max(), 70 * 1.7 / 2, 1e-9);
  EXPECT_EQ(c.ssthresh(), 49 * kMss);
  EXPECT_EQ(c.cwnd(), 49 * kMss);
}

TEST(Cubic, NoFastConvergenceWhenAboveWmax) {
  auto c = after_loss_at_100();
  Instant t = run(c, kT0, seconds(7), millis(100));
  ASSERT_GT(segs(c), 100.0);
  const double w = segs(c);
  c.on_loss(t, c.cwnd());
  EXPECT_NEAR(c.w_max(), w, 1e-9);
}

TEST(Cubic, NoGrowthWhenNotCwndLimited) {
  Cubic c;
  c.init(kT0, kMss);
  for (int i = 0; i < 50; ++i) c.on_ack(kT0, ack(kMss, false));
  EXPECT_EQ(c.cwnd(), 10 * kMss);

  auto d = after_loss_at_100();
  for (int i = 0; i < 500; ++i) d.on_ack(kT0 + millis(i * 10), ack(kMss, false, millis(10), millis(10)));
  EXPECT_EQ(d.cwnd(), 70 * kMss);
}

TEST(Cubic, AppLimitedTimeIsNotEpochTime) {
  // RFC 9438 5.8: after 10 s application-limited the curve resumes where it
  // was, instead of jumping to W_cubic(10 s).
  auto c = after_loss_at_100();
  const Duration rtt = millis(100);
  c.on_ack(kT0, ack(kMss, true, rtt, rtt));
  c.on_ack(kT0 + millis(1), ack(kMss, false, rtt, rtt));
  const uint32_t before = c.cwnd();
  c.on_ack(kT0 + seconds(10), ack(kMss, true, rtt, rtt));
  // One ACK on the curve near t = 0 adds ~30 bytes; at t = 10 s it would be the
  // 1.5x clamp, 500 bytes.
  EXPECT_LT(c.cwnd() - before, 60u);
}

TEST(Cubic, RtoResetsEpochAndWmax) {
  auto c = after_loss_at_100();
  c.on_ack(kT0, ack(kMss, true, millis(50), millis(50)));
  c.on_rto(kT0 + seconds(1), 70 * kMss);
  EXPECT_EQ(c.cwnd(), kMss);
  EXPECT_EQ(c.ssthresh(), 49 * kMss);  // RFC 9438 4.8: beta_cubic
  EXPECT_DOUBLE_EQ(c.w_max(), 0.0);
  EXPECT_FALSE(c.epoch_started());
  // Repeated RTO: ssthresh held.
  c.on_rto(kT0 + seconds(2), kMss);
  EXPECT_EQ(c.ssthresh(), 49 * kMss);
  // Slow start back to ssthresh, then CA with K = 0 (W_max = cwnd_epoch).
  for (int i = 0; i < 48; ++i) c.on_ack(kT0 + seconds(3), ack(kMss, true, millis(50), millis(50)));
  ASSERT_EQ(c.cwnd(), 49 * kMss);
  c.on_ack(kT0 + seconds(3), ack(kMss, true, millis(50), millis(50)));
  EXPECT_TRUE(c.epoch_started());
  EXPECT_DOUBLE_EQ(c.k_seconds(), 0.0);
}

TEST(Cubic, LossAfterTimeoutRecoveryReducesAgain) {
  Cubic c;
  c.init(kT0, kMss);
  c.on_rto(kT0, 100 * kMss);  // ssthresh 70
  for (int i = 0; i < 69; ++i) c.on_ack(kT0, ack(kMss));
  ASSERT_EQ(c.cwnd(), 70 * kMss);
  c.on_loss(kT0, 70 * kMss);
  EXPECT_EQ(c.ssthresh(), 49 * kMss);
  EXPECT_DOUBLE_EQ(c.w_max(), 70.0);
}

TEST(Cubic, UndoRestoresWindowAndWmax) {
  auto c = after_loss_at_100();  // W_max 100, cwnd 70
  c.on_loss(kT0, 70 * kMss);     // W_max 59.5, cwnd 49
  c.undo();
  EXPECT_EQ(c.cwnd(), 70 * kMss);
  EXPECT_EQ(c.ssthresh(), 70 * kMss);
  EXPECT_DOUBLE_EQ(c.w_max(), 100.0);
}

TEST(Cubic, IdleRestart) {
  auto c = after_loss_at_100();
  c.on_idle_restart(kT0, millis(450), millis(300));
  EXPECT_EQ(c.cwnd(), 35 * kMss);
  EXPECT_EQ(c.ssthresh(), 70 * kMss);
  EXPECT_TRUE(c.in_slow_start());
}

// ---- HyStart++ --------------------------------------------------------

// One slow-start round: the window that was in flight at its start is
// acknowledged one segment per ACK, each ACK carrying an RTT sample.
void ss_round(Cubic& c, Instant& t, Duration rtt) {
  const uint32_t n = (c.cwnd() + kMss - 1) / kMss;
  for (uint32_t i = 0; i < n; ++i) {
    c.on_ack(t, ack(kMss, true, rtt, Duration{-1}, c.cwnd()));
    t += rtt / int64_t(n);
  }
}

TEST(HyStartPlusPlus, SteadyRttStaysInSlowStart) {
  Cubic c;
  c.init(kT0, kMss);
  Instant t = kT0;
  for (int r = 0; r < 6; ++r) ss_round(c, t, millis(50));
  EXPECT_EQ(c.hystart_phase(), Cubic::HyPhase::SlowStart);
  EXPECT_EQ(c.cwnd(), 640 * kMss);  // doubling per round: 10 * 2^6
  EXPECT_TRUE(c.in_slow_start());
}

TEST(HyStartPlusPlus, RttRiseEntersCssThenCongestionAvoidance) {
  Cubic c;
  c.init(kT0, kMss);
  Instant t = kT0;
  ss_round(c, t, millis(50));
  ss_round(c, t, millis(50));
  ASSERT_EQ(c.cwnd(), 40 * kMss);
  // RttThresh = clamp(50/8, 4, 16) = 6.25 ms; 60 ms >= 56.25 ms.
  ss_round(c, t, millis(60));
  EXPECT_EQ(c.hystart_phase(), Cubic::HyPhase::Css);
  EXPECT_EQ(c.ssthresh(), 0x7fffffffu);
  // The 8th sample of the round triggers CSS: 8 ACKs grew at the full rate,
  // the remaining 32 at a quarter.
  EXPECT_EQ(c.cwnd(), (40 + 8) * kMss + 32 * kMss / 4);

  // CSS: growth is a quarter of slow start's; after CSS_ROUNDS rounds,
  // congestion avoidance begins at the current window.
  const uint32_t css_start = c.cwnd();
  ss_round(c, t, millis(60));
  EXPECT_EQ(c.cwnd(), css_start + css_start / 4);
  // The round in which CSS began counts as the first of CSS_ROUNDS = 5
  // (as in msquic); this was the second.
  for (int r = 0; r < 2; ++r) ss_round(c, t, millis(60));
  EXPECT_EQ(c.hystart_phase(), Cubic::HyPhase::Css);
  EXPECT_EQ(c.ssthresh(), 0x7fffffffu);
  ss_round(c, t, millis(60));
  EXPECT_EQ(c.hystart_phase(), Cubic::HyPhase::Done);
  EXPECT_EQ(c.ssthresh(), c.cwnd());
  EXPECT_FALSE(c.in_slow_start());
  // Far below what plain slow start would have reached (40 * 2^6 = 2560).
  EXPECT_LT(c.cwnd(), 200 * kMss);
}

TEST(HyStartPlusPlus, SpuriousRiseResumesSlowStart) {
  Cubic c;
  c.init(kT0, kMss);
  Instant t = kT0;
  ss_round(c, t, millis(50));
  ss_round(c, t, millis(50));
  ss_round(c, t, millis(60));
  ASSERT_EQ(c.hystart_phase(), Cubic::HyPhase::Css);
  // RTT falls back below the CSS baseline (60 ms): RFC 9406 returns to slow start.
  ss_round(c, t, millis(50));
  EXPECT_EQ(c.hystart_phase(), Cubic::HyPhase::SlowStart);
  EXPECT_EQ(c.ssthresh(), 0x7fffffffu);
}

TEST(HyStartPlusPlus, LossEndsHystart) {
  Cubic c;
  c.init(kT0, kMss);
  Instant t = kT0;
  ss_round(c, t, millis(50));
  c.on_loss(t, c.cwnd());
  EXPECT_EQ(c.hystart_phase(), Cubic::HyPhase::Done);
}

}  // namespace
}  // namespace xs
