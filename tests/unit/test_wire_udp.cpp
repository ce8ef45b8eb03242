// UDP (RFC 768).
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "stack/wire/checksum.hpp"
#include "stack/wire/udp.hpp"

namespace xs {
namespace {

const Ipv4Addr kSrc = Ipv4Addr::from_octets(198, 18, 0, 1);
const Ipv4Addr kDst = Ipv4Addr::from_octets(198, 18, 0, 199);

// 198.18.0.1:12345 -> 198.18.0.199:53, payload "xstack"; checksum 0xf236
// computed with an independent RFC 1071 implementation.
const std::vector<uint8_t> kDgram = {0x30, 0x39, 0x00, 0x35, 0x00, 0x0e, 0xf2, 0x36,
                                     'x',  's',  't',  'a',  'c',  'k'};

WireError error_of(const std::vector<uint8_t>& d, bool verify = true) {
  auto r = parse_udp(d, kSrc, kDst, verify);
  EXPECT_FALSE(r);
  return r ? WireError::Unsupported : r.error();
}

TEST(Udp, ParsesKnownDatagram) {
  auto r = parse_udp(kDgram, kSrc, kDst);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->src_port, 12345);
  EXPECT_EQ(r->dst_port, 53);
  ASSERT_EQ(r->payload.size(), 6u);
  EXPECT_EQ(std::memcmp(r->payload.data(), "xstack", 6), 0);
}

TEST(Udp, EmitReproducesKnownDatagram) {
  std::vector<uint8_t> out(14, 0);
  std::memcpy(&out[8], "xstack", 6);
  emit_udp(12345, 53, kSrc, kDst, out);
  EXPECT_EQ(out, kDgram);
}

TEST(Udp, BadChecksumDetected) {
  auto d = kDgram;
  d[10] ^= 0x20;
  EXPECT_EQ(error_of(d), WireError::BadChecksum);
  EXPECT_TRUE(parse_udp(d, kSrc, kDst, /*verify_checksum=*/false));
  // The pseudo-header binds the datagram to its addresses.
  auto r = parse_udp(kDgram, kSrc, Ipv4Addr::from_octets(198, 18, 0, 198));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), WireError::BadChecksum);
}

TEST(Udp, ZeroChecksumMeansNotComputed) {
  auto d = kDgram;
  d[6] = d[7] = 0;
  d[10] ^= 0x20;  // would fail verification if a checksum were present
  auto r = parse_udp(d, kSrc, kDst);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->payload[2], 't' ^ 0x20);
}

TEST(Udp, ComputedZeroIsSentAsAllOnes) {
  // First emit with a zero payload word to learn the checksum c; a payload
  // word equal to c then makes the one's-complement sum 0xffff, i.e. a
  // computed checksum of 0, which RFC 768 says to send as 0xffff.
  std::vector<uint8_t> d(10, 0);
  emit_udp(1000, 2000, kSrc, kDst, d);
  uint16_t c = load_be16(&d[6]);
  ASSERT_NE(c, 0);
  store_be16(&d[8], c);
  emit_udp(1000, 2000, kSrc, kDst, d);
  EXPECT_EQ(load_be16(&d[6]), 0xffff);
  auto r = parse_udp(d, kSrc, kDst);
  ASSERT_TRUE(r) << to_string(r.error());
  EXPECT_EQ(load_be16(r->payload.data()), c);
}

TEST(Udp, TrimmedToLengthField) {
  auto d = kDgram;
  d.resize(d.size() + 10, 0xee);  // Ethernet padding after the datagram
  auto r = parse_udp(d, kSrc, kDst);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->payload.size(), 6u);
}

TEST(Udp, LengthFieldChecks) {
  for (uint16_t len : {0, 1, 7}) {
    auto d = kDgram;
    store_be16(&d[4], len);
    EXPECT_EQ(error_of(d, false), WireError::BadLength) << len;
  }
  auto d = kDgram;
  store_be16(&d[4], uint16_t(d.size() + 1));
  EXPECT_EQ(error_of(d, false), WireError::Truncated);
  // Length exactly 8: an empty datagram.
  std::vector<uint8_t> e(8, 0);
  emit_udp(1, 2, kSrc, kDst, e);
  auto r = parse_udp(e, kSrc, kDst);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->payload.empty());
}

TEST(Udp, TruncatedAtEveryLength) {
  for (size_t n = 0; n < kDgram.size(); ++n) {
    auto r = parse_udp(Bytes(kDgram.data(), n), kSrc, kDst);
    ASSERT_FALSE(r) << n;
    EXPECT_EQ(r.error(), WireError::Truncated) << n;
  }
}

TEST(Udp, DestinationPortZeroMalformed) {
  std::vector<uint8_t> d(12, 1);
  emit_udp(53, 0, kSrc, kDst, d);
  EXPECT_EQ(error_of(d), WireError::Malformed);
  // Source port 0 is legal: RFC 768 makes the source port optional.
  emit_udp(0, 53, kSrc, kDst, d);
  auto r = parse_udp(d, kSrc, kDst);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->src_port, 0);
}

TEST(Udp, OddLengthRoundTrip) {
  std::vector<uint8_t> d(8 + 333);
  for (size_t i = 8; i < d.size(); ++i) d[i] = uint8_t(i * 7);
  emit_udp(40000, 9, kSrc, kDst, d);
  auto r = parse_udp(d, kSrc, kDst);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->src_port, 40000);
  EXPECT_EQ(r->dst_port, 9);
  EXPECT_EQ(r->payload.size(), 333u);
  EXPECT_EQ(r->payload[332], uint8_t(340 * 7));
}

}  // namespace
}  // namespace xs
