// UDP sockets that keep received datagrams in the device's frames
// (UdpSocket::set_zc_frames, FrameLender): no copy on receive, every held
// frame given back exactly once, and nothing else about the socket changes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "stack/net/frame_lender.hpp"
#include "stack/stack.hpp"
#include "tests/support/capture_sink.hpp"

using namespace xs;
using xs::test::CaptureSink;

namespace {

constexpr MacAddr kOurMac{{0x02, 0, 0, 0, 0, 0x01}};
constexpr MacAddr kPeerMac{{0x02, 0, 0, 0, 0, 0x02}};
constexpr Ipv4Addr kOurIp = Ipv4Addr::from_octets(198, 18, 0, 1);
constexpr Ipv4Addr kPeerIp = Ipv4Addr::from_octets(198, 18, 0, 2);
constexpr Ipv4Addr kSubnetBcast = Ipv4Addr::from_octets(198, 18, 0, 255);
constexpr uint8_t kPoison = 0xEE;

Instant at_ms(int64_t ms) { return Instant{ms * 1000}; }

Bytes bytes_of(const std::string& s) { return Bytes(reinterpret_cast<const uint8_t*>(s.data()), s.size()); }

std::string str_of(Bytes b) { return std::string(reinterpret_cast<const char*>(b.data()), b.size()); }

// A device's frame lender: owns every frame it delivered (never reused, so a
// pointer into one stays valid for the test), lends the frame being
// delivered, and records every hold and release. A frame nobody holds is
// poisoned (as if the device reused it): once after its delivery, and again
// when its last handle is released. So a socket reading a frame it does not
// hold, or no longer holds, reads kPoison.
struct FakeLender : FrameLender {
  std::deque<std::vector<uint8_t>> frames;
  std::optional<size_t> current;  // the frame being delivered
  bool refuse = false;
  int asked = 0;  // hold() calls
  uint64_t next_handle = 100;
  std::map<uint64_t, size_t> held;  // handle -> frame index
  std::vector<uint64_t> holds;      // handles, in the order given out
  std::vector<uint64_t> released;   // handles, in the order given back
  int bad_releases = 0;             // unknown or already released handles

  std::optional<uint64_t> hold(Bytes b) override {
    ++asked;
    if (refuse || !current) return std::nullopt;
    const auto& f = frames[*current];
    if (b.data() < f.data() || b.data() + b.size() > f.data() + f.size()) return std::nullopt;
    const uint64_t h = next_handle++;
    held[h] = *current;
    holds.push_back(h);
    return h;
  }
  void release(uint64_t h) override {
    auto it = held.find(h);
    if (it == held.end()) {
      ++bad_releases;
      return;
    }
    const size_t idx = it->second;
    held.erase(it);
    released.push_back(h);
    if (holders(idx) == 0) poison(idx);
  }

  size_t holders(size_t idx) const {
    return size_t(std::count_if(held.begin(), held.end(), [&](const auto& kv) { return kv.second == idx; }));
  }
  void poison(size_t idx) { std::fill(frames[idx].begin(), frames[idx].end(), kPoison); }
  // The index of the frame holding p, if any.
  std::optional<size_t> frame_of(const uint8_t* p) const {
    for (size_t i = 0; i < frames.size(); ++i) {
      if (p >= frames[i].data() && p < frames[i].data() + frames[i].size()) return i;
    }
    return std::nullopt;
  }
};

StackConfig stack_config() {
  StackConfig c;
  c.mac = kOurMac;
  c.addr = {kOurIp, 24};
  return c;
}

// Delivers a datagram from kPeerIp to `dst` as a frame owned by `lender`;
// returns the frame's index.
size_t deliver_via(Stack& stack, FakeLender& lender, Bytes payload, uint16_t dport, uint16_t sport = 5000,
                   Instant now = at_ms(0), uint8_t ttl = 64, uint8_t tos = 0, Ipv4Addr dst = kOurIp) {
  auto d = test::udp_datagram(kPeerIp, sport, dst, dport, payload);
  Ipv4Repr h;
  h.src = kPeerIp;
  h.dst = dst;
  h.protocol = ipproto::kUdp;
  h.ttl = ttl;
  h.tos = tos;
  MacAddr eth_dst = stack.ip().is_broadcast(dst) ? MacAddr::broadcast() : kOurMac;
  lender.frames.push_back(test::ipv4_frame(eth_dst, kPeerMac, h, d));
  const size_t idx = lender.frames.size() - 1;
  lender.current = idx;
  stack.receive_frame(now, Bytes(lender.frames[idx].data(), lender.frames[idx].size()));
  lender.current.reset();
  if (lender.holders(idx) == 0) lender.poison(idx);  // the device reuses it
  return idx;
}

struct UdpZcFixture : ::testing::Test {
  FakeLender lender;  // these outlive the stack
  FakeLender lender2;
  CaptureSink sink;
  SeededRandom rng{3};
  Stack stack{stack_config(), rng, sink};
  UdpLayer& udp = stack.udp();
  StackCounters& c = stack.counters();

