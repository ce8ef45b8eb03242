// ICMP: echo, port unreachable (content, limits, suppression), incoming errors.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "stack/stack.hpp"
#include "stack/wire/checksum.hpp"
#include "tests/support/capture_sink.hpp"

using namespace xs;
using xs::test::CaptureSink;

namespace {

constexpr MacAddr kOurMac{{0x02, 0, 0, 0, 0, 0x01}};
constexpr MacAddr kPeerMac{{0x02, 0, 0, 0, 0, 0x02}};
constexpr Ipv4Addr kOurIp = Ipv4Addr::from_octets(198, 18, 0, 1);
constexpr Ipv4Addr kPeerIp = Ipv4Addr::from_octets(198, 18, 0, 2);
constexpr Ipv4Addr kSubnetBcast = Ipv4Addr::from_octets(198, 18, 0, 255);

Instant at_ms(int64_t ms) { return Instant{ms * 1000}; }

struct IcmpFixture : ::testing::Test {
  CaptureSink sink;
  SeededRandom rng{7};
  Stack stack{[] {
                StackConfig c;
                c.mac = kOurMac;
                c.addr = {kOurIp, 24};
                return c;
              }(),
              rng, sink};
  StackCounters& c = stack.counters();

  void SetUp() override { stack.arp().insert_static(kPeerIp, kPeerMac); }

  void rx(Instant now, const std::vector<uint8_t>& f) { stack.receive_frame(now, Bytes(f.data(), f.size())); }

