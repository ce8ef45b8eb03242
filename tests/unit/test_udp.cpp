// UDP sockets: Linux bind/connect/send/recv semantics, options, receive queue.
#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "stack/stack.hpp"
#include "tests/support/capture_sink.hpp"

using namespace xs;
using xs::test::CaptureSink;

namespace {

constexpr MacAddr kOurMac{{0x02, 0, 0, 0, 0, 0x01}};
constexpr MacAddr kPeerMac{{0x02, 0, 0, 0, 0, 0x02}};
constexpr Ipv4Addr kOurIp = Ipv4Addr::from_octets(198, 18, 0, 1);
constexpr Ipv4Addr kPeerIp = Ipv4Addr::from_octets(198, 18, 0, 2);
constexpr Ipv4Addr kPeer2Ip = Ipv4Addr::from_octets(198, 18, 0, 3);
constexpr Ipv4Addr kSubnetBcast = Ipv4Addr::from_octets(198, 18, 0, 255);
constexpr Ipv4Addr kFarIp = Ipv4Addr::from_octets(198, 19, 9, 9);

Instant at_ms(int64_t ms) { return Instant{ms * 1000}; }

Bytes bytes_of(const std::string& s) { return Bytes(reinterpret_cast<const uint8_t*>(s.data()), s.size()); }

struct CountingObserver : SocketObserver {
  int calls = 0;
  void* last_cookie = nullptr;
  void on_socket_event(void* cookie) override {
    ++calls;
    last_cookie = cookie;
  }
};

struct UdpFixture : ::testing::Test {
  CaptureSink sink;
  SeededRandom rng{3};
  Stack stack{[] {
                StackConfig c;
                c.mac = kOurMac;
                c.addr = {kOurIp, 24};  // no gateway
                return c;
              }(),
              rng, sink};
  UdpLayer& udp = stack.udp();
  StackCounters& c = stack.counters();

  void SetUp() override {
    stack.arp().insert_static(kPeerIp, kPeerMac);
    stack.arp().insert_static(kPeer2Ip, kPeerMac);
  }

  // A datagram from the wire to us.
  void deliver(Bytes payload, uint16_t dport, Ipv4Addr src = kPeerIp, uint16_t sport = 5000,
               Ipv4Addr dst = kOurIp) {
    auto d = test::udp_datagram(src, sport, dst, dport, payload);
    Ipv4Repr h;
    h.src = src;
    h.dst = dst;
    h.protocol = ipproto::kUdp;
    MacAddr eth_dst = stack.ip().is_broadcast(dst) ? MacAddr::broadcast() : kOurMac;
    auto f = test::ipv4_frame(eth_dst, kPeerMac, h, d);
    stack.receive_frame(at_ms(0), Bytes(f.data(), f.size()));
  }
  UdpSocket* bound(uint16_t port, Ipv4Addr addr = Ipv4Addr::any()) {
    UdpSocket* s = udp.open();
    EXPECT_TRUE(s->bind({addr, port}).has_value());
    return s;
  }
};

// ---- bind ---------------------------------------------------------------------

TEST_F(UdpFixture, BindConflictsFollowLinux) {
  UdpSocket* a = bound(7000);
  UdpSocket* b = udp.open();
  auto r = b->bind({Ipv4Addr::any(), 7000});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), SockError::AddressInUse);
  // A specific address overlaps the wildcard.
  r = b->bind({kOurIp, 7000});
  EXPECT_EQ(r.error(), SockError::AddressInUse);
  // Only one side with SO_REUSEADDR is not enough.
  b->set_reuseaddr(true);
  EXPECT_EQ(b->bind({kOurIp, 7000}).error(), SockError::AddressInUse);
  a->set_reuseaddr(true);
  EXPECT_TRUE(b->bind({kOurIp, 7000}).has_value());
  // Already bound.
  EXPECT_EQ(b->bind({kOurIp, 7001}).error(), SockError::InvalidArgument);
}

TEST_F(UdpFixture, ReuseportNeedsBothSockets) {
  UdpSocket* a = udp.open();
  a->set_reuseport(true);
  ASSERT_TRUE(a->bind({Ipv4Addr::any(), 7100}).has_value());
  UdpSocket* b = udp.open();
  EXPECT_EQ(b->bind({Ipv4Addr::any(), 7100}).error(), SockError::AddressInUse);
  b->set_reuseport(true);
  EXPECT_TRUE(b->bind({Ipv4Addr::any(), 7100}).has_value());
  // Mixed flags (reuseaddr on one, reuseport on the other) conflict.
  UdpSocket* d = udp.open();
  d->set_reuseaddr(true);
  EXPECT_EQ(d->bind({Ipv4Addr::any(), 7100}).error(), SockError::AddressInUse);
}

