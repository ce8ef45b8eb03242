// The threads the stack starts leave the application's signals alone: a
// process-directed signal must reach the thread that waits for it (nginx's
// master sleeps in sigsuspend for SIGCHLD), never the progress thread.
#include <gtest/gtest.h>

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>

#include "tests/support/native_pair.hpp"

namespace xs {
namespace {

std::atomic<int> g_handled{0};

TEST(EngineSignals, ProcessSignalsReachTheApplicationThreadNotTheProgressThread) {
  struct sigaction sa {}, old {};
  sa.sa_handler = [](int) { g_handled.fetch_add(1); };
  sigemptyset(&sa.sa_mask);
  ASSERT_EQ(sigaction(SIGUSR1, &sa, &old), 0);
  sigset_t usr1, prev;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  // The engines start while this thread accepts SIGUSR1, as a program's
  // stack starts before it blocks the signals it later waits for.
  ASSERT_EQ(pthread_sigmask(SIG_UNBLOCK, &usr1, &prev), 0);
  {
    testing_native::NativePair p;
    ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &usr1, nullptr), 0);
    for (int i = 0; i < 5; ++i) {
      ASSERT_EQ(kill(getpid(), SIGUSR1), 0);
      // Time for a thread that does not block it to take it (the kernel
      // wakes one at once); then it must still be pending for this one.
      usleep(50000);
      timespec ts{0, 100000000};
      EXPECT_EQ(sigtimedwait(&usr1, nullptr, &ts), SIGUSR1) << "another thread took signal " << i;
    }
    EXPECT_EQ(g_handled.load(), 0);
  }
  pthread_sigmask(SIG_SETMASK, &prev, nullptr);
  sigaction(SIGUSR1, &old, nullptr);
}

}  // namespace
}  // namespace xs