  void SetUp() override {
    stack.arp().insert_static(kPeerIp, kPeerMac);
    stack.set_frame_lender(&lender);
  }
  size_t deliver(Bytes payload, uint16_t dport, uint16_t sport = 5000) {
    return deliver_via(stack, lender, payload, dport, sport);
  }
  UdpSocket* bound(uint16_t port, bool zc = true) {
    UdpSocket* s = udp.open();
    EXPECT_TRUE(s->bind({Ipv4Addr::any(), port}).has_value());
    s->set_zc_frames(zc);
    return s;
  }
  // Every handle given out was released exactly once.
  void expect_all_released_once() {
    EXPECT_TRUE(lender.held.empty());
    EXPECT_EQ(lender.bad_releases, 0);
    auto a = lender.holds, b = lender.released;
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    EXPECT_EQ(a, b);
  }
};

TEST_F(UdpZcFixture, OptInIsPerSocketAndOffByDefault) {
  UdpSocket* s = udp.open();
  EXPECT_FALSE(s->zc_frames());
  s->set_zc_frames(true);
  EXPECT_TRUE(s->zc_frames());
  EXPECT_FALSE(udp.open()->zc_frames());
  EXPECT_EQ(udp.frame_lender(), &lender);
}

TEST_F(UdpZcFixture, PayloadStaysInTheFrameAndRecvCopiesAndReleasesOnce) {
  UdpSocket* s = bound(7000);
  const size_t f = deliver(bytes_of("hello, frames"), 7000);
  EXPECT_EQ(lender.asked, 1);
  ASSERT_EQ(lender.held.size(), 1u);
  EXPECT_EQ(lender.held.begin()->second, f);
  EXPECT_EQ(s->rx_frames_held(), 1u);
  EXPECT_EQ(s->bytes_readable(), 13u);
  EXPECT_EQ(s->rx_queued_bytes(), 13u);

  // Not copied: the view points into the frame, and a change to the frame
  // shows through.
  UdpSocket::View v[2];
  auto n = s->zc_borrow(v);
  ASSERT_TRUE(n.has_value());
  ASSERT_EQ(*n, 1u);
  EXPECT_EQ(lender.frame_of(v[0].payload.data()), f);
  EXPECT_EQ(str_of(v[0].payload), "hello, frames");
  EXPECT_EQ(v[0].from, (Endpoint{kPeerIp, 5000}));
  const_cast<uint8_t*>(v[0].payload.data())[0] = 'J';
  EXPECT_EQ(str_of(v[0].payload), "Jello, frames");
  EXPECT_TRUE(lender.released.empty());
  ASSERT_TRUE(s->zc_release(1).has_value());
  EXPECT_EQ(lender.released.size(), 1u);
  EXPECT_EQ(s->rx_frames_held(), 0u);

  // recv_from copies the right bytes from the frame, then gives it back.
  const size_t g = deliver(bytes_of("second datagram"), 7000, 5001);
  ASSERT_EQ(lender.held.size(), 1u);
  lender.frames[g][lender.frames[g].size() - 1] = '!';  // the last payload byte, in the frame
  char buf[64] = {};
  auto r = s->recv_from(MutBytes(reinterpret_cast<uint8_t*>(buf), sizeof buf));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->copied, 15u);
  EXPECT_EQ(r->datagram_len, 15u);
  EXPECT_EQ(r->from, (Endpoint{kPeerIp, 5001}));
  EXPECT_EQ(std::string(buf, r->copied), "second datagra!");
  EXPECT_EQ(lender.released.size(), 2u);
  EXPECT_EQ(s->rx_charged(), 0u);
  EXPECT_EQ(s->rx_datagrams(), 0u);
  EXPECT_EQ(s->recv_from(MutBytes(reinterpret_cast<uint8_t*>(buf), sizeof buf)).error(), SockError::WouldBlock);
  expect_all_released_once();
}

