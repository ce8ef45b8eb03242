// Urgent data (RFC 9293 3.8.5, RFC 6093 BSD reading as Linux: the pointer is
// one past the urgent byte): URG and the pointer on the wire (Linux
// tcp_mark_urg / __tcp_transmit_skb), and the receive side (tcp_check_urg,
// tcp_urg, tcp_recv_urg, the mark in tcp_recvmsg).
#include <gtest/gtest.h>

#include "tests/support/tcp_test_util.hpp"

namespace xs::test {
namespace {

constexpr uint8_t kU = tcpflag::kUrg;

size_t send_oob(TcpSocket* s, Instant t, const std::string& d) {
  auto r = s->send(t, as_bytes(d), false, true);
  EXPECT_TRUE(r.has_value());
  return r ? *r : 0;
}

std::string recv_oob(TcpSocket* s, bool peek = false) {
  auto r = s->recv_urgent(peek);
  if (!r) return std::string("<") + to_string(r.error()) + ">";
  if (!*r) return "<eof>";
  return std::string(1, static_cast<char>(**r));
}

// ---- sending ----------------------------------------------------------------

TEST(TcpUrgentSend, LastByteOfCallIsUrgent) {
  Passive p;
  send_oob(p.s, at_ms(1), "abc");
  Sent s = p.h.expect_one();
  check(s, {.flags = kA | kP | kU, .seq = p.L(0), .payload = "abc"});
  EXPECT_EQ(s.urgent, 3);  // SND.UP - SEG.SEQ: one past 'c'
  // Once SND.UP is acknowledged urgent mode ends: later data has no URG.
  p.h.recv(at_ms(10), {.flags = kA, .seq = p.R(0), .ack = p.L(3)});
  send_str(p.s, at_ms(11), "d");
  Sent d = p.h.expect_one();
  check(d, {.flags = kA | kP, .seq = p.L(3), .payload = "d"});
  EXPECT_EQ(d.urgent, 0);
}

// Linux tcp_nagle_test: urgent mode overrides Nagle (and cork/MSG_MORE).
TEST(TcpUrgentSend, PushedPastNagleAndCork) {
  Passive p;
  send_str(p.s, at_ms(1), "a");
  p.h.expect_one();
  send_str(p.s, at_ms(2), "b");
  p.h.expect_none();  // Nagle: "a" is unacknowledged
  send_oob(p.s, at_ms(3), "c");
  Sent s = p.h.expect_one();
  check(s, {.flags = kA | kP | kU, .seq = p.L(1), .payload = "bc"});
  EXPECT_EQ(s.urgent, 2);

  Passive q;
  q.s->set_cork(at_ms(1), true);
  send_str(q.s, at_ms(1), "xy", /*more=*/true);
  q.h.expect_none();
  send_oob(q.s, at_ms(2), "z");
  Sent z = q.h.expect_one();
  check(z, {.flags = kA | kP | kU, .seq = q.L(0), .payload = "xyz"});
  EXPECT_EQ(z.urgent, 3);
}

// Every segment starting before SND.UP carries URG: a retransmission does; an
// ACK sent after the urgent byte (SEG.SEQ = SND.UP) does not.
TEST(TcpUrgentSend, RetransmissionCarriesUrgButLaterAckDoesNot) {
  Passive p;
  send_oob(p.s, at_ms(1), "abc");
  p.h.expect_one();
  p.h.recv(at_ms(2), {.flags = kA | kP, .seq = p.R(0), .ack = p.L(0), .payload = "q"});
  for (const Sent& a : p.h.take()) {
    EXPECT_FALSE(a.has(kU)) << "pure ACK at SND.NXT = SND.UP";
  }
  p.h.run_until(at_ms(1500));
  auto v = p.h.take();
  ASSERT_FALSE(v.empty());
  check(v[0], {.flags = kA | kP | kU, .seq = p.L(0), .payload = "abc"});
  EXPECT_EQ(v[0].urgent, 3);
}

// A send larger than a segment: every segment carries URG, the pointer
// counted from its own SEQ.
TEST(TcpUrgentSend, PointerCountedFromEachSegment) {
  Passive p;
  send_oob(p.s, at_ms(1), bytes_of(3000));
  auto v = p.h.take();
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0].urgent, 3000);
  EXPECT_EQ(v[1].urgent, 1540);
  EXPECT_EQ(v[2].urgent, 80);
  for (const Sent& s : v) EXPECT_TRUE(s.has(kU));
}

