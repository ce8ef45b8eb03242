// XS_ZC_RX_FRAMES over two engines joined by the in-memory device (which
// lends frames like the AF_XDP device, up to 256): received payloads stay in
// the frames they arrived in, xs_zc_recv lends those frames, release and
// recv give them back to the device.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "socketapi/xstack.h"
#include "tests/support/native_pair.hpp"

namespace xs {
namespace {

using namespace testing_native;
using Clock = std::chrono::steady_clock;

uint64_t lent(Engine& e) {
  std::lock_guard<std::mutex> lk(e.mutex());
  return e.device_locked().counters().rx_lent;
}

bool wait_for(const std::function<bool()>& f) {
  auto end = Clock::now() + std::chrono::seconds(5);
  while (Clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return f();
}

int readable(Runtime& r, int fd) {
  int n = -1;
  EXPECT_EQ(r.ioctl(fd, FIONREAD, &n), 0);
  return n;
}

void set_frames(Runtime& r, int fd, int on) {
  ASSERT_EQ(r.setsockopt(fd, XS_SOL_XSTACK, XS_ZC_RX_FRAMES, &on, sizeof on), 0) << strerror(errno);
}

// A connected TCP pair whose accepted end (on B) has XS_ZC_RX_FRAMES from its
// listener; A has TCP_NODELAY so each send is its own segment.
std::pair<int, int> frames_pair(NativePair& p, uint16_t port, bool frames = true) {
  int l = p.b->socket(AF_INET, SOCK_STREAM, 0);
  if (frames) set_frames(*p.b, l, 1);
  auto s = sin_of(Ipv4Addr::any(), port);
  EXPECT_EQ(p.b->bind(l, sa(s), sizeof s), 0);
  EXPECT_EQ(p.b->listen(l, 4), 0);
  int c = p.a->socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  EXPECT_EQ(p.a->setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one), 0);
  auto to = sin_of(kB, port);
  EXPECT_EQ(p.a->connect(c, sa(to), sizeof to), 0) << strerror(errno);
  int srv = p.b->accept(l, nullptr, nullptr);
  EXPECT_GE(srv, 0);
  p.b->close(l);
  return {c, srv};
}

TEST(ZeroCopyFrames, OptionIsPerSocketAndChecked) {
  NativePair p;
  int t = p.b->socket(AF_INET, SOCK_STREAM, 0), u = p.b->socket(AF_INET, SOCK_DGRAM, 0);
  for (int fd : {t, u}) {
    int v = -1;
    socklen_t len = sizeof v;
    ASSERT_EQ(p.b->getsockopt(fd, XS_SOL_XSTACK, XS_ZC_RX_FRAMES, &v, &len), 0);
    EXPECT_EQ(v, 0);  // off by default
    set_frames(*p.b, fd, 7);
    ASSERT_EQ(p.b->getsockopt(fd, XS_SOL_XSTACK, XS_ZC_RX_FRAMES, &v, &len), 0);
    EXPECT_EQ(v, 1);
    short tiny = 1;
    EXPECT_EQ(p.b->setsockopt(fd, XS_SOL_XSTACK, XS_ZC_RX_FRAMES, &tiny, sizeof tiny), -1);
    EXPECT_EQ(errno, EINVAL);
    int one = 1;
    EXPECT_EQ(p.b->setsockopt(fd, XS_SOL_XSTACK, 99, &one, sizeof one), -1);
    EXPECT_EQ(errno, ENOPROTOOPT);
    EXPECT_EQ(p.b->getsockopt(fd, XS_SOL_XSTACK, 99, &v, &len), -1);
    EXPECT_EQ(errno, ENOPROTOOPT);
  }
}

TEST(ZeroCopyFrames, TcpSegmentsAreLentAsTheirFramesAndGoBackOnRelease) {
  NativePair p;
  auto [c, s] = frames_pair(p, 7100);
  const std::string msgs[] = {"first segment", "second", "third and last"};
  std::string all;
  for (const std::string& m : msgs) {
    ASSERT_EQ(p.a->send(c, m.data(), m.size(), 0), static_cast<ssize_t>(m.size()));
    all += m;
    // One segment at a time: each arrives in a frame of its own.
    ASSERT_TRUE(wait_for([&] { return readable(*p.b, s) == static_cast<int>(all.size()); }));
  }
  EXPECT_EQ(lent(*p.eb), 3u);  // held by the socket, not copied
  xs_zc_iov v[8];
  int n = p.b->zc_recv(s, v, 8, MSG_DONTWAIT);
  ASSERT_EQ(n, 3);  // one view per frame
  for (int i = 0; i < 3; ++i) EXPECT_EQ(std::string(static_cast<char*>(v[i].base), v[i].len), msgs[i]);
  // Releasing part of a frame keeps it; the rest of it stays valid.
  ASSERT_EQ(p.b->zc_release(s, 5), 0);
  EXPECT_EQ(lent(*p.eb), 3u);
  ASSERT_EQ(p.b->zc_release(s, msgs[0].size() - 5 + 2), 0);  // into the second frame
  EXPECT_EQ(lent(*p.eb), 2u);
  EXPECT_EQ(std::string(static_cast<char*>(v[2].base), v[2].len), msgs[2]);
  ASSERT_EQ(p.b->zc_release(s, msgs[1].size() - 2 + msgs[2].size()), 0);
  EXPECT_EQ(lent(*p.eb), 0u);
  EXPECT_EQ(p.b->zc_release(s, 1), -1);
  EXPECT_EQ(errno, EINVAL);
}

TEST(ZeroCopyFrames, PlainRecvCopiesOnceFromTheFramesAndReleasesThem) {
  NativePair p;
  auto [c, s] = frames_pair(p, 7101);
  std::string all;
  for (int i = 0; i < 5; ++i) {
    std::string m = "message-" + std::to_string(i) + std::string(static_cast<size_t>(100 * i), 'x');
    ASSERT_EQ(p.a->send(c, m.data(), m.size(), 0), static_cast<ssize_t>(m.size()));
    all += m;
    ASSERT_TRUE(wait_for([&] { return readable(*p.b, s) == static_cast<int>(all.size()); }));
  }
  EXPECT_EQ(lent(*p.eb), 5u);
  char buf[4096];
  ASSERT_EQ(p.b->recv(s, buf, 20, MSG_PEEK), 20);
  EXPECT_EQ(std::string(buf, 20), all.substr(0, 20));
  EXPECT_EQ(lent(*p.eb), 5u);  // a peek keeps them
  ASSERT_EQ(p.b->recv(s, buf, 20, 0), 20);  // across the first two frames
  EXPECT_EQ(std::string(buf, 20), all.substr(0, 20));
  EXPECT_EQ(lent(*p.eb), 4u);
  ssize_t r = p.b->recv(s, buf, sizeof buf, 0);
  ASSERT_EQ(r, static_cast<ssize_t>(all.size() - 20));
  EXPECT_EQ(std::string(buf, static_cast<size_t>(r)), all.substr(20));
  EXPECT_EQ(lent(*p.eb), 0u);
  // The connection goes on normally both ways.
  ASSERT_EQ(p.b->send(s, "pong", 4, 0), 4);
  ASSERT_TRUE(wait_for([&] { return readable(*p.a, c) == 4; }));
}

TEST(ZeroCopyFrames, WithoutTheOptionNothingIsHeld) {
  NativePair p;
  auto [c, s] = frames_pair(p, 7102, /*frames=*/false);
  ASSERT_EQ(p.a->send(c, "abc", 3, 0), 3);
  ASSERT_TRUE(wait_for([&] { return readable(*p.b, s) == 3; }));
  EXPECT_EQ(lent(*p.eb), 0u);
  xs_zc_iov v[4];
  ASSERT_EQ(p.b->zc_recv(s, v, 4, MSG_DONTWAIT), 1);  // the ring, lent in place
  EXPECT_EQ(lent(*p.eb), 0u);
}

TEST(ZeroCopyFrames, ClosingWithFramesHeldGivesThemBack) {
  NativePair p;
  auto [c, s] = frames_pair(p, 7103);
  ASSERT_EQ(p.a->send(c, "lent", 4, 0), 4);
  ASSERT_TRUE(wait_for([&] { return readable(*p.b, s) == 4; }));
  ASSERT_EQ(p.a->send(c, "unread", 6, 0), 6);
  ASSERT_TRUE(wait_for([&] { return readable(*p.b, s) == 10; }));
  xs_zc_iov v[1];
  ASSERT_EQ(p.b->zc_recv(s, v, 1, MSG_DONTWAIT), 1);
  EXPECT_EQ(lent(*p.eb), 2u);
  ASSERT_EQ(p.b->close(s), 0);  // unread data: RST, as Linux; the frames go back
  EXPECT_TRUE(wait_for([&] { return lent(*p.eb) == 0; }));
  char buf[8];
  EXPECT_TRUE(wait_for([&] { return p.a->recv(c, buf, sizeof buf, MSG_DONTWAIT) == -1 && errno == ECONNRESET; }));
}

TEST(ZeroCopyFrames, UdpDatagramsStayInTheirFrames) {
  NativePair p;
  int ub = p.b->socket(AF_INET, SOCK_DGRAM, 0);
  set_frames(*p.b, ub, 1);
  auto bb = sin_of(Ipv4Addr::any(), 9100);
  ASSERT_EQ(p.b->bind(ub, sa(bb), sizeof bb), 0);
  int ua = p.a->socket(AF_INET, SOCK_DGRAM, 0);
  auto to = sin_of(kB, 9100);
  const std::string d[] = {"alpha", "bravo!", "charlie"};
  for (const std::string& m : d) ASSERT_EQ(p.a->sendto(ua, m.data(), m.size(), 0, sa(to), sizeof to), (ssize_t)m.size());
  ASSERT_TRUE(wait_for([&] { return lent(*p.eb) == 3; }));
  xs_zc_iov v[4];
  ASSERT_EQ(p.b->zc_recv(ub, v, 2, MSG_DONTWAIT), 2);
  EXPECT_EQ(std::string(static_cast<char*>(v[0].base), v[0].len), d[0]);
  EXPECT_EQ(std::string(static_cast<char*>(v[1].base), v[1].len), d[1]);
  ASSERT_EQ(p.b->zc_release(ub, 1), 0);
  EXPECT_EQ(lent(*p.eb), 2u);
  EXPECT_EQ(std::string(static_cast<char*>(v[1].base), v[1].len), d[1]);  // still lent, intact
  ASSERT_EQ(p.b->zc_release(ub, 1), 0);
  char buf[16];
  sockaddr_in from{};
  socklen_t fl = sizeof from;
  ASSERT_EQ(p.b->recvfrom(ub, buf, 3, 0, reinterpret_cast<sockaddr*>(&from), &fl), 3);  // truncated
  EXPECT_EQ(std::string(buf, 3), "cha");
  EXPECT_EQ(lent(*p.eb), 0u);
}

}  // namespace
}  // namespace xs
