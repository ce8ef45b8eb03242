// Connection establishment (RFC 9293 3.5): passive open, active open,
// simultaneous open, and RST/ACK handling in SYN-SENT (3.10.7.3).
#include <gtest/gtest.h>

#include "tests/support/tcp_test_util.hpp"

namespace xs::test {
namespace {

// LISTEN -> SYN-RECEIVED -> ESTABLISHED.
TEST(TcpHandshake, PassiveOpenSynAckThenAckEstablishes) {
  TcpHarness h;
  TcpSocket* l = h.listener();
  h.recv(at_ms(0), TcpHarness::default_syn());
  Sent sa = h.expect_one();
  check(sa, {.flags = kS | kA, .ack = kRemoteIss + 1, .window = 65535, .payload = ""});
  EXPECT_EQ(sa.src_port, kLocalPort);
  EXPECT_EQ(sa.dst_port, kRemotePort);
  // The embryonic connection is not acceptable yet.
  EXPECT_FALSE(l->accept(at_ms(1)).has_value());
  EXPECT_EQ(l->readiness(), 0u);
  h.recv(at_ms(5), {.flags = kA, .seq = kRemoteIss + 1, .ack = sa.seq + 1});
  h.expect_none();
  EXPECT_EQ(l->readiness(), ev::kIn | ev::kRdNorm);
  auto c = l->accept(at_ms(6));
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ((*c)->state(), TcpState::Established);
  EXPECT_EQ((*c)->remote().port, kRemotePort);
  EXPECT_EQ((*c)->snd_mss(), 1460u);
}

// A retransmitted SYN in SYN-RECEIVED gets the same SYN-ACK again.
TEST(TcpHandshake, SynRetransmitInSynReceivedRepeatsSynAck) {
  TcpHarness h;
  h.listener();
  h.recv(at_ms(0), TcpHarness::default_syn());
  Sent sa = h.expect_one();
  h.recv(at_ms(100), TcpHarness::default_syn());
  Sent again = h.expect_one();
  check(again, {.flags = kS | kA, .seq = sa.seq, .ack = kRemoteIss + 1});
}

// An ACK in SYN-RECEIVED that does not acknowledge our SYN gets a RST (3.10.7.4 fifth check).
TEST(TcpHandshake, BadAckInSynReceivedGetsRst) {
  TcpHarness h;
  TcpSocket* l = h.listener();
  h.recv(at_ms(0), TcpHarness::default_syn());
  Sent sa = h.expect_one();
  h.recv(at_ms(1), {.flags = kA, .seq = kRemoteIss + 1, .ack = sa.seq + 7});
  Sent r = h.expect_one();
  check(r, {.flags = kR, .seq = sa.seq + 7});
  EXPECT_FALSE(l->accept(at_ms(2)).has_value());
}

// CLOSED -> SYN-SENT -> ESTABLISHED.
TEST(TcpHandshake, ActiveOpen) {
  TcpHarness h;
  TcpSocket* s = h.tcp.open();
  ASSERT_TRUE(s->bind({kLocalIp, kLocalPort}).has_value());
  auto r = s->connect(at_ms(0), {kRemoteIp, kRemotePort});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), SockError::InProgress);
  EXPECT_EQ(s->state(), TcpState::SynSent);
  EXPECT_EQ(s->readiness(), 0u);  // Linux tcp_poll: nothing while SYN-SENT
  Sent syn = h.expect_one();
  check(syn, {.flags = kS, .window = 65535, .payload = ""});
  EXPECT_EQ(syn.src_port, kLocalPort);
  EXPECT_EQ(syn.dst_port, kRemotePort);
  Seg sa = TcpHarness::default_syn();
  sa.flags = kS | kA;
  sa.ack = syn.seq + 1;
  h.recv(at_ms(20), sa);
  Sent ack = h.expect_one();
  check(ack, {.flags = kA, .seq = syn.seq + 1, .ack = kRemoteIss + 1, .payload = ""});
  EXPECT_EQ(s->state(), TcpState::Established);
  EXPECT_EQ(s->readiness(), ev::kOut | ev::kWrNorm);
  EXPECT_EQ(h.counters.tcp_active_opens, 1u);
}

