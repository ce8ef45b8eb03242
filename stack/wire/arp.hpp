// ARP for IPv4 over Ethernet (RFC 826).
#pragma once
#include <cstddef>
#include <cstdint>

#include "stack/base/addr.hpp"
#include "stack/base/bytes.hpp"
#include "stack/base/expected.hpp"
#include "stack/wire/error.hpp"

namespace xs {

inline constexpr size_t kArpLen = 28;

enum class ArpOp : uint16_t { Request = 1, Reply = 2 };

struct ArpRepr {
  ArpOp op = ArpOp::Request;
  MacAddr sender_mac;
  Ipv4Addr sender_ip;
  MacAddr target_mac;
  Ipv4Addr target_ip;
};

// Rejects anything but htype=1 (Ethernet), ptype=0x0800, hlen=6, plen=4, op 1 or 2.
Expected<ArpRepr, WireError> parse_arp(Bytes payload);

// Writes 28 bytes at out[0..28).
void emit_arp(const ArpRepr& r, MutBytes out);

}  // namespace xs
