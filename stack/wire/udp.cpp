#include "stack/wire/udp.hpp"

#include "stack/wire/checksum.hpp"
#include "stack/wire/ipv4.hpp"

namespace xs {

namespace {
// RFC 768 header layout.
constexpr size_t kSrcPortOff = 0;
constexpr size_t kDstPortOff = 2;
constexpr size_t kLengthOff = 4;
constexpr size_t kChecksumOff = 6;
}  // namespace

Expected<UdpRepr, WireError> parse_udp(Bytes datagram, Ipv4Addr src, Ipv4Addr dst, bool verify_checksum) {
  if (datagram.size() < kUdpHeaderLen) return unexpected(WireError::Truncated);
  const uint8_t* p = datagram.data();
  size_t len = load_be16(p + kLengthOff);
  if (len < kUdpHeaderLen) return unexpected(WireError::BadLength);
  if (len > datagram.size()) return unexpected(WireError::Truncated);
  Bytes dgram = datagram.first(len);
  // RFC 768: an all-zero checksum field means the sender computed none.
  if (verify_checksum && load_be16(p + kChecksumOff) != 0) {
    uint64_t acc = pseudo_header_sum(src, dst, ipproto::kUdp, static_cast<uint16_t>(len));
    if (!csum_verify(dgram, acc)) return unexpected(WireError::BadChecksum);
  }
  UdpRepr r;
  r.src_port = load_be16(p + kSrcPortOff);
  r.dst_port = load_be16(p + kDstPortOff);
  // Port 0 is reserved (RFC 768 leaves the source optional, as 0, but a
  // destination port 0 can never be delivered).
  if (r.dst_port == 0) return unexpected(WireError::Malformed);
  r.payload = dgram.subspan(kUdpHeaderLen);
  return r;
}

void emit_udp(uint16_t src_port, uint16_t dst_port, Ipv4Addr src, Ipv4Addr dst, MutBytes datagram) {
  uint8_t* p = datagram.data();
  uint16_t len = static_cast<uint16_t>(datagram.size());
  store_be16(p + kSrcPortOff, src_port);
  store_be16(p + kDstPortOff, dst_port);
  store_be16(p + kLengthOff, len);
  store_be16(p + kChecksumOff, 0);
  uint64_t acc = pseudo_header_sum(src, dst, ipproto::kUdp, len);
  uint16_t c = csum_fold(csum_partial(Bytes(datagram.data(), len), acc));
  // RFC 768: a computed zero is transmitted as all ones, since zero on the
  // wire means "no checksum". Both are one's-complement zero, so it verifies.
  store_be16(p + kChecksumOff, c == 0 ? 0xffff : c);
}

}  // namespace xs
