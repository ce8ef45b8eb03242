// The progress thread's rest (interrupt mode, engine.cpp kRestCheck): while an
// application thread keeps polling the rings itself, the progress thread
// stops watching the device descriptors; when the application stops polling
// the progress thread looks again on its own, so frames are never stranded.
#include <gtest/gtest.h>

#include <sys/epoll.h>
#include <sys/ioctl.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "tests/support/native_pair.hpp"

namespace xs {
namespace {

using namespace testing_native;
using Clock = std::chrono::steady_clock;

int readable(Runtime& r, int fd) {
  int n = -1;
  EXPECT_EQ(r.ioctl(fd, FIONREAD, &n), 0);
  return n;
}

// B streams small sends to A while A's thread polls in wait_begin (as the
// shim's epoll_wait does at every turn of an event loop), until A's progress
// thread has gone to rest or `limit` passes. Returns the bytes B sent.
int poll_until_rest(NativePair& p, int c, int s, int ep, std::chrono::milliseconds limit) {
  const uint64_t rests0 = p.ea->progress_rests();
  int sent = 0;
  char buf[256];
  const auto t0 = Clock::now();
  while (p.ea->progress_rests() == rests0 && Clock::now() - t0 < limit) {
    if (p.b->send(s, "y", 1, MSG_DONTWAIT) == 1) ++sent;
    std::this_thread::sleep_for(std::chrono::microseconds(200));  // frames arrive while A runs
    p.a->wait_begin(ep);
    while (p.a->recv(c, buf, sizeof buf, MSG_DONTWAIT) > 0) {
    }
  }
  return sent;
}

// A connection from B to A whose engine's progress thread has gone to rest.
struct RestingPair {
  explicit RestingPair(uint16_t port) {
    auto cs = p.connected(port);
    c = cs.first;
    s = cs.second;
    ep = p.a->epoll_create1(0);
    EXPECT_EQ(p.a->epoll_set_wake(ep), 0);
    poll_until_rest(p, c, s, ep, std::chrono::milliseconds(5000));
  }
  NativePair p;
  int c = -1, s = -1, ep = -1;
};

TEST(EngineRest, AnApplicationThatPollsRestsTheProgressThread) {
  RestingPair r(7600);
  EXPECT_GE(r.p.ea->progress_rests(), 1u) << "the progress thread kept watching the device";
}

TEST(EngineRest, FramesReachAnApplicationThatStoppedPolling) {
  RestingPair r(7601);
  ASSERT_GE(r.p.ea->progress_rests(), 1u);
  // A no longer polls: the resting progress thread must take the frames.
  ASSERT_EQ(r.p.b->send(r.s, "abc", 3, 0), 3);
  const auto t0 = Clock::now();
  while (readable(*r.p.a, r.c) < 3 && Clock::now() - t0 < std::chrono::seconds(2)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(readable(*r.p.a, r.c), 3) << "frames stranded on the ring of a resting engine";
}

TEST(EngineRest, ABlockingCallOnARestingEngineGetsItsData) {
  RestingPair r(7602);
  ASSERT_GE(r.p.ea->progress_rests(), 1u);
  std::thread sender([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(r.p.b->send(r.s, "wxyz", 4, 0), 4);
  });
  timeval tv{5, 0};
  ASSERT_EQ(r.p.a->setsockopt(r.c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
  char buf[8];
  EXPECT_EQ(r.p.a->recv(r.c, buf, sizeof buf, 0), 4);  // sleeps on its eventfd: someone must poll
  sender.join();
}

}  // namespace
}  // namespace xs
