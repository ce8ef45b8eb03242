// The in-memory test device as a FrameLender: it lends the frame being
// delivered like the AF_XDP device, so engine tests can exercise zero-copy
// receive without privileges.
#include <gtest/gtest.h>

#include <cstring>
#include <optional>
#include <set>
#include <vector>

#include "socketapi/memory_device.hpp"

namespace xs {
namespace {

constexpr size_t kLimit = 256;  // MemoryDevice's lend limit

struct Pair {
  Pair() {
    auto [a, b] = make_memory_device_pair(MacAddr{{2, 0, 0, 0, 0, 1}}, MacAddr{{2, 0, 0, 0, 0, 2}});
    tx = std::move(a);
    rx = std::move(b);
  }
  // Sends a 64-byte frame filled with `fill` from tx to rx.
  void send(uint8_t fill) {
    MutBytes buf = tx->tx_acquire();
    ASSERT_GE(buf.size(), 64u);
    memset(buf.data(), fill, 64);
    tx->tx_commit(64);
    tx->flush_tx();
  }
  std::unique_ptr<PacketDevice> tx, rx;
};

TEST(MemoryDeviceLend, HeldBytesStayValidAfterPollAndLaterFrames) {
  Pair p;
  FrameLender* lender = p.rx->frame_lender();
  ASSERT_NE(lender, nullptr);
  p.send(0xA1);
  std::optional<uint64_t> h;
  Bytes kept;
  EXPECT_EQ(p.rx->poll_rx([&](Bytes f) {
    kept = f.subspan(14);  // the "payload" past an Ethernet header
    h = lender->hold(kept);
    // The span the callback is reading stays valid after the hold too.
    EXPECT_EQ(f[0], 0xA1);
  }, 8), 1u);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(p.rx->counters().rx_lent, 1u);

  // More frames come and go (not held); the held bytes are untouched.
  for (int i = 0; i < 20; ++i) p.send(uint8_t(i));
  EXPECT_EQ(p.rx->poll_rx([&](Bytes f) { EXPECT_NE(f.data(), kept.data() - 14); }, 64), 20u);
  ASSERT_EQ(kept.size(), 50u);
  for (uint8_t b : kept) ASSERT_EQ(b, 0xA1);
  EXPECT_EQ(p.rx->counters().rx_lent, 1u);

  lender->release(*h);
  EXPECT_EQ(p.rx->counters().rx_lent, 0u);
  EXPECT_EQ(p.rx->counters().rx_lend_refused, 0u);
}

TEST(MemoryDeviceLend, RefusesOutsideTheCallbackAndBytesNotInTheFrame) {
  Pair p;
  FrameLender* lender = p.rx->frame_lender();
  ASSERT_NE(lender, nullptr);
  std::vector<uint8_t> elsewhere(64, 0);
  EXPECT_FALSE(lender->hold(Bytes(elsewhere.data(), elsewhere.size())).has_value());  // no poll running

  p.send(0x11);
  Bytes last;
  std::optional<uint64_t> foreign, straddling, whole, second;
  p.rx->poll_rx([&](Bytes f) {
    foreign = lender->hold(Bytes(elsewhere.data(), elsewhere.size()));  // e.g. a reassembled datagram
    straddling = lender->hold(Bytes(f.data() + 1, f.size()));          // one byte past the frame
    whole = lender->hold(f);
    second = lender->hold(f);  // the same frame again
    last = f;
  }, 8);
  EXPECT_FALSE(foreign.has_value());
  EXPECT_FALSE(straddling.has_value());
  ASSERT_TRUE(whole.has_value());
  EXPECT_FALSE(second.has_value());
  EXPECT_EQ(p.rx->counters().rx_lent, 1u);
  // After poll_rx returned, the frame just delivered can no longer be held.
  EXPECT_FALSE(lender->hold(last).has_value());
  // Refusals other than the limit are not counted as lend_refused.
  EXPECT_EQ(p.rx->counters().rx_lend_refused, 0u);
  lender->release(*whole);
  EXPECT_EQ(p.rx->counters().rx_lent, 0u);
  lender->release(*whole + 12345);  // unknown handle: ignored
  EXPECT_EQ(p.rx->counters().rx_lent, 0u);
}

TEST(MemoryDeviceLend, LendLimitRefusesAndReleaseMakesRoom) {
  Pair p;
  FrameLender* lender = p.rx->frame_lender();
  ASSERT_NE(lender, nullptr);
  std::vector<std::optional<uint64_t>> handles;
  std::vector<Bytes> spans;
  for (size_t i = 0; i <= kLimit; ++i) p.send(uint8_t(i));
  p.rx->poll_rx([&](Bytes f) {
    handles.push_back(lender->hold(f));
    spans.push_back(f);
  }, kLimit + 10);
  ASSERT_EQ(handles.size(), kLimit + 1);
  std::set<uint64_t> distinct;
  for (size_t i = 0; i < kLimit; ++i) {
    ASSERT_TRUE(handles[i].has_value()) << i;
    distinct.insert(*handles[i]);
  }
  EXPECT_EQ(distinct.size(), kLimit);
  EXPECT_FALSE(handles[kLimit].has_value()) << "the 257th hold must be refused";
  EXPECT_EQ(p.rx->counters().rx_lent, kLimit);
  EXPECT_EQ(p.rx->counters().rx_lend_refused, 1u);
  // Every held frame still has its own contents.
  for (size_t i = 0; i < kLimit; ++i) ASSERT_EQ(spans[i][0], uint8_t(i)) << i;

  lender->release(*handles[0]);
  EXPECT_EQ(p.rx->counters().rx_lent, kLimit - 1);
  p.send(0xEE);
  std::optional<uint64_t> h;
  p.rx->poll_rx([&](Bytes f) { h = lender->hold(f); }, 8);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(p.rx->counters().rx_lend_refused, 1u);
  EXPECT_EQ(p.rx->counters().rx_lent, kLimit);
  for (size_t i = 1; i < kLimit; ++i) lender->release(*handles[i]);
  lender->release(*h);
  EXPECT_EQ(p.rx->counters().rx_lent, 0u);
}

// Committed frames wait for flush_tx, as on the AF_XDP TX ring until the
// kick (the engine's deferred kick depends on it).
TEST(MemoryDeviceTx, CommittedFramesLeaveOnFlush) {
  Pair p;
  MutBytes buf = p.tx->tx_acquire();
  memset(buf.data(), 7, 64);
  p.tx->tx_commit(64);
  EXPECT_TRUE(p.tx->tx_pending());
  size_t got = p.rx->poll_rx([](Bytes) {}, 16);
  EXPECT_EQ(got, 0u);
  p.tx->flush_tx();
  EXPECT_FALSE(p.tx->tx_pending());
  got = p.rx->poll_rx([](Bytes f) { EXPECT_EQ(f[0], 7); }, 16);
  EXPECT_EQ(got, 1u);
}

}  // namespace
}  // namespace xs
