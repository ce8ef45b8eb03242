// IPv4 header (RFC 791). Options are validated for length and skipped.
#pragma once
#include <cstddef>
#include <cstdint>

#include "stack/base/addr.hpp"
#include "stack/base/bytes.hpp"
#include "stack/base/expected.hpp"
#include "stack/wire/error.hpp"

namespace xs {

inline constexpr size_t kIpv4MinHeaderLen = 20;

namespace ipproto {
inline constexpr uint8_t kIcmp = 1;
inline constexpr uint8_t kTcp = 6;
inline constexpr uint8_t kUdp = 17;
}  // namespace ipproto

struct Ipv4Repr {
  Ipv4Addr src;
  Ipv4Addr dst;
  uint8_t protocol = 0;
  uint8_t ttl = 64;
  uint8_t tos = 0;
  uint16_t ident = 0;
  bool dont_frag = false;
  bool more_frags = false;
  uint16_t frag_offset = 0;  // in bytes (wire value * 8)
  uint16_t payload_len = 0;  // total length minus header length

  bool is_fragment() const { return more_frags || frag_offset != 0; }
};

struct Ipv4Packet {
  Ipv4Repr hdr;
  size_t header_len = 0;  // including options
  Bytes header;           // the header bytes (for ICMP error quoting)
  Bytes payload;          // trimmed to total length (Ethernet padding removed)
};

// Validates version, IHL >= 5, total length <= buffer and >= IHL*4, the option
// list's lengths (EOL/NOP/TLV with 2 <= len <= remaining), and the header checksum
// when verify_checksum. Frames with the reserved flag bit set are Malformed.
Expected<Ipv4Packet, WireError> parse_ipv4(Bytes packet, bool verify_checksum = true);

// Writes a 20-byte header (no options) with a correct checksum at out[0..20).
// Total length = 20 + r.payload_len. Returns 20.
size_t emit_ipv4(const Ipv4Repr& r, MutBytes out);

}  // namespace xs
