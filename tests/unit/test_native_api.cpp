// The native socket API (Runtime behind xs_*) over two engines joined by an
// in-memory device pair: return values and errno as Linux gives them.
#include <gtest/gtest.h>

#include <atomic>
#include <set>

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <functional>
#include <thread>

#include "socketapi/memory_device.hpp"
#include "socketapi/native_runtime.hpp"
#include "socketapi/xstack.hpp"
#include "tests/support/eintr_checks.hpp"
#include "tests/support/native_pair.hpp"
#include "tests/support/signal_scope.hpp"

namespace xs {
namespace {

using native::Runtime;
using namespace testing_native;

// Polls `fd` on runtime `r` for `events` up to 5 s.
short wait_for(Runtime& r, int fd, short events, int ms = 5000) {
  pollfd p{fd, events, 0};
  int n = r.poll(&p, 1, ms);
  return n > 0 ? p.revents : 0;
}

TEST(NativeSocket, CreateAndFlags) {
  NativePair p;
  errno = 0;
  EXPECT_EQ(p.a->socket(AF_UNIX, SOCK_STREAM, 0), -1);
  EXPECT_EQ(errno, EAFNOSUPPORT);
  EXPECT_EQ(p.a->socket(AF_INET, SOCK_STREAM, IPPROTO_UDP), -1);
  EXPECT_EQ(errno, EPROTONOSUPPORT);
  EXPECT_EQ(p.a->socket(AF_INET, SOCK_DGRAM, IPPROTO_TCP), -1);
  EXPECT_EQ(errno, EPROTONOSUPPORT);
  EXPECT_EQ(p.a->socket(AF_INET, SOCK_STREAM | 0x40000000, 0), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(p.a->socket(AF_INET, SOCK_SEQPACKET, 0), -1);
  EXPECT_EQ(errno, ESOCKTNOSUPPORT);
  EXPECT_EQ(p.a->socket(AF_INET, SOCK_RAW, IPPROTO_ICMP), -1);
  EXPECT_EQ(errno, EPROTONOSUPPORT);

  int s = p.a->socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  ASSERT_GE(s, 0);
  EXPECT_TRUE(p.a->is_xstack_fd(s));
  EXPECT_EQ(p.a->fcntl(s, F_GETFL, 0) & O_NONBLOCK, O_NONBLOCK);
  EXPECT_EQ(p.a->fcntl(s, F_GETFD, 0), FD_CLOEXEC);
  EXPECT_EQ(p.a->fcntl(s, F_SETFL, 0), 0);
  EXPECT_EQ(p.a->fcntl(s, F_GETFL, 0) & O_NONBLOCK, 0);
  EXPECT_EQ(p.a->fcntl(s, F_SETFD, 0), 0);
  EXPECT_EQ(p.a->fcntl(s, F_GETFD, 0), 0);
  int on = 1;
  EXPECT_EQ(p.a->ioctl(s, FIONBIO, &on), 0);
  EXPECT_EQ(p.a->fcntl(s, F_GETFL, 0) & O_NONBLOCK, O_NONBLOCK);
  int u = p.a->socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(u, 0);
  EXPECT_NE(u, s);
  EXPECT_EQ(p.a->close(s), 0);
  EXPECT_FALSE(p.a->is_xstack_fd(s));
  EXPECT_EQ(p.a->close(s), -1);
  EXPECT_EQ(errno, EBADF);
  EXPECT_EQ(p.a->listen(s, 1), -1);
  EXPECT_EQ(errno, EBADF);
  // A kernel descriptor that is not ours.
  int k = eventfd(0, EFD_CLOEXEC);
  EXPECT_EQ(p.a->listen(k, 1), -1);
  EXPECT_EQ(errno, ENOTSOCK);
  ::close(k);
  EXPECT_EQ(p.a->listen(u, 1), -1);
  EXPECT_EQ(errno, EOPNOTSUPP);
  p.a->close(u);
}

TEST(NativeSocket, BindErrors) {
  NativePair p;
  int s = p.a->socket(AF_INET, SOCK_STREAM, 0);
  auto ok = sin_of(kA, 5000);
  EXPECT_EQ(p.a->bind(s, sa(ok), sizeof ok - 1), -1);
  EXPECT_EQ(errno, EINVAL);
  auto bad = ok;
  bad.sin_family = AF_INET6;
  EXPECT_EQ(p.a->bind(s, sa(bad), sizeof bad), -1);
  EXPECT_EQ(errno, EAFNOSUPPORT);
  auto other = sin_of(kB, 5000);
  EXPECT_EQ(p.a->bind(s, sa(other), sizeof other), -1);
  EXPECT_EQ(errno, EADDRNOTAVAIL);
  EXPECT_EQ(p.a->bind(s, sa(ok), sizeof ok), 0);
  EXPECT_EQ(p.a->bind(s, sa(ok), sizeof ok), -1);
  EXPECT_EQ(errno, EINVAL);
  sockaddr_in got{};
  socklen_t len = sizeof got;
  EXPECT_EQ(p.a->getsockname(s, reinterpret_cast<sockaddr*>(&got), &len), 0);
  EXPECT_EQ(len, sizeof got);
  EXPECT_EQ(ntohs(got.sin_port), 5000);
  EXPECT_EQ(p.a->listen(s, 4), 0);
  int s2 = p.a->socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_EQ(p.a->bind(s2, sa(ok), sizeof ok), -1);
  EXPECT_EQ(errno, EADDRINUSE);
  EXPECT_EQ(p.a->getpeername(s, reinterpret_cast<sockaddr*>(&got), &len), -1);
  EXPECT_EQ(errno, ENOTCONN);
  // UDP
  int u = p.a->socket(AF_INET, SOCK_DGRAM, 0);
  auto uo = sin_of(Ipv4Addr::any(), 5001);
  EXPECT_EQ(p.a->bind(u, sa(uo), sizeof uo), 0);
  EXPECT_EQ(p.a->bind(u, sa(uo), sizeof uo), -1);
  EXPECT_EQ(errno, EINVAL);
  int u2 = p.a->socket(AF_INET, SOCK_DGRAM, 0);
  EXPECT_EQ(p.a->bind(u2, sa(uo), sizeof uo), -1);
  EXPECT_EQ(errno, EADDRINUSE);
}

TEST(NativeConnect, RefusedBlocking) {
  NativePair p;
  int c = p.a->socket(AF_INET, SOCK_STREAM, 0);
  auto s = sin_of(kB, 9);
  EXPECT_EQ(p.a->connect(c, sa(s), sizeof s), -1);
  EXPECT_EQ(errno, ECONNREFUSED);
  // Nothing more to report; the socket may connect again.
  int err = -1;
  socklen_t len = sizeof err;
  EXPECT_EQ(p.a->getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &len), 0);
  EXPECT_EQ(err, 0);
}

TEST(NativeConnect, RefusedNonBlockingReportsSoError) {
  NativePair p;
  int c = p.a->socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  auto s = sin_of(kB, 9);
  EXPECT_EQ(p.a->connect(c, sa(s), sizeof s), -1);
  EXPECT_EQ(errno, EINPROGRESS);
  short re = wait_for(*p.a, c, POLLOUT);
  EXPECT_TRUE(re & POLLERR);
  EXPECT_TRUE(re & POLLHUP);
  int err = 0;
  socklen_t len = sizeof err;
  EXPECT_EQ(p.a->getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &len), 0);
  EXPECT_EQ(err, ECONNREFUSED);
  // The error was consumed: connect reports the abort (Linux ECONNABORTED).
  EXPECT_EQ(p.a->connect(c, sa(s), sizeof s), -1);
  EXPECT_EQ(errno, ECONNABORTED);
}

TEST(NativeConnect, NonBlockingThenPollOutAndSoError) {
  NativePair p;
  int l = p.listen_b(80);
  int c = p.a->socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  auto s = sin_of(kB, 80);
  EXPECT_EQ(p.a->connect(c, sa(s), sizeof s), -1);
  EXPECT_EQ(errno, EINPROGRESS);
  int r = p.a->connect(c, sa(s), sizeof s);
  if (r != 0) {
    EXPECT_EQ(errno, EALREADY);
  }
  EXPECT_TRUE(wait_for(*p.a, c, POLLOUT) & POLLOUT);
  int err = -1;
  socklen_t len = sizeof err;
  EXPECT_EQ(p.a->getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &len), 0);
  EXPECT_EQ(err, 0);
  EXPECT_EQ(p.a->connect(c, sa(s), sizeof s) == 0 || errno == EISCONN, true);
  EXPECT_EQ(p.a->connect(c, sa(s), sizeof s), -1);
  EXPECT_EQ(errno, EISCONN);
  sockaddr_in peer{};
  len = sizeof peer;
  EXPECT_EQ(p.a->getpeername(c, reinterpret_cast<sockaddr*>(&peer), &len), 0);
  EXPECT_EQ(ntohs(peer.sin_port), 80);
  EXPECT_EQ(ntohl(peer.sin_addr.s_addr), kB.v);
  // accept4 flags and the peer address.
  sockaddr_in from{};
  len = sizeof from;
  EXPECT_EQ(p.b->accept4(l, nullptr, nullptr, 0x1234), -1);
  EXPECT_EQ(errno, EINVAL);
  int srv = p.b->accept4(l, reinterpret_cast<sockaddr*>(&from), &len, SOCK_NONBLOCK);
  ASSERT_GE(srv, 0);
  EXPECT_EQ(ntohl(from.sin_addr.s_addr), kA.v);
  EXPECT_EQ(p.b->fcntl(srv, F_GETFL, 0) & O_NONBLOCK, O_NONBLOCK);
  // Listener now empty: non-blocking accept would block.
  EXPECT_EQ(p.b->fcntl(l, F_SETFL, O_NONBLOCK), 0);
  EXPECT_EQ(p.b->accept(l, nullptr, nullptr), -1);
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_EQ(p.b->accept(srv, nullptr, nullptr), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(p.b->listen(srv, 1), -1);
  EXPECT_EQ(errno, EINVAL);
}

TEST(NativeData, RecvSemantics) {
  NativePair p;
  auto [c, s] = p.connected(81);
  char buf[64];
  // Non-blocking empty: EAGAIN (MSG_DONTWAIT on a blocking socket).
  EXPECT_EQ(p.b->recv(s, buf, sizeof buf, MSG_DONTWAIT), -1);
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_EQ(p.a->send(c, "hello world", 11, 0), 11);
  EXPECT_TRUE(wait_for(*p.b, s, POLLIN) & POLLIN);
  int n = 0;
  for (int i = 0; i < 100 && n < 11; ++i) {
    EXPECT_EQ(p.b->ioctl(s, FIONREAD, &n), 0);
    if (n < 11) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(n, 11);
  EXPECT_EQ(p.b->recv(s, buf, 5, MSG_PEEK), 5);
  EXPECT_EQ(std::string(buf, 5), "hello");
  EXPECT_EQ(p.b->recv(s, buf, 5, 0), 5);
  EXPECT_EQ(std::string(buf, 5), "hello");
  char b1[3], b2[10];
  iovec iov[2] = {{b1, sizeof b1}, {b2, sizeof b2}};
  EXPECT_EQ(p.b->readv(s, iov, 2), 6);
  EXPECT_EQ(std::string(b1, 3) + std::string(b2, 3), " world");
  // MSG_WAITALL gathers across segments.
  std::thread writer([&] {
    for (int i = 0; i < 4; ++i) {
      EXPECT_EQ(p.a->send(c, "abcd", 4, 0), 4);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  EXPECT_EQ(p.b->recv(s, buf, 16, MSG_WAITALL), 16);
  writer.join();
  EXPECT_EQ(std::string(buf, 16), "abcdabcdabcdabcd");
  // writev / sendmsg / recvmsg; TCP reports no source address.
  iovec w[2] = {{const_cast<char*>("xy"), 2}, {const_cast<char*>("z"), 1}};
  EXPECT_EQ(p.a->writev(c, w, 2), 3);
  msghdr m{};
  sockaddr_in from{};
  iovec ri{buf, sizeof buf};
  m.msg_name = &from;
  m.msg_namelen = sizeof from;
  m.msg_iov = &ri;
  m.msg_iovlen = 1;
  EXPECT_TRUE(wait_for(*p.b, s, POLLIN) & POLLIN);
  ssize_t got = 0;
  for (int i = 0; i < 100 && got < 3; ++i) {
    ssize_t r = p.b->recvmsg(s, &m, MSG_DONTWAIT);
    if (r > 0) got += r;
    else std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(got, 3);
  EXPECT_EQ(m.msg_namelen, 0u);
  EXPECT_EQ(m.msg_flags, 0);
  // MSG_TRUNC on TCP discards.
  EXPECT_EQ(p.a->send(c, "discard", 7, 0), 7);
  EXPECT_TRUE(wait_for(*p.b, s, POLLIN) & POLLIN);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(p.b->recv(s, nullptr, 7, MSG_TRUNC), 7);
  EXPECT_EQ(p.b->recv(s, buf, sizeof buf, MSG_DONTWAIT), -1);
  EXPECT_EQ(errno, EAGAIN);
  // SO_RCVTIMEO: a blocking recv gives up with EAGAIN.
  timeval tv{0, 100000};
  EXPECT_EQ(p.b->setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
  EXPECT_EQ(p.b->fcntl(s, F_SETFL, 0), 0);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(p.b->recv(s, buf, sizeof buf, 0), -1);
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(90));
  timeval back{};
  socklen_t len = sizeof back;
  EXPECT_EQ(p.b->getsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &back, &len), 0);
  EXPECT_EQ(back.tv_usec, 100000);
  // The kernel keeps timeouts in ticks (CONFIG_HZ): 1 ms and 1.0015 s read
  // back rounded up to a tick, exactly as a kernel socket reads them back.
  for (timeval odd : {timeval{0, 1000}, timeval{1, 1500}}) {
    const int k = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(k, 0);
    timeval kb{}, xb{};
    socklen_t kl = sizeof kb, xl = sizeof xb;
    ASSERT_EQ(::setsockopt(k, SOL_SOCKET, SO_RCVTIMEO, &odd, sizeof odd), 0);
    ASSERT_EQ(::getsockopt(k, SOL_SOCKET, SO_RCVTIMEO, &kb, &kl), 0);
    ::close(k);
    EXPECT_EQ(p.b->setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &odd, sizeof odd), 0);
    EXPECT_EQ(p.b->getsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &xb, &xl), 0);
    EXPECT_EQ(xb.tv_sec, kb.tv_sec);
    EXPECT_EQ(xb.tv_usec, kb.tv_usec) << "set " << odd.tv_sec << " s " << odd.tv_usec << " us";
  }
  // SIOCOUTQ / SIOCOUTQNSD once everything is acknowledged.
  int q = -1;
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(p.a->ioctl(c, SIOCOUTQ, &q), 0);
    if (q == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(q, 0);
  EXPECT_EQ(p.a->ioctl(c, SIOCOUTQNSD, &q), 0);
  EXPECT_EQ(q, 0);
  EXPECT_EQ(p.a->ioctl(c, 0x12345678, &q), -1);
  EXPECT_EQ(errno, ENOTTY);
}

TEST(NativeData, UnconnectedCalls) {
  NativePair p;
  int c = p.a->socket(AF_INET, SOCK_STREAM, 0);
  char buf[4];
  EXPECT_EQ(p.a->send(c, "x", 1, MSG_NOSIGNAL), -1);
  EXPECT_EQ(errno, EPIPE);
  EXPECT_EQ(p.a->recv(c, buf, sizeof buf, 0), -1);
  EXPECT_EQ(errno, ENOTCONN);
  EXPECT_EQ(p.a->shutdown(c, SHUT_WR), -1);
  EXPECT_EQ(errno, ENOTCONN);
  EXPECT_EQ(p.a->shutdown(c, 7), -1);
  EXPECT_EQ(errno, EINVAL);
  sockaddr_in peer{};
  socklen_t len = sizeof peer;
  EXPECT_EQ(p.a->getpeername(c, reinterpret_cast<sockaddr*>(&peer), &len), -1);
  EXPECT_EQ(errno, ENOTCONN);
  int l = p.listen_b(82);
  EXPECT_EQ(p.b->recv(l, buf, sizeof buf, 0), -1);
  EXPECT_EQ(errno, ENOTCONN);
  int q;
  EXPECT_EQ(p.b->ioctl(l, FIONREAD, &q), -1);
  EXPECT_EQ(errno, EINVAL);
  auto s = sin_of(kB, 82);
  EXPECT_EQ(p.b->connect(l, sa(s), sizeof s), -1);
  EXPECT_EQ(errno, EISCONN);
}

TEST(NativeData, SigpipeUnlessNosignal) {
  NativePair p;
  auto [c, s] = p.connected(83);
  EXPECT_EQ(p.a->shutdown(c, SHUT_WR), 0);
  EXPECT_EQ(p.a->send(c, "x", 1, MSG_NOSIGNAL), -1);
  EXPECT_EQ(errno, EPIPE);
  // Without MSG_NOSIGNAL the thread gets SIGPIPE (blocked here, so it stays pending).
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &set, &old), 0);
  EXPECT_EQ(p.a->send(c, "x", 1, 0), -1);
  EXPECT_EQ(errno, EPIPE);
  sigset_t pend;
  sigpending(&pend);
  EXPECT_TRUE(sigismember(&pend, SIGPIPE));
  timespec zero{0, 0};
  EXPECT_EQ(sigtimedwait(&set, nullptr, &zero), SIGPIPE);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  (void)s;
}

TEST(NativeData, ShutdownWritePeerReadsZeroAndOutRemains) {
  NativePair p;
  auto [c, s] = p.connected(84);
  EXPECT_EQ(p.a->shutdown(c, SHUT_WR), 0);
  char buf[8];
  EXPECT_EQ(p.b->recv(s, buf, sizeof buf, 0), 0);
  pollfd pf{c, POLLIN | POLLOUT, 0};
  EXPECT_EQ(p.a->poll(&pf, 1, 0), 1);
  EXPECT_TRUE(pf.revents & POLLOUT);
  EXPECT_FALSE(pf.revents & POLLIN);
  // The peer may still send to us.
  EXPECT_EQ(p.b->send(s, "back", 4, 0), 4);
  EXPECT_EQ(p.a->recv(c, buf, 4, MSG_WAITALL), 4);
  int ep = p.a->epoll_create1(0);
  epoll_event e{};
  e.events = EPOLLOUT;
  e.data.fd = c;
  EXPECT_EQ(p.a->epoll_ctl(ep, EPOLL_CTL_ADD, c, &e), 0);
  epoll_event out[4];
  EXPECT_EQ(p.a->epoll_wait(ep, out, 4, 0), 1);
  EXPECT_TRUE(out[0].events & EPOLLOUT);
  // Peer closes: we see EOF, POLLRDHUP, then EPIPE after its RST.
  EXPECT_EQ(p.b->close(s), 0);
  EXPECT_EQ(p.a->recv(c, buf, sizeof buf, 0), 0);
  pollfd pr{c, POLLIN | POLLRDHUP, 0};
  EXPECT_EQ(p.a->poll(&pr, 1, 1000), 1);
  EXPECT_TRUE(pr.revents & POLLRDHUP);
}

TEST(NativeData, EpipeAfterPeerClose) {
  NativePair p;
  auto [c, s] = p.connected(85);
  EXPECT_EQ(p.b->close(s), 0);
  char buf[4];
  EXPECT_EQ(p.a->recv(c, buf, sizeof buf, 0), 0);  // FIN
  // The first send reaches a closed socket, whose RST then resets us.
  int last = 0;
  for (int i = 0; i < 200; ++i) {
    if (p.a->send(c, "x", 1, MSG_NOSIGNAL) < 0) {
      last = errno;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(last == ECONNRESET || last == EPIPE) << last;
  if (last == ECONNRESET) {
    EXPECT_EQ(p.a->send(c, "x", 1, MSG_NOSIGNAL), -1);
    EXPECT_EQ(errno, EPIPE);
  }
}

TEST(NativeData, CloseWithUnreadDataResetsPeer) {
  NativePair p;
  auto [c, s] = p.connected(86);
  EXPECT_EQ(p.a->send(c, "unread", 6, 0), 6);
  EXPECT_TRUE(wait_for(*p.b, s, POLLIN) & POLLIN);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(p.b->close(s), 0);
  char buf[8];
  EXPECT_EQ(p.a->recv(c, buf, sizeof buf, 0), -1);
  EXPECT_EQ(errno, ECONNRESET);
}

TEST(NativeOptions, SocketLevel) {
  NativePair p;
  int s = p.a->socket(AF_INET, SOCK_STREAM, 0);
  int v = 4096;
  EXPECT_EQ(p.a->setsockopt(s, SOL_SOCKET, SO_RCVBUF, &v, sizeof v), 0);
  int got = 0;
  socklen_t len = sizeof got;
  EXPECT_EQ(p.a->getsockopt(s, SOL_SOCKET, SO_RCVBUF, &got, &len), 0);
  EXPECT_EQ(got, 8192);
  EXPECT_EQ(len, sizeof(int));
  EXPECT_EQ(p.a->setsockopt(s, SOL_SOCKET, SO_SNDBUF, &v, sizeof v), 0);
  EXPECT_EQ(p.a->getsockopt(s, SOL_SOCKET, SO_SNDBUF, &got, &len), 0);
  EXPECT_EQ(got, 8192);
  EXPECT_EQ(p.a->setsockopt(s, SOL_SOCKET, SO_RCVBUF, &v, 2), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(p.a->setsockopt(s, SOL_SOCKET, SO_PASSCRED, &v, sizeof v), -1);
  EXPECT_EQ(errno, ENOPROTOOPT);
  EXPECT_EQ(p.a->getsockopt(s, SOL_SOCKET, SO_PEERCRED, &got, &len), -1);
  EXPECT_EQ(errno, ENOPROTOOPT);
  EXPECT_EQ(p.a->setsockopt(s, SOL_SOCKET, SO_TYPE, &v, sizeof v), -1);
  EXPECT_EQ(errno, ENOPROTOOPT);
  EXPECT_EQ(p.a->setsockopt(s, 12345, 1, &v, sizeof v), -1);
  EXPECT_EQ(errno, ENOPROTOOPT);
  EXPECT_EQ(p.a->getsockopt(s, SOL_SOCKET, SO_TYPE, &got, &len), 0);
  EXPECT_EQ(got, SOCK_STREAM);
  EXPECT_EQ(p.a->getsockopt(s, SOL_SOCKET, SO_ACCEPTCONN, &got, &len), 0);
  EXPECT_EQ(got, 0);
  int one = 1;
  for (int opt : {SO_REUSEADDR, SO_REUSEPORT, SO_KEEPALIVE, SO_BROADCAST}) {
    EXPECT_EQ(p.a->getsockopt(s, SOL_SOCKET, opt, &got, &len), 0);
    EXPECT_EQ(got, 0) << opt;
    EXPECT_EQ(p.a->setsockopt(s, SOL_SOCKET, opt, &one, sizeof one), 0);
    EXPECT_EQ(p.a->getsockopt(s, SOL_SOCKET, opt, &got, &len), 0);
    EXPECT_EQ(got, 1) << opt;
  }
  linger lg{1, 7};
  EXPECT_EQ(p.a->setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg - 1), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(p.a->setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  linger lb{};
  len = sizeof lb;
  EXPECT_EQ(p.a->getsockopt(s, SOL_SOCKET, SO_LINGER, &lb, &len), 0);
  EXPECT_EQ(lb.l_onoff, 1);
  EXPECT_EQ(lb.l_linger, 7);
  timeval bad{0, 2000000};
  EXPECT_EQ(p.a->setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &bad, sizeof bad), -1);
  EXPECT_EQ(errno, EDOM);
  v = 10;
  EXPECT_EQ(p.a->setsockopt(s, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof v), 0);
  len = sizeof got;
  EXPECT_EQ(p.a->getsockopt(s, SOL_SOCKET, SO_RCVLOWAT, &got, &len), 0);
  EXPECT_EQ(got, 10);
  // A short buffer gets a truncated copy, as Linux does.
  len = 2;
  EXPECT_EQ(p.a->getsockopt(s, SOL_SOCKET, SO_TYPE, &got, &len), 0);
  EXPECT_EQ(len, 2u);
  int l = p.listen_b(90);
  len = sizeof got;
  EXPECT_EQ(p.b->getsockopt(l, SOL_SOCKET, SO_ACCEPTCONN, &got, &len), 0);
  EXPECT_EQ(got, 1);
  int u = p.a->socket(AF_INET, SOCK_DGRAM, 0);
  EXPECT_EQ(p.a->getsockopt(u, SOL_SOCKET, SO_TYPE, &got, &len), 0);
  EXPECT_EQ(got, SOCK_DGRAM);
  EXPECT_EQ(p.a->getsockopt(u, IPPROTO_TCP, TCP_NODELAY, &got, &len), -1);
  EXPECT_EQ(errno, EOPNOTSUPP);  // a level UDP does not handle
}

TEST(NativeOptions, TcpAndIpLevel) {
  NativePair p;
  int s = p.a->socket(AF_INET, SOCK_STREAM, 0);
  int got = -1, one = 1;
  socklen_t len = sizeof got;
  EXPECT_EQ(p.a->getsockopt(s, IPPROTO_TCP, TCP_MAXSEG, &got, &len), 0);
  EXPECT_EQ(got, 536);
  EXPECT_EQ(p.a->getsockopt(s, IPPROTO_TCP, TCP_KEEPIDLE, &got, &len), 0);
  EXPECT_EQ(got, 7200);
  EXPECT_EQ(p.a->getsockopt(s, IPPROTO_TCP, TCP_KEEPINTVL, &got, &len), 0);
  EXPECT_EQ(got, 75);
  EXPECT_EQ(p.a->getsockopt(s, IPPROTO_TCP, TCP_KEEPCNT, &got, &len), 0);
  EXPECT_EQ(got, 9);
  int zero = 0;
  EXPECT_EQ(p.a->setsockopt(s, IPPROTO_TCP, TCP_KEEPIDLE, &zero, sizeof zero), -1);
  EXPECT_EQ(errno, EINVAL);
  int big = 200;
  EXPECT_EQ(p.a->setsockopt(s, IPPROTO_TCP, TCP_KEEPCNT, &big, sizeof big), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(p.a->setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one), 0);
  EXPECT_EQ(p.a->getsockopt(s, IPPROTO_TCP, TCP_NODELAY, &got, &len), 0);
  EXPECT_EQ(got, 1);
  EXPECT_EQ(p.a->setsockopt(s, IPPROTO_TCP, TCP_CORK, &one, sizeof one), 0);
  EXPECT_EQ(p.a->getsockopt(s, IPPROTO_TCP, TCP_CORK, &got, &len), 0);
  EXPECT_EQ(got, 1);
  EXPECT_EQ(p.a->setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, 1), -1);
  EXPECT_EQ(errno, EINVAL);
  int five = 5;
  EXPECT_EQ(p.a->setsockopt(s, IPPROTO_TCP, TCP_DEFER_ACCEPT, &five, sizeof five), 0);
  EXPECT_EQ(p.a->getsockopt(s, IPPROTO_TCP, TCP_DEFER_ACCEPT, &got, &len), 0);
  EXPECT_EQ(got, 7);  // rounded to retransmission periods, as Linux
  int ut = 1500;
  EXPECT_EQ(p.a->setsockopt(s, IPPROTO_TCP, TCP_USER_TIMEOUT, &ut, sizeof ut), 0);
  EXPECT_EQ(p.a->getsockopt(s, IPPROTO_TCP, TCP_USER_TIMEOUT, &got, &len), 0);
  EXPECT_EQ(got, 1500);
  int mss = 50;
  EXPECT_EQ(p.a->setsockopt(s, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof mss), -1);
  EXPECT_EQ(errno, EINVAL);
  mss = 1000;
  EXPECT_EQ(p.a->setsockopt(s, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof mss), 0);
  EXPECT_EQ(p.a->getsockopt(s, IPPROTO_TCP, TCP_MAXSEG, &got, &len), 0);
  EXPECT_EQ(got, 1000);
  EXPECT_EQ(p.a->setsockopt(s, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one), 0);
  EXPECT_EQ(p.a->setsockopt(s, IPPROTO_TCP, TCP_FASTOPEN, &one, sizeof one), -1);
  EXPECT_EQ(errno, ENOPROTOOPT);
  char cc[16] = {};
  len = sizeof cc;
  EXPECT_EQ(p.a->getsockopt(s, IPPROTO_TCP, TCP_CONGESTION, cc, &len), 0);
  EXPECT_STREQ(cc, "cubic");
  EXPECT_EQ(p.a->setsockopt(s, IPPROTO_TCP, TCP_CONGESTION, "reno", 4), 0);
  len = sizeof cc;
  EXPECT_EQ(p.a->getsockopt(s, IPPROTO_TCP, TCP_CONGESTION, cc, &len), 0);
  EXPECT_STREQ(cc, "reno");
  EXPECT_EQ(p.a->setsockopt(s, IPPROTO_TCP, TCP_CONGESTION, "bbr9", 4), -1);
  EXPECT_EQ(errno, ENOENT);
  // IP level.
  int tos = 0x10;
  EXPECT_EQ(p.a->setsockopt(s, IPPROTO_IP, IP_TOS, &tos, sizeof tos), 0);
  len = sizeof got;
  EXPECT_EQ(p.a->getsockopt(s, IPPROTO_IP, IP_TOS, &got, &len), 0);
  EXPECT_EQ(got, 0x10);
  len = sizeof got;
  EXPECT_EQ(p.a->getsockopt(s, IPPROTO_IP, IP_TTL, &got, &len), 0);
  EXPECT_EQ(got, 64);
  int ttl0 = 0;
  EXPECT_EQ(p.a->setsockopt(s, IPPROTO_IP, IP_TTL, &ttl0, sizeof ttl0), -1);
  EXPECT_EQ(errno, EINVAL);
  int ttl = 33;
  EXPECT_EQ(p.a->setsockopt(s, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl), 0);
  unsigned char c1 = 0;
  len = 1;
  EXPECT_EQ(p.a->getsockopt(s, IPPROTO_IP, IP_TTL, &c1, &len), 0);
  EXPECT_EQ(c1, 33);
  EXPECT_EQ(p.a->setsockopt(s, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl), -1);
  EXPECT_EQ(errno, ENOPROTOOPT);
}

// Linux (checked on 6.18): a level the socket does not handle fails getsockopt
// with EOPNOTSUPP and setsockopt with ENOPROTOOPT; an unknown name at a level
// it does handle is ENOPROTOOPT both ways.
TEST(NativeOptions, UnhandledLevelAndUnknownNameErrnos) {
  NativePair p;
  int t = p.a->socket(AF_INET, SOCK_STREAM, 0);
  int u = p.a->socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(t, 0);
  ASSERT_GE(u, 0);
  struct Case {
    int fd, level, name, get_errno, set_errno;
    const char* what;
  };
  const Case cases[] = {
      {t, 9999, 1, EOPNOTSUPP, ENOPROTOOPT, "tcp: unknown level"},
      {u, 9999, 1, EOPNOTSUPP, ENOPROTOOPT, "udp: unknown level"},
      {t, IPPROTO_UDP, 1, EOPNOTSUPP, ENOPROTOOPT, "tcp: IPPROTO_UDP"},
      {t, IPPROTO_IPV6, 1, EOPNOTSUPP, ENOPROTOOPT, "tcp: IPPROTO_IPV6 on AF_INET"},
      {u, IPPROTO_IPV6, 1, EOPNOTSUPP, ENOPROTOOPT, "udp: IPPROTO_IPV6 on AF_INET"},
      {u, IPPROTO_TCP, TCP_NODELAY, EOPNOTSUPP, ENOPROTOOPT, "udp: IPPROTO_TCP"},
      {t, SOL_SOCKET, 9999, ENOPROTOOPT, ENOPROTOOPT, "tcp: SOL_SOCKET unknown name"},
      {u, SOL_SOCKET, 9999, ENOPROTOOPT, ENOPROTOOPT, "udp: SOL_SOCKET unknown name"},
      {t, IPPROTO_IP, 9999, ENOPROTOOPT, ENOPROTOOPT, "tcp: IPPROTO_IP unknown name"},
      {u, IPPROTO_IP, 9999, ENOPROTOOPT, ENOPROTOOPT, "udp: IPPROTO_IP unknown name"},
      {t, IPPROTO_TCP, 9999, ENOPROTOOPT, ENOPROTOOPT, "tcp: IPPROTO_TCP unknown name"},
      {u, IPPROTO_UDP, 9999, ENOPROTOOPT, ENOPROTOOPT, "udp: IPPROTO_UDP unknown name"},
  };
  for (const Case& c : cases) {
    int v = 1;
    socklen_t len = sizeof v;
    errno = 0;
    EXPECT_EQ(p.a->getsockopt(c.fd, c.level, c.name, &v, &len), -1) << c.what;
    EXPECT_EQ(errno, c.get_errno) << "getsockopt " << c.what;
    v = 1;
    errno = 0;
    EXPECT_EQ(p.a->setsockopt(c.fd, c.level, c.name, &v, sizeof v), -1) << c.what;
    EXPECT_EQ(errno, c.set_errno) << "setsockopt " << c.what;
  }
}

TEST(NativeOptions, TcpInfoEstablished) {
  NativePair p;
  auto [c, s] = p.connected(91);
  tcp_info ti{};
  socklen_t len = sizeof ti;
  ASSERT_EQ(p.a->getsockopt(c, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
  EXPECT_EQ(len, sizeof ti);  // glibc's struct is shorter than the kernel's; the copy is cut to it
  EXPECT_EQ(ti.tcpi_state, TCP_ESTABLISHED);
  EXPECT_GT(ti.tcpi_snd_mss, 0u);
  EXPECT_GT(ti.tcpi_snd_cwnd, 0u);
  char big[512];
  len = sizeof big;
  ASSERT_EQ(p.a->getsockopt(c, IPPROTO_TCP, TCP_INFO, big, &len), 0);
  EXPECT_EQ(len, 240u);  // <linux/tcp.h> layout up to tcpi_rehash
  uint32_t rcv_wnd = 0;
  std::memcpy(&rcv_wnd, big + 232, sizeof rcv_wnd);  // tcpi_rcv_wnd
  EXPECT_GT(rcv_wnd, 0u);
  (void)s;
}

TEST(NativeUdp, SendRecvTruncConnect) {
  NativePair p;
  int ub = p.b->socket(AF_INET, SOCK_DGRAM, 0);
  auto bb = sin_of(Ipv4Addr::any(), 7000);
  ASSERT_EQ(p.b->bind(ub, sa(bb), sizeof bb), 0);
  int ua = p.a->socket(AF_INET, SOCK_DGRAM, 0);
  auto to = sin_of(kB, 7000);
  char buf[64];
  EXPECT_EQ(p.a->send(ua, "x", 1, 0), -1);
  EXPECT_EQ(errno, EDESTADDRREQ);
  EXPECT_EQ(p.a->sendto(ua, "datagram", 8, 0, sa(to), sizeof to - 1), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(p.a->sendto(ua, "datagram", 8, 0, sa(to), sizeof to), 8);
  EXPECT_TRUE(wait_for(*p.b, ub, POLLIN) & POLLIN);
  int n = 0;
  EXPECT_EQ(p.b->ioctl(ub, FIONREAD, &n), 0);
  EXPECT_EQ(n, 8);
  sockaddr_in from{};
  socklen_t flen = sizeof from;
  EXPECT_EQ(p.b->recvfrom(ub, buf, 3, MSG_PEEK, reinterpret_cast<sockaddr*>(&from), &flen), 3);
  EXPECT_EQ(ntohl(from.sin_addr.s_addr), kA.v);
  // MSG_TRUNC: the real length; recvmsg flags the truncation.
  msghdr m{};
  iovec iv{buf, 3};
  m.msg_iov = &iv;
  m.msg_iovlen = 1;
  EXPECT_EQ(p.b->recvmsg(ub, &m, MSG_TRUNC), 8);
  EXPECT_TRUE(m.msg_flags & MSG_TRUNC);
  EXPECT_EQ(std::string(buf, 3), "dat");
  EXPECT_EQ(p.b->recv(ub, buf, sizeof buf, MSG_DONTWAIT), -1);
  EXPECT_EQ(errno, EAGAIN);
  // connect / getpeername / AF_UNSPEC disconnect.
  sockaddr_in peer{};
  socklen_t plen = sizeof peer;
  EXPECT_EQ(p.a->getpeername(ua, reinterpret_cast<sockaddr*>(&peer), &plen), -1);
  EXPECT_EQ(errno, ENOTCONN);
  EXPECT_EQ(p.a->connect(ua, sa(to), sizeof to), 0);
  EXPECT_EQ(p.a->getpeername(ua, reinterpret_cast<sockaddr*>(&peer), &plen), 0);
  EXPECT_EQ(ntohs(peer.sin_port), 7000);
  EXPECT_EQ(p.a->send(ua, "two", 3, 0), 3);
  EXPECT_TRUE(wait_for(*p.b, ub, POLLIN) & POLLIN);
  EXPECT_EQ(p.b->recv(ub, buf, sizeof buf, 0), 3);
  sockaddr unspec{};
  unspec.sa_family = AF_UNSPEC;
  EXPECT_EQ(p.a->connect(ua, &unspec, sizeof unspec), 0);
  EXPECT_EQ(p.a->getpeername(ua, reinterpret_cast<sockaddr*>(&peer), &plen), -1);
  EXPECT_EQ(errno, ENOTCONN);
  // shutdown on an unconnected UDP socket: ENOTCONN (Linux), yet it applies.
  EXPECT_EQ(p.a->shutdown(ua, SHUT_WR), -1);
  EXPECT_EQ(errno, ENOTCONN);
  EXPECT_EQ(p.a->sendto(ua, "x", 1, 0, sa(to), sizeof to), -1);
  EXPECT_EQ(errno, EPIPE);
  int q;
  EXPECT_EQ(p.a->ioctl(ua, SIOCOUTQNSD, &q), -1);
  EXPECT_EQ(errno, ENOTTY);
  // Blocking recv with SO_RCVTIMEO.
  timeval tv{0, 50000};
  EXPECT_EQ(p.b->setsockopt(ub, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
  EXPECT_EQ(p.b->recv(ub, buf, sizeof buf, 0), -1);
  EXPECT_EQ(errno, EAGAIN);
}

TEST(NativeEpoll, LevelEdgeOneshot) {
  NativePair p;
  auto [c, s] = p.connected(92);
  int ep = p.b->epoll_create1(EPOLL_CLOEXEC);
  ASSERT_GE(ep, 0);
  EXPECT_EQ(p.b->fcntl(ep, F_GETFD, 0), FD_CLOEXEC);
  EXPECT_EQ(p.b->epoll_create1(0x1234), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(p.b->epoll_create(0), -1);
  EXPECT_EQ(errno, EINVAL);
  epoll_event e{};
  e.events = EPOLLIN;
  e.data.u64 = 42;
  EXPECT_EQ(p.b->epoll_ctl(ep, EPOLL_CTL_MOD, s, &e), -1);
  EXPECT_EQ(errno, ENOENT);
  EXPECT_EQ(p.b->epoll_ctl(ep, EPOLL_CTL_DEL, s, nullptr), -1);
  EXPECT_EQ(errno, ENOENT);
  EXPECT_EQ(p.b->epoll_ctl(ep, EPOLL_CTL_ADD, s, &e), 0);
  EXPECT_EQ(p.b->epoll_ctl(ep, EPOLL_CTL_ADD, s, &e), -1);
  EXPECT_EQ(errno, EEXIST);
  EXPECT_EQ(p.b->epoll_ctl(ep, EPOLL_CTL_ADD, ep, &e), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(p.b->epoll_ctl(ep, 99, s, &e), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(p.b->epoll_ctl(s, EPOLL_CTL_ADD, s, &e), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(p.b->epoll_ctl(12345, EPOLL_CTL_ADD, s, &e), -1);
  EXPECT_EQ(errno, EBADF);
  int k = eventfd(0, EFD_CLOEXEC);
  EXPECT_EQ(p.b->epoll_ctl(ep, EPOLL_CTL_ADD, k, &e), -1);
  EXPECT_EQ(errno, EPERM);
  ::close(k);
  epoll_event out[4];
  EXPECT_EQ(p.b->epoll_wait(ep, out, 0, 0), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(p.b->epoll_wait(ep, out, 4, 0), 0);
  // Timeout honoured.
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(p.b->epoll_wait(ep, out, 4, 50), 0);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(45));

  // Level-triggered: reported while data is unread.
  EXPECT_EQ(p.a->send(c, "abc", 3, 0), 3);
  ASSERT_EQ(p.b->epoll_wait(ep, out, 4, 5000), 1);
  EXPECT_EQ(out[0].events, uint32_t{EPOLLIN});
  EXPECT_EQ(out[0].data.u64, 42u);
  EXPECT_EQ(p.b->epoll_wait(ep, out, 4, 0), 1);
  // Edge-triggered: once per arrival.
  e.events = EPOLLIN | EPOLLET;
  EXPECT_EQ(p.b->epoll_ctl(ep, EPOLL_CTL_MOD, s, &e), 0);
  EXPECT_EQ(p.b->epoll_wait(ep, out, 4, 0), 1);
  EXPECT_EQ(p.b->epoll_wait(ep, out, 4, 100), 0);
  EXPECT_EQ(p.a->send(c, "d", 1, 0), 1);
  EXPECT_EQ(p.b->epoll_wait(ep, out, 4, 5000), 1);
  EXPECT_EQ(p.b->epoll_wait(ep, out, 4, 50), 0);
  char buf[16];
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(p.b->recv(s, buf, sizeof buf, 0), 4);
  // One-shot: reported once, then disarmed until MOD.
  e.events = EPOLLIN | EPOLLONESHOT;
  EXPECT_EQ(p.b->epoll_ctl(ep, EPOLL_CTL_MOD, s, &e), 0);
  EXPECT_EQ(p.a->send(c, "e", 1, 0), 1);
  EXPECT_EQ(p.b->epoll_wait(ep, out, 4, 5000), 1);
  EXPECT_EQ(p.b->epoll_wait(ep, out, 4, 50), 0);
  EXPECT_EQ(p.b->epoll_ctl(ep, EPOLL_CTL_MOD, s, &e), 0);
  EXPECT_EQ(p.b->epoll_wait(ep, out, 4, 0), 1);
  // EPOLLRDHUP and EPOLLHUP as the peer goes away.
  e.events = EPOLLIN | EPOLLRDHUP;
  EXPECT_EQ(p.b->epoll_ctl(ep, EPOLL_CTL_MOD, s, &e), 0);
  EXPECT_EQ(p.b->recv(s, buf, sizeof buf, 0), 1);
  EXPECT_EQ(p.a->shutdown(c, SHUT_WR), 0);
  ASSERT_EQ(p.b->epoll_wait(ep, out, 4, 5000), 1);
  EXPECT_TRUE(out[0].events & EPOLLRDHUP);
  EXPECT_TRUE(out[0].events & EPOLLIN);
  EXPECT_FALSE(out[0].events & EPOLLHUP);
  EXPECT_EQ(p.b->shutdown(s, SHUT_WR), 0);
  bool hup = false;
  for (int i = 0; i < 100 && !hup; ++i) {
    if (p.b->epoll_wait(ep, out, 4, 50) == 1) hup = (out[0].events & EPOLLHUP) != 0;
  }
  EXPECT_TRUE(hup);
  // Closing the descriptor removes it from the set.
  EXPECT_EQ(p.b->close(s), 0);
  EXPECT_EQ(p.b->epoll_wait(ep, out, 4, 0), 0);
  EXPECT_EQ(p.b->close(ep), 0);
}

// The ready list (Linux's rdllist): ready level-triggered registrations take
// turns when `max` is smaller than their number; a drained one is no longer
// reported; a delete and re-add while queued reports once; a readiness
// change made by a call (UDP shutdown), not by the stack, is seen too.
TEST(NativeEpoll, ReadyListRotatesDropsDrainedAndSeesCallChanges) {
  NativePair p;
  int ep = p.b->epoll_create1(0);
  ASSERT_GE(ep, 0);
  int cs[3], ss[3];
  for (int i = 0; i < 3; ++i) {
    auto [c, s] = p.connected(static_cast<uint16_t>(120 + i));
    cs[i] = c;
    ss[i] = s;
    epoll_event e{};
    e.events = EPOLLIN;
    e.data.u32 = static_cast<uint32_t>(i);
    ASSERT_EQ(p.b->epoll_ctl(ep, EPOLL_CTL_ADD, s, &e), 0);
  }
  epoll_event out[4];
  EXPECT_EQ(p.b->epoll_wait(ep, out, 4, 0), 0);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(p.a->send(cs[i], "x", 1, 0), 1);
  // Socket 0's data alone makes epoll_wait return at once: give the other
  // frames time to arrive (the stack takes them on its own thread).
  int k = 0;
  for (int tries = 0; tries < 2000 && (k = p.b->epoll_wait(ep, out, 4, 0)) < 3; ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_EQ(k, 3);
  std::set<uint32_t> seen;
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(p.b->epoll_wait(ep, out, 1, 0), 1);
    seen.insert(out[0].data.u32);
  }
  EXPECT_EQ(seen.size(), 3u) << "three calls with max 1 report the three sockets in turn";
  char buf[8];
  ASSERT_EQ(p.b->recv(ss[0], buf, sizeof buf, 0), 1);
  ASSERT_EQ(p.b->epoll_wait(ep, out, 4, 0), 2);
  for (int i = 0; i < 2; ++i) EXPECT_NE(out[i].data.u32, 0u);
  epoll_event e{};
  e.events = EPOLLIN;
  e.data.u32 = 1;
  ASSERT_EQ(p.b->epoll_ctl(ep, EPOLL_CTL_DEL, ss[1], nullptr), 0);
  ASSERT_EQ(p.b->epoll_ctl(ep, EPOLL_CTL_ADD, ss[1], &e), 0);
  ASSERT_EQ(p.b->epoll_wait(ep, out, 4, 0), 2) << "re-added while queued: reported once";
  EXPECT_NE(out[0].data.u32, out[1].data.u32);
  // A bound UDP socket with nothing to read is not ready; shutdown(SHUT_RD)
  // makes it readable (datagram_poll) without any stack event.
  int u = p.b->socket(AF_INET, SOCK_DGRAM, 0);
  auto sin = sin_of(kB, 4999);
  ASSERT_EQ(p.b->bind(u, sa(sin), sizeof sin), 0);
  e.data.u32 = 7;
  ASSERT_EQ(p.b->epoll_ctl(ep, EPOLL_CTL_ADD, u, &e), 0);
  ASSERT_EQ(p.b->recv(ss[1], buf, sizeof buf, 0), 1);
  ASSERT_EQ(p.b->recv(ss[2], buf, sizeof buf, 0), 1);
  EXPECT_EQ(p.b->epoll_wait(ep, out, 4, 0), 0);
  EXPECT_EQ(p.b->shutdown(u, SHUT_RD), -1);  // not connected: ENOTCONN, yet shut down (Linux)
  ASSERT_EQ(p.b->epoll_wait(ep, out, 4, 0), 1);
  EXPECT_EQ(out[0].data.u32, 7u);
  p.b->close(u);
  p.b->close(ep);
}

// A program talking to itself: TCP and UDP to the stack's own address and to
// 127.0.0.1 go through the stack's loopback queue (Linux's lo), both ends
// in the same stack.
TEST(NativeLoopback, TcpAndUdpToOurselves) {
  NativePair p;
  int l = p.listen_b(140);
  for (Ipv4Addr dst : {kB, Ipv4Addr::from_octets(127, 0, 0, 1)}) {
    int c = p.b->socket(AF_INET, SOCK_STREAM, 0);
    auto to = sin_of(dst, 140);
    ASSERT_EQ(p.b->connect(c, sa(to), sizeof to), 0) << strerror(errno);
    sockaddr_in peer{};
    socklen_t pl = sizeof peer;
    int s = p.b->accept(l, reinterpret_cast<sockaddr*>(&peer), &pl);
    ASSERT_GE(s, 0);
    EXPECT_EQ(ntohl(peer.sin_addr.s_addr), dst.v) << "the source is the address connected to";
    std::string big(200000, 'q');
    for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
    std::thread tx([&] { EXPECT_EQ(p.b->send(c, big.data(), big.size(), MSG_WAITALL), ssize_t(big.size())); });
    std::string got(big.size(), 0);
    EXPECT_EQ(p.b->recv(s, got.data(), got.size(), MSG_WAITALL), ssize_t(big.size()));
    tx.join();
    EXPECT_EQ(got, big);
    ASSERT_EQ(p.b->send(s, "back", 4, 0), 4);
    char buf[8];
    ASSERT_EQ(p.b->recv(c, buf, 4, MSG_WAITALL), 4);
    EXPECT_EQ(std::string(buf, 4), "back");
    p.b->close(c);
    EXPECT_EQ(p.b->recv(s, buf, sizeof buf, 0), 0);
    p.b->close(s);
  }
  // Nothing listens: refused at once.
  int c = p.b->socket(AF_INET, SOCK_STREAM, 0);
  auto none = sin_of(kB, 141);
  EXPECT_EQ(p.b->connect(c, sa(none), sizeof none), -1);
  EXPECT_EQ(errno, ECONNREFUSED);
  p.b->close(c);
  // UDP to our own bound port.
  int u = p.b->socket(AF_INET, SOCK_DGRAM, 0);
  auto ub = sin_of(Ipv4Addr::any(), 5002), self = sin_of(kB, 5002);
  ASSERT_EQ(p.b->bind(u, sa(ub), sizeof ub), 0);
  ASSERT_EQ(p.b->sendto(u, "me", 2, 0, sa(self), sizeof self), 2);
  sockaddr_in from{};
  socklen_t fl = sizeof from;
  char buf[8];
  ASSERT_EQ(p.b->recvfrom(u, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fl), 2);
  EXPECT_EQ(std::string(buf, 2), "me");
  EXPECT_EQ(ntohs(from.sin_port), 5002);
  p.b->close(u);
  p.b->close(l);
}

// SO_PEEK_OFF (sk_peek_off): -1 by default; once set, each MSG_PEEK starts
// there and moves it on, a read moves it back; UDP peeks pass over whole
// datagrams the offset covers.
TEST(NativePeekOff, TcpAndUdp) {
  NativePair p;
  auto [c, s] = p.connected(132);
  int v = 0;
  socklen_t vl = sizeof v;
  ASSERT_EQ(p.b->getsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &v, &vl), 0);
  EXPECT_EQ(v, -1);
  v = 0;
  ASSERT_EQ(p.b->setsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &v, sizeof v), 0);
  ASSERT_EQ(p.a->send(c, "0123456789", 10, 0), 10);
  char buf[16] = {};
  for (int i = 0; i < 2000 && p.b->recv(s, buf, 16, MSG_PEEK | MSG_DONTWAIT) < 10; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  // That last peek (10 bytes) moved the offset too: start again.
  v = 0;
  ASSERT_EQ(p.b->setsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &v, sizeof v), 0);
  ASSERT_EQ(p.b->recv(s, buf, 4, MSG_PEEK), 4);
  EXPECT_EQ(std::string(buf, 4), "0123");
  ASSERT_EQ(p.b->recv(s, buf, 4, MSG_PEEK), 4);
  EXPECT_EQ(std::string(buf, 4), "4567");
  ASSERT_EQ(p.b->getsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &v, &vl), 0);
  EXPECT_EQ(v, 8);
  ASSERT_EQ(p.b->recv(s, buf, 3, 0), 3);
  EXPECT_EQ(std::string(buf, 3), "012");
  ASSERT_EQ(p.b->getsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &v, &vl), 0);
  EXPECT_EQ(v, 5);
  ASSERT_EQ(p.b->recv(s, buf, 4, MSG_PEEK), 2);
  EXPECT_EQ(std::string(buf, 2), "89");
  EXPECT_EQ(p.b->recv(s, buf, 4, MSG_PEEK | MSG_DONTWAIT), -1) << "nothing past the offset";
  EXPECT_EQ(errno, EAGAIN);

  int ua = p.a->socket(AF_INET, SOCK_DGRAM, 0), ub = p.b->socket(AF_INET, SOCK_DGRAM, 0);
  auto sb = sin_of(kB, 5001);
  ASSERT_EQ(p.b->bind(ub, sa(sb), sizeof sb), 0);
  ASSERT_EQ(p.a->sendto(ua, "abcdef", 6, 0, sa(sb), sizeof sb), 6);
  ASSERT_EQ(p.a->sendto(ua, "XY", 2, 0, sa(sb), sizeof sb), 2);
  // Both datagrams queued: a peek 6 bytes in (past the first) finds "XY".
  v = 6;
  ASSERT_EQ(p.b->setsockopt(ub, SOL_SOCKET, SO_PEEK_OFF, &v, sizeof v), 0);
  ssize_t got = -1;
  for (int i = 0; i < 2000 && (got = p.b->recv(ub, buf, 16, MSG_PEEK | MSG_DONTWAIT)) != 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(got, 2);
  EXPECT_EQ(std::string(buf, 2), "XY");
  v = 0;
  ASSERT_EQ(p.b->setsockopt(ub, SOL_SOCKET, SO_PEEK_OFF, &v, sizeof v), 0);
  ASSERT_EQ(p.b->recv(ub, buf, 2, MSG_PEEK), 2);
  EXPECT_EQ(std::string(buf, 2), "ab");
  ASSERT_EQ(p.b->recv(ub, buf, 2, MSG_PEEK), 2);
  EXPECT_EQ(std::string(buf, 2), "cd");
  ASSERT_EQ(p.b->recv(ub, buf, 16, MSG_PEEK), 2);
  EXPECT_EQ(std::string(buf, 2), "ef");
  ASSERT_EQ(p.b->recv(ub, buf, 16, MSG_PEEK), 2);
  EXPECT_EQ(std::string(buf, 2), "XY") << "the offset passes over the first datagram";
  ASSERT_EQ(p.b->recv(ub, buf, 16, 0), 6);
  ASSERT_EQ(p.b->getsockopt(ub, SOL_SOCKET, SO_PEEK_OFF, &v, &vl), 0);
  EXPECT_EQ(v, 2);
  p.b->close(ub);
  p.a->close(ua);
}

std::atomic<int> g_sigio{0}, g_sigurg{0}, g_rt_fd{-1};
void on_sigio(int) { g_sigio++; }
void on_sigurg(int) { g_sigurg++; }
void on_rt(int, siginfo_t* si, void*) { g_rt_fd = si->si_fd; }

// Signal-driven I/O: F_SETOWN + O_ASYNC raise SIGIO when data arrives;
// urgent data raises SIGURG for an owner even without O_ASYNC; F_SETSIG
// queues the chosen signal with si_fd; a missing owner is ESRCH.
TEST(NativeAsync, SetownAsyncSigioSigurgAndSetsig) {
  NativePair p;
  auto [c, s] = p.connected(131);
  struct sigaction sa {}, old_io {}, old_urg {}, old_rt {};
  sa.sa_handler = on_sigio;
  sigaction(SIGIO, &sa, &old_io);
  sa.sa_handler = on_sigurg;
  sigaction(SIGURG, &sa, &old_urg);
  struct sigaction rt {};
  rt.sa_sigaction = on_rt;
  rt.sa_flags = SA_SIGINFO;
  sigaction(SIGRTMIN + 1, &rt, &old_rt);
  auto wait_for = [](std::atomic<int>& v, int want) {
    for (int i = 0; i < 2000 && v.load() != want; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return v.load();
  };
  EXPECT_EQ(p.b->fcntl(s, F_SETOWN, 999999999), -1);
  EXPECT_EQ(errno, ESRCH);
  ASSERT_EQ(p.b->fcntl(s, F_SETOWN, getpid()), 0);
  EXPECT_EQ(p.b->fcntl(s, F_GETOWN, 0), getpid());
  // Owner only: urgent data signals SIGURG, ordinary data nothing.
  g_sigio = 0;
  g_sigurg = 0;
  ASSERT_EQ(p.a->send(c, "u", 1, MSG_OOB), 1);
  EXPECT_EQ(wait_for(g_sigurg, 1), 1);
  char buf[8];
  ASSERT_EQ(p.b->recv(s, buf, 1, MSG_OOB), 1);
  ASSERT_EQ(p.a->send(c, "d", 1, 0), 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(g_sigio.load(), 0);
  ASSERT_EQ(p.b->recv(s, buf, sizeof buf, 0), 1);
  // O_ASYNC: data raises SIGIO.
  ASSERT_EQ(p.b->fcntl(s, F_SETFL, O_ASYNC | O_NONBLOCK), 0);
  EXPECT_EQ(p.b->fcntl(s, F_GETFL, 0) & (O_ASYNC | O_NONBLOCK), O_ASYNC | O_NONBLOCK);
  ASSERT_EQ(p.a->send(c, "e", 1, 0), 1);
  EXPECT_GE(wait_for(g_sigio, 1), 1);
  ASSERT_EQ(p.b->recv(s, buf, sizeof buf, 0), 1);
  // F_SETSIG: the queued signal names the descriptor.
  ASSERT_EQ(p.b->fcntl(s, F_SETSIG, SIGRTMIN + 1), 0);
  EXPECT_EQ(p.b->fcntl(s, F_GETSIG, 0), SIGRTMIN + 1);
  g_rt_fd = -1;
  ASSERT_EQ(p.a->send(c, "f", 1, 0), 1);
  EXPECT_EQ(wait_for(g_rt_fd, s), s);
  ASSERT_EQ(p.b->fcntl(s, F_SETOWN, 0), 0);
  EXPECT_EQ(p.b->fcntl(s, F_GETOWN, 0), 0);
  sigaction(SIGIO, &old_io, nullptr);
  sigaction(SIGURG, &old_urg, nullptr);
  sigaction(SIGRTMIN + 1, &old_rt, nullptr);
}

TEST(NativeEpoll, WakesBlockedWaiterOnAccept) {
  NativePair p;
  int l = p.listen_b(93);
  int ep = p.b->epoll_create1(0);
  epoll_event e{};
  e.events = EPOLLIN;
  e.data.fd = l;
  ASSERT_EQ(p.b->epoll_ctl(ep, EPOLL_CTL_ADD, l, &e), 0);
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    int c = p.a->socket(AF_INET, SOCK_STREAM, 0);
    auto s = sin_of(kB, 93);
    EXPECT_EQ(p.a->connect(c, sa(s), sizeof s), 0);
  });
  epoll_event out[2];
  EXPECT_EQ(p.b->epoll_wait(ep, out, 2, 5000), 1);
  EXPECT_EQ(out[0].data.fd, l);
  t.join();
  EXPECT_GE(p.b->accept(l, nullptr, nullptr), 0);
}

TEST(NativeConnect, UnspecDisconnectTcp) {
  NativePair p;
  auto [c, s] = p.connected(94);
  sockaddr unspec{};
  unspec.sa_family = AF_UNSPEC;
  EXPECT_EQ(p.a->connect(c, &unspec, sizeof unspec), 0);
  // The peer sees the abort.
  char buf[4];
  EXPECT_EQ(p.b->recv(s, buf, sizeof buf, 0), -1);
  EXPECT_EQ(errno, ECONNRESET);
  // And the socket can connect again.
  int l = p.listen_b(95);
  auto to = sin_of(kB, 95);
  EXPECT_EQ(p.a->connect(c, sa(to), sizeof to), 0) << strerror(errno);
  (void)l;
}

}  // namespace
}  // namespace xs

namespace xs {
namespace {

TEST(NativeCApi, WithoutStackAndOverDefaultRuntime) {
  // No stack: descriptor calls fail with EBADF, poll passes through to the
  // kernel, and starting from an empty environment is EINVAL.
  ASSERT_TRUE(native::set_default_runtime(nullptr));
  EXPECT_EQ(xs_is_xstack_fd(3), 0);
  EXPECT_EQ(xs_close(12345), -1);
  EXPECT_EQ(errno, EBADF);
  int k = eventfd(1, EFD_CLOEXEC);
  pollfd kp{k, POLLIN, 0};
  EXPECT_EQ(xs_poll(&kp, 1, 0), 1);
  ::close(k);
  const char* saved = std::getenv("XSTACK_IF");
  std::string keep = saved ? saved : "";
  unsetenv("XSTACK_IF");
  EXPECT_EQ(xs_socket(AF_INET, SOCK_STREAM, 0), -1);
  EXPECT_EQ(errno, EINVAL);
  auto bad = Socket::open(AF_INET, SOCK_STREAM);
  EXPECT_FALSE(bad);
  EXPECT_EQ(bad.error(), EINVAL);
  if (saved) setenv("XSTACK_IF", keep.c_str(), 1);
  xs_config cfg{};
  EXPECT_EQ(xs_init(&cfg), -1);
  EXPECT_EQ(errno, EINVAL);

  // Over a runtime on the memory pair: the C API and the C++ layer.
  NativePair p;
  ASSERT_TRUE(native::set_default_runtime(p.a.get()));
  int l = p.listen_b(96);
  int fd_seen = -1;
  {
    auto s = Socket::open(AF_INET, SOCK_STREAM);
    ASSERT_TRUE(s);
    Socket sock = std::move(*s);
    EXPECT_EQ(xs_is_xstack_fd(sock.fd()), 1);
    auto to = sin_of(kB, 96);
    ASSERT_TRUE(sock.connect(sa(to), sizeof to));
    int srv = p.b->accept(l, nullptr, nullptr);
    ASSERT_GE(srv, 0);
    const char msg[] = "span";
    auto w = sock.send(std::as_bytes(std::span(msg, 4)));
    ASSERT_TRUE(w);
    EXPECT_EQ(*w, 4);
    auto nd = sock.setopt(IPPROTO_TCP, TCP_NODELAY, 1);
    EXPECT_TRUE(nd);
    auto got = sock.getopt<int>(IPPROTO_TCP, TCP_NODELAY);
    ASSERT_TRUE(got);
    EXPECT_EQ(*got, 1);
    auto bogus = sock.getopt<int>(SOL_SOCKET, SO_PEERCRED);
    EXPECT_EQ(bogus.error(), ENOPROTOOPT);
    int fl = xs_fcntl(sock.fd(), F_GETFL);
    EXPECT_EQ(fl & O_NONBLOCK, 0);
    int one = 1;
    EXPECT_EQ(xs_ioctl(sock.fd(), FIONBIO, &one), 0);
    std::byte in[8];
    auto r = sock.recv(in);
    EXPECT_FALSE(r);
    EXPECT_EQ(r.error(), EAGAIN);
    char buf[8];
    EXPECT_EQ(p.b->recv(srv, buf, 4, MSG_WAITALL), 4);
    fd_seen = sock.fd();
  }  // the Socket closes itself
  EXPECT_EQ(xs_is_xstack_fd(fd_seen), 0);
  EXPECT_TRUE(native::set_default_runtime(nullptr));
}

}  // namespace
}  // namespace xs

namespace xs {
namespace {

TEST(NativeEpoll, LocalChangesWakeBlockedThreads) {
  NativePair p;
  auto [c, s] = p.connected(97);
  EXPECT_EQ(p.a->send(c, "r", 1, 0), 1);
  EXPECT_TRUE(wait_for(*p.b, s, POLLIN) & POLLIN);
  // A thread in epoll_wait on an empty set wakes when another adds a ready fd.
  int ep = p.b->epoll_create1(0);
  std::thread adder([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    epoll_event e{};
    e.events = EPOLLIN;
    EXPECT_EQ(p.b->epoll_ctl(ep, EPOLL_CTL_ADD, s, &e), 0);
  });
  auto t0 = std::chrono::steady_clock::now();
  epoll_event out[2];
  EXPECT_EQ(p.b->epoll_wait(ep, out, 2, 5000), 1);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(500));
  adder.join();
  // A blocked recv returns 0 when another thread shuts the read side.
  char buf[4];
  EXPECT_EQ(p.b->recv(s, buf, sizeof buf, 0), 1);
  std::thread closer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    EXPECT_EQ(p.b->shutdown(s, SHUT_RD), 0);
  });
  t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(p.b->recv(s, buf, sizeof buf, 0), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(500));
  closer.join();
  // A blocked recv on a descriptor another thread closes ends with EBADF.
  std::thread closer2([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    EXPECT_EQ(p.a->close(c), 0);
  });
  EXPECT_EQ(p.a->recv(c, buf, sizeof buf, 0), -1);
  EXPECT_EQ(errno, EBADF);
  closer2.join();
}

}  // namespace
}  // namespace xs

namespace xs {
namespace {

TEST(NativeUdp, ShutdownReadReadinessAndRcvlowatCap) {
  NativePair p;
  int u = p.a->socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  auto to = sin_of(kB, 7001);
  ASSERT_EQ(p.a->connect(u, sa(to), sizeof to), 0);
  pollfd pf{u, POLLIN | POLLOUT | POLLRDHUP, 0};
  EXPECT_EQ(p.a->poll(&pf, 1, 0), 1);
  EXPECT_EQ(pf.revents, POLLOUT);
  EXPECT_EQ(p.a->shutdown(u, SHUT_RD), 0);
  EXPECT_EQ(p.a->poll(&pf, 1, 0), 1);
  EXPECT_EQ(pf.revents, POLLIN | POLLOUT | POLLRDHUP);  // datagram_poll
  char buf[4];
  EXPECT_EQ(p.a->recv(u, buf, sizeof buf, 0), -1);  // yet nothing to read
  EXPECT_EQ(errno, EAGAIN);
  // SO_RCVLOWAT on TCP: capped at half of tcp_rmem[2] unless SO_RCVBUF was set.
  int s = p.a->socket(AF_INET, SOCK_STREAM, 0);
  int huge = 1 << 30, got = 0;
  socklen_t len = sizeof got;
  EXPECT_EQ(p.a->setsockopt(s, SOL_SOCKET, SO_RCVLOWAT, &huge, sizeof huge), 0);
  EXPECT_EQ(p.a->getsockopt(s, SOL_SOCKET, SO_RCVLOWAT, &got, &len), 0);
  EXPECT_EQ(got, static_cast<int>(p.ea->config().tcp.rmem_max / 2));
  int rb = 10000;
  EXPECT_EQ(p.a->setsockopt(s, SOL_SOCKET, SO_RCVBUF, &rb, sizeof rb), 0);
  EXPECT_EQ(p.a->setsockopt(s, SOL_SOCKET, SO_RCVLOWAT, &huge, sizeof huge), 0);
  EXPECT_EQ(p.a->getsockopt(s, SOL_SOCKET, SO_RCVLOWAT, &got, &len), 0);
  EXPECT_EQ(got, 10000);
}

}  // namespace
}  // namespace xs

namespace xs {
namespace {

// Shared-IP mode: the kernel (a stand-in) picks and reserves ports.
struct StubHost final : HostKernel {
  std::mutex mu;
  std::vector<std::pair<uint8_t, uint16_t>> reserved, released;
  bool pending = false;
  void request(Ipv4Addr) override {
    std::lock_guard<std::mutex> lk(mu);
    pending = true;
  }
  bool wants_sync() const override {
    std::lock_guard<std::mutex> lk(const_cast<std::mutex&>(mu));
    return pending;
  }
  int fd() const override { return -1; }
  void sync(ArpCache& arp) override {
    std::lock_guard<std::mutex> lk(mu);
    arp.insert_static(kB, MacAddr{{2, 0, 0, 0, 0, 2}});
    pending = false;
  }
  std::optional<Ipv4Addr> default_gateway() const override { return std::nullopt; }
  Expected<uint16_t, int> reserve(uint8_t proto, uint16_t port, bool) override {
    std::lock_guard<std::mutex> lk(mu);
    if (port == 80) return unexpected(EADDRINUSE);
    uint16_t got = port == 0 ? uint16_t(40001 + reserved.size()) : port;
    reserved.push_back({proto, got});
    return got;
  }
  void release(uint8_t proto, uint16_t port) override {
    std::lock_guard<std::mutex> lk(mu);
    released.push_back({proto, port});
  }
};

TEST(NativeSharedIp, PortsAreClaimedFromTheKernel) {
  auto [da, db] = make_memory_device_pair(MacAddr{{2, 0, 0, 0, 0, 1}}, MacAddr{{2, 0, 0, 0, 0, 2}});
  EngineConfig ca;
  ca.addr = {kA, 24};
  ca.dedicated_ip = false;
  EngineConfig cb = ca;
  cb.addr = {kB, 24};
  cb.dedicated_ip = true;
  auto h = std::make_unique<StubHost>();
  StubHost* host = h.get();
  auto ea = std::make_unique<Engine>(ca, std::move(da), std::move(h));
  auto eb = std::make_unique<Engine>(cb, std::move(db));
  eb->stack_locked().arp().insert_static(kA, MacAddr{{2, 0, 0, 0, 0, 1}});
  ea->start();
  eb->start();
  {
    Runtime a(*ea), b(*eb);
    int t = a.socket(AF_INET, SOCK_STREAM, 0);
    auto p80 = sin_of(Ipv4Addr::any(), 80);
    EXPECT_EQ(a.bind(t, sa(p80), sizeof p80), -1);
    EXPECT_EQ(errno, EADDRINUSE);
    int u = a.socket(AF_INET, SOCK_DGRAM, 0);
    EXPECT_EQ(a.bind(u, sa(p80), sizeof p80), -1);
    EXPECT_EQ(errno, EADDRINUSE);
    // connect without bind: the kernel picks the port.
    int l = b.socket(AF_INET, SOCK_STREAM, 0);
    auto p7 = sin_of(Ipv4Addr::any(), 7);
    ASSERT_EQ(b.bind(l, sa(p7), sizeof p7), 0);
    ASSERT_EQ(b.listen(l, 4), 0);
    auto to = sin_of(kB, 7);
    ASSERT_EQ(a.connect(t, sa(to), sizeof to), 0) << strerror(errno);
    sockaddr_in me{};
    socklen_t len = sizeof me;
    EXPECT_EQ(a.getsockname(t, reinterpret_cast<sockaddr*>(&me), &len), 0);
    EXPECT_EQ(ntohs(me.sin_port), 40001);
    // UDP sendto autobinds through the kernel too.
    auto uto = sin_of(kB, 9000);
    EXPECT_EQ(a.sendto(u, "x", 1, 0, sa(uto), sizeof uto), 1);
    EXPECT_EQ(a.getsockname(u, reinterpret_cast<sockaddr*>(&me), &len), 0);
    EXPECT_EQ(ntohs(me.sin_port), 40002);
    EXPECT_EQ(a.close(t), 0);
    EXPECT_EQ(a.close(u), 0);
    std::lock_guard<std::mutex> lk(host->mu);
    ASSERT_EQ(host->released.size(), 2u);
    EXPECT_EQ(host->released[0], (std::pair<uint8_t, uint16_t>{6, 40001}));
    EXPECT_EQ(host->released[1], (std::pair<uint8_t, uint16_t>{17, 40002}));
  }
}

}  // namespace
}  // namespace xs

namespace xs {
namespace {

TEST(NativeUdp, MsgMoreAndMmsg) {
  NativePair p;
  int ub = p.b->socket(AF_INET, SOCK_DGRAM, 0);
  auto bb = sin_of(Ipv4Addr::any(), 7002);
  ASSERT_EQ(p.b->bind(ub, sa(bb), sizeof bb), 0);
  int ua = p.a->socket(AF_INET, SOCK_DGRAM, 0);
  auto to = sin_of(kB, 7002);
  EXPECT_EQ(p.a->sendto(ua, "ab", 2, MSG_MORE, sa(to), sizeof to), 2);
  EXPECT_EQ(p.a->sendto(ua, "cd", 2, MSG_MORE, nullptr, 0), 2);
  EXPECT_EQ(p.a->sendto(ua, "e", 1, 0, nullptr, 0), 1);
  // sendmmsg: two datagrams.
  char m1[] = "one", m2[] = "three";
  iovec v1{m1, 3}, v2{m2, 5};
  mmsghdr mm[2]{};
  mm[0].msg_hdr.msg_iov = &v1;
  mm[0].msg_hdr.msg_iovlen = 1;
  mm[0].msg_hdr.msg_name = &to;
  mm[0].msg_hdr.msg_namelen = sizeof to;
  mm[1].msg_hdr = mm[0].msg_hdr;
  mm[1].msg_hdr.msg_iov = &v2;
  EXPECT_EQ(p.a->sendmmsg(ua, mm, 2, 0), 2);
  EXPECT_EQ(mm[1].msg_len, 5u);
  char buf[16];
  timeval tv{5, 0};
  EXPECT_EQ(p.b->setsockopt(ub, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
  EXPECT_EQ(p.b->recv(ub, buf, sizeof buf, 0), 5);
  EXPECT_EQ(std::string(buf, 5), "abcde");
  char r1[8], r2[8], r3[8];
  iovec i1{r1, 8}, i2{r2, 8}, i3{r3, 8};
  mmsghdr rm[3]{};
  rm[0].msg_hdr.msg_iov = &i1;
  rm[1].msg_hdr.msg_iov = &i2;
  rm[2].msg_hdr.msg_iov = &i3;
  for (auto& m : rm) m.msg_hdr.msg_iovlen = 1;
  EXPECT_TRUE(wait_for(*p.b, ub, POLLIN) & POLLIN);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(p.b->recvmmsg(ub, rm, 3, MSG_WAITFORONE, nullptr), 2);
  EXPECT_EQ(std::string(r1, rm[0].msg_len), "one");
  EXPECT_EQ(std::string(r2, rm[1].msg_len), "three");
}

}  // namespace
}  // namespace xs

namespace xs {
namespace {

TEST(NativeData, BlockingSendTimesOutWithPartialCount) {
  NativePair p;
  auto [c, s] = p.connected(98);
  int small = 4096;
  EXPECT_EQ(p.a->setsockopt(c, SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
  timeval tv{0, 100000};
  EXPECT_EQ(p.a->setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv), 0);
  std::vector<char> big(4 << 20, 'x');
  ssize_t n = p.a->send(c, big.data(), big.size(), 0);
  EXPECT_GT(n, 0);
  EXPECT_LT(n, static_cast<ssize_t>(big.size()));
  // The peer's window still takes a little now and then; once both buffers
  // are full a blocking send gives up with EAGAIN after SO_SNDTIMEO.
  ssize_t r = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 200 && r >= 0; ++i) {
    t0 = std::chrono::steady_clock::now();
    r = p.a->send(c, big.data(), big.size(), 0);
  }
  EXPECT_EQ(r, -1);
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(90));
  (void)s;
}

TEST(NativeEpoll, PollMixesKernelFdsAndEpollFdIsNotAFile) {
  NativePair p;
  auto [c, s] = p.connected(99);
  int k = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    uint64_t one = 1;
    EXPECT_EQ(::write(k, &one, sizeof one), 8);
  });
  pollfd pf[3] = {{s, POLLIN, 0}, {k, POLLIN, 0}, {-1, POLLIN, 0}};
  EXPECT_EQ(p.b->poll(pf, 3, 5000), 1);
  EXPECT_EQ(pf[0].revents, 0);
  EXPECT_EQ(pf[1].revents, POLLIN);
  t.join();
  ::close(k);
  pollfd closed{k, POLLIN, 0};
  EXPECT_EQ(p.b->poll(&closed, 1, 0), 1);
  EXPECT_EQ(closed.revents, POLLNVAL);
  int ep = p.b->epoll_create1(0);
  char buf[4];
  EXPECT_EQ(p.b->read(ep, buf, sizeof buf), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(p.b->write(ep, buf, sizeof buf), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(p.b->send(ep, buf, sizeof buf, 0), -1);
  EXPECT_EQ(errno, ENOTSOCK);
  // An epoll fd polls readable when something in it is ready.
  epoll_event e{};
  e.events = EPOLLOUT;
  ASSERT_EQ(p.b->epoll_ctl(ep, EPOLL_CTL_ADD, s, &e), 0);
  pollfd pe{ep, POLLIN, 0};
  EXPECT_EQ(p.b->poll(&pe, 1, 0), 1);
  (void)c;
}

// ---- signals and the shim's hooks ----------------------------------------------

using testing_signals::HandlerScope;
using testing_signals::signal_later;

TEST(NativeSignals, BlockingRecvInterruptedWithoutSaRestartGivesEintr) {
  NativePair p;
  auto [c, s] = p.connected(7401);
  HandlerScope h(SIGUSR1, false);
  std::thread t = signal_later(pthread_self(), 50);
  char buf[8];
  errno = 0;
  EXPECT_EQ(p.a->recv(c, buf, sizeof buf, 0), -1);
  EXPECT_EQ(errno, EINTR);
  t.join();
  (void)s;
}

TEST(NativeSignals, BlockingRecvRestartsAfterSaRestartHandler) {
  NativePair p;
  auto [c, s] = p.connected(7402);
  HandlerScope h(SIGUSR1, true);
  Runtime* b = p.b.get();
  int srv = s;
  std::thread t = signal_later(pthread_self(), 50, [b, srv] { b->send(srv, "hi", 2, 0); });
  char buf[8];
  EXPECT_EQ(p.a->recv(c, buf, sizeof buf, 0), 2) << strerror(errno);
  t.join();
}

TEST(NativeSignals, RecvWithTimeoutAndEpollWaitReturnEintrEvenWithSaRestart) {
  NativePair p;
  auto [c, s] = p.connected(7403);
  HandlerScope h(SIGUSR1, true);
  xs::testing_signals::expect_timeout_and_epoll_wait_interrupted(*p.a, c);
  (void)s;
}

TEST(NativeShimHooks, EpollWakeModeMakesTheEpollDescriptorReadable) {
  NativePair p;
  auto [c, s] = p.connected(7404);
  int ep = p.a->epoll_create1(0);
  ASSERT_EQ(p.a->epoll_set_wake(ep), 0);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ASSERT_EQ(p.a->epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev), 0);
  pollfd pf{ep, POLLIN, 0};
  EXPECT_EQ(::poll(&pf, 1, 0), 0);  // nothing yet
  ASSERT_EQ(p.b->send(s, "x", 1, 0), 1);
  EXPECT_EQ(::poll(&pf, 1, 2000), 1);  // the data's event wrote it
  p.a->wait_begin(ep);
  EXPECT_EQ(::poll(&pf, 1, 0), 0);  // drained until the next event
  EXPECT_EQ(p.a->epoll_wait(ep, &ev, 1, 0), 1);
}

TEST(NativeShimHooks, EpollWakeStaysWrittenForWhatTheCollectLeaves) {
  NativePair p;
  auto [c1, s1] = p.connected(7405);
  auto [c2, s2] = p.connected(7406);
  int ep = p.a->epoll_create1(0);
  ASSERT_EQ(p.a->epoll_set_wake(ep), 0);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ASSERT_EQ(p.a->epoll_ctl(ep, EPOLL_CTL_ADD, c1, &ev), 0);
  ASSERT_EQ(p.a->epoll_ctl(ep, EPOLL_CTL_ADD, c2, &ev), 0);
  ASSERT_EQ(p.b->send(s1, "x", 1, 0), 1);
  ASSERT_EQ(p.b->send(s2, "y", 1, 0), 1);
  pollfd pf{ep, POLLIN, 0};
  char buf[4];
  for (int i = 0; i < 2000 && !(p.a->recv(c1, buf, 1, MSG_PEEK | MSG_DONTWAIT) == 1 &&
                                p.a->recv(c2, buf, 1, MSG_PEEK | MSG_DONTWAIT) == 1); ++i) {
    ::poll(nullptr, 0, 1);
  }
  p.a->wait_begin(ep);
  EXPECT_EQ(::poll(&pf, 1, 0), 0);
  // One event of two taken: another thread sleeping on the instance must
  // still be woken for the second (Linux wakes another waiter).
  EXPECT_EQ(p.a->epoll_wait(ep, &ev, 1, 0), 1);
  EXPECT_EQ(::poll(&pf, 1, 0), 1);
  p.a->wait_begin(ep);
  EXPECT_EQ(p.a->epoll_wait(ep, &ev, 1, 0), 1);
  EXPECT_EQ(::poll(&pf, 1, 0), 0);  // nothing left, nothing to wake for
  (void)s1;
  (void)s2;
}

// A thread asleep on the wake descriptor (the shim's kernel-side sleep) while
// another thread adds a socket that is already readable must be woken, as
// Linux's ep_insert wakes the set's waiters; likewise a set nesting it. A
// socket that is not ready wakes nobody.
TEST(NativeShimHooks, EpollAddOfAReadySocketWritesTheWake) {
  NativePair p;
  auto [c1, s1] = p.connected(7407);
  auto [c2, s2] = p.connected(7408);
  ASSERT_EQ(p.b->send(s1, "x", 1, 0), 1);
  char buf[4];
  for (int i = 0; i < 2000 && p.a->recv(c1, buf, 1, MSG_PEEK | MSG_DONTWAIT) != 1; ++i) ::poll(nullptr, 0, 1);
  int ep = p.a->epoll_create1(0);
  int outer = p.a->epoll_create1(0);
  ASSERT_EQ(p.a->epoll_set_wake(ep), 0);
  ASSERT_EQ(p.a->epoll_set_wake(outer), 0);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ASSERT_EQ(p.a->epoll_ctl(outer, EPOLL_CTL_ADD, ep, &ev), 0);
  p.a->wait_begin(outer);
  p.a->wait_begin(ep);
  pollfd pf[2] = {{ep, POLLIN, 0}, {outer, POLLIN, 0}};
  ASSERT_EQ(::poll(pf, 2, 0), 0);
  ASSERT_EQ(p.a->epoll_ctl(ep, EPOLL_CTL_ADD, c2, &ev), 0);  // nothing to read on c2
  EXPECT_EQ(::poll(pf, 2, 0), 0);
  ASSERT_EQ(p.a->epoll_ctl(ep, EPOLL_CTL_ADD, c1, &ev), 0);
  EXPECT_EQ(::poll(pf, 2, 0), 2);
  EXPECT_TRUE(pf[0].revents & POLLIN);
  EXPECT_TRUE(pf[1].revents & POLLIN);
  // EPOLL_CTL_MOD that asks for an event the socket has does the same.
  p.a->wait_begin(ep);
  p.a->wait_begin(outer);
  ASSERT_EQ(p.a->epoll_ctl(ep, EPOLL_CTL_DEL, c1, nullptr), 0);
  ev.events = EPOLLOUT;
  ASSERT_EQ(p.a->epoll_ctl(ep, EPOLL_CTL_MOD, c2, &ev), 0);
  EXPECT_GE(::poll(pf, 1, 0), 1);
  (void)s1;
  (void)s2;
}

TEST(NativeShimHooks, DupAliasKeepsTheConnectionUntilTheLastNameCloses) {
  NativePair p;
  auto [c, s] = p.connected(7405);
  int c2 = ::dup(c);
  ASSERT_GE(c2, 0);
  ASSERT_EQ(p.a->dup_alias(c, c2), c2);
  ASSERT_EQ(p.a->close(c), 0);
  EXPECT_EQ(p.a->send(c2, "ab", 2, 0), 2);
  char buf[8];
  EXPECT_EQ(p.b->recv(s, buf, sizeof buf, 0), 2);  // no FIN yet: the data, then nothing
  EXPECT_EQ(p.b->recv(s, buf, sizeof buf, MSG_DONTWAIT), -1);
  EXPECT_EQ(errno, EAGAIN);
  ASSERT_EQ(p.a->close(c2), 0);
  EXPECT_EQ(p.b->recv(s, buf, sizeof buf, 0), 0);  // now the FIN
}

TEST(NativeShimHooks, ForgetDropsAFreshSocketButNotItsDescriptor) {
  NativePair p;
  int fd = p.a->socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(p.a->is_fresh(fd));
  EXPECT_EQ(p.a->kind_of(fd), SOCK_STREAM);
  ASSERT_EQ(p.a->forget(fd), 0);
  EXPECT_FALSE(p.a->is_xstack_fd(fd));
  EXPECT_EQ(p.a->kind_of(fd), -1);
  EXPECT_NE(::fcntl(fd, F_GETFD), -1);  // still open: the caller replaces it
  ::close(fd);
  auto [c, s] = p.connected(7406);
  EXPECT_FALSE(p.a->is_fresh(c));
  (void)s;
}

}  // namespace
}  // namespace xs

namespace xs {
namespace {

using native::Runtime;
using namespace testing_native;

// Ancillary data end to end (the differential cases UdpCmsgRecv/UdpCmsgSend
// compare the details with Linux): an IP_TTL cmsg shapes one datagram, the
// receiver gets SO_TIMESTAMPNS, IP_PKTINFO and IP_TTL cmsgs.
TEST(NativeUdp, AncillaryDataBothWays) {
  NativePair p;
  int ub = p.b->socket(AF_INET, SOCK_DGRAM, 0);
  auto bb = sin_of(Ipv4Addr::any(), 7003);
  ASSERT_EQ(p.b->bind(ub, sa(bb), sizeof bb), 0);
  const int on = 1;
  ASSERT_EQ(p.b->setsockopt(ub, IPPROTO_IP, IP_PKTINFO, &on, sizeof on), 0);
  ASSERT_EQ(p.b->setsockopt(ub, IPPROTO_IP, IP_RECVTTL, &on, sizeof on), 0);
  ASSERT_EQ(p.b->setsockopt(ub, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on), 0);
  int ua = p.a->socket(AF_INET, SOCK_DGRAM, 0);
  auto to = sin_of(kB, 7003);
  alignas(cmsghdr) uint8_t sc[CMSG_SPACE(sizeof(int))] = {};
  auto* c = reinterpret_cast<cmsghdr*>(sc);
  c->cmsg_level = SOL_IP;
  c->cmsg_type = IP_TTL;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  const int ttl = 9;
  std::memcpy(CMSG_DATA(c), &ttl, sizeof ttl);
  char payload[] = "hi";
  iovec v{payload, 2};
  msghdr sm{};
  sm.msg_name = &to;
  sm.msg_namelen = sizeof to;
  sm.msg_iov = &v;
  sm.msg_iovlen = 1;
  sm.msg_control = sc;
  sm.msg_controllen = sizeof sc;
  ASSERT_EQ(p.a->sendmsg(ua, &sm, 0), 2);
  ASSERT_EQ(p.a->sendto(ua, "x", 1, 0, sa(to), sizeof to), 1);
  ASSERT_TRUE(wait_for(*p.b, ub, POLLIN) & POLLIN);

  char buf[8];
  alignas(cmsghdr) uint8_t rc[256];
  iovec rv{buf, sizeof buf};
  msghdr rm{};
  rm.msg_iov = &rv;
  rm.msg_iovlen = 1;
  rm.msg_control = rc;
  rm.msg_controllen = sizeof rc;
  ASSERT_EQ(p.b->recvmsg(ub, &rm, 0), 2);
  EXPECT_EQ(rm.msg_flags, 0);
  EXPECT_EQ(rm.msg_controllen, CMSG_SPACE(16) + CMSG_SPACE(sizeof(in_pktinfo)) + CMSG_SPACE(sizeof(int)));
  cmsghdr* h = CMSG_FIRSTHDR(&rm);
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->cmsg_level, SOL_SOCKET);
  EXPECT_EQ(h->cmsg_type, SCM_TIMESTAMPNS);
  timespec ts, now;
  std::memcpy(&ts, CMSG_DATA(h), sizeof ts);
  clock_gettime(CLOCK_REALTIME, &now);
  EXPECT_LE(ts.tv_sec, now.tv_sec);
  EXPECT_GE(ts.tv_sec, now.tv_sec - 5);
  h = CMSG_NXTHDR(&rm, h);
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->cmsg_type, IP_PKTINFO);
  in_pktinfo pi;
  std::memcpy(&pi, CMSG_DATA(h), sizeof pi);
  EXPECT_EQ(ntohl(pi.ipi_addr.s_addr), kB.v);
  EXPECT_EQ(ntohl(pi.ipi_spec_dst.s_addr), kB.v);
  h = CMSG_NXTHDR(&rm, h);
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->cmsg_type, IP_TTL);
  int got_ttl;
  std::memcpy(&got_ttl, CMSG_DATA(h), sizeof got_ttl);
  EXPECT_EQ(got_ttl, 9);
  EXPECT_EQ(CMSG_NXTHDR(&rm, h), nullptr);

  // The next datagram (the socket's TTL again) into a buffer with room for
  // the timestamp only: truncated, MSG_CTRUNC.
  rm.msg_controllen = CMSG_SPACE(16);
  ASSERT_EQ(p.b->recvmsg(ub, &rm, 0), 1);
  EXPECT_EQ(rm.msg_flags, MSG_CTRUNC);
  EXPECT_EQ(rm.msg_controllen, CMSG_SPACE(16));
}

}  // namespace
}  // namespace xs
