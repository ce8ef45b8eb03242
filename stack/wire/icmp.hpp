// ICMPv4 (RFC 792): echo, destination unreachable, time exceeded.
#pragma once
#include <cstddef>
#include <cstdint>

#include "stack/base/bytes.hpp"
#include "stack/base/expected.hpp"
#include "stack/wire/error.hpp"

namespace xs {

inline constexpr size_t kIcmpHeaderLen = 8;

namespace icmptype {
inline constexpr uint8_t kEchoReply = 0;
inline constexpr uint8_t kDestUnreachable = 3;
inline constexpr uint8_t kEchoRequest = 8;
inline constexpr uint8_t kTimeExceeded = 11;
}  // namespace icmptype

namespace icmpcode {
inline constexpr uint8_t kNetUnreachable = 0;
inline constexpr uint8_t kHostUnreachable = 1;
inline constexpr uint8_t kProtoUnreachable = 2;
inline constexpr uint8_t kPortUnreachable = 3;
inline constexpr uint8_t kFragNeeded = 4;
}  // namespace icmpcode

struct IcmpRepr {
  uint8_t type = 0;
  uint8_t code = 0;
  // Bytes 4..8 of the header: identifier<<16 | sequence for echo, next-hop MTU
  // in the low 16 bits for fragmentation-needed, zero otherwise.
  uint32_t rest = 0;
  Bytes payload;  // echo data, or the quoted IP header + 8 bytes for errors

  uint16_t echo_ident() const { return uint16_t(rest >> 16); }
  uint16_t echo_seq() const { return uint16_t(rest); }
  uint16_t next_hop_mtu() const { return uint16_t(rest); }
};

// Verifies length >= 8 and the checksum over the whole message.
Expected<IcmpRepr, WireError> parse_icmp(Bytes message);

// Writes header and copies r.payload after it, computes the checksum.
// out.size() >= 8 + r.payload.size(). Returns bytes written.
size_t emit_icmp(const IcmpRepr& r, MutBytes out);

}  // namespace xs
