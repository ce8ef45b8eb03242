// xstack-peer's kernel back end: plain Linux sockets, blocking (like most
// programs) or, with --kernel-spin, a non-blocking receive loop (the fairest
// comparison with a spinning xstack).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "socketapi/engine.hpp"
#include "tools/peer/backend.hpp"

namespace xs::peer {
namespace {

long report(const char* what) {
  std::fprintf(stderr, "xstack-peer (kernel): %s: %s\n", what, std::strerror(errno));
  return kError;
}

sockaddr_in to_sockaddr(Endpoint e) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(e.port);
  sa.sin_addr.s_addr = htonl(e.addr.v);
  return sa;
}

int timeout_ms(Duration d) { return static_cast<int>(std::max<int64_t>(d.us / 1000, 1)); }

// Waits for readability; the spin variant polls with a zero timeout so the
// thread never sleeps. Returns false on timeout.
bool wait_readable(int fd, Duration timeout, bool spin) {
  pollfd p{fd, POLLIN, 0};
  if (!spin) return poll(&p, 1, timeout_ms(timeout)) > 0;
  Instant deadline = Engine::clock_now() + timeout;
  for (;;) {
    if (poll(&p, 1, 0) > 0) return true;
    if (Engine::clock_now() >= deadline) return false;
  }
}

class KConn final : public Conn {
 public:
  KConn(int fd, bool spin) : fd_(fd), spin_(spin) {
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~KConn() override { close(fd_); }
  long send_all(Bytes data) override {
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        return report("send");
      }
      off += static_cast<size_t>(n);
    }
    return static_cast<long>(off);
  }
  long recv(MutBytes out, Duration timeout) override {
    for (;;) {
      if (spin_) {
        ssize_t n = ::recv(fd_, out.data(), out.size(), MSG_DONTWAIT);
        if (n >= 0) return n;
        if (errno != EAGAIN && errno != EINTR) return report("recv");
        if (!wait_readable(fd_, timeout, true)) return kTimeout;
        continue;
      }
      if (!wait_readable(fd_, timeout, false)) return kTimeout;
      ssize_t n = ::recv(fd_, out.data(), out.size(), 0);
      if (n >= 0) return n;
      if (errno != EINTR) return report("recv");
    }
  }
  void shutdown_write() override { shutdown(fd_, SHUT_WR); }
  void set_keepalive(uint32_t idle_s, uint32_t interval_s, uint32_t count) override {
    int one = 1, i = int(idle_s), v = int(interval_s), c = int(count);
    setsockopt(fd_, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    setsockopt(fd_, IPPROTO_TCP, TCP_KEEPIDLE, &i, sizeof i);
    setsockopt(fd_, IPPROTO_TCP, TCP_KEEPINTVL, &v, sizeof v);
    setsockopt(fd_, IPPROTO_TCP, TCP_KEEPCNT, &c, sizeof c);
  }

 private:
  int fd_;
  bool spin_;
};

class KListener final : public Listener {
 public:
  KListener(int fd, bool spin) : fd_(fd), spin_(spin) {}
  ~KListener() override { close(fd_); }
  std::unique_ptr<Conn> accept(Duration timeout) override {
    if (!wait_readable(fd_, timeout, false)) return nullptr;
    int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) {
      report("accept");
      return nullptr;
    }
    return std::make_unique<KConn>(c, spin_);
  }

 private:
  int fd_;
  bool spin_;
};

class KDatagram final : public Datagram {
 public:
  KDatagram(int fd, bool spin) : fd_(fd), spin_(spin) {}
  ~KDatagram() override { close(fd_); }
  long send_to(Bytes data, Endpoint to) override {
    sockaddr_in sa = to_sockaddr(to);
    ssize_t n = sendto(fd_, data.data(), data.size(), 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    return n < 0 ? report("sendto") : n;
  }
  long recv_from(MutBytes out, Endpoint* from, Duration timeout) override {
    if (!wait_readable(fd_, timeout, spin_)) return kTimeout;
    sockaddr_in sa{};
    socklen_t len = sizeof sa;
    ssize_t n = recvfrom(fd_, out.data(), out.size(), 0, reinterpret_cast<sockaddr*>(&sa), &len);
    if (n < 0) return report("recvfrom");
    *from = Endpoint{Ipv4Addr{ntohl(sa.sin_addr.s_addr)}, ntohs(sa.sin_port)};
    return n;
  }

 private:
  int fd_;
  bool spin_;
};

class KBackend final : public Backend {
 public:
  KBackend(std::optional<Ipv4Addr> local, bool spin) : local_(local), spin_(spin) {}
  std::unique_ptr<Listener> listen(uint16_t port) override {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sa = to_sockaddr({local_.value_or(Ipv4Addr::any()), port});
    if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0 || ::listen(fd, 128) < 0) {
      report("listen");
      close(fd);
      return nullptr;
    }
    return std::make_unique<KListener>(fd, spin_);
  }
  std::unique_ptr<Conn> connect(Endpoint to, Duration) override {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa = to_sockaddr(to);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) {
      report("connect");
      close(fd);
      return nullptr;
    }
    return std::make_unique<KConn>(fd, spin_);
  }
  std::unique_ptr<Datagram> udp_bind(uint16_t port) override {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa = to_sockaddr({local_.value_or(Ipv4Addr::any()), port});
    if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) {
      report("udp bind");
      close(fd);
      return nullptr;
    }
    return std::make_unique<KDatagram>(fd, spin_);
  }

 private:
  std::optional<Ipv4Addr> local_;
  bool spin_;
};

}  // namespace

std::unique_ptr<Backend> make_kernel_backend(const Options& o) {
  std::optional<Ipv4Addr> local;
  if (o.addr) local = o.addr->addr;
  return std::make_unique<KBackend>(local, o.kernel_spin);
}

}  // namespace xs::peer
