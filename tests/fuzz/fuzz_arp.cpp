// ARP: parse arbitrary bytes; a parsed packet re-emits to the same 28 bytes
// (every field of an accepted packet is either fixed or carried in the repr).
#include <cstdint>
#include <cstring>

#include "stack/wire/arp.hpp"

using namespace xs;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto a = parse_arp(Bytes(data, size));
  if (!a) return 0;
  uint8_t out[kArpLen];
  emit_arp(*a, out);
  if (std::memcmp(out, data, kArpLen) != 0) __builtin_trap();
  auto b = parse_arp(out);
  if (!b) __builtin_trap();
  if (b->op != a->op || b->sender_mac != a->sender_mac || b->sender_ip != a->sender_ip ||
      b->target_mac != a->target_mac || b->target_ip != a->target_ip) {
    __builtin_trap();
  }
  return 0;
}
