// Initial sequence numbers (RFC 6528) and per-connection timestamp offsets.
// Both are keyed hashes of the connection's addresses, so an off-path
// attacker cannot predict them, while a new incarnation of the same 4-tuple
// still starts above the old one because the clock part keeps advancing.
#pragma once
#include <cstdint>

#include "stack/base/addr.hpp"
#include "stack/base/random.hpp"
#include "stack/base/seq.hpp"
#include "stack/base/siphash.hpp"
#include "stack/base/time.hpp"

namespace xs {

class IsnGenerator {
 public:
  // Draws the secrets once; they live as long as the stack (RFC 6528 3).
  explicit IsnGenerator(Random& rng);

  // RFC 6528 3: ISN = M + F(localip, localport, remoteip, remoteport, secretkey),
  // M the 4 us clock of RFC 9293 3.4.1 (wraps every ~4.55 hours).
  Seq isn(Instant now, Ipv4Addr laddr, uint16_t lport, Ipv4Addr raddr, uint16_t rport) const;

  // Offset added to our TSval on this address pair (Linux secure_tcp_ts_off),
  // so that timestamps do not expose the host's uptime or let an observer
  // link connections to different peers. Stable per address pair so that
  // PAWS keeps working across connections to the same peer.
  uint32_t ts_offset(Ipv4Addr laddr, Ipv4Addr raddr) const;

 private:
  SipKey isn_key_;
  SipKey ts_key_;
};

}  // namespace xs
