// Two native runtimes over engines joined by an in-memory link (A at
// 198.18.0.1, B at 198.18.0.2), for the native API's unit tests.
#pragma once
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cstring>
#include <memory>
#include <utility>

#include "socketapi/memory_device.hpp"
#include "socketapi/native_runtime.hpp"

namespace xs::testing_native {

using native::Runtime;

inline constexpr Ipv4Addr kA = Ipv4Addr::from_octets(198, 18, 0, 1);
inline constexpr Ipv4Addr kB = Ipv4Addr::from_octets(198, 18, 0, 2);

inline sockaddr_in sin_of(Ipv4Addr a, uint16_t port) {
  sockaddr_in s{};
  s.sin_family = AF_INET;
  s.sin_port = htons(port);
  s.sin_addr.s_addr = htonl(a.v);
  return s;
}
inline const sockaddr* sa(const sockaddr_in& s) { return reinterpret_cast<const sockaddr*>(&s); }

struct NativePair {
  NativePair() {
    auto [da, db] = make_memory_device_pair(MacAddr{{2, 0, 0, 0, 0, 1}}, MacAddr{{2, 0, 0, 0, 0, 2}});
    EngineConfig ca;
    ca.addr = {kA, 24};
    EngineConfig cb = ca;
    cb.addr = {kB, 24};
    ea = std::make_unique<Engine>(ca, std::move(da));
    eb = std::make_unique<Engine>(cb, std::move(db));
    ea->start();
    eb->start();
    a = std::make_unique<Runtime>(*ea);
    b = std::make_unique<Runtime>(*eb);
  }
  ~NativePair() {
    a.reset();
    b.reset();
  }
  // A listening socket on B at `port`; `rcvbuf` > 0 sets SO_RCVBUF on it,
  // which accepted sockets inherit.
  int listen_b(uint16_t port, int flags = 0, int rcvbuf = 0) {
    int l = b->socket(AF_INET, SOCK_STREAM | flags, 0);
    EXPECT_GE(l, 0);
    int one = 1;
    EXPECT_EQ(b->setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), 0);
    if (rcvbuf > 0) {
      EXPECT_EQ(b->setsockopt(l, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf), 0);
    }
    auto s = sin_of(Ipv4Addr::any(), port);
    EXPECT_EQ(b->bind(l, sa(s), sizeof s), 0);
    EXPECT_EQ(b->listen(l, 16), 0);
    return l;
  }
  // A connected pair: A's client fd, B's accepted fd.
  std::pair<int, int> connected(uint16_t port, int rcvbuf = 0) {
    int l = listen_b(port, 0, rcvbuf);
    int c = a->socket(AF_INET, SOCK_STREAM, 0);
    auto s = sin_of(kB, port);
    EXPECT_EQ(a->connect(c, sa(s), sizeof s), 0) << strerror(errno);
    int srv = b->accept(l, nullptr, nullptr);
    EXPECT_GE(srv, 0) << strerror(errno);
    b->close(l);
    return {c, srv};
  }
  std::unique_ptr<Engine> ea, eb;
  std::unique_ptr<Runtime> a, b;
};

}  // namespace xs::testing_native