TEST_F(UdpZcFixture, PeekKeepsTheFrameHeld) {
  UdpSocket* s = bound(7000);
  deliver(bytes_of("peekaboo"), 7000);
  uint8_t buf[32];
  for (int i = 0; i < 3; ++i) {
    auto p = s->recv_from(buf, /*peek=*/true);
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->copied, 8u);
    EXPECT_EQ(std::memcmp(buf, "peekaboo", 8), 0);
    EXPECT_TRUE(lender.released.empty());
    EXPECT_EQ(lender.held.size(), 1u);
    EXPECT_EQ(s->rx_datagrams(), 1u);
  }
  std::memset(buf, 0, sizeof buf);
  auto r = s->recv_from(buf);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(std::memcmp(buf, "peekaboo", 8), 0);
  EXPECT_EQ(lender.released.size(), 1u);
  expect_all_released_once();
}

TEST_F(UdpZcFixture, TruncatedReadReleasesTheFrame) {
  UdpSocket* s = bound(7000);
  deliver(bytes_of("0123456789"), 7000);
  uint8_t small[4];
  auto p = s->recv_from(small, /*peek=*/true);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->copied, 4u);
  EXPECT_EQ(p->datagram_len, 10u);
  EXPECT_TRUE(lender.released.empty());
  auto r = s->recv_from(small);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->copied, 4u);
  EXPECT_EQ(r->datagram_len, 10u);
  EXPECT_EQ(std::memcmp(small, "0123", 4), 0);
  EXPECT_EQ(lender.released.size(), 1u);
  EXPECT_EQ(s->recv_from(small).error(), SockError::WouldBlock);
  EXPECT_EQ(s->rx_charged(), 0u);
  // A zero-length read discards the datagram too.
  deliver(bytes_of("gone"), 7000);
  auto z = s->recv_from(MutBytes());
  ASSERT_TRUE(z.has_value());
  EXPECT_EQ(z->copied, 0u);
  EXPECT_EQ(z->datagram_len, 4u);
  EXPECT_EQ(lender.released.size(), 2u);
  expect_all_released_once();
}

TEST_F(UdpZcFixture, BorrowAndReleaseInOrder) {
  UdpSocket* s = bound(7000);
  size_t f[3];
  for (int i = 0; i < 3; ++i) f[i] = deliver(bytes_of("dgram-" + std::to_string(i)), 7000, uint16_t(6000 + i));
  ASSERT_EQ(lender.holds.size(), 3u);
  UdpSocket::View v[3];
  auto n = s->zc_borrow(std::span(v, 2));
  ASSERT_TRUE(n.has_value());
  ASSERT_EQ(*n, 2u);
  n = s->zc_borrow(std::span(v + 2, 1));
  ASSERT_TRUE(n.has_value());
  ASSERT_EQ(*n, 1u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(lender.frame_of(v[i].payload.data()), f[i]) << i;
    EXPECT_EQ(str_of(v[i].payload), "dgram-" + std::to_string(i)) << i;
    EXPECT_EQ(v[i].from.port, 6000 + i);
  }
  EXPECT_EQ(s->zc_lent(), 3u);
  uint8_t buf[16];
  EXPECT_EQ(s->recv_from(buf).error(), SockError::WouldBlock);  // everything is lent
  EXPECT_EQ(s->zc_release(4).error(), SockError::InvalidArgument);
  EXPECT_TRUE(lender.released.empty());

  ASSERT_TRUE(s->zc_release(1).has_value());
  ASSERT_EQ(lender.released.size(), 1u);
  EXPECT_EQ(lender.released[0], lender.holds[0]);
  // The others are still held and intact; the released one was reused.
  EXPECT_EQ(str_of(v[1].payload), "dgram-1");
  EXPECT_EQ(str_of(v[2].payload), "dgram-2");
  EXPECT_EQ(v[0].payload[0], kPoison);
  ASSERT_TRUE(s->zc_release(2).has_value());
  EXPECT_EQ(lender.released, lender.holds);  // oldest first
  EXPECT_EQ(s->rx_charged(), 0u);
  EXPECT_EQ(s->rx_frames_held(), 0u);
  expect_all_released_once();
}

