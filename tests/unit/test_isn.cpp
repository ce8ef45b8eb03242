// RFC 6528 initial sequence numbers and per-address-pair timestamp offsets.
#include <gtest/gtest.h>

#include <set>

#include "stack/tcp/isn.hpp"

namespace xs {
namespace {

const Ipv4Addr kLocal = Ipv4Addr::from_octets(198, 19, 0, 1);
const Ipv4Addr kRemote = Ipv4Addr::from_octets(198, 19, 0, 2);
constexpr Instant kT0{123'456'789};

TEST(Isn, SameInputsSameOutput) {
  SeededRandom rng(1);
  IsnGenerator g(rng);
  EXPECT_EQ(g.isn(kT0, kLocal, 40000, kRemote, 80), g.isn(kT0, kLocal, 40000, kRemote, 80));
}

TEST(Isn, DiffersByEveryTupleField) {
  SeededRandom rng(2);
  IsnGenerator g(rng);
  const Seq base = g.isn(kT0, kLocal, 40000, kRemote, 80);
  EXPECT_NE(g.isn(kT0, Ipv4Addr::from_octets(198, 19, 0, 3), 40000, kRemote, 80), base);
  EXPECT_NE(g.isn(kT0, kLocal, 40001, kRemote, 80), base);
  EXPECT_NE(g.isn(kT0, kLocal, 40000, Ipv4Addr::from_octets(198, 19, 0, 4), 80), base);
  EXPECT_NE(g.isn(kT0, kLocal, 40000, kRemote, 81), base);
  // Swapping the ports is a different connection too.
  EXPECT_NE(g.isn(kT0, kLocal, 80, kRemote, 40000), base);
  // Many tuples: the hash spreads them (no accidental constant).
  std::set<uint32_t> seen;
  for (uint16_t p = 1; p <= 1000; ++p) seen.insert(g.isn(kT0, kLocal, p, kRemote, 80).raw());
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(Isn, AdvancesWithFourMicrosecondClock) {
  SeededRandom rng(3);
  IsnGenerator g(rng);
  const Seq a = g.isn(kT0, kLocal, 40000, kRemote, 80);
  // RFC 9293 3.4.1: M ticks every 4 us, 250000 per second.
  EXPECT_EQ(g.isn(kT0 + seconds(1), kLocal, 40000, kRemote, 80) - a, 250000);
  EXPECT_EQ(g.isn(kT0 + micros(4), kLocal, 40000, kRemote, 80) - a, 1);
  EXPECT_EQ(g.isn(kT0 + micros(3), kLocal, 40000, kRemote, 80) - a,
            (kT0.us % 4 == 0) ? 0 : 1);
  // A later incarnation of the same tuple starts above the old one.
  EXPECT_GT(g.isn(kT0 + millis(10), kLocal, 40000, kRemote, 80), a);
}

TEST(Isn, SecretComesFromRandom) {
  SeededRandom r1(10), r2(11);
  IsnGenerator a(r1), b(r2);
  EXPECT_NE(a.isn(kT0, kLocal, 40000, kRemote, 80), b.isn(kT0, kLocal, 40000, kRemote, 80));
  EXPECT_NE(a.ts_offset(kLocal, kRemote), b.ts_offset(kLocal, kRemote));
}

TEST(Isn, TsOffsetPerAddressPair) {
  SeededRandom rng(4);
  IsnGenerator g(rng);
  const uint32_t off = g.ts_offset(kLocal, kRemote);
  EXPECT_EQ(g.ts_offset(kLocal, kRemote), off);  // stable: PAWS across connections
  EXPECT_NE(g.ts_offset(kLocal, Ipv4Addr::from_octets(198, 19, 0, 9)), off);
  EXPECT_NE(g.ts_offset(kRemote, kLocal), off);
}

}  // namespace
}  // namespace xs