// shutdown() of a connect in progress abandons it (inet_shutdown ->
// tcp_disconnect): CLOSED, and SO_ERROR/POLLERR report ECONNRESET.
TEST(TcpHandshake, ShutdownInSynSentReportsReset) {
  TcpHarness h;
  TcpSocket* s = h.tcp.open();
  (void)s->connect(at_ms(0), {kRemoteIp, kRemotePort});
  h.expect_one();
  ASSERT_TRUE(s->shutdown(at_ms(5), true, true).has_value());
  EXPECT_EQ(s->state(), TcpState::Closed);
  EXPECT_NE(s->readiness() & ev::kErr, 0u);
  EXPECT_EQ(s->take_error(), SockError::ConnectionReset);
}

// A connect to port 0 goes out; Linux's peer answers with an RST from port 0,
// which refuses it (ECONNREFUSED) like any other.
TEST(TcpHandshake, ConnectToPortZeroRefusedByRstFromPortZero) {
  TcpHarness h;
  TcpSocket* s = h.tcp.open();
  ASSERT_TRUE(s->bind({kLocalIp, kLocalPort}).has_value());
  (void)s->connect(at_ms(0), {kRemoteIp, 0});
  Sent syn = h.expect_one();
  EXPECT_EQ(syn.dst_port, 0);
  h.recv(at_ms(1), {.flags = kR | kA, .seq = 0, .ack = syn.seq + 1}, 0, kLocalPort);
  EXPECT_EQ(s->state(), TcpState::Closed);
  EXPECT_EQ(s->take_error(), SockError::ConnectionRefused);
}

// ip_route_connect looks the route up even when bind() named the source:
// no route, ENETUNREACH at once, nothing sent.
TEST(TcpHandshake, BoundConnectWithoutRouteIsUnreachable) {
  TcpHarness h;
  h.ip.no_route = Ipv4Addr::from_octets(198, 19, 5, 5);
  TcpSocket* s = h.tcp.open();
  ASSERT_TRUE(s->bind({kLocalIp, kLocalPort}).has_value());
  auto r = s->connect(at_ms(0), {*h.ip.no_route, 80});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), SockError::NetUnreachable);
  h.expect_none();
}

// A failed blocking connect forgets the source address it picked (Linux:
// tcp_disconnect, inet_reset_saddr) but not one bind() named.
TEST(TcpHandshake, FailedConnectForgetsOnlyAPickedSource) {
  for (bool named : {false, true}) {
    TcpHarness h;
    TcpSocket* s = h.tcp.open();
    if (named) {
      ASSERT_TRUE(s->bind({kLocalIp, 0}).has_value());
    }
    (void)s->connect(at_ms(0), {kRemoteIp, kRemotePort});
    Sent syn = h.expect_one();
    EXPECT_EQ(s->local().addr, kLocalIp);
    h.recv(at_ms(1), {.flags = kR | kA, .seq = 0, .ack = syn.seq + 1}, kRemotePort, syn.src_port);
    ASSERT_EQ(s->state(), TcpState::Closed);
    s->forget_connect_source();
    EXPECT_EQ(s->local().addr, named ? kLocalIp : Ipv4Addr::any()) << "named " << named;
    EXPECT_EQ(s->local().port, syn.src_port) << "the port stays, as on Linux";
  }
}

// Simultaneous open (RFC 9293 figure 8): SYN-SENT receives a SYN, answers
// SYN-ACK, and the peer's SYN-ACK completes the handshake. Linux
// (tcp_validate_incoming) passes that SYN-ACK in SYN-RECV and acknowledges it.
TEST(TcpHandshake, SimultaneousOpenPeerSynAck) {
  TcpHarness h;
  TcpSocket* s = h.tcp.open();
  ASSERT_TRUE(s->bind({kLocalIp, kLocalPort}).has_value());
  (void)s->connect(at_ms(0), {kRemoteIp, kRemotePort});
  Sent syn = h.expect_one();
  h.recv(at_ms(10), {.flags = kS, .seq = kRemoteIss, .mss = 1460});
  Sent sa = h.expect_one();
  check(sa, {.flags = kS | kA, .seq = syn.seq, .ack = kRemoteIss + 1});
  EXPECT_EQ(s->state(), TcpState::SynReceived);
  h.recv(at_ms(20), {.flags = kS | kA, .seq = kRemoteIss, .ack = syn.seq + 1, .mss = 1460});
  EXPECT_EQ(s->state(), TcpState::Established);
  Sent ack = h.expect_one();
  check(ack, {.flags = kA, .seq = syn.seq + 1, .ack = kRemoteIss + 1});
  // Data flows afterwards.
  send_str(s, at_ms(30), "hi");
  check(h.expect_one(), {.flags = kA | kP, .seq = syn.seq + 1, .ack = kRemoteIss + 1, .payload = "hi"});
}

