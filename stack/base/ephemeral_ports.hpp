// Ephemeral port selection, RFC 6056 3.3.4 Algorithm 4 ("double-hash port
// selection", what Linux __inet_hash_connect does). Each (local, remote)
// destination walks the range from its own secret offset, so ports are
// unpredictable to an off-path attacker, yet successive connections to the
// same destination get fresh ports (the perturbation counter) instead of
// colliding with a port still in TIME-WAIT.
#pragma once
#include <array>
#include <cstdint>
#include <optional>

#include "stack/base/addr.hpp"
#include "stack/base/random.hpp"
#include "stack/base/siphash.hpp"

namespace xs {

class EphemeralPorts {
 public:
  // RFC 6056 suggests a small table; Linux grew its own to 2^16 entries after
  // the table was shown to allow device tracking (CVE-2022-32296). 4096
  // counters (16 KiB) keep collisions between destinations rare at a modest size.
  static constexpr uint32_t kTableSize = 4096;

  // Ports come from [low, high] (ip_local_port_range; both inclusive).
  EphemeralPorts(uint16_t low, uint16_t high, Random& rng);

  // Picks a free port for a connection from `local` to `remote`. in_use(port)
  // returns true when the candidate cannot be used (taken, or its 4-tuple
  // busy). Every port in the range is tried at most once; nullopt when all
  // are taken (EADDRNOTAVAIL at the API). remote = {} means "no destination
  // yet" (bind() to port 0, UDP): the start is then drawn at random, like
  // Linux inet_csk_find_open_port, since there is no 4-tuple to hash.
  template <class InUse>
  std::optional<uint16_t> pick(Ipv4Addr local, Endpoint remote, InUse&& in_use);

  uint16_t low() const { return low_; }
  uint16_t high() const { return high_; }

 private:
  // F(local, remote, secret1): this destination's offset into the range.
  uint32_t offset(Ipv4Addr local, Endpoint remote) const;
  // G(local, remote, secret2): index of its perturbation counter.
  uint32_t index(Ipv4Addr local, Endpoint remote) const;

  uint16_t low_, high_;
  Random& rng_;
  SipKey key1_, key2_;
  std::array<uint32_t, kTableSize> table_{};
};

template <class InUse>
std::optional<uint16_t> EphemeralPorts::pick(Ipv4Addr local, Endpoint remote, InUse&& in_use) {
  const uint32_t num = uint32_t(high_) - low_ + 1;
  if (remote == Endpoint{}) {
    const uint32_t start = uint32_t(rng_.below(num));
    for (uint32_t i = 0; i < num; ++i) {
      const uint16_t port = uint16_t(low_ + (start + i) % num);
      if (!in_use(port)) return port;
    }
    return std::nullopt;
  }

  uint32_t& perturb = table_[index(local, remote)];
  // Reduce once in 64 bits: offset + perturb may pass 2^32, and a wrap in the
  // middle of the walk would make it revisit some ports and skip others.
  const uint32_t start = uint32_t((uint64_t(offset(local, remote)) + perturb) % num);
  for (uint32_t i = 0; i < num; ++i) {
    const uint16_t port = uint16_t(low_ + (start + i) % num);
    if (!in_use(port)) {
      // RFC 6056 Algorithm 4 bumps table[index] once per candidate tried, so
      // the next connection to this destination starts past this port.
      perturb += i + 1;
      return port;
    }
  }
  perturb += num;
  return std::nullopt;
}

}  // namespace xs
