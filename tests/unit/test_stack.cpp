// Two Stacks wired back to back: ARP resolution, UDP exchange, ping,
// fragmentation end to end, and the frame-level filters of receive_frame.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "stack/stack.hpp"
#include "stack/tcp/tcp_socket.hpp"
#include "stack/wire/checksum.hpp"
#include "tests/support/capture_sink.hpp"

using namespace xs;
using xs::test::CaptureSink;

namespace {

constexpr MacAddr kMacA{{0x02, 0, 0, 0, 0, 0x0a}};
constexpr MacAddr kMacB{{0x02, 0, 0, 0, 0, 0x0b}};
constexpr Ipv4Addr kIpA = Ipv4Addr::from_octets(198, 18, 0, 1);
constexpr Ipv4Addr kIpB = Ipv4Addr::from_octets(198, 18, 0, 2);

Instant at_ms(int64_t ms) { return Instant{ms * 1000}; }
Bytes bytes_of(const std::string& s) { return Bytes(reinterpret_cast<const uint8_t*>(s.data()), s.size()); }

StackConfig config(MacAddr mac, Ipv4Addr ip) {
  StackConfig c;
  c.mac = mac;
  c.addr = {ip, 24};
  return c;
}

struct BackToBack : ::testing::Test {
  CaptureSink sink_a, sink_b;
  SeededRandom rng_a{1}, rng_b{2};
  Stack a{config(kMacA, kIpA), rng_a, sink_a};
  Stack b{config(kMacB, kIpB), rng_b, sink_b};
  size_t a_to_b = 0, b_to_a = 0;

  // Delivers queued frames both ways until the link is quiet.
  void pump(Instant now) {
    for (int round = 0; round < 100; ++round) {
      auto fa = sink_a.take();
      auto fb = sink_b.take();
      if (fa.empty() && fb.empty()) return;
      for (auto& f : fa) {
        ++a_to_b;
        b.receive_frame(now, Bytes(f.data(), f.size()));
      }
      for (auto& f : fb) {
        ++b_to_a;
        a.receive_frame(now, Bytes(f.data(), f.size()));
      }
    }
    FAIL() << "link never went quiet";
  }
};

TEST_F(BackToBack, ArpThenUdpExchange) {
  UdpSocket* server = b.udp().open();
  ASSERT_TRUE(server->bind({Ipv4Addr::any(), 5353}).has_value());
  UdpSocket* client = a.udp().open();
  ASSERT_TRUE(client->connect({kIpB, 5353}).has_value());

  ASSERT_TRUE(client->send(at_ms(0), bytes_of("ping over udp")).has_value());
  // Nothing resolved yet: the datagram waits for ARP.
  ASSERT_EQ(sink_a.size(), 1u);
  ASSERT_TRUE(sink_a.arp().has_value());
  EXPECT_EQ(a.arp().state_of(kIpB), ArpCache::State::Incomplete);
  pump(at_ms(1));
  EXPECT_EQ(a.arp().state_of(kIpB), ArpCache::State::Reachable);
  EXPECT_EQ(b.arp().state_of(kIpA), ArpCache::State::Stale);  // learned from the request
  EXPECT_EQ(a_to_b, 2u);  // request, then the queued datagram
  EXPECT_EQ(b_to_a, 1u);  // reply

  uint8_t buf[64];
  auto r = server->recv_from(buf);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), r->copied), "ping over udp");
  EXPECT_EQ(r->from, client->local());

  ASSERT_TRUE(server->send_to(at_ms(2), bytes_of("pong"), r->from).has_value());
  pump(at_ms(2));
  auto back = client->recv_from(buf);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), back->copied), "pong");
  EXPECT_EQ(back->from, (Endpoint{kIpB, 5353}));
  EXPECT_EQ(a.counters().udp_in_datagrams, 1u);
  EXPECT_EQ(b.counters().udp_in_datagrams, 1u);
  EXPECT_EQ(a.counters().arp_tx_requests, 1u);
  // B re-verified A's stale entry with a unicast request when it first used it.
  EXPECT_EQ(b.counters().arp_tx_requests, 1u);
  EXPECT_EQ(b.arp().state_of(kIpA), ArpCache::State::Reachable);
}

