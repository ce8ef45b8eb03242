// IPv4 header (RFC 791).
#include <gtest/gtest.h>

#include <vector>

#include "stack/wire/checksum.hpp"
#include "stack/wire/ipv4.hpp"

namespace xs {
namespace {

// An example header (198.18.0.1 -> 198.18.0.199, UDP, DF, TTL 64, total
// length 0x73) whose checksum is ad8d (computed with an independent RFC 1071 sum), followed by 95 payload bytes.
std::vector<uint8_t> classic_packet() {
  std::vector<uint8_t> p = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                            0xad, 0x8d, 0xc6, 0x12, 0x00, 0x01, 0xc6, 0x12, 0x00, 0xc7};
  for (int i = 0; i < 95; ++i) p.push_back(uint8_t(i));
  return p;
}

// Recomputes the header checksum after a test edits the header.
void fix_checksum(std::vector<uint8_t>& p) {
  size_t hl = size_t(p[0] & 0x0f) * 4;
  store_be16(&p[10], 0);
  store_be16(&p[10], internet_checksum(Bytes(p.data(), hl)));
}

WireError error_of(const std::vector<uint8_t>& p, bool verify = true) {
  auto r = parse_ipv4(p, verify);
  EXPECT_FALSE(r);
  return r ? WireError::Unsupported : r.error();
}

// Builds a packet whose header carries `opts` (padded by the caller to a
// multiple of 4) and a 4-byte payload, with a correct checksum.
std::vector<uint8_t> with_options(const std::vector<uint8_t>& opts) {
  std::vector<uint8_t> p = classic_packet();
  p.resize(20);
  p.insert(p.end(), opts.begin(), opts.end());
  p[0] = uint8_t(0x40 | (p.size() / 4));
  for (int i = 0; i < 4; ++i) p.push_back(0xaa);
  store_be16(&p[2], uint16_t(p.size()));
  fix_checksum(p);
  return p;
}

TEST(Ipv4, ParsesClassicHeader) {
  auto p = classic_packet();
  auto r = parse_ipv4(p);
  ASSERT_TRUE(r);
  const Ipv4Repr& h = r->hdr;
  EXPECT_EQ(h.src, Ipv4Addr::from_octets(198, 18, 0, 1));
  EXPECT_EQ(h.dst, Ipv4Addr::from_octets(198, 18, 0, 199));
  EXPECT_EQ(h.protocol, ipproto::kUdp);
  EXPECT_EQ(h.ttl, 64);
  EXPECT_EQ(h.tos, 0);
  EXPECT_EQ(h.ident, 0);
  EXPECT_TRUE(h.dont_frag);
  EXPECT_FALSE(h.more_frags);
  EXPECT_EQ(h.frag_offset, 0);
  EXPECT_FALSE(h.is_fragment());
  EXPECT_EQ(h.payload_len, 95);
  EXPECT_EQ(r->header_len, 20u);
  EXPECT_EQ(r->header.data(), p.data());
  EXPECT_EQ(r->header.size(), 20u);
  EXPECT_EQ(r->payload.data(), p.data() + 20);
  EXPECT_EQ(r->payload.size(), 95u);
}

TEST(Ipv4, EmitReproducesClassicHeader) {
  Ipv4Repr h;
  h.src = Ipv4Addr::from_octets(198, 18, 0, 1);
  h.dst = Ipv4Addr::from_octets(198, 18, 0, 199);
  h.protocol = ipproto::kUdp;
  h.ttl = 64;
  h.dont_frag = true;
  h.payload_len = 95;
  std::vector<uint8_t> out(20, 0xee);
  EXPECT_EQ(emit_ipv4(h, out), 20u);
  auto want = classic_packet();
  want.resize(20);
  EXPECT_EQ(out, want);
}

TEST(Ipv4, EmitParseRoundTripAllFields) {
  Ipv4Repr h;
  h.src = Ipv4Addr::from_octets(198, 19, 0, 1);
  h.dst = Ipv4Addr::from_octets(198, 19, 8, 7);
  h.protocol = ipproto::kTcp;
  h.ttl = 3;
  h.tos = 0xb9;  // DSCP 46 (EF) + ECN 01
  h.ident = 0xbeef;
  h.more_frags = true;
  h.frag_offset = 8 * 0x1234;
  h.payload_len = 16;
  std::vector<uint8_t> out(36, 0x5a);
  emit_ipv4(h, out);
  EXPECT_TRUE(csum_verify(Bytes(out.data(), 20)));
  auto r = parse_ipv4(out);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->hdr.src, h.src);
  EXPECT_EQ(r->hdr.dst, h.dst);
  EXPECT_EQ(r->hdr.protocol, h.protocol);
  EXPECT_EQ(r->hdr.ttl, h.ttl);
  EXPECT_EQ(r->hdr.tos, h.tos);
  EXPECT_EQ(r->hdr.ident, h.ident);
  EXPECT_FALSE(r->hdr.dont_frag);
  EXPECT_TRUE(r->hdr.more_frags);
  EXPECT_EQ(r->hdr.frag_offset, h.frag_offset);
  EXPECT_TRUE(r->hdr.is_fragment());
  EXPECT_EQ(r->hdr.payload_len, 16);
  EXPECT_EQ(r->payload.size(), 16u);
}

