#include "stack/tcp/byte_ring.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <numeric>
#include <random>
#include <vector>

namespace xs {
namespace {

std::vector<uint8_t> iota_bytes(size_t n, uint8_t start = 0) {
  std::vector<uint8_t> v(n);
  std::iota(v.begin(), v.end(), start);
  return v;
}

std::vector<uint8_t> read_all(const ByteRing& r, size_t offset = 0) {
  std::vector<uint8_t> v(r.size() > offset ? r.size() - offset : 0);
  EXPECT_EQ(r.read(v, offset), v.size());
  return v;
}

std::vector<uint8_t> concat(const std::array<Bytes, 2>& s) {
  std::vector<uint8_t> v(s[0].begin(), s[0].end());
  v.insert(v.end(), s[1].begin(), s[1].end());
  return v;
}

TEST(ByteRing, EmptyAndZeroCapacity) {
  ByteRing r;
  EXPECT_EQ(r.capacity(), 0u);
  EXPECT_TRUE(r.empty());
  auto d = iota_bytes(4);
  EXPECT_EQ(r.push(d), 0u);
  EXPECT_EQ(r.write_at(0, d), 0u);
  EXPECT_TRUE(r.writable()[0].empty());
  r.consume(3);
  EXPECT_EQ(r.size(), 0u);
}

TEST(ByteRing, MoveLeavesSourceEmptyAndUsable) {
  ByteRing a(8);
  a.push(iota_bytes(5));
  ByteRing b(std::move(a));
  EXPECT_EQ(read_all(b), iota_bytes(5));
  EXPECT_EQ(a.capacity(), 0u);  // NOLINT(bugprone-use-after-move): defined state
  EXPECT_EQ(a.size(), 0u);
  EXPECT_EQ(a.push(iota_bytes(3)), 0u);
  a.reserve(4);
  EXPECT_EQ(a.push(iota_bytes(3)), 3u);
  b = std::move(a);
  EXPECT_EQ(read_all(b), iota_bytes(3));
  EXPECT_EQ(a.capacity(), 0u);
}

TEST(ByteRing, PushPartialWhenFull) {
  ByteRing r(8);
  auto d = iota_bytes(10);
  EXPECT_EQ(r.push(d), 8u);
  EXPECT_EQ(r.size(), 8u);
  EXPECT_EQ(r.free_space(), 0u);
  EXPECT_EQ(r.push(d), 0u);
  EXPECT_EQ(read_all(r), iota_bytes(8));
}

TEST(ByteRing, WrapAround) {
  ByteRing r(8);
  ASSERT_EQ(r.push(iota_bytes(6)), 6u);
  r.consume(5);  // front now at physical 5
  ASSERT_EQ(r.push(iota_bytes(6, 100)), 6u);  // wraps
  EXPECT_EQ(r.size(), 7u);
  std::vector<uint8_t> want{5, 100, 101, 102, 103, 104, 105};
  EXPECT_EQ(read_all(r), want);
  // Read from an offset that starts after the wrap point.
  std::vector<uint8_t> out(3);
  EXPECT_EQ(r.read(out, 4), 3u);
  EXPECT_EQ(out, (std::vector<uint8_t>{103, 104, 105}));
  // Reading past size() returns nothing; short reads are clipped.
  EXPECT_EQ(r.read(out, 7), 0u);
  EXPECT_EQ(r.read(out, 6), 1u);
  EXPECT_EQ(out[0], 105);
}

TEST(ByteRing, ConsumeClampsToSize) {
  ByteRing r(4);
  r.push(iota_bytes(3));
  r.consume(10);
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(r.free_space(), 4u);
  r.push(iota_bytes(4, 7));
  EXPECT_EQ(read_all(r), iota_bytes(4, 7));
}

TEST(ByteRing, WriteAtBeyondSizeThenCommit) {
  ByteRing r(10);
  r.push(iota_bytes(2));      // in-order [0,2)
  r.consume(1);               // front moves, ring offsets shift
  auto ooo = iota_bytes(3, 50);
  // Out-of-order bytes at offsets 4..6 (a hole at 1..3).
  EXPECT_EQ(r.write_at(4, ooo), 3u);
  EXPECT_EQ(r.size(), 1u) << "write_at must not change size()";
  // Fill the hole, then commit everything.
  auto hole = iota_bytes(3, 20);
  EXPECT_EQ(r.write_at(1, hole), 3u);
  r.commit(6);
  EXPECT_EQ(r.size(), 7u);
  EXPECT_EQ(read_all(r), (std::vector<uint8_t>{1, 20, 21, 22, 50, 51, 52}));
}

TEST(ByteRing, WriteAtLimitedByCapacityAndWraps) {
  ByteRing r(8);
  r.push(iota_bytes(7));
  r.consume(6);  // head at physical 6, size 1
  auto d = iota_bytes(10, 30);
  // Offsets 3..7 fit (capacity 8), the rest is dropped; physical 1..5 after wrap.
  EXPECT_EQ(r.write_at(3, d), 5u);
  EXPECT_EQ(r.write_at(8, d), 0u);
  EXPECT_EQ(r.write_at(100, d), 0u);
  r.write_at(1, iota_bytes(2, 90));
  r.commit(100);  // clamped to free space
  EXPECT_EQ(r.size(), 8u);
  EXPECT_EQ(read_all(r), (std::vector<uint8_t>{6, 90, 91, 30, 31, 32, 33, 34}));
}

TEST(ByteRing, ReserveWhileWrappedPreservesBytesAndOutOfOrderData) {
  ByteRing r(8);
  r.push(iota_bytes(8));
  r.consume(5);
  r.push(iota_bytes(3, 40));  // wrapped: [5,6,7,40,41,42]
  r.write_at(7, iota_bytes(1, 77));  // out-of-order byte at offset 7 (hole at 6)
  r.reserve(20);
  EXPECT_EQ(r.capacity(), 20u);
  EXPECT_EQ(r.size(), 6u);
  EXPECT_EQ(read_all(r), (std::vector<uint8_t>{5, 6, 7, 40, 41, 42}));
  r.write_at(6, iota_bytes(1, 66));
  r.commit(2);
  EXPECT_EQ(read_all(r), (std::vector<uint8_t>{5, 6, 7, 40, 41, 42, 66, 77}));
  // New room is usable and contiguous.
  EXPECT_EQ(r.push(iota_bytes(12, 1)), 12u);
  EXPECT_EQ(r.free_space(), 0u);
  // Reserve never shrinks.
  r.reserve(4);
  EXPECT_EQ(r.capacity(), 20u);
  EXPECT_EQ(r.size(), 20u);
}

TEST(ByteRing, SegmentsSpans) {
  ByteRing r(8);
  r.push(iota_bytes(6));
  r.consume(6);
  r.push(iota_bytes(8, 10));  // head at physical 6: spans [6,8) + [0,6)
  auto s = r.segments(0, 8);
  EXPECT_EQ(s[0].size(), 2u);
  EXPECT_EQ(s[1].size(), 6u);
  EXPECT_EQ(concat(s), iota_bytes(8, 10));
  // A range entirely after the wrap point is one span.
  s = r.segments(3, 4);
  EXPECT_EQ(s[0].size(), 4u);
  EXPECT_TRUE(s[1].empty());
  EXPECT_EQ(concat(s), iota_bytes(4, 13));
  // Clipped to size().
  s = r.segments(5, 100);
  EXPECT_EQ(concat(s), iota_bytes(3, 15));
  s = r.segments(8, 1);
  EXPECT_TRUE(s[0].empty() && s[1].empty());
  // Spans alias the buffer (zero copy).
  EXPECT_EQ(r.segments(2, 1)[0].data(), r.segments(0, 8)[1].data());
}

TEST(ByteRing, WritableSpansThenCommit) {
  ByteRing r(8);
  r.push(iota_bytes(5));
  r.consume(3);  // head 3, size 2: free space physical [5,8) + [0,3)
  auto w = r.writable();
  ASSERT_EQ(w[0].size(), 3u);
  ASSERT_EQ(w[1].size(), 3u);
  for (size_t i = 0; i < 3; ++i) w[0][i] = uint8_t(60 + i);
  for (size_t i = 0; i < 2; ++i) w[1][i] = uint8_t(63 + i);
  r.commit(5);
  EXPECT_EQ(read_all(r), (std::vector<uint8_t>{3, 4, 60, 61, 62, 63, 64}));
  w = r.writable();
  EXPECT_EQ(w[0].size(), 1u);
  EXPECT_TRUE(w[1].empty());
  r.commit(1);
  w = r.writable();
  EXPECT_TRUE(w[0].empty() && w[1].empty());
}

// Randomised model check against std::deque plus a shadow of the out-of-order
// area, with a fixed seed so failures reproduce.
TEST(ByteRing, RandomizedAgainstDequeModel) {
  std::mt19937 rng(12345);
  ByteRing r(37);
  std::deque<uint8_t> model;
  std::vector<int> ooo(37, -1);  // model of bytes beyond size(), by offset - size()
  uint8_t next = 0;
  auto rnd = [&](size_t n) { return static_cast<size_t>(rng() % (n + 1)); };
  for (int op = 0; op < 100000; ++op) {
    switch (rng() % 7) {
      case 0: {  // push
        std::vector<uint8_t> d(rnd(20));
        for (auto& b : d) b = next++;
        size_t n = r.push(d);
        ASSERT_EQ(n, std::min(d.size(), r.capacity() - model.size()));
        model.insert(model.end(), d.begin(), d.begin() + static_cast<ptrdiff_t>(n));
        ooo.erase(ooo.begin(), ooo.begin() + static_cast<ptrdiff_t>(n));
        ooo.resize(r.capacity(), -1);
        break;
      }
      case 1: {  // consume
        size_t n = std::min(rnd(20), model.size());
        r.consume(n);
        model.erase(model.begin(), model.begin() + static_cast<ptrdiff_t>(n));
        break;
      }
      case 2: {  // read at an offset
        size_t off = rnd(model.size() + 2);
        std::vector<uint8_t> out(rnd(25));
        size_t n = r.read(out, off);
        size_t want = off < model.size() ? std::min(out.size(), model.size() - off) : 0;
        ASSERT_EQ(n, want);
        for (size_t i = 0; i < n; ++i) ASSERT_EQ(out[i], model[off + i]) << "op " << op;
        break;
      }
      case 3: {  // write_at beyond size
        size_t off = model.size() + rnd(15);
        std::vector<uint8_t> d(rnd(10));
        for (auto& b : d) b = next++;
        size_t n = r.write_at(off, d);
        ASSERT_EQ(n, off < r.capacity() ? std::min(d.size(), r.capacity() - off) : 0);
        for (size_t i = 0; i < n; ++i) ooo[off - model.size() + i] = d[i];
        break;
      }
      case 4: {  // commit bytes that were written with write_at (only defined ones)
        size_t n = 0;
        while (n < ooo.size() && ooo[n] >= 0 && n < r.free_space()) ++n;
        n = std::min(n, rnd(12));
        r.commit(n);
        for (size_t i = 0; i < n; ++i) model.push_back(static_cast<uint8_t>(ooo[i]));
        ooo.erase(ooo.begin(), ooo.begin() + static_cast<ptrdiff_t>(n));
        ooo.resize(r.capacity(), -1);
        break;
      }
      case 5: {  // segments
        size_t off = rnd(model.size());
        size_t len = rnd(40);
        auto s = r.segments(off, len);
        auto v = concat(s);
        ASSERT_EQ(v.size(), std::min(len, model.size() - off));
        for (size_t i = 0; i < v.size(); ++i) ASSERT_EQ(v[i], model[off + i]);
        break;
      }
      case 6: {  // occasionally grow
        if (rng() % 50 == 0 && r.capacity() < 4000) {
          size_t nc = r.capacity() + rnd(60);
          r.reserve(nc);
          ooo.resize(r.capacity(), -1);
        }
        break;
      }
    }
    ASSERT_EQ(r.size(), model.size());
    ASSERT_LE(r.size(), r.capacity());
  }
  // Final full compare, including out-of-order bytes surviving every reserve.
  EXPECT_EQ(read_all(r), std::vector<uint8_t>(model.begin(), model.end()));
  for (size_t i = 0; i < r.free_space(); ++i) {
    if (ooo[i] < 0) continue;
    auto w = r.writable();
    uint8_t b = i < w[0].size() ? w[0][i] : w[1][i - w[0].size()];
    ASSERT_EQ(b, ooo[i]) << "out-of-order byte at +" << i;
  }
}

}  // namespace
}  // namespace xs