  std::vector<uint8_t> udp_to_us(uint16_t dport, Ipv4Addr src = kPeerIp, Ipv4Addr dst = kOurIp,
                                 MacAddr eth_dst = kOurMac, uint8_t tos = 0) {
    uint8_t payload[12] = {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd', '!'};
    auto d = test::udp_datagram(src, 40000, dst, dport, payload);
    Ipv4Repr h;
    h.src = src;
    h.dst = dst;
    h.protocol = ipproto::kUdp;
    h.ident = 0x1111;
    h.tos = tos;
    return test::ipv4_frame(eth_dst, kPeerMac, h, d);
  }

  // An ICMP error from the peer quoting a UDP datagram we sent.
  std::vector<uint8_t> icmp_error_about(uint8_t type, uint8_t code, uint32_t rest, uint16_t our_port,
                                        uint16_t their_port, uint16_t quoted_total = 40) {
    uint8_t quote[28] = {};
    quote[0] = 0x45;
    store_be16(&quote[2], quoted_total);
    quote[8] = 64;
    quote[9] = ipproto::kUdp;
    store_be32(&quote[12], kOurIp.v);
    store_be32(&quote[16], kPeerIp.v);
    store_be16(&quote[20], our_port);
    store_be16(&quote[22], their_port);
    store_be16(&quote[24], uint16_t(quoted_total - 20));
    auto m = test::icmp_message(type, code, rest, quote);
    Ipv4Repr h;
    h.src = kPeerIp;
    h.dst = kOurIp;
    h.protocol = ipproto::kIcmp;
    return test::ipv4_frame(kOurMac, kPeerMac, h, m);
  }
};

TEST_F(IcmpFixture, EchoReplyMirrorsRequestExactly) {
  const uint8_t data[] = {0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5};  // odd length on purpose
  auto req = test::icmp_message(icmptype::kEchoRequest, 0, 0x1234'0007, data);
  Ipv4Repr h;
  h.src = kPeerIp;
  h.dst = kOurIp;
  h.protocol = ipproto::kIcmp;
  h.tos = 0x28;
  rx(at_ms(0), test::ipv4_frame(kOurMac, kPeerMac, h, req));
  ASSERT_EQ(sink.size(), 1u);

  // The ICMP message must be exactly the request with type 0 and the checksum
  // adjusted: build it independently and compare byte for byte.
  std::vector<uint8_t> expected = {0, 0, 0, 0, 0x12, 0x34, 0x00, 0x07, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5};
  store_be16(&expected[2], internet_checksum(Bytes(expected.data(), expected.size())));
  const auto& f = sink.last();
  ASSERT_EQ(f.size(), 14u + 20 + expected.size());
  EXPECT_EQ(std::vector<uint8_t>(f.begin() + 34, f.end()), expected);
  // Ethernet and IP header, byte by byte except ident and header checksum.
  const uint8_t eth[14] = {0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00};
  EXPECT_EQ(std::memcmp(f.data(), eth, 14), 0);
  EXPECT_EQ(f[14], 0x45);
  EXPECT_EQ(f[15], 0x28);  // TOS echoed
  EXPECT_EQ(load_be16(&f[16]), 20 + expected.size());
  EXPECT_EQ(f[22], 64);
  EXPECT_EQ(f[23], ipproto::kIcmp);
  EXPECT_EQ(load_be32(&f[26]), kOurIp.v);
  EXPECT_EQ(load_be32(&f[30]), kPeerIp.v);
  EXPECT_TRUE(sink.ipv4().has_value());  // header checksum valid
  EXPECT_EQ(c.icmp_in_echos, 1u);
  EXPECT_EQ(c.icmp_out_echo_reps, 1u);
  EXPECT_EQ(c.icmp_out_msgs, 1u);
}

TEST_F(IcmpFixture, EchoWithBadChecksumIsCountedAndIgnored) {
  uint8_t data[4] = {1, 2, 3, 4};
  auto req = test::icmp_message(icmptype::kEchoRequest, 0, 1, data);
  req[2] ^= 1;
  Ipv4Repr h;
  h.src = kPeerIp;
  h.dst = kOurIp;
  h.protocol = ipproto::kIcmp;
  rx(at_ms(0), test::ipv4_frame(kOurMac, kPeerMac, h, req));
  EXPECT_EQ(sink.size(), 0u);
  EXPECT_EQ(c.icmp_in_csum_errors, 1u);
  EXPECT_EQ(c.icmp_in_errors, 1u);
}

TEST_F(IcmpFixture, PortUnreachableQuotesHeaderAndEightBytes) {
  auto f = udp_to_us(9999, kPeerIp, kOurIp, kOurMac, 0x04);
  rx(at_ms(0), f);
  EXPECT_EQ(c.udp_no_ports, 1u);
  ASSERT_EQ(sink.size(), 1u);
  auto p = sink.ipv4();
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->hdr.src, kOurIp);
  EXPECT_EQ(p->hdr.dst, kPeerIp);
  EXPECT_EQ(p->hdr.tos, 0xc0 | 0x04);  // IPTOS_PREC_INTERNETCONTROL | original TOS bits
  auto m = sink.icmp();  // parse_icmp verifies the checksum
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->type, icmptype::kDestUnreachable);
  EXPECT_EQ(m->code, icmpcode::kPortUnreachable);
  EXPECT_EQ(m->rest, 0u);
  // Quote: the original IP header (20 bytes) then the UDP header (8 bytes).
  ASSERT_EQ(m->payload.size(), 28u);
  EXPECT_TRUE(std::equal(m->payload.begin(), m->payload.end(), f.begin() + 14));
  EXPECT_EQ(c.icmp_out_dest_unreachs, 1u);
}

TEST_F(IcmpFixture, NoErrorForBroadcastOrLinkBroadcast) {
  rx(at_ms(0), udp_to_us(9999, kPeerIp, kSubnetBcast, MacAddr::broadcast()));
  rx(at_ms(0), udp_to_us(9999, kPeerIp, Ipv4Addr::broadcast(), MacAddr::broadcast()));
  EXPECT_EQ(c.udp_no_ports, 2u);
  EXPECT_EQ(sink.size(), 0u);
  EXPECT_EQ(c.icmp_out_msgs, 0u);
}

TEST_F(IcmpFixture, NoErrorAboutErrorsOrNonInitialFragments) {
  IcmpHandler& icmp = stack.ip().icmp();
  uint8_t hdr[20] = {0x45};
  uint8_t err_body[8] = {icmptype::kDestUnreachable, 3};
  Ipv4Packet off;
  off.hdr.src = kPeerIp;
  off.hdr.dst = kOurIp;
  off.hdr.protocol = ipproto::kIcmp;
  off.header = Bytes(hdr, 20);
  off.header_len = 20;
  off.payload = Bytes(err_body, 8);
  EXPECT_FALSE(icmp.send_error(at_ms(0), 3, 3, 0, off, false));
  // An echo request is not an error: answering it with an error is allowed.
  err_body[0] = icmptype::kEchoRequest;
  EXPECT_TRUE(icmp.send_error(at_ms(0), 3, 3, 0, off, false));
  off.hdr.protocol = ipproto::kUdp;
  off.hdr.frag_offset = 1480;
  EXPECT_FALSE(icmp.send_error(at_ms(0), 3, 3, 0, off, false));
  off.hdr.frag_offset = 0;
  off.hdr.src = Ipv4Addr::any();
  EXPECT_FALSE(icmp.send_error(at_ms(0), 3, 3, 0, off, false));
  EXPECT_EQ(sink.size(), 1u);
}

TEST_F(IcmpFixture, PerHostRateLimitBurstOfSixThenOnePerSecond) {
  for (int i = 0; i < 10; ++i) rx(at_ms(0), udp_to_us(9999));
  EXPECT_EQ(sink.size(), 6u);
  EXPECT_EQ(c.icmp_out_rate_limited, 4u);
  rx(at_ms(500), udp_to_us(9999));
  EXPECT_EQ(sink.size(), 6u);
  rx(at_ms(1000), udp_to_us(9999));
  EXPECT_EQ(sink.size(), 7u);
  rx(at_ms(1001), udp_to_us(9999));
  EXPECT_EQ(sink.size(), 7u);
  EXPECT_EQ(c.icmp_out_rate_limited, 6u);
  EXPECT_EQ(c.udp_no_ports, 13u);
}

TEST_F(IcmpFixture, GlobalRateLimitBurstOfFifty) {
  // 60 different hosts at once: the per-host limit never bites, the global
  // bucket (icmp_msgs_burst = 50) does.
  for (uint8_t i = 0; i < 60; ++i) {
    Ipv4Addr src = Ipv4Addr::from_octets(198, 18, 0, uint8_t(100 + i));
    stack.arp().insert_static(src, kPeerMac);
    rx(at_ms(0), udp_to_us(9999, src));
  }
  EXPECT_EQ(sink.size(), 50u);
  EXPECT_EQ(c.icmp_out_rate_limited, 10u);
  // 1000 per second refill: 5 ms buys 5 more.
  for (uint8_t i = 0; i < 10; ++i) rx(at_ms(5), udp_to_us(9999, Ipv4Addr::from_octets(198, 18, 0, uint8_t(100 + i))));
  EXPECT_EQ(sink.size(), 55u);
}

TEST_F(IcmpFixture, EchoRepliesAreNotRateLimited) {
  uint8_t data[1] = {0};
  auto req = test::icmp_message(icmptype::kEchoRequest, 0, 1, data);
  Ipv4Repr h;
  h.src = kPeerIp;
  h.dst = kOurIp;
  h.protocol = ipproto::kIcmp;
  auto f = test::ipv4_frame(kOurMac, kPeerMac, h, req);
  for (int i = 0; i < 100; ++i) rx(at_ms(0), f);
  EXPECT_EQ(sink.size(), 100u);
  EXPECT_EQ(c.icmp_out_rate_limited, 0u);
}

TEST_F(IcmpFixture, ReassemblyTimeoutSendsTimeExceededCode1) {
  uint8_t payload[64] = {};
  Ipv4Repr h;
  h.src = kPeerIp;
  h.dst = kOurIp;
  h.protocol = ipproto::kUdp;
  h.ident = 99;
  h.more_frags = true;
  auto f = test::ipv4_frame(kOurMac, kPeerMac, h, payload);
  rx(at_ms(0), f);
  EXPECT_EQ(stack.poll_at(), at_ms(30000));
  stack.poll(at_ms(30000));
  ASSERT_EQ(sink.size(), 1u);
  auto m = sink.icmp();
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->type, icmptype::kTimeExceeded);
  EXPECT_EQ(m->code, 1);
  ASSERT_EQ(m->payload.size(), 28u);
  EXPECT_TRUE(std::equal(m->payload.begin(), m->payload.end(), f.begin() + 14));
  EXPECT_EQ(c.ip_reasm_timeouts, 1u);
}