TEST_F(UdpFixture, BindAddressMustBeOurs) {
  UdpSocket* s = udp.open();
  EXPECT_EQ(s->bind({kPeerIp, 7000}).error(), SockError::AddressNotAvailable);
  EXPECT_TRUE(s->bind({kOurIp, 7000}).has_value());
  UdpSocket* b = udp.open();
  EXPECT_TRUE(b->bind({kSubnetBcast, 7000}).has_value());  // broadcast addresses are bindable
}

TEST_F(UdpFixture, EphemeralPortsComeFromTheRangeAndDiffer) {
  std::set<uint16_t> ports;
  for (int i = 0; i < 50; ++i) {
    UdpSocket* s = udp.open();
    ASSERT_TRUE(s->bind({Ipv4Addr::any(), 0}).has_value());
    EXPECT_GE(s->local().port, 32768);
    EXPECT_LE(s->local().port, 60999);
    ports.insert(s->local().port);
  }
  EXPECT_EQ(ports.size(), 50u);
}

TEST(UdpEphemeral, ExhaustedRangeIsAddressInUse) {
  CaptureSink sink;
  SeededRandom rng(1);
  StackConfig cfg;
  cfg.mac = kOurMac;
  cfg.addr = {kOurIp, 24};
  cfg.tcp.ephemeral_low = 40000;
  cfg.tcp.ephemeral_high = 40002;
  Stack stack(cfg, rng, sink);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(stack.udp().open()->bind({Ipv4Addr::any(), 0}).has_value());
  EXPECT_EQ(stack.udp().open()->bind({Ipv4Addr::any(), 0}).error(), SockError::AddressInUse);
}

// ---- connect ----------------------------------------------------------------------

TEST_F(UdpFixture, ConnectAutobindsAndFiltersPeers) {
  UdpSocket* s = udp.open();
  ASSERT_TRUE(s->connect({kPeerIp, 5000}).has_value());
  EXPECT_EQ(s->local().addr, kOurIp);
  EXPECT_NE(s->local().port, 0);
  EXPECT_EQ(s->remote(), (Endpoint{kPeerIp, 5000}));
  const uint16_t port = s->local().port;
  deliver(bytes_of("ok"), port, kPeerIp, 5000);
  deliver(bytes_of("wrong port"), port, kPeerIp, 5001);
  deliver(bytes_of("wrong host"), port, kPeer2Ip, 5000);
  EXPECT_EQ(s->rx_datagrams(), 1u);
  EXPECT_EQ(c.udp_no_ports, 2u);  // nothing else wanted them: ICMP port unreachable, as Linux
  uint8_t buf[16];
  auto r = s->recv_from(buf);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), r->copied), "ok");
}

TEST_F(UdpFixture, ConnectErrors) {
  UdpSocket* s = udp.open();
  EXPECT_EQ(s->connect({kFarIp, 53}).error(), SockError::NetUnreachable);
  EXPECT_EQ(s->connect({kSubnetBcast, 53}).error(), SockError::AccessDenied);
  s->set_broadcast(true);
  EXPECT_TRUE(s->connect({kSubnetBcast, 53}).has_value());
  // Port 0 is accepted, as on Linux.
  EXPECT_TRUE(s->connect({kPeerIp, 0}).has_value());
}

TEST_F(UdpFixture, DisconnectReleasesImplicitBindings) {
  UdpSocket* s = udp.open();
  ASSERT_TRUE(s->connect({kPeerIp, 5000}).has_value());
  const uint16_t port = s->local().port;
  s->disconnect();
  EXPECT_FALSE(s->remote().has_value());
  EXPECT_EQ(s->local(), Endpoint{});  // autobound port and route address released
  EXPECT_TRUE(bound(port) != nullptr);  // the port is free again

  UdpSocket* e = bound(7300, kOurIp);
  ASSERT_TRUE(e->connect({kPeerIp, 5000}).has_value());
  e->disconnect();
  EXPECT_EQ(e->local(), (Endpoint{kOurIp, 7300}));  // explicit bind is kept
}

// ---- send -----------------------------------------------------------------------------

