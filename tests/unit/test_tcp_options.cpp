// Option negotiation in the handshake (RFC 9293 3.7.1 MSS, RFC 7323 window
// scale and timestamps, RFC 2018 SACK-permitted), the Linux SYN option
// layout, window-scale arithmetic, and PAWS / TS.Recent (RFC 7323 4-5).
#include <gtest/gtest.h>

#include "tests/support/tcp_test_util.hpp"

namespace xs::test {
namespace {

// SYN-ACK for a SYN offering everything: we echo every option.
TEST(TcpOptions, SynAckEchoesAllOffered) {
  TcpHarness h;
  h.listener();
  h.recv(at_ms(7), syn_with_all_options(100));
  Sent sa = h.expect_one();
  EXPECT_EQ(sa.opts.mss, 1460);
  EXPECT_EQ(sa.opts.wscale, 7);  // tcp_rmem[2] = 6 MiB needs shift 7 (as Linux)
  EXPECT_TRUE(sa.opts.sack_permitted);
  ASSERT_TRUE(sa.opts.ts.has_value());
  EXPECT_EQ(sa.opts.ts->ecr, 100u);
  EXPECT_EQ(sa.window, 65535);  // RFC 7323 2.2: SYN windows are never scaled
  EXPECT_EQ(sa.opts.sack_count, 0);
}

TEST(TcpOptions, AcceptedConnectionWithAllOptions) {
  Passive p(TcpHarness::default_config(), syn_with_all_options(100));
  EXPECT_TRUE(p.s->sack_enabled());
  EXPECT_TRUE(p.s->timestamps_enabled());
  EXPECT_EQ(p.s->snd_wscale(), 7);
  EXPECT_EQ(p.s->rcv_wscale(), 7);
  EXPECT_EQ(p.s->snd_mss(), 1448u);  // 1460 minus the 12-byte timestamp option
  // Every later segment carries a timestamp echoing TS.Recent.
  send_str(p.s, at_ms(50), "x");
  Sent d = p.h.expect_one();
  ASSERT_TRUE(d.opts.ts.has_value());
  EXPECT_EQ(d.opts.ts->ecr, 101u);  // the handshake ACK's TSval
  EXPECT_EQ(d.opts.ts->val, *p.our_tsval + 50);  // 1 ms clock
  EXPECT_FALSE(d.opts.mss.has_value());
  EXPECT_FALSE(d.opts.wscale.has_value());
  EXPECT_FALSE(d.opts.sack_permitted);
}

// The peer offers nothing: only our MSS goes in the SYN-ACK, the peer's MSS
// defaults to 536 (RFC 9293 3.7.1), and nothing is scaled.
TEST(TcpOptions, PeerOffersNothing) {
  Seg syn = TcpHarness::default_syn();
  syn.mss.reset();
  TcpHarness h;
  h.listener();
  h.recv(at_ms(0), syn);
  Sent sa = h.expect_one();
  EXPECT_EQ(sa.opts.mss, 1460);
  EXPECT_FALSE(sa.opts.wscale.has_value());
  EXPECT_FALSE(sa.opts.sack_permitted);
  EXPECT_FALSE(sa.opts.ts.has_value());
  h.recv(at_ms(1), {.flags = kA, .seq = kRemoteIss + 1, .ack = sa.seq + 1});
  auto c = h.listen_sock->accept(at_ms(1));
  ASSERT_TRUE(c.has_value());
  TcpSocket* s = *c;
  EXPECT_EQ(s->snd_mss(), 536u);
  EXPECT_EQ(s->rcv_wscale(), 0);
  EXPECT_FALSE(s->sack_enabled());
  EXPECT_FALSE(s->timestamps_enabled());
  send_str(s, at_ms(2), bytes_of(1000));
  auto v = h.take();
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].payload.size(), 536u);
  EXPECT_EQ(v[1].payload.size(), 464u);
  EXPECT_EQ(v[0].window, 65535);  // unscaled field, capped
  EXPECT_FALSE(v[0].opts.ts.has_value());
}