// Simultaneous open where the peer answers our SYN-ACK with a plain ACK.
TEST(TcpHandshake, SimultaneousOpenPeerAck) {
  TcpHarness h;
  TcpSocket* s = h.tcp.open();
  ASSERT_TRUE(s->bind({kLocalIp, kLocalPort}).has_value());
  (void)s->connect(at_ms(0), {kRemoteIp, kRemotePort});
  Sent syn = h.expect_one();
  h.recv(at_ms(10), {.flags = kS, .seq = kRemoteIss, .mss = 1460});
  h.expect_one();
  h.recv(at_ms(20), {.flags = kA, .seq = kRemoteIss + 1, .ack = syn.seq + 1});
  h.expect_none();
  EXPECT_EQ(s->state(), TcpState::Established);
}

// RFC 9293 3.10.7.3: RST with an acceptable ACK in SYN-SENT: connection refused.
TEST(TcpHandshake, RstInSynSentWithAcceptableAckRefuses) {
  TcpHarness h;
  TcpSocket* s = h.tcp.open();
  (void)s->connect(at_ms(0), {kRemoteIp, kRemotePort});
  Sent syn = h.expect_one();
  h.recv(at_ms(5), {.flags = kR | kA, .seq = 0, .ack = syn.seq + 1, .window = 0}, kRemotePort, syn.src_port);
  h.expect_none();  // never answer a RST
  EXPECT_EQ(s->state(), TcpState::Closed);
  EXPECT_TRUE(s->readiness() & ev::kErr);
  EXPECT_TRUE(s->readiness() & ev::kHup);
  EXPECT_EQ(s->take_error(), SockError::ConnectionRefused);
  EXPECT_EQ(s->take_error(), std::nullopt);
  EXPECT_EQ(h.counters.tcp_attempt_fails, 1u);
}

// RST without ACK, or with an unacceptable ACK, in SYN-SENT is dropped.
TEST(TcpHandshake, RstInSynSentWithoutAcceptableAckIgnored) {
  TcpHarness h;
  TcpSocket* s = h.tcp.open();
  (void)s->connect(at_ms(0), {kRemoteIp, kRemotePort});
  Sent syn = h.expect_one();
  h.recv(at_ms(5), {.flags = kR, .seq = 5}, kRemotePort, syn.src_port);
  h.recv(at_ms(6), {.flags = kR | kA, .seq = 5, .ack = syn.seq + 9}, kRemotePort, syn.src_port);
  h.expect_none();
  EXPECT_EQ(s->state(), TcpState::SynSent);
  EXPECT_EQ(s->pending_error(), std::nullopt);
}

// An ACK that does not acknowledge our SYN: RST with seq = SEG.ACK, stay in SYN-SENT.
TEST(TcpHandshake, BadAckInSynSentGetsRst) {
  TcpHarness h;
  TcpSocket* s = h.tcp.open();
  (void)s->connect(at_ms(0), {kRemoteIp, kRemotePort});
  Sent syn = h.expect_one();
  h.recv(at_ms(5), {.flags = kS | kA, .seq = kRemoteIss, .ack = syn.seq + 100}, kRemotePort, syn.src_port);
  check(h.expect_one(), {.flags = kR, .seq = syn.seq + 100});
  EXPECT_EQ(s->state(), TcpState::SynSent);
  // ACK = ISS is not acceptable either (SEG.ACK =< ISS).
  h.recv(at_ms(6), {.flags = kA, .seq = kRemoteIss, .ack = syn.seq}, kRemotePort, syn.src_port);
  check(h.expect_one(), {.flags = kR, .seq = syn.seq});
  EXPECT_EQ(s->state(), TcpState::SynSent);
}

// Handshake completes with the SYN-ACK's data-less ACK; data in the third
// segment of a passive open is delivered.
TEST(TcpHandshake, DataOnHandshakeAck) {
  TcpHarness h;
  TcpSocket* l = h.listener();
  h.recv(at_ms(0), TcpHarness::default_syn());
  Sent sa = h.expect_one();
  h.recv(at_ms(1), {.flags = kA | kP, .seq = kRemoteIss + 1, .ack = sa.seq + 1, .payload = "GET"});
  check(h.expect_one(), {.flags = kA, .seq = sa.seq + 1, .ack = kRemoteIss + 4});
  auto c = l->accept(at_ms(2));
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(recv_str(*c, at_ms(2)), "GET");
}

}  // namespace
}  // namespace xs::test