TEST_F(UdpFixture, SendBuildsCorrectDatagram) {
  UdpSocket* s = bound(7000);
  s->set_tos(0x20);
  ASSERT_TRUE(s->set_ttl(17).has_value());
  auto r = s->send_to(at_ms(0), bytes_of("hello"), Endpoint{kPeerIp, 9000});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, 5u);
  ASSERT_EQ(sink.size(), 1u);
  auto p = sink.ipv4();
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->hdr.src, kOurIp);
  EXPECT_EQ(p->hdr.dst, kPeerIp);
  EXPECT_EQ(p->hdr.ttl, 17);
  EXPECT_EQ(p->hdr.tos, 0x20);
  EXPECT_TRUE(p->hdr.dont_frag);  // IP_PMTUDISC_WANT
  auto u = sink.udp();  // checksum verified
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->src_port, 7000);
  EXPECT_EQ(u->dst_port, 9000);
  EXPECT_EQ(std::string(u->payload.begin(), u->payload.end()), "hello");
  EXPECT_NE(load_be16(&p->payload[6]), 0);  // checksum present
  EXPECT_EQ(c.udp_out_datagrams, 1u);
}

TEST_F(UdpFixture, SendErrors) {
  UdpSocket* s = udp.open();
  EXPECT_EQ(s->send_to(at_ms(0), bytes_of("x")).error(), SockError::DestAddrRequired);
  EXPECT_NE(s->local().port, 0);  // autobound even so (inet_send_prepare)
  EXPECT_EQ(s->send_to(at_ms(0), bytes_of("x"), Endpoint{kPeerIp, 0}).error(), SockError::InvalidArgument);
  EXPECT_EQ(s->send_to(at_ms(0), bytes_of("x"), Endpoint{kFarIp, 53}).error(), SockError::NetUnreachable);
  // No source address and no default route: 255.255.255.255 has no route
  // (ip_route_output_key_hash -> fib_lookup), checked before SO_BROADCAST.
  EXPECT_EQ(s->send_to(at_ms(0), bytes_of("x"), Endpoint{Ipv4Addr::broadcast(), 53}).error(),
            SockError::NetUnreachable);
  EXPECT_EQ(s->send_to(at_ms(0), bytes_of("x"), Endpoint{kSubnetBcast, 53}).error(), SockError::AccessDenied);
  EXPECT_EQ(sink.size(), 0u);
  EXPECT_EQ(s->set_ttl(0).error(), SockError::InvalidArgument);
  EXPECT_EQ(s->set_ttl(256).error(), SockError::InvalidArgument);
  EXPECT_TRUE(s->set_ttl(-1).has_value());
  EXPECT_EQ(s->ttl(), 64);
}

TEST_F(UdpFixture, BroadcastNeedsSoBroadcast) {
  // Bound to our address: the limited broadcast leaves through its device.
  UdpSocket* s = bound(7000, kOurIp);
  EXPECT_EQ(s->send_to(at_ms(0), bytes_of("x"), Endpoint{Ipv4Addr::broadcast(), 67}).error(),
            SockError::AccessDenied);
  s->set_broadcast(true);
  ASSERT_TRUE(s->send_to(at_ms(0), bytes_of("all"), Endpoint{Ipv4Addr::broadcast(), 67}).has_value());
  ASSERT_EQ(sink.size(), 1u);
  EXPECT_EQ(sink.eth()->hdr.dst, MacAddr::broadcast());
  EXPECT_EQ(sink.ipv4()->hdr.src, kOurIp);
}

// Unbound, a limited broadcast needs a route: without a source address
// (bind, IP_PKTINFO) only the default route gives one (Linux: ENETUNREACH
// with no default route, whatever SO_BROADCAST says).
TEST_F(UdpFixture, LimitedBroadcastUnboundNeedsARoute) {
  UdpSocket* s = bound(7000);
  s->set_broadcast(true);
  EXPECT_EQ(s->send_to(at_ms(0), bytes_of("x"), Endpoint{Ipv4Addr::broadcast(), 67}).error(),
            SockError::NetUnreachable);
  // IP_PKTINFO naming our address is enough.
  UdpSocket::TxOverrides ov;
  ov.src = kOurIp;
  EXPECT_TRUE(s->send_to(at_ms(0), bytes_of("x"), Endpoint{Ipv4Addr::broadcast(), 67}, &ov).has_value());
  // The subnet's own broadcast address is on-link.
  EXPECT_TRUE(s->send_to(at_ms(0), bytes_of("x"), Endpoint{kSubnetBcast, 67}).has_value());
  EXPECT_EQ(sink.size(), 2u);

  CaptureSink sink2;
  SeededRandom rng2{4};
  StackConfig c2;
  c2.mac = kOurMac;
  c2.addr = {kOurIp, 24};
  c2.gateway = kPeerIp;
  Stack with_gw(c2, rng2, sink2);
  with_gw.arp().insert_static(kPeerIp, kPeerMac);
  UdpSocket* g = with_gw.udp().open();
  ASSERT_TRUE(g->bind({Ipv4Addr::any(), 7000}).has_value());
  EXPECT_EQ(g->send_to(at_ms(0), bytes_of("x"), Endpoint{Ipv4Addr::broadcast(), 67}).error(),
            SockError::AccessDenied);
  g->set_broadcast(true);
  ASSERT_TRUE(g->send_to(at_ms(0), bytes_of("x"), Endpoint{Ipv4Addr::broadcast(), 67}).has_value());
  ASSERT_EQ(sink2.size(), 1u);
  EXPECT_EQ(sink2.eth()->hdr.dst, MacAddr::broadcast());
}