// Each option on its own: only that one is echoed.
TEST(TcpOptions, EachOptionNegotiatedAlone) {
  {
    Seg syn = TcpHarness::default_syn();
    syn.wscale = 3;
    Passive p(TcpHarness::default_config(), syn);
    EXPECT_EQ(p.s->snd_wscale(), 3);
    EXPECT_EQ(p.s->rcv_wscale(), 7);
    EXPECT_FALSE(p.s->sack_enabled());
    EXPECT_FALSE(p.s->timestamps_enabled());
  }
  {
    Seg syn = TcpHarness::default_syn();
    syn.sack_permitted = true;
    TcpHarness h;
    h.listener();
    h.recv(at_ms(0), syn);
    Sent sa = h.expect_one();
    EXPECT_TRUE(sa.opts.sack_permitted);
    EXPECT_FALSE(sa.opts.wscale.has_value());
    EXPECT_FALSE(sa.opts.ts.has_value());
  }
  {
    Seg syn = TcpHarness::default_syn();
    syn.ts = TcpTimestamps{42, 0};
    TcpHarness h;
    h.listener();
    h.recv(at_ms(0), syn);
    Sent sa = h.expect_one();
    ASSERT_TRUE(sa.opts.ts.has_value());
    EXPECT_EQ(sa.opts.ts->ecr, 42u);
    EXPECT_FALSE(sa.opts.sack_permitted);
    EXPECT_FALSE(sa.opts.wscale.has_value());
  }
}

// A stack with an option switched off never offers or accepts it.
TEST(TcpOptions, DisabledOptionsNotEchoed) {
  TcpConfig cfg = TcpHarness::default_config();
  cfg.sack = false;
  cfg.timestamps = false;
  cfg.window_scaling = false;
  TcpHarness h(cfg);
  h.listener();
  h.recv(at_ms(0), syn_with_all_options());
  Sent sa = h.expect_one();
  EXPECT_FALSE(sa.opts.sack_permitted);
  EXPECT_FALSE(sa.opts.ts.has_value());
  EXPECT_FALSE(sa.opts.wscale.has_value());
}

// Our SYN offers everything, in Linux's layout:
// MSS | SACK_PERM,TS (4,2,8,10) | NOP,WS — 20 bytes of options.
TEST(TcpOptions, LinuxSynOptionLayout) {
  TcpHarness h;
  TcpSocket* s = h.tcp.open();
  (void)s->connect(at_ms(0), {kRemoteIp, kRemotePort});
  Sent syn = h.expect_one();
  EXPECT_EQ(syn.opts.mss, 1460);
  EXPECT_EQ(syn.opts.wscale, 7);
  EXPECT_TRUE(syn.opts.sack_permitted);
  ASSERT_TRUE(syn.opts.ts.has_value());
  EXPECT_EQ(syn.opts.ts->ecr, 0u);
  ASSERT_EQ(syn.raw.size(), 40u);
  EXPECT_EQ(syn.raw[12] >> 4, 10);  // data offset: 40 bytes
  const std::vector<uint8_t> head(syn.raw.begin() + 20, syn.raw.begin() + 24);
  EXPECT_EQ(head, (std::vector<uint8_t>{2, 4, 0x05, 0xb4}));
  const std::vector<uint8_t> sack_ts(syn.raw.begin() + 24, syn.raw.begin() + 28);
  EXPECT_EQ(sack_ts, (std::vector<uint8_t>{4, 2, 8, 10}));
  const std::vector<uint8_t> ecr_ws(syn.raw.begin() + 32, syn.raw.end());
  EXPECT_EQ(ecr_ws, (std::vector<uint8_t>{0, 0, 0, 0, 1, 3, 3, 7}));
}

