#include "tests/support/tcp_harness.hpp"

#include <gtest/gtest.h>

namespace xs::test {

std::string flags_str(uint8_t f) {
  std::string s;
  if (f & tcpflag::kSyn) s += "S";
  if (f & tcpflag::kFin) s += "F";
  if (f & tcpflag::kRst) s += "R";
  if (f & tcpflag::kPsh) s += "P";
  if (f & tcpflag::kAck) s += ".";
  return s;
}

MutBytes CaptureIp::begin(Instant, const IpTxParams& p, size_t l4_len) {
  if (drop_all) return {};
  cur_ = p;
  buf_.assign(l4_len, 0);
  return MutBytes(buf_.data(), buf_.size());
}

void CaptureIp::commit() {
  auto r = parse_tcp(Bytes(buf_.data(), buf_.size()), cur_.src, cur_.dst, true);
  EXPECT_TRUE(r.has_value()) << "stack emitted an invalid TCP segment";
  if (!r) return;
  Sent s;
  s.flags = r->flags;
  s.seq = r->seq.raw();
  s.ack = r->ack.raw();
  s.window = r->window;
  s.urgent = r->urgent;
  s.opts = r->opts;
  s.payload.assign(r->payload.begin(), r->payload.end());
  s.src = cur_.src;
  s.dst = cur_.dst;
  s.src_port = r->src_port;
  s.dst_port = r->dst_port;
  s.raw = buf_;
  sent.push_back(std::move(s));
  params.push_back(cur_);
}

TcpConfig TcpHarness::default_config() {
  TcpConfig c;
  return c;
}

TcpHarness::TcpHarness(TcpConfig cfg, uint64_t seed) : rng(seed), tcp(cfg, ip, rng, counters) {}

Seg TcpHarness::default_syn() {
  Seg s;
  s.flags = tcpflag::kSyn;
  s.seq = kRemoteIss;
  s.window = 65535;
  s.mss = 1460;
  return s;
}

void TcpHarness::recv(Instant now, const Seg& s, uint16_t src_port, uint16_t dst_port) {
  recv_in_place(now, s, Bytes(reinterpret_cast<const uint8_t*>(s.payload.data()), s.payload.size()), src_port,
                dst_port);
}

void TcpHarness::recv_in_place(Instant now, const Seg& s, Bytes payload, uint16_t src_port, uint16_t dst_port) {
  TcpRepr r;
  r.src_port = src_port;
  r.dst_port = dst_port;
  r.seq = Seq(s.seq);
  r.ack = Seq(s.ack);
  r.flags = s.flags;
  r.window = s.window;
  r.urgent = s.urgent;
  r.opts.mss = s.mss;
  r.opts.wscale = s.wscale;
  r.opts.sack_permitted = s.sack_permitted;
  r.opts.ts = s.ts;
  r.opts.sack_count = static_cast<uint8_t>(std::min<size_t>(s.sack.size(), 4));
  for (size_t i = 0; i < r.opts.sack_count; ++i) r.opts.sack[i] = s.sack[i];
  r.payload = payload;
  Ipv4Packet ip4;
  ip4.hdr.src = kRemoteIp;
  ip4.hdr.dst = kLocalIp;
  ip4.hdr.protocol = ipproto::kTcp;
  tcp.on_segment(now, ip4, r);
}

void TcpHarness::run_until(Instant until) {
  for (int i = 0; i < 100000; ++i) {
    Instant t = tcp.poll_at();
    if (t > until) return;
    tcp.poll(t);
  }
}

Sent TcpHarness::expect_one() {
  EXPECT_EQ(ip.sent.size(), 1u) << "expected exactly one segment";
  if (ip.sent.empty()) return Sent{};
  Sent s = ip.sent.front();
  ip.sent.clear();
  return s;
}

void TcpHarness::expect_none() {
  EXPECT_TRUE(ip.sent.empty()) << "unexpected segment " << (ip.sent.empty() ? "" : flags_str(ip.sent[0].flags));
  ip.sent.clear();
}

TcpSocket* TcpHarness::listener(int backlog) {
  if (listen_sock) return listen_sock;
  listen_sock = tcp.open();
  EXPECT_TRUE(listen_sock->bind({Ipv4Addr::any(), kLocalPort}).has_value());
  EXPECT_TRUE(listen_sock->listen(backlog).has_value());
  return listen_sock;
}

TcpSocket* TcpHarness::accept_established(Instant now, uint32_t* iss, Seg syn) {
  TcpSocket* l = listener();
  recv(now, syn);
  Sent synack = expect_one();
  EXPECT_EQ(synack.flags, tcpflag::kSyn | tcpflag::kAck);
  *iss = synack.seq;
  Seg ack;
  ack.flags = tcpflag::kAck;
  ack.seq = syn.seq + 1;
  ack.ack = synack.seq + 1;
  ack.window = syn.window;
  if (syn.ts && synack.opts.ts) ack.ts = TcpTimestamps{syn.ts->val + 1, synack.opts.ts->val};
  recv(now, ack);
  expect_none();
  auto c = l->accept(now);
  EXPECT_TRUE(c.has_value());
  return c ? *c : nullptr;
}

TcpSocket* TcpHarness::connect_established(Instant now, uint32_t* iss, Seg synack) {
  TcpSocket* s = tcp.open();
  EXPECT_TRUE(s->bind({kLocalIp, kLocalPort}).has_value());
  auto r = s->connect(now, {kRemoteIp, kRemotePort});
  EXPECT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), SockError::InProgress);
  Sent syn = expect_one();
  EXPECT_EQ(syn.flags, tcpflag::kSyn);
  *iss = syn.seq;
  synack.flags = tcpflag::kSyn | tcpflag::kAck;
  synack.ack = syn.seq + 1;
  recv(now, synack);
  Sent ack = expect_one();
  EXPECT_EQ(ack.flags, tcpflag::kAck);
  EXPECT_EQ(s->state(), TcpState::Established);
  return s;
}

}  // namespace xs::test
