// UDP header (RFC 768).
#pragma once
#include <cstddef>
#include <cstdint>

#include "stack/base/addr.hpp"
#include "stack/base/bytes.hpp"
#include "stack/base/expected.hpp"
#include "stack/wire/error.hpp"

namespace xs {

inline constexpr size_t kUdpHeaderLen = 8;

struct UdpRepr {
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  Bytes payload;  // trimmed to the UDP length field
};

// Validates 8 <= length field <= datagram size, destination port != 0, and the
// checksum against the pseudo-header when verify_checksum and the checksum
// field is non-zero (zero means "not computed" in IPv4).
Expected<UdpRepr, WireError> parse_udp(Bytes datagram, Ipv4Addr src, Ipv4Addr dst,
                                       bool verify_checksum = true);

// `datagram` spans header + payload; the payload must already be in place at
// datagram[8..]. Writes the header and the checksum (0 is sent as 0xffff).
void emit_udp(uint16_t src_port, uint16_t dst_port, Ipv4Addr src, Ipv4Addr dst, MutBytes datagram);

}  // namespace xs