// Active open, SYN-ACK without options: 536 MSS, no scaling, no timestamps.
TEST(TcpOptions, SynAckWithoutOptions) {
  TcpHarness h;
  uint32_t iss = 0;
  Seg sa;
  sa.seq = kRemoteIss;
  sa.window = 20000;
  TcpSocket* s = h.connect_established(at_ms(0), &iss, sa);
  EXPECT_EQ(s->snd_mss(), 536u);
  EXPECT_EQ(s->snd_wscale(), 0);
  EXPECT_EQ(s->rcv_wscale(), 0);  // we offered 7, but scaling needs both sides
  EXPECT_FALSE(s->timestamps_enabled());
  EXPECT_FALSE(s->sack_enabled());
  EXPECT_EQ(TcpSocketTestAccess::snd_wnd(*s), 20000u);
  send_str(s, at_ms(1), "x");
  Sent d = h.expect_one();
  EXPECT_FALSE(d.opts.ts.has_value());
  EXPECT_EQ(d.window, 65535);
}

// Active open, SYN-ACK with everything: the ACK echoes the peer's TSval and
// the window field is scaled from then on.
TEST(TcpOptions, SynAckWithAllOptions) {
  TcpHarness h;
  TcpSocket* s = h.tcp.open();
  (void)s->connect(at_ms(0), {kRemoteIp, kRemotePort});
  Sent syn = h.expect_one();
  Seg sa = syn_with_all_options(777);
  sa.flags = kS | kA;
  sa.ack = syn.seq + 1;
  sa.ts = TcpTimestamps{777, syn.opts.ts->val};
  sa.window = 1000;
  sa.wscale = 2;
  h.recv(at_ms(10), sa, kRemotePort, syn.src_port);
  Sent ack = h.expect_one();
  check(ack, {.flags = kA, .seq = syn.seq + 1, .ack = kRemoteIss + 1});
  ASSERT_TRUE(ack.opts.ts.has_value());
  EXPECT_EQ(ack.opts.ts->ecr, 777u);
  EXPECT_EQ(ack.opts.ts->val, syn.opts.ts->val + 10);
  EXPECT_EQ(ack.window, 1024);  // 128 KiB receive buffer >> 7
  EXPECT_EQ(s->snd_mss(), 1448u);
  // RFC 7323 2.2: the SYN-ACK's window is not scaled ...
  EXPECT_EQ(TcpSocketTestAccess::snd_wnd(*s), 1000u);
  // ... every later one is: 1000 << 2.
  Seg a{.flags = kA, .seq = kRemoteIss + 1, .ack = syn.seq + 1, .window = 1000};
  a.ts = TcpTimestamps{778, ack.opts.ts->val};
  h.recv(at_ms(20), a, kRemotePort, syn.src_port);
  EXPECT_EQ(TcpSocketTestAccess::snd_wnd(*s), 4000u);
}

// The peer's scaled window limits what we send: field 1 << 10 = 1024 bytes.
TEST(TcpOptions, ScaledPeerWindowLimitsSending) {
  Seg syn = TcpHarness::default_syn();
  syn.wscale = 10;
  Passive p(TcpHarness::default_config(), syn);
  p.h.recv(at_ms(1), {.flags = kA, .seq = p.R(0), .ack = p.L(0), .window = 1});
  EXPECT_EQ(TcpSocketTestAccess::snd_wnd(*p.s), 1024u);
  send_str(p.s, at_ms(2), bytes_of(3000));
  Sent d = p.h.expect_one();
  EXPECT_EQ(d.payload.size(), 1024u);
  EXPECT_EQ(d.seq, p.L(0));
}

// RFC 7323 2.3: a shift above 14 is used as 14.
TEST(TcpOptions, WindowScaleClampedTo14) {
  Seg syn = TcpHarness::default_syn();
  syn.wscale = 15;
  Passive p(TcpHarness::default_config(), syn);
  EXPECT_EQ(p.s->snd_wscale(), 14);
}