// ip4_datagram_connect checks SO_BROADCAST once; sends then use the connected
// route (udp_sendmsg without msg_name): clearing SO_BROADCAST afterwards does
// not stop send(), while a sendto() naming the address looks the route up again.
TEST_F(UdpFixture, ConnectedBroadcastKeepsItsRoute) {
  UdpSocket* s = bound(7000, kOurIp);
  EXPECT_EQ(s->connect({kSubnetBcast, 67}).error(), SockError::AccessDenied);
  s->set_broadcast(true);
  ASSERT_TRUE(s->connect({kSubnetBcast, 67}).has_value());
  s->set_broadcast(false);
  EXPECT_TRUE(s->send(at_ms(0), bytes_of("x")).has_value());
  EXPECT_EQ(s->send_to(at_ms(0), bytes_of("x"), Endpoint{kSubnetBcast, 67}).error(), SockError::AccessDenied);
  EXPECT_EQ(sink.size(), 1u);
  // Unbound, with no default route, a limited-broadcast connect has no route.
  UdpSocket* u = udp.open();
  u->set_broadcast(true);
  EXPECT_EQ(u->connect({Ipv4Addr::broadcast(), 67}).error(), SockError::NetUnreachable);
}

// IP_MTU_DISCOVER: DO refuses what exceeds the path MTU (EMSGSIZE) and sets
// DF; DONT never sets DF and fragments; WANT (default) sets DF when it fits.
TEST_F(UdpFixture, MtuDiscoverModes) {
  UdpSocket* s = bound(7000);
  EXPECT_EQ(s->pmtudisc(), 1);
  std::string fits(1500 - 20 - 8, 'f'), over(1500 - 20 - 8 + 1, 'o');
  s->set_pmtudisc(2);  // IP_PMTUDISC_DO
  EXPECT_EQ(s->send_to(at_ms(0), bytes_of(over), Endpoint{kPeerIp, 9}).error(), SockError::MessageTooLong);
  ASSERT_TRUE(s->send_to(at_ms(0), bytes_of(fits), Endpoint{kPeerIp, 9}).has_value());
  ASSERT_EQ(sink.size(), 1u);
  EXPECT_TRUE(sink.ipv4(0)->hdr.dont_frag);
  s->set_pmtudisc(0);  // IP_PMTUDISC_DONT
  ASSERT_TRUE(s->send_to(at_ms(0), bytes_of(fits), Endpoint{kPeerIp, 9}).has_value());
  EXPECT_FALSE(sink.ipv4(1)->hdr.dont_frag);
  ASSERT_TRUE(s->send_to(at_ms(0), bytes_of(over), Endpoint{kPeerIp, 9}).has_value());
  EXPECT_EQ(sink.size(), 4u) << "fragmented in two";
  s->set_pmtudisc(5);  // IP_PMTUDISC_OMIT: fragments, never DF
  ASSERT_TRUE(s->send_to(at_ms(0), bytes_of(over), Endpoint{kPeerIp, 9}).has_value());
  EXPECT_EQ(sink.size(), 6u);
}

TEST_F(UdpFixture, MessageSizeLimitAndFragmentation) {
  UdpSocket* s = bound(7000);
  std::vector<uint8_t> big(65508, 0x5a);
  EXPECT_EQ(s->send_to(at_ms(0), big, Endpoint{kPeerIp, 9}).error(), SockError::MessageTooLong);
  big.resize(65507);
  auto r = s->send_to(at_ms(0), big, Endpoint{kPeerIp, 9});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, 65507u);
  // 65515 bytes of IP payload in 1480-byte pieces: 45 fragments, none with DF.
  EXPECT_EQ(sink.size(), 45u);
  EXPECT_EQ(c.ip_frag_creates, 45u);
  EXPECT_FALSE(sink.ipv4(0)->hdr.dont_frag);
}

