// The device slot (socketapi/engine_wait.cpp): a thread asleep alone in a
// blocking call watches the device itself, so a frame wakes it directly,
// and a signal still ends or restarts the call as on Linux.
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <thread>

#include "tests/support/eintr_checks.hpp"
#include "tests/support/native_pair.hpp"
#include "tests/support/signal_scope.hpp"

namespace xs::testing_native {
namespace {

SignalRestart g_test_answer = SignalRestart::Unknown;
SignalRestart test_probe() { return g_test_answer; }

// Installs `answer` as the engine's signal probe for the test's life.
struct ProbeSays {
  explicit ProbeSays(SignalRestart answer) {
    g_test_answer = answer;
    set_signal_restart_probe(test_probe);
  }
  ~ProbeSays() { set_signal_restart_probe(nullptr); }
};

using testing_signals::HandlerScope;
using testing_signals::signal_later;
using testing_signals::expect_timeout_and_epoll_wait_interrupted;

// One byte each way, `rounds` times, both sides in blocking calls.
void ping_pong(NativePair& p, int c, int s, int rounds) {
  std::thread echo([&] {
    char b;
    for (int i = 0; i < rounds; ++i) {
      ASSERT_EQ(p.a->recv(c, &b, 1, 0), 1) << strerror(errno);
      ASSERT_EQ(p.a->send(c, &b, 1, 0), 1) << strerror(errno);
    }
  });
  char b = 'x';
  for (int i = 0; i < rounds; ++i) {
    ASSERT_EQ(p.b->send(s, &b, 1, 0), 1) << strerror(errno);
    ASSERT_EQ(p.b->recv(s, &b, 1, 0), 1) << strerror(errno);
  }
  echo.join();
}

TEST(EngineDeviceSlot, BlockingRecvIsWokenByTheFrameNotByTheProgressThread) {
  ProbeSays ps(SignalRestart::Never);
  NativePair p;
  auto [c, s] = p.connected(7501);
  const uint64_t sleeps0 = p.ea->slot_sleeps(), woke0 = p.ea->slot_wakeups();
  const uint64_t progress0 = p.ea->progress_wakeups();
  constexpr int kRounds = 400;
  ping_pong(p, c, s, kRounds);
  const uint64_t woke = p.ea->slot_wakeups() - woke0;
  const uint64_t progress = p.ea->progress_wakeups() - progress0;
  EXPECT_GE(p.ea->slot_sleeps() - sleeps0, uint64_t{kRounds / 2});
  // Nearly every request woke the blocked recv itself ...
  EXPECT_GE(woke, uint64_t{kRounds / 2});
  // ... and the progress thread no more than for its timers and looks.
  EXPECT_LT(progress, uint64_t{kRounds / 4}) << "slot wakeups " << woke;
}

TEST(EngineDeviceSlot, MixedHandlersKeepABlockingRecvOnItsEventfd) {
  // SA_RESTART on one handler and not on another: only the kernel knows which
  // signal came, so a call it may restart sleeps in read(2) (no slot).
  set_signal_restart_probe(scan_signal_restart);  // exact, as the shim's
  HandlerScope h1(SIGUSR1, true);
  HandlerScope h2(SIGUSR2, false);
  NativePair p;
  auto [c, s] = p.connected(7502);
  const uint64_t sleeps0 = p.ea->slot_sleeps();
  ping_pong(p, c, s, 50);
  EXPECT_EQ(p.ea->slot_sleeps() - sleeps0, 0u);
  set_signal_restart_probe(nullptr);
}

TEST(EngineDeviceSlot, WithoutAProbeABlockingRecvSleepsOnItsEventfd) {
  // The native API: nobody watches sigaction(), so a call that SA_RESTART
  // may restart keeps the kernel's own restart (read(2)).
  set_signal_restart_probe(nullptr);
  NativePair p;
  auto [c, s] = p.connected(7508);
  const uint64_t sleeps0 = p.ea->slot_sleeps();
  ping_pong(p, c, s, 50);
  EXPECT_EQ(p.ea->slot_sleeps() - sleeps0, 0u);
}

TEST(EngineDeviceSlot, SignalWithoutSaRestartEndsTheRecvWithEintr) {
  ProbeSays ps(SignalRestart::Never);
  HandlerScope h(SIGUSR1, false);
  NativePair p;
  auto [c, s] = p.connected(7503);
  const uint64_t sleeps0 = p.ea->slot_sleeps();
  std::thread t = signal_later(pthread_self(), 50);
  char buf[4];
  errno = 0;
  EXPECT_EQ(p.a->recv(c, buf, sizeof buf, 0), -1);
  EXPECT_EQ(errno, EINTR);
  t.join();
  EXPECT_GE(p.ea->slot_sleeps() - sleeps0, 1u);
  (void)s;
}

TEST(EngineDeviceSlot, SignalWithSaRestartRestartsTheRecv) {
  ProbeSays ps(SignalRestart::Always);
  HandlerScope h(SIGUSR1, true);
  NativePair p;
  auto [c, s] = p.connected(7504);
  const uint64_t sleeps0 = p.ea->slot_sleeps();
  Runtime* b = p.b.get();
  int srv = s;
  std::thread t = signal_later(pthread_self(), 50, [b, srv] { b->send(srv, "hi", 2, 0); });
  char buf[4];
  EXPECT_EQ(p.a->recv(c, buf, sizeof buf, 0), 2) << strerror(errno);
  t.join();
  EXPECT_GE(p.ea->slot_sleeps() - sleeps0, 1u);
}

TEST(EngineDeviceSlot, ATimeoutOrAnEpollWaitEndsWithEintrEvenWithSaRestart) {
  ProbeSays ps(SignalRestart::Always);
  HandlerScope h(SIGUSR1, true);
  NativePair p;
  auto [c, s] = p.connected(7505);
  const uint64_t sleeps0 = p.ea->slot_sleeps();
  expect_timeout_and_epoll_wait_interrupted(*p.a, c);
  EXPECT_GE(p.ea->slot_sleeps() - sleeps0, 2u);
  (void)s;
}

TEST(EngineDeviceSlot, ScanSeesMixedHandlersAsUnknown) {
  HandlerScope h1(SIGUSR1, true);
  HandlerScope h2(SIGUSR2, false);
  EXPECT_EQ(scan_signal_restart(), SignalRestart::Unknown);
}

TEST(EngineDeviceSlot, ASecondSleeperIsWokenThroughTheSlotHolder) {
  // Two threads blocked on two connections: one holds the slot, the other
  // sleeps on its eventfd; data for either reaches its reader.
  ProbeSays ps(SignalRestart::Never);
  NativePair p;
  auto [c1, s1] = p.connected(7506);
  auto [c2, s2] = p.connected(7507);
  std::atomic<int> got{0};
  auto reader = [&](int c) {
    char b[4];
    for (int i = 0; i < 20; ++i) {
      if (p.a->recv(c, b, 1, 0) == 1) got.fetch_add(1);
    }
  };
  std::thread r1(reader, c1), r2(reader, c2);
  for (int i = 0; i < 20; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    ASSERT_EQ(p.b->send(i % 2 ? s1 : s2, "a", 1, 0), 1);
    ASSERT_EQ(p.b->send(i % 2 ? s2 : s1, "b", 1, 0), 1);
  }
  r1.join();
  r2.join();
  EXPECT_EQ(got.load(), 40);
}

}  // namespace
}  // namespace xs::testing_native