// Our window field is the free receive space >> rcv_wscale, rounded up.
TEST(TcpOptions, OurWindowFieldIsScaledDown) {
  Seg syn = TcpHarness::default_syn();
  syn.wscale = 0;
  Passive p(TcpHarness::default_config(), syn);
  ASSERT_EQ(p.s->rcv_wscale(), 7);
  p.h.recv(at_ms(1), {.flags = kA | kP, .seq = p.R(0), .ack = p.L(0), .payload = bytes_of(1000)});
  Sent a = p.h.expect_one();
  check(a, {.flags = kA, .ack = p.R(1000)});
  const uint32_t space = p.s->rcvbuf() - 1000;
  EXPECT_EQ(a.window, (space + 127) >> 7);
}

// ---- PAWS (RFC 7323 5) -------------------------------------------------------

struct TsConn : Passive {
  TsConn() : Passive(TcpHarness::default_config(), syn_with_all_options(100)) {}
  // Data from the peer with TSval `tsval`.
  void data(Instant t, uint32_t off, const std::string& d, uint32_t tsval) {
    Seg seg{.flags = kA | kP, .seq = R(off), .ack = L(0), .payload = d};
    seg.ts = TcpTimestamps{tsval, *our_tsval};
    h.recv(t, seg);
  }
};

TEST(TcpPaws, OldTimestampDroppedWithAck) {
  TsConn p;
  p.data(at_ms(10), 0, "aaa", 200);
  Sent a = p.h.expect_one();
  EXPECT_EQ(a.ack, p.R(3));
  EXPECT_EQ(a.opts.ts->ecr, 200u);
  p.data(at_ms(20), 3, "bbb", 150);  // TSval went backwards: an old duplicate
  Sent d = p.h.expect_one();
  check(d, {.flags = kA, .seq = p.L(0), .ack = p.R(3)});
  EXPECT_EQ(d.opts.ts->ecr, 200u);
  EXPECT_EQ(p.h.counters.tcp_paws_drops, 1u);
  EXPECT_EQ(recv_str(p.s, at_ms(21)), "aaa");
  // The same bytes with a current timestamp are taken.
  p.data(at_ms(30), 3, "bbb", 210);
  EXPECT_EQ(p.h.expect_one().ack, p.R(6));
}

// RST is exempt from PAWS (RFC 7323 5.3 R1 applies to non-RST segments only here, as Linux).
TEST(TcpPaws, RstWithOldTimestampStillResets) {
  TsConn p;
  p.data(at_ms(10), 0, "aaa", 200);
  p.h.expect_one();
  Seg r{.flags = kR, .seq = p.R(3)};
  r.ts = TcpTimestamps{1, 0};
  p.h.recv(at_ms(20), r);
  EXPECT_EQ(p.s->state(), TcpState::Closed);
}

// RFC 7323 4.3: TS.Recent follows only a segment with SEG.SEQ <= Last.ACK.sent;
// an out-of-order segment with a newer TSval does not move it.
TEST(TcpPaws, TsRecentUpdateRule) {
  TsConn p;
  p.data(at_ms(10), 0, "aaa", 300);
  p.h.expect_one();
  EXPECT_EQ(TcpSocketTestAccess::ts_recent(*p.s), 300u);
  p.data(at_ms(20), 10, "zzz", 400);  // beyond a hole
  Sent dup = p.h.expect_one();
  EXPECT_EQ(dup.ack, p.R(3));
  EXPECT_EQ(dup.opts.ts->ecr, 300u);
  EXPECT_EQ(TcpSocketTestAccess::ts_recent(*p.s), 300u);
  // The segment that fills the hole starts at Last.ACK.sent: it updates TS.Recent.
  p.data(at_ms(30), 3, "1234567", 350);
  Sent a = p.h.expect_one();
  EXPECT_EQ(a.ack, p.R(13));
  EXPECT_EQ(a.opts.ts->ecr, 350u);
  EXPECT_EQ(TcpSocketTestAccess::ts_recent(*p.s), 350u);
}

}  // namespace
}  // namespace xs::test
