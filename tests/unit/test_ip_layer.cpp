// IpLayer: routing, header output, fragmentation, PMTU table, input filtering.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "stack/net/reassembly.hpp"
#include "stack/stack.hpp"
#include "tests/support/capture_sink.hpp"

using namespace xs;
using xs::test::CaptureSink;

namespace {

constexpr MacAddr kOurMac{{0x02, 0, 0, 0, 0, 0x01}};
constexpr MacAddr kPeerMac{{0x02, 0, 0, 0, 0, 0x02}};
constexpr MacAddr kGwMac{{0x02, 0, 0, 0, 0, 0xfe}};
constexpr Ipv4Addr kOurIp = Ipv4Addr::from_octets(198, 18, 0, 1);
constexpr Ipv4Addr kPeerIp = Ipv4Addr::from_octets(198, 18, 0, 2);
constexpr Ipv4Addr kGwIp = Ipv4Addr::from_octets(198, 18, 0, 254);
constexpr Ipv4Addr kFarIp = Ipv4Addr::from_octets(198, 19, 5, 5);
constexpr Ipv4Addr kSubnetBcast = Ipv4Addr::from_octets(198, 18, 0, 255);

Instant at_ms(int64_t ms) { return Instant{ms * 1000}; }

StackConfig config(bool with_gateway = true) {
  StackConfig c;
  c.mac = kOurMac;
  c.addr = {kOurIp, 24};
  if (with_gateway) c.gateway = kGwIp;
  return c;
}

struct IpFixture : ::testing::Test {
  CaptureSink sink;
  SeededRandom rng{42};
  Stack stack{config(), rng, sink};
  IpLayer& ip = stack.ip();
  StackCounters& c = stack.counters();

  void SetUp() override {
    stack.arp().insert_static(kPeerIp, kPeerMac);
    stack.arp().insert_static(kGwIp, kGwMac);
  }

  // Sends `len` bytes of pattern as protocol 253 (experimental) to dst.
  bool send(Instant now, Ipv4Addr dst, size_t len, bool df = false, uint8_t ttl = 64, uint8_t tos = 0) {
    IpTxParams p{kOurIp, dst, 253, ttl, tos, df};
    MutBytes b = ip.begin(now, p, len);
    if (b.empty()) return false;
    EXPECT_EQ(b.size(), len);
    for (size_t i = 0; i < len; ++i) b[i] = uint8_t(i * 13);
    ip.commit();
    return true;
  }
  void rx(Instant now, const std::vector<uint8_t>& f) { stack.receive_frame(now, Bytes(f.data(), f.size())); }
  std::vector<uint8_t> udp_frame(Ipv4Addr dst, uint16_t dport, MacAddr eth_dst = kOurMac, Ipv4Addr src = kPeerIp) {
    uint8_t payload[4] = {1, 2, 3, 4};
    auto d = test::udp_datagram(src, 5000, dst, dport, payload);
    Ipv4Repr h;
    h.src = src;
    h.dst = dst;
    h.protocol = ipproto::kUdp;
    return test::ipv4_frame(eth_dst, kPeerMac, h, d);
  }
};

TEST_F(IpFixture, OnLinkDestinationUsesItsOwnMac) {
  ASSERT_TRUE(send(at_ms(0), kPeerIp, 100, true, 33, 0x10));
  ASSERT_EQ(sink.size(), 1u);
  auto e = sink.eth();
  EXPECT_EQ(e->hdr.dst, kPeerMac);
  EXPECT_EQ(e->hdr.src, kOurMac);
  auto p = sink.ipv4();  // parse_ipv4 also verifies the header checksum
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->hdr.src, kOurIp);
  EXPECT_EQ(p->hdr.dst, kPeerIp);
  EXPECT_EQ(p->hdr.protocol, 253);
  EXPECT_EQ(p->hdr.ttl, 33);
  EXPECT_EQ(p->hdr.tos, 0x10);
  EXPECT_TRUE(p->hdr.dont_frag);
  EXPECT_FALSE(p->hdr.is_fragment());
  EXPECT_EQ(p->payload.size(), 100u);
  EXPECT_EQ(p->payload[1], 13);
  EXPECT_EQ(sink.last().size(), 14u + 20 + 100);
  EXPECT_EQ(c.ip_out_requests, 1u);
  EXPECT_EQ(c.eth_tx_frames, 1u);
}

