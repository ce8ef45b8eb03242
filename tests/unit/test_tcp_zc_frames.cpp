// TCP sockets that keep in-order received payloads in the device's frames
// (TcpSocket::set_zc_frames, FrameLender, RecvQueue): no copy for the next
// in-sequence segment while the ring is empty, every held frame given back
// exactly once (recv, zc_release, close, socket or layer destruction), and
// the byte stream, windows and urgent data exactly as with copied data.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "stack/net/frame_lender.hpp"
#include "tests/support/tcp_test_util.hpp"

namespace xs::test {
namespace {

constexpr uint8_t kU = tcpflag::kUrg;
constexpr uint8_t kPoison = 0xEE;
constexpr size_t kHeadroom = 54;  // Ethernet + IPv4 + TCP headers before the payload
constexpr size_t kTailroom = 16;

std::string str_of(Bytes b) { return std::string(reinterpret_cast<const char*>(b.data()), b.size()); }

// A device's frame lender. Every frame it delivers is a buffer of its own
// (never reused or moved, so pointers stay valid for the test); only the frame
// being delivered can be held. A frame nobody holds is poisoned, as if the
// device reused it: right after its delivery when the socket did not hold it,
// and when its handle is released. A socket reading bytes it does not (or no
// longer) holds reads kPoison. Bad releases fail the test; the destructor
// checks that every held frame came back (the lender outlives the harness).
struct FakeLender : FrameLender {
  std::deque<std::vector<uint8_t>> frames;
  std::optional<size_t> current;  // the frame being delivered
  bool refuse = false;
  int asked = 0;  // hold() calls
  uint64_t next_handle = 500;
  std::map<uint64_t, size_t> held;  // handle -> frame index
  std::vector<uint64_t> holds;      // handles, in the order given out
  std::vector<size_t> hold_frame;   // frame index of holds[i]
  std::vector<uint64_t> released;   // handles, in the order given back
  int bad_releases = 0;

  ~FakeLender() override {
    EXPECT_TRUE(held.empty()) << held.size() << " frame(s) never released";
    EXPECT_EQ(bad_releases, 0);
  }

  std::optional<uint64_t> hold(Bytes b) override {
    ++asked;
    if (refuse || !current) return std::nullopt;
    const auto& f = frames[*current];
    if (b.empty() || b.data() < f.data() || b.data() + b.size() > f.data() + f.size()) return std::nullopt;
    const uint64_t h = next_handle++;
    held[h] = *current;
    holds.push_back(h);
    hold_frame.push_back(*current);
    return h;
  }
  void release(uint64_t h) override {
    auto it = held.find(h);
    if (it == held.end()) {
      ++bad_releases;
      ADD_FAILURE() << "release of unknown or already released handle " << h;
      return;
    }
    const size_t idx = it->second;
    held.erase(it);
    released.push_back(h);
    poison(idx);
  }

  size_t outstanding() const { return held.size(); }
  bool is_held(uint64_t h) const { return held.count(h) != 0; }
  void poison(size_t idx) { std::fill(frames[idx].begin(), frames[idx].end(), kPoison); }
  // The payload of frame idx as delivered (its address).
  const uint8_t* payload_of(size_t idx) const { return frames[idx].data() + kHeadroom; }
  // Whether b lies inside any frame.
  bool in_any_frame(Bytes b) const {
    for (const auto& f : frames) {
      if (b.data() >= f.data() && b.data() + b.size() <= f.data() + f.size()) return true;
    }
    return false;
  }

  // Delivers `s` with payload `d` placed in a new frame; true when the socket
  // held the frame.
  bool deliver(TcpHarness& h, Instant t, const Seg& s, const std::string& d, uint16_t src_port = kRemotePort) {
    const size_t idx = frames.size();
    frames.emplace_back(kHeadroom + d.size() + kTailroom, uint8_t{0xAB});
    std::memcpy(frames[idx].data() + kHeadroom, d.data(), d.size());
    const size_t before = holds.size();
    current = idx;
    h.recv_in_place(t, s, Bytes(frames[idx].data() + kHeadroom, d.size()), src_port);
    current.reset();
    const bool was_held = holds.size() > before;
    if (!was_held) poison(idx);  // the device reuses a frame nobody holds
    return was_held;
  }
};

struct ConnOpts {
  bool zc = true;            // set_zc_frames(true)
  bool on_listener = false;  // ... on the listener before the handshake (inherited)
  bool set_lender = true;    // give the layer the lender
  uint32_t rcvbuf = 0;       // SO_RCVBUF on the listener (0: default)
};

// An accepted connection (as Passive, but the listener's options are set
// before the handshake). The lender is the caller's, constructed before this
// so that it outlives the layer.
struct Conn {
  FakeLender& lender;
  TcpHarness h;
  TcpSocket* l = nullptr;
  TcpSocket* s = nullptr;
  uint32_t iss = 0;

  explicit Conn(FakeLender& lf, ConnOpts o = {}) : lender(lf) {
    if (o.set_lender) h.tcp.set_frame_lender(&lender);
    l = h.listener();
    if (o.rcvbuf) l->set_rcvbuf(o.rcvbuf);
    if (o.zc && o.on_listener) l->set_zc_frames(true);
    const Seg syn = TcpHarness::default_syn();
    h.recv(at_ms(0), syn);
    Sent sa = h.expect_one();
    EXPECT_EQ(sa.flags, kS | kA);
    iss = sa.seq;
    h.recv(at_ms(0), {.flags = kA, .seq = syn.seq + 1, .ack = iss + 1, .window = syn.window});
    h.expect_none();
    auto c = l->accept(at_ms(0));
    EXPECT_TRUE(c.has_value());
    s = c ? *c : nullptr;
    if (o.zc && !o.on_listener) s->set_zc_frames(true);
  }
  uint32_t L(uint32_t off = 0) const { return iss + 1 + off; }
  static uint32_t R(uint32_t off = 0) { return kRemoteIss + 1 + off; }