TEST_F(IcmpFixture, PortUnreachableSetsErrorOnConnectedSocketOnly) {
  UdpSocket* conn = stack.udp().open();
  ASSERT_TRUE(conn->connect({kPeerIp, 53}).has_value());
  UdpSocket* unconn = stack.udp().open();
  ASSERT_TRUE(unconn->bind({Ipv4Addr::any(), 6000}).has_value());

  rx(at_ms(0), icmp_error_about(icmptype::kDestUnreachable, icmpcode::kPortUnreachable, 0, conn->local().port, 53));
  EXPECT_EQ(conn->pending_error(), SockError::ConnectionRefused);
  EXPECT_EQ(c.icmp_in_dest_unreachs, 1u);
  rx(at_ms(0), icmp_error_about(icmptype::kDestUnreachable, icmpcode::kPortUnreachable, 0, 6000, 53));
  EXPECT_FALSE(unconn->pending_error().has_value());
  // Soft errors (host unreachable, time exceeded) are not reported without IP_RECVERR.
  conn->take_error();
  rx(at_ms(0), icmp_error_about(icmptype::kDestUnreachable, icmpcode::kHostUnreachable, 0, conn->local().port, 53));
  rx(at_ms(0), icmp_error_about(icmptype::kTimeExceeded, 0, 0, conn->local().port, 53));
  EXPECT_FALSE(conn->pending_error().has_value());
  // An error quoting another peer port does not match the connected socket.
  rx(at_ms(0), icmp_error_about(icmptype::kDestUnreachable, icmpcode::kPortUnreachable, 0, conn->local().port, 54));
  EXPECT_FALSE(conn->pending_error().has_value());
}

