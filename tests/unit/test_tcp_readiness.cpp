// Readiness bits exactly as Linux tcp_poll computes them.
#include <gtest/gtest.h>

#include "tests/support/tcp_test_util.hpp"

namespace xs::test {
namespace {

constexpr uint32_t kOutBits = ev::kOut | ev::kWrNorm;
constexpr uint32_t kInBits = ev::kIn | ev::kRdNorm;

TEST(TcpReadiness, FreshSocketIsOutAndHup) {
  TcpHarness h;
  TcpSocket* s = h.tcp.open();
  EXPECT_EQ(s->readiness(), kOutBits | ev::kHup);
}

TEST(TcpReadiness, ConnectedWritableOnly) {
  Passive p;
  EXPECT_EQ(p.s->readiness(), kOutBits);
}

TEST(TcpReadiness, DataMakesReadable) {
  Passive p;
  p.h.recv(at_ms(1), {.flags = kA | kP, .seq = p.R(0), .ack = p.L(0), .payload = "x"});
  EXPECT_EQ(p.s->readiness(), kOutBits | kInBits);
  recv_str(p.s, at_ms(2));
  EXPECT_EQ(p.s->readiness(), kOutBits);
}

TEST(TcpReadiness, FinIsInAndRdHup) {
  Passive p;
  p.h.recv(at_ms(1), {.flags = kF | kA, .seq = p.R(0), .ack = p.L(0)});
  EXPECT_EQ(p.s->readiness(), kOutBits | kInBits | ev::kRdHup);
}

TEST(TcpReadiness, ShutdownBothIsHup) {
  Passive p;
  ASSERT_TRUE(p.s->shutdown(at_ms(1), true, true).has_value());
  EXPECT_EQ(p.s->readiness(), kOutBits | kInBits | ev::kRdHup | ev::kHup);
}

TEST(TcpReadiness, ResetIsErr) {
  Passive p;
  p.h.recv(at_ms(1), {.flags = kR, .seq = p.R(0)});
  EXPECT_EQ(p.s->readiness(), kOutBits | kInBits | ev::kRdHup | ev::kHup | ev::kErr);
  (void)p.s->take_error();
  EXPECT_EQ(p.s->readiness(), kOutBits | kInBits | ev::kRdHup | ev::kHup);
}

// sk_stream_is_writeable: not writable once free space < queued / 2.
TEST(TcpReadiness, FullSendBufferNotWritable) {
  Passive p;
  p.h.recv(at_ms(1), {.flags = kA, .seq = p.R(0), .ack = p.L(0), .window = 0});
  p.s->set_sndbuf(4096);  // 8192 after Linux doubling
  ASSERT_EQ(p.s->sndbuf(), 8192u);
  send_str(p.s, at_ms(2), bytes_of(5000));
  EXPECT_EQ(p.s->readiness(), kOutBits);  // 3192 free >= 5000 / 2
  send_str(p.s, at_ms(3), bytes_of(1000));
  EXPECT_EQ(p.s->readiness(), 0u);  // 2192 free < 6000 / 2
}

}  // namespace
}  // namespace xs::test
