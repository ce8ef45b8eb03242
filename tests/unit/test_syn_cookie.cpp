// Linux-style SYN cookies: MSS encoding, expiry, tamper resistance and the
// timestamp option encoding.
#include <gtest/gtest.h>

#include "stack/tcp/syn_cookie.hpp"

namespace xs {
namespace {

const CookieTuple kTuple{Ipv4Addr::from_octets(198, 18, 1, 7), Ipv4Addr::from_octets(198, 19, 0, 1),
                         51000, 80};
const Seq kClientIsn{0x12345678};
// Start of a counter period, so that "+ one period" is unambiguous.
constexpr Instant kT0{1000 * 60'000'000LL};

TEST(SynCookie, RoundTripEveryMssTableEntry) {
  SeededRandom rng(1);
  SynCookies c(rng);
  for (uint16_t mss : SynCookies::kMssTable) {
    uint16_t used = 0;
    const uint32_t cookie = c.make(kT0, kTuple, kClientIsn, mss, &used);
    EXPECT_EQ(used, mss);
    auto got = c.check(kT0 + seconds(1), kTuple, kClientIsn, cookie);
    ASSERT_TRUE(got.has_value()) << mss;
    EXPECT_EQ(*got, mss);
  }
}

TEST(SynCookie, PicksLargestEntryNotAbovePeerMss) {
  SeededRandom rng(2);
  SynCookies c(rng);
  struct Case { uint16_t peer, expect; };
  for (Case k : {Case{1459, 1440}, Case{9000, 1460}, Case{1300, 1300}, Case{1299, 536},
                 Case{100, 536}}) {
    uint16_t used = 0;
    const uint32_t cookie = c.make(kT0, kTuple, kClientIsn, k.peer, &used);
    EXPECT_EQ(used, k.expect) << k.peer;
    EXPECT_EQ(c.check(kT0, kTuple, kClientIsn, cookie), std::optional<uint16_t>(k.expect));
  }
}

TEST(SynCookie, ValidForTwoPeriodsThenExpires) {
  SeededRandom rng(3);
  SynCookies c(rng);
  const uint32_t cookie = c.make(kT0, kTuple, kClientIsn, 1460, nullptr);
  EXPECT_TRUE(c.check(kT0 + seconds(59), kTuple, kClientIsn, cookie));
  EXPECT_TRUE(c.check(kT0 + seconds(119), kTuple, kClientIsn, cookie));  // count + 1
  EXPECT_FALSE(c.check(kT0 + seconds(120), kTuple, kClientIsn, cookie));  // count + 2
  EXPECT_FALSE(c.check(kT0 + seconds(3600), kTuple, kClientIsn, cookie));
  // A cookie "from the future" (clock went back) is not accepted either.
  EXPECT_FALSE(c.check(kT0 - seconds(60), kTuple, kClientIsn, cookie));
}

TEST(SynCookie, RejectsTamperedCookie) {
  SeededRandom rng(4);
  SynCookies c(rng);
  const uint32_t cookie = c.make(kT0, kTuple, kClientIsn, 1460, nullptr);
  ASSERT_TRUE(c.check(kT0, kTuple, kClientIsn, cookie));
  for (uint32_t bit = 2; bit < 32; ++bit) {
    // Bits 0-1 can only move the MSS index to another entry (Linux has the
    // same property); any other bit breaks the hash or the count.
    EXPECT_FALSE(c.check(kT0, kTuple, kClientIsn, cookie ^ (1u << bit))) << "bit " << bit;
  }
  // Random guesses essentially never pass (expected rate 2 * 4 / 2^32).
  SeededRandom guess(99);
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) accepted += c.check(kT0, kTuple, kClientIsn, guess.next_u32()).has_value();
  EXPECT_EQ(accepted, 0);
}

TEST(SynCookie, RejectsOtherTupleOrIsn) {
  SeededRandom rng(5);
  SynCookies c(rng);
  const uint32_t cookie = c.make(kT0, kTuple, kClientIsn, 536, nullptr);  // index 0
  CookieTuple t = kTuple;
  t.sport++;
  EXPECT_FALSE(c.check(kT0, t, kClientIsn, cookie));
  t = kTuple;
  t.dport++;
  EXPECT_FALSE(c.check(kT0, t, kClientIsn, cookie));
  t = kTuple;
  t.saddr.v ^= 1;
  EXPECT_FALSE(c.check(kT0, t, kClientIsn, cookie));
  t = kTuple;
  t.daddr.v ^= 0x100;
  EXPECT_FALSE(c.check(kT0, t, kClientIsn, cookie));
  // Swapped direction is a different tuple.
  EXPECT_FALSE(c.check(kT0, CookieTuple{kTuple.daddr, kTuple.saddr, kTuple.dport, kTuple.sport},
                       kClientIsn, cookie));
  // ISN off by one would move index 0 to -1 (mod 2^24): rejected.
  EXPECT_FALSE(c.check(kT0, kTuple, kClientIsn + 1, cookie));
  EXPECT_FALSE(c.check(kT0, kTuple, kClientIsn + 0x10000, cookie));
  // Another listener (different secret) cannot validate it.
  SeededRandom rng2(6);
  SynCookies other(rng2);
  EXPECT_FALSE(other.check(kT0, kTuple, kClientIsn, cookie));
}

TEST(SynCookie, DifferentIsnDifferentCookie) {
  SeededRandom rng(7);
  SynCookies c(rng);
  EXPECT_NE(c.make(kT0, kTuple, kClientIsn, 1460, nullptr),
            c.make(kT0, kTuple, kClientIsn + 1, 1460, nullptr));
}

TEST(SynCookieTs, EncodeCarriesOptionsInLowBits) {
  // 1000 = 960 + 40; options 7 | SACK(16) = 23 <= 40, so same 64-block.
  const uint32_t ts = SynCookies::encode_ts(1000, uint8_t(7), true);
  EXPECT_EQ(ts, 960u + 23u);
  auto o = SynCookies::decode_ts(ts);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->wscale, std::optional<uint8_t>(7));
  EXPECT_TRUE(o->sack);
  EXPECT_FALSE(o->ecn);
}