TEST_F(IcmpFixture, FragNeededLowersPathMtuAndReportsEmsgsize) {
  UdpSocket* s = stack.udp().open();
  ASSERT_TRUE(s->connect({kPeerIp, 53}).has_value());
  rx(at_ms(0), icmp_error_about(icmptype::kDestUnreachable, icmpcode::kFragNeeded, 1200, s->local().port, 53));
  EXPECT_EQ(stack.ip().path_mtu(kPeerIp), 1200);
  EXPECT_EQ(s->pending_error(), SockError::MessageTooLong);
  // A zero next-hop MTU (pre-RFC 1191 router) falls to the next plateau
  // below the quoted datagram's length, clamped at min_pmtu: 1100 -> 1006.
  rx(at_ms(1), icmp_error_about(icmptype::kDestUnreachable, icmpcode::kFragNeeded, 0, s->local().port, 53, 1100));
  EXPECT_EQ(stack.ip().path_mtu(kPeerIp), 1006);
}

TEST_F(IcmpFixture, TruncatedQuoteIsAnInputError) {
  uint8_t quote[10] = {0x45};
  auto m = test::icmp_message(icmptype::kDestUnreachable, 3, 0, quote);
  Ipv4Repr h;
  h.src = kPeerIp;
  h.dst = kOurIp;
  h.protocol = ipproto::kIcmp;
  rx(at_ms(0), test::ipv4_frame(kOurMac, kPeerMac, h, m));
  EXPECT_EQ(c.icmp_in_errors, 1u);
}

}  // namespace
