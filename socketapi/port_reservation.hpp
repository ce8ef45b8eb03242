// Shared-IP mode: our address is also the kernel's, so every TCP/UDP port the
// stack uses is held by a kernel socket bound to the same address and port;
// the kernel then never gives that port to another socket.
//
// Why a bound socket is enough (verified in tests/veth/test_xdp_kernel_net.cpp):
//  - TCP: a socket that is bound but neither listening nor connected owns the
//    port's bind bucket, so another bind() to the port on an overlapping
//    address (the same one or INADDR_ANY) fails with EADDRINUSE (unless both
//    sockets set SO_REUSEADDR, which is why reuseaddr defaults to false), and
//    connect()'s autobind skips every port whose bucket was made by bind(),
//    whatever its address. Nothing listens on it, so a SYN that reached the
//    kernel would get RST; our XDP program steers the port's segments to us.
//  - UDP: a bound socket makes the port busy for others' bind() and connect()
//    autobind on overlapping addresses (again unless both set SO_REUSEADDR).
//    Datagrams to the port are steered to us by XDP before the kernel sees them.
#pragma once
#include <cstdint>
#include <map>
#include <utility>

#include "stack/base/addr.hpp"
#include "stack/base/expected.hpp"

namespace xs {

class PortReservations {
 public:
  PortReservations() = default;
  PortReservations(const PortReservations&) = delete;
  PortReservations& operator=(const PortReservations&) = delete;
  ~PortReservations();  // closes all

  // Binds a kernel socket (SOCK_STREAM for proto 6, SOCK_DGRAM for 17,
  // CLOEXEC) to ip:port. Port 0: the kernel picks an ephemeral port from
  // ip_local_port_range now (IP_BIND_ADDRESS_NO_PORT off), which is returned.
  // Error: the errno; EADDRINUSE when the kernel, another process, or an
  // earlier reservation here holds the port; EPROTONOSUPPORT for other protos.
  Expected<uint16_t, int> reserve(uint8_t proto, Ipv4Addr ip, uint16_t port, bool reuseaddr = false);
  // Closes the kernel socket; the port is free for others again at once.
  void release(uint8_t proto, uint16_t port);
  // The reserving socket, -1 if none (the shim will later use these fds).
  int fd_of(uint8_t proto, uint16_t port) const;
  size_t size() const { return fds_.size(); }

 private:
  std::map<std::pair<uint8_t, uint16_t>, int> fds_;  // (proto, port) -> fd
};

}  // namespace xs
