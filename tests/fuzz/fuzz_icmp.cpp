// ICMP: the first 4 input bytes are XORed into the checksum field after it is
// fixed up, so most inputs reach the parser with a valid checksum while the
// fuzzer can still produce bad ones. Parsed messages must round-trip.
#include <cstdint>
#include <cstring>
#include <vector>

#include "stack/wire/checksum.hpp"
#include "stack/wire/icmp.hpp"

using namespace xs;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint16_t corrupt = load_be16(data);
  std::vector<uint8_t> msg(data + 2, data + size);
  if (msg.size() >= kIcmpHeaderLen) {
    store_be16(&msg[2], 0);
    store_be16(&msg[2], uint16_t(internet_checksum(msg) ^ corrupt));
  }
  auto m = parse_icmp(msg);
  if (!m) return 0;
  if (m->payload.size() + kIcmpHeaderLen != msg.size()) __builtin_trap();
  std::vector<uint8_t> out(kIcmpHeaderLen + m->payload.size());
  if (emit_icmp(*m, out) != out.size()) __builtin_trap();
  auto n = parse_icmp(out);
  if (!n) __builtin_trap();
  if (n->type != m->type || n->code != m->code || n->rest != m->rest) __builtin_trap();
  if (n->payload.size() != m->payload.size()) __builtin_trap();
  if (!m->payload.empty() && std::memcmp(n->payload.data(), m->payload.data(), m->payload.size()) != 0) {
    __builtin_trap();
  }
  // Both representations of one's-complement zero verify, but the emitted
  // bytes otherwise equal the input.
  if (std::memcmp(out.data() + 4, msg.data() + 4, out.size() - 4) != 0 || out[0] != msg[0] || out[1] != msg[1]) {
    __builtin_trap();
  }
  return 0;
}
