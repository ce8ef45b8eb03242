// SYN cookies: when the SYN queue is full, the listener answers a SYN with a
// SYN-ACK whose sequence number encodes everything it needs to rebuild the
// connection from the final ACK, and keeps no state. Same construction as
// Linux (net/ipv4/syncookies.c), which also defines what the peer sees:
//
//   cookie = H1(tuple) + client_isn + (count << 24)
//          + ((H2(tuple, count) + mss_index) mod 2^24)
//
// `count` is a coarse clock (one tick per period); H1/H2 are keyed SipHash.
// A cookie only carries a 2-bit MSS index; window scale and SACK-permitted
// ride in the low bits of our TSval when the peer uses timestamps.
#pragma once
#include <array>
#include <cstdint>
#include <optional>

#include "stack/base/addr.hpp"
#include "stack/base/random.hpp"
#include "stack/base/seq.hpp"
#include "stack/base/siphash.hpp"
#include "stack/base/time.hpp"

namespace xs {

// The connection as the client sees it: saddr/sport = client (the SYN's source).
struct CookieTuple {
  Ipv4Addr saddr, daddr;
  uint16_t sport = 0, dport = 0;
};

// Options recovered from the TSecr of the ACK completing a cookie handshake.
struct CookieTsOptions {
  std::optional<uint8_t> wscale;  // peer's window scale; nullopt: peer sent none
  bool sack = false;
  bool ecn = false;
};

class SynCookies {
 public:
  // Linux TCP_SYNCOOKIE_PERIOD (60 s) and MAX_SYNCOOKIE_AGE (2): a cookie
  // stays valid for at most two counter periods after it was made.
  static constexpr Duration kPeriod = seconds(60);
  static constexpr uint32_t kMaxAge = 2;
  // Linux msstab for IPv4: the common MSS values (536 = RFC 9293 default,
  // 1300 for tunnels, 1440 PPPoE-ish, 1460 Ethernet).
  static constexpr std::array<uint16_t, 4> kMssTable = {536, 1300, 1440, 1460};

  // Draws the two hash keys.
  explicit SynCookies(Random& rng);

  // Our ISN for the SYN-ACK. `client_isn` is the SYN's sequence number. The
  // MSS we will use is the largest table entry <= peer_mss (536 if the peer
  // asked for less), written to *mss_used when non-null.
  uint32_t make(Instant now, const CookieTuple& t, Seq client_isn, uint16_t peer_mss,
                uint16_t* mss_used) const;

  // Validates the cookie from the completing ACK: `cookie` = SEG.ACK - 1 and
  // `client_isn` = SEG.SEQ - 1. Returns the MSS it encodes, or nullopt if it
  // is forged, for another tuple, or older than kMaxAge periods.
  std::optional<uint16_t> check(Instant now, const CookieTuple& t, Seq client_isn,
                                uint32_t cookie) const;

  // Linux cookie_init_timestamp: our TSval with its low 6 bits replaced by
  // the options (bits 0-3 wscale, 0xf = none; bit 4 SACK; bit 5 ECN), moved
  // back by one 64-tick step if needed so that it never runs ahead of tsval
  // (our later timestamps must not appear to go backwards).
  static uint32_t encode_ts(uint32_t tsval, std::optional<uint8_t> wscale, bool sack,
                            bool ecn = false);
  // Linux cookie_timestamp_decode, from the ACK's TSecr. Returns nullopt
  // (reject the cookie) when it claims an option this stack has switched off.
  static std::optional<CookieTsOptions> decode_ts(uint32_t tsecr, bool sack_enabled = true,
                                                  bool wscale_enabled = true);

  static constexpr uint32_t kTsBits = 6;
  static constexpr uint32_t kTsWscaleMask = 0xf;
  static constexpr uint32_t kTsSack = 1u << 4;
  static constexpr uint32_t kTsEcn = 1u << 5;

 private:
  static constexpr uint32_t kCookieBits = 24;
  static constexpr uint32_t kCookieMask = (1u << kCookieBits) - 1;

  static uint32_t counter(Instant now);
  uint32_t hash(const SipKey& key, const CookieTuple& t, uint32_t count) const;

  SipKey key1_, key2_;
};

}  // namespace xs
