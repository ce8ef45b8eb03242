#include "stack/base/siphash.hpp"

namespace xs {

namespace {

constexpr uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

// One SipRound (paper, section 2.1).
inline void sipround(uint64_t& v0, uint64_t& v1, uint64_t& v2, uint64_t& v3) {
  v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32);
  v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;
  v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;
  v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32);
}

}  // namespace

SipHasher::SipHasher(const SipKey& key)
    // Initialization constants are "somepseudorandomlygeneratedbytes" (paper 2.1).
    : v0_(key.k0 ^ 0x736f6d6570736575ull),
      v1_(key.k1 ^ 0x646f72616e646f6dull),
      v2_(key.k0 ^ 0x6c7967656e657261ull),
      v3_(key.k1 ^ 0x7465646279746573ull) {}

void SipHasher::compress(uint64_t m) {
  // c = 2 compression rounds per 8-byte block.
  v3_ ^= m;
  sipround(v0_, v1_, v2_, v3_);
  sipround(v0_, v1_, v2_, v3_);
  v0_ ^= m;
}

SipHasher& SipHasher::write(Bytes data) {
  for (uint8_t b : data) write_u8(b);
  return *this;
}

SipHasher& SipHasher::write_u8(uint8_t v) {
  tail_ |= uint64_t(v) << (8 * ntail_);
  ++total_;
  if (++ntail_ == 8) {
    compress(tail_);
    tail_ = 0;
    ntail_ = 0;
  }
  return *this;
}

SipHasher& SipHasher::write_u16(uint16_t v) {
  write_u8(uint8_t(v));
  return write_u8(uint8_t(v >> 8));
}

SipHasher& SipHasher::write_u32(uint32_t v) {
  write_u16(uint16_t(v));
  return write_u16(uint16_t(v >> 16));
}

SipHasher& SipHasher::write_u64(uint64_t v) {
  if (ntail_ == 0) {  // aligned: one block, no byte shuffling
    total_ += 8;
    compress(v);
    return *this;
  }
  write_u32(uint32_t(v));
  return write_u32(uint32_t(v >> 32));
}

uint64_t SipHasher::finish() {
  // Last block: remaining bytes plus the message length mod 256 in the top byte.
  const uint64_t b = tail_ | (total_ << 56);
  compress(b);
  // d = 4 finalization rounds.
  v2_ ^= 0xff;
  sipround(v0_, v1_, v2_, v3_);
  sipround(v0_, v1_, v2_, v3_);
  sipround(v0_, v1_, v2_, v3_);
  sipround(v0_, v1_, v2_, v3_);
  return v0_ ^ v1_ ^ v2_ ^ v3_;
}

uint64_t siphash24(const SipKey& key, Bytes data) {
  SipHasher h(key);
  size_t i = 0;
  for (; i + 8 <= data.size(); i += 8) {
    uint64_t m = 0;
    for (int j = 7; j >= 0; --j) m = (m << 8) | data[i + size_t(j)];
    h.write_u64(m);
  }
  h.write(data.subspan(i));
  return h.finish();
}

}  // namespace xs
