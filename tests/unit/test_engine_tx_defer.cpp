// The deferred TX kick (EngineConfig::tx_defer, the shim's default): frames a
// call queues leave when the calling thread next waits, when the progress
// thread's timer fires (at most tx_defer later), or when the engine stops;
// never lost, never sent early by the call itself. The memory device holds
// committed frames until flush_tx, as the AF_XDP TX ring does until the kick.
#include <gtest/gtest.h>

#include <poll.h>
#include <sys/ioctl.h>

#include <chrono>
#include <memory>
#include <thread>

#include "socketapi/memory_device.hpp"
#include "socketapi/native_runtime.hpp"
#include "tests/support/native_pair.hpp"

namespace xs {
namespace {

using namespace testing_native;
using Clock = std::chrono::steady_clock;

constexpr auto kDefer = std::chrono::milliseconds(100);  // below the 200 ms minimum RTO

struct DeferPair {
  DeferPair() {
    auto [da, db] = make_memory_device_pair(MacAddr{{2, 0, 0, 0, 0, 1}}, MacAddr{{2, 0, 0, 0, 0, 2}});
    EngineConfig ca;
    ca.addr = {kA, 24};
    ca.stats.enabled = false;  // no periodic publish to run the loop early
    EngineConfig cb = ca;
    cb.addr = {kB, 24};
    ca.tx_defer = micros(std::chrono::duration_cast<std::chrono::microseconds>(kDefer).count());
    ea = std::make_unique<Engine>(ca, std::move(da));
    eb = std::make_unique<Engine>(cb, std::move(db));
    ea->start();
    eb->start();
    a = std::make_unique<Runtime>(*ea);
    b = std::make_unique<Runtime>(*eb);
    int l = b->socket(AF_INET, SOCK_STREAM, 0);
    auto s = sin_of(Ipv4Addr::any(), 7300);
    EXPECT_EQ(b->bind(l, sa(s), sizeof s), 0);
    EXPECT_EQ(b->listen(l, 4), 0);
    c = a->socket(AF_INET, SOCK_STREAM, 0);
    auto to = sin_of(kB, 7300);
    EXPECT_EQ(a->connect(c, sa(to), sizeof to), 0);  // waits: the SYN and the ACK leave
    srv = b->accept(l, nullptr, nullptr);
    EXPECT_GE(srv, 0);
    b->close(l);
  }
  ~DeferPair() {
    a.reset();
    b.reset();
  }
  int readable_b() {
    int n = -1;
    EXPECT_EQ(b->ioctl(srv, FIONREAD, &n), 0);
    return n;
  }
  // Waits up to `limit` for B to have n bytes; returns how long it took.
  std::chrono::milliseconds until_b_has(int n, std::chrono::milliseconds limit) {
    const auto t0 = Clock::now();
    while (readable_b() < n && Clock::now() - t0 < limit) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  }
  std::unique_ptr<Engine> ea, eb;
  std::unique_ptr<Runtime> a, b;
  int c = -1, srv = -1;
};

TEST(EngineTxDefer, ASendIsKickedByTheTimerWhenTheCallerDoesNotWait) {
  DeferPair p;
  const auto t0 = Clock::now();
  ASSERT_EQ(p.a->send(p.c, "abc", 3, MSG_DONTWAIT), 3);
  EXPECT_EQ(p.readable_b(), 0);  // queued on A's TX, not kicked by the call
  p.until_b_has(3, std::chrono::milliseconds(2000));
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  EXPECT_EQ(p.readable_b(), 3);
  EXPECT_GE(took.count(), 50) << "left before the deferral ended";
  EXPECT_LT(took.count(), 180) << "the progress thread's timer did not kick it (the 200 ms RTO did)";
}

TEST(EngineTxDefer, ASendLeavesWhenTheCallerWaits) {
  DeferPair p;
  const auto t0 = Clock::now();
  ASSERT_EQ(p.a->send(p.c, "def", 3, MSG_DONTWAIT), 3);
  EXPECT_EQ(p.readable_b(), 0);
  // A wait on the sending thread kicks first (a 20 ms poll that times out):
  // the bytes arrive long before the 100 ms deferral would have ended.
  pollfd pf{p.c, POLLIN, 0};
  EXPECT_EQ(p.a->poll(&pf, 1, 20), 0);
  p.until_b_has(3, std::chrono::milliseconds(2000));
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  EXPECT_EQ(p.readable_b(), 3);
  EXPECT_LT(took.count(), 80) << "not kicked by the wait";
}

TEST(EngineTxDefer, StoppingTheEngineSendsWhatIsDeferred) {
  DeferPair p;
  ASSERT_EQ(p.a->send(p.c, "ghi", 3, MSG_DONTWAIT), 3);
  p.ea->stop();
  p.until_b_has(3, std::chrono::milliseconds(2000));
  EXPECT_EQ(p.readable_b(), 3);
}

}  // namespace
}  // namespace xs
