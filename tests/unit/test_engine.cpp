// The engine with real threads and the real clock, over an in-memory device
// pair: the progress thread in interrupt mode moves data and fires timers
// while application threads block in the internal API.
#include <gtest/gtest.h>

#include <thread>

#include "socketapi/engine.hpp"
#include "socketapi/internal_api.hpp"
#include "socketapi/memory_device.hpp"

namespace xs {
namespace {

constexpr Ipv4Addr kA = Ipv4Addr::from_octets(198, 18, 0, 1);
constexpr Ipv4Addr kB = Ipv4Addr::from_octets(198, 18, 0, 2);

struct EnginePair {
  explicit EnginePair(PollMode mode) {
    auto [da, db] = make_memory_device_pair(MacAddr{{2, 0, 0, 0, 0, 1}}, MacAddr{{2, 0, 0, 0, 0, 2}});
    EngineConfig ca;
    ca.addr = {kA, 24};
    ca.poll_mode = mode;
    EngineConfig cb = ca;
    cb.addr = {kB, 24};
    a = std::make_unique<Engine>(ca, std::move(da));
    b = std::make_unique<Engine>(cb, std::move(db));
    a->start();
    b->start();
  }
  std::unique_ptr<Engine> a, b;
};

void echo_round_trip(PollMode mode) {
  EnginePair p(mode);
  auto l = internal::tcp_listen(*p.b, 7, 16);
  ASSERT_TRUE(l.has_value());
  std::thread server([&] {
    auto c = internal::tcp_accept(*p.b, *l, seconds(10));
    ASSERT_TRUE(c.has_value());
    uint8_t buf[4096];
    for (;;) {
      auto n = internal::tcp_recv(*p.b, *c, MutBytes(buf, sizeof buf), seconds(10));
      ASSERT_TRUE(n.has_value());
      if (*n == 0) break;
      ASSERT_TRUE(internal::tcp_send_all(*p.b, *c, Bytes(buf, *n), seconds(10)).has_value());
    }
    internal::tcp_close(*p.b, *c);
  });
  auto c = internal::tcp_connect(*p.a, {kB, 7}, seconds(10));
  ASSERT_TRUE(c.has_value());
  std::vector<uint8_t> out(1 << 20), back(out.size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint8_t>(i * 31 + 7);
  std::thread writer([&] {
    auto w = internal::tcp_send_all(*p.a, *c, Bytes(out.data(), out.size()), seconds(20));
    EXPECT_EQ(w.has_value() ? *w : 0, out.size());
    internal::tcp_shutdown_write(*p.a, *c);
  });
  size_t got = 0;
  while (got < back.size()) {
    auto n = internal::tcp_recv(*p.a, *c, MutBytes(back.data() + got, back.size() - got), seconds(20));
    ASSERT_TRUE(n.has_value());
    if (*n == 0) break;
    got += *n;
  }
  writer.join();
  server.join();
  EXPECT_EQ(got, out.size());
  EXPECT_EQ(back, out);
  internal::tcp_close(*p.a, *c);
}

TEST(Engine, EchoOneMiBInterruptMode) { echo_round_trip(PollMode::Interrupt); }
TEST(Engine, EchoOneMiBSpinMode) { echo_round_trip(PollMode::Spin); }

TEST(Engine, ConnectToClosedPortIsRefused) {
  EnginePair p(PollMode::Interrupt);
  auto c = internal::tcp_connect(*p.a, {kB, 9}, seconds(10));
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error(), SockError::ConnectionRefused);
}

TEST(Engine, IdleInterruptEngineDoesNotSpin) {
  EnginePair p(PollMode::Interrupt);
  auto l = internal::tcp_listen(*p.b, 7, 4);
  ASSERT_TRUE(l.has_value());
  uint64_t before = p.a->polls() + p.b->polls();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // Nothing to do: the progress threads sleep in epoll (a handful of wakeups at most).
  EXPECT_LT(p.a->polls() + p.b->polls() - before, 20u);
}

}  // namespace
}  // namespace xs
