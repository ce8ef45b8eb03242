// Ten thousand concurrent connections opened, used and closed; every socket
// must end CLOSED and be freed (LeakSanitizer checks the memory in CI's ASan run).
#include <gtest/gtest.h>

#include <memory>
#include <unordered_map>
#include <vector>

#include "tests/support/sim_net.hpp"

namespace xs::test {
namespace {

TEST(SimMany, TenThousandConnectionsOpenUseClose) {
  constexpr int kConns = 10000;
  constexpr uint64_t kBytes = 1000;
  LinkConfig link;
  link.bandwidth_bps = 10'000'000'000ull;
  link.delay = micros(100);
  link.queue_limit_bytes = 64 << 20;
  link.max_frames_in_flight = 1 << 18;
  SimNet net(link, 3);
  AppRunner runner(net.sim);
  Instant t0 = net.sim.now();

  TcpSocket* l = net.b->stack.tcp().open();
  ASSERT_TRUE(l->bind({Ipv4Addr::any(), 7}).has_value());
  ASSERT_TRUE(l->listen(4096).has_value());

  std::vector<std::unique_ptr<StreamApp>> clients, servers;
  clients.reserve(kConns);
  servers.reserve(kConns);
  for (int i = 0; i < kConns; ++i) {
    TcpSocket* c = net.a->stack.tcp().open();
    auto r = c->connect(t0, {kSimB, 7});
    ASSERT_FALSE(r.has_value());
    ASSERT_EQ(r.error(), SockError::InProgress);
    clients.push_back(std::make_unique<StreamApp>(c, 2 * i, kBytes, 2 * i + 1, 2048));
    runner.add(clients.back().get());
  }
  EXPECT_EQ(net.a->stack.tcp().socket_count(), size_t(kConns));
  // The server learns which stream a connection carries from its client's port
  // order, so it echoes with the stream id the client expects.
  std::unordered_map<uint16_t, int> by_port;
  for (int i = 0; i < kConns; ++i) by_port[clients[i]->socket()->local().port] = i;
  bool listening = true;  // the listener is freed by close(): stop touching it
  net.sim.add_pollable({[&](Instant now) {
                          if (!listening) return;
                          for (;;) {
                            auto a = l->accept(now);
                            if (!a) break;
                            int i = by_port.at((*a)->remote().port);
                            servers.push_back(std::make_unique<StreamApp>(*a, 2 * i + 1, kBytes, 2 * i, 2048));
                            runner.add(servers.back().get());
                          }
                        },
                        [&] { return !listening || l->accept_queue_empty() ? kNever : net.sim.now(); }});
  auto all_done = [&] {
    if (servers.size() != size_t(kConns)) return false;
    for (auto& c : clients) if (!c->done()) return false;
    for (auto& s : servers) if (!s->done()) return false;
    return true;
  };
  ASSERT_TRUE(net.sim.run_until(t0 + seconds(120), all_done));
  for (auto& c : clients) {
    EXPECT_EQ(c->received(), kBytes);
    EXPECT_FALSE(c->corrupt());
    EXPECT_FALSE(c->error().has_value());
  }
  for (auto& s : servers) {
    EXPECT_EQ(s->received(), kBytes);
    EXPECT_FALSE(s->corrupt());
  }
  EXPECT_EQ(net.b->stack.counters().tcp_passive_opens, uint64_t(kConns));
  // TIME_WAIT lasts 60 s; after it every connection socket is gone.
  net.sim.run_until(net.sim.now() + seconds(65));
  EXPECT_EQ(net.a->stack.tcp().socket_count(), 0u);
  EXPECT_EQ(net.b->stack.tcp().socket_count(), 1u);  // the listener
  listening = false;
  l->close(net.sim.now());
  net.sim.run_until(net.sim.now() + seconds(1));
  EXPECT_EQ(net.b->stack.tcp().socket_count(), 0u);
}

}  // namespace
}  // namespace xs::test