TEST_F(UdpZcFixture, RefusedHoldIsCopiedAndStillCorrect) {
  UdpSocket* s = bound(7000);
  lender.refuse = true;
  deliver(bytes_of("copied anyway"), 7000);
  EXPECT_EQ(lender.asked, 1);
  EXPECT_TRUE(lender.held.empty());
  EXPECT_EQ(s->rx_frames_held(), 0u);
  UdpSocket::View v[1];
  ASSERT_EQ(s->zc_borrow(v).value(), 1u);
  // Not in any frame (the frame itself has been reused: poisoned).
  EXPECT_EQ(lender.frame_of(v[0].payload.data()), std::nullopt);
  EXPECT_EQ(str_of(v[0].payload), "copied anyway");
  ASSERT_TRUE(s->zc_release(1).has_value());

  // Without a lender at all, the same.
  stack.set_frame_lender(nullptr);
  lender.refuse = false;
  deliver(bytes_of("no lender"), 7000);
  EXPECT_EQ(lender.asked, 1);
  uint8_t buf[32];
  auto r = s->recv_from(buf);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), r->copied), "no lender");
  EXPECT_TRUE(lender.released.empty());
  EXPECT_EQ(lender.bad_releases, 0);
}

TEST_F(UdpZcFixture, MixedCopiedAndFrameBackedKeepOrderAcrossRingWrap) {
  UdpSocket* s = bound(7000);
  s->set_rcvbuf(2000);  // ~3 datagrams of ~1 KB queued at a time; the ring wraps often
  std::vector<uint8_t> payload(1200);
  std::vector<bool> framed;
  uint8_t buf[2000];
  int next_read = 0;
  for (int i = 0; i < 400; ++i) {
    // Every pattern of kinds: refused holds, zc off for a while, empty datagrams.
    lender.refuse = (i % 3) == 1;
    s->set_zc_frames((i / 50) % 4 != 3);
    const size_t len = (i % 17 == 0) ? 0 : 700 + size_t(i * 7 % 300);
    for (size_t k = 0; k < len; ++k) payload[k] = uint8_t(i * 13 + k);
    const int asked = lender.asked;
    deliver(Bytes(payload.data(), len), 7000, uint16_t(1000 + i));
    ASSERT_EQ(s->rx_datagrams(), size_t(i + 1 - next_read)) << i;  // every one admitted
    framed.push_back(lender.asked > asked && !lender.refuse);
    if (len == 0 || !s->zc_frames()) {
      EXPECT_EQ(lender.asked, asked) << i;
    }
    if (i % 2 == 0) continue;
    while (next_read <= i) {
      const int j = next_read++;
      const size_t jl = (j % 17 == 0) ? 0 : 700 + size_t(j * 7 % 300);
      const size_t released = lender.released.size();
      auto r = s->recv_from(buf);
      ASSERT_TRUE(r.has_value()) << j;
      ASSERT_EQ(r->from.port, 1000 + j) << j;
      ASSERT_EQ(r->datagram_len, jl) << j;
      for (size_t k = 0; k < jl; ++k) ASSERT_EQ(buf[k], uint8_t(j * 13 + k)) << j << " " << k;
      EXPECT_EQ(lender.released.size(), released + (framed[size_t(j)] ? 1 : 0)) << j;
    }
  }
  EXPECT_GT(lender.holds.size(), 150u);  // both kinds really were mixed
  EXPECT_LT(lender.holds.size(), 300u);
  EXPECT_EQ(s->rx_charged(), 0u);
  expect_all_released_once();
}

