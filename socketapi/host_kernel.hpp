// Shared-IP mode: the stack runs on an address the host kernel also owns (as
// OpenOnload does). The kernel keeps ARP and ICMP; the engine learns
// neighbours and the default route from it, asks it to resolve missing
// neighbours, and reserves every port the stack uses with a kernel socket
// bound to the same address and port, so the kernel never gives that port to
// anyone else. This interface keeps the engine testable without a kernel.
#pragma once
#include <cstdint>
#include <optional>

#include "stack/base/addr.hpp"
#include "stack/base/expected.hpp"
#include "stack/net/arp_cache.hpp"

namespace xs {

class HostKernel : public NeighbourResolver {
 public:
  // Readable when neighbour or route updates are pending; -1 if never.
  virtual int fd() const = 0;
  // Applies what the kernel knows now (initial dump) or since the last call.
  virtual void sync(ArpCache& arp) = 0;
  // True when sync() has answers that came without an fd event (request()
  // found the kernel already knew the neighbour). request() runs inside the
  // ARP cache, so it cannot apply them itself.
  virtual bool wants_sync() const { return false; }
  virtual std::optional<Ipv4Addr> default_gateway() const = 0;
  // Reserves proto/port on our address; port 0 lets the kernel choose (as
  // connect(2) autobind would). Error: the errno (EADDRINUSE, ...).
  virtual Expected<uint16_t, int> reserve(uint8_t proto, uint16_t port, bool reuseaddr) = 0;
  virtual void release(uint8_t proto, uint16_t port) = 0;
};

}  // namespace xs
