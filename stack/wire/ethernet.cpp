#include "stack/wire/ethernet.hpp"

#include <algorithm>

namespace xs {

namespace {
// Ethernet II header layout (IEEE 802.3 clause 3.2, DIX framing).
constexpr size_t kDstOff = 0;
constexpr size_t kSrcOff = 6;
constexpr size_t kTypeOff = 12;
// Values below this in the type field are IEEE 802.3 length fields (LLC
// framing), not ethertypes.
constexpr uint16_t kMinEthertype = 0x0600;

MacAddr load_mac(const uint8_t* p) {
  MacAddr m;
  std::copy(p, p + 6, m.b.begin());
  return m;
}
}  // namespace

Expected<EthernetFrame, WireError> parse_ethernet(Bytes frame) {
  if (frame.size() < kEthHeaderLen) return unexpected(WireError::Truncated);
  EthernetFrame f;
  f.hdr.dst = load_mac(frame.data() + kDstOff);
  f.hdr.src = load_mac(frame.data() + kSrcOff);
  f.hdr.ethertype = load_be16(frame.data() + kTypeOff);
  if (f.hdr.ethertype < kMinEthertype) return unexpected(WireError::Unsupported);
  f.payload = frame.subspan(kEthHeaderLen);
  return f;
}

void emit_ethernet(const EthernetRepr& r, MutBytes out) {
  std::copy(r.dst.b.begin(), r.dst.b.end(), out.data() + kDstOff);
  std::copy(r.src.b.begin(), r.src.b.end(), out.data() + kSrcOff);
  store_be16(out.data() + kTypeOff, r.ethertype);
}

}  // namespace xs
