#include "stack/wire/ipv4.hpp"

#include "stack/wire/checksum.hpp"

namespace xs {

namespace {
// RFC 791 3.1 header layout.
constexpr size_t kVerIhlOff = 0;
constexpr size_t kTosOff = 1;
constexpr size_t kTotalLenOff = 2;
constexpr size_t kIdentOff = 4;
constexpr size_t kFlagsFragOff = 6;
constexpr size_t kTtlOff = 8;
constexpr size_t kProtoOff = 9;
constexpr size_t kChecksumOff = 10;
constexpr size_t kSrcOff = 12;
constexpr size_t kDstOff = 16;

// Flags are the top three bits of the 16-bit flags/fragment-offset field.
constexpr uint16_t kFlagReserved = 0x8000;
constexpr uint16_t kFlagDf = 0x4000;
constexpr uint16_t kFlagMf = 0x2000;
constexpr uint16_t kFragOffMask = 0x1fff;  // in units of 8 bytes

constexpr uint8_t kOptEol = 0;
constexpr uint8_t kOptNop = 1;

// RFC 791 3.1 "Options": single-octet EOL/NOP, otherwise type, length (which
// counts the type and length octets), data. Length is checked for >= 2 and
// for fitting in what is left before it is used to skip.
bool options_valid(Bytes opts) {
  size_t i = 0;
  while (i < opts.size()) {
    uint8_t kind = opts[i];
    if (kind == kOptEol) return true;  // the rest is padding
    if (kind == kOptNop) {
      ++i;
      continue;
    }
    if (opts.size() - i < 2) return false;  // no room for the length octet
    uint8_t len = opts[i + 1];
    if (len < 2 || len > opts.size() - i) return false;
    i += len;
  }
  return true;
}
}  // namespace

Expected<Ipv4Packet, WireError> parse_ipv4(Bytes packet, bool verify_checksum) {
  if (packet.size() < kIpv4MinHeaderLen) return unexpected(WireError::Truncated);
  const uint8_t* p = packet.data();
  if ((p[kVerIhlOff] >> 4) != 4) return unexpected(WireError::BadVersion);
  size_t header_len = size_t(p[kVerIhlOff] & 0x0f) * 4;
  if (header_len < kIpv4MinHeaderLen) return unexpected(WireError::BadLength);
  if (header_len > packet.size()) return unexpected(WireError::Truncated);
  size_t total_len = load_be16(p + kTotalLenOff);
  if (total_len < header_len) return unexpected(WireError::BadLength);
  // A link may pad (Ethernet's 60-byte minimum) but never truncate legally.
  if (total_len > packet.size()) return unexpected(WireError::Truncated);

  Bytes header = packet.first(header_len);
  if (verify_checksum && !csum_verify(header)) return unexpected(WireError::BadChecksum);

  uint16_t flags_frag = load_be16(p + kFlagsFragOff);
  // RFC 791 3.1: bit 0 of the flags is reserved and must be zero.
  if (flags_frag & kFlagReserved) return unexpected(WireError::Malformed);
  if (!options_valid(header.subspan(kIpv4MinHeaderLen))) return unexpected(WireError::BadOption);

  Ipv4Packet pkt;
  Ipv4Repr& r = pkt.hdr;
  r.src = {load_be32(p + kSrcOff)};
  r.dst = {load_be32(p + kDstOff)};
  r.protocol = p[kProtoOff];
  r.ttl = p[kTtlOff];
  r.tos = p[kTosOff];
  r.ident = load_be16(p + kIdentOff);
  r.dont_frag = (flags_frag & kFlagDf) != 0;
  r.more_frags = (flags_frag & kFlagMf) != 0;
  r.frag_offset = static_cast<uint16_t>((flags_frag & kFragOffMask) * 8);
  r.payload_len = static_cast<uint16_t>(total_len - header_len);
  pkt.header_len = header_len;
  pkt.header = header;
  pkt.payload = packet.subspan(header_len, total_len - header_len);
  return pkt;
}

size_t emit_ipv4(const Ipv4Repr& r, MutBytes out) {
  uint8_t* p = out.data();
  p[kVerIhlOff] = 0x45;  // version 4, IHL 5 (no options)
  p[kTosOff] = r.tos;
  store_be16(p + kTotalLenOff, static_cast<uint16_t>(kIpv4MinHeaderLen + r.payload_len));
  store_be16(p + kIdentOff, r.ident);
  uint16_t flags_frag = static_cast<uint16_t>((r.frag_offset / 8) & kFragOffMask);
  if (r.dont_frag) flags_frag |= kFlagDf;
  if (r.more_frags) flags_frag |= kFlagMf;
  store_be16(p + kFlagsFragOff, flags_frag);
  p[kTtlOff] = r.ttl;
  p[kProtoOff] = r.protocol;
  store_be16(p + kChecksumOff, 0);
  store_be32(p + kSrcOff, r.src.v);
  store_be32(p + kDstOff, r.dst.v);
  store_be16(p + kChecksumOff, internet_checksum(Bytes(p, kIpv4MinHeaderLen)));
  return kIpv4MinHeaderLen;
}

}  // namespace xs
