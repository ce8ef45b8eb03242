#include "stack/tcp/assembler.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <random>
#include <vector>

namespace xs {
namespace {

// The capacity tests use a small table; production tables hold kMaxRanges.
constexpr size_t kCap = 32;


using Ranges = std::vector<std::pair<uint32_t, uint32_t>>;  // (offset, len)

Ranges ranges_of(const Assembler& a) {
  Ranges v;
  for (const auto& r : a.ranges()) v.emplace_back(r.offset, r.len);
  return v;
}

std::vector<SackBlock> sacks(const Assembler& a, Seq rcv_nxt, size_t max = 4) {
  std::array<SackBlock, 8> buf{};
  size_t n = a.sack_blocks(rcv_nxt, std::span<SackBlock>(buf.data(), max));
  return {buf.begin(), buf.begin() + static_cast<ptrdiff_t>(n)};
}

SackBlock blk(uint32_t l, uint32_t r) { return SackBlock{Seq(l), Seq(r)}; }

TEST(Assembler, InOrderWithNothingQueued) {
  Assembler a(kCap);
  a.shift(100);
  EXPECT_EQ(a.pop_front(), 0u);
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(a.total_bytes(), 0u);
}

TEST(Assembler, ZeroLengthAddIsNoop) {
  Assembler a(kCap);
  EXPECT_TRUE(a.add(10, 0));
  EXPECT_TRUE(a.empty());
}

TEST(Assembler, HoleFilledByInOrderSegment) {
  Assembler a(kCap);
  ASSERT_TRUE(a.add(100, 50));   // [100,150)
  ASSERT_TRUE(a.add(200, 10));   // [200,210)
  EXPECT_EQ(a.range_count(), 2u);
  EXPECT_EQ(a.total_bytes(), 60u);
  EXPECT_EQ(a.pop_front(), 0u) << "nothing contiguous yet";
  // 100 in-order bytes arrive: [100,150) becomes contiguous.
  a.shift(100);
  uint32_t more = a.pop_front();
  EXPECT_EQ(more, 50u);
  EXPECT_EQ(ranges_of(a), (Ranges{{50, 10}}));  // [200,210) is now 150+50 => offset 50
  // An in-order segment overlapping part of the next range.
  a.shift(55);
  EXPECT_EQ(ranges_of(a), (Ranges{{0, 5}}));
  EXPECT_EQ(a.pop_front(), 5u);
  EXPECT_TRUE(a.empty());
}

TEST(Assembler, ShiftDropsCoveredRanges) {
  Assembler a(kCap);
  a.add(10, 5);
  a.add(20, 5);
  a.add(40, 5);
  a.shift(30);  // covers the first two entirely
  EXPECT_EQ(ranges_of(a), (Ranges{{10, 5}}));
  EXPECT_EQ(a.pop_front(), 0u);
}

TEST(Assembler, AdjacentRangesMergeAndShiftToExactStart) {
  Assembler a(kCap);
  a.add(10, 10);
  a.add(20, 10);  // touches: one range
  EXPECT_EQ(ranges_of(a), (Ranges{{10, 20}}));
  a.shift(10);    // ends exactly where the range starts
  EXPECT_EQ(a.pop_front(), 20u);
}

TEST(Assembler, OverlapsAndDuplicatesMerge) {
  Assembler a(kCap);
  a.add(10, 10);   // [10,20)
  a.add(30, 10);   // [30,40)
  a.add(50, 10);   // [50,60)
  a.add(15, 40);   // [15,55) bridges all three
  EXPECT_EQ(ranges_of(a), (Ranges{{10, 50}}));
  a.add(12, 3);    // duplicate inside
  a.add(10, 50);   // exact duplicate
  EXPECT_EQ(ranges_of(a), (Ranges{{10, 50}}));
  EXPECT_EQ(a.total_bytes(), 50u);
  a.add(5, 100);   // superset
  EXPECT_EQ(ranges_of(a), (Ranges{{5, 100}}));
}

TEST(Assembler, HolesFilledInEveryOrder) {
  // Five 10-byte segments at offsets 10..50 after a 10-byte hole at 0; insert
  // in every permutation, then fill the hole: all 60 bytes become contiguous.
  std::array<uint32_t, 5> order{1, 2, 3, 4, 5};
  int perms = 0;
  do {
    Assembler a(kCap);
    for (uint32_t k : order) ASSERT_TRUE(a.add(k * 10, 10));
    ASSERT_EQ(ranges_of(a), (Ranges{{10, 50}}));
    a.shift(10);
    ASSERT_EQ(a.pop_front(), 50u);
    ASSERT_TRUE(a.empty());
    ++perms;
  } while (std::next_permutation(order.begin(), order.end()));
  EXPECT_EQ(perms, 120);
}

TEST(Assembler, GapsFilledInEveryOrder) {
  // Segments at even slots first, then odd slots in every order. Slot 1 only
  // extends the first range; each of slots 3, 5, 7 joins two ranges, so the
  // range count is always 1 + (unfilled of 3, 5, 7).
  std::array<uint32_t, 4> odd{1, 3, 5, 7};
  do {
    Assembler a(kCap);
    for (uint32_t k = 2; k <= 8; k += 2) a.add(k * 10, 10);
    ASSERT_EQ(a.range_count(), 4u);
    size_t unfilled = 3;
    for (uint32_t k : odd) {
      a.add(k * 10, 10);
      if (k != 1) --unfilled;
      ASSERT_EQ(a.range_count(), 1 + unfilled);
    }
    ASSERT_EQ(ranges_of(a), (Ranges{{10, 80}}));
  } while (std::next_permutation(odd.begin(), odd.end()));
}

TEST(Assembler, CapacityLimitReturnsFalse) {
  Assembler a(kCap);
  for (uint32_t i = 0; i < kCap; ++i) ASSERT_TRUE(a.add(10 + i * 20, 10));
  EXPECT_EQ(a.range_count(), kCap);
  const auto before = ranges_of(a);
  EXPECT_FALSE(a.add(5000, 10)) << "a 33rd disjoint range does not fit";
  EXPECT_FALSE(a.add(0, 5)) << "nor below the first";
  EXPECT_EQ(ranges_of(a), before) << "a refused add changes nothing";
  // Adds that merge with existing ranges still succeed while full.
  EXPECT_TRUE(a.add(20, 10));  // bridges [10,20) and [30,40)
  EXPECT_EQ(a.range_count(), kCap - 1);
  EXPECT_TRUE(a.add(5000, 10));
  EXPECT_TRUE(a.add(15, 3));   // duplicate
}

TEST(Assembler, SackFirstBlockIsMostRecent) {
  Assembler a(kCap);
  const Seq nxt(1000);
  a.add(100, 10);  // [1100,1110)
  a.add(300, 10);  // [1300,1310)
  a.add(200, 10);  // [1200,1210)
  EXPECT_EQ(sacks(a, nxt), (std::vector<SackBlock>{blk(1200, 1210), blk(1300, 1310), blk(1100, 1110)}));
  // A segment extending an old range makes that range first (RFC 2018
  // section 4: first block contains the segment that triggered the ACK).
  a.add(110, 5);
  EXPECT_EQ(sacks(a, nxt), (std::vector<SackBlock>{blk(1100, 1115), blk(1200, 1210), blk(1300, 1310)}));
  // A duplicate of a held segment also refreshes its range.
  a.add(300, 10);
  EXPECT_EQ(sacks(a, nxt)[0], blk(1300, 1310));
}

TEST(Assembler, SackLimitedByOutputAndMostRecentKept) {
  Assembler a(kCap);
  for (uint32_t i = 0; i < 6; ++i) a.add(100 * (i + 1), 10);  // most recent: offset 600
  auto s = sacks(a, Seq(0), 3);
  EXPECT_EQ(s, (std::vector<SackBlock>{blk(600, 610), blk(500, 510), blk(400, 410)}));
  std::array<SackBlock, 1> none{};
  EXPECT_EQ(a.sack_blocks(Seq(0), std::span<SackBlock>(none.data(), 0)), 0u);
}

TEST(Assembler, SackMergedRangeInheritsNewStamp) {
  Assembler a(kCap);
  a.add(10, 10);
  a.add(50, 10);
  a.add(30, 10);
  a.add(20, 10);  // bridges [10,20) and [30,40) -> [10,40), newest
  EXPECT_EQ(sacks(a, Seq(0)), (std::vector<SackBlock>{blk(10, 40), blk(50, 60)}));
}

TEST(Assembler, SackAfterShiftUsesNewRcvNxt) {
  Assembler a(kCap);
  a.add(100, 10);
  a.add(300, 10);
  a.shift(50);  // rcv_nxt advanced by 50
  EXPECT_EQ(sacks(a, Seq(1050)), (std::vector<SackBlock>{blk(1300, 1310), blk(1100, 1110)}));
}

TEST(Assembler, SackWrapsSequenceSpace) {
  Assembler a(kCap);
  a.add(10, 20);
  EXPECT_EQ(sacks(a, Seq(0xfffffff0u)), (std::vector<SackBlock>{blk(0xfffffffau, 0x0eu)}));
}

TEST(Assembler, ClearEmpties) {
  Assembler a(kCap);
  a.add(5, 5);
  a.clear();
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(a.pop_front(), 0u);
  EXPECT_EQ(sacks(a, Seq(0)).size(), 0u);
}

// Randomised model check: a bitmap of received bytes beyond rcv_nxt,
// driven through add / shift+pop_front exactly as the receiver would.
TEST(Assembler, RandomizedAgainstBitmapModel) {
  std::mt19937 rng(777);
  // Window and segment sizes chosen so that the 32-range limit is hit often.
  constexpr uint32_t kWin = 1500;
  size_t refused = 0;
  for (int round = 0; round < 60; ++round) {
    Assembler a(kCap);
    std::vector<bool> have(kWin * 2, false);  // index = offset from rcv_nxt
    uint64_t last_stamp_range_start = UINT64_MAX;
    for (int op = 0; op < 300; ++op) {
      if (rng() % 8 != 0) {
        uint32_t off = 1 + rng() % kWin;
        uint32_t len = 1 + rng() % 20;
        const size_t count_before = a.range_count();
        bool ok = a.add(off, len);
        if (!ok) {
          ++refused;
          ASSERT_EQ(count_before, kCap);
        } else {
          for (uint32_t i = off; i < off + len; ++i) have[i] = true;
          last_stamp_range_start = off;
        }
      } else {
        uint32_t n = 1 + rng() % 100;
        a.shift(n);
        uint32_t more = a.pop_front();
        have.erase(have.begin(), have.begin() + n);
        have.resize(kWin * 2, false);
        uint32_t want_more = 0;
        while (have[want_more]) ++want_more;
        ASSERT_EQ(more, want_more);
        have.erase(have.begin(), have.begin() + more);
        have.resize(kWin * 2, false);
        last_stamp_range_start = UINT64_MAX;
      }
      // Compare ranges with maximal runs of the bitmap.
      Ranges want;
      for (uint32_t i = 0; i < have.size();) {
        if (!have[i]) { ++i; continue; }
        uint32_t j = i;
        while (j < have.size() && have[j]) ++j;
        want.emplace_back(i, j - i);
        i = j;
      }
      ASSERT_EQ(ranges_of(a), want) << "round " << round << " op " << op;
      uint32_t total = 0;
      for (auto& w : want) total += w.second;
      ASSERT_EQ(a.total_bytes(), total);
      if (last_stamp_range_start != UINT64_MAX) {
        // The first SACK block covers the segment just added.
        auto s = sacks(a, Seq(0), 1);
        ASSERT_EQ(s.size(), 1u);
        ASSERT_TRUE(Seq(static_cast<uint32_t>(last_stamp_range_start)).in_window(
            s[0].left, static_cast<uint32_t>(s[0].right - s[0].left)));
      }
    }
  }
  EXPECT_GT(refused, 100u) << "the capacity path must be exercised";
}

}  // namespace
}  // namespace xs
