// Large transfers between two stacks over the simulated link, verified byte
// by byte (and by digest), under loss, duplication and reordering.
#include <gtest/gtest.h>

#include "tests/sim/transfer.hpp"

namespace xs::test {
namespace {

LinkConfig lossy(double loss) {
  LinkConfig l;
  l.bandwidth_bps = 1'000'000'000;
  l.delay = millis(2);
  // Per-frame jitter reorders frames, so only the lossy links get it.
  l.jitter = loss > 0 ? micros(200) : Duration{0};
  l.loss = loss;
  l.duplicate = loss > 0 ? 0.005 : 0;
  l.reorder = loss > 0 ? 0.01 : 0;
  l.reorder_extra = micros(500);
  l.queue_limit_bytes = 4 << 20;
  return l;
}

void expect_clean(const TransferResult& r, uint64_t bytes) {
  EXPECT_TRUE(r.completed) << r.error;
  EXPECT_FALSE(r.corrupt);
  EXPECT_EQ(r.a_received, bytes);
  EXPECT_EQ(r.b_received, bytes);
  EXPECT_EQ(r.a_sent_digest, r.b_recv_digest);
  EXPECT_EQ(r.b_sent_digest, r.a_recv_digest);
  // Every socket, TIME_WAIT included, is gone once 2*MSL passed.
  EXPECT_EQ(r.a_sockets_left, 0u);
  EXPECT_EQ(r.b_sockets_left, 0u);
}

TEST(SimTransfer, OneMiBEachWayClean) {
  TransferSpec s;
  s.ab = s.ba = lossy(0);
  auto r = run_transfer(s);
  expect_clean(r, s.a_to_b);
  EXPECT_EQ(r.a_info.total_retrans, 0u);
}

class SimTransfer64 : public ::testing::TestWithParam<double> {};

TEST_P(SimTransfer64, SixtyFourMiBEachWay) {
  TransferSpec s;
  s.ab = s.ba = lossy(GetParam());
  s.a_to_b = s.b_to_a = 64ull << 20;
  s.seed = 7;
  auto r = run_transfer(s);
  expect_clean(r, s.a_to_b);
  if (GetParam() > 0) {
    EXPECT_GT(r.ab.frames_lost, 0u);
    EXPECT_GT(r.ab.frames_duplicated, 0u);
    EXPECT_GT(r.ab.frames_reordered, 0u);
    EXPECT_GT(r.a_info.total_retrans, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Loss, SimTransfer64, ::testing::Values(0.0, 0.01, 0.05),
                         [](const auto& p) { return "loss" + std::to_string(int(p.param * 100)) + "pct"; });

}  // namespace
}  // namespace xs::test
