// How transport protocols send: a two-phase builder that lets TCP and UDP
// write their headers and payload straight into the outgoing frame (a UMEM
// frame on AF_XDP), so the data path copies each byte once and allocates nothing.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>

#include "stack/base/addr.hpp"
#include "stack/base/bytes.hpp"
#include "stack/base/time.hpp"

namespace xs {

struct IpTxParams {
  Ipv4Addr src;
  Ipv4Addr dst;
  uint8_t protocol = 0;
  uint8_t ttl = 64;
  uint8_t tos = 0;
  bool dont_frag = false;  // TCP sets DF (path MTU discovery, RFC 1191)
};

class IpOutput {
 public:
  virtual ~IpOutput() = default;

  // Starts a packet carrying `l4_len` bytes of transport header + payload to
  // p.dst. Returns where the caller writes those bytes, or an empty span when
  // nothing can be sent now (no route, no TX buffer, ARP queue full): the caller
  // treats the packet as lost (TCP retransmits it later). An unresolved next hop
  // is not an error: the packet is held in a bounded ARP queue.
  // Datagrams larger than the MTU without DF are fragmented at commit().
  virtual MutBytes begin(Instant now, const IpTxParams& p, size_t l4_len) = 0;

  // Finishes the packet begun by the last begin(). Must follow every non-empty begin().
  virtual void commit() = 0;

  // Largest IP packet (header included) that may leave toward `dst` unfragmented:
  // the interface MTU, lowered by ICMP fragmentation-needed (RFC 1191).
  virtual uint16_t path_mtu(Ipv4Addr dst) const = 0;

  // The local address used to reach `dst`, or nullopt if there is no route.
  virtual std::optional<Ipv4Addr> source_for(Ipv4Addr dst) const = 0;

  // True if `a` is one of this stack's own addresses.
  virtual bool is_local(Ipv4Addr a) const = 0;
};

}  // namespace xs
