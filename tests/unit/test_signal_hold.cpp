// SignalHold (shim/signal_hold.hpp): a signal that arrives while a shim wait
// does its work before sleeping must end the sleep with EINTR, as it would
// end the kernel's epoll_wait/poll. Raising the signal inside the hold stands
// for "arrived during the pre-work": deterministic, no timing involved.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>

#include "shim/signal_hold.hpp"

namespace {

volatile sig_atomic_t g_handled = 0;
void on_usr1(int) { g_handled = g_handled + 1; }

// Installs a SIGUSR1 handler without SA_RESTART and restores the old one.
struct Usr1Handler {
  struct sigaction old {};
  Usr1Handler() {
    struct sigaction sa {};
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, &old);
    g_handled = 0;
  }
  ~Usr1Handler() { sigaction(SIGUSR1, &old, nullptr); }
};

bool usr1_blocked() {
  sigset_t cur;
  pthread_sigmask(SIG_SETMASK, nullptr, &cur);
  return sigismember(&cur, SIGUSR1) == 1;
}

}  // namespace

TEST(SignalHold, ASignalDuringThePreWorkEndsTheSleepWithEintr) {
  Usr1Handler h;
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  ASSERT_GE(ep, 0);
  {
    xs::shim::SignalHold hold(true, nullptr);
    ASSERT_TRUE(usr1_blocked());
    ASSERT_EQ(raise(SIGUSR1), 0);
    EXPECT_EQ(g_handled, 0);  // held: it did not run before the sleep
    epoll_event ev{};
    // The sleep unblocks it atomically: EINTR at once, not the 5 s timeout.
    EXPECT_EQ(epoll_pwait(ep, &ev, 1, 5000, hold.sleep_mask()), -1);
    EXPECT_EQ(errno, EINTR);
    EXPECT_EQ(g_handled, 1);
  }
  EXPECT_FALSE(usr1_blocked());  // the caller's mask is back
  close(ep);
}

TEST(SignalHold, PpollSleepAlsoTakesTheHeldSignal) {
  Usr1Handler h;
  xs::shim::SignalHold hold(true, nullptr);
  ASSERT_EQ(raise(SIGUSR1), 0);
  EXPECT_EQ(g_handled, 0);
  timespec ts{5, 0};
  EXPECT_EQ(ppoll(nullptr, 0, &ts, hold.sleep_mask()), -1);
  EXPECT_EQ(errno, EINTR);
  EXPECT_EQ(g_handled, 1);
}

TEST(SignalHold, TheApplicationsPwaitMaskIsTheOneToSleepWith) {
  Usr1Handler h;
  // epoll_pwait(..., &mask) with SIGUSR1 in the mask: the signal stays
  // pending through the sleep, as in the kernel, and runs once the caller's
  // own mask (which does not block it) is back.
  sigset_t app;
  sigemptyset(&app);
  sigaddset(&app, SIGUSR1);
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  ASSERT_GE(ep, 0);
  {
    xs::shim::SignalHold hold(true, &app);
    EXPECT_EQ(hold.sleep_mask(), &app);
    ASSERT_EQ(raise(SIGUSR1), 0);
    epoll_event ev{};
    EXPECT_EQ(epoll_pwait(ep, &ev, 1, 20, hold.sleep_mask()), 0);  // timed out
    EXPECT_EQ(g_handled, 0);
  }
  EXPECT_EQ(g_handled, 1);
  close(ep);
}

TEST(SignalHold, AWaitThatCannotSleepHoldsNothing) {
  Usr1Handler h;
  xs::shim::SignalHold hold(false, nullptr);
  EXPECT_EQ(hold.sleep_mask(), nullptr);
  EXPECT_FALSE(usr1_blocked());
  ASSERT_EQ(raise(SIGUSR1), 0);
  EXPECT_EQ(g_handled, 1);  // ran at once: a zero-timeout wait needs no hold
}

TEST(SignalHold, FaultSignalsStayUnblocked) {
  xs::shim::SignalHold hold(true, nullptr);
  sigset_t cur;
  pthread_sigmask(SIG_SETMASK, nullptr, &cur);
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL}) EXPECT_EQ(sigismember(&cur, sig), 0) << sig;
  EXPECT_EQ(sigismember(&cur, SIGTERM), 1);
}
