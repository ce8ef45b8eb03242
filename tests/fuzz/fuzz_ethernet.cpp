// Ethernet: parse arbitrary bytes; a parsed frame must re-emit and re-parse to
// the same header and payload.
#include <cstdint>
#include <cstring>
#include <vector>

#include "stack/wire/ethernet.hpp"

using namespace xs;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = parse_ethernet(Bytes(data, size));
  if (!f) return 0;
  std::vector<uint8_t> out(kEthHeaderLen + f->payload.size());
  emit_ethernet(f->hdr, out);
  if (!f->payload.empty()) std::memcpy(out.data() + kEthHeaderLen, f->payload.data(), f->payload.size());
  auto g = parse_ethernet(out);
  if (!g) __builtin_trap();
  if (g->hdr.dst != f->hdr.dst || g->hdr.src != f->hdr.src || g->hdr.ethertype != f->hdr.ethertype) __builtin_trap();
  if (g->payload.size() != f->payload.size()) __builtin_trap();
  if (!f->payload.empty() && std::memcmp(g->payload.data(), f->payload.data(), f->payload.size()) != 0) __builtin_trap();
  // The emitted header is the input's header byte for byte.
  if (std::memcmp(out.data(), data, kEthHeaderLen) != 0) __builtin_trap();
  return 0;
}
