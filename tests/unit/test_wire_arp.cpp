// ARP (RFC 826) for IPv4 over Ethernet.
#include <gtest/gtest.h>

#include <vector>

#include "stack/wire/arp.hpp"

namespace xs {
namespace {

// "Who has 198.18.1.1? Tell 198.18.1.100" from 52:54:00:12:34:56.
const std::vector<uint8_t> kRequest = {
    0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01,  // htype, ptype, hlen, plen, op
    0x52, 0x54, 0x00, 0x12, 0x34, 0x56,              // sha
    0xc6, 0x12, 0x01, 0x64,                          // spa
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00,              // tha
    0xc6, 0x12, 0x01, 0x01,                          // tpa
};

TEST(Arp, ParsesKnownRequest) {
  auto r = parse_arp(kRequest);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->op, ArpOp::Request);
  EXPECT_EQ(r->sender_mac, (MacAddr{{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}}));
  EXPECT_EQ(r->sender_ip, Ipv4Addr::from_octets(198, 18, 1, 100));
  EXPECT_TRUE(r->target_mac.is_zero());
  EXPECT_EQ(r->target_ip, Ipv4Addr::from_octets(198, 18, 1, 1));
}

TEST(Arp, EthernetPaddingIgnored) {
  auto p = kRequest;
  p.resize(46, 0);  // minimum Ethernet payload
  auto r = parse_arp(p);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->target_ip, Ipv4Addr::from_octets(198, 18, 1, 1));
}

TEST(Arp, TruncatedAtEveryLength) {
  for (size_t n = 0; n < kArpLen; ++n) {
    auto r = parse_arp(Bytes(kRequest.data(), n));
    ASSERT_FALSE(r) << n;
    EXPECT_EQ(r.error(), WireError::Truncated);
  }
}

TEST(Arp, RejectsOtherHardwareOrProtocol) {
  struct Case { size_t at; uint8_t v; };
  const Case cases[] = {{1, 6},     // htype 6 (IEEE 802)
                        {2, 0x86},  // ptype 0x86dd-ish
                        {4, 8},     // hlen 8
                        {5, 16}};   // plen 16
  for (auto c : cases) {
    auto p = kRequest;
    p[c.at] = c.v;
    auto r = parse_arp(p);
    ASSERT_FALSE(r) << c.at;
    EXPECT_EQ(r.error(), WireError::BadVersion);
  }
}

TEST(Arp, RejectsUnknownOp) {
  for (uint8_t op : {0, 3, 4, 8}) {  // 0, RARP, InARP
    auto p = kRequest;
    p[7] = op;
    auto r = parse_arp(p);
    ASSERT_FALSE(r) << int(op);
    EXPECT_EQ(r.error(), WireError::Unsupported);
  }
  auto p = kRequest;
  p[7] = 2;
  auto r = parse_arp(p);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->op, ArpOp::Reply);
}

TEST(Arp, EmitReplyExactBytes) {
  ArpRepr r;
  r.op = ArpOp::Reply;
  r.sender_mac = MacAddr{{0x02, 0x11, 0x22, 0x33, 0x44, 0x55}};
  r.sender_ip = Ipv4Addr::from_octets(198, 18, 1, 1);
  r.target_mac = MacAddr{{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}};
  r.target_ip = Ipv4Addr::from_octets(198, 18, 1, 100);
  std::vector<uint8_t> out(kArpLen);
  emit_arp(r, out);
  const std::vector<uint8_t> want = {0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02, 0x02, 0x11,
                                     0x22, 0x33, 0x44, 0x55, 0xc6, 0x12, 0x01, 0x01, 0x52, 0x54,
                                     0x00, 0x12, 0x34, 0x56, 0xc6, 0x12, 0x01, 0x64};
  EXPECT_EQ(out, want);
  auto back = parse_arp(out);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->op, r.op);
  EXPECT_EQ(back->sender_mac, r.sender_mac);
  EXPECT_EQ(back->sender_ip, r.sender_ip);
  EXPECT_EQ(back->target_mac, r.target_mac);
  EXPECT_EQ(back->target_ip, r.target_ip);
}

}  // namespace
}  // namespace xs
