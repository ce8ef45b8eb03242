// Ethernet II framing.
#pragma once
#include <cstddef>
#include <cstdint>

#include "stack/base/addr.hpp"
#include "stack/base/bytes.hpp"
#include "stack/base/expected.hpp"
#include "stack/wire/error.hpp"

namespace xs {

inline constexpr size_t kEthHeaderLen = 14;

namespace ethertype {
inline constexpr uint16_t kIpv4 = 0x0800;
inline constexpr uint16_t kArp = 0x0806;
inline constexpr uint16_t kVlan = 0x8100;
inline constexpr uint16_t kIpv6 = 0x86dd;
}  // namespace ethertype

struct EthernetRepr {
  MacAddr dst;
  MacAddr src;
  uint16_t ethertype = 0;
};

struct EthernetFrame {
  EthernetRepr hdr;
  Bytes payload;
};

// Checks the frame is at least a header long. Ethertypes < 0x0600 (802.3 length
// fields) are rejected as Unsupported.
Expected<EthernetFrame, WireError> parse_ethernet(Bytes frame);

// Writes the 14-byte header at out[0..14). out.size() >= kEthHeaderLen.
void emit_ethernet(const EthernetRepr& r, MutBytes out);

}  // namespace xs
