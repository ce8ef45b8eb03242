// RFC 6056 Algorithm 4 ephemeral port selection.
#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "stack/base/ephemeral_ports.hpp"

namespace xs {
namespace {

const Ipv4Addr kLocal = Ipv4Addr::from_octets(198, 19, 0, 1);
const Endpoint kRemote{Ipv4Addr::from_octets(198, 19, 0, 2), 80};

TEST(EphemeralPorts, WithinRange) {
  SeededRandom rng(1);
  EphemeralPorts ep(32768, 60999, rng);
  for (uint32_t i = 0; i < 2000; ++i) {
    const Endpoint r{Ipv4Addr{0xc6130000u + i}, uint16_t(1 + i % 7)};
    auto p = ep.pick(kLocal, r, [](uint16_t) { return false; });
    ASSERT_TRUE(p);
    EXPECT_GE(*p, 32768);
    EXPECT_LE(*p, 60999);
  }
  for (int i = 0; i < 200; ++i) {
    auto p = ep.pick(kLocal, Endpoint{}, [](uint16_t) { return false; });
    ASSERT_TRUE(p);
    EXPECT_GE(*p, 32768);
    EXPECT_LE(*p, 60999);
  }
}

TEST(EphemeralPorts, SkipsPortsInUse) {
  SeededRandom rng(2);
  EphemeralPorts ep(1000, 1099, rng);
  std::set<uint16_t> used;
  // Take every port one by one: each pick is free and new, then the range is exhausted.
  for (int i = 0; i < 100; ++i) {
    auto p = ep.pick(kLocal, kRemote, [&](uint16_t port) { return used.count(port) != 0; });
    ASSERT_TRUE(p) << i;
    EXPECT_EQ(used.count(*p), 0u);
    used.insert(*p);
  }
  EXPECT_EQ(used.size(), 100u);
  EXPECT_FALSE(ep.pick(kLocal, kRemote, [&](uint16_t port) { return used.count(port) != 0; }));
}

TEST(EphemeralPorts, ExhaustionTriesEachPortOnce) {
  SeededRandom rng(3);
  EphemeralPorts ep(5000, 5009, rng);
  for (Endpoint r : {kRemote, Endpoint{}}) {
    std::vector<uint16_t> tried;
    auto p = ep.pick(kLocal, r, [&](uint16_t port) {
      tried.push_back(port);
      return true;
    });
    EXPECT_FALSE(p);
    ASSERT_EQ(tried.size(), 10u);
    EXPECT_EQ(std::set<uint16_t>(tried.begin(), tried.end()).size(), 10u);
  }
}

TEST(EphemeralPorts, SingletonRange) {
  SeededRandom rng(4);
  EphemeralPorts ep(7000, 7000, rng);
  EXPECT_EQ(ep.pick(kLocal, kRemote, [](uint16_t) { return false; }), std::optional<uint16_t>(7000));
  EXPECT_FALSE(ep.pick(kLocal, kRemote, [](uint16_t) { return true; }));
}

TEST(EphemeralPorts, SameDestinationMovesOn) {
  // The perturbation counter makes the next connection to the same
  // destination start after the previous port, even when that one is free
  // again (it may still be in TIME-WAIT on the peer).
  SeededRandom rng(5);
  EphemeralPorts ep(32768, 60999, rng);
  auto a = ep.pick(kLocal, kRemote, [](uint16_t) { return false; });
  auto b = ep.pick(kLocal, kRemote, [](uint16_t) { return false; });
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*b, *a == 60999 ? 32768 : *a + 1);
}

TEST(EphemeralPorts, DestinationsGetDifferentFirstPicks) {
  SeededRandom rng(6);
  EphemeralPorts ep(32768, 60999, rng);
  std::set<uint16_t> firsts;
  for (uint16_t i = 0; i < 500; ++i) {
    const Endpoint r{Ipv4Addr::from_octets(198, 19, 2, uint8_t(i % 250)), uint16_t(443 + i / 250)};
    firsts.insert(*ep.pick(kLocal, r, [](uint16_t) { return false; }));
  }
  // 500 draws from 28232 ports: a handful of collisions at most if spread uniformly,
  // while a sequential allocator would give 500 neighbouring ports.
  EXPECT_GE(firsts.size(), 480u);
  EXPECT_GT(*firsts.rbegin() - *firsts.begin(), 20000);
}

TEST(EphemeralPorts, UnpredictableAcrossSecrets) {
  SeededRandom r1(7), r2(8);
  EphemeralPorts a(32768, 60999, r1), b(32768, 60999, r2);
  int same = 0;
  for (uint8_t i = 0; i < 50; ++i) {
    const Endpoint r{Ipv4Addr::from_octets(198, 19, 100, i), 22};
    same += *a.pick(kLocal, r, [](uint16_t) { return false; }) ==
            *b.pick(kLocal, r, [](uint16_t) { return false; });
  }
  EXPECT_LE(same, 2);
}

TEST(EphemeralPorts, UnboundRemoteIsRandomized) {
  SeededRandom rng(9);
  EphemeralPorts ep(32768, 60999, rng);
  std::set<uint16_t> picks;
  for (int i = 0; i < 100; ++i) picks.insert(*ep.pick(kLocal, Endpoint{}, [](uint16_t) { return false; }));
  EXPECT_GE(picks.size(), 95u);
}

}  // namespace
}  // namespace xs
