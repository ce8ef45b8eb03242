// A check both the native API's and the device slot's tests make: with an
// SA_RESTART handler installed, a recv with SO_RCVTIMEO and an epoll_wait
// still end with EINTR when the signal comes (Linux restarts only calls
// without a timeout).
#pragma once
#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/time.h>

#include <cerrno>
#include <thread>

#include "socketapi/native_runtime.hpp"
#include "tests/support/signal_scope.hpp"

namespace xs::testing_signals {

// `c`: a connected socket of `rt` with nothing to read; a handler for
// SIGUSR1 is installed by the caller.
inline void expect_timeout_and_epoll_wait_interrupted(native::Runtime& rt, int c) {
  timeval tv{5, 0};
  ASSERT_EQ(rt.setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
  std::thread t = signal_later(pthread_self(), 50);
  char buf[8];
  EXPECT_EQ(rt.recv(c, buf, sizeof buf, 0), -1);
  EXPECT_EQ(errno, EINTR);
  t.join();
  int ep = rt.epoll_create1(0);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ASSERT_EQ(rt.epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev), 0);
  std::thread t2 = signal_later(pthread_self(), 50);
  EXPECT_EQ(rt.epoll_wait(ep, &ev, 1, 5000), -1);
  EXPECT_EQ(errno, EINTR);
  t2.join();
  rt.close(ep);
}

}  // namespace xs::testing_signals
