#include "stack/wire/checksum.hpp"

#include <bit>
#include <cstring>

namespace xs {

namespace {

// One's-complement add of two 64-bit values: the carry out of bit 63 wraps
// around into bit 0 (RFC 1071 2(C), "deferred carries"). The second add cannot
// overflow: after a wrap, s < b <= 2^64-1.
inline uint64_t add_eac(uint64_t a, uint64_t b) {
  uint64_t s = a + b;
  return s + (s < b ? 1 : 0);
}

// Folds a 64-bit one's-complement sum to 16 bits, keeping end-around carries.
// This is valid because 2^16-1 divides 2^32-1 and 2^64-1, so summing the
// halves preserves the value modulo 0xffff (RFC 1071 2(C)).
inline uint16_t fold16(uint64_t s) {
  s = (s & 0xffffffffu) + (s >> 32);  // <= 2^33 - 2
  s = (s & 0xffffffffu) + (s >> 32);  // <= 2^32
  s = (s & 0xffffu) + (s >> 16);      // <= 2^17 - 1
  s = (s & 0xffffu) + (s >> 16);      // <= 2^16
  s = (s & 0xffffu) + (s >> 16);      // <= 0xffff
  return static_cast<uint16_t>(s);
}

// Sum of `data` as 16-bit words in *native* byte order, folded to 16 bits.
// RFC 1071 2(B): the one's-complement sum is byte-order independent, so summing
// native words and swapping the 16-bit result once gives the big-endian sum.
uint16_t native_sum(const uint8_t* p, size_t n) {
  uint64_t s0 = 0, s1 = 0;  // two chains so the adds can issue in parallel
  while (n >= 32) {
    uint64_t w0, w1, w2, w3;
    std::memcpy(&w0, p, 8);
    std::memcpy(&w1, p + 8, 8);
    std::memcpy(&w2, p + 16, 8);
    std::memcpy(&w3, p + 24, 8);
    s0 = add_eac(s0, w0);
    s1 = add_eac(s1, w1);
    s0 = add_eac(s0, w2);
    s1 = add_eac(s1, w3);
    p += 32;
    n -= 32;
  }
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    s0 = add_eac(s0, w);
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    // Tail of 1..7 bytes copied into a zeroed word at the same offsets it would
    // occupy in a full load: an odd last byte thus lands in the high-order
    // byte of its big-endian 16-bit word with a zero pad, as RFC 1071 requires.
    uint64_t w = 0;
    std::memcpy(&w, p, n);
    s1 = add_eac(s1, w);
  }
  return fold16(add_eac(s0, s1));
}

}  // namespace

uint64_t csum_partial(Bytes data, uint64_t acc) {
  uint16_t s = native_sum(data.data(), data.size());
  if constexpr (std::endian::native == std::endian::little) {
    s = static_cast<uint16_t>(s << 8 | s >> 8);
  }
  return add_eac(acc, s);
}

uint16_t csum_fold(uint64_t acc) { return static_cast<uint16_t>(~fold16(acc)); }

uint64_t pseudo_header_sum(Ipv4Addr src, Ipv4Addr dst, uint8_t protocol, uint16_t length) {
  // RFC 9293 3.1 / RFC 768: src (4), dst (4), zero (1), protocol (1), length (2),
  // summed as big-endian 16-bit words. Addresses are held in host order, so the
  // words are just their halves. The sum of six 16-bit words cannot overflow.
  return uint64_t(src.v >> 16) + (src.v & 0xffff) + (dst.v >> 16) + (dst.v & 0xffff) + protocol + length;
}

bool csum_verify(Bytes data, uint64_t acc) {
  // A valid header, checksum field included, sums to all ones (-0), so the
  // complemented fold is zero.
  return csum_fold(csum_partial(data, acc)) == 0;
}

// RFC 1624 3 eqn. 3: HC' = ~(~HC + ~m + m'). Eqn. 3 (unlike eqn. 2 of RFC 1141)
// never yields the wrong representation of zero.
uint16_t csum_update16(uint16_t csum, uint16_t old_v, uint16_t new_v) {
  uint64_t s = uint64_t(uint16_t(~csum)) + uint16_t(~old_v) + new_v;
  return csum_fold(s);
}

uint16_t csum_update32(uint16_t csum, uint32_t old_v, uint32_t new_v) {
  uint64_t s = uint64_t(uint16_t(~csum)) + uint16_t(~(old_v >> 16)) + uint16_t(~old_v) + (new_v >> 16) +
               (new_v & 0xffff);
  return csum_fold(s);
}

}  // namespace xs
