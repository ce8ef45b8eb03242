// The effect of Linux socket options on the connection: TCP_QUICKACK and
// ping-pong mode (tcp_event_data_sent, tcp_delack_timer_handler),
// TCP_LINGER2 (tcp_close, tcp_fin_time), TCP_NOTSENT_LOWAT
// (tcp_stream_memory_free) and TCP_WINDOW_CLAMP (tcp_set_window_clamp).
#include <gtest/gtest.h>

#include "stack/wire/icmp.hpp"
#include "tests/support/tcp_test_util.hpp"

namespace xs::test {
namespace {

constexpr uint32_t kOutBits = ev::kOut | ev::kWrNorm;

void data(Passive& p, Instant t, uint32_t off, uint32_t len) {
  p.h.recv(t, {.flags = kA, .seq = p.R(off), .ack = p.L(0), .payload = bytes_of(len)});
}

// ---- TCP_QUICKACK ------------------------------------------------------------

// A reply sent within the ACK timeout of received data enters ping-pong mode:
// getsockopt(TCP_QUICKACK) reads 0 and quick ACKs stop (they would ride on the
// next reply); a delayed ACK no reply carried leaves the mode again.
TEST(TcpQuickAck, ReplyEntersPingPongDelackTimerLeaves) {
  Passive p;
  EXPECT_TRUE(p.s->quickack());
  data(p, at_ms(10), 0, 100);
  check(p.h.expect_one(), {.flags = kA, .ack = p.R(100)});  // quick-ACK mode
  send_str(p.s, at_ms(20), "reply");
  p.h.expect_one();
  EXPECT_FALSE(p.s->quickack());
  data(p, at_ms(30), 100, 100);
  p.h.expect_none();  // delayed, though quick ACKs remain
  p.h.run_until(at_ms(70));
  check(p.h.expect_one(), {.flags = kA, .ack = p.R(200)});
  EXPECT_TRUE(p.s->quickack());
  data(p, at_ms(80), 200, 100);
  check(p.h.expect_one(), {.flags = kA, .ack = p.R(300)});  // quick again
}

// Data sent long after the last data arrived is not a reply.
TEST(TcpQuickAck, LateSendStaysOutOfPingPong) {
  Passive p;
  data(p, at_ms(10), 0, 100);
  p.h.expect_one();
  send_str(p.s, at_ms(50), "late");  // 40 ms later: not within ATO
  p.h.expect_one();
  EXPECT_TRUE(p.s->quickack());
}

TEST(TcpQuickAck, SetsockoptTogglesPingPong) {
  Passive p;
  p.s->set_quickack(false);
  EXPECT_FALSE(p.s->quickack());
  p.s->set_quickack(true);
  EXPECT_TRUE(p.s->quickack());
}

// __tcp_sock_set_quickack: a nonzero value sends the ACK being delayed at
// once; an even value then goes back to ping-pong mode, an odd one leaves it.
TEST(TcpQuickAck, SetsockoptFlushesDelayedAck) {
  for (int val : {1, 2}) {
    Passive p;
    p.s->set_quickack(false);
    data(p, at_ms(10), 0, 100);
    p.h.expect_none();
    p.s->set_quickack(at_ms(12), val);
    check(p.h.expect_one(), {.flags = kA, .ack = p.R(100)});
    EXPECT_EQ(p.s->quickack(), val == 1) << val;
    p.h.run_until(at_ms(100));
    p.h.expect_none();  // the delayed-ACK timer has nothing left to send
  }
}

// Linux forgets TCP_QUICKACK 0 on listen() and once an active open completes.
TEST(TcpQuickAck, ListenAndActiveOpenLeavePingPong) {
  TcpHarness h;
  TcpSocket* l = h.tcp.open();
  l->set_quickack(false);
  ASSERT_TRUE(l->bind({kLocalIp, kLocalPort}).has_value());
  ASSERT_TRUE(l->listen(8).has_value());
  EXPECT_TRUE(l->quickack());
  TcpSocket* s = h.tcp.open();
  s->set_quickack(false);
  (void)s->connect(at_ms(0), {kRemoteIp, kRemotePort});
  Sent syn = h.expect_one();
  EXPECT_FALSE(s->quickack());
  Seg sa = TcpHarness::default_syn();
  sa.flags = kS | kA;
  sa.ack = syn.seq + 1;
  h.recv(at_ms(20), sa, kRemotePort, syn.src_port);
  ASSERT_EQ(s->state(), TcpState::Established);
  EXPECT_TRUE(s->quickack());
}

// tcp_select_initial_window on a passive open: the SYN-ACK's window scale
// covers at most the listener's clamp (the child inherits it).
TEST(TcpWindowClamp, PassiveOpenScaleRespectsListenerClamp) {
  for (int clamp : {0, 20000}) {
    TcpHarness h;
    TcpSocket* l = h.listener();
    if (clamp) {
      ASSERT_TRUE(l->set_window_clamp(clamp).has_value());
    }
    Seg syn = TcpHarness::default_syn();
    syn.wscale = 7;
    h.recv(at_ms(0), syn);
    Sent sa = h.expect_one();
    ASSERT_TRUE(sa.opts.wscale.has_value());
    if (clamp) {
      EXPECT_EQ(*sa.opts.wscale, 0) << "20000 bytes need no scaling";
      EXPECT_LE(sa.window, clamp);
    } else {
      EXPECT_GT(*sa.opts.wscale, 0);
    }
  }
}

// IP_MTU_DISCOVER on TCP (ip_dont_fragment): DF under WANT (default) and DO
// only; under DONT an ICMP "fragmentation needed" does not lower the MSS.
TEST(TcpIpMtuDiscover, DfFollowsModeAndDontIgnoresFragNeeded) {
  for (uint8_t mode : {uint8_t{1}, uint8_t{0}}) {
    Passive p;
    p.s->options().pmtudisc = mode;
    send_str(p.s, at_ms(10), "x");
    p.h.expect_one();
    ASSERT_FALSE(p.h.ip.params.empty());
    EXPECT_EQ(p.h.ip.params.back().dont_frag, mode == 1) << "mode " << int(mode);
    const uint16_t mss = p.s->maxseg();
    TcpSocketTestAccess::icmp_error(*p.s, at_ms(11), icmptype::kDestUnreachable, icmpcode::kFragNeeded, 1000,
                                    Seq(p.L(0)));
    if (mode == 0) {
      EXPECT_EQ(p.s->maxseg(), mss);
    } else {
      EXPECT_LT(p.s->maxseg(), mss);
    }
  }
}

// ---- TCP_LINGER2 -------------------------------------------------------------

// Half-closed, our FIN acknowledged: FIN_WAIT_2 with the handle still ours.
void to_fin_wait2(Passive& p) {
  ASSERT_TRUE(p.s->shutdown(at_ms(10), false, true).has_value());
  p.h.expect_one();
  p.h.recv(at_ms(20), {.flags = kA, .seq = p.R(0), .ack = p.L(1)});
  ASSERT_EQ(p.s->state(), TcpState::FinWait2);
}

// tcp_close: linger2 < 0 resets an orphan in FIN_WAIT_2 at once.
TEST(TcpLinger2, NegativeResetsAtClose) {
  Passive p;
  p.s->options().linger2 = -1;
  to_fin_wait2(p);
  const size_t before = p.h.tcp.socket_count();
  p.s->close(at_ms(30));
  check(p.h.expect_one(), {.flags = kR | kA, .seq = p.L(1)});
  p.h.run_until(at_ms(31));
  EXPECT_EQ(p.h.tcp.socket_count(), before - 1);
  EXPECT_EQ(p.h.counters.tcp_abort_on_linger, 1u);
}

// Closed in FIN_WAIT_1: the ACK of our FIN makes the orphan FIN_WAIT_2, where
// linger2 < 0 resets it at once (tcp_rcv_state_process, TCPAbortOnData) and
// linger2 > 0 is its lifetime.
TEST(TcpLinger2, OrphanReachingFinWait2ObeysIt) {
  for (int linger2 : {-1, 5}) {
    Passive p;
    p.s->options().linger2 = linger2;
    p.s->close(at_ms(10));
    check(p.h.expect_one(), {.flags = kF | kA, .seq = p.L(0), .ack = p.R(0)});
    const size_t before = p.h.tcp.socket_count();
    p.h.recv(at_ms(20), {.flags = kA, .seq = p.R(0), .ack = p.L(1)});
    if (linger2 < 0) {
      check(p.h.expect_one(), {.flags = kR | kA, .seq = p.L(1)});
      EXPECT_EQ(p.h.counters.tcp_abort_on_data, 1u);
      p.h.run_until(at_ms(21));
      EXPECT_EQ(p.h.tcp.socket_count(), before - 1);
      continue;
    }
    p.h.expect_none();
    EXPECT_EQ(p.s->state(), TcpState::FinWait2);
    p.h.run_until(at_ms(5019));
    EXPECT_EQ(p.h.tcp.socket_count(), before);
    p.h.run_until(at_ms(5020));
    EXPECT_EQ(p.h.tcp.socket_count(), before - 1);
  }
}

// tcp_fin_time: the orphan's FIN_WAIT_2 lasts linger2 seconds, not tcp_fin_timeout.
TEST(TcpLinger2, PositiveSetsFinWait2Timeout) {
  Passive p;  // fin_wait2_timeout 60 s
  p.s->options().linger2 = 5;
  to_fin_wait2(p);
  const size_t before = p.h.tcp.socket_count();
  p.s->close(at_ms(30));
  p.h.run_until(at_ms(5029));
  EXPECT_EQ(p.h.tcp.socket_count(), before);
  p.h.run_until(at_ms(5030));
  p.h.expect_none();  // silently, as before
  EXPECT_EQ(p.h.tcp.socket_count(), before - 1);
}

// ---- TCP_NOTSENT_LOWAT -------------------------------------------------------

// Writable (poll, wake = 1) only while 2 * unsent < lowat; send() queues
// while unsent < lowat (sk_stream_memory_free, wake = 0), then would block.
TEST(TcpNotsentLowat, LimitsWritabilityAndSend) {
  Passive p;
  p.h.recv(at_ms(1), {.flags = kA, .seq = p.R(0), .ack = p.L(0), .window = 0});  // nothing goes out
  EXPECT_EQ(p.s->readiness(), kOutBits);
  p.s->set_notsent_lowat(1000);
  send_str(p.s, at_ms(2), bytes_of(400));
  EXPECT_EQ(p.s->readiness(), kOutBits);  // 800 < 1000
  send_str(p.s, at_ms(3), bytes_of(100));
  EXPECT_EQ(p.s->readiness(), 0u);  // 1000 !< 1000
  // Still below the mark: one more (bounded) chunk is queued.
  auto r = p.s->send(at_ms(4), as_bytes(bytes_of(5000)));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, 500u + p.s->snd_mss());
  auto r2 = p.s->send(at_ms(5), as_bytes(std::string("x")));
  ASSERT_FALSE(r2.has_value());
  EXPECT_EQ(r2.error(), SockError::WouldBlock);
  // The window opens, the bytes go out: writable again.
  p.h.recv(at_ms(6), {.flags = kA, .seq = p.R(0), .ack = p.L(0), .window = 65535});
  EXPECT_EQ(p.s->bytes_unsent(), 0u);
  EXPECT_EQ(p.s->readiness(), kOutBits);
  // 0 restores the default: no limit.
  p.s->set_notsent_lowat(0);
  EXPECT_EQ(p.s->notsent_lowat(), UINT32_MAX);
}

// ---- TCP_WINDOW_CLAMP --------------------------------------------------------

TEST(TcpWindowClamp, SetValues) {
  TcpHarness h;
  TcpSocket* s = h.tcp.open();
  EXPECT_EQ(s->window_clamp(), 0u);
  EXPECT_TRUE(s->set_window_clamp(0).has_value());  // closed: allowed
  ASSERT_TRUE(s->set_window_clamp(100).has_value());
  EXPECT_EQ(s->window_clamp(), 1152u);  // SOCK_MIN_RCVBUF / 2
  ASSERT_TRUE(s->set_window_clamp(-1).has_value());
  EXPECT_EQ(s->window_clamp(), 1152u);
  ASSERT_TRUE(s->set_window_clamp(5000).has_value());
  EXPECT_EQ(s->window_clamp(), 5000u);
}

// The SYN, the window scale and every later window respect the clamp; 0 is
// refused once the socket is not closed.
TEST(TcpWindowClamp, AdvertisedWindowNeverExceedsClamp) {
  Seg sa = TcpHarness::default_syn();
  sa.wscale = 7;
  TcpHarness h;
  TcpSocket* s = h.tcp.open();
  ASSERT_TRUE(s->set_window_clamp(5000).has_value());
  ASSERT_TRUE(s->bind({kLocalIp, kLocalPort}).has_value());
  (void)s->connect(at_ms(0), {kRemoteIp, kRemotePort});
  Sent syn = h.expect_one();
  check(syn, {.flags = kS, .window = 5000});
  EXPECT_EQ(syn.opts.wscale, 0);  // 5000 needs no shift (tcp_rmem[2] alone would need 7)
  EXPECT_EQ(s->set_window_clamp(0).error(), SockError::InvalidArgument);
  sa.flags = kS | kA;
  sa.ack = syn.seq + 1;
  h.recv(at_ms(20), sa);
  check(h.expect_one(), {.flags = kA, .window = 5000});
  EXPECT_EQ(s->window_clamp(), 5000u);
  // Reading opens the window back only up to the clamp.
  const uint32_t r0 = kRemoteIss + 1;
  h.recv(at_ms(30), {.flags = kA, .seq = r0, .ack = syn.seq + 1, .payload = bytes_of(3000)});
  check(h.expect_one(), {.flags = kA, .ack = r0 + 3000, .window = 2000});
  EXPECT_EQ(recv_str(s, at_ms(31)).size(), 3000u);
  check(h.expect_one(), {.flags = kA, .ack = r0 + 3000, .window = 5000});
}

// Without a clamp a connected socket reports the largest window it offers.
TEST(TcpWindowClamp, ConnectedWithoutClampReportsFullWindow) {
  Passive p;
  EXPECT_EQ(p.s->window_clamp(), std::min(p.s->rcvbuf(), 65535u << p.s->rcv_wscale()));
}

}  // namespace
}  // namespace xs::test
