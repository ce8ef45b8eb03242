// IPv4 reassembly: ordering, duplicates, overlaps, limits, timeouts.
#include <gtest/gtest.h>

#include <vector>

#include "stack/net/reassembly.hpp"

using namespace xs;

namespace {

constexpr Ipv4Addr kSrc = Ipv4Addr::from_octets(198, 18, 0, 2);
constexpr Ipv4Addr kDst = Ipv4Addr::from_octets(198, 18, 0, 1);

Instant at_ms(int64_t ms) { return Instant{ms * 1000}; }

std::vector<uint8_t> pattern(size_t n, uint8_t seed = 0) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = uint8_t(i * 7 + seed);
  return v;
}

// A fragment of `data` at [off, off+len), as parse_ipv4 would hand it over.
struct Frag {
  std::vector<uint8_t> header = std::vector<uint8_t>(20, 0x45);
  Ipv4Packet pkt;
  Frag(const std::vector<uint8_t>& data, size_t off, size_t len, bool more, uint16_t ident = 7,
       Ipv4Addr src = kSrc) {
    pkt.hdr.src = src;
    pkt.hdr.dst = kDst;
    pkt.hdr.protocol = 17;
    pkt.hdr.ident = ident;
    pkt.hdr.more_frags = more;
    pkt.hdr.frag_offset = uint16_t(off);
    pkt.hdr.payload_len = uint16_t(len);
    header[1] = uint8_t(off / 8);  // makes headers of different fragments distinguishable
    pkt.header_len = 20;
    pkt.header = Bytes(header.data(), header.size());
    pkt.payload = Bytes(data.data() + off, len);
  }
};

struct ReasmFixture : ::testing::Test {
  StackCounters c;
  Reassembly r{c};
};

TEST_F(ReasmFixture, TwoFragmentsInOrder) {
  auto data = pattern(1000);
  Frag a(data, 0, 512, true), b(data, 512, 488, false);
  EXPECT_FALSE(r.add(at_ms(0), a.pkt).has_value());
  EXPECT_EQ(r.in_progress(), 1u);
  auto out = r.add(at_ms(1), b.pkt);
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(std::vector<uint8_t>(out->payload.begin(), out->payload.end()), data);
  EXPECT_EQ(out->hdr.payload_len, 1000);
  EXPECT_FALSE(out->hdr.more_frags);
  EXPECT_EQ(out->hdr.frag_offset, 0);
  EXPECT_EQ(out->hdr.protocol, 17);
  EXPECT_EQ(out->header[1], 0);  // the first fragment's header
  EXPECT_EQ(c.ip_reasm_reqds, 2u);
  EXPECT_EQ(c.ip_reasm_oks, 1u);
  EXPECT_EQ(r.in_progress(), 0u);
  EXPECT_EQ(r.bytes_used(), 0u);
  EXPECT_EQ(r.poll_at(), kNever);
}

TEST_F(ReasmFixture, ReverseOrderThreeFragments) {
  auto data = pattern(3000, 3);
  Frag a(data, 0, 1480, true), b(data, 1480, 1480, true), c3(data, 2960, 40, false);
  EXPECT_FALSE(r.add(at_ms(0), c3.pkt).has_value());
  EXPECT_FALSE(r.add(at_ms(0), b.pkt).has_value());
  auto out = r.add(at_ms(0), a.pkt);
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(std::vector<uint8_t>(out->payload.begin(), out->payload.end()), data);
}

TEST_F(ReasmFixture, ExactDuplicateIsIgnored) {
  auto data = pattern(100);
  Frag a(data, 0, 64, true), b(data, 64, 36, false);
  EXPECT_FALSE(r.add(at_ms(0), a.pkt).has_value());
  EXPECT_FALSE(r.add(at_ms(0), a.pkt).has_value());
  ASSERT_TRUE(r.add(at_ms(0), b.pkt).has_value());
  EXPECT_EQ(c.ip_reasm_fails, 0u);
}