TEST_F(UdpZcFixture, MetadataOfFrameBackedDatagrams) {
  UdpSocket* s = bound(7000);
  UdpSocket* t = bound(7000 + 1);
  // Broadcasts go to every socket on the port: bind a second one there.
  UdpSocket* b1 = udp.open();
  b1->set_reuseaddr(true);
  ASSERT_TRUE(b1->bind({Ipv4Addr::any(), 7100}).has_value());
  UdpSocket* b2 = udp.open();
  b2->set_reuseaddr(true);
  ASSERT_TRUE(b2->bind({Ipv4Addr::any(), 7100}).has_value());
  b1->set_zc_frames(true);
  b2->set_zc_frames(true);
  b2->set_recv_pktinfo(true);
  s->set_recv_pktinfo(true);

  deliver_via(stack, lender, bytes_of("first"), 7000, 5000, at_ms(11), 17, 0x20);
  deliver_via(stack, lender, bytes_of("second"), 7000, 5001, at_ms(12), 200, 0x04);
  deliver_via(stack, lender, bytes_of("t"), 7001, 5002, at_ms(13), 9, 0x08);
  deliver_via(stack, lender, bytes_of("bcast"), 7100, 5003, at_ms(14), 33, 0x10, kSubnetBcast);
  ASSERT_EQ(lender.holds.size(), 5u);  // the broadcast frame held once per socket

  uint8_t buf[16];
  auto p = s->recv_from(buf, /*peek=*/true);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->meta.ttl, 17);
  EXPECT_EQ(p->meta.tos, 0x20);
  EXPECT_EQ(p->meta.arrival, at_ms(11));
  auto r = s->recv_from(buf);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), r->copied), "first");
  EXPECT_EQ(r->meta.ttl, 17);
  EXPECT_EQ(r->meta.tos, 0x20);
  EXPECT_EQ(r->meta.dst, kOurIp);
  EXPECT_EQ(r->meta.dst_port, 7000);
  EXPECT_EQ(r->meta.arrival, at_ms(11));
  EXPECT_TRUE(r->meta.pktinfo);  // the frame flag does not leak into pktinfo, or the reverse
  EXPECT_EQ(r->meta.spec_dst, kOurIp);
  r = s->recv_from(buf);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->meta.ttl, 200);
  EXPECT_EQ(r->meta.tos, 0x04);
  EXPECT_EQ(r->meta.arrival, at_ms(12));
  EXPECT_EQ(r->from, (Endpoint{kPeerIp, 5001}));

  r = t->recv_from(buf);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->meta.ttl, 9);
  EXPECT_EQ(r->meta.tos, 0x08);
  EXPECT_EQ(r->meta.dst_port, 7001);
  EXPECT_FALSE(r->meta.pktinfo);
  EXPECT_EQ(r->meta.spec_dst, Ipv4Addr{});

  for (UdpSocket* b : {b1, b2}) {
    r = b->recv_from(buf);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), r->copied), "bcast");
    EXPECT_EQ(r->meta.dst, kSubnetBcast);
    EXPECT_EQ(r->meta.dst_port, 7100);
    EXPECT_EQ(r->meta.ttl, 33);
    EXPECT_EQ(r->meta.tos, 0x10);
    EXPECT_EQ(r->meta.arrival, at_ms(14));
    EXPECT_EQ(r->meta.pktinfo, b == b2);
    EXPECT_EQ(r->meta.spec_dst, b == b2 ? kOurIp : Ipv4Addr{});
    EXPECT_EQ(r->from, (Endpoint{kPeerIp, 5003}));
  }
  expect_all_released_once();
}

TEST_F(UdpZcFixture, CloseReleasesEveryHeldFrameOnce) {
  UdpSocket* s = bound(7000);
  UdpSocket* other = bound(7001);
  for (int i = 0; i < 6; ++i) {
    lender.refuse = i == 3;  // one copied datagram among them
    deliver(bytes_of("d" + std::to_string(i)), 7000);
  }
  lender.refuse = false;
  deliver(bytes_of("other"), 7001);
  ASSERT_EQ(lender.holds.size(), 6u);
  UdpSocket::View v[2];
  ASSERT_EQ(s->zc_borrow(v).value(), 2u);  // two lent, four readable
  ASSERT_TRUE(s->zc_release(1).has_value());
  EXPECT_EQ(lender.released.size(), 1u);

  udp.close(s);
  // The four frames s still held (one lent, three readable) are back; the
  // other socket's is not.
  EXPECT_EQ(lender.released.size(), 5u);
  EXPECT_EQ(lender.bad_releases, 0);
  ASSERT_EQ(lender.held.size(), 1u);
  EXPECT_EQ(lender.held.begin()->first, lender.holds.back());
  EXPECT_EQ(other->rx_frames_held(), 1u);
  udp.close(other);
  expect_all_released_once();
}