TEST_F(UdpFixture, LostTransmitIsStillSuccess) {
  UdpSocket* s = bound(7000);
  sink.refuse = 1;
  auto r = s->send_to(at_ms(0), bytes_of("lost"), Endpoint{kPeerIp, 9});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(c.udp_sndbuf_errors, 1u);
  EXPECT_EQ(c.udp_out_datagrams, 0u);
}

// ---- receive ----------------------------------------------------------------------

TEST_F(UdpFixture, TruncationReportsFullLengthAndPeekKeeps) {
  UdpSocket* s = bound(7000);
  deliver(bytes_of("0123456789"), 7000);
  EXPECT_EQ(s->bytes_readable(), 10u);
  uint8_t small[4];
  auto p = s->recv_from(small, /*peek=*/true);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->copied, 4u);
  EXPECT_EQ(p->datagram_len, 10u);
  EXPECT_EQ(p->from, (Endpoint{kPeerIp, 5000}));
  EXPECT_EQ(s->rx_datagrams(), 1u);
  auto r = s->recv_from(small);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->copied, 4u);
  EXPECT_EQ(r->datagram_len, 10u);
  EXPECT_EQ(std::memcmp(small, "0123", 4), 0);
  // The rest of a truncated datagram is gone.
  EXPECT_EQ(s->recv_from(small).error(), SockError::WouldBlock);
  EXPECT_EQ(s->rx_charged(), 0u);
}

TEST_F(UdpFixture, ZeroLengthDatagramIsARealDatagram) {
  UdpSocket* s = bound(7000);
  deliver(Bytes(), 7000);
  EXPECT_EQ(s->rx_datagrams(), 1u);
  EXPECT_TRUE(s->readiness() & ev::kIn);
  EXPECT_EQ(s->bytes_readable(), 0u);
  uint8_t buf[8];
  auto r = s->recv_from(buf);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->copied, 0u);
  EXPECT_EQ(r->datagram_len, 0u);
  EXPECT_FALSE(s->readiness() & ev::kIn);
  // Sending one works too.
  ASSERT_TRUE(s->send_to(at_ms(0), Bytes(), Endpoint{kPeerIp, 9}).has_value());
  EXPECT_EQ(sink.udp()->payload.size(), 0u);
}

TEST_F(UdpFixture, DatagramsKeepBoundariesAndOrderAcrossRingWrap) {
  UdpSocket* s = bound(7000);
  s->set_rcvbuf(1);  // minimum; the ring is still one maximal datagram long
  std::vector<uint8_t> payload(1000);
  uint8_t buf[2000];
  // Enough traffic to wrap the ring several times; each datagram read back intact.
  for (int i = 0; i < 300; ++i) {
    for (size_t k = 0; k < payload.size(); ++k) payload[k] = uint8_t(i + k);
    deliver(Bytes(payload.data(), 900 + size_t(i % 100)), 7000, kPeerIp, uint16_t(1000 + i));
    auto r = s->recv_from(buf);
    ASSERT_TRUE(r.has_value()) << i;
    ASSERT_EQ(r->datagram_len, 900u + size_t(i % 100));
    ASSERT_EQ(r->from.port, 1000 + i);
    ASSERT_EQ(std::memcmp(buf, payload.data(), r->copied), 0) << i;
  }
}

TEST_F(UdpFixture, ReceiveBufferBoundsQueueAndCountsDrops) {
  UdpSocket* s = bound(7000);
  s->set_rcvbuf(2048);
  EXPECT_EQ(s->rcvbuf(), 4096u);
  std::vector<uint8_t> payload(100, 1);
  for (int i = 0; i < 20; ++i) deliver(payload, 7000);
  // Each datagram costs 100 + 256 bytes: 11 fit in 4096.
  EXPECT_EQ(s->rx_datagrams(), 11u);
  EXPECT_LE(s->rx_charged(), 4096u);
  EXPECT_EQ(c.udp_rcvbuf_errors, 9u);
  EXPECT_EQ(c.udp_in_errors, 9u);
  EXPECT_EQ(c.udp_in_datagrams, 11u);
  EXPECT_EQ(s->rx_queued_bytes(), 1100u);
  // Tiny datagrams are charged the overhead too, so they cannot queue unboundedly.
  uint8_t buf[200];
  while (s->recv_from(buf).has_value()) {}
  for (int i = 0; i < 100; ++i) deliver(Bytes(), 7000);
  EXPECT_EQ(s->rx_datagrams(), 16u);  // 4096 / 256
}

