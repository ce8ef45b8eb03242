#include "stack/wire/arp.hpp"

#include <algorithm>

namespace xs {

namespace {
// RFC 826 packet layout for hardware = Ethernet, protocol = IPv4.
constexpr size_t kHtypeOff = 0;
constexpr size_t kPtypeOff = 2;
constexpr size_t kHlenOff = 4;
constexpr size_t kPlenOff = 5;
constexpr size_t kOpOff = 6;
constexpr size_t kShaOff = 8;
constexpr size_t kSpaOff = 14;
constexpr size_t kThaOff = 18;
constexpr size_t kTpaOff = 24;

constexpr uint16_t kHtypeEthernet = 1;
constexpr uint16_t kPtypeIpv4 = 0x0800;
constexpr uint8_t kHlenEthernet = 6;
constexpr uint8_t kPlenIpv4 = 4;

MacAddr load_mac(const uint8_t* p) {
  MacAddr m;
  std::copy(p, p + 6, m.b.begin());
  return m;
}
}  // namespace

Expected<ArpRepr, WireError> parse_arp(Bytes payload) {
  // Ethernet pads short frames, so bytes past 28 are allowed and ignored.
  if (payload.size() < kArpLen) return unexpected(WireError::Truncated);
  const uint8_t* p = payload.data();
  if (load_be16(p + kHtypeOff) != kHtypeEthernet || load_be16(p + kPtypeOff) != kPtypeIpv4 ||
      p[kHlenOff] != kHlenEthernet || p[kPlenOff] != kPlenIpv4) {
    return unexpected(WireError::BadVersion);
  }
  uint16_t op = load_be16(p + kOpOff);
  // RARP (3, 4) and InARP (8, 9) are well-formed but not ours.
  if (op != uint16_t(ArpOp::Request) && op != uint16_t(ArpOp::Reply)) {
    return unexpected(WireError::Unsupported);
  }
  ArpRepr r;
  r.op = ArpOp(op);
  r.sender_mac = load_mac(p + kShaOff);
  r.sender_ip = {load_be32(p + kSpaOff)};
  r.target_mac = load_mac(p + kThaOff);
  r.target_ip = {load_be32(p + kTpaOff)};
  return r;
}

void emit_arp(const ArpRepr& r, MutBytes out) {
  uint8_t* p = out.data();
  store_be16(p + kHtypeOff, kHtypeEthernet);
  store_be16(p + kPtypeOff, kPtypeIpv4);
  p[kHlenOff] = kHlenEthernet;
  p[kPlenOff] = kPlenIpv4;
  store_be16(p + kOpOff, uint16_t(r.op));
  std::copy(r.sender_mac.b.begin(), r.sender_mac.b.end(), p + kShaOff);
  store_be32(p + kSpaOff, r.sender_ip.v);
  std::copy(r.target_mac.b.begin(), r.target_mac.b.end(), p + kThaOff);
  store_be32(p + kTpaOff, r.target_ip.v);
}

}  // namespace xs
