// The zero-copy calls (xs_zc_*, docs/zerocopy.md) over two engines joined by
// an in-memory device pair: loans in place, release and the receive window,
// reservations and commit, UDP datagram views.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/sockios.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "socketapi/memory_device.hpp"
#include "socketapi/native_runtime.hpp"
#include "socketapi/xstack.h"
#include "socketapi/xstack.hpp"
#include "tests/support/native_pair.hpp"
#include "tests/support/signal_scope.hpp"

namespace xs {
namespace {

using native::Runtime;
using namespace testing_native;
using Clock = std::chrono::steady_clock;

// The byte at stream offset i: a period (251) that is not a power of two, so
// a view at the wrong ring offset cannot match by accident.
uint8_t pat(size_t i) { return uint8_t((i * 7 + 3) % 251); }

bool matches(const xs_zc_iov& v, size_t stream_off) {
  auto* p = static_cast<const uint8_t*>(v.base);
  for (size_t i = 0; i < v.len; ++i)
    if (p[i] != pat(stream_off + i)) return false;
  return true;
}

// Two runtimes over an in-memory link (tests/support/native_pair.hpp).
using ZcPair = NativePair;

void send_pattern(Runtime& r, int fd, size_t off, size_t len) {
  std::vector<uint8_t> buf(len);
  for (size_t i = 0; i < len; ++i) buf[i] = pat(off + i);
  size_t done = 0;
  while (done < len) {
    ssize_t n = r.send(fd, buf.data() + done, len - done, MSG_NOSIGNAL);
    ASSERT_GT(n, 0) << strerror(errno);
    done += static_cast<size_t>(n);
  }
}

int readable(Runtime& r, int fd) {
  int n = -1;
  EXPECT_EQ(r.ioctl(fd, FIONREAD, &n), 0);
  return n;
}

// Waits up to 5 s for FIONREAD on `fd` to reach `n`.
bool wait_readable(Runtime& r, int fd, int n) {
  auto end = Clock::now() + std::chrono::seconds(5);
  while (Clock::now() < end) {
    if (readable(r, fd) >= n) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;
}

// For a failed wait: both ends' queues and TCP state.
std::string tcp_state(Runtime& ra, int c, Runtime& rb, int s) {
  int outq = -1, nsd = -1;
  ra.ioctl(c, SIOCOUTQ, &outq);
  ra.ioctl(c, SIOCOUTQNSD, &nsd);
  tcp_info ta{}, tb{};
  socklen_t la = sizeof ta, lb = sizeof tb;
  ra.getsockopt(c, IPPROTO_TCP, TCP_INFO, &ta, &la);
  rb.getsockopt(s, IPPROTO_TCP, TCP_INFO, &tb, &lb);
  return "sender outq=" + std::to_string(outq) + " unsent=" + std::to_string(nsd) +
         " cwnd=" + std::to_string(ta.tcpi_snd_cwnd) + " probes=" + std::to_string(ta.tcpi_probes) +
         " rto=" + std::to_string(ta.tcpi_rto) + " retrans=" + std::to_string(ta.tcpi_total_retrans) +
         "; receiver readable=" + std::to_string(readable(rb, s)) + " rcv_space=" + std::to_string(tb.tcpi_rcv_ssthresh);
}

size_t total(const xs_zc_iov* v, int n) {
  size_t t = 0;
  for (int i = 0; i < n; ++i) t += v[i].len;
  return t;
}

// ---- TCP receive -------------------------------------------------------------

TEST(ZeroCopyTcp, BorrowHoldsTheWindowClosedAndReleaseReopensIt) {
  ZcPair p;
  auto [c, s] = p.connected(6001, /*rcvbuf=*/8192);  // Linux doubles: 16384
  constexpr size_t kTotal = 65536;
  std::thread writer([&, c = c] { send_pattern(*p.a, c, 0, kTotal); });
  // Borrow everything that arrives without releasing any of it.
  size_t lent = 0;
  xs_zc_iov v[2];
  auto last_growth = Clock::now();
  auto end = last_growth + std::chrono::seconds(5);
  while (Clock::now() < end && Clock::now() - last_growth < std::chrono::milliseconds(300)) {
    int n = p.b->zc_recv(s, v, 2, MSG_DONTWAIT);
    if (n < 0) {
      ASSERT_EQ(errno, EAGAIN);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      continue;
    }
    ASSERT_GT(n, 0);
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(matches(v[i], lent)) << "view at stream offset " << lent;
      lent += v[i].len;
    }
    last_growth = Clock::now();
  }
  // The loans occupy the receive buffer: no more than it holds arrived, so
  // most of the 64 KiB is still waiting at the sender. (The stack lets the
  // queue overshoot rcvbuf by a few hundred bytes, as a plain recv-less
  // socket shows too -- window rounding: at most one segment.)
  EXPECT_GT(lent, 0u);
  EXPECT_LE(lent, 16384u + 1460u);
  EXPECT_EQ(readable(*p.b, s), 0);  // lent bytes count as read
  int outq = 0;
  EXPECT_EQ(p.a->ioctl(c, SIOCOUTQ, &outq), 0);
  EXPECT_GT(outq, 0);
  // Releasing reopens the window; the rest arrives, intact, in order.
  ASSERT_EQ(p.b->zc_release(s, lent), 0);
  size_t got = lent;
  end = Clock::now() + std::chrono::seconds(10);
  while (got < kTotal && Clock::now() < end) {
    int n = p.b->zc_recv(s, v, 2, MSG_DONTWAIT);
    if (n < 0) {
      ASSERT_EQ(errno, EAGAIN);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(matches(v[i], got)) << "view at stream offset " << got;
      got += v[i].len;
    }
    ASSERT_EQ(p.b->zc_release(s, total(v, n)), 0);
  }
  writer.join();
  EXPECT_EQ(got, kTotal);
}

TEST(ZeroCopyTcp, PartialReleaseAndPlainRecvWhileLent) {
  ZcPair p;
  auto [c, s] = p.connected(6002);
  send_pattern(*p.a, c, 0, 1000);
  ASSERT_TRUE(wait_readable(*p.b, s, 1000));
  xs_zc_iov v[2];
  ASSERT_EQ(p.b->zc_recv(s, v, 2, 0), 1);
  EXPECT_EQ(v[0].len, 1000u);
  EXPECT_TRUE(matches(v[0], 0));
  EXPECT_EQ(v[0].from.sin_family, 0);  // TCP: no source per view
  EXPECT_EQ(readable(*p.b, s), 0);
  // Nothing more to lend.
  EXPECT_EQ(p.b->zc_recv(s, v, 2, MSG_DONTWAIT), -1);
  EXPECT_EQ(errno, EAGAIN);
  // Partial release: the first 300 bytes go back; the rest stays lent and intact.
  EXPECT_EQ(p.b->zc_release(s, 300), 0);
  EXPECT_EQ(p.b->zc_release(s, 701), -1);
  EXPECT_EQ(errno, EINVAL);
  auto* rest = static_cast<const uint8_t*>(v[0].base) + 300;
  for (size_t i = 0; i < 700; ++i) ASSERT_EQ(rest[i], pat(300 + i));
  // New data: a consuming recv must wait for the loan (EBUSY); MSG_PEEK and
  // another loan see the bytes after the lent ones.
  send_pattern(*p.a, c, 1000, 10);
  ASSERT_TRUE(wait_readable(*p.b, s, 10));
  uint8_t buf[32];
  EXPECT_EQ(p.b->recv(s, buf, sizeof buf, 0), -1);
  EXPECT_EQ(errno, EBUSY);
  EXPECT_EQ(p.b->recv(s, buf, sizeof buf, MSG_PEEK), 10);
  EXPECT_EQ(buf[0], pat(1000));
  ASSERT_EQ(p.b->zc_recv(s, v, 2, 0), 1);
  EXPECT_EQ(v[0].len, 10u);
  EXPECT_TRUE(matches(v[0], 1000));
  EXPECT_EQ(p.b->zc_release(s, 710), 0);
  EXPECT_EQ(p.b->zc_release(s, 1), -1);
  EXPECT_EQ(errno, EINVAL);
  // Everything released: plain recv works again.
  EXPECT_EQ(p.b->recv(s, buf, sizeof buf, MSG_DONTWAIT), -1);
  EXPECT_EQ(errno, EAGAIN);
  send_pattern(*p.a, c, 1010, 5);
  ASSERT_TRUE(wait_readable(*p.b, s, 5));
  EXPECT_EQ(p.b->recv(s, buf, sizeof buf, 0), 5);
  EXPECT_EQ(buf[4], pat(1014));
}

TEST(ZeroCopyTcp, WrappedQueueGivesTwoViewsInOrder) {
  ZcPair p;
  // SO_RCVBUF 4096 (8192 doubled, no auto-tuning): the ring stays at its
  // 16 KiB minimum, so 6000 bytes after 12000 consumed must wrap.
  auto [c, s] = p.connected(6003, 4096);
  std::vector<uint8_t> sink(12000);
  std::thread w1([&, c = c] { send_pattern(*p.a, c, 0, 12000); });
  size_t got = 0;
  while (got < 12000) {
    ssize_t n = p.b->recv(s, sink.data() + got, sink.size() - got, 0);
    ASSERT_GT(n, 0);
    got += static_cast<size_t>(n);
  }
  w1.join();
  // Each batch stays well below the 8192-byte buffer: receiver SWS avoidance
  // (RFC 9293 3.8.6.2.2) may hold back the last MSS of window.
  send_pattern(*p.a, c, 12000, 6000);  // ring 12000..16383, then 0..1615
  ASSERT_TRUE(wait_readable(*p.b, s, 6000)) << tcp_state(*p.a, c, *p.b, s);
  xs_zc_iov v[2];
  // One view at most when asked for one: the part before the wrap.
  ASSERT_EQ(p.b->zc_recv(s, v, 1, 0), 1);
  size_t first = v[0].len;
  EXPECT_LT(first, 6000u);
  EXPECT_TRUE(matches(v[0], 12000));
  ASSERT_EQ(p.b->zc_release(s, first), 0);
  // The part after the wrap, from offset 0 of the ring: contiguous.
  ASSERT_EQ(p.b->zc_recv(s, v, 2, 0), 1);
  EXPECT_EQ(first + v[0].len, 6000u);
  EXPECT_TRUE(matches(v[0], 12000 + first));
  ASSERT_EQ(p.b->zc_release(s, v[0].len), 0);
  // Move the head on to 13616 (two plain 6000-byte reads), then 6000 bytes
  // fill 13616..16383 and wrap to 0..3231: a two-view loan.
  for (size_t off = 18000; off < 30000; off += 6000) {
    send_pattern(*p.a, c, off, 6000);
    ASSERT_TRUE(wait_readable(*p.b, s, 6000)) << tcp_state(*p.a, c, *p.b, s);
    ASSERT_EQ(p.b->recv(s, sink.data(), 6000, MSG_WAITALL), 6000);
  }
  send_pattern(*p.a, c, 30000, 6000);
  ASSERT_TRUE(wait_readable(*p.b, s, 6000)) << tcp_state(*p.a, c, *p.b, s);
  ASSERT_EQ(p.b->zc_recv(s, v, 2, 0), 2);
  EXPECT_EQ(total(v, 2), 6000u);
  EXPECT_TRUE(matches(v[0], 30000));
  EXPECT_TRUE(matches(v[1], 30000 + v[0].len));
  EXPECT_EQ(p.b->zc_release(s, 6000), 0);
}

TEST(ZeroCopyTcp, NonBlockingTimeoutAndBlockingWakeup) {
  ZcPair p;
  auto [c, s] = p.connected(6004);
  xs_zc_iov v[2];
  EXPECT_EQ(p.b->zc_recv(s, v, 2, MSG_DONTWAIT), -1);
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_EQ(p.b->zc_recv(s, v, 0, 0), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(p.b->zc_recv(s, v, 2, MSG_PEEK), -1);
  EXPECT_EQ(errno, EINVAL);
  // SO_RCVTIMEO bounds a blocking loan.
  timeval tv{0, 50000};
  ASSERT_EQ(p.b->setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
  auto t0 = Clock::now();
  EXPECT_EQ(p.b->zc_recv(s, v, 2, 0), -1);
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_GE(Clock::now() - t0, std::chrono::milliseconds(40));
  // A blocked loan wakes when data arrives.
  tv = {5, 0};
  ASSERT_EQ(p.b->setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
  std::thread w([&, c = c] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    send_pattern(*p.a, c, 0, 100);
  });
  int n = p.b->zc_recv(s, v, 2, 0);
  w.join();
  ASSERT_EQ(n, 1);
  EXPECT_GT(v[0].len, 0u);
  EXPECT_TRUE(matches(v[0], 0));
  // Not a socket of ours / not a socket.
  EXPECT_EQ(p.b->zc_recv(12345, v, 2, 0), -1);
  EXPECT_EQ(errno, EBADF);
}

TEST(ZeroCopyTcp, BlockingLoanAndReservationEndWithEintrOnASignal) {
  ZcPair p;
  auto [c, s] = p.connected(6009, /*rcvbuf=*/4096);
  testing_signals::HandlerScope h(SIGUSR1, /*restart=*/false);
  std::thread t = testing_signals::signal_later(pthread_self(), 50);
  xs_zc_iov v[2];
  errno = 0;
  EXPECT_EQ(p.b->zc_recv(s, v, 2, 0), -1);
  EXPECT_EQ(errno, EINTR);
  t.join();
  // A reservation waiting for send-buffer room: fill it first (the peer
  // never reads), then block.
  int small = 4096;
  ASSERT_EQ(p.a->setsockopt(c, SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
  int n = 0;
  for (int round = 0; round < 50; ++round) {  // until the peer's window and our buffer stay full
    int filled = 0;
    while (p.a->zc_send_reserve(c, 65536, v, &n, MSG_DONTWAIT) > 0) {
      ASSERT_GT(p.a->zc_send_commit(c, v[0].len, 0), 0);
      filled++;
    }
    ASSERT_EQ(errno, EAGAIN);
    if (filled == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::thread t2 = testing_signals::signal_later(pthread_self(), 50);
  errno = 0;
  EXPECT_EQ(p.a->zc_send_reserve(c, 100, v, &n, 0), -1);
  EXPECT_EQ(errno, EINTR);
  t2.join();
}

TEST(ZeroCopyTcp, EndOfStreamAfterFin) {
  ZcPair p;
  auto [c, s] = p.connected(6005);
  send_pattern(*p.a, c, 0, 3);
  ASSERT_EQ(p.a->shutdown(c, SHUT_WR), 0);
  xs_zc_iov v[2];
  ASSERT_EQ(p.b->zc_recv(s, v, 2, 0), 1);
  EXPECT_EQ(v[0].len, 3u);
  EXPECT_TRUE(matches(v[0], 0));
  // End of stream, while the three bytes are still lent and after.
  EXPECT_EQ(p.b->zc_recv(s, v, 2, 0), 0);
  EXPECT_EQ(p.b->zc_release(s, 3), 0);
  EXPECT_EQ(p.b->zc_recv(s, v, 2, 0), 0);
  EXPECT_EQ(p.b->close(s), 0);
  char buf[8];
  EXPECT_EQ(p.a->recv(c, buf, sizeof buf, 0), 0);
}

TEST(ZeroCopyTcp, CloseWithLentBytesSendsFinNotRst) {
  ZcPair p;
  auto [c, s] = p.connected(6006);
  send_pattern(*p.a, c, 0, 500);
  ASSERT_TRUE(wait_readable(*p.b, s, 500));
  xs_zc_iov v[2];
  ASSERT_EQ(p.b->zc_recv(s, v, 2, 0), 1);
  EXPECT_EQ(p.b->close(s), 0);
  char buf[8];
  EXPECT_EQ(p.a->recv(c, buf, sizeof buf, 0), 0);  // orderly close, not ECONNRESET
}

TEST(ZeroCopyTcp, ResetGivesEconnresetAndLoansStayReadable) {
  ZcPair p;
  auto [c, s] = p.connected(6007);
  send_pattern(*p.a, c, 0, 200);
  ASSERT_TRUE(wait_readable(*p.b, s, 200));
  xs_zc_iov v[2];
  ASSERT_EQ(p.b->zc_recv(s, v, 2, 0), 1);
  linger lg{1, 0};
  ASSERT_EQ(p.a->setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  ASSERT_EQ(p.a->close(c), 0);  // RST
  pollfd pf{s, POLLIN, 0};
  ASSERT_EQ(p.b->poll(&pf, 1, 5000), 1);
  EXPECT_EQ(p.b->zc_recv(s, v + 1, 1, 0), -1);
  EXPECT_EQ(errno, ECONNRESET);
  // The loan is still valid until released or closed.
  EXPECT_TRUE(matches(v[0], 0));
  EXPECT_EQ(p.b->zc_release(s, 200), 0);
  EXPECT_EQ(p.b->zc_recv(s, v, 2, 0), 0);  // after the error: end of stream, as recv
}

TEST(ZeroCopyTcp, BorrowedBytesStayWhileMoreDataArrives) {
  ZcPair p;
  auto [c, s] = p.connected(6008);
  send_pattern(*p.a, c, 0, 4000);
  ASSERT_TRUE(wait_readable(*p.b, s, 4000));
  xs_zc_iov v[2];
  ASSERT_EQ(p.b->zc_recv(s, v, 2, 0), 1);
  ASSERT_EQ(v[0].len, 4000u);
  // 100 KiB more arrive behind the loan (the engine thread writes the ring
  // meanwhile); the window is the receive buffer minus the loan.
  std::thread w([&, c = c] { send_pattern(*p.a, c, 4000, 100000); });
  size_t got = 4000;
  std::vector<xs_zc_iov> later;
  auto end = Clock::now() + std::chrono::seconds(10);
  xs_zc_iov more[2];
  while (Clock::now() < end) {
    ASSERT_TRUE(matches(v[0], 0)) << "lent bytes overwritten after " << got;
    int n = p.b->zc_recv(s, more, 2, MSG_DONTWAIT);
    if (n < 0) {
      if (got >= 4000 + 100000) break;
      ASSERT_EQ(errno, EAGAIN);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(matches(more[i], got));
      got += more[i].len;
    }
    // Give back only what came after the first loan: release is oldest
    // first, so the first 4000 bytes must stay lent -- release them last.
    if (got - 4000 > 32768) break;
  }
  EXPECT_TRUE(matches(v[0], 0));
  EXPECT_GT(got, 4000u);
  ASSERT_EQ(p.b->zc_release(s, got), 0);
  while (got < 104000 && Clock::now() < end) {
    int n = p.b->zc_recv(s, more, 2, MSG_DONTWAIT);
    if (n < 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(matches(more[i], got));
      got += more[i].len;
    }
    ASSERT_EQ(p.b->zc_release(s, total(more, n)), 0);
  }
  w.join();
  EXPECT_EQ(got, 104000u);
}

// ---- TCP send ----------------------------------------------------------------

TEST(ZeroCopyTcp, ReserveCommitSendsExactlyTheBytesWritten) {
  ZcPair p;
  auto [c, s] = p.connected(6010);
  xs_zc_iov v[2];
  int n = 0;
  ssize_t r = p.a->zc_send_reserve(c, 5000, v, &n, 0);
  ASSERT_EQ(r, 5000);
  ASSERT_GE(n, 1);
  ASSERT_EQ(total(v, n), 5000u);
  size_t off = 0;
  for (int i = 0; i < n; ++i)
    for (size_t k = 0; k < v[i].len; ++k) static_cast<uint8_t*>(v[i].base)[k] = pat(off++);
  // Committing more than reserved: EINVAL, the reservation stays open.
  EXPECT_EQ(p.a->zc_send_commit(c, 5001, 0), -1);
  EXPECT_EQ(errno, EINVAL);
  // A plain send would write into the reserved space: EBUSY.
  EXPECT_EQ(p.a->send(c, "x", 1, MSG_DONTWAIT), -1);
  EXPECT_EQ(errno, EBUSY);
  EXPECT_EQ(p.a->zc_send_commit(c, 3000, 0), 3000);
  // Exactly the first 3000 bytes arrive.
  ASSERT_TRUE(wait_readable(*p.b, s, 3000));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(readable(*p.b, s), 3000);
  std::vector<uint8_t> buf(4000);
  ASSERT_EQ(p.b->recv(s, buf.data(), buf.size(), 0), 3000);
  for (size_t i = 0; i < 3000; ++i) ASSERT_EQ(buf[i], pat(i)) << i;
  // The reservation ended with the commit; commit 0 with none is a no-op.
  EXPECT_EQ(p.a->zc_send_commit(c, 1, 0), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(p.a->zc_send_commit(c, 0, 0), 0);
  EXPECT_EQ(p.a->zc_send_reserve(c, 0, v, &n, 0), -1);
  EXPECT_EQ(errno, EINVAL);
  // Plain send works again and follows the committed bytes.
  EXPECT_EQ(p.a->send(c, "yz", 2, 0), 2);
  ASSERT_TRUE(wait_readable(*p.b, s, 2));
  ASSERT_EQ(p.b->recv(s, buf.data(), buf.size(), 0), 2);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf.data()), 2), "yz");
}

TEST(ZeroCopyTcp, MsgMoreHoldsACommittedPartialSegment) {
  ZcPair p;
  auto [c, s] = p.connected(6011);
  xs_zc_iov v[2];
  int n = 0;
  ASSERT_EQ(p.a->zc_send_reserve(c, 100, v, &n, 0), 100);
  std::memset(v[0].base, 'm', 100);
  ASSERT_EQ(p.a->zc_send_commit(c, 100, MSG_MORE), 100);
  int unsent = -1;
  ASSERT_EQ(p.a->ioctl(c, SIOCOUTQNSD, &unsent), 0);
  EXPECT_EQ(unsent, 100);  // held: MSG_MORE, less than a segment
  ASSERT_EQ(p.a->zc_send_reserve(c, 10, v, &n, 0), 10);
  std::memset(v[0].base, 'e', 10);
  ASSERT_EQ(p.a->zc_send_commit(c, 10, 0), 10);
  ASSERT_TRUE(wait_readable(*p.b, s, 110));
  char buf[200];
  ASSERT_EQ(p.b->recv(s, buf, sizeof buf, 0), 110);
  EXPECT_EQ(buf[99], 'm');
  EXPECT_EQ(buf[100], 'e');
}

TEST(ZeroCopyTcp, ReservationsAcrossTheRingWrapKeepTheStreamIntact) {
  ZcPair p;
  auto [c, s] = p.connected(6012);
  constexpr size_t kChunk = 7000, kRounds = 60, kTotal = kChunk * kRounds;
  bool saw_two = false;
  std::thread writer([&, c = c] {
    size_t off = 0;
    while (off < kTotal) {
      xs_zc_iov v[2];
      int n = 0;
      ssize_t r = p.a->zc_send_reserve(c, std::min(kChunk, kTotal - off), v, &n, 0);
      ASSERT_GT(r, 0) << strerror(errno);
      if (n == 2) saw_two = true;
      size_t k0 = off;
      for (int i = 0; i < n; ++i)
        for (size_t k = 0; k < v[i].len; ++k) static_cast<uint8_t*>(v[i].base)[k] = pat(k0++);
      ASSERT_EQ(p.a->zc_send_commit(c, static_cast<size_t>(r), 0), r);
      off += static_cast<size_t>(r);
    }
  });
  std::vector<uint8_t> buf(16384);
  size_t got = 0;
  while (got < kTotal) {
    ssize_t n = p.b->recv(s, buf.data(), buf.size(), 0);
    ASSERT_GT(n, 0);
    for (ssize_t i = 0; i < n; ++i) ASSERT_EQ(buf[size_t(i)], pat(got + size_t(i))) << got + size_t(i);
    got += static_cast<size_t>(n);
  }
  writer.join();
  EXPECT_EQ(got, kTotal);
  EXPECT_TRUE(saw_two);  // some reservation straddled the end of the ring
}

TEST(ZeroCopyTcp, CommitAfterShutdownIsEpipeAndUdpHasNoReservations) {
  ZcPair p;
  auto [c, s] = p.connected(6013);
  xs_zc_iov v[2];
  int n = 0;
  ASSERT_EQ(p.a->zc_send_reserve(c, 64, v, &n, 0), 64);
  std::memset(v[0].base, 'q', 64);
  ASSERT_EQ(p.a->shutdown(c, SHUT_WR), 0);
  EXPECT_EQ(p.a->zc_send_commit(c, 64, MSG_NOSIGNAL), -1);
  EXPECT_EQ(errno, EPIPE);
  EXPECT_EQ(p.a->zc_send_reserve(c, 64, v, &n, MSG_NOSIGNAL), -1);
  EXPECT_EQ(errno, EPIPE);
  char buf[8];
  EXPECT_EQ(p.b->recv(s, buf, sizeof buf, 0), 0);  // FIN only: the reserved bytes never left
  int u = p.a->socket(AF_INET, SOCK_DGRAM, 0);
  EXPECT_EQ(p.a->zc_send_reserve(u, 64, v, &n, 0), -1);
  EXPECT_EQ(errno, EOPNOTSUPP);
}

// ---- C and C++ layers ----------------------------------------------------------

TEST(ZeroCopyCpp, WrappersOverTheDefaultRuntime) {
  ZcPair p;
  auto [c, s] = p.connected(6020);
  ASSERT_TRUE(native::set_default_runtime(p.a.get()));
  {
    Socket sock(c);
    auto r = sock.zc_reserve(10);
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(r->size, 10u);
    char k = 'a';
    for (auto sp : r->spans)
      for (auto& byte : sp) byte = std::byte(k++);
    auto sent = sock.zc_commit(10);
    ASSERT_TRUE(sent);
    EXPECT_EQ(*sent, 10);
    char buf[16];
    ASSERT_TRUE(wait_readable(*p.b, s, 10));
    ASSERT_EQ(p.b->recv(s, buf, sizeof buf, 0), 10);
    EXPECT_EQ(std::string(buf, 10), "abcdefghij");
    ASSERT_EQ(p.b->send(s, "pong", 4, 0), 4);
    xs_zc_iov v[2];
    auto n = sock.zc_recv(v);
    ASSERT_TRUE(n) << n.error();
    ASSERT_EQ(*n, 1);
    auto bytes = Socket::bytes(v[0]);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()), "pong");
    EXPECT_FALSE(sock.zc_release(5));
    EXPECT_EQ(sock.zc_release(5).error(), EINVAL);
    EXPECT_TRUE(sock.zc_release(4));
    // The C entry points reach the same runtime.
    EXPECT_EQ(xs_zc_recv(c, v, 2, MSG_DONTWAIT), -1);
    EXPECT_EQ(errno, EAGAIN);
    sock.release();  // the pair's runtime closes it
  }
  EXPECT_TRUE(native::set_default_runtime(nullptr));
}

// ---- UDP receive -------------------------------------------------------------

TEST(ZeroCopyUdp, OneViewPerDatagramWithItsSource) {
  ZcPair p;
  int ub = p.b->socket(AF_INET, SOCK_DGRAM, 0);
  auto bb = sin_of(Ipv4Addr::any(), 9000);
  ASSERT_EQ(p.b->bind(ub, sa(bb), sizeof bb), 0);
  int u1 = p.a->socket(AF_INET, SOCK_DGRAM, 0), u2 = p.a->socket(AF_INET, SOCK_DGRAM, 0);
  auto b1 = sin_of(Ipv4Addr::any(), 5001), b2 = sin_of(Ipv4Addr::any(), 5002);
  ASSERT_EQ(p.a->bind(u1, sa(b1), sizeof b1), 0);
  ASSERT_EQ(p.a->bind(u2, sa(b2), sizeof b2), 0);
  auto to = sin_of(kB, 9000);
  ASSERT_EQ(p.a->sendto(u1, "one", 3, 0, sa(to), sizeof to), 3);
  ASSERT_EQ(p.a->sendto(u2, "three!", 6, 0, sa(to), sizeof to), 6);
  ASSERT_EQ(p.a->sendto(u1, "", 0, 0, sa(to), sizeof to), 0);
  ASSERT_EQ(p.a->sendto(u2, "four", 4, 0, sa(to), sizeof to), 4);
  xs_zc_iov v[8];
  int got = 0;
  auto end = Clock::now() + std::chrono::seconds(5);
  while (got < 3 && Clock::now() < end) {
    int n = p.b->zc_recv(ub, v + got, 3 - got, 0);  // at most three views this time
    ASSERT_GT(n, 0) << strerror(errno);
    got += n;
  }
  ASSERT_EQ(got, 3);
  EXPECT_EQ(std::string(static_cast<char*>(v[0].base), v[0].len), "one");
  EXPECT_EQ(ntohs(v[0].from.sin_port), 5001);
  EXPECT_EQ(ntohl(v[0].from.sin_addr.s_addr), kA.v);
  EXPECT_EQ(v[0].from.sin_family, AF_INET);
  EXPECT_EQ(std::string(static_cast<char*>(v[1].base), v[1].len), "three!");
  EXPECT_EQ(ntohs(v[1].from.sin_port), 5002);
  EXPECT_EQ(v[2].len, 0u);  // an empty datagram is a view of its own
  EXPECT_EQ(ntohs(v[2].from.sin_port), 5001);
  // The fourth waits behind the loans: a consuming recv is refused, a peek is not.
  ASSERT_TRUE(wait_readable(*p.b, ub, 4));
  char buf[16];
  EXPECT_EQ(p.b->recv(ub, buf, sizeof buf, 0), -1);
  EXPECT_EQ(errno, EBUSY);
  EXPECT_EQ(p.b->recv(ub, buf, sizeof buf, MSG_PEEK), 4);
  // Release counts datagrams, oldest first.
  EXPECT_EQ(p.b->zc_release(ub, 4), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(p.b->zc_release(ub, 1), 0);
  EXPECT_EQ(std::string(static_cast<char*>(v[1].base), v[1].len), "three!");  // still lent, intact
  EXPECT_EQ(p.b->zc_release(ub, 2), 0);
  EXPECT_EQ(p.b->recv(ub, buf, sizeof buf, 0), 4);
  EXPECT_EQ(std::string(buf, 4), "four");
  EXPECT_EQ(p.b->zc_recv(ub, v, 8, MSG_DONTWAIT), -1);
  EXPECT_EQ(errno, EAGAIN);
}

TEST(ZeroCopyUdp, LoansSurviveTrafficAndTheQueueWrapsIntact) {
  ZcPair p;
  int ub = p.b->socket(AF_INET, SOCK_DGRAM, 0);
  int small = 1;  // the minimum receive buffer: the ring wraps every few datagrams
  ASSERT_EQ(p.b->setsockopt(ub, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
  auto bb = sin_of(Ipv4Addr::any(), 9001);
  ASSERT_EQ(p.b->bind(ub, sa(bb), sizeof bb), 0);
  int ua = p.a->socket(AF_INET, SOCK_DGRAM, 0);
  auto to = sin_of(kB, 9001);
  std::vector<uint8_t> d(1400);
  size_t sent_bytes = 0;
  xs_zc_iov v[4];
  for (int i = 0; i < 300; ++i) {
    // Sizes vary so records end at every offset of the ring.
    size_t len = 700 + size_t(i * 37 % 700);
    for (size_t k = 0; k < len; ++k) d[k] = pat(sent_bytes + k);
    ASSERT_EQ(p.a->sendto(ua, d.data(), len, 0, sa(to), sizeof to), ssize_t(len));
    int n = p.b->zc_recv(ub, v, 4, 0);
    ASSERT_EQ(n, 1) << i;
    ASSERT_EQ(v[0].len, len) << i;
    ASSERT_TRUE(matches(v[0], sent_bytes)) << i;
    // A second datagram arrives behind the loan and must not touch it.
    if (i % 10 == 0) {
      ASSERT_EQ(p.a->sendto(ua, d.data(), 50, 0, sa(to), sizeof to), 50);
      ASSERT_TRUE(wait_readable(*p.b, ub, 50));
      ASSERT_TRUE(matches(v[0], sent_bytes)) << i;
      ASSERT_EQ(p.b->zc_recv(ub, v + 1, 1, 0), 1);
      EXPECT_EQ(v[1].len, 50u);
      ASSERT_EQ(p.b->zc_release(ub, 2), 0);
    } else {
      ASSERT_EQ(p.b->zc_release(ub, 1), 0);
    }
    sent_bytes += len;
  }
}

}  // namespace
}  // namespace xs
