// The Internet checksum (RFC 1071) computed a machine word at a time, and the
// incremental update of RFC 1624.
#pragma once
#include <cstdint>

#include "stack/base/addr.hpp"
#include "stack/base/bytes.hpp"

namespace xs {

// Adds `data` to a running one's-complement sum kept in 64 bits. Bytes are
// summed as big-endian 16-bit words starting at data[0]; an odd final byte is
// padded with zero. When summing several spans, all but the last must have
// even length.
uint64_t csum_partial(Bytes data, uint64_t acc = 0);

// Folds a running sum to 16 bits and complements it: the value to put on the wire
// (host byte order; store with store_be16).
uint16_t csum_fold(uint64_t acc);

// Sum of the IPv4 pseudo-header (RFC 9293 3.1, RFC 768) for a transport checksum.
uint64_t pseudo_header_sum(Ipv4Addr src, Ipv4Addr dst, uint8_t protocol, uint16_t length);

// Checksum of a whole buffer.
inline uint16_t internet_checksum(Bytes data) { return csum_fold(csum_partial(data)); }

// True when `data` (a header including its checksum field) sums to 0xffff, i.e. is valid.
bool csum_verify(Bytes data, uint64_t acc = 0);

// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'). Updates checksum `csum` (as on the
// wire, host byte order) when a 16-bit field changes from `old_v` to `new_v`.
uint16_t csum_update16(uint16_t csum, uint16_t old_v, uint16_t new_v);
uint16_t csum_update32(uint16_t csum, uint32_t old_v, uint32_t new_v);

}  // namespace xs
