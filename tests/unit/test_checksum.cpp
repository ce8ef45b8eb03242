// Internet checksum (RFC 1071) and incremental update (RFC 1624) against a
// byte-at-a-time reference and published vectors.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "stack/wire/checksum.hpp"

namespace xs {
namespace {

// RFC 1071 section 4.1, the obvious way: big-endian 16-bit words, odd byte
// padded with zero, end-around carry, folded to 16 bits (not complemented).
uint16_t ref_sum(const uint8_t* p, size_t n) {
  uint32_t s = 0;
  for (size_t i = 0; i + 1 < n; i += 2) s += uint32_t(p[i]) << 8 | p[i + 1];
  if (n & 1) s += uint32_t(p[n - 1]) << 8;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(s);
}

TEST(Checksum, Rfc1071Section3Example) {
  // RFC 1071 3: the bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2.
  const uint8_t d[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  EXPECT_EQ(csum_fold(csum_partial(d)), uint16_t(~0xddf2));
  EXPECT_EQ(internet_checksum(d), 0x220d);
}

// 198.18.0.1 -> 198.18.0.199, UDP, DF, TTL 64, total length 0x73: ad8d by an
// independent RFC 1071 sum.
TEST(Checksum, ExampleIpv4HeaderIsAd8d) {
  uint8_t h[] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                 0x00, 0x00, 0xc6, 0x12, 0x00, 0x01, 0xc6, 0x12, 0x00, 0xc7};
  EXPECT_EQ(internet_checksum(h), 0xad8d);
  h[10] = 0xad;
  h[11] = 0x8d;
  EXPECT_TRUE(csum_verify(h));
  // Every single-bit corruption is detected.
  for (size_t i = 0; i < sizeof h; ++i) {
    for (int b = 0; b < 8; ++b) {
      h[i] ^= uint8_t(1 << b);
      EXPECT_FALSE(csum_verify(h)) << "byte " << i << " bit " << b;
      h[i] ^= uint8_t(1 << b);
    }
  }
}

TEST(Checksum, EmptyAndZeroData) {
  EXPECT_EQ(csum_partial({}), 0u);
  EXPECT_EQ(internet_checksum({}), 0xffff);
  const uint8_t z[7] = {};
  EXPECT_EQ(internet_checksum(z), 0xffff);
  const uint8_t one[1] = {0xab};  // odd byte is the high half of its word
  EXPECT_EQ(internet_checksum(one), uint16_t(~0xab00));
}

TEST(Checksum, MatchesReferenceForEveryLengthAndAlignment) {
  std::mt19937 rng(12345);
  std::vector<uint8_t> buf(2000 + 16);
  for (auto& b : buf) b = uint8_t(rng());
  for (size_t len = 0; len <= 2000; ++len) {
    size_t off = rng() % 8;
    const uint8_t* p = buf.data() + off;
    uint16_t ref = ref_sum(p, len);
    uint16_t got = static_cast<uint16_t>(~csum_fold(csum_partial(Bytes(p, len))));
    // 0 and 0xffff are both one's-complement zero; only all-zero data may give 0.
    ASSERT_EQ(got, ref) << "len " << len << " off " << off;
    ASSERT_EQ(internet_checksum(Bytes(p, len)), uint16_t(~ref));
  }
}

TEST(Checksum, AllOnesDataCarriesCorrectly) {
  // Maximal carries in every 64-bit add.
  std::vector<uint8_t> ff(1501, 0xff);
  for (size_t len = 0; len <= ff.size(); len += 37) {
    ASSERT_EQ(uint16_t(~internet_checksum(Bytes(ff.data(), len))), ref_sum(ff.data(), len)) << len;
  }
}

TEST(Checksum, SplitSpansEqualWhole) {
  std::mt19937 rng(7);
  std::vector<uint8_t> buf(1000);
  for (auto& b : buf) b = uint8_t(rng());
  for (size_t cut = 0; cut <= buf.size(); cut += 2) {
    uint64_t acc = csum_partial(Bytes(buf.data(), cut));
    acc = csum_partial(Bytes(buf.data() + cut, buf.size() - cut), acc);
    ASSERT_EQ(csum_fold(acc), internet_checksum(buf)) << cut;
  }
}

TEST(Checksum, LargeIncomingAccumulatorWraps) {
  const uint8_t d[] = {0x12, 0x34, 0x56, 0x78, 0x9a};
  // 0xffff'ffff'ffff'ffff is one's-complement zero; adding data to it must
  // behave like adding to 0.
  uint64_t acc = csum_partial(d, ~uint64_t(0));
  EXPECT_EQ(csum_fold(acc), internet_checksum(d));
}

TEST(Checksum, PseudoHeaderMatchesReference) {
  // RFC 9293 3.1 pseudo-header: src, dst, zero, protocol, TCP length.
  Ipv4Addr s = Ipv4Addr::from_octets(198, 18, 1, 200);
  Ipv4Addr d = Ipv4Addr::from_octets(198, 19, 255, 3);
  const uint8_t ph[] = {198, 18, 1, 200, 198, 19, 255, 3, 0, 6, 0x05, 0xdc};
  EXPECT_EQ(csum_fold(pseudo_header_sum(s, d, 6, 1500)), uint16_t(~ref_sum(ph, sizeof ph)));
}

TEST(Checksum, VerifyWithPseudoHeader) {
  std::mt19937 rng(99);
  Ipv4Addr s{0xc6120000u | (uint32_t(rng()) & 0x1ffffu)}, d{0xc6120000u | (uint32_t(rng()) & 0x1ffffu)};
  std::vector<uint8_t> seg(61);
  for (auto& b : seg) b = uint8_t(rng());
  seg[16] = seg[17] = 0;
  uint64_t ph = pseudo_header_sum(s, d, 6, uint16_t(seg.size()));
  uint16_t c = csum_fold(csum_partial(seg, ph));
  store_be16(&seg[16], c);
  EXPECT_TRUE(csum_verify(seg, ph));
  EXPECT_FALSE(csum_verify(seg, pseudo_header_sum(s, d, 17, uint16_t(seg.size()))));
}

TEST(Checksum, IncrementalUpdateMatchesRecompute) {
  std::mt19937 rng(2024);
  for (int iter = 0; iter < 5000; ++iter) {
    uint8_t h[40];
    for (auto& b : h) b = uint8_t(rng());
    store_be16(h + 10, 0);
    uint16_t c = internet_checksum(h);
    size_t at = (rng() % 19) & ~size_t(1);
    if (at == 10) at = 12;  // never the checksum field itself
    if (iter % 2 == 0) {
      uint16_t old_v = load_be16(h + at), new_v = uint16_t(rng());
      store_be16(h + at, new_v);
      uint16_t inc = csum_update16(c, old_v, new_v);
      EXPECT_EQ(inc, internet_checksum(h)) << iter;
    } else {
      at = 12 + 4 * (rng() % 7);  // a 32-bit field (an address, a sequence number)
      uint32_t old_v = load_be32(h + at), new_v = uint32_t(rng());
      store_be32(h + at, new_v);
      uint16_t inc = csum_update32(c, old_v, new_v);
      EXPECT_EQ(inc, internet_checksum(h)) << iter;
    }
    store_be16(h + 10, internet_checksum(h));
    EXPECT_TRUE(csum_verify(h));
  }
}

TEST(Checksum, Rfc1624Section4Example) {
  // RFC 1624 4: other header words sum to 0xcd7a, field m goes 0x5555 ->
  // 0x3285, so HC = ~(0xcd7a + 0x5555) = 0xdd2f. Recomputation gives
  // ~(0xcd7a + 0x3285) = 0x0000; eqn. 3 must agree (eqn. 2 yields 0xffff).
  EXPECT_EQ(csum_update16(0xdd2f, 0x5555, 0x3285), 0x0000);
}

TEST(Checksum, UpdateNoChangeIsIdentity) {
  EXPECT_EQ(csum_update16(0xb861, 0x1234, 0x1234), 0xb861);
  EXPECT_EQ(csum_update32(0xb861, 0xc0a80001u, 0xc0a80001u), 0xb861);
}

}  // namespace
}  // namespace xs
