// First end-to-end checks of the TCP core through the segment harness.
#include <gtest/gtest.h>

#include "tests/support/tcp_harness.hpp"

namespace xs::test {
namespace {

TEST(TcpSmoke, PassiveOpenEchoClose) {
  TcpHarness h;
  uint32_t iss = 0;
  TcpSocket* c = h.accept_established(at_ms(0), &iss);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->state(), TcpState::Established);
  h.recv(at_ms(1), {.flags = tcpflag::kAck | tcpflag::kPsh, .seq = kRemoteIss + 1, .ack = iss + 1, .payload = "hello"});
  // Quick-ACK mode at the start: the data is acknowledged at once.
  Sent a = h.expect_one();
  EXPECT_EQ(a.ack, kRemoteIss + 6);
  char buf[16];
  auto n = c->recv(at_ms(2), MutBytes(reinterpret_cast<uint8_t*>(buf), sizeof buf));
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(std::string(buf, *n), "hello");
  auto w = c->send(at_ms(2), Bytes(reinterpret_cast<const uint8_t*>("world"), 5));
  ASSERT_TRUE(w.has_value());
  Sent d = h.expect_one();
  EXPECT_EQ(d.payload, "world");
  EXPECT_EQ(d.seq, iss + 1);
  c->close(at_ms(3));
  Sent fin = h.expect_one();
  EXPECT_TRUE(fin.has(tcpflag::kFin));
  EXPECT_EQ(fin.seq, iss + 6);
  EXPECT_EQ(c->state(), TcpState::FinWait1);
}

TEST(TcpSmoke, ActiveOpen) {
  TcpHarness h;
  uint32_t iss = 0;
  Seg synack = TcpHarness::default_syn();
  TcpSocket* s = h.connect_established(at_ms(0), &iss, synack);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->snd_mss(), 1460u);
}

}  // namespace
}  // namespace xs::test