TEST_F(IpFixture, IdentIncrementsPerDatagram) {
  ASSERT_TRUE(send(at_ms(0), kPeerIp, 10));
  ASSERT_TRUE(send(at_ms(0), kPeerIp, 10));
  EXPECT_EQ(uint16_t(sink.ipv4(0)->hdr.ident + 1), sink.ipv4(1)->hdr.ident);
}

TEST_F(IpFixture, OffLinkDestinationGoesToGateway) {
  ASSERT_TRUE(send(at_ms(0), kFarIp, 10));
  EXPECT_EQ(sink.eth()->hdr.dst, kGwMac);
  EXPECT_EQ(sink.ipv4()->hdr.dst, kFarIp);
  EXPECT_EQ(ip.next_hop(kFarIp), kGwIp);
  EXPECT_EQ(ip.next_hop(kPeerIp), kPeerIp);
  EXPECT_EQ(ip.source_for(kFarIp), kOurIp);
}

TEST_F(IpFixture, BroadcastsUseBroadcastMacWithoutArp) {
  ASSERT_TRUE(send(at_ms(0), Ipv4Addr::broadcast(), 10));
  ASSERT_TRUE(send(at_ms(0), kSubnetBcast, 10));
  ASSERT_EQ(sink.size(), 2u);
  EXPECT_EQ(sink.eth(0)->hdr.dst, MacAddr::broadcast());
  EXPECT_EQ(sink.eth(1)->hdr.dst, MacAddr::broadcast());
  EXPECT_EQ(c.arp_tx_requests, 0u);
  EXPECT_TRUE(ip.is_broadcast(kSubnetBcast));
  EXPECT_FALSE(ip.is_broadcast(kPeerIp));
}

TEST(IpRouting, NoGatewayMeansNoRoute) {
  CaptureSink sink;
  SeededRandom rng(1);
  Stack stack(config(false), rng, sink);
  IpTxParams p{kOurIp, kFarIp, 253};
  EXPECT_TRUE(stack.ip().begin(at_ms(0), p, 10).empty());
  EXPECT_EQ(stack.counters().ip_out_no_routes, 1u);
  EXPECT_EQ(stack.counters().ip_out_requests, 0u);
  EXPECT_FALSE(stack.ip().source_for(kFarIp).has_value());
  EXPECT_EQ(sink.size(), 0u);
  // Our own address needs loopback, which there is none of.
  EXPECT_FALSE(stack.ip().next_hop(kOurIp).has_value());
}

TEST(IpRouting, UnresolvedNextHopIsQueuedUntilArpReply) {
  CaptureSink sink;
  SeededRandom rng(1);
  Stack stack(config(), rng, sink);
  IpTxParams p{kOurIp, kPeerIp, 253};
  MutBytes b = stack.ip().begin(at_ms(0), p, 4);
  ASSERT_EQ(b.size(), 4u);
  std::memcpy(b.data(), "abcd", 4);
  stack.ip().commit();
  ASSERT_EQ(sink.size(), 1u);
  ASSERT_TRUE(sink.arp().has_value());  // only the request so far
  EXPECT_EQ(sink.arp()->target_ip, kPeerIp);
  auto reply = test::arp_frame(kOurMac, {ArpOp::Reply, kPeerMac, kPeerIp, kOurMac, kOurIp});
  stack.receive_frame(at_ms(1), Bytes(reply.data(), reply.size()));
  ASSERT_EQ(sink.size(), 2u);
  EXPECT_EQ(sink.eth()->hdr.dst, kPeerMac);
  auto ipp = sink.ipv4();
  ASSERT_TRUE(ipp.has_value());
  EXPECT_EQ(std::memcmp(ipp->payload.data(), "abcd", 4), 0);
}

TEST_F(IpFixture, NoTxBufferIsCounted) {
  sink.refuse = 1;
  EXPECT_FALSE(send(at_ms(0), kPeerIp, 10));
  EXPECT_EQ(c.eth_tx_drop_no_buffer, 1u);
}

