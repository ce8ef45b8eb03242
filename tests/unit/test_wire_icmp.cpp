// ICMPv4 (RFC 792).
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "stack/wire/checksum.hpp"
#include "stack/wire/icmp.hpp"

namespace xs {
namespace {

// Echo request, ident 0x1234, seq 1, data "abcdefgh"; checksum 0x5435
// computed with an independent RFC 1071 implementation.
const std::vector<uint8_t> kEcho = {0x08, 0x00, 0x54, 0x35, 0x12, 0x34, 0x00, 0x01,
                                    'a',  'b',  'c',  'd',  'e',  'f',  'g',  'h'};

TEST(Icmp, ParsesKnownEchoRequest) {
  auto r = parse_icmp(kEcho);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, icmptype::kEchoRequest);
  EXPECT_EQ(r->code, 0);
  EXPECT_EQ(r->echo_ident(), 0x1234);
  EXPECT_EQ(r->echo_seq(), 1);
  ASSERT_EQ(r->payload.size(), 8u);
  EXPECT_EQ(std::memcmp(r->payload.data(), "abcdefgh", 8), 0);
}

TEST(Icmp, ChecksumCoversPayload) {
  auto m = kEcho;
  m.back() ^= 1;
  auto r = parse_icmp(m);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), WireError::BadChecksum);
  m = kEcho;
  m[0] = icmptype::kEchoReply;  // type changed without fixing the checksum
  EXPECT_FALSE(parse_icmp(m));
}

TEST(Icmp, TruncatedAtEveryHeaderLength) {
  for (size_t n = 0; n < kIcmpHeaderLen; ++n) {
    auto r = parse_icmp(Bytes(kEcho.data(), n));
    ASSERT_FALSE(r) << n;
    EXPECT_EQ(r.error(), WireError::Truncated);
  }
  // Cutting the payload breaks the checksum, not the length rules.
  auto r = parse_icmp(Bytes(kEcho.data(), 12));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), WireError::BadChecksum);
}

TEST(Icmp, EmitReproducesKnownEcho) {
  IcmpRepr r;
  r.type = icmptype::kEchoRequest;
  r.rest = 0x12340001;
  r.payload = Bytes(kEcho.data() + 8, 8);
  std::vector<uint8_t> out(16);
  EXPECT_EQ(emit_icmp(r, out), 16u);
  EXPECT_EQ(out, kEcho);
}

TEST(Icmp, EmitInPlaceEchoReply) {
  // Reply built in the request's own buffer: payload source and destination alias.
  auto buf = kEcho;
  auto req = parse_icmp(buf);
  ASSERT_TRUE(req);
  IcmpRepr rep = *req;
  rep.type = icmptype::kEchoReply;
  EXPECT_EQ(emit_icmp(rep, buf), 16u);
  auto back = parse_icmp(buf);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->type, icmptype::kEchoReply);
  EXPECT_EQ(back->rest, 0x12340001u);
  EXPECT_EQ(std::memcmp(back->payload.data(), "abcdefgh", 8), 0);
  // Only the type changed, so the checksum moved by exactly 0x0800 (RFC 1624).
  EXPECT_EQ(load_be16(&buf[2]), csum_update16(0x5435, 0x0800, 0x0000));
}

TEST(Icmp, FragNeededRoundTripOddPayload) {
  const uint8_t quoted[] = {0x45, 0, 0, 0x54, 1, 2, 3};  // odd length exercises padding
  IcmpRepr r;
  r.type = icmptype::kDestUnreachable;
  r.code = icmpcode::kFragNeeded;
  r.rest = 1400;
  r.payload = quoted;
  std::vector<uint8_t> out(8 + sizeof quoted);
  EXPECT_EQ(emit_icmp(r, out), out.size());
  auto back = parse_icmp(out);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->code, icmpcode::kFragNeeded);
  EXPECT_EQ(back->next_hop_mtu(), 1400);
  ASSERT_EQ(back->payload.size(), sizeof quoted);
  EXPECT_EQ(std::memcmp(back->payload.data(), quoted, sizeof quoted), 0);
}

}  // namespace
}  // namespace xs
