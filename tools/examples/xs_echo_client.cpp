// xs_echo_client: a TCP echo client in C++ on the xstack native API through
// its RAII layer (socketapi/xstack.hpp). Connects to IP:PORT, sends COUNT
// messages of SIZE bytes one at a time, checks that each comes back intact,
// and prints the count and the average round-trip time. Exit 0 when every
// echo matched.
//
// The stack starts on the first xs_* call, configured from the environment:
//   XSTACK_IF=<interface> XSTACK_ADDR=A.B.C.D/LEN [XSTACK_MODE=interrupt|spin|busy-poll]
// In the lab (root), against a kernel echo server in b:
//   tools/xstack-lab up
//   tools/xstack-lab exec b -- python3 tests/veth/kernel_peer.py tcp-echo-server 198.18.0.2 7001 &
//   tools/xstack-lab exec a -- env XSTACK_IF=xsla XSTACK_ADDR=198.18.0.3/24 build/tools/examples/xs_echo_client 198.18.0.2:7001 1000 512
//
// Usage: xs_echo_client IP:PORT [COUNT=1000] [SIZE=512]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "socketapi/xstack.hpp"

namespace {

int fail(const char* what, int err) {
  std::fprintf(stderr, "xs_echo_client: %s: %s\n", what, std::strerror(err));
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 4) {
    std::fprintf(stderr, "usage: %s IP:PORT [COUNT=1000] [SIZE=512]\n", argv[0]);
    return 2;
  }
  std::string target = argv[1];
  auto colon = target.rfind(':');
  sockaddr_in peer{};
  peer.sin_family = AF_INET;
  int port = colon == std::string::npos ? 0 : std::atoi(target.c_str() + colon + 1);
  if (colon == std::string::npos || port <= 0 || port > 65535 ||
      inet_pton(AF_INET, target.substr(0, colon).c_str(), &peer.sin_addr) != 1) {
    std::fprintf(stderr, "bad address '%s' (want A.B.C.D:PORT)\n", argv[1]);
    return 2;
  }
  peer.sin_port = htons(static_cast<uint16_t>(port));
  long count = argc > 2 ? std::atol(argv[2]) : 1000;
  long size = argc > 3 ? std::atol(argv[3]) : 512;
  if (count <= 0 || size <= 0 || size > (16l << 20)) {
    std::fprintf(stderr, "COUNT and SIZE must be positive (SIZE <= 16 MiB)\n");
    return 2;
  }

  auto sock = xs::Socket::open(AF_INET, SOCK_STREAM);
  if (!sock) return fail("socket", sock.error());
  xs::Socket& s = *sock;
  if (auto r = s.connect(reinterpret_cast<const sockaddr*>(&peer), sizeof peer); !r)
    return fail("connect", r.error());
  if (auto r = s.setopt(IPPROTO_TCP, TCP_NODELAY, 1); !r) return fail("TCP_NODELAY", r.error());

  std::vector<std::byte> msg(static_cast<size_t>(size)), echo(static_cast<size_t>(size));
  std::chrono::nanoseconds total{0};
  long done = 0;
  for (long i = 0; i < count; i++) {
    for (size_t j = 0; j < msg.size(); j++)
      msg[j] = static_cast<std::byte>((i * 131 + static_cast<long>(j) * 7 + 1) & 0xff);
    auto t0 = std::chrono::steady_clock::now();
    for (size_t off = 0; off < msg.size();) {
      auto r = s.send(std::span<const std::byte>(msg).subspan(off), MSG_NOSIGNAL);
      if (!r) {
        if (r.error() == EINTR) continue;
        return fail("send", r.error());
      }
      off += static_cast<size_t>(*r);
    }
    for (size_t off = 0; off < echo.size();) {
      auto r = s.recv(std::span<std::byte>(echo).subspan(off));
      if (!r) {
        if (r.error() == EINTR) continue;
        return fail("recv", r.error());
      }
      if (*r == 0) {
        std::fprintf(stderr, "xs_echo_client: message %ld: EOF after %zu/%ld bytes\n", i, off, size);
        return 1;
      }
      off += static_cast<size_t>(*r);
    }
    total += std::chrono::steady_clock::now() - t0;
    if (echo != msg) {
      std::fprintf(stderr, "xs_echo_client: message %ld: echo mismatch\n", i);
      return 1;
    }
    done++;
  }
  // Orderly close: our FIN, then the server's EOF.
  if (auto r = s.shutdown(SHUT_WR); !r) return fail("shutdown", r.error());
  std::byte extra[64];
  auto r = s.recv(extra);
  if (!r) return fail("recv after shutdown", r.error());
  if (*r != 0) {
    std::fprintf(stderr, "xs_echo_client: unexpected data after the last echo\n");
    return 1;
  }
  double avg_us = std::chrono::duration<double, std::micro>(total).count() / static_cast<double>(done);
  std::printf("ok %ld messages of %ld bytes echoed, average RTT %.1f us\n", done, size, avg_us);
  return 0;
}