TEST_F(UdpFixture, OneDatagramAlwaysFitsAnEmptyQueue) {
  UdpSocket* s = bound(7000);
  s->set_rcvbuf(0);
  EXPECT_EQ(s->rcvbuf(), 2304u);  // SOCK_MIN_RCVBUF
  std::vector<uint8_t> payload(3000, 2);
  deliver(payload, 7000);
  deliver(payload, 7000);
  EXPECT_EQ(s->rx_datagrams(), 1u);
  EXPECT_EQ(c.udp_rcvbuf_errors, 1u);
}

TEST_F(UdpFixture, BufferSizesDoubleAndClampLikeLinux) {
  UdpSocket* s = udp.open();
  EXPECT_EQ(s->rcvbuf(), 212992u);  // rmem_default
  s->set_rcvbuf(10000);
  EXPECT_EQ(s->rcvbuf(), 20000u);
  s->set_rcvbuf(10'000'000);
  EXPECT_EQ(s->rcvbuf(), 425984u);  // 2 * rmem_max
  s->set_sndbuf(100);
  EXPECT_EQ(s->sndbuf(), 4608u);  // SOCK_MIN_SNDBUF
  s->set_sndbuf(50000);
  EXPECT_EQ(s->sndbuf(), 100000u);
}

TEST_F(UdpFixture, ExactAddressBeatsWildcardAndBroadcastGoesToWildcards) {
  UdpSocket* wild = udp.open();
  wild->set_reuseaddr(true);
  ASSERT_TRUE(wild->bind({Ipv4Addr::any(), 6700}).has_value());
  UdpSocket* exact = udp.open();
  exact->set_reuseaddr(true);
  ASSERT_TRUE(exact->bind({kOurIp, 6700}).has_value());
  deliver(bytes_of("u"), 6700);
  EXPECT_EQ(exact->rx_datagrams(), 1u);
  EXPECT_EQ(wild->rx_datagrams(), 0u);
  deliver(bytes_of("b"), 6700, kPeerIp, 5000, kSubnetBcast);
  EXPECT_EQ(wild->rx_datagrams(), 1u);
  EXPECT_EQ(exact->rx_datagrams(), 1u);  // bound to the unicast address: no broadcasts
  EXPECT_EQ(sink.size(), 0u);
}

TEST_F(UdpFixture, ReuseportSpreadsFlowsAndKeepsEachFlowOnOneSocket) {
  UdpSocket* socks[4];
  for (auto& s : socks) {
    s = udp.open();
    s->set_reuseport(true);
    ASSERT_TRUE(s->bind({Ipv4Addr::any(), 6800}).has_value());
  }
  for (uint16_t port = 1000; port < 1200; ++port) deliver(bytes_of("x"), 6800, kPeerIp, port);
  size_t total = 0;
  for (auto* s : socks) {
    EXPECT_GT(s->rx_datagrams(), 20u);  // 200 flows over 4 sockets
    total += s->rx_datagrams();
  }
  EXPECT_EQ(total, 200u);
  // The same flow again lands where it landed before.
  UdpSocket* first = nullptr;
  for (auto* s : socks) {
    uint8_t buf[4];
    while (s->recv_from(buf).has_value()) {}
  }
  for (int i = 0; i < 5; ++i) deliver(bytes_of("y"), 6800, kPeerIp, 4242);
  for (auto* s : socks) {
    if (s->rx_datagrams() > 0) {
      EXPECT_EQ(first, nullptr);
      first = s;
      EXPECT_EQ(s->rx_datagrams(), 5u);
    }
  }
}

// ---- errors, readiness, observers ---------------------------------------------------