  // The peer's bytes `d` at stream offset `off`, in a frame of the lender.
  bool feed(Instant t, uint32_t off, const std::string& d, uint8_t flags = kA | kP, uint16_t urgent = 0) {
    return lender.deliver(h, t, Seg{.flags = flags, .seq = R(off), .ack = L(0), .urgent = urgent}, d);
  }
};

std::string recv_n(TcpSocket* s, Instant t, size_t n, bool peek = false) {
  std::string buf(n, '\0');
  auto r = s->recv(t, MutBytes(reinterpret_cast<uint8_t*>(buf.data()), buf.size()), peek);
  if (!r) return std::string("<") + to_string(r.error()) + ">";
  buf.resize(*r);
  return buf;
}

std::string recv_oob(TcpSocket* s, bool peek = false) {
  auto r = s->recv_urgent(peek);
  if (!r) return std::string("<") + to_string(r.error()) + ">";
  if (!*r) return "<eof>";
  return std::string(1, static_cast<char>(**r));
}

// ---- holding --------------------------------------------------------------------

TEST(TcpZcFrames, InOrderSegmentsHeldAndBorrowedInPlace) {
  FakeLender lender;
  Conn c(lender);
  EXPECT_TRUE(c.s->zc_frames());
  const std::string d[3] = {"hello", ", wo", "rld!"};
  uint32_t off = 0;
  for (const auto& x : d) {
    EXPECT_TRUE(c.feed(at_ms(1), off, x));
    off += static_cast<uint32_t>(x.size());
  }
  ASSERT_EQ(lender.holds.size(), 3u);
  EXPECT_EQ(lender.outstanding(), 3u);
  EXPECT_EQ(c.s->rx_frame_bytes(), 13u);
  EXPECT_EQ(c.s->bytes_readable(), 13u);

  std::vector<Bytes> spans(8);
  auto n = c.s->zc_borrow(100, spans);
  ASSERT_TRUE(n.has_value());
  ASSERT_EQ(*n, 3u);  // one span per frame, nothing in the ring
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(spans[i].data(), lender.payload_of(lender.hold_frame[i])) << "span " << i << " not in its frame";
    EXPECT_EQ(str_of(spans[i]), d[i]);
  }
  EXPECT_EQ(c.s->zc_lent(), 13u);
  EXPECT_EQ(c.s->bytes_readable(), 0u);
  EXPECT_TRUE(lender.released.empty());  // lent is not released
  ASSERT_TRUE(c.s->zc_release(at_ms(2), 13).has_value());
  EXPECT_EQ(lender.released, lender.holds);  // all, in order, once
  EXPECT_EQ(lender.outstanding(), 0u);
  EXPECT_EQ(c.s->rx_frame_bytes(), 0u);
}

TEST(TcpZcFrames, RecvCopiesAcrossFramesAndPartialReadKeepsFrame) {
  FakeLender lender;
  Conn c(lender);
  EXPECT_TRUE(c.feed(at_ms(1), 0, "abcde"));
  EXPECT_TRUE(c.feed(at_ms(1), 5, "fghij"));
  EXPECT_TRUE(c.feed(at_ms(1), 10, "klmno"));
  ASSERT_EQ(lender.holds.size(), 3u);
  const auto& hs = lender.holds;

  EXPECT_EQ(recv_n(c.s, at_ms(2), 7), "abcdefg");  // across the first two frames
  EXPECT_EQ(lender.released, std::vector<uint64_t>({hs[0]}));
  EXPECT_TRUE(lender.is_held(hs[1]));
  EXPECT_EQ(c.s->rx_frame_bytes(), 8u);
  EXPECT_EQ(recv_n(c.s, at_ms(3), 2), "hi");
  EXPECT_TRUE(lender.is_held(hs[1])) << "released before its last byte was read";
  EXPECT_EQ(recv_n(c.s, at_ms(4), 1), "j");
  EXPECT_EQ(lender.released, std::vector<uint64_t>({hs[0], hs[1]}));
  EXPECT_EQ(recv_n(c.s, at_ms(5), 100), "klmno");
  EXPECT_EQ(lender.released, lender.holds);
  EXPECT_EQ(recv_n(c.s, at_ms(6), 100), "<would block>");
  EXPECT_EQ(lender.released.size(), 3u);
}

TEST(TcpZcFrames, PeekDoesNotReleaseAndCountsIncludeFrames) {
  FakeLender lender;
  Conn c(lender);
  EXPECT_TRUE(c.feed(at_ms(1), 0, "0123"));
  EXPECT_TRUE(c.feed(at_ms(1), 4, "456789"));
  EXPECT_EQ(c.s->bytes_readable(), 10u);
  EXPECT_EQ(c.s->inq(), 10u);
  EXPECT_EQ(c.s->info(at_ms(1)).rcv_queue_bytes, 10u);
  EXPECT_TRUE(c.s->readiness() & ev::kIn);
  EXPECT_TRUE(c.s->has_normal_data());

  EXPECT_EQ(recv_n(c.s, at_ms(2), 100, /*peek=*/true), "0123456789");
  EXPECT_EQ(recv_n(c.s, at_ms(2), 6, /*peek=*/true), "012345");
  EXPECT_TRUE(lender.released.empty());
  EXPECT_EQ(c.s->bytes_readable(), 10u);

  EXPECT_EQ(recv_n(c.s, at_ms(3), 5), "01234");
  EXPECT_EQ(lender.released.size(), 1u);
  EXPECT_EQ(c.s->bytes_readable(), 5u);
  EXPECT_EQ(c.s->inq(), 5u);
  EXPECT_EQ(c.s->info(at_ms(3)).rcv_queue_bytes, 5u);
  EXPECT_EQ(recv_n(c.s, at_ms(3), 100, /*peek=*/true), "56789");
  EXPECT_EQ(lender.released.size(), 1u);
  EXPECT_EQ(recv_n(c.s, at_ms(4), 100), "56789");
  EXPECT_EQ(lender.outstanding(), 0u);
  EXPECT_EQ(c.s->bytes_readable(), 0u);
  EXPECT_FALSE(c.s->readiness() & ev::kIn);
}

// A duplicate prefix is trimmed; the rest is held at its place in the frame.
TEST(TcpZcFrames, OverlappingSegmentHeldFromTrimmedOffset) {
  FakeLender lender;
  Conn c(lender);
  EXPECT_TRUE(c.feed(at_ms(1), 0, "abcd"));
  EXPECT_TRUE(c.feed(at_ms(1), 2, "cdef"));  // "cd" already received
  ASSERT_EQ(lender.holds.size(), 2u);
  std::vector<Bytes> spans(4);
  auto n = c.s->zc_borrow(100, spans);
  ASSERT_TRUE(n.has_value());
  ASSERT_EQ(*n, 2u);
  EXPECT_EQ(str_of(spans[0]), "abcd");
  EXPECT_EQ(str_of(spans[1]), "ef");
  EXPECT_EQ(spans[1].data(), lender.payload_of(lender.hold_frame[1]) + 2);
  ASSERT_TRUE(c.s->zc_release(at_ms(2), 6).has_value());
  EXPECT_EQ(lender.outstanding(), 0u);
}

// ---- borrow / release ------------------------------------------------------------

TEST(TcpZcFrames, BorrowReleaseSplitsReleaseFramesOnlyWhenWhollyGivenBack) {
  FakeLender lender;
  Conn c(lender);
  EXPECT_TRUE(c.feed(at_ms(1), 0, "aaaa"));
  EXPECT_TRUE(c.feed(at_ms(1), 4, "bbbb"));
  lender.refuse = true;
  EXPECT_FALSE(c.feed(at_ms(1), 8, "cccc"));  // copied into the ring
  lender.refuse = false;
  EXPECT_FALSE(c.feed(at_ms(1), 12, "dddd"));  // ring not empty: copied
  ASSERT_EQ(lender.holds.size(), 2u);
  const uint64_t ha = lender.holds[0], hb = lender.holds[1];
  EXPECT_EQ(c.s->rx_frame_bytes(), 8u);
  EXPECT_EQ(c.s->bytes_readable(), 16u);

  // Borrow in pieces: 3 bytes, then 3 more (the rest of frame a, part of b).
  std::vector<Bytes> spans(8);
  auto n = c.s->zc_borrow(3, spans);
  ASSERT_TRUE(n.has_value());
  ASSERT_EQ(*n, 1u);
  EXPECT_EQ(str_of(spans[0]), "aaa");
  EXPECT_EQ(spans[0].data(), lender.payload_of(lender.hold_frame[0]));
  n = c.s->zc_borrow(3, spans);
  ASSERT_TRUE(n.has_value());
  ASSERT_EQ(*n, 2u);
  EXPECT_EQ(str_of(spans[0]), "a");
  EXPECT_EQ(spans[0].data(), lender.payload_of(lender.hold_frame[0]) + 3);
  EXPECT_EQ(str_of(spans[1]), "bb");
  EXPECT_EQ(spans[1].data(), lender.payload_of(lender.hold_frame[1]));
  // The rest: b's last two bytes, then the ring (copied: in no frame).
  n = c.s->zc_borrow(100, spans);
  ASSERT_TRUE(n.has_value());
  ASSERT_GE(*n, 2u);
  EXPECT_EQ(str_of(spans[0]), "bb");
  EXPECT_EQ(spans[0].data(), lender.payload_of(lender.hold_frame[1]) + 2);
  std::string ring;
  for (size_t i = 1; i < *n; ++i) {
    EXPECT_FALSE(lender.in_any_frame(spans[i])) << "ring span " << i << " points into a frame";
    ring += str_of(spans[i]);
  }
  EXPECT_EQ(ring, "ccccdddd");
  EXPECT_EQ(c.s->zc_lent(), 16u);
  EXPECT_EQ(c.s->bytes_readable(), 0u);

  // Release in arbitrary splits.
  ASSERT_TRUE(c.s->zc_release(at_ms(2), 2).has_value());  // inside a
  EXPECT_TRUE(lender.released.empty());
  ASSERT_TRUE(c.s->zc_release(at_ms(2), 1).has_value());  // still inside a
  EXPECT_TRUE(lender.released.empty());
  ASSERT_TRUE(c.s->zc_release(at_ms(2), 3).has_value());  // rest of a, into b
  EXPECT_EQ(lender.released, std::vector<uint64_t>({ha}));
  ASSERT_TRUE(c.s->zc_release(at_ms(2), 1).has_value());  // inside b
  EXPECT_EQ(lender.released, std::vector<uint64_t>({ha}));
  ASSERT_TRUE(c.s->zc_release(at_ms(2), 4).has_value());  // rest of b, into the ring
  EXPECT_EQ(lender.released, std::vector<uint64_t>({ha, hb}));
  EXPECT_EQ(c.s->zc_lent(), 5u);
  EXPECT_FALSE(c.s->zc_release(at_ms(2), 6).has_value());  // more than lent
  ASSERT_TRUE(c.s->zc_release(at_ms(2), 5).has_value());
  EXPECT_EQ(c.s->zc_lent(), 0u);
  EXPECT_EQ(lender.released.size(), 2u);
  EXPECT_EQ(lender.outstanding(), 0u);
  EXPECT_EQ(recv_n(c.s, at_ms(3), 100), "<would block>");
}

// Borrowing after a recv that ended inside a frame, and after a partial
// release: spans start at the first unread byte of the frame.
TEST(TcpZcFrames, BorrowAfterPartialRecvStartsInsideFrame) {
  FakeLender lender;
  Conn c(lender);
  EXPECT_TRUE(c.feed(at_ms(1), 0, "abcdef"));
  EXPECT_TRUE(c.feed(at_ms(1), 6, "ghij"));
  EXPECT_EQ(recv_n(c.s, at_ms(2), 2), "ab");
  std::vector<Bytes> spans(4);
  auto n = c.s->zc_borrow(3, spans);
  ASSERT_TRUE(n.has_value());
  ASSERT_EQ(*n, 1u);
  EXPECT_EQ(str_of(spans[0]), "cde");
  EXPECT_EQ(spans[0].data(), lender.payload_of(lender.hold_frame[0]) + 2);
  ASSERT_TRUE(c.s->zc_release(at_ms(3), 2).has_value());  // "cd"
  EXPECT_TRUE(lender.released.empty());
  n = c.s->zc_borrow(100, spans);  // after the still lent 'e'
  ASSERT_TRUE(n.has_value());
  ASSERT_EQ(*n, 2u);
  EXPECT_EQ(str_of(spans[0]), "f");
  EXPECT_EQ(spans[0].data(), lender.payload_of(lender.hold_frame[0]) + 5);
  EXPECT_EQ(str_of(spans[1]), "ghij");
  ASSERT_TRUE(c.s->zc_release(at_ms(4), 1).has_value());  // 'e'
  EXPECT_TRUE(lender.released.empty());
  ASSERT_TRUE(c.s->zc_release(at_ms(4), 1).has_value());  // 'f': frame 0 done
  EXPECT_EQ(lender.released.size(), 1u);
  EXPECT_EQ(c.s->bytes_readable(), 0u);
  ASSERT_TRUE(c.s->zc_release(at_ms(5), 4).has_value());
  EXPECT_EQ(lender.released, lender.holds);
}

// A consuming recv waits for lent bytes (Busy); MSG_PEEK looks past them.
TEST(TcpZcFrames, RecvWhileLentAndBorrowThenRecvRest) {
  FakeLender lender;
  Conn c(lender);
  EXPECT_TRUE(c.feed(at_ms(1), 0, "xyz"));
  EXPECT_TRUE(c.feed(at_ms(1), 3, "uvw"));
  std::vector<Bytes> spans(1);  // one span only: the first frame
  auto n = c.s->zc_borrow(100, spans);
  ASSERT_TRUE(n.has_value());
  ASSERT_EQ(*n, 1u);
  EXPECT_EQ(str_of(spans[0]), "xyz");
  EXPECT_EQ(c.s->bytes_readable(), 3u);
  EXPECT_EQ(recv_n(c.s, at_ms(2), 100), "<busy>");
  EXPECT_EQ(recv_n(c.s, at_ms(2), 100, /*peek=*/true), "uvw");
  ASSERT_TRUE(c.s->zc_release(at_ms(3), 3).has_value());
  EXPECT_EQ(lender.released.size(), 1u);
  EXPECT_EQ(recv_n(c.s, at_ms(3), 100), "uvw");
  EXPECT_EQ(lender.released, lender.holds);
}

// ---- when frames are not held ----------------------------------------------------

TEST(TcpZcFrames, RefusedHoldCopiesAndLaterSegmentsFollowInOrder) {
  FakeLender lender;
  Conn c(lender);
  EXPECT_TRUE(c.feed(at_ms(1), 0, "A1"));
  lender.refuse = true;
  EXPECT_FALSE(c.feed(at_ms(1), 2, "B2"));  // frame poisoned right after: must be copied
  lender.refuse = false;
  EXPECT_FALSE(c.feed(at_ms(1), 4, "C3"));  // the ring has bytes: copied behind them
  EXPECT_FALSE(c.feed(at_ms(1), 6, "D4"));
  EXPECT_EQ(lender.holds.size(), 1u);
  EXPECT_EQ(c.s->rx_frame_bytes(), 2u);
  EXPECT_EQ(c.s->bytes_readable(), 8u);
  EXPECT_EQ(recv_n(c.s, at_ms(2), 3), "A1B");
  // The frame was read; the ring still has bytes, so new data is still copied.
  EXPECT_FALSE(c.feed(at_ms(3), 8, "E5"));
  EXPECT_EQ(recv_n(c.s, at_ms(4), 100), "2C3D4E5");
  EXPECT_EQ(lender.outstanding(), 0u);
  // Everything read: the ring is empty again and frames are held again.
  EXPECT_TRUE(c.feed(at_ms(5), 10, "F6"));
  EXPECT_TRUE(c.feed(at_ms(5), 12, "G7"));
  EXPECT_EQ(recv_n(c.s, at_ms(6), 100), "F6G7");
  EXPECT_EQ(lender.outstanding(), 0u);
  EXPECT_EQ(lender.released.size(), 3u);
}

TEST(TcpZcFrames, RefusedFirstSegmentStaysInOrder) {
  FakeLender lender;
  Conn c(lender);
  lender.refuse = true;
  EXPECT_FALSE(c.feed(at_ms(1), 0, "first-"));
  lender.refuse = false;
  EXPECT_FALSE(c.feed(at_ms(1), 6, "second-"));
  EXPECT_EQ(recv_n(c.s, at_ms(2), 4), "firs");
  EXPECT_FALSE(c.feed(at_ms(2), 13, "third"));  // ring still has "t-second-"
  EXPECT_EQ(recv_n(c.s, at_ms(3), 100), "t-second-third");
  EXPECT_TRUE(c.feed(at_ms(4), 18, "fourth"));
  EXPECT_EQ(recv_n(c.s, at_ms(5), 100), "fourth");
}

TEST(TcpZcFrames, OutOfOrderCopiedAndHoleFilledInExactOrder) {
  FakeLender lender;
  Conn c(lender);
  EXPECT_TRUE(c.feed(at_ms(1), 0, "0123"));
  c.h.take();
  EXPECT_FALSE(c.feed(at_ms(2), 8, "89ab"));  // out of order: copied (ring)
  {
    auto v = c.h.take();
    ASSERT_FALSE(v.empty());
    EXPECT_EQ(v.back().ack, Conn::R(4));  // dup ACK
  }
  EXPECT_FALSE(c.feed(at_ms(3), 12, "cd"));  // out of order, contiguous with it
  EXPECT_EQ(c.s->bytes_readable(), 4u);
  EXPECT_EQ(recv_n(c.s, at_ms(3), 2), "01");  // reading the frame meanwhile
  EXPECT_FALSE(c.feed(at_ms(4), 4, "4567"));  // fills the hole: copied (ofo queued)
  {
    auto v = c.h.take();
    ASSERT_FALSE(v.empty());
    EXPECT_EQ(v.back().ack, Conn::R(14));
  }
  EXPECT_EQ(c.s->bytes_readable(), 12u);
  EXPECT_EQ(c.s->rx_frame_bytes(), 2u);
  EXPECT_EQ(recv_n(c.s, at_ms(5), 100), "23456789abcd");
  EXPECT_EQ(lender.outstanding(), 0u);
  EXPECT_EQ(lender.holds.size(), 1u);
  EXPECT_TRUE(c.feed(at_ms(6), 14, "ef"));
  EXPECT_EQ(recv_n(c.s, at_ms(6), 100), "ef");
}

// The out-of-order segment arrives first: the in-order one filling the hole
// is copied (the ring holds data after it).
TEST(TcpZcFrames, OutOfOrderBeforeAnyData) {
  FakeLender lender;
  Conn c(lender);
  EXPECT_FALSE(c.feed(at_ms(1), 5, "world"));
  EXPECT_FALSE(c.feed(at_ms(2), 0, "hello"));
  EXPECT_EQ(lender.holds.size(), 0u);
  EXPECT_EQ(recv_n(c.s, at_ms(3), 100), "helloworld");
  EXPECT_TRUE(c.feed(at_ms(4), 10, "!"));
  EXPECT_EQ(recv_n(c.s, at_ms(4), 100), "!");
}

// ---- window ------------------------------------------------------------------------

struct WindowTrace {
  std::vector<std::pair<uint32_t, uint16_t>> acks;  // (ack, window) of every segment sent
  std::vector<uint32_t> space;                      // receive space after each step
  std::string read;
};

WindowTrace run_window_script(FakeLender& lender, bool zc) {
  WindowTrace tr;
  Conn c(lender, {.zc = zc, .on_listener = true, .rcvbuf = 4096});  // rcvbuf 8192
  EXPECT_EQ(c.s->rcvbuf(), 8192u);
  auto collect = [&](Instant until) {
    c.h.run_until(until);
    for (const Sent& s : c.h.take()) tr.acks.emplace_back(s.ack - Conn::R(0), s.window);
    tr.space.push_back(c.s->info(until).rcv_ssthresh);
  };
  uint32_t off = 0;
  int64_t t = 1;
  for (int i = 0; i < 6; ++i) {
    const std::string d = bytes_of(1000, static_cast<char>('a' + i));
    c.feed(at_ms(t), off, d);
    off += 1000;
    collect(at_ms(t + 100));  // delayed ACKs go out
    t += 200;
  }
  tr.read += recv_n(c.s, at_ms(t), 1500);
  collect(at_ms(t + 100));
  t += 200;
  tr.read += recv_n(c.s, at_ms(t), 3000);
  collect(at_ms(t + 100));
  t += 200;
  c.feed(at_ms(t), off, bytes_of(1000, 'z'));
  collect(at_ms(t + 100));
  t += 200;
  tr.read += recv_n(c.s, at_ms(t), 100000);
  collect(at_ms(t + 100));
  return tr;
}

TEST(TcpZcFrames, AdvertisedWindowCountsFrameBytesLikeCopiedBytes) {
  FakeLender zl, cl;
  WindowTrace z = run_window_script(zl, true);
  WindowTrace cp = run_window_script(cl, false);
  EXPECT_EQ(zl.holds.size(), 7u);  // every segment held
  EXPECT_EQ(cl.asked, 0);          // zc_frames off: never asked
  EXPECT_EQ(z.read, cp.read);
  EXPECT_EQ(z.read.size(), 7000u);
  EXPECT_EQ(z.acks, cp.acks);
  EXPECT_EQ(z.space, cp.space);
  // The window did shrink with the held bytes (8192 - 6000 queued at most).
  ASSERT_FALSE(z.space.empty());
  EXPECT_EQ(z.space[5], 8192u - 6000u);
  uint16_t min_wnd = 65535;
  for (auto [a, w] : z.acks) min_wnd = std::min(min_wnd, w);
  EXPECT_LE(min_wnd, 8192 - 5000);
}

// Lent frame bytes keep occupying the window until released.
TEST(TcpZcFrames, LentFrameBytesOccupyWindowUntilReleased) {
  FakeLender lender;
  Conn c(lender, {.on_listener = true, .rcvbuf = 4096});
  EXPECT_TRUE(c.feed(at_ms(1), 0, bytes_of(3000)));
  EXPECT_EQ(c.s->info(at_ms(1)).rcv_ssthresh, 8192u - 3000u);
  std::vector<Bytes> spans(4);
  ASSERT_EQ(*c.s->zc_borrow(10000, spans), 1u);
  EXPECT_EQ(c.s->info(at_ms(1)).rcv_ssthresh, 8192u - 3000u);
  c.h.run_until(at_ms(200));
  c.h.take();
  ASSERT_TRUE(c.s->zc_release(at_ms(300), 3000).has_value());
  EXPECT_EQ(c.s->info(at_ms(300)).rcv_ssthresh, 8192u);
  auto v = c.h.take();  // window update (opened by more than rcvbuf/2 or 2 MSS)
  ASSERT_FALSE(v.empty());
  EXPECT_EQ(v.back().window, 8192);
  EXPECT_EQ(v.back().ack, Conn::R(3000));
}

// ---- close / destruction ------------------------------------------------------------

TEST(TcpZcFrames, CloseWithUnreadFramesSendsRstAndReleasesAll) {
  FakeLender lender;
  Conn c(lender);
  EXPECT_TRUE(c.feed(at_ms(1), 0, "unread"));
  EXPECT_TRUE(c.feed(at_ms(1), 6, "-data"));
  EXPECT_EQ(recv_n(c.s, at_ms(2), 2), "un");
  c.h.run_until(at_ms(100));
  c.h.take();
  c.s->close(at_ms(200));
  auto v = c.h.take();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_TRUE(v[0].has(kR)) << flags_str(v[0].flags);
  EXPECT_EQ(v[0].seq, c.L(0));
  c.h.poll(at_ms(201));  // deferred destruction
  EXPECT_EQ(lender.outstanding(), 0u);
  EXPECT_EQ(lender.released.size(), 2u);
  EXPECT_EQ(c.h.tcp.impl().socket_count(), 1u);  // only the listener is left
}

TEST(TcpZcFrames, CloseAfterBorrowWithoutReleaseReleasesFrames) {
  FakeLender lender;
  Conn c(lender);
  EXPECT_TRUE(c.feed(at_ms(1), 0, "one"));
  EXPECT_TRUE(c.feed(at_ms(1), 3, "two"));
  std::vector<Bytes> spans(4);
  ASSERT_EQ(*c.s->zc_borrow(100, spans), 2u);
  c.h.run_until(at_ms(100));
  c.h.take();
  c.s->close(at_ms(200));  // lent bytes count as read: graceful close
  EXPECT_EQ(lender.outstanding(), 0u);
  EXPECT_EQ(lender.released, lender.holds);
  auto v = c.h.take();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_TRUE(v[0].has(kF)) << flags_str(v[0].flags);
  EXPECT_FALSE(v[0].has(kR));
}

TEST(TcpZcFrames, CloseAfterPartialBorrowResetsAndReleasesAll) {
  FakeLender lender;
  Conn c(lender);
  EXPECT_TRUE(c.feed(at_ms(1), 0, "one"));
  EXPECT_TRUE(c.feed(at_ms(1), 3, "two"));
  EXPECT_TRUE(c.feed(at_ms(1), 6, "six"));
  std::vector<Bytes> spans(4);
  ASSERT_EQ(*c.s->zc_borrow(4, spans), 2u);  // "one" + "t"
  c.h.run_until(at_ms(100));
  c.h.take();
  c.s->close(at_ms(200));
  EXPECT_EQ(lender.released.size(), 1u);  // the wholly lent frame, at once
  auto v = c.h.take();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_TRUE(v[0].has(kR)) << flags_str(v[0].flags);
  c.h.poll(at_ms(201));
  EXPECT_EQ(lender.outstanding(), 0u);
  EXPECT_EQ(lender.released.size(), 3u);
}

TEST(TcpZcFrames, PeerResetThenCloseReleasesFrames) {
  FakeLender lender;
  Conn c(lender);
  EXPECT_TRUE(c.feed(at_ms(1), 0, "abc"));
  c.h.recv(at_ms(2), {.flags = kR, .seq = Conn::R(3)});
  EXPECT_EQ(c.s->state(), TcpState::Closed);
  EXPECT_EQ(lender.outstanding(), 1u);  // still the socket's until closed
  c.s->close(at_ms(3));
  c.h.poll(at_ms(4));
  EXPECT_EQ(lender.outstanding(), 0u);
}

TEST(TcpZcFrames, DestroyingLayerReleasesHeldAndLentFrames) {
  FakeLender lender;
  {
    Conn c(lender);
    EXPECT_TRUE(c.feed(at_ms(1), 0, "aa"));
    EXPECT_TRUE(c.feed(at_ms(1), 2, "bb"));
    EXPECT_TRUE(c.feed(at_ms(1), 4, "cc"));
    std::vector<Bytes> spans(1);
    ASSERT_EQ(*c.s->zc_borrow(100, spans), 1u);
    EXPECT_EQ(recv_n(c.s, at_ms(2), 1, /*peek=*/true), "b");
    EXPECT_EQ(lender.outstanding(), 3u);
  }
  EXPECT_EQ(lender.outstanding(), 0u);
  EXPECT_EQ(lender.released.size(), 3u);
  EXPECT_EQ(lender.bad_releases, 0);
}

// ---- options ---------------------------------------------------------------------

TEST(TcpZcFrames, OffByDefaultLenderNeverAsked) {
  FakeLender lender;
  Conn c(lender, {.zc = false});
  EXPECT_FALSE(c.s->zc_frames());
  EXPECT_FALSE(c.feed(at_ms(1), 0, "plain"));
  EXPECT_FALSE(c.feed(at_ms(1), 5, " copy"));
  EXPECT_EQ(lender.asked, 0);
  EXPECT_EQ(c.s->rx_frame_bytes(), 0u);
  EXPECT_EQ(recv_n(c.s, at_ms(2), 100), "plain copy");  // frames were poisoned: a copy
}

TEST(TcpZcFrames, WithoutLenderCopies) {
  FakeLender lender;
  Conn c(lender, {.set_lender = false});
  EXPECT_TRUE(c.s->zc_frames());
  EXPECT_FALSE(c.feed(at_ms(1), 0, "no lender"));
  EXPECT_EQ(lender.asked, 0);
  EXPECT_EQ(recv_n(c.s, at_ms(2), 100), "no lender");
}

TEST(TcpZcFrames, TurnedOffStopsHoldingButHeldFramesStay) {
  FakeLender lender;
  Conn c(lender);
  EXPECT_TRUE(c.feed(at_ms(1), 0, "held"));
  c.s->set_zc_frames(false);
  const int asked = lender.asked;
  EXPECT_EQ(recv_n(c.s, at_ms(2), 100), "held");
  EXPECT_FALSE(c.feed(at_ms(3), 4, "copied"));
  EXPECT_EQ(lender.asked, asked);
  EXPECT_EQ(recv_n(c.s, at_ms(4), 100), "copied");
  EXPECT_EQ(lender.outstanding(), 0u);
}

TEST(TcpZcFrames, AcceptedSocketsInheritFromListener) {
  FakeLender lender;
  Conn c(lender, {.on_listener = true});
  EXPECT_TRUE(c.l->zc_frames());
  EXPECT_TRUE(c.s->zc_frames());
  EXPECT_TRUE(c.feed(at_ms(1), 0, "inherited"));
  EXPECT_EQ(recv_n(c.s, at_ms(2), 100), "inherited");

  // A second connection, not yet accepted, holds frames too; closing the
  // listener resets it and gives them back.
  c.h.run_until(at_ms(9));
  c.h.take();
  const uint16_t port2 = kRemotePort + 1;
  Seg syn = TcpHarness::default_syn();
  c.h.recv(at_ms(10), syn, port2);
  Sent sa = c.h.expect_one();
  ASSERT_EQ(sa.flags, kS | kA);
  c.h.recv(at_ms(10), {.flags = kA, .seq = syn.seq + 1, .ack = sa.seq + 1, .window = 65535}, port2);
  c.h.expect_none();
  EXPECT_EQ(c.l->accept_queue_len(), 1u);
  EXPECT_TRUE(lender.deliver(c.h, at_ms(11), {.flags = kA | kP, .seq = syn.seq + 1, .ack = sa.seq + 1}, "queued", port2));
  EXPECT_EQ(lender.outstanding(), 1u);
  c.h.take();
  c.l->close(at_ms(12));
  c.h.poll(at_ms(13));
  EXPECT_EQ(lender.outstanding(), 0u);
  EXPECT_EQ(lender.released.size(), 2u);

  // zc_frames off on a listener: its children copy.
  FakeLender l2;
  Conn off(l2, {.zc = false, .on_listener = true});
  EXPECT_FALSE(off.s->zc_frames());
  EXPECT_FALSE(off.feed(at_ms(1), 0, "x"));
  EXPECT_EQ(l2.asked, 0);
}

// Data on the ACK that completes the handshake goes to the new socket,
// which has the listener's zc_frames already: held.
TEST(TcpZcFrames, DataOnHandshakeAckHeldByInheritingChild) {
  FakeLender lender;
  TcpHarness h;
  h.tcp.set_frame_lender(&lender);
  TcpSocket* l = h.listener();
  l->set_zc_frames(true);
  const Seg syn = TcpHarness::default_syn();
  h.recv(at_ms(0), syn);
  Sent sa = h.expect_one();
  ASSERT_EQ(sa.flags, kS | kA);
  EXPECT_TRUE(lender.deliver(h, at_ms(1), {.flags = kA | kP, .seq = syn.seq + 1, .ack = sa.seq + 1}, "early"));
  auto c = l->accept(at_ms(2));
  ASSERT_TRUE(c.has_value());
  EXPECT_TRUE((*c)->zc_frames());
  EXPECT_EQ((*c)->rx_frame_bytes(), 5u);
  EXPECT_EQ(recv_n(*c, at_ms(3), 100), "early");
  EXPECT_EQ(lender.outstanding(), 0u);
}

// A segment larger than the window is trimmed, and the part that fits held.
TEST(TcpZcFrames, SegmentBeyondWindowTrimmedAndHeld) {
  FakeLender lender;
  Conn c(lender, {.on_listener = true, .rcvbuf = 4096});  // window 8192
  c.h.take();
  const std::string big = bytes_of(6000, 'p') + bytes_of(4000, 'q');
  EXPECT_TRUE(c.feed(at_ms(1), 0, big));
  EXPECT_EQ(c.s->rx_frame_bytes(), 8192u);
  std::vector<Bytes> spans(4);
  ASSERT_EQ(*c.s->zc_borrow(100000, spans), 1u);
  EXPECT_EQ(spans[0].size(), 8192u);
  EXPECT_EQ(spans[0].data(), lender.payload_of(lender.hold_frame[0]));
  EXPECT_EQ(str_of(spans[0]), big.substr(0, 8192));
  c.h.run_until(at_ms(100));
  auto v = c.h.take();
  ASSERT_FALSE(v.empty());
  EXPECT_EQ(v.back().ack, Conn::R(8192));
  EXPECT_EQ(v.back().window, 0);
  ASSERT_TRUE(c.s->zc_release(at_ms(200), 8192).has_value());
  EXPECT_EQ(lender.outstanding(), 0u);
  // The rest, retransmitted, is held in its own frame.
  EXPECT_TRUE(c.feed(at_ms(300), 8192, big.substr(8192)));
  EXPECT_EQ(recv_n(c.s, at_ms(301), 100000), big.substr(8192));
}

// ---- urgent data ----------------------------------------------------------------

TEST(TcpZcFrames, UrgentSegmentCopiedAndOobWorksBehindFrames) {
  FakeLender lender;
  Conn c(lender);
  EXPECT_TRUE(c.feed(at_ms(1), 0, "abc"));
  EXPECT_TRUE(c.feed(at_ms(1), 3, "def"));
  // 'i' is urgent (pointer one past it).
  EXPECT_FALSE(c.feed(at_ms(2), 6, "ghi", kA | kP | kU, 3));
  EXPECT_EQ(lender.holds.size(), 2u);
  EXPECT_TRUE(c.s->readiness() & ev::kPri);
  EXPECT_EQ(c.s->inq(), 8u);  // up to the mark
  EXPECT_EQ(recv_oob(c.s, /*peek=*/true), "i");
  EXPECT_FALSE(c.s->at_urgent_mark());
  EXPECT_EQ(recv_n(c.s, at_ms(3), 4), "abcd");
  EXPECT_EQ(lender.released.size(), 1u);
  // In-order data while urgent data is pending: copied.
  EXPECT_FALSE(c.feed(at_ms(3), 9, "jk"));
  EXPECT_EQ(recv_n(c.s, at_ms(4), 100), "efgh");  // stops at the mark
  EXPECT_EQ(lender.outstanding(), 0u);
  EXPECT_TRUE(c.s->at_urgent_mark());
  EXPECT_EQ(recv_oob(c.s), "i");
  EXPECT_EQ(recv_oob(c.s), "<invalid argument>");
  EXPECT_EQ(recv_n(c.s, at_ms(5), 100), "jk");  // the urgent byte is not in the stream
  EXPECT_FALSE(c.s->at_urgent_mark());
  EXPECT_FALSE(c.s->readiness() & ev::kPri);
  // Urgent data over, everything read: frames are held again.
  EXPECT_TRUE(c.feed(at_ms(6), 11, "lm"));
  EXPECT_EQ(recv_n(c.s, at_ms(6), 100), "lm");
}

// The pointer arrives ahead of its byte (TCP_URG_NOTYET) behind held frames;
// the segment with the byte is copied and the byte found.
TEST(TcpZcFrames, UrgentPointerAheadBehindFrames) {
  FakeLender lender;
  Conn c(lender);
  EXPECT_TRUE(c.feed(at_ms(1), 0, "0123"));
  EXPECT_FALSE(c.feed(at_ms(2), 4, "45", kA | kU, 5));  // urgent byte at offset 8
  EXPECT_EQ(recv_oob(c.s), "<would block>");
  EXPECT_FALSE(c.feed(at_ms(3), 6, "67!9"));  // carries it, no URG
  EXPECT_EQ(recv_oob(c.s, /*peek=*/true), "!");
  EXPECT_EQ(c.s->inq(), 8u);
  EXPECT_EQ(recv_n(c.s, at_ms(4), 100), "01234567");
  EXPECT_TRUE(c.s->at_urgent_mark());
  EXPECT_EQ(recv_oob(c.s), "!");
  EXPECT_EQ(recv_n(c.s, at_ms(5), 100), "9");
  EXPECT_EQ(lender.outstanding(), 0u);
}

// SO_OOBINLINE: the urgent byte stays in the stream behind the frames.
TEST(TcpZcFrames, UrgentInlineBehindFrames) {
  FakeLender lender;
  Conn c(lender);
  c.s->options().oobinline = true;
  EXPECT_TRUE(c.feed(at_ms(1), 0, "ab"));
  EXPECT_FALSE(c.feed(at_ms(2), 2, "cde", kA | kP | kU, 2));  // 'd' urgent
  EXPECT_EQ(c.s->inq(), 5u);
  EXPECT_EQ(recv_n(c.s, at_ms(3), 100), "abc");
  EXPECT_TRUE(c.s->at_urgent_mark());
  EXPECT_EQ(recv_n(c.s, at_ms(4), 100), "de");
  EXPECT_EQ(lender.outstanding(), 0u);
}

// ---- limits -----------------------------------------------------------------------

TEST(TcpZcFrames, FrameSlotsLimitThenCopies) {
  FakeLender lender;
  Conn c(lender);
  const size_t slots = TcpSocket::kZcFrameSlots;
  EXPECT_EQ(slots, 256u);
  std::string all;
  for (size_t i = 0; i < slots; ++i) {
    const std::string d(1, static_cast<char>('A' + i % 26));
    ASSERT_TRUE(c.feed(at_ms(1), static_cast<uint32_t>(i), d)) << "frame " << i;
    all += d;
  }
  c.h.take();
  EXPECT_EQ(lender.outstanding(), slots);
  EXPECT_FALSE(c.feed(at_ms(1), static_cast<uint32_t>(slots), "#"));  // one past the slots: copied
  all += "#";
  EXPECT_FALSE(c.feed(at_ms(1), static_cast<uint32_t>(slots + 1), "$"));  // ring not empty
  all += "$";
  EXPECT_EQ(c.s->rx_frame_bytes(), slots);
  EXPECT_EQ(c.s->bytes_readable(), slots + 2);
  // Reading one frame frees a slot, but the ring has bytes: still copied.
  EXPECT_EQ(recv_n(c.s, at_ms(2), 1), all.substr(0, 1));
  EXPECT_FALSE(c.feed(at_ms(2), static_cast<uint32_t>(slots + 2), "%"));
  all += "%";
  EXPECT_EQ(recv_n(c.s, at_ms(3), 100000), all.substr(1));
  EXPECT_EQ(lender.outstanding(), 0u);
  EXPECT_EQ(lender.released, lender.holds);
  EXPECT_TRUE(c.feed(at_ms(4), static_cast<uint32_t>(slots + 3), "again"));
  EXPECT_EQ(recv_n(c.s, at_ms(4), 100), "again");
}

// Many frames: the circular frame list wraps while bytes are read and borrowed.
TEST(TcpZcFrames, FrameListWrapsAround) {
  FakeLender lender;
  Conn c(lender);
  std::string expect, got;
  uint32_t off = 0;
  // Each round holds three quarters of the slots, so five rounds wrap the list.
  const int per_round = static_cast<int>(TcpSocket::kZcFrameSlots) * 3 / 4;
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < per_round; ++i) {
      const std::string d = std::to_string(off % 10);
      ASSERT_TRUE(c.feed(at_ms(1 + round), off, d));
      expect += d;
      off += 1;
    }
    // Half by recv, the rest by borrow/release.
    got += recv_n(c.s, at_ms(1 + round), static_cast<size_t>(per_round / 2));
    std::vector<Bytes> spans(1000);
    auto n = c.s->zc_borrow(100000, spans);
    ASSERT_TRUE(n.has_value());
    EXPECT_EQ(*n, static_cast<size_t>(per_round - per_round / 2));
    for (size_t k = 0; k < *n; ++k) got += str_of(spans[k]);
    ASSERT_TRUE(c.s->zc_release(at_ms(1 + round), c.s->zc_lent()).has_value());
    EXPECT_EQ(lender.outstanding(), 0u);
    c.h.take();
  }
  EXPECT_EQ(got, expect);
  EXPECT_EQ(lender.released, lender.holds);
}

// Data and FIN in one held segment: the bytes, then end of stream.
TEST(TcpZcFrames, DataWithFinHeld) {
  FakeLender lender;
  Conn c(lender);
  EXPECT_TRUE(c.feed(at_ms(1), 0, "bye", kA | kP | kF));
  EXPECT_EQ(c.s->state(), TcpState::CloseWait);
  EXPECT_EQ(recv_n(c.s, at_ms(2), 100), "bye");
  EXPECT_EQ(recv_n(c.s, at_ms(2), 100), "");
  EXPECT_EQ(lender.outstanding(), 0u);
}

}  // namespace
}  // namespace xs::test