TEST_F(BackToBack, ClosedPortGivesConnectionRefused) {
  UdpSocket* client = a.udp().open();
  ASSERT_TRUE(client->connect({kIpB, 9}).has_value());
  ASSERT_TRUE(client->send(at_ms(0), bytes_of("anyone?")).has_value());
  pump(at_ms(0));
  EXPECT_EQ(b.counters().udp_no_ports, 1u);
  EXPECT_EQ(b.counters().icmp_out_dest_unreachs, 1u);
  EXPECT_EQ(a.counters().icmp_in_dest_unreachs, 1u);
  EXPECT_EQ(client->take_error(), SockError::ConnectionRefused);
}

TEST_F(BackToBack, PingGetsEchoReply) {
  const uint8_t data[] = {'x', 's', 't', 'a', 'c', 'k'};
  IpTxParams p{kIpA, kIpB, ipproto::kIcmp};
  auto send_ping = [&](Instant now) {
    MutBytes out = a.ip().begin(now, p, kIcmpHeaderLen + sizeof data);
    ASSERT_FALSE(out.empty());
    emit_icmp({icmptype::kEchoRequest, 0, 0xbeef0001, Bytes(data, sizeof data)}, out);
    a.ip().commit();
  };
  send_ping(at_ms(0));
  // A's view of the reply: capture what B sends back before A consumes it.
  pump(at_ms(0));
  EXPECT_EQ(b.counters().icmp_in_echos, 1u);
  EXPECT_EQ(b.counters().icmp_out_echo_reps, 1u);
  EXPECT_EQ(a.counters().icmp_in_msgs, 1u);

  send_ping(at_ms(1));
  ASSERT_EQ(sink_a.size(), 1u);  // resolved now: straight out
  auto req = sink_a.take();
  b.receive_frame(at_ms(1), Bytes(req[0].data(), req[0].size()));
  auto reply = sink_b.icmp();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->type, icmptype::kEchoReply);
  EXPECT_EQ(reply->echo_ident(), 0xbeef);
  EXPECT_EQ(reply->echo_seq(), 1);
  EXPECT_EQ(std::vector<uint8_t>(reply->payload.begin(), reply->payload.end()),
            std::vector<uint8_t>(data, data + sizeof data));
  EXPECT_EQ(sink_b.ipv4()->hdr.dst, kIpA);
}

TEST_F(BackToBack, LargeDatagramFragmentsAndReassembles) {
  UdpSocket* server = b.udp().open();
  ASSERT_TRUE(server->bind({kIpB, 4000}).has_value());
  UdpSocket* client = a.udp().open();
  std::vector<uint8_t> big(20000);
  for (size_t i = 0; i < big.size(); ++i) big[i] = uint8_t(i * 31 + 7);
  ASSERT_TRUE(client->send_to(at_ms(0), big, Endpoint{kIpB, 4000}).has_value());
  pump(at_ms(0));
  EXPECT_EQ(a.counters().ip_frag_creates, 14u);  // ceil(20008 / 1480)
  EXPECT_EQ(b.counters().ip_reasm_oks, 1u);
  std::vector<uint8_t> out(30000);
  auto r = server->recv_from(out);
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->datagram_len, big.size());
  EXPECT_TRUE(std::equal(big.begin(), big.end(), out.begin()));
}

TEST_F(BackToBack, UnresolvableNeighbourFailsAfterThreeRequests) {
  UdpSocket* client = a.udp().open();
  const Ipv4Addr ghost = Ipv4Addr::from_octets(198, 18, 0, 99);
  ASSERT_TRUE(client->send_to(at_ms(0), bytes_of("?"), Endpoint{ghost, 1}).has_value());
  Instant now = at_ms(0);
  for (int i = 0; i < 10 && a.poll_at() != kNever; ++i) {
    now = a.poll_at();
    a.poll(now);
  }
  EXPECT_EQ(now, at_ms(3000));
  EXPECT_EQ(a.counters().arp_tx_requests, 3u);
  EXPECT_EQ(a.counters().arp_resolve_failed, 1u);
  EXPECT_EQ(a.poll_at(), kNever);
}