TEST_F(UdpZcFixture, DestroyingTheStackReleasesEveryHeldFrameOnce) {
  FakeLender l2;
  {
    SeededRandom rng2{5};
    CaptureSink sink2;
    Stack st(stack_config(), rng2, sink2);
    st.set_frame_lender(&l2);
    UdpSocket* a = st.udp().open();
    ASSERT_TRUE(a->bind({Ipv4Addr::any(), 7000}).has_value());
    a->set_zc_frames(true);
    UdpSocket* b = st.udp().open();
    ASSERT_TRUE(b->bind({Ipv4Addr::any(), 7001}).has_value());
    b->set_zc_frames(true);
    for (int i = 0; i < 4; ++i) deliver_via(st, l2, bytes_of("a" + std::to_string(i)), 7000);
    for (int i = 0; i < 3; ++i) deliver_via(st, l2, bytes_of("b" + std::to_string(i)), 7001);
    UdpSocket::View v[3];
    ASSERT_EQ(a->zc_borrow(v).value(), 3u);
    ASSERT_EQ(l2.holds.size(), 7u);
    EXPECT_TRUE(l2.released.empty());
  }
  EXPECT_TRUE(l2.held.empty());
  EXPECT_EQ(l2.released.size(), 7u);
  EXPECT_EQ(l2.bad_releases, 0);
}

TEST_F(UdpZcFixture, RcvbufAdmissionIsTheSameWithAndWithoutFrames) {
  UdpSocket* zc = bound(7000, true);
  UdpSocket* cp = bound(7001, false);
  for (UdpSocket* s : {zc, cp}) s->set_rcvbuf(3000);
  uint8_t buf[2000];
  std::vector<uint8_t> payload(1400);
  int drops = 0;
  for (int i = 0; i < 300; ++i) {
    const size_t len = size_t(i * 37 % 1400);
    for (size_t k = 0; k < len; ++k) payload[k] = uint8_t(i + k);
    const uint64_t errs = c.udp_rcvbuf_errors;
    deliver(Bytes(payload.data(), len), 7000);
    const bool zc_in = c.udp_rcvbuf_errors == errs;
    deliver(Bytes(payload.data(), len), 7001);
    const bool cp_in = c.udp_rcvbuf_errors == errs + (zc_in ? 0 : 1);
    ASSERT_EQ(zc_in, cp_in) << i;
    drops += zc_in ? 0 : 1;
    ASSERT_EQ(zc->rx_datagrams(), cp->rx_datagrams()) << i;
    ASSERT_EQ(zc->rx_charged(), cp->rx_charged()) << i;
    ASSERT_EQ(zc->rx_queued_bytes(), cp->rx_queued_bytes()) << i;
    ASSERT_EQ(zc->bytes_readable(), cp->bytes_readable()) << i;
    if (i == 150) {  // grow the ring under queued frame-backed records: they move
      ASSERT_GT(zc->rx_frames_held(), 0u);
      for (UdpSocket* s : {zc, cp}) s->set_rcvbuf(6000);
    }
    if (i % 5 == 4) {  // drain some, reading both the same
      for (int k = 0; k < 2; ++k) {
        auto a = zc->recv_from(buf);
        uint8_t buf2[2000];
        auto b = cp->recv_from(buf2);
        ASSERT_EQ(a.has_value(), b.has_value()) << i;
        if (!a) break;
        ASSERT_EQ(a->datagram_len, b->datagram_len) << i;
        ASSERT_EQ(std::memcmp(buf, buf2, a->copied), 0) << i;
      }
    }
  }
  EXPECT_GT(drops, 50);  // rcvbuf really was the limit
  EXPECT_GT(lender.holds.size(), 100u);
  EXPECT_LE(zc->rx_frames_held(), zc->rx_datagrams());
  udp.close(zc);
  expect_all_released_once();
}

TEST_F(UdpZcFixture, GrowingTheRingMovesFrameBackedRecords) {
  UdpSocket* s = bound(7000);
  s->set_rcvbuf(1);  // the smallest ring
  uint8_t buf[64];
  // Start the ring well past 0 so the records sit wrapped, then grow.
  for (int i = 0; i < 40; ++i) {
    deliver(bytes_of("warm" + std::to_string(i)), 7000);
    ASSERT_TRUE(s->recv_from(buf).has_value());
  }
  s->set_rcvbuf(100000);
  for (int i = 0; i < 8; ++i) {
    lender.refuse = i % 2 == 1;
    deliver(bytes_of("rec" + std::to_string(i)), 7000, uint16_t(100 + i));
  }
  lender.refuse = false;
  const size_t held = lender.held.size();
  ASSERT_EQ(held, 4u);
  s->set_rcvbuf(200000);  // grows and linearises the ring
  EXPECT_EQ(lender.held.size(), held);  // moving records neither holds nor releases
  for (int i = 0; i < 8; ++i) {
    auto r = s->recv_from(buf);
    ASSERT_TRUE(r.has_value()) << i;
    EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), r->copied), "rec" + std::to_string(i));
    EXPECT_EQ(r->from.port, 100 + i);
  }
  expect_all_released_once();
}

