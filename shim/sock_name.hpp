// A socket name as the fork-sharing proxies carry it between processes: the
// sockaddr_in of an AF_INET socket or the sockaddr_in6 of an AF_INET6 one
// (which xstack serves through IPv4-mapped addresses), in one fixed-size
// slot that fits either.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "socketapi/v4_mapped.hpp"

namespace xs::shim {

struct SockName {
  sockaddr_in6 sa{};  // sa.sin6_family says which; a sockaddr_in fills the front

  sa_family_t family() const { return sa.sin6_family; }
  socklen_t size() const { return family() == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in); }
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&sa); }
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&sa); }
  // Port in host order (sin_port and sin6_port share their offset).
  uint16_t port() const { return ntohs(sa.sin6_port); }
  // The IPv4 address in host order: an AF_INET6 name's mapped address (0 for "::").
  uint32_t v4() const {
    if (family() == AF_INET6) return native::v4_in_mapped(sa.sin6_addr);
    uint32_t a;
    std::memcpy(&a, &reinterpret_cast<const sockaddr_in*>(&sa)->sin_addr.s_addr, sizeof a);
    return ntohl(a);
  }
  uint64_t key() const { return (uint64_t{v4()} << 16) | port(); }

  // The name `family` gives IPv4 address `v4`:`port` ("::" for 0 in AF_INET6).
  static SockName of(sa_family_t family, uint32_t v4, uint16_t port) {
    SockName n;
    if (family == AF_INET6) {
      n.sa.sin6_family = AF_INET6;
      n.sa.sin6_port = htons(port);
      if (v4 != 0) n.sa.sin6_addr = native::v4_mapped(v4);
    } else {
      auto* sin = reinterpret_cast<sockaddr_in*>(&n.sa);
      sin->sin_family = AF_INET;
      sin->sin_port = htons(port);
      sin->sin_addr.s_addr = htonl(v4);
    }
    return n;
  }

  // An application's address for a datagram or connect: AF_INET (16 bytes)
  // or AF_INET6 (24, SIN6_LEN_RFC2133). 0, or EINVAL / EAFNOSUPPORT.
  static int from_user(const sockaddr* addr, socklen_t len, SockName* out) {
    if (len < sizeof(sa_family_t)) return EINVAL;
    sa_family_t f;
    std::memcpy(&f, addr, sizeof f);
    if (f != AF_INET && f != AF_INET6) return EAFNOSUPPORT;
    if (len < (f == AF_INET6 ? 24u : sizeof(sockaddr_in))) return EINVAL;
    *out = SockName{};
    std::memcpy(&out->sa, addr, std::min<size_t>(len, sizeof out->sa));
    return 0;
  }
};

// Linux move_addr_to_user for a SockName: 0 or -1/errno.
inline int put_name(const SockName& n, sockaddr* addr, socklen_t* len) {
  if (addr == nullptr || len == nullptr) {
    errno = EFAULT;
    return -1;
  }
  if (static_cast<int>(*len) < 0) {
    errno = EINVAL;
    return -1;
  }
  std::memcpy(addr, &n.sa, std::min<size_t>(*len, n.size()));
  *len = n.size();
  return 0;
}

}  // namespace xs::shim
