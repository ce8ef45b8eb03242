// IPv4: parse arbitrary bytes without checksum verification (so the fuzzer
// reaches the option walker); a parsed header re-emits (without options) to a
// packet that parses, checksum verified, to the same fields and payload.
#include <cstdint>
#include <cstring>
#include <vector>

#include "stack/wire/ipv4.hpp"

using namespace xs;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bytes in(data, size);
  auto p = parse_ipv4(in, /*verify_checksum=*/false);
  // Verification may only reject more, never accept what the lax parse rejected.
  if (!p) {
    if (parse_ipv4(in, true)) __builtin_trap();
    return 0;
  }
  if (p->header_len < kIpv4MinHeaderLen || p->header_len > size) __builtin_trap();
  if (p->payload.size() != p->hdr.payload_len) __builtin_trap();
  if (p->payload.data() != data + p->header_len) __builtin_trap();
  if (p->hdr.frag_offset % 8 != 0) __builtin_trap();

  std::vector<uint8_t> out(kIpv4MinHeaderLen + p->payload.size());
  if (emit_ipv4(p->hdr, out) != kIpv4MinHeaderLen) __builtin_trap();
  if (!p->payload.empty()) std::memcpy(out.data() + kIpv4MinHeaderLen, p->payload.data(), p->payload.size());
  auto q = parse_ipv4(out, /*verify_checksum=*/true);
  if (!q) __builtin_trap();
  const Ipv4Repr& a = p->hdr;
  const Ipv4Repr& b = q->hdr;
  if (a.src != b.src || a.dst != b.dst || a.protocol != b.protocol || a.ttl != b.ttl || a.tos != b.tos ||
      a.ident != b.ident || a.dont_frag != b.dont_frag || a.more_frags != b.more_frags ||
      a.frag_offset != b.frag_offset || a.payload_len != b.payload_len) {
    __builtin_trap();
  }
  if (q->payload.size() != p->payload.size()) __builtin_trap();
  if (!p->payload.empty() && std::memcmp(q->payload.data(), p->payload.data(), p->payload.size()) != 0) {
    __builtin_trap();
  }
  return 0;
}