TEST(SynCookieTs, NeverAheadOfClock) {
  // 965 has low bits 5 < options 0xf | SACK = 31: step back one 64-block.
  const uint32_t ts = SynCookies::encode_ts(965, std::nullopt, true);
  EXPECT_EQ(ts, 960u - 64u + 31u);
  EXPECT_LE(ts, 965u);
  auto o = SynCookies::decode_ts(ts);
  ASSERT_TRUE(o);
  EXPECT_FALSE(o->wscale.has_value());
  EXPECT_TRUE(o->sack);
  // Near zero the step back wraps modulo 2^32, like every timestamp.
  EXPECT_EQ(SynCookies::encode_ts(3, std::nullopt, false), 0xffffffc0u + 0xfu);
}

TEST(SynCookieTs, AllCombinationsRoundTrip) {
  for (int ws = -1; ws <= 14; ++ws) {
    for (int sack = 0; sack < 2; ++sack) {
      for (int ecn = 0; ecn < 2; ++ecn) {
        const std::optional<uint8_t> w = ws < 0 ? std::nullopt : std::optional<uint8_t>(uint8_t(ws));
        const uint32_t tsval = 0x89abcdefu;
        const uint32_t ts = SynCookies::encode_ts(tsval, w, sack, ecn);
        EXPECT_LE(tsval - ts, 63u);  // at most one block behind, never ahead
        auto o = SynCookies::decode_ts(ts);
        ASSERT_TRUE(o);
        EXPECT_EQ(o->wscale, w);
        EXPECT_EQ(o->sack, sack == 1);
        EXPECT_EQ(o->ecn, ecn == 1);
      }
    }
  }
}

TEST(SynCookieTs, RejectsOptionsThatAreSwitchedOff) {
  const uint32_t ts = SynCookies::encode_ts(5000, uint8_t(3), true);
  EXPECT_FALSE(SynCookies::decode_ts(ts, /*sack_enabled=*/false, true));
  EXPECT_FALSE(SynCookies::decode_ts(ts, true, /*wscale_enabled=*/false));
  // Without wscale in the cookie, window scaling being off is fine.
  const uint32_t ts2 = SynCookies::encode_ts(5000, std::nullopt, false);
  EXPECT_TRUE(SynCookies::decode_ts(ts2, false, false));
  // wscale is capped at 14 (RFC 7323 2.3) so it cannot turn into "none".
  auto o = SynCookies::decode_ts(SynCookies::encode_ts(5000, uint8_t(15), false));
  ASSERT_TRUE(o);
  EXPECT_EQ(o->wscale, std::optional<uint8_t>(14));
}

}  // namespace
}  // namespace xs
