// Send window handling: zero-window probing (RFC 9293 3.8.6.1, Linux
// tcp_probe_timer) and resuming when the window reopens.
#include <gtest/gtest.h>

#include "tests/support/tcp_test_util.hpp"

namespace xs::test {
namespace {

// Handshake RTT 10 ms: RTO = 10 ms + max(4 * 5 ms, 200 ms) = 210 ms.
struct ZeroWindow : Passive {
  explicit ZeroWindow(TcpConfig cfg = TcpHarness::default_config())
      : Passive(cfg, TcpHarness::default_syn(), at_ms(0), at_ms(10)) {
    h.recv(at_ms(20), {.flags = kA, .seq = R(0), .ack = L(0), .window = 0});
    h.expect_none();
    send_str(s, at_ms(30), "hello");
    h.expect_none();  // nothing fits a zero window
  }
};

TEST(TcpZeroWindow, ProbesWithBackoff) {
  ZeroWindow p;
  EXPECT_EQ(TcpSocketTestAccess::snd_wnd(*p.s), 0u);
  p.h.run_until(at_ms(239));
  p.h.expect_none();
  p.h.run_until(at_ms(240));  // first probe one RTO after the data was held
  check(p.h.expect_one(), {.flags = kA, .seq = p.L(0) - 1, .ack = p.R(0), .payload = ""});
  p.h.run_until(at_ms(659));
  p.h.expect_none();
  p.h.run_until(at_ms(660));  // +2 RTO
  check(p.h.expect_one(), {.flags = kA, .seq = p.L(0) - 1, .payload = ""});
  p.h.run_until(at_ms(1499));
  p.h.expect_none();
  p.h.run_until(at_ms(1500));  // +4 RTO
  check(p.h.expect_one(), {.flags = kA, .seq = p.L(0) - 1, .payload = ""});
  EXPECT_EQ(p.h.counters.tcp_zero_window_probes, 3u);
  EXPECT_EQ(p.s->state(), TcpState::Established);
}

TEST(TcpZeroWindow, ReopenedWindowResumesSending) {
  ZeroWindow p;
  p.h.run_until(at_ms(240));
  p.h.expect_one();
  p.h.recv(at_ms(300), {.flags = kA, .seq = p.R(0), .ack = p.L(0), .window = 65535});
  check(p.h.expect_one(), {.flags = kA | kP, .seq = p.L(0), .ack = p.R(0), .payload = "hello"});
  // No more probes; the data is under the normal RTO again (210 ms, no backoff).
  p.h.run_until(at_ms(509));
  p.h.expect_none();
  p.h.run_until(at_ms(510));
  check(p.h.expect_one(), {.seq = p.L(0), .payload = "hello"}, "retransmission");
  EXPECT_EQ(p.h.counters.tcp_zero_window_probes, 1u);
}

// A window update that arrives before the persist timer fires also resumes.
TEST(TcpZeroWindow, WindowUpdateBeforeProbe) {
  ZeroWindow p;
  p.h.recv(at_ms(100), {.flags = kA, .seq = p.R(0), .ack = p.L(0), .window = 3});
  // Sender SWS avoidance does not hold a window-limited segment when nothing is in flight.
  check(p.h.expect_one(), {.flags = kA, .seq = p.L(0), .payload = "hel"});
}

// Linux: a peer that answers every probe (with a zero window) is probed
// forever; only unanswered probes count towards tcp_retries2.
TEST(TcpZeroWindow, AnsweredProbesNeverTimeOut) {
  TcpConfig cfg = TcpHarness::default_config();
  cfg.retries2 = 2;
  ZeroWindow p(cfg);
  std::vector<int64_t> at;
  for (int i = 0; i < 6; ++i) {
    Instant t = p.h.tcp.poll_at();
    p.h.run_until(t);
    Sent probe = p.h.expect_one();
    EXPECT_EQ(probe.seq, p.L(0) - 1);
    at.push_back(t.us / 1000);
    p.h.recv(t + millis(1), {.flags = kA, .seq = p.R(0), .ack = p.L(0), .window = 0});
    p.h.expect_none();
  }
  EXPECT_EQ(p.s->state(), TcpState::Established);
  // The interval still doubles while the window stays shut (tcp_probe0_when).
  EXPECT_EQ(at, (std::vector<int64_t>{240, 660, 1500, 3180, 6540, 13260}));
}

// Unanswered probes: give up after tcp_retries2 of them (ETIMEDOUT, no RST).
TEST(TcpZeroWindow, UnansweredProbesTimeOut) {
  TcpConfig cfg = TcpHarness::default_config();
  cfg.retries2 = 2;
  ZeroWindow p(cfg);
  p.h.run_until(at_ms(660));
  EXPECT_EQ(p.h.take().size(), 2u);
  EXPECT_EQ(p.s->state(), TcpState::Established);
  p.h.run_until(at_ms(1500));
  p.h.expect_none();
  EXPECT_EQ(p.s->state(), TcpState::Closed);
  EXPECT_EQ(p.s->take_error(), SockError::TimedOut);
}


// A retransmission from the peer (old SEG.SEQ) can carry the newest ACK and a
// closed window. The window must be taken from it (Linux
// tcp_may_update_window): keeping the old window would put SND.UNA + SND.WND
// beyond the edge the peer offered and we would send outside its window. Found
// on the veth lab with reordering: the kernel, whose buffer was full, dropped
// all of it and the transfer deadlocked.
TEST(TcpSendWindow, RetransmissionWithNewAckUpdatesTheWindow) {
  Passive p;
  p.h.recv(at_ms(20), {.flags = kA, .seq = p.R(0), .ack = p.L(0), .window = 1000});
  p.h.expect_none();
  send_str(p.s, at_ms(30), std::string(3000, 'x'));
  auto out = p.h.take();
  ASSERT_EQ(out.size(), 1u);  // only what the 1000-byte window allows
  EXPECT_EQ(out[0].payload.size(), 1000u);
  // The peer's first data segment is lost; its second (out of order)
  // advances SND.WL1 to R(100), still acking nothing.
  p.h.recv(at_ms(41), {.flags = kA, .seq = p.R(100), .ack = p.L(0), .window = 1000, .payload = std::string(100, 'b')});
  p.h.take();
  // The peer retransmits R(0) with ack L(1000) and window 0: the right edge
  // stays L(1000), so nothing more may be sent.
  p.h.recv(at_ms(50), {.flags = kA, .seq = p.R(0), .ack = p.L(1000), .window = 0, .payload = std::string(100, 'a')});
  EXPECT_EQ(TcpSocketTestAccess::snd_wnd(*p.s), 0u);
  for (const Sent& seg : p.h.take()) {
    EXPECT_EQ(seg.payload, "") << "data sent beyond the peer's window";
    EXPECT_EQ(seg.seq, p.L(1000));
  }
}

// When the peer's window has shrunk below SND.NXT, a pure ACK carries the
// window's right edge, not SND.NXT (Linux tcp_acceptable_seq), so the peer
// finds it in its window and processes the acknowledgement.
TEST(TcpSendWindow, PureAckUsesTheRightEdgeWhenTheWindowShrank) {
  Passive p;
  p.h.recv(at_ms(20), {.flags = kA, .seq = p.R(0), .ack = p.L(0), .window = 1000});
  send_str(p.s, at_ms(30), std::string(1000, 'x'));
  ASSERT_EQ(p.h.take().size(), 1u);
  // The peer shrinks its window to 500 (right edge L(500) < SND.NXT = L(1000)) and sends data.
  p.h.recv(at_ms(40), {.flags = kA, .seq = p.R(0), .ack = p.L(0), .window = 500, .payload = "data"});
  p.h.run_until(at_ms(100));  // the delayed ACK, if it was delayed
  auto acks = p.h.take();
  ASSERT_FALSE(acks.empty());
  check(acks.back(), {.flags = kA, .seq = p.L(500), .ack = p.R(4), .payload = ""});
}

}  // namespace
}  // namespace xs::test