// Linux (ipv4_link_failure): when ARP gives up, the packets that waited for it
// come back to their sockets as ICMP host unreachable, so a connect to a
// silent on-link address fails with EHOSTUNREACH after ~3 s (not ETIMEDOUT
// minutes later). For UDP host unreachable is a soft error, which Linux does
// not report without IP_RECVERR (icmp_err_convert), so neither do we.
TEST_F(BackToBack, UnresolvableNeighbourFailsConnectWithHostUnreachable) {
  const Ipv4Addr ghost = Ipv4Addr::from_octets(198, 18, 0, 77);
  TcpSocket* s = a.tcp().open();
  auto r = s->connect(at_ms(0), Endpoint{ghost, 80});
  ASSERT_FALSE(r.has_value());
  ASSERT_EQ(r.error(), SockError::InProgress);
  UdpSocket* u = a.udp().open();
  ASSERT_TRUE(u->connect(Endpoint{ghost, 53}).has_value());
  ASSERT_TRUE(u->send(at_ms(0), bytes_of("q")).has_value());
  Instant now = at_ms(0);
  for (int i = 0; i < 20 && a.poll_at() <= at_ms(5000); ++i) {
    now = a.poll_at();
    a.poll(now);
  }
  EXPECT_EQ(a.counters().arp_resolve_failed, 1u);
  EXPECT_EQ(s->state(), TcpState::Closed);
  EXPECT_EQ(s->pending_error(), SockError::HostUnreachable);
  EXPECT_EQ(u->pending_error(), std::nullopt);
  EXPECT_TRUE(sink_a.take().size() >= 3u);  // the three ARP requests, nothing else of ours leaked
  s->close(now);
  a.udp().close(u);
}

TEST(StackFrames, ReceiveFrameFilters) {
  CaptureSink sink;
  SeededRandom rng(1);
  Stack s(config(kMacA, kIpA), rng, sink);
  auto& c = s.counters();
  std::vector<uint8_t> tiny(10, 0);
  s.receive_frame(at_ms(0), Bytes(tiny.data(), tiny.size()));
  EXPECT_EQ(c.eth_rx_drop_short, 1u);

  auto arp_req = test::arp_frame(MacAddr::broadcast(), {ArpOp::Request, kMacB, kIpB, MacAddr{}, kIpA});
  // Same frame sent to another host's MAC: not for us.
  auto other = arp_req;
  std::memcpy(other.data(), kMacB.b.data(), 6);
  s.receive_frame(at_ms(0), Bytes(other.data(), other.size()));
  EXPECT_EQ(c.eth_rx_drop_not_for_us, 1u);
  EXPECT_EQ(c.arp_rx, 0u);
  // IPv6 ethertype.
  auto v6 = arp_req;
  store_be16(&v6[12], ethertype::kIpv6);
  s.receive_frame(at_ms(0), Bytes(v6.data(), v6.size()));
  EXPECT_EQ(c.eth_rx_drop_ethertype, 1u);
  // The broadcast ARP request itself is taken and answered.
  s.receive_frame(at_ms(0), Bytes(arp_req.data(), arp_req.size()));
  EXPECT_EQ(c.arp_rx, 1u);
  EXPECT_EQ(c.arp_tx_replies, 1u);
  EXPECT_EQ(c.eth_rx_frames, 4u);
  ASSERT_EQ(sink.size(), 1u);
  EXPECT_EQ(sink.eth()->hdr.dst, kMacB);
}

TEST(StackFrames, PollAtCombinesLayers) {
  CaptureSink sink;
  SeededRandom rng(1);
  Stack s(config(kMacA, kIpA), rng, sink);
  EXPECT_EQ(s.poll_at(), kNever);
  // A fragment: reassembly deadline at 30 s.
  uint8_t payload[16] = {};
  Ipv4Repr h;
  h.src = kIpB;
  h.dst = kIpA;
  h.protocol = ipproto::kUdp;
  h.more_frags = true;
  auto f = test::ipv4_frame(kMacA, kMacB, h, payload);
  s.receive_frame(at_ms(0), Bytes(f.data(), f.size()));
  EXPECT_EQ(s.poll_at(), at_ms(30000));
  // An ARP resolution: retry deadline at 1 s wins.
  IpTxParams p{kIpA, Ipv4Addr::from_octets(198, 18, 0, 50), 253};
  ASSERT_FALSE(s.ip().begin(at_ms(10), p, 4).empty());
  s.ip().commit();
  EXPECT_EQ(s.poll_at(), at_ms(1010));
}

}  // namespace