TEST_F(ReasmFixture, OverlapWithDifferentDataDropsDatagram) {
  auto data = pattern(100);
  auto evil = pattern(100, 99);
  Frag a(data, 0, 64, true), a_evil(evil, 0, 64, true), b(data, 64, 36, false);
  EXPECT_FALSE(r.add(at_ms(0), a.pkt).has_value());
  EXPECT_FALSE(r.add(at_ms(0), a_evil.pkt).has_value());
  EXPECT_EQ(c.ip_reasm_fails, 1u);
  EXPECT_EQ(r.in_progress(), 0u);
  // The tail alone starts a fresh (incomplete) datagram.
  EXPECT_FALSE(r.add(at_ms(0), b.pkt).has_value());
  EXPECT_EQ(c.ip_reasm_oks, 0u);
}

TEST_F(ReasmFixture, PartialOverlapEvenWithSameDataDropsDatagram) {
  auto data = pattern(200);
  Frag a(data, 0, 64, true), b(data, 56, 64, true);
  EXPECT_FALSE(r.add(at_ms(0), a.pkt).has_value());
  EXPECT_FALSE(r.add(at_ms(0), b.pkt).has_value());
  EXPECT_EQ(c.ip_reasm_fails, 1u);
  EXPECT_EQ(r.in_progress(), 0u);
}

TEST_F(ReasmFixture, FragmentSpanningTwoRangesIsAnOverlap) {
  auto data = pattern(200);
  Frag a(data, 0, 16, true), b(data, 32, 16, true), ab(data, 8, 32, true);
  EXPECT_FALSE(r.add(at_ms(0), a.pkt).has_value());
  EXPECT_FALSE(r.add(at_ms(0), b.pkt).has_value());
  EXPECT_FALSE(r.add(at_ms(0), ab.pkt).has_value());
  EXPECT_EQ(c.ip_reasm_fails, 1u);
}

TEST_F(ReasmFixture, ConflictingLastFragmentsDropDatagram) {
  auto data = pattern(200);
  Frag last1(data, 64, 36, false), last2(data, 64, 40, false);
  EXPECT_FALSE(r.add(at_ms(0), last1.pkt).has_value());
  EXPECT_FALSE(r.add(at_ms(0), last2.pkt).has_value());
  EXPECT_EQ(c.ip_reasm_fails, 1u);
  // Data beyond a known end is also fatal.
  Frag last(data, 64, 8, false), beyond(data, 80, 16, true);
  EXPECT_FALSE(r.add(at_ms(0), last.pkt).has_value());
  EXPECT_FALSE(r.add(at_ms(0), beyond.pkt).has_value());
  EXPECT_EQ(c.ip_reasm_fails, 2u);
}

TEST_F(ReasmFixture, OversizeAndMisalignedFragmentsRejected) {
  auto data = pattern(65535);
  // offset + len + header > 65535
  Frag big(data, 65528, 8, false);
  EXPECT_FALSE(r.add(at_ms(0), big.pkt).has_value());
  EXPECT_EQ(c.ip_reasm_fails, 1u);
  EXPECT_EQ(r.in_progress(), 0u);
  // Non-final fragment whose length is not a multiple of 8.
  Frag odd(data, 0, 13, true);
  EXPECT_FALSE(r.add(at_ms(0), odd.pkt).has_value());
  EXPECT_EQ(c.ip_reasm_fails, 2u);
  // The largest legal datagram reassembles.
  Frag a(data, 0, 65000, true), b(data, 65000, 65535 - 20 - 65000, false);
  EXPECT_FALSE(r.add(at_ms(0), a.pkt).has_value());
  auto out = r.add(at_ms(0), b.pkt);
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->payload.size(), 65515u);
}