TEST_F(UdpFixture, SoErrorAfterPortUnreachableOnConnectedSocket) {
  CountingObserver obs;
  int cookie = 0;
  UdpSocket* s = udp.open();
  s->set_observer(&obs, &cookie);
  ASSERT_TRUE(s->connect({kPeerIp, 53}).has_value());
  ASSERT_TRUE(s->send(at_ms(0), bytes_of("query")).has_value());
  ASSERT_EQ(sink.size(), 1u);
  // The peer answers with port unreachable quoting our datagram.
  const auto& sent = sink.last();
  std::vector<uint8_t> quote(sent.begin() + 14, sent.begin() + 14 + 28);
  auto m = test::icmp_message(icmptype::kDestUnreachable, icmpcode::kPortUnreachable, 0, quote);
  Ipv4Repr h;
  h.src = kPeerIp;
  h.dst = kOurIp;
  h.protocol = ipproto::kIcmp;
  auto f = test::ipv4_frame(kOurMac, kPeerMac, h, m);
  stack.receive_frame(at_ms(1), Bytes(f.data(), f.size()));

  EXPECT_EQ(obs.calls, 1);
  EXPECT_EQ(obs.last_cookie, &cookie);
  EXPECT_EQ(s->pending_error(), SockError::ConnectionRefused);
  EXPECT_TRUE(s->readiness() & ev::kErr);
  // The next send reports it once (and clears it); the one after succeeds.
  EXPECT_EQ(s->send(at_ms(2), bytes_of("again")).error(), SockError::ConnectionRefused);
  EXPECT_FALSE(s->readiness() & ev::kErr);
  EXPECT_TRUE(s->send(at_ms(2), bytes_of("again")).has_value());
  // recv reports a pending error before any data.
  stack.receive_frame(at_ms(3), Bytes(f.data(), f.size()));
  deliver(bytes_of("late reply"), s->local().port, kPeerIp, 53);
  uint8_t buf[32];
  EXPECT_EQ(s->recv_from(buf).error(), SockError::ConnectionRefused);
  EXPECT_TRUE(s->recv_from(buf).has_value());
  EXPECT_EQ(s->take_error(), std::nullopt);
}

TEST_F(UdpFixture, ReadinessAndObserverOnEachDatagram) {
  CountingObserver obs;
  UdpSocket* s = bound(7000);
  EXPECT_EQ(s->readiness(), ev::kOut | ev::kWrNorm);
  s->set_observer(&obs, nullptr);
  deliver(bytes_of("a"), 7000);
  EXPECT_EQ(s->readiness(), ev::kOut | ev::kWrNorm | ev::kIn | ev::kRdNorm);
  deliver(bytes_of("b"), 7000);
  EXPECT_EQ(obs.calls, 2);  // every datagram is an event for edge-triggered waiters
  uint8_t buf[4];
  ASSERT_TRUE(s->recv_from(buf).has_value());
  EXPECT_TRUE(s->readiness() & ev::kIn);
  ASSERT_TRUE(s->recv_from(buf).has_value());
  EXPECT_FALSE(s->readiness() & ev::kIn);
  // A dropped datagram is not an event.
  s->set_rcvbuf(0);
  std::vector<uint8_t> big(5000);
  deliver(big, 7000);
  deliver(big, 7000);
  EXPECT_EQ(obs.calls, 3);
}

TEST_F(UdpFixture, CloseFreesThePort) {
  UdpSocket* s = bound(7000);
  deliver(bytes_of("a"), 7000);
  udp.close(s);
  EXPECT_EQ(udp.socket_count(), 0u);
  deliver(bytes_of("b"), 7000);
  EXPECT_EQ(c.udp_no_ports, 1u);
  EXPECT_NE(bound(7000), nullptr);
}

TEST_F(UdpFixture, BadChecksumCounted) {
  UdpSocket* s = bound(7000);
  auto d = test::udp_datagram(kPeerIp, 5000, kOurIp, 7000, bytes_of("data"));
  d[8] ^= 0xff;  // corrupt payload
  Ipv4Repr h;
  h.src = kPeerIp;
  h.dst = kOurIp;
  h.protocol = ipproto::kUdp;
  auto f = test::ipv4_frame(kOurMac, kPeerMac, h, d);
  stack.receive_frame(at_ms(0), Bytes(f.data(), f.size()));
  EXPECT_EQ(s->rx_datagrams(), 0u);
  EXPECT_EQ(c.udp_in_csum_errors, 1u);
  EXPECT_EQ(c.udp_in_errors, 1u);
  EXPECT_EQ(sink.size(), 0u);  // no ICMP for a corrupt datagram
}

}  // namespace

// ---- ancillary data: per-datagram metadata and per-datagram send overrides ----------

namespace {
// A datagram from kPeerIp:5000 with the given IP TTL and TOS, at `now`.
void deliver_meta(Stack& stack, Instant now, Bytes payload, uint16_t dport, uint8_t ttl, uint8_t tos,
                  Ipv4Addr dst = kOurIp) {
  auto d = test::udp_datagram(kPeerIp, 5000, dst, dport, payload);
  Ipv4Repr h;
  h.src = kPeerIp;
  h.dst = dst;
  h.protocol = ipproto::kUdp;
  h.ttl = ttl;
  h.tos = tos;
  MacAddr eth_dst = stack.ip().is_broadcast(dst) ? MacAddr::broadcast() : kOurMac;
  auto f = test::ipv4_frame(eth_dst, kPeerMac, h, d);
  stack.receive_frame(now, Bytes(f.data(), f.size()));
}
}  // namespace

