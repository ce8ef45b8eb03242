// SipHash-2-4 (Aumasson & Bernstein, "SipHash: a fast short-input PRF", 2012):
// a keyed 64-bit PRF. The stack uses it wherever a value must be
// unpredictable to an off-path attacker but reproducible for us: ISNs
// (RFC 6528), SYN cookies, timestamp offsets and ephemeral-port offsets
// (RFC 6056). Linux uses the same function for the same jobs.
#pragma once
#include <cstddef>
#include <cstdint>

#include "stack/base/bytes.hpp"

namespace xs {

// 128-bit key as the two little-endian 64-bit halves of the 16 key bytes.
struct SipKey {
  uint64_t k0 = 0;
  uint64_t k1 = 0;
};

// Incremental hasher: feed fields one by one without building a buffer
// (hashing a 4-tuple needs no allocation and no packing struct). Integers
// are fed in little-endian byte order, so write_u32(x) hashes the same
// bytes as the reference implementation would for a little-endian x.
class SipHasher {
 public:
  explicit SipHasher(const SipKey& key);

  SipHasher& write(Bytes data);
  SipHasher& write_u8(uint8_t v);
  SipHasher& write_u16(uint16_t v);
  SipHasher& write_u32(uint32_t v);
  SipHasher& write_u64(uint64_t v);
  // Finalizes; the hasher must not be written to afterwards.
  uint64_t finish();

 private:
  void compress(uint64_t m);

  uint64_t v0_, v1_, v2_, v3_;
  uint64_t tail_ = 0;     // pending bytes, little-endian, low byte first
  uint32_t ntail_ = 0;    // number of pending bytes (0..7)
  uint64_t total_ = 0;    // message length in bytes (its low byte enters the last block)
};

// One-shot SipHash-2-4 of a byte string.
uint64_t siphash24(const SipKey& key, Bytes data);

}  // namespace xs