TEST(Ipv4, EthernetPaddingTrimmed) {
  // A 20-byte header + 8-byte payload arrives padded to 46 bytes.
  Ipv4Repr h;
  h.payload_len = 8;
  std::vector<uint8_t> out(46, 0);
  emit_ipv4(h, out);
  auto r = parse_ipv4(out);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->payload.size(), 8u);
  EXPECT_EQ(r->hdr.payload_len, 8);
}

TEST(Ipv4, TruncatedAtEveryLength) {
  auto p = classic_packet();
  for (size_t n = 0; n < p.size(); ++n) {
    auto r = parse_ipv4(Bytes(p.data(), n));
    ASSERT_FALSE(r) << n;
    EXPECT_EQ(r.error(), WireError::Truncated) << n;
  }
}

TEST(Ipv4, BadVersion) {
  for (uint8_t v : {0x05, 0x06, 0x00, 0x0f}) {
    auto p = classic_packet();
    p[0] = uint8_t(v << 4 | 5);
    EXPECT_EQ(error_of(p), WireError::BadVersion) << int(v);
  }
}

TEST(Ipv4, IhlBelowFiveIsBadLength) {
  for (uint8_t ihl = 0; ihl < 5; ++ihl) {
    auto p = classic_packet();
    p[0] = uint8_t(0x40 | ihl);
    EXPECT_EQ(error_of(p, false), WireError::BadLength) << int(ihl);
  }
}

TEST(Ipv4, IhlBeyondBufferIsTruncated) {
  auto p = classic_packet();
  p.resize(40);
  store_be16(&p[2], 40);
  p[0] = 0x4f;  // 60-byte header in a 40-byte buffer
  EXPECT_EQ(error_of(p, false), WireError::Truncated);
}

TEST(Ipv4, TotalLengthInconsistent) {
  auto p = classic_packet();
  store_be16(&p[2], 19);  // shorter than the header
  fix_checksum(p);
  EXPECT_EQ(error_of(p), WireError::BadLength);
  store_be16(&p[2], uint16_t(p.size() + 1));  // longer than what arrived
  fix_checksum(p);
  EXPECT_EQ(error_of(p), WireError::Truncated);
  store_be16(&p[2], 20);  // header only: legal, empty payload
  fix_checksum(p);
  auto r = parse_ipv4(p);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->payload.empty());
}

TEST(Ipv4, BadChecksum) {
  auto p = classic_packet();
  p[8] = 63;  // TTL changed without fixing the checksum
  EXPECT_EQ(error_of(p), WireError::BadChecksum);
  auto r = parse_ipv4(p, /*verify_checksum=*/false);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->hdr.ttl, 63);
  // A payload byte is not covered by the header checksum.
  auto q = classic_packet();
  q[50] ^= 0xff;
  EXPECT_TRUE(parse_ipv4(q));
}

TEST(Ipv4, ReservedFlagIsMalformed) {
  auto p = classic_packet();
  p[6] |= 0x80;
  fix_checksum(p);
  EXPECT_EQ(error_of(p), WireError::Malformed);
}

TEST(Ipv4, ValidOptionsAccepted) {
  // NOP, Record Route (type 7, len 7, pointer 4, one empty slot), EOL.
  auto p = with_options({0x01, 0x07, 0x07, 0x04, 0, 0, 0, 0, 0x00, 0, 0, 0});
  auto r = parse_ipv4(p);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header_len, 32u);
  EXPECT_EQ(r->header.size(), 32u);
  EXPECT_EQ(r->hdr.payload_len, 4);
  ASSERT_EQ(r->payload.size(), 4u);
  EXPECT_EQ(r->payload[0], 0xaa);
  // Bytes after EOL are padding and may hold anything.
  EXPECT_TRUE(parse_ipv4(with_options({0x00, 0x07, 0x00, 0xff})));
  // All NOPs.
  EXPECT_TRUE(parse_ipv4(with_options({0x01, 0x01, 0x01, 0x01})));
  // A TLV that exactly fills the option space (Router Alert, RFC 2113).
  EXPECT_TRUE(parse_ipv4(with_options({0x94, 0x04, 0x00, 0x00})));
}

TEST(Ipv4, MalformedOptionsRejected) {
  const std::vector<std::vector<uint8_t>> bad = {
      {0x94, 0x00, 0x00, 0x00},  // length 0
      {0x94, 0x01, 0x00, 0x00},  // length 1
      {0x94, 0x05, 0x00, 0x00},  // runs past the end of the header
      {0x01, 0x01, 0x01, 0x94},  // kind in the last byte, no room for a length
      {0x94, 0x02, 0x07, 0x09, 0x00, 0x00, 0x00, 0x00},  // second option too long
  };
  for (const auto& o : bad) {
    EXPECT_EQ(error_of(with_options(o)), WireError::BadOption);
  }
}

}  // namespace
}  // namespace xs