TEST_F(UdpFixture, RxMetadataKeptPerDatagramAcrossRingWrap) {
  UdpSocket* s = bound(7000);
  s->set_rcvbuf(2000);  // room for two; the ring (~70 KB) wraps a few times
  std::vector<uint8_t> payload(1000, 0x5a);
  uint8_t buf[2000];
  for (int i = 0; i < 200; ++i) {
    // IP_PKTINFO on from datagram 100: only those queued after record spec_dst.
    if (i == 100) s->set_recv_pktinfo(true);
    deliver_meta(stack, at_ms(i), Bytes(payload.data(), 700 + size_t(i % 300)), 7000, uint8_t(1 + i),
                 uint8_t(i * 4));
    if (i % 2 == 0) continue;  // two queued at a time
    for (int j = i - 1; j <= i; ++j) {
      auto r = s->recv_from(buf);
      ASSERT_TRUE(r.has_value()) << j;
      ASSERT_EQ(r->datagram_len, 700u + size_t(j % 300)) << j;
      EXPECT_EQ(r->meta.ttl, uint8_t(1 + j)) << j;
      EXPECT_EQ(r->meta.tos, uint8_t(j * 4)) << j;
      EXPECT_EQ(r->meta.dst, kOurIp);
      EXPECT_EQ(r->meta.dst_port, 7000);
      EXPECT_EQ(r->meta.arrival, at_ms(j)) << j;
      EXPECT_EQ(r->meta.pktinfo, j >= 100) << j;
      EXPECT_EQ(r->meta.spec_dst, j >= 100 ? kOurIp : Ipv4Addr{}) << j;
    }
  }
}

TEST_F(UdpFixture, RxMetadataOfPeekAndBroadcast) {
  UdpSocket* s = bound(7000);
  s->set_recv_pktinfo(true);
  deliver_meta(stack, at_ms(5), bytes_of("b"), 7000, 33, 0x10, kSubnetBcast);
  uint8_t buf[16];
  auto p = s->recv_from(buf, /*peek=*/true);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->meta.ttl, 33);
  auto r = s->recv_from(buf);
  ASSERT_TRUE(r.has_value());
  // fib_compute_spec_dst: a broadcast is answered from our address.
  EXPECT_EQ(r->meta.dst, kSubnetBcast);
  EXPECT_EQ(r->meta.spec_dst, kOurIp);
  EXPECT_EQ(r->meta.tos, 0x10);
  EXPECT_EQ(r->meta.arrival, at_ms(5));
}

TEST_F(UdpFixture, TxOverridesShapeOneDatagram) {
  UdpSocket* s = bound(7000);
  UdpSocket::TxOverrides ov;
  ov.ttl = 7;
  ov.tos = 0x28;
  ov.src = Ipv4Addr{};  // IP_PKTINFO spec_dst 0: the route's source
  ASSERT_TRUE(s->send_to(at_ms(0), bytes_of("a"), Endpoint{kPeerIp, 9000}, &ov).has_value());
  auto p = sink.ipv4();
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->hdr.ttl, 7);
  EXPECT_EQ(p->hdr.tos, 0x28);
  EXPECT_EQ(p->hdr.src, kOurIp);
  ASSERT_TRUE(s->send_to(at_ms(0), bytes_of("b"), Endpoint{kPeerIp, 9000}).has_value());
  p = sink.ipv4();
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->hdr.ttl, 64);  // the socket's settings again
  EXPECT_EQ(p->hdr.tos, 0);
  sink.clear();
  UdpSocket::TxOverrides bad;
  bad.src = kPeer2Ip;  // not ours
  EXPECT_EQ(s->send_to(at_ms(0), bytes_of("c"), Endpoint{kPeerIp, 9000}, &bad).error(), SockError::NetUnreachable);
  bad.src = Ipv4Addr::from_octets(224, 0, 0, 1);
  EXPECT_EQ(s->send_to(at_ms(0), bytes_of("c"), Endpoint{kPeerIp, 9000}, &bad).error(), SockError::InvalidArgument);
  bad.src = Ipv4Addr::broadcast();
  EXPECT_EQ(s->send_to(at_ms(0), bytes_of("c"), Endpoint{kPeerIp, 9000}, &bad).error(), SockError::InvalidArgument);
  EXPECT_EQ(sink.size(), 0u);
}
