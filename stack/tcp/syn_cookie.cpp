#include "stack/tcp/syn_cookie.hpp"

namespace xs {

SynCookies::SynCookies(Random& rng)
    : key1_{rng.next_u64(), rng.next_u64()}, key2_{rng.next_u64(), rng.next_u64()} {}

uint32_t SynCookies::counter(Instant now) {
  // Linux tcp_cookie_time(): jiffies / TCP_SYNCOOKIE_PERIOD, truncated to 32 bits.
  return uint32_t(uint64_t(now.us) / uint64_t(kPeriod.us));
}

uint32_t SynCookies::hash(const SipKey& key, const CookieTuple& t, uint32_t count) const {
  SipHasher h(key);
  h.write_u32(t.saddr.v).write_u32(t.daddr.v).write_u32(uint32_t(t.sport) << 16 | t.dport)
      .write_u32(count);
  return uint32_t(h.finish());
}

uint32_t SynCookies::make(Instant now, const CookieTuple& t, Seq client_isn, uint16_t peer_mss,
                          uint16_t* mss_used) const {
  // Largest table entry not above what the peer can take; index 0 even if the
  // peer announced less than 536 (Linux does the same).
  uint32_t idx = kMssTable.size() - 1;
  while (idx > 0 && peer_mss < kMssTable[idx]) --idx;
  if (mss_used) *mss_used = kMssTable[idx];

  const uint32_t count = counter(now);
  // The first hash hides the count from anyone who does not know the key;
  // adding the client's ISN makes cookies for different SYNs of the same
  // tuple differ. The second hash, mod 2^24, authenticates count and data.
  return hash(key1_, t, 0) + client_isn.raw() + (count << kCookieBits) +
         ((hash(key2_, t, count) + idx) & kCookieMask);
}

std::optional<uint16_t> SynCookies::check(Instant now, const CookieTuple& t, Seq client_isn,
                                          uint32_t cookie) const {
  const uint32_t count = counter(now);
  // Peel off the outer layer; what remains is (count << 24) + (H2 + idx) mod 2^24.
  const uint32_t inner = cookie - (hash(key1_, t, 0) + client_isn.raw());
  // Age in periods, modulo 2^8 (the bits the cookie has room for).
  const uint32_t age = (count - (inner >> kCookieBits)) & (0xffffffffu >> kCookieBits);
  if (age >= kMaxAge) return std::nullopt;
  const uint32_t idx = (inner - hash(key2_, t, count - age)) & kCookieMask;
  // A forged or mismatched cookie leaves a random 24-bit value here; only
  // 4 of 2^24 pass.
  if (idx >= kMssTable.size()) return std::nullopt;
  return kMssTable[idx];
}

uint32_t SynCookies::encode_ts(uint32_t tsval, std::optional<uint8_t> wscale, bool sack,
                               bool ecn) {
  // Shift counts stop at 14 (RFC 7323 2.3), so 0xf is free to mean "none".
  uint32_t opts = wscale ? (*wscale > 14 ? 14u : *wscale) : kTsWscaleMask;
  if (sack) opts |= kTsSack;
  if (ecn) opts |= kTsEcn;
  const uint32_t step = 1u << kTsBits;
  uint32_t ts = (tsval & ~(step - 1)) | opts;
  // Never ahead of the real clock: step back one 64-tick unit (mod 2^32, as
  // timestamps are compared modulo 2^32 too, RFC 7323 5.2).
  if ((tsval & (step - 1)) < opts) ts -= step;
  return ts;
}

std::optional<CookieTsOptions> SynCookies::decode_ts(uint32_t tsecr, bool sack_enabled,
                                                     bool wscale_enabled) {
  CookieTsOptions o;
  o.sack = (tsecr & kTsSack) != 0;
  o.ecn = (tsecr & kTsEcn) != 0;
  if (o.sack && !sack_enabled) return std::nullopt;
  const uint32_t ws = tsecr & kTsWscaleMask;
  if (ws != kTsWscaleMask) {
    if (!wscale_enabled) return std::nullopt;
    o.wscale = uint8_t(ws);  // 0..14: 15 is the "none" marker
  }
  return o;
}

}  // namespace xs
