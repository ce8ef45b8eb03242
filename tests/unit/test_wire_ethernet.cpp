// Ethernet II framing.
#include <gtest/gtest.h>

#include <vector>

#include "stack/wire/ethernet.hpp"

namespace xs {
namespace {

// Broadcast ARP request frame header from 52:54:00:12:34:56, plus 4 payload bytes.
const std::vector<uint8_t> kFrame = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0x00,
                                     0x12, 0x34, 0x56, 0x08, 0x06, 0xde, 0xad, 0xbe, 0xef};

TEST(Ethernet, ParsesKnownFrame) {
  auto f = parse_ethernet(kFrame);
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->hdr.dst.is_broadcast());
  EXPECT_EQ(f->hdr.src, (MacAddr{{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}}));
  EXPECT_EQ(f->hdr.ethertype, ethertype::kArp);
  ASSERT_EQ(f->payload.size(), 4u);
  EXPECT_EQ(f->payload.data(), kFrame.data() + 14);
  EXPECT_EQ(f->payload[0], 0xde);
}

TEST(Ethernet, HeaderOnlyHasEmptyPayload) {
  auto f = parse_ethernet(Bytes(kFrame.data(), 14));
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->payload.empty());
}

TEST(Ethernet, TruncatedAtEveryLength) {
  for (size_t n = 0; n < kEthHeaderLen; ++n) {
    auto f = parse_ethernet(Bytes(kFrame.data(), n));
    ASSERT_FALSE(f) << n;
    EXPECT_EQ(f.error(), WireError::Truncated);
  }
}

TEST(Ethernet, Ieee8023LengthFieldUnsupported) {
  auto fr = kFrame;
  fr[12] = 0x05;
  fr[13] = 0xdc;  // 1500: an 802.3 length, not an ethertype
  auto f = parse_ethernet(fr);
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error(), WireError::Unsupported);
  fr[12] = 0x06;
  fr[13] = 0x00;  // 0x0600: first value that is an ethertype
  EXPECT_TRUE(parse_ethernet(fr));
}

TEST(Ethernet, EmitWritesExactBytesAndRoundTrips) {
  EthernetRepr r;
  r.dst = MacAddr{{0x02, 0, 0, 0, 0, 0x01}};
  r.src = MacAddr{{0x02, 0, 0, 0, 0, 0x02}};
  r.ethertype = ethertype::kIpv4;
  std::vector<uint8_t> out(20, 0xcc);
  emit_ethernet(r, out);
  const std::vector<uint8_t> want = {0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x08, 0x00};
  EXPECT_EQ(std::vector<uint8_t>(out.begin(), out.begin() + 14), want);
  EXPECT_EQ(out[14], 0xcc);  // nothing past the header touched
  auto f = parse_ethernet(out);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->hdr.dst, r.dst);
  EXPECT_EQ(f->hdr.src, r.src);
  EXPECT_EQ(f->hdr.ethertype, r.ethertype);
  EXPECT_EQ(f->payload.size(), 6u);
}

}  // namespace
}  // namespace xs