TEST_F(UdpZcFixture, GrowthDeferredByLoansKeepsFrameBackedViews) {
  UdpSocket* s = bound(7000);
  s->set_rcvbuf(1);
  deliver(bytes_of("lent"), 7000);
  deliver(bytes_of("queued"), 7000);
  UdpSocket::View v[1];
  ASSERT_EQ(s->zc_borrow(v).value(), 1u);
  s->set_rcvbuf(300000);  // deferred while lent
  EXPECT_EQ(str_of(v[0].payload), "lent");
  ASSERT_TRUE(s->zc_release(1).has_value());  // the deferred growth happens here
  uint8_t buf[16];
  auto r = s->recv_from(buf);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), r->copied), "queued");
  expect_all_released_once();
  EXPECT_EQ(lender.released.size(), 2u);
}

TEST_F(UdpZcFixture, WithZcFramesOffTheLenderIsNeverAsked) {
  UdpSocket* s = bound(7000, false);
  uint8_t buf[32];
  for (int i = 0; i < 5; ++i) deliver(bytes_of("plain" + std::to_string(i)), 7000);
  UdpSocket::View v[2];
  ASSERT_EQ(s->zc_borrow(v).value(), 2u);
  EXPECT_EQ(lender.frame_of(v[0].payload.data()), std::nullopt);
  EXPECT_EQ(str_of(v[1].payload), "plain1");
  ASSERT_TRUE(s->zc_release(2).has_value());
  while (s->recv_from(buf).has_value()) {}
  EXPECT_EQ(lender.asked, 0);

  // On, then off again: only datagrams received while it was on use frames,
  // and those still go back when read.
  s->set_zc_frames(true);
  deliver(bytes_of("framed"), 7000);
  EXPECT_EQ(lender.asked, 1);
  s->set_zc_frames(false);
  deliver(bytes_of("copied"), 7000);
  EXPECT_EQ(lender.asked, 1);
  ASSERT_EQ(s->zc_borrow(v).value(), 2u);
  EXPECT_NE(lender.frame_of(v[0].payload.data()), std::nullopt);
  EXPECT_EQ(lender.frame_of(v[1].payload.data()), std::nullopt);
  EXPECT_EQ(str_of(v[0].payload), "framed");
  EXPECT_EQ(str_of(v[1].payload), "copied");
  ASSERT_TRUE(s->zc_release(2).has_value());
  expect_all_released_once();
  EXPECT_EQ(lender.released.size(), 1u);
}

TEST_F(UdpZcFixture, EmptyDatagramsNeedNoFrame) {
  UdpSocket* s = bound(7000);
  deliver(Bytes(), 7000);
  EXPECT_EQ(lender.asked, 0);
  EXPECT_EQ(s->rx_datagrams(), 1u);
  uint8_t buf[4];
  auto r = s->recv_from(buf);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->datagram_len, 0u);
}

TEST_F(UdpZcFixture, FramesGoBackThroughTheLenderThatHeldThem) {
  UdpSocket* s = bound(7000);
  deliver(bytes_of("from one"), 7000);
  ASSERT_EQ(lender.holds.size(), 1u);
  FakeLender& two = lender2;
  stack.set_frame_lender(&two);
  // While frames of the first lender are queued, the socket copies.
  deliver_via(stack, two, bytes_of("copied"), 7000);
  EXPECT_EQ(two.asked, 0);
  uint8_t buf[16];
  auto r = s->recv_from(buf);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), r->copied), "from one");
  EXPECT_EQ(lender.released.size(), 1u);  // to the first lender
  EXPECT_EQ(two.bad_releases, 0);
  r = s->recv_from(buf);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), r->copied), "copied");
  // Now the second lender lends.
  deliver_via(stack, two, bytes_of("from two"), 7000);
  EXPECT_EQ(two.holds.size(), 1u);
  r = s->recv_from(buf);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), r->copied), "from two");
  EXPECT_EQ(two.released, two.holds);
  EXPECT_EQ(lender.bad_releases, 0);
  expect_all_released_once();
}

}  // namespace
