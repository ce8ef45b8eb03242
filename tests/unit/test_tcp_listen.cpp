// Listening sockets (Linux semantics): accept-queue overflow, SYN cookies
// when the SYN queue is full, TCP_DEFER_ACCEPT.
#include <gtest/gtest.h>

#include "tests/support/tcp_test_util.hpp"

namespace xs::test {
namespace {

Seg syn_from(uint32_t seq) {
  Seg s = TcpHarness::default_syn();
  s.seq = seq;
  return s;
}

// Full handshake from `port`; returns our ISS.
uint32_t handshake(TcpHarness& h, Instant t, uint16_t port, Seg syn = TcpHarness::default_syn()) {
  h.recv(t, syn, port);
  Sent sa = h.expect_one();
  EXPECT_EQ(sa.flags, kS | kA);
  h.recv(t, {.flags = kA, .seq = syn.seq + 1, .ack = sa.seq + 1}, port);
  return sa.seq;
}

// Linux: the accept queue holds backlog + 1 (sk_acceptq_is_full uses >);
// a SYN arriving when it is full is dropped and counted.
TEST(TcpListen, AcceptQueueOverflowDropsSyn) {
  TcpHarness h;
  TcpSocket* l = h.listener(1);
  handshake(h, at_ms(0), 1000);
  handshake(h, at_ms(1), 1001);
  h.expect_none();
  EXPECT_EQ(l->accept_queue_len(), 2u);
  h.recv(at_ms(2), TcpHarness::default_syn(), 1002);
  h.expect_none();
  EXPECT_EQ(h.counters.tcp_listen_overflows, 1u);
  EXPECT_EQ(h.counters.tcp_listen_drops, 1u);
  // Room again after accept(): the retried SYN is answered.
  ASSERT_TRUE(l->accept(at_ms(3)).has_value());
  h.recv(at_ms(4), TcpHarness::default_syn(), 1002);
  check(h.expect_one(), {.flags = kS | kA, .ack = kRemoteIss + 1});
}

// SYN queue full: the listener answers with a SYN cookie and keeps no state.
TEST(TcpListen, SynCookieWhenSynQueueFull) {
  TcpHarness h;
  TcpSocket* l = h.listener(1);
  h.recv(at_ms(0), TcpHarness::default_syn(), 2000);  // stays in the SYN queue
  h.expect_one();
  ASSERT_EQ(TcpSocketTestAccess::syn_queue_len(*l), 1u);
  const size_t sockets = h.tcp.socket_count();
  Seg syn = syn_with_all_options(500);
  syn.seq = 77777;
  syn.mss = 1400;
  syn.wscale = 5;
  h.recv(at_ms(10), syn, 2001);
  Sent sa = h.expect_one();
  check(sa, {.flags = kS | kA, .ack = 77778, .window = 65535});
  EXPECT_EQ(sa.opts.mss, 1460);
  EXPECT_EQ(sa.opts.wscale, 7);
  EXPECT_TRUE(sa.opts.sack_permitted);
  ASSERT_TRUE(sa.opts.ts.has_value());
  EXPECT_EQ(sa.opts.ts->ecr, 500u);
  EXPECT_EQ(h.counters.tcp_syncookies_sent, 1u);
  EXPECT_EQ(h.tcp.socket_count(), sockets);  // no state
  EXPECT_EQ(TcpSocketTestAccess::syn_queue_len(*l), 1u);
  // The ACK carrying the cookie creates an ESTABLISHED, accepted connection.
  Seg ack{.flags = kA, .seq = 77778, .ack = sa.seq + 1, .window = 100};
  ack.ts = TcpTimestamps{501, sa.opts.ts->val};
  h.recv(at_ms(20), ack, 2001);
  h.expect_none();
  EXPECT_EQ(h.counters.tcp_syncookies_recv, 1u);
  auto c = l->accept(at_ms(21));
  ASSERT_TRUE(c.has_value());
  TcpSocket* s = *c;
  EXPECT_EQ(s->state(), TcpState::Established);
  EXPECT_EQ(s->remote().port, 2001);
  EXPECT_EQ(s->snd_mss(), 1300u - 12u);  // MSS from the cookie table (<= 1400), minus timestamps
  EXPECT_EQ(s->snd_wscale(), 5);         // from the TSecr bits
  EXPECT_EQ(s->rcv_wscale(), 7);
  EXPECT_TRUE(s->sack_enabled());
  EXPECT_TRUE(s->timestamps_enabled());
  EXPECT_EQ(TcpSocketTestAccess::snd_wnd(*s), 100u << 5);
  send_str(s, at_ms(22), "hi");
  check(h.expect_one(), {.flags = kA | kP, .seq = sa.seq + 1, .ack = 77778, .payload = "hi"});
}

// Without timestamps a cookie carries only the MSS: no scaling, no SACK.
TEST(TcpListen, SynCookieWithoutTimestamps) {
  TcpHarness h;
  TcpSocket* l = h.listener(1);
  h.recv(at_ms(0), TcpHarness::default_syn(), 2000);
  h.expect_one();
  Seg syn = TcpHarness::default_syn();
  syn.seq = 5000;
  syn.wscale = 5;
  syn.sack_permitted = true;
  h.recv(at_ms(10), syn, 2001);
  Sent sa = h.expect_one();
  EXPECT_FALSE(sa.opts.ts.has_value());
  EXPECT_FALSE(sa.opts.wscale.has_value());
  EXPECT_FALSE(sa.opts.sack_permitted);
  h.recv(at_ms(20), {.flags = kA, .seq = 5001, .ack = sa.seq + 1}, 2001);
  auto c = l->accept(at_ms(21));
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ((*c)->snd_mss(), 1460u);
  EXPECT_EQ((*c)->snd_wscale(), 0);
  EXPECT_EQ((*c)->rcv_wscale(), 0);
  EXPECT_FALSE((*c)->sack_enabled());
}

// A forged or wrong cookie gets a RST (RFC 9293 3.10.7.2: ACK in LISTEN).
TEST(TcpListen, InvalidCookieAckGetsRst) {
  TcpHarness h;
  TcpSocket* l = h.listener(1);
  h.recv(at_ms(0), TcpHarness::default_syn(), 2000);
  h.expect_one();
  h.recv(at_ms(10), syn_from(5000), 2001);
  Sent sa = h.expect_one();
  h.recv(at_ms(20), {.flags = kA, .seq = 5001, .ack = sa.seq + 2}, 2001);
  check(h.expect_one(), {.flags = kR, .seq = sa.seq + 2});
  EXPECT_EQ(h.counters.tcp_syncookies_failed, 1u);
  EXPECT_FALSE(l->accept(at_ms(21)).has_value());
}

// TCP_DEFER_ACCEPT: the bare handshake ACK does not make the connection
// acceptable; the first data does.
TEST(TcpListen, DeferAccept) {
  TcpHarness h;
  TcpSocket* l = h.listener();
  l->options().defer_accept = seconds(5);
  h.recv(at_ms(0), TcpHarness::default_syn());
  Sent sa = h.expect_one();
  h.recv(at_ms(1), {.flags = kA, .seq = kRemoteIss + 1, .ack = sa.seq + 1});
  h.expect_none();
  EXPECT_FALSE(l->accept(at_ms(2)).has_value());
  EXPECT_EQ(l->readiness(), 0u);
  h.recv(at_ms(100), {.flags = kA | kP, .seq = kRemoteIss + 1, .ack = sa.seq + 1, .payload = "GET /"});
  check(h.expect_one(), {.flags = kA, .seq = sa.seq + 1, .ack = kRemoteIss + 6});
  EXPECT_EQ(l->readiness(), ev::kIn | ev::kRdNorm);
  auto c = l->accept(at_ms(101));
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ((*c)->state(), TcpState::Established);
  EXPECT_EQ(recv_str(*c, at_ms(101)), "GET /");
}

}  // namespace
}  // namespace xs::test
