// NewReno window rules: RFC 5681 slow start / congestion avoidance with
// RFC 3465 byte counting, RFC 7661 cwnd-limited growth, loss/RTO reductions,
// Linux-style undo and restart after idle.
#include <gtest/gtest.h>

#include "stack/tcp/newreno.hpp"

namespace xs {
namespace {

constexpr uint32_t kMss = 1000;
constexpr Instant kT0{1'000'000};

AckSample ack(uint32_t bytes, bool limited = true) {
  AckSample s;
  s.acked_bytes = bytes;
  s.cwnd_limited = limited;
  return s;
}

NewReno fresh() {
  NewReno r;
  r.init(kT0, kMss);
  return r;
}

TEST(NewReno, InitialWindow) {
  auto r = fresh();
  EXPECT_EQ(r.name(), "reno");
  EXPECT_EQ(r.cwnd(), 10 * kMss);  // RFC 6928
  EXPECT_EQ(r.ssthresh(), 0x7fffffffu);
  EXPECT_TRUE(r.in_slow_start());
}

TEST(NewReno, SlowStartByteCountingCapsAtTwoMss) {
  auto r = fresh();
  r.on_ack(kT0, ack(kMss));
  EXPECT_EQ(r.cwnd(), 11 * kMss);
  r.on_ack(kT0, ack(500));
  EXPECT_EQ(r.cwnd(), 11 * kMss + 500);
  // A stretch ACK for 5 segments only opens the window by L = 2*SMSS (RFC 3465 2.2).
  r.on_ack(kT0, ack(5 * kMss));
  EXPECT_EQ(r.cwnd(), 13 * kMss + 500);
}

TEST(NewReno, NoGrowthWhenNotCwndLimited) {
  auto r = fresh();
  r.on_ack(kT0, ack(kMss, false));
  EXPECT_EQ(r.cwnd(), 10 * kMss);
  r.on_loss(kT0, 20 * kMss);
  r.on_recovery_exit(kT0);
  for (int i = 0; i < 100; ++i) r.on_ack(kT0, ack(kMss, false));
  EXPECT_EQ(r.cwnd(), 10 * kMss);
}

TEST(NewReno, CongestionAvoidanceOneMssPerWindow) {
  auto r = fresh();
  r.on_loss(kT0, 20 * kMss);  // ssthresh = 10 MSS
  r.on_recovery_exit(kT0);
  ASSERT_EQ(r.cwnd(), 10 * kMss);
  ASSERT_FALSE(r.in_slow_start());
  for (int i = 0; i < 9; ++i) r.on_ack(kT0, ack(kMss));
  EXPECT_EQ(r.cwnd(), 10 * kMss);  // 9000 of the 10000 bytes needed
  r.on_ack(kT0, ack(kMss));
  EXPECT_EQ(r.cwnd(), 11 * kMss);
  // The next increment needs a full 11 MSS of ACKs.
  for (int i = 0; i < 10; ++i) r.on_ack(kT0, ack(kMss));
  EXPECT_EQ(r.cwnd(), 11 * kMss);
  r.on_ack(kT0, ack(kMss));
  EXPECT_EQ(r.cwnd(), 12 * kMss);
}

TEST(NewReno, SlowStartStopsAtSsthreshAndCarriesOver) {
  auto r = fresh();
  r.on_rto(kT0, 20 * kMss);  // ssthresh 10 MSS, cwnd 1 MSS
  ASSERT_EQ(r.cwnd(), kMss);
  for (int i = 0; i < 8; ++i) r.on_ack(kT0, ack(kMss));
  EXPECT_EQ(r.cwnd(), 9 * kMss);
  EXPECT_TRUE(r.in_slow_start());
  // 2 MSS acked: 1 MSS reaches ssthresh, the other counts towards CA.
  r.on_ack(kT0, ack(2 * kMss));
  EXPECT_EQ(r.cwnd(), 10 * kMss);
  EXPECT_FALSE(r.in_slow_start());
  for (int i = 0; i < 8; ++i) r.on_ack(kT0, ack(kMss));
  EXPECT_EQ(r.cwnd(), 10 * kMss);
  r.on_ack(kT0, ack(kMss));  // 1 + 9 = 10 MSS counted
  EXPECT_EQ(r.cwnd(), 11 * kMss);
}

TEST(NewReno, LossHalvesFlightWithFloor) {
  auto r = fresh();
  r.on_loss(kT0, 30 * kMss);
  EXPECT_EQ(r.ssthresh(), 15 * kMss);  // RFC 5681 eq. (4)
  EXPECT_EQ(r.cwnd(), 15 * kMss);
  r.on_recovery_exit(kT0);
  EXPECT_EQ(r.cwnd(), 15 * kMss);

  auto s = fresh();
  s.on_loss(kT0, 3 * kMss);
  EXPECT_EQ(s.ssthresh(), 2 * kMss);
}

TEST(NewReno, RtoGoesToOneMssAndHoldsSsthreshWhenRepeated) {
  auto r = fresh();
  r.on_rto(kT0, 20 * kMss);
  EXPECT_EQ(r.cwnd(), kMss);
  EXPECT_EQ(r.ssthresh(), 10 * kMss);
  // Backed-off RTO for the same data: flight is now 1 MSS, but RFC 5681 3.1
  // holds ssthresh constant for a segment retransmitted more than once.
  r.on_rto(kT0, kMss);
  EXPECT_EQ(r.ssthresh(), 10 * kMss);
  EXPECT_EQ(r.cwnd(), kMss);
  // Recovery from the timeout ends: the window is not inflated to ssthresh.
  r.on_ack(kT0, ack(kMss));
  r.on_recovery_exit(kT0);
  EXPECT_EQ(r.cwnd(), 2 * kMss);
  // A new episode reduces again.
  r.on_rto(kT0, 4 * kMss);
  EXPECT_EQ(r.ssthresh(), 2 * kMss);
}

TEST(NewReno, TimeoutEpisodeEndsOnProgressWithoutRecoveryExit) {
  // The connection never calls on_recovery_exit after an RTO; once the
  // retransmission is acknowledged, a later loss is a new reduction.
  auto r = fresh();
  r.on_rto(kT0, 40 * kMss);  // ssthresh 20
  for (int i = 0; i < 19; ++i) r.on_ack(kT0, ack(kMss));
  ASSERT_EQ(r.cwnd(), 20 * kMss);
  r.on_loss(kT0, 20 * kMss);
  EXPECT_EQ(r.ssthresh(), 10 * kMss);
  EXPECT_EQ(r.cwnd(), 10 * kMss);
  // Undo now goes back to the state just before this loss.
  r.undo();
  EXPECT_EQ(r.cwnd(), 20 * kMss);
  EXPECT_EQ(r.ssthresh(), 20 * kMss);
}

TEST(NewReno, UndoRestoresStateBeforeReduction) {
  auto r = fresh();
  for (int i = 0; i < 10; ++i) r.on_ack(kT0, ack(kMss));  // cwnd 20 MSS
  ASSERT_EQ(r.cwnd(), 20 * kMss);
  r.on_loss(kT0, 20 * kMss);
  EXPECT_EQ(r.cwnd(), 10 * kMss);
  r.undo();
  EXPECT_EQ(r.cwnd(), 20 * kMss);
  EXPECT_EQ(r.ssthresh(), 0x7fffffffu);
  // Only once.
  r.on_loss(kT0, 20 * kMss);
  r.on_recovery_exit(kT0);
  r.undo();
  r.undo();
  EXPECT_EQ(r.cwnd(), 20 * kMss);
}

TEST(NewReno, UndoAfterRtoAndRecoveryGoesBackToBeforeEpisode) {
  auto r = fresh();
  r.on_loss(kT0, 16 * kMss);  // ssthresh 8
  r.on_rto(kT0, 8 * kMss);    // same episode: ssthresh kept, cwnd 1
  EXPECT_EQ(r.ssthresh(), 8 * kMss);
  EXPECT_EQ(r.cwnd(), kMss);
  r.undo();
  EXPECT_EQ(r.cwnd(), 10 * kMss);
  EXPECT_EQ(r.ssthresh(), 0x7fffffffu);
}

TEST(NewReno, UndoNeverShrinks) {
  auto r = fresh();
  r.on_loss(kT0, 12 * kMss);  // saved cwnd 10 MSS, ssthresh 6 MSS
  r.on_recovery_exit(kT0);
  // Congestion avoidance grows 6 -> 12 MSS, past the saved 10 MSS.
  for (int i = 0; i < 60; ++i) r.on_ack(kT0, ack(kMss));
  const uint32_t grown = r.cwnd();
  ASSERT_GT(grown, 10 * kMss);
  r.undo();
  EXPECT_EQ(r.cwnd(), grown);
  EXPECT_EQ(r.ssthresh(), 0x7fffffffu);
}

TEST(NewReno, IdleRestartHalvesPerRto) {
  const Duration rto = millis(300);
  auto r = fresh();
  for (int i = 0; i < 30; ++i) r.on_ack(kT0, ack(kMss));
  ASSERT_EQ(r.cwnd(), 40 * kMss);

  auto a = r;
  a.on_idle_restart(kT0, millis(450), rto);  // 1.5 RTO: one halving
  EXPECT_EQ(a.cwnd(), 20 * kMss);
  auto b = r;
  b.on_idle_restart(kT0, millis(750), rto);  // 2.5 RTO: two halvings
  EXPECT_EQ(b.cwnd(), 10 * kMss);
  auto c = r;
  c.on_idle_restart(kT0, seconds(60), rto);  // never below the restart window
  EXPECT_EQ(c.cwnd(), 10 * kMss);
  auto d = r;
  d.on_idle_restart(kT0, millis(200), rto);  // shorter than an RTO: untouched
  EXPECT_EQ(d.cwnd(), 40 * kMss);
}

TEST(NewReno, IdleRestartRemembersWindowInSsthresh) {
  auto r = fresh();
  for (int i = 0; i < 30; ++i) r.on_ack(kT0, ack(kMss));  // 40 MSS
  r.on_loss(kT0, 40 * kMss);                               // ssthresh 20
  r.on_recovery_exit(kT0);
  for (int i = 0; i < 20; ++i) r.on_ack(kT0, ack(kMss));  // CA: 21 MSS
  ASSERT_EQ(r.cwnd(), 21 * kMss);
  r.on_idle_restart(kT0, seconds(10), millis(200));
  EXPECT_EQ(r.cwnd(), 10 * kMss);
  // Linux tcp_current_ssthresh: max(ssthresh, 3/4 cwnd) = max(20, 15.75) MSS.
  EXPECT_EQ(r.ssthresh(), 20 * kMss);
  EXPECT_TRUE(r.in_slow_start());
}

TEST(NewReno, SmallWindowNotRaisedByRestart) {
  auto r = fresh();
  r.on_loss(kT0, 8 * kMss);  // cwnd 4 MSS < IW
  r.on_recovery_exit(kT0);
  r.on_idle_restart(kT0, seconds(5), millis(200));
  EXPECT_EQ(r.cwnd(), 4 * kMss);
}

TEST(NewReno, MssChangeKeepsSegments) {
  auto r = fresh();
  r.on_loss(kT0, 24 * kMss);
  r.set_mss(500);
  EXPECT_EQ(r.cwnd(), 12 * 500u);
  EXPECT_EQ(r.ssthresh(), 12 * 500u);
}

}  // namespace
}  // namespace xs
