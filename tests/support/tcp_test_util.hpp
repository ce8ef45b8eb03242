// Helpers shared by the segment-level TCP tests (tests/unit/test_tcp_*.cpp):
// a peek at socket internals, a field-by-field segment matcher, and fixtures
// that build a connection in a given state (STYLE 10).
#pragma once
#include <gtest/gtest.h>

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "tests/support/tcp_harness.hpp"

namespace xs {

inline void PrintTo(TcpState s, std::ostream* os) { *os << to_string(s); }
inline void PrintTo(SockError e, std::ostream* os) { *os << to_string(e); }

// Read-only access to TCB fields the socket API does not expose.
struct TcpSocketTestAccess {
  static uint32_t snd_wnd(const TcpSocket& s) { return s.snd_wnd_; }
  static uint32_t rcv_nxt(const TcpSocket& s) { return s.rcv_nxt_.raw(); }
  static uint32_t snd_nxt(const TcpSocket& s) { return s.snd_nxt_.raw(); }
  static uint32_t snd_una(const TcpSocket& s) { return s.snd_una_.raw(); }
  static uint32_t ts_recent(const TcpSocket& s) { return s.ts_recent_; }
  static Duration rto(const TcpSocket& s) { return s.rtt_.rto(); }
  static size_t syn_queue_len(const TcpSocket& l) { return l.syn_q_len_; }
  static void icmp_error(TcpSocket& s, Instant now, uint8_t type, uint8_t code, uint16_t mtu, Seq seq) {
    s.on_icmp_error(now, type, code, mtu, seq);
  }
};

namespace test {

inline constexpr uint8_t kS = tcpflag::kSyn;
inline constexpr uint8_t kA = tcpflag::kAck;
inline constexpr uint8_t kF = tcpflag::kFin;
inline constexpr uint8_t kR = tcpflag::kRst;
inline constexpr uint8_t kP = tcpflag::kPsh;

// The fields of a sent segment a test wants to check; unset fields are ignored.
struct Want {
  std::optional<uint8_t> flags;
  std::optional<uint32_t> seq;
  std::optional<uint32_t> ack;
  std::optional<uint16_t> window;
  std::optional<std::string> payload;
};

inline void check(const Sent& s, const Want& w, const char* what = "") {
  if (w.flags) {
    EXPECT_EQ(flags_str(s.flags), flags_str(*w.flags)) << what;
  }
  if (w.seq) {
    EXPECT_EQ(s.seq, *w.seq) << what;
  }
  if (w.ack) {
    EXPECT_EQ(s.ack, *w.ack) << what;
  }
  if (w.window) {
    EXPECT_EQ(s.window, *w.window) << what;
  }
  if (w.payload) {
    EXPECT_EQ(s.payload, *w.payload) << what;
  }
}

inline Bytes as_bytes(const std::string& d) { return Bytes(reinterpret_cast<const uint8_t*>(d.data()), d.size()); }

inline size_t send_str(TcpSocket* s, Instant t, const std::string& d, bool more = false) {
  auto r = s->send(t, as_bytes(d), more);
  EXPECT_TRUE(r.has_value()) << "send failed";
  return r ? *r : 0;
}

// Everything readable now ("" if nothing); errors are reported as "<err>".
inline std::string recv_str(TcpSocket* s, Instant t, size_t max = 1 << 20) {
  std::string buf(max, '\0');
  auto r = s->recv(t, MutBytes(reinterpret_cast<uint8_t*>(buf.data()), buf.size()));
  if (!r) return "<err>";
  buf.resize(*r);
  return buf;
}

inline Expected<size_t, SockError> recv_raw(TcpSocket* s, Instant t) {
  uint8_t buf[64];
  return s->recv(t, MutBytes(buf, sizeof buf));
}

// recv() that must return 0 (end of stream).
inline bool recv_eof(TcpSocket* s, Instant t) {
  auto r = recv_raw(s, t);
  return r.has_value() && *r == 0;
}

// A connection accepted through the listener. The SYN arrives at `syn_at`,
// the handshake ACK at `ack_at` (their difference is the first RTT sample).
struct Passive {
  TcpHarness h;
  TcpSocket* s = nullptr;
  uint32_t iss = 0;
  std::optional<uint32_t> our_tsval;  // TSval in our SYN-ACK, when timestamps are on

  explicit Passive(TcpConfig cfg = TcpHarness::default_config(), Seg syn = TcpHarness::default_syn(),
                   Instant syn_at = at_ms(0), Instant ack_at = at_ms(0), uint64_t seed = 1)
      : h(cfg, seed) {
    TcpSocket* l = h.listener();
    h.recv(syn_at, syn);
    Sent sa = h.expect_one();
    EXPECT_EQ(sa.flags, kS | kA);
    iss = sa.seq;
    if (sa.opts.ts) our_tsval = sa.opts.ts->val;
    Seg ack{.flags = kA, .seq = syn.seq + 1, .ack = iss + 1, .window = syn.window};
    if (syn.ts && sa.opts.ts) ack.ts = TcpTimestamps{syn.ts->val + 1, sa.opts.ts->val};
    h.recv(ack_at, ack);
    h.expect_none();
    auto c = l->accept(ack_at);
    EXPECT_TRUE(c.has_value());
    s = c ? *c : nullptr;
  }
  // Our sequence number `off` bytes after the SYN; the peer's likewise.
  uint32_t L(uint32_t off = 0) const { return iss + 1 + off; }
  static uint32_t R(uint32_t off = 0) { return kRemoteIss + 1 + off; }
};

inline Seg syn_with_all_options(uint32_t tsval = 100) {
  Seg s = TcpHarness::default_syn();
  s.wscale = 7;
  s.sack_permitted = true;
  s.ts = TcpTimestamps{tsval, 0};
  return s;
}

inline std::string bytes_of(size_t n, char c = 'x') { return std::string(n, c); }

}  // namespace test
}  // namespace xs