// SND.UP 64 KiB or more ahead of a segment: the pointer is clamped to 0xFFFF.
TEST(TcpUrgentSend, PointerClampedFarAhead) {
  Passive p;
  p.s->set_sndbuf(1 << 20);
  send_oob(p.s, at_ms(1), bytes_of(100000));
  auto v = p.h.take();
  ASSERT_GE(v.size(), 2u);
  EXPECT_TRUE(v[0].has(kU));
  EXPECT_EQ(v[0].urgent, 0xFFFF);
  EXPECT_TRUE(v[1].has(kU));
  EXPECT_EQ(v[1].urgent, 0xFFFF);
}

// ---- receiving ----------------------------------------------------------------

TEST(TcpUrgentRecv, ByteKeptAsideAndStreamStopsAtMark) {
  Passive p;
  EXPECT_EQ(recv_oob(p.s), "<invalid argument>");  // none yet: EINVAL
  EXPECT_FALSE(p.s->at_urgent_mark());
  p.h.recv(at_ms(1), {.flags = kA | kP | kU, .seq = p.R(0), .ack = p.L(0), .payload = "abc", .urgent = 3});
  EXPECT_TRUE(p.s->readiness() & ev::kPri);
  EXPECT_EQ(p.s->inq(), 2u);  // tcp_inq: up to the mark
  EXPECT_EQ(recv_oob(p.s, /*peek=*/true), "c");
  EXPECT_EQ(recv_str(p.s, at_ms(2)), "ab");  // stops at the mark
  EXPECT_TRUE(p.s->at_urgent_mark());
  EXPECT_FALSE(p.s->readiness() & ev::kIn);  // only the urgent byte is left
  EXPECT_EQ(recv_oob(p.s), "c");
  EXPECT_FALSE(p.s->readiness() & ev::kPri);
  EXPECT_EQ(recv_oob(p.s), "<invalid argument>");  // already read
  EXPECT_TRUE(p.s->at_urgent_mark());
  p.h.recv(at_ms(3), {.flags = kA | kP, .seq = p.R(3), .ack = p.L(0), .payload = "de"});
  EXPECT_EQ(recv_str(p.s, at_ms(4)), "de");  // the urgent byte is not in the stream
  EXPECT_FALSE(p.s->at_urgent_mark());
}

// The pointer arrives before the byte (Linux TCP_URG_NOTYET): recv(MSG_OOB)
// says EAGAIN; the byte is taken from the later segment that carries it.
TEST(TcpUrgentRecv, ByteInLaterSegment) {
  Passive p;
  p.h.recv(at_ms(1), {.flags = kA | kP | kU, .seq = p.R(0), .ack = p.L(0), .payload = "ab", .urgent = 4});
  EXPECT_EQ(recv_oob(p.s), "<would block>");
  EXPECT_FALSE(p.s->readiness() & ev::kPri);
  EXPECT_EQ(recv_str(p.s, at_ms(2)), "ab");
  EXPECT_FALSE(p.s->at_urgent_mark());
  // The urgent byte is 'd' (R(3)); this segment no longer sets URG.
  p.h.recv(at_ms(3), {.flags = kA | kP, .seq = p.R(2), .ack = p.L(0), .payload = "cdef"});
  EXPECT_TRUE(p.s->readiness() & ev::kPri);
  EXPECT_EQ(recv_str(p.s, at_ms(4)), "c");
  EXPECT_TRUE(p.s->at_urgent_mark());
  EXPECT_EQ(recv_oob(p.s), "d");
  EXPECT_EQ(recv_str(p.s, at_ms(5)), "ef");
}

// One urgent send over three segments (as Linux sends it: each carries URG,
// the pointer counted from its own SEQ): the byte comes with the last one.
TEST(TcpUrgentRecv, PointerAheadAcrossSegments) {
  Passive p;
  const std::string a = bytes_of(1460, 'a'), b = bytes_of(1460, 'b'), c = bytes_of(79, 'c') + "!";
  p.h.recv(at_ms(1), {.flags = kA | kU, .seq = p.R(0), .ack = p.L(0), .payload = a, .urgent = 3000});
  p.h.recv(at_ms(1), {.flags = kA | kU, .seq = p.R(1460), .ack = p.L(0), .payload = b, .urgent = 1540});
  EXPECT_EQ(recv_oob(p.s), "<would block>");
  EXPECT_EQ(p.s->inq(), 2920u);
  p.h.recv(at_ms(1), {.flags = kA | kP | kU, .seq = p.R(2920), .ack = p.L(0), .payload = c, .urgent = 80});
  EXPECT_TRUE(p.s->readiness() & ev::kPri);
  EXPECT_EQ(p.s->inq(), 2999u);
  EXPECT_EQ(recv_str(p.s, at_ms(2)).size(), 2999u);
  EXPECT_TRUE(p.s->at_urgent_mark());
  EXPECT_EQ(recv_oob(p.s), "!");
}