TEST_F(IpFixture, LargeDatagramWithoutDfIsFragmented) {
  ASSERT_TRUE(send(at_ms(0), kPeerIp, 3000));
  ASSERT_EQ(sink.size(), 3u);
  EXPECT_EQ(c.ip_frag_creates, 3u);
  EXPECT_EQ(c.ip_out_requests, 1u);
  StackCounters rc;
  Reassembly r(rc);
  std::optional<Ipv4Packet> whole;
  const size_t offsets[] = {0, 1480, 2960};
  const size_t lens[] = {1480, 1480, 40};
  for (size_t i = 0; i < 3; ++i) {
    auto p = sink.ipv4(i);
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->hdr.frag_offset, offsets[i]);
    EXPECT_EQ(p->payload.size(), lens[i]);
    EXPECT_EQ(p->hdr.more_frags, i < 2);
    EXPECT_FALSE(p->hdr.dont_frag);
    EXPECT_EQ(p->hdr.ident, sink.ipv4(0)->hdr.ident);
    EXPECT_LE(sink.frames[i].size(), 1514u);
    whole = r.add(at_ms(0), *p);
  }
  ASSERT_TRUE(whole.has_value());
  ASSERT_EQ(whole->payload.size(), 3000u);
  for (size_t i = 0; i < 3000; ++i) ASSERT_EQ(whole->payload[i], uint8_t(i * 13)) << i;
}

TEST_F(IpFixture, OversizeWithDfIsRefused) {
  EXPECT_FALSE(send(at_ms(0), kPeerIp, 1481, true));
  EXPECT_TRUE(send(at_ms(0), kPeerIp, 1480, true));
  EXPECT_EQ(sink.size(), 1u);
}

