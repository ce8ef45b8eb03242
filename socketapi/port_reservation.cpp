#include "socketapi/port_reservation.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace xs {

PortReservations::~PortReservations() {
  for (const auto& [key, fd] : fds_) close(fd);
}

Expected<uint16_t, int> PortReservations::reserve(uint8_t proto, Ipv4Addr ip, uint16_t port, bool reuseaddr) {
  int type = 0;
  if (proto == IPPROTO_TCP) type = SOCK_STREAM;
  if (proto == IPPROTO_UDP) type = SOCK_DGRAM;
  if (type == 0) return unexpected(EPROTONOSUPPORT);
  // Two TCP sockets with SO_REUSEADDR may share a port while neither listens,
  // so the kernel alone would not stop a second reservation of the same port.
  if (port != 0 && fds_.count({proto, port}) != 0) return unexpected(EADDRINUSE);

  const int fd = socket(AF_INET, type | SOCK_CLOEXEC, proto);
  if (fd < 0) return unexpected(errno);
  auto fail = [fd](int err) {
    close(fd);
    return unexpected(err);
  };
  const int on = reuseaddr ? 1 : 0;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0) return fail(errno);
  // Off (the default, set anyway): bind(port 0) must choose the port now, not at connect().
  const int off = 0;
  if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &off, sizeof(off)) != 0) return fail(errno);

  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(ip.v);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) return fail(errno);
  socklen_t len = sizeof(sa);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) return fail(errno);
  const uint16_t bound = ntohs(sa.sin_port);
  if (fds_.count({proto, bound}) != 0) return fail(EADDRINUSE);  // cannot happen without reuse
  fds_[{proto, bound}] = fd;
  return bound;
}

void PortReservations::release(uint8_t proto, uint16_t port) {
  auto it = fds_.find({proto, port});
  if (it == fds_.end()) return;
  close(it->second);
  fds_.erase(it);
}

int PortReservations::fd_of(uint8_t proto, uint16_t port) const {
  auto it = fds_.find({proto, port});
  return it == fds_.end() ? -1 : it->second;
}

}  // namespace xs
