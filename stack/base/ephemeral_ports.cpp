#include "stack/base/ephemeral_ports.hpp"

namespace xs {

EphemeralPorts::EphemeralPorts(uint16_t low, uint16_t high, Random& rng)
    : low_(low <= high ? low : high),
      high_(low <= high ? high : low),
      rng_(rng),
      key1_{rng.next_u64(), rng.next_u64()},
      key2_{rng.next_u64(), rng.next_u64()} {
  // RFC 6056 Algorithm 4 initializes the table with random values so that the
  // first pick for a destination is not just F().
  for (auto& t : table_) t = rng.next_u32();
}

uint32_t EphemeralPorts::offset(Ipv4Addr local, Endpoint remote) const {
  SipHasher h(key1_);
  h.write_u32(local.v).write_u32(remote.addr.v).write_u16(remote.port);
  return uint32_t(h.finish());
}

uint32_t EphemeralPorts::index(Ipv4Addr local, Endpoint remote) const {
  SipHasher h(key2_);
  h.write_u32(local.v).write_u32(remote.addr.v).write_u16(remote.port);
  return uint32_t(h.finish() % kTableSize);
}

}  // namespace xs
