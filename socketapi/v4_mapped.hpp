// IPv4-mapped IPv6 addresses (RFC 4291 section 2.5.5.2): ::ffff:a.b.c.d is
// IPv4 address a.b.c.d. An AF_INET6 socket on xstack carries IPv4 through
// them; the native runtime and the shim both encode and decode them here.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdint>
#include <cstring>

namespace xs::native {

// ::ffff:a.b.c.d for `v4` in host order.
inline in6_addr v4_mapped(uint32_t v4) {
  in6_addr a{};
  a.s6_addr[10] = a.s6_addr[11] = 0xff;
  const uint32_t be = htonl(v4);
  std::memcpy(a.s6_addr + 12, &be, sizeof be);
  return a;
}

// The IPv4 address (host order) in the last 32 bits of a mapped address.
inline uint32_t v4_in_mapped(const in6_addr& a) {
  uint32_t be;
  std::memcpy(&be, a.s6_addr + 12, sizeof be);
  return ntohl(be);
}

}  // namespace xs::native
