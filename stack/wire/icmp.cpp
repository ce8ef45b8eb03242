#include "stack/wire/icmp.hpp"

#include <cstring>

#include "stack/wire/checksum.hpp"

namespace xs {

namespace {
// RFC 792 message layout: type, code, checksum, then 4 type-specific bytes.
constexpr size_t kTypeOff = 0;
constexpr size_t kCodeOff = 1;
constexpr size_t kChecksumOff = 2;
constexpr size_t kRestOff = 4;
}  // namespace

Expected<IcmpRepr, WireError> parse_icmp(Bytes message) {
  if (message.size() < kIcmpHeaderLen) return unexpected(WireError::Truncated);
  // RFC 792: the checksum covers the whole ICMP message, starting with the type.
  if (!csum_verify(message)) return unexpected(WireError::BadChecksum);
  const uint8_t* p = message.data();
  IcmpRepr r;
  r.type = p[kTypeOff];
  r.code = p[kCodeOff];
  r.rest = load_be32(p + kRestOff);
  r.payload = message.subspan(kIcmpHeaderLen);
  return r;
}

size_t emit_icmp(const IcmpRepr& r, MutBytes out) {
  uint8_t* p = out.data();
  p[kTypeOff] = r.type;
  p[kCodeOff] = r.code;
  store_be16(p + kChecksumOff, 0);
  store_be32(p + kRestOff, r.rest);
  // memmove: an echo reply is often built in the buffer the request arrived in.
  if (!r.payload.empty()) std::memmove(p + kIcmpHeaderLen, r.payload.data(), r.payload.size());
  size_t len = kIcmpHeaderLen + r.payload.size();
  store_be16(p + kChecksumOff, internet_checksum(Bytes(p, len)));
  return len;
}

}  // namespace xs