namespace xs::testing_native {
namespace {

TEST(EngineSpinMode, TheProgressThreadKeepsAwayWhileAThreadSpinsInAWait) {
  // Each look of the progress thread preempts a spinning application on a
  // shared core: it must look rarely while one spins (Engine::kSpinnerCheck).
  auto [da, db] = make_memory_device_pair(MacAddr{{2, 0, 0, 0, 0, 1}}, MacAddr{{2, 0, 0, 0, 0, 2}});
  EngineConfig ca;
  ca.addr = {kA, 24};
  ca.poll_mode = PollMode::Spin;
  EngineConfig cb = ca;
  cb.addr = {kB, 24};
  Engine ea(ca, std::move(da)), eb(cb, std::move(db));
  ea.start();
  eb.start();
  {
    Runtime a(ea), b(eb);
    int l = b.socket(AF_INET, SOCK_STREAM, 0);
    auto sb = sin_of(Ipv4Addr::any(), 7601);
    ASSERT_EQ(b.bind(l, sa(sb), sizeof sb), 0);
    ASSERT_EQ(b.listen(l, 4), 0);
    int c = a.socket(AF_INET, SOCK_STREAM, 0);
    auto sk = sin_of(kB, 7601);
    ASSERT_EQ(a.connect(c, sa(sk), sizeof sk), 0) << strerror(errno);
    int s = b.accept(l, nullptr, nullptr);
    ASSERT_GE(s, 0);
    std::thread late([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      b.send(s, "z", 1, 0);
    });
    const uint64_t looks0 = ea.progress_wakeups();
    char ch;
    EXPECT_EQ(a.recv(c, &ch, 1, 0), 1);  // spins ~300 ms
    const uint64_t looks = ea.progress_wakeups() - looks0;
    late.join();
    // 1 ms steps gave ~300; 20 ms steps ~15.
    EXPECT_LT(looks, 60u);
    EXPECT_GT(looks, 0u);  // it still looks now and then
  }
  ea.stop();
  eb.stop();
}

}  // namespace
}  // namespace xs::testing_native
