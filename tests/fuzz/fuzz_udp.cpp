// UDP: parse without checksum verification; a parsed datagram re-emits to one
// that parses, checksum verified, to the same ports and payload.
#include <cstdint>
#include <cstring>
#include <vector>

#include "stack/wire/udp.hpp"

using namespace xs;

namespace {
const Ipv4Addr kSrc = Ipv4Addr::from_octets(10, 0, 0, 1);
const Ipv4Addr kDst = Ipv4Addr::from_octets(10, 0, 0, 2);
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto u = parse_udp(Bytes(data, size), kSrc, kDst, /*verify_checksum=*/false);
  if (!u) return 0;
  if (u->payload.size() + kUdpHeaderLen > size) __builtin_trap();
  std::vector<uint8_t> out(kUdpHeaderLen + u->payload.size());
  if (!u->payload.empty()) std::memcpy(out.data() + kUdpHeaderLen, u->payload.data(), u->payload.size());
  emit_udp(u->src_port, u->dst_port, kSrc, kDst, out);
  // RFC 768: the emitted checksum is never the "not computed" value.
  if (out[6] == 0 && out[7] == 0) __builtin_trap();
  auto v = parse_udp(out, kSrc, kDst, /*verify_checksum=*/true);
  if (!v) __builtin_trap();
  if (v->src_port != u->src_port || v->dst_port != u->dst_port) __builtin_trap();
  if (v->payload.size() != u->payload.size()) __builtin_trap();
  if (!u->payload.empty() && std::memcmp(v->payload.data(), u->payload.data(), u->payload.size()) != 0) {
    __builtin_trap();
  }
  return 0;
}
