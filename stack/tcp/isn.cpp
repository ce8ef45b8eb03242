#include "stack/tcp/isn.hpp"

namespace xs {

IsnGenerator::IsnGenerator(Random& rng)
    : isn_key_{rng.next_u64(), rng.next_u64()}, ts_key_{rng.next_u64(), rng.next_u64()} {}

Seq IsnGenerator::isn(Instant now, Ipv4Addr laddr, uint16_t lport, Ipv4Addr raddr,
                      uint16_t rport) const {
  SipHasher h(isn_key_);
  h.write_u32(laddr.v).write_u32(raddr.v).write_u32(uint32_t(lport) << 16 | rport);
  const uint32_t f = uint32_t(h.finish());
  // M: RFC 9293 3.4.1 clock, incremented every 4 microseconds. Taken modulo
  // 2^32 on purpose; sequence space wraps.
  const uint32_t m = uint32_t(uint64_t(now.us) / 4);
  return Seq(m + f);
}

uint32_t IsnGenerator::ts_offset(Ipv4Addr laddr, Ipv4Addr raddr) const {
  SipHasher h(ts_key_);
  h.write_u32(laddr.v).write_u32(raddr.v);
  return uint32_t(h.finish());
}

}  // namespace xs