// A retransmitted pointer to a byte already received is not replayed
// (tcp_check_urg: before(ptr, rcv_nxt)).
TEST(TcpUrgentRecv, RetransmittedPointerIgnoredOnceByteReceived) {
  Passive p;
  p.h.recv(at_ms(1), {.flags = kA | kP | kU, .seq = p.R(0), .ack = p.L(0), .payload = "abc", .urgent = 3});
  EXPECT_EQ(recv_oob(p.s), "c");
  // A duplicate of the same segment: the pointer is behind RCV.NXT, ignored.
  p.h.recv(at_ms(2), {.flags = kA | kP | kU, .seq = p.R(0), .ack = p.L(0), .payload = "abc", .urgent = 3});
  EXPECT_EQ(recv_oob(p.s), "<invalid argument>");
  EXPECT_EQ(recv_str(p.s, at_ms(3)), "ab");
}

// Reading past an unread urgent byte ends the urgent data (Linux tcp_recvmsg).
TEST(TcpUrgentRecv, UnreadByteLostWhenReadPast) {
  Passive p;
  p.h.recv(at_ms(1), {.flags = kA | kP | kU, .seq = p.R(0), .ack = p.L(0), .payload = "abcde", .urgent = 3});
  EXPECT_EQ(recv_str(p.s, at_ms(2)), "ab");
  EXPECT_EQ(recv_str(p.s, at_ms(3)), "de");
  EXPECT_EQ(recv_oob(p.s), "<invalid argument>");
  EXPECT_FALSE(p.s->readiness() & ev::kPri);
}

// A new urgent byte replaces an unread one; the old one, if next to read,
// leaves the stream (tcp_check_urg).
TEST(TcpUrgentRecv, NewUrgentByteReplacesOld) {
  Passive p;
  p.h.recv(at_ms(1), {.flags = kA | kP | kU, .seq = p.R(0), .ack = p.L(0), .payload = "ab", .urgent = 2});
  EXPECT_EQ(recv_str(p.s, at_ms(2)), "a");
  p.h.recv(at_ms(3), {.flags = kA | kP | kU, .seq = p.R(2), .ack = p.L(0), .payload = "cd", .urgent = 2});
  EXPECT_EQ(recv_oob(p.s), "d");
  EXPECT_EQ(recv_str(p.s, at_ms(4)), "c");
  EXPECT_EQ(recv_str(p.s, at_ms(5)), "<err>");  // only 'd', skipped: EAGAIN
}

TEST(TcpUrgentRecv, OobInlineKeepsByteInStream) {
  Passive p;
  p.s->options().oobinline = true;
  p.h.recv(at_ms(1), {.flags = kA | kP | kU, .seq = p.R(0), .ack = p.L(0), .payload = "abcd", .urgent = 3});
  EXPECT_TRUE(p.s->readiness() & ev::kPri);
  EXPECT_EQ(recv_oob(p.s), "<invalid argument>");
  EXPECT_EQ(p.s->inq(), 4u);
  EXPECT_EQ(recv_str(p.s, at_ms(2)), "ab");
  EXPECT_TRUE(p.s->at_urgent_mark());
  EXPECT_TRUE(p.s->readiness() & ev::kIn);
  EXPECT_EQ(recv_str(p.s, at_ms(3)), "cd");
  EXPECT_FALSE(p.s->at_urgent_mark());
  EXPECT_FALSE(p.s->readiness() & ev::kPri);
}

// recv(MSG_OOB) never blocks; after the peer's FIN with the byte missing it
// returns 0.
TEST(TcpUrgentRecv, PointerWithoutByteThenFin) {
  Passive p;
  p.h.recv(at_ms(1), {.flags = kA | kU, .seq = p.R(0), .ack = p.L(0), .payload = "a", .urgent = 5});
  EXPECT_EQ(recv_oob(p.s), "<would block>");
  p.h.recv(at_ms(2), {.flags = kA | kF, .seq = p.R(1), .ack = p.L(0)});
  EXPECT_EQ(recv_oob(p.s), "<eof>");
}

}  // namespace
}  // namespace xs::test