TEST_F(IpFixture, PmtuTableLowersClampsAndExpires) {
  EXPECT_EQ(ip.path_mtu(kFarIp), 1500);
  EXPECT_EQ(ip.update_pmtu(at_ms(0), kFarIp, 1400), 1400);
  EXPECT_EQ(ip.path_mtu(kFarIp), 1400);
  EXPECT_EQ(ip.path_mtu(kPeerIp), 1500);  // per destination
  EXPECT_EQ(ip.update_pmtu(at_ms(0), kFarIp, 1450), 1400);  // never raised by ICMP
  EXPECT_EQ(ip.update_pmtu(at_ms(0), kFarIp, 100), 552);    // min_pmtu
  EXPECT_EQ(ip.path_mtu(kFarIp), 552);
  // Fragments follow the path MTU: 1000 bytes at 552 -> 528 + 472.
  ASSERT_TRUE(send(at_ms(1), kFarIp, 1000));
  ASSERT_EQ(sink.size(), 2u);
  EXPECT_EQ(sink.ipv4(0)->payload.size(), 528u);
  EXPECT_EQ(sink.ipv4(1)->payload.size(), 472u);
  // RFC 1191 aging: after 10 minutes the interface MTU is tried again.
  ip.poll(at_ms(600'000 - 1));
  EXPECT_EQ(ip.path_mtu(kFarIp), 552);
  ip.poll(at_ms(600'000));
  EXPECT_EQ(ip.path_mtu(kFarIp), 1500);
}

TEST_F(IpFixture, PmtuTableIsBounded) {
  for (uint32_t i = 0; i < 200; ++i) ip.update_pmtu(at_ms(i), Ipv4Addr{kFarIp.v + i}, 1000);
  size_t remembered = 0;
  for (uint32_t i = 0; i < 200; ++i) remembered += ip.path_mtu(Ipv4Addr{kFarIp.v + i}) == 1000;
  EXPECT_EQ(remembered, 64u);
  EXPECT_EQ(ip.path_mtu(Ipv4Addr{kFarIp.v + 199}), 1000);  // the newest are kept
}

TEST_F(IpFixture, BadHeaderChecksumCounted) {
  auto f = udp_frame(kOurIp, 9);
  f[14 + 10] ^= 0xff;
  rx(at_ms(0), f);
  EXPECT_EQ(c.ip_in_receives, 1u);
  EXPECT_EQ(c.ip_in_csum_errors, 1u);
  EXPECT_EQ(c.ip_in_hdr_errors, 1u);
  EXPECT_EQ(c.ip_in_delivers, 0u);
  // Truncated header.
  std::vector<uint8_t> shortf(f.begin(), f.begin() + 14 + 10);
  rx(at_ms(0), shortf);
  EXPECT_EQ(c.ip_in_hdr_errors, 2u);
}

TEST_F(IpFixture, AddressFiltering) {
  rx(at_ms(0), udp_frame(kPeerIp, 9));  // not ours
  EXPECT_EQ(c.ip_in_addr_errors, 1u);
  // Unicast to us inside a link-layer broadcast (RFC 1122 3.3.6).
  rx(at_ms(0), udp_frame(kOurIp, 9, MacAddr::broadcast()));
  EXPECT_EQ(c.ip_in_addr_errors, 2u);
  // Martian source: our own address.
  rx(at_ms(0), udp_frame(kOurIp, 9, kOurMac, kOurIp));
  EXPECT_EQ(c.ip_in_addr_errors, 3u);
  EXPECT_EQ(c.ip_in_delivers, 0u);
  // Broadcast UDP is accepted (delivered; no port, but no ICMP either).
  rx(at_ms(0), udp_frame(Ipv4Addr::broadcast(), 9, MacAddr::broadcast()));
  rx(at_ms(0), udp_frame(kSubnetBcast, 9, MacAddr::broadcast()));
  EXPECT_EQ(c.ip_in_delivers, 2u);
  EXPECT_EQ(c.udp_no_ports, 2u);
  EXPECT_EQ(sink.size(), 0u);
  // Broadcast ICMP echo is not accepted.
  uint8_t data[4] = {};
  auto echo = test::icmp_message(icmptype::kEchoRequest, 0, 0x10001, data);
  Ipv4Repr h;
  h.src = kPeerIp;
  h.dst = kSubnetBcast;
  h.protocol = ipproto::kIcmp;
  rx(at_ms(0), test::ipv4_frame(MacAddr::broadcast(), kPeerMac, h, echo));
  EXPECT_EQ(c.ip_in_addr_errors, 4u);
  EXPECT_EQ(sink.size(), 0u);
}

TEST_F(IpFixture, TcpChecksumErrorCountedAndDropped) {
  std::vector<uint8_t> seg(20, 0);
  store_be16(&seg[0], 40000);
  store_be16(&seg[2], 80);
  seg[12] = 5 << 4;
  seg[13] = tcpflag::kSyn;
  store_be16(&seg[16], 0x1234);  // wrong checksum
  Ipv4Repr h;
  h.src = kPeerIp;
  h.dst = kOurIp;
  h.protocol = ipproto::kTcp;
  rx(at_ms(0), test::ipv4_frame(kOurMac, kPeerMac, h, seg));
  EXPECT_EQ(c.tcp_in_csum_errors, 1u);
  EXPECT_EQ(c.tcp_in_errs, 1u);
  EXPECT_EQ(sink.size(), 0u);  // no RST for a corrupt segment
}

TEST_F(IpFixture, UnknownProtocolGetsProtocolUnreachable) {
  uint8_t payload[12] = {9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9};
  Ipv4Repr h;
  h.src = kPeerIp;
  h.dst = kOurIp;
  h.protocol = 253;
  rx(at_ms(0), test::ipv4_frame(kOurMac, kPeerMac, h, payload));
  EXPECT_EQ(c.ip_in_unknown_protos, 1u);
  auto m = sink.icmp();
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->type, icmptype::kDestUnreachable);
  EXPECT_EQ(m->code, icmpcode::kProtoUnreachable);
  EXPECT_EQ(m->payload.size(), 20u + 8);
}

TEST_F(IpFixture, FragmentedInputIsReassembledAndDelivered) {
  UdpSocket* s = stack.udp().open();
  ASSERT_TRUE(s->bind({kOurIp, 7000}).has_value());
  std::vector<uint8_t> payload(2000);
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = uint8_t(i);
  auto d = test::udp_datagram(kPeerIp, 5000, kOurIp, 7000, payload);
  Ipv4Repr h;
  h.src = kPeerIp;
  h.dst = kOurIp;
  h.protocol = ipproto::kUdp;
  h.ident = 0x4242;
  h.more_frags = true;
  h.frag_offset = 0;
  rx(at_ms(0), test::ipv4_frame(kOurMac, kPeerMac, h, Bytes(d.data(), 1480)));
  EXPECT_EQ(s->rx_datagrams(), 0u);
  h.more_frags = false;
  h.frag_offset = 1480;
  rx(at_ms(1), test::ipv4_frame(kOurMac, kPeerMac, h, Bytes(d.data() + 1480, d.size() - 1480)));
  ASSERT_EQ(s->rx_datagrams(), 1u);
  std::vector<uint8_t> out(4000);
  auto r = s->recv_from(out);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->datagram_len, 2000u);
  EXPECT_TRUE(std::equal(payload.begin(), payload.end(), out.begin()));
  EXPECT_EQ(c.ip_reasm_oks, 1u);
}

}  // namespace
