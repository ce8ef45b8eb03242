// Loss recovery efficiency and link utilisation on the simulated link.
#include <gtest/gtest.h>

#include "tests/sim/transfer.hpp"

namespace xs::test {
namespace {

TEST(SimEfficiency, SackRetransmitsLittleMoreThanWhatWasLost) {
  // 2% random loss on the data path (no reordering, so every retransmission
  // that is not for a lost frame is a recovery mistake). RFC 6675 recovery
  // must resend roughly what was lost, never go back N.
  TransferSpec s;
  s.ab.bandwidth_bps = 100'000'000;
  s.ab.delay = millis(5);
  s.ab.loss = 0.02;
  s.ba = s.ab;
  s.ba.loss = 0;
  s.a_to_b = 16 << 20;
  s.b_to_a = 0;
  s.seed = 11;
  auto r = run_transfer(s);
  ASSERT_TRUE(r.completed) << r.error;
  EXPECT_FALSE(r.corrupt);
  ASSERT_TRUE(r.a_info.options & tcpi_opt::kSack);
  // Every frame A->B carries (at most) one MSS of data.
  const uint64_t lost_bytes = r.ab.frames_lost * r.a_info.snd_mss;
  ASSERT_GT(lost_bytes, 0u);
  EXPECT_LT(r.a_info.bytes_retrans, lost_bytes * 3 / 2)
      << "retransmitted " << r.a_info.bytes_retrans << " bytes for " << r.ab.frames_lost << " lost frames";
  EXPECT_GT(r.a_counters.tcp_sack_recovery, 0u);
}

TEST(SimEfficiency, NewRenoWithoutSackRecovers) {
  TransferSpec s;
  s.ab.bandwidth_bps = 100'000'000;
  s.ab.delay = millis(5);
  s.ab.loss = 0.01;
  s.ba = s.ab;
  s.ba.loss = 0;
  s.tcp.sack = false;
  s.a_to_b = 4 << 20;
  s.b_to_a = 0;
  s.cc = "reno";
  auto r = run_transfer(s);
  ASSERT_TRUE(r.completed) << r.error;
  EXPECT_FALSE(r.corrupt);
  EXPECT_FALSE(r.a_info.options & tcpi_opt::kSack);
  EXPECT_GT(r.a_counters.tcp_reno_recovery, 0u);
}

class SimUtilisation : public ::testing::TestWithParam<const char*> {};

TEST_P(SimUtilisation, ReachesNinetyPercentOfAGigabitTenMsLink) {
  // Clean 1 Gbit/s, 10 ms one-way link. Utilisation is measured in steady
  // state, from 2 s (after slow start and its recovery) to the end.
  TransferSpec s;
  s.ab.bandwidth_bps = 1'000'000'000;
  s.ab.delay = millis(10);
  // One bandwidth-delay product of queue (BDP = 20 ms x 1 Gbit/s = 2.5 MB), the
  // classic sizing for a loss-based sender, and receive/send buffers large
  // enough that the window never caps cwnd: the sender finds the limit by loss.
  s.ab.queue_limit_bytes = 2'500'000;
  s.tcp.rmem_max = 16 << 20;
  s.tcp.wmem_max = 16 << 20;
  s.ba = s.ab;
  s.cc = GetParam();
  s.a_to_b = 512ull << 20;
  s.b_to_a = 0;
  s.wait_time_wait = false;
  s.measure_from = seconds(2);
  auto r = run_transfer(s);
  ASSERT_TRUE(r.completed) << r.error;
  EXPECT_FALSE(r.corrupt);
  const double secs = r.finished.us / 1e6 - 2.0;
  ASSERT_GT(secs, 1.0) << "transfer too short to measure a steady state";
  const double gbps = double(r.b_received - r.b_received_at_measure) * 8 / secs / 1e9;
  const double line_share = double(r.ab.bytes_on_wire - r.ab_bytes_at_measure) * 8 / secs / 1e9;
  RecordProperty("goodput_gbps", std::to_string(gbps));
  std::printf("%s: %.3f s, goodput %.3f Gbit/s, link busy %.1f%%, retrans %u, cwnd %u\n", GetParam(), secs, gbps,
              line_share * 100, r.a_info.total_retrans, r.a_info.snd_cwnd);
  EXPECT_GE(line_share, 0.90);
  EXPECT_GE(gbps, 0.90 * 0.956);  // payload is 95.6% of a full frame
  EXPECT_GT(r.a_counters.tcp_fast_retrans, 0u) << "the run never met the link's limit";
}

INSTANTIATE_TEST_SUITE_P(Cc, SimUtilisation, ::testing::Values("cubic", "reno"),
                         [](const auto& p) { return std::string(p.param); });

}  // namespace
}  // namespace xs::test
