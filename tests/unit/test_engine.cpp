// The engine with real threads and the real clock, over an in-memory device
// pair: the progress thread in interrupt mode moves data and fires timers
// while application threads block in the internal API.
#include <gtest/gtest.h>

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <thread>
#include <vector>

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

// Shared-IP mode against a stand-in for the host kernel: it answers
// resolution requests for kB (signalling its fd, as rtnetlink would), picks
// port 40001 for autobind and refuses port 80 as taken.
constexpr MacAddr kMacA{{2, 0, 0, 0, 0, 1}};
constexpr MacAddr kMacB{{2, 0, 0, 0, 0, 2}};

struct FakeHost final : HostKernel {
  std::mutex mu;
  std::vector<Ipv4Addr> asked;
  std::vector<std::pair<uint8_t, uint16_t>> reserved, released;
  bool answer_pending = false;
  bool answer_without_event = false;  // the kernel already knew: no fd event follows
  int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  ~FakeHost() override { close(efd); }

  void request(Ipv4Addr ip) override {
    std::lock_guard<std::mutex> lk(mu);
    asked.push_back(ip);
    if (ip == kB) {
      answer_pending = true;
      if (answer_without_event) return;
      uint64_t one = 1;
      EXPECT_EQ(write(efd, &one, sizeof one), 8);
    }
  }
  bool wants_sync() const override {
    std::lock_guard<std::mutex> lk(const_cast<std::mutex&>(mu));
    return answer_pending;
  }
  int fd() const override { return efd; }
  void sync(ArpCache& arp) override {
    uint64_t v;
    (void)!read(efd, &v, sizeof v);
    std::lock_guard<std::mutex> lk(mu);
    if (answer_pending) arp.insert_static(kB, kMacB);
    answer_pending = false;
  }
  std::optional<Ipv4Addr> default_gateway() const override { return std::nullopt; }
  Expected<uint16_t, int> reserve(uint8_t proto, uint16_t port, bool) override {
    std::lock_guard<std::mutex> lk(mu);
    if (port == 80) return unexpected(EADDRINUSE);
    uint16_t got = port == 0 ? 40001 : port;
    reserved.push_back({proto, got});
    return got;
  }
  void release(uint8_t proto, uint16_t port) override {
    std::lock_guard<std::mutex> lk(mu);
    released.push_back({proto, port});
  }
};

struct SharedPair {
  explicit SharedPair(bool answer_without_event = false) {
    auto [da, db] = make_memory_device_pair(kMacA, kMacB);
    EngineConfig ca;
    ca.addr = {kA, 24};
    ca.dedicated_ip = false;
    EngineConfig cb = ca;
    cb.addr = {kB, 24};
    cb.dedicated_ip = true;
    auto h = std::make_unique<FakeHost>();
    host = h.get();
    host->answer_without_event = answer_without_event;
    a = std::make_unique<Engine>(ca, std::move(da), std::move(h));
    b = std::make_unique<Engine>(cb, std::move(db));
    // A's kernel would answer B's ARP requests; here B simply knows A.
    b->stack_locked().arp().insert_static(kA, kMacA);
    a->start();
    b->start();
  }
  FakeHost* host;
  std::unique_ptr<Engine> a, b;
};

TEST(EngineSharedIp, ConnectUsesKernelChosenPortAndKernelResolution) {
  SharedPair p;
  auto l = internal::tcp_listen(*p.b, 7, 4);
  ASSERT_TRUE(l.has_value());
  auto c = internal::tcp_connect(*p.a, {kB, 7}, seconds(10));
  ASSERT_TRUE(c.has_value());
  {
    std::lock_guard<std::mutex> lk(p.a->mutex());
    EXPECT_EQ((*c)->local().port, 40001);
    // The stack asked the kernel instead of putting ARP on the wire.
    EXPECT_EQ(p.b->stack_locked().counters().arp_rx, 0u);
  }
  {
    std::lock_guard<std::mutex> lk(p.host->mu);
    ASSERT_FALSE(p.host->asked.empty());
    EXPECT_EQ(p.host->asked[0], kB);
    ASSERT_EQ(p.host->reserved.size(), 1u);
    EXPECT_EQ(p.host->reserved[0], (std::pair<uint8_t, uint16_t>{6, 40001}));
  }
  internal::tcp_close(*p.a, *c);
  std::lock_guard<std::mutex> lk(p.host->mu);
  ASSERT_EQ(p.host->released.size(), 1u);
  EXPECT_EQ(p.host->released[0], (std::pair<uint8_t, uint16_t>{6, 40001}));
}

TEST(EngineSharedIp, NeighbourTheKernelAlreadyKnowsIsUsedWithoutAnEvent) {
  SharedPair p(/*answer_without_event=*/true);
  auto l = internal::tcp_listen(*p.b, 7, 4);
  ASSERT_TRUE(l.has_value());
  // Far shorter than the ARP retry (1 s): the SYN must leave at once.
  auto c = internal::tcp_connect(*p.a, {kB, 7}, millis(500));
  ASSERT_TRUE(c.has_value());
  internal::tcp_close(*p.a, *c);
}

TEST(EngineSharedIp, PortTheKernelHoldsIsInUseAndListenReservesItsPort) {
  SharedPair p;
  auto busy = internal::tcp_listen(*p.a, 80, 4);
  ASSERT_FALSE(busy.has_value());
  EXPECT_EQ(busy.error(), SockError::AddressInUse);
  auto u = internal::udp_bind(*p.a, 80);
  ASSERT_FALSE(u.has_value());
  EXPECT_EQ(u.error(), SockError::AddressInUse);
  auto l = internal::tcp_listen(*p.a, 8080, 4);
  ASSERT_TRUE(l.has_value());
  internal::tcp_close(*p.a, *l);
  std::lock_guard<std::mutex> lk(p.host->mu);
  EXPECT_EQ(p.host->reserved, (std::vector<std::pair<uint8_t, uint16_t>>{{6, 8080}}));
  EXPECT_EQ(p.host->released, (std::vector<std::pair<uint8_t, uint16_t>>{{6, 8080}}));
}

TEST(EngineSharedIp, RequiresHostKernel) {
  auto [da, db] = make_memory_device_pair(kMacA, kMacB);
  EngineConfig ca;
  ca.addr = {kA, 24};
  ca.dedicated_ip = false;
  EXPECT_THROW(Engine(ca, std::move(da)), std::invalid_argument);
}

}  // namespace
}  // namespace xs
