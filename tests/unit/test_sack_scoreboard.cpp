#include "stack/tcp/sack_scoreboard.hpp"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace xs {
namespace {

// The capacity tests use a small table; production tables hold kMaxRanges.
constexpr size_t kCap = 32;


SackBlock blk(uint32_t l, uint32_t r) { return SackBlock{Seq(l), Seq(r)}; }

std::vector<SackBlock> ranges_of(const SackScoreboard& sb) {
  return {sb.ranges().begin(), sb.ranges().end()};
}

uint32_t upd(SackScoreboard& sb, uint32_t una, uint32_t nxt, std::vector<SackBlock> b,
             bool* dsack = nullptr) {
  return sb.update(Seq(una), Seq(nxt), b, dsack);
}

using Hole = std::optional<std::pair<Seq, Seq>>;
Hole hole(uint32_t a, uint32_t b) { return std::pair{Seq(a), Seq(b)}; }

TEST(SackScoreboard, RecordsAndMerges) {
  SackScoreboard sb(kCap);
  EXPECT_EQ(upd(sb, 1000, 9000, {blk(2000, 3000)}), 1000u);
  EXPECT_EQ(upd(sb, 1000, 9000, {blk(4000, 5000), blk(2000, 3000)}), 1000u)
      << "repeated blocks are not new";
  EXPECT_EQ(ranges_of(sb), (std::vector<SackBlock>{blk(2000, 3000), blk(4000, 5000)}));
  // Bridging block: only the gap is new; adjacent ranges merge.
  EXPECT_EQ(upd(sb, 1000, 9000, {blk(2500, 4000)}), 1000u);
  EXPECT_EQ(ranges_of(sb), (std::vector<SackBlock>{blk(2000, 5000)}));
  EXPECT_EQ(sb.sacked_bytes(), 3000u);
  // Superset.
  EXPECT_EQ(upd(sb, 1000, 9000, {blk(1500, 6000)}), 1500u);
  EXPECT_EQ(ranges_of(sb), (std::vector<SackBlock>{blk(1500, 6000)}));
  EXPECT_EQ(sb.range_count(), 1u);
}

TEST(SackScoreboard, OverlappingBlocksInOneAckCountedOnce) {
  SackScoreboard sb(kCap);
  // The second block is not a superset of the first, so this is no D-SACK.
  bool dsack = true;
  EXPECT_EQ(upd(sb, 0, 10000, {blk(100, 300), blk(200, 400), blk(350, 500)}, &dsack), 400u);
  EXPECT_FALSE(dsack);
  EXPECT_EQ(sb.sacked_bytes(), 400u);
}

TEST(SackScoreboard, IgnoresBlocksOutsideWindow) {
  SackScoreboard sb(kCap);
  // Beyond snd_nxt, inverted and empty blocks are ignored. (Not first, so no D-SACK check.)
  EXPECT_EQ(upd(sb, 1000, 5000, {blk(2000, 2100), blk(4000, 5001), blk(3000, 2900), blk(3000, 3000)}),
            100u);
  EXPECT_EQ(ranges_of(sb), (std::vector<SackBlock>{blk(2000, 2100)}));
  // A non-first block starting below snd_una is ignored too.
  EXPECT_EQ(upd(sb, 1000, 5000, {blk(2000, 2100), blk(900, 1500)}), 0u);
  EXPECT_EQ(sb.sacked_bytes(), 100u);
  // Right edge exactly snd_nxt and left exactly snd_una are fine.
  EXPECT_EQ(upd(sb, 1000, 5000, {blk(4900, 5000)}), 100u);
  EXPECT_EQ(upd(sb, 1000, 5000, {blk(1000, 1100)}), 100u);
}

TEST(SackScoreboard, DsackBelowCumulativeAck) {
  SackScoreboard sb(kCap);
  bool dsack = false;
  // RFC 2883 4.1.1: duplicate of already-acked data, reported alone.
  EXPECT_EQ(upd(sb, 4000, 9000, {blk(3000, 3500)}, &dsack), 0u);
  EXPECT_TRUE(dsack);
  EXPECT_EQ(sb.range_count(), 0u);
  // Followed by a genuine SACK block which is still recorded.
  EXPECT_EQ(upd(sb, 4000, 9000, {blk(3000, 3500), blk(5000, 6000)}, &dsack), 1000u);
  EXPECT_TRUE(dsack);
  EXPECT_EQ(ranges_of(sb), (std::vector<SackBlock>{blk(5000, 6000)}));
  // The flag is cleared on a plain SACK.
  EXPECT_EQ(upd(sb, 4000, 9000, {blk(7000, 7100)}, &dsack), 100u);
  EXPECT_FALSE(dsack);
}

TEST(SackScoreboard, DsackFirstBlockStraddlingUna) {
  SackScoreboard sb(kCap);
  bool dsack = false;
  // A genuine SACK block never starts below the cumulative ACK, so a first
  // block starting below it is a D-SACK even if it reaches past snd_una
  // (as Linux's tcp_check_dsack decides); its upper part is not recorded.
  EXPECT_EQ(upd(sb, 4000, 9000, {blk(3500, 4500)}, &dsack), 0u);
  EXPECT_TRUE(dsack);
  EXPECT_FALSE(sb.is_sacked(Seq(4200)));
}

TEST(SackScoreboard, DsackContainedInSecondBlock) {
  SackScoreboard sb(kCap);
  bool dsack = false;
  // RFC 2883 4.1.2: duplicate of out-of-order data; the second block is the
  // (larger) block holding it, and is recorded.
  EXPECT_EQ(upd(sb, 1000, 9000, {blk(5000, 5500), blk(4000, 6000)}, &dsack), 2000u);
  EXPECT_TRUE(dsack);
  EXPECT_EQ(ranges_of(sb), (std::vector<SackBlock>{blk(4000, 6000)}));
  // Equal blocks count as contained.
  EXPECT_EQ(upd(sb, 1000, 9000, {blk(4000, 6000), blk(4000, 6000)}, &dsack), 0u);
  EXPECT_TRUE(dsack);
  // Partially overlapping second block: not a D-SACK, first block recorded.
  EXPECT_EQ(upd(sb, 1000, 9000, {blk(6000, 7000), blk(6500, 8000)}, &dsack), 2000u);
  EXPECT_FALSE(dsack);
}

TEST(SackScoreboard, DsackIgnoresFirstBlockBeyondSndNxt) {
  SackScoreboard sb(kCap);
  bool dsack = true;
  EXPECT_EQ(upd(sb, 4000, 9000, {blk(3000, 9500)}, &dsack), 0u);
  EXPECT_FALSE(dsack);
  EXPECT_EQ(sb.range_count(), 0u);
}

TEST(SackScoreboard, OnAckTrims) {
  SackScoreboard sb(kCap);
  upd(sb, 0, 10000, {blk(1000, 2000), blk(3000, 4000), blk(5000, 6000)});
  sb.on_ack(Seq(3500));
  EXPECT_EQ(ranges_of(sb), (std::vector<SackBlock>{blk(3500, 4000), blk(5000, 6000)}));
  EXPECT_EQ(sb.sacked_bytes(), 1500u);
  sb.on_ack(Seq(6000));
  EXPECT_EQ(sb.range_count(), 0u);
  EXPECT_EQ(sb.sacked_bytes(), 0u);
  EXPECT_FALSE(sb.highest_sacked().has_value());
}

TEST(SackScoreboard, UpdateTrimsBelowNewUna) {
  SackScoreboard sb(kCap);
  upd(sb, 0, 10000, {blk(1000, 2000)});
  EXPECT_EQ(upd(sb, 1500, 10000, {}), 0u);
  EXPECT_EQ(ranges_of(sb), (std::vector<SackBlock>{blk(1500, 2000)}));
}

TEST(SackScoreboard, QueriesSackedAndHighest) {
  SackScoreboard sb(kCap);
  upd(sb, 0, 10000, {blk(1000, 2000), blk(3000, 4000)});
  EXPECT_FALSE(sb.is_sacked(Seq(999)));
  EXPECT_TRUE(sb.is_sacked(Seq(1000)));
  EXPECT_TRUE(sb.is_sacked(Seq(1999)));
  EXPECT_FALSE(sb.is_sacked(Seq(2000)));
  EXPECT_TRUE(sb.is_sacked(Seq(3500)));
  EXPECT_EQ(sb.highest_sacked(), Seq(4000));
  EXPECT_EQ(sb.sacked_above(Seq(0)), 2000u);
  EXPECT_EQ(sb.sacked_above(Seq(1500)), 1500u);
  EXPECT_EQ(sb.sacked_above(Seq(2500)), 1000u);
  EXPECT_EQ(sb.sacked_above(Seq(4000)), 0u);
  EXPECT_EQ(sb.sacked_between(Seq(1500), Seq(3500)), 1000u);
  EXPECT_EQ(sb.sacked_between(Seq(2000), Seq(3000)), 0u);
  EXPECT_EQ(sb.sacked_between(Seq(0), Seq(10000)), 2000u);
  EXPECT_EQ(sb.sacked_between(Seq(3500), Seq(1500)), 0u);
}

TEST(SackScoreboard, IsLostByteThresholdBoundary) {
  constexpr uint32_t kMss = 1000;
  SackScoreboard sb(kCap);
  // Exactly (DupThresh-1)*SMSS = 2000 bytes SACKed above seq 0: not lost
  // (RFC 6675 says "more than").
  upd(sb, 0, 100000, {blk(1000, 3000)});
  EXPECT_FALSE(sb.is_lost(Seq(0), kMss));
  // One more byte, contiguous (still one range): lost.
  upd(sb, 0, 100000, {blk(3000, 3001)});
  ASSERT_EQ(sb.range_count(), 1u);
  EXPECT_TRUE(sb.is_lost(Seq(0), kMss));
  // Counting is of bytes strictly above seq: from 1000 on, 2000 bytes are above.
  EXPECT_TRUE(sb.is_lost(Seq(999), kMss));
  EXPECT_FALSE(sb.is_lost(Seq(1000), kMss));
  // dup_thresh is honoured.
  EXPECT_FALSE(sb.is_lost(Seq(0), kMss, 4));
}

TEST(SackScoreboard, IsLostDiscontiguousThresholdBoundary) {
  constexpr uint32_t kMss = 1000;
  SackScoreboard sb(kCap);
  // Two small discontiguous SACKed runs above seq: not lost.
  upd(sb, 0, 100000, {blk(1000, 1100), blk(2000, 2100)});
  EXPECT_FALSE(sb.is_lost(Seq(0), kMss));
  // The third: DupThresh discontiguous SACKed sequences -> lost.
  upd(sb, 0, 100000, {blk(3000, 3100)});
  EXPECT_TRUE(sb.is_lost(Seq(0), kMss));
  EXPECT_TRUE(sb.is_lost(Seq(999), kMss));
  // Runs are counted if they hold a sequence number above seq: [1000,1100)
  // still does for seq 1098, no longer for 1099.
  EXPECT_TRUE(sb.is_lost(Seq(1098), kMss));
  EXPECT_FALSE(sb.is_lost(Seq(1099), kMss)) << "only two runs lie above 1099";
  EXPECT_FALSE(sb.is_lost(Seq(0), kMss, 4));
  EXPECT_TRUE(sb.is_lost(Seq(0), kMss, 2));
}

TEST(SackScoreboard, NextHole) {
  SackScoreboard sb(kCap);
  upd(sb, 1000, 10000, {blk(2000, 3000), blk(4000, 5000)});
  EXPECT_EQ(sb.next_hole(Seq(1000), Seq(5000)), hole(1000, 2000));
  EXPECT_EQ(sb.next_hole(Seq(1500), Seq(5000)), hole(1500, 2000));
  EXPECT_EQ(sb.next_hole(Seq(2000), Seq(5000)), hole(3000, 4000)) << "skips a SACKed start";
  EXPECT_EQ(sb.next_hole(Seq(2500), Seq(5000)), hole(3000, 4000));
  EXPECT_EQ(sb.next_hole(Seq(3000), Seq(3500)), hole(3000, 3500)) << "clipped to limit";
  EXPECT_EQ(sb.next_hole(Seq(4000), Seq(5000)), std::nullopt) << "rest is SACKed";
  EXPECT_EQ(sb.next_hole(Seq(4000), Seq(6000)), hole(5000, 6000));
  EXPECT_EQ(sb.next_hole(Seq(2000), Seq(3000)), std::nullopt);
  EXPECT_EQ(sb.next_hole(Seq(1000), Seq(1000)), std::nullopt);
  SackScoreboard empty;
  EXPECT_EQ(empty.next_hole(Seq(7), Seq(9)), hole(7, 9));
}

TEST(SackScoreboard, WrapAroundNear2To32) {
  SackScoreboard sb(kCap);
  const uint32_t una = 0xffffff00u;
  const uint32_t nxt = 0x00001000u;
  bool dsack = true;
  EXPECT_EQ(upd(sb, una, nxt, {blk(0xffffff80u, 0x00000080u)}, &dsack), 0x100u);
  EXPECT_FALSE(dsack);
  EXPECT_EQ(upd(sb, una, nxt, {blk(0x00000200u, 0x00000300u)}), 0x100u);
  EXPECT_EQ(ranges_of(sb), (std::vector<SackBlock>{blk(0xffffff80u, 0x80u), blk(0x200u, 0x300u)}));
  EXPECT_TRUE(sb.is_sacked(Seq(0xffffffffu)));
  EXPECT_TRUE(sb.is_sacked(Seq(0)));
  EXPECT_FALSE(sb.is_sacked(Seq(0x80u)));
  EXPECT_EQ(sb.highest_sacked(), Seq(0x300u));
  EXPECT_EQ(sb.next_hole(Seq(una), Seq(nxt)), hole(una, 0xffffff80u));
  EXPECT_EQ(sb.next_hole(Seq(0xffffff90u), Seq(nxt)), hole(0x80u, 0x200u));
  EXPECT_EQ(sb.sacked_above(Seq(0xfffffff0u)), 0x190u);
  EXPECT_EQ(sb.sacked_between(Seq(una), Seq(0)), 0x80u);
  // Bridge across zero and D-SACK below the wrapped una.
  EXPECT_EQ(upd(sb, una, nxt, {blk(0x80u, 0x200u)}), 0x180u);
  EXPECT_EQ(sb.range_count(), 1u);
  EXPECT_EQ(upd(sb, 0x10u, nxt, {blk(0xfffffff0u, 0x8u)}, &dsack), 0u);
  EXPECT_TRUE(dsack);
  EXPECT_EQ(ranges_of(sb), (std::vector<SackBlock>{blk(0x10u, 0x300u)}));
  EXPECT_EQ(sb.sacked_bytes(), 0x2f0u);
}

TEST(SackScoreboard, CapacityDropsSmallestButKeepsHighest) {
  SackScoreboard sb(kCap);
  // 32 ranges of 100 bytes; range #5 is smaller (10 bytes).
  for (uint32_t i = 0; i < kCap; ++i) {
    uint32_t l = 1000 + i * 1000;
    upd(sb, 0, 1000000, {blk(l, l + (i == 5 ? 10 : 100))});
  }
  ASSERT_EQ(sb.range_count(), kCap);
  // A 33rd range: the smallest (#5) is forgotten.
  EXPECT_EQ(upd(sb, 0, 1000000, {blk(500000, 500100)}), 100u);
  EXPECT_EQ(sb.range_count(), kCap);
  EXPECT_FALSE(sb.is_sacked(Seq(6000)));
  EXPECT_TRUE(sb.is_sacked(Seq(500000)));
  EXPECT_EQ(sb.sacked_bytes(), 32u * 100u);
  // A tiny new top range is kept even though it is the smallest.
  EXPECT_EQ(upd(sb, 0, 1000000, {blk(600000, 600001)}), 1u);
  EXPECT_EQ(sb.highest_sacked(), Seq(600001));
  EXPECT_EQ(sb.range_count(), kCap);
  uint32_t sum = 0;
  for (const auto& b : sb.ranges()) sum += static_cast<uint32_t>(b.right - b.left);
  EXPECT_EQ(sb.sacked_bytes(), sum);
}

TEST(SackScoreboard, ResetClears) {
  SackScoreboard sb(kCap);
  upd(sb, 0, 1000, {blk(100, 200)});
  sb.reset();
  EXPECT_EQ(sb.range_count(), 0u);
  EXPECT_EQ(sb.sacked_bytes(), 0u);
  EXPECT_FALSE(sb.is_sacked(Seq(150)));
}

// Randomised model check against a bitmap (capacity never reached: few
// distinct ranges fit in the small window used here).
TEST(SackScoreboard, RandomizedAgainstBitmapModel) {
  std::mt19937 rng(4242);
  const uint32_t base = 0xfffff000u;  // crosses 2^32 during the run
  for (int round = 0; round < 100; ++round) {
    SackScoreboard sb(kCap);
    uint32_t una = base, nxt = base + 3000;
    std::vector<bool> s(3000, false);  // index = seq - una
    for (int op = 0; op < 200; ++op) {
      if (rng() % 5 == 0) {
        uint32_t adv = rng() % 200;
        una += adv;
        nxt += adv;
        s.erase(s.begin(), s.begin() + adv);
        s.resize(3000, false);
        sb.on_ack(Seq(una));
      } else {
        uint32_t l = rng() % 2990, len = 1 + rng() % 60;
        uint32_t r = std::min(l + len, 3000u);
        uint32_t want_new = 0;
        for (uint32_t i = l; i < r; ++i) want_new += !s[i];
        uint32_t got = upd(sb, una, nxt, {blk(una + l, una + r)});
        // Counts are exact whenever the block was recorded (no D-SACK: single block above una).
        ASSERT_EQ(got, want_new);
        for (uint32_t i = l; i < r; ++i) s[i] = true;
      }
      if (sb.range_count() == kCap) break;  // model ignores eviction
      uint32_t total = 0;
      for (bool b : s) total += b;
      ASSERT_EQ(sb.sacked_bytes(), total);
      uint32_t probe = rng() % 3000;
      ASSERT_EQ(sb.is_sacked(Seq(una + probe)), s[probe]);
      uint32_t above = 0;
      for (uint32_t i = probe; i < 3000; ++i) above += s[i];
      ASSERT_EQ(sb.sacked_above(Seq(una + probe)), above);
      auto h = sb.next_hole(Seq(una + probe), Seq(nxt));
      uint32_t a = probe;
      while (a < 3000 && s[a]) ++a;
      if (a == 3000) {
        ASSERT_FALSE(h.has_value());
      } else {
        uint32_t b = a;
        while (b < 3000 && !s[b]) ++b;
        ASSERT_EQ(h, hole(una + a, una + b));
      }
    }
  }
}

}  // namespace
}  // namespace xs