TEST_F(ReasmFixture, DifferentIdentsDoNotMix) {
  auto data = pattern(100);
  Frag a1(data, 0, 64, true, 1), b2(data, 64, 36, false, 2);
  EXPECT_FALSE(r.add(at_ms(0), a1.pkt).has_value());
  EXPECT_FALSE(r.add(at_ms(0), b2.pkt).has_value());
  EXPECT_EQ(r.in_progress(), 2u);
}

TEST_F(ReasmFixture, TimeoutDropsAndReportsFirstFragment) {
  auto data = pattern(100);
  Frag a(data, 0, 64, true, 1);
  Frag tail_only(data, 64, 36, false, 2);
  EXPECT_FALSE(r.add(at_ms(0), a.pkt).has_value());
  EXPECT_FALSE(r.add(at_ms(10), tail_only.pkt).has_value());
  EXPECT_EQ(r.poll_at(), at_ms(30000));
  int calls = 0;
  r.poll(at_ms(29999), [&](const Ipv4Packet&) { ++calls; });
  EXPECT_EQ(calls, 0);
  std::vector<uint8_t> first8;
  r.poll(at_ms(30000), [&](const Ipv4Packet& first) {
    ++calls;
    EXPECT_EQ(first.hdr.ident, 1);
    EXPECT_EQ(first.header.size(), 20u);
    first8.assign(first.payload.begin(), first.payload.end());
  });
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(first8, std::vector<uint8_t>(data.begin(), data.begin() + 8));
  EXPECT_EQ(c.ip_reasm_timeouts, 1u);
  EXPECT_EQ(r.poll_at(), at_ms(30010));
  // The datagram without its first fragment times out silently (no ICMP).
  r.poll(at_ms(30010), [&](const Ipv4Packet&) { ++calls; });
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(c.ip_reasm_timeouts, 2u);
  EXPECT_EQ(r.in_progress(), 0u);
  EXPECT_EQ(r.bytes_used(), 0u);
}

TEST_F(ReasmFixture, DatagramCountLimitEvictsOldest) {
  auto data = pattern(100);
  std::vector<Frag> frags;
  frags.reserve(65);
  for (uint16_t i = 0; i < 65; ++i) frags.emplace_back(data, 0, 64, true, i);
  for (uint16_t i = 0; i < 65; ++i) EXPECT_FALSE(r.add(at_ms(i), frags[i].pkt).has_value());
  EXPECT_EQ(r.in_progress(), 64u);
  EXPECT_EQ(c.ip_reasm_fails, 1u);
  // ident 1 is still there (completing it frees its slot)...
  Frag tail1(data, 64, 36, false, 1);
  EXPECT_TRUE(r.add(at_ms(100), tail1.pkt).has_value());
  // ...but ident 0 (the oldest) was evicted: its tail starts a new datagram.
  Frag tail0(data, 64, 36, false, 0);
  EXPECT_FALSE(r.add(at_ms(100), tail0.pkt).has_value());
  EXPECT_EQ(r.in_progress(), 64u);
  EXPECT_EQ(c.ip_reasm_fails, 1u);
}

TEST(ReassemblyMemory, ByteLimitBoundsMemory) {
  StackCounters c;
  ReassemblyConfig cfg;
  cfg.max_bytes = 100'000;
  Reassembly r(c, cfg);
  auto data = pattern(65535);
  std::vector<Frag> frags;
  frags.reserve(10);
  // Each datagram's first fragment lands far out, forcing a ~40 KB buffer.
  for (uint16_t i = 0; i < 10; ++i) frags.emplace_back(data, 40000, 8, true, i);
  for (uint16_t i = 0; i < 10; ++i) {
    EXPECT_FALSE(r.add(at_ms(i), frags[i].pkt).has_value());
    EXPECT_LE(r.bytes_used(), cfg.max_bytes);
  }
  EXPECT_LT(r.in_progress(), 10u);
  EXPECT_GT(c.ip_reasm_fails, 0u);
}

}  // namespace
