#include "shim/state.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "shim/epoll_share.hpp"
#include "shim/fork_share.hpp"
#include "shim/real.hpp"
#include "socketapi/private_fd.hpp"
#include "socketapi/v4_mapped.hpp"

namespace xs::shim {

std::atomic<uint8_t> g_kind[kMaxFd];
std::atomic<int> g_companion[kMaxFd];
std::atomic<uint8_t> g_has_nested[kMaxFd];
thread_local int t_inside = 0;
LogLevel g_log_level = LogLevel::Warn;

namespace {

std::atomic<bool> g_unavailable{false};  // no stack in this process (logged once)
std::atomic<bool> g_exit_registered{false};

void on_exit_graceful() {
  // Linux keeps delivering a closed socket's data and FIN after the process
  // is gone; the stack dies with the process, so give it a moment to do so.
  if (rt() == nullptr) return;
  Inside in;
  native::shutdown_default_runtime_graceful(seconds(2));
}

void on_fork_child() {
  // The stack's rings, UMEM and progress thread belong to the parent; this
  // process must never run it. Sockets inherited from the parent become
  // orphans, adopted at first use through the parent (fork_share.hpp).
  forkshare::child();
  epshare::child();  // before the companions below become orphans: it closes them
  if (rt() != nullptr) {
    native::abandon_default_runtime();
    for (int fd = 0; fd < kMaxFd; ++fd) {
      uint8_t k = g_kind[fd].load(std::memory_order_relaxed);
      if (k == static_cast<uint8_t>(FdKind::XsSocket) || k == static_cast<uint8_t>(FdKind::Companion)) {
        g_kind[fd].store(static_cast<uint8_t>(FdKind::Orphan), std::memory_order_relaxed);
      }
    }
    // Written only where set: storing zeros everywhere would fault in all
    // 4 MiB of the table in every fork child.
    for (auto& c : g_companion) {
      if (c.load(std::memory_order_relaxed) != 0) c.store(0, std::memory_order_relaxed);
    }
  }
  // New sockets in the child go to the kernel: the parent holds the interface.
  g_unavailable = true;
}

void on_fork_prepare() {
  forkshare::prepare();
  epshare::prepare();
}

void on_fork_parent() {
  epshare::parent();
  forkshare::parent();
}

__attribute__((constructor)) void shim_init() {
  if (const char* l = std::getenv("XSTACK_LOG")) {
    if (!std::strcmp(l, "error")) g_log_level = LogLevel::Error;
    else if (!std::strcmp(l, "warn")) g_log_level = LogLevel::Warn;
    else if (!std::strcmp(l, "info")) g_log_level = LogLevel::Info;
    else if (!std::strcmp(l, "debug")) g_log_level = LogLevel::Debug;
  }
  pthread_atfork(on_fork_prepare, on_fork_parent, on_fork_child);
  // Started by exec in a child of the stack's process: the inherited
  // sockets it described are proxies again (docs/shim.md, "exec").
  if (const char* fds = std::getenv("XSTACK_FDS")) {
    forkshare::import_exec(fds);
    unsetenv("XSTACK_FDS");
  }
}

}  // namespace

void log(LogLevel lvl, const char* fmt, ...) {
  if (lvl > g_log_level) return;
  char buf[512];
  int n = std::snprintf(buf, sizeof buf, "xstack[%d]: ", static_cast<int>(getpid()));
  va_list ap;
  va_start(ap, fmt);
  int m = std::vsnprintf(buf + n, sizeof buf - static_cast<size_t>(n) - 1, fmt, ap);
  va_end(ap);
  size_t len = std::min(sizeof buf - 2, static_cast<size_t>(n + std::max(m, 0)));
  buf[len++] = '\n';
  int saved = errno;
  ssize_t w = real::write(2, buf, len);
  (void)w;
  errno = saved;
}

namespace {

// Holds every free descriptor number below `below` while alive. The stack's
// start makes about a dozen descriptors the program never sees (BPF
// objects, the XSK socket); libbpf and libxdp keep their numbers, so they
// cannot be moved afterwards: made while the low numbers are held, they land
// above them, and the program's next descriptors get the numbers Linux
// would give (socketapi/private_fd.hpp).
class LowNumbersHeld {
 public:
  explicit LowNumbersHeld(int below) {
    for (;;) {
      int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd < 0) break;
      if (fd >= below) {
        real::close(fd);
        break;
      }
      held_.push_back(fd);
    }
  }
  ~LowNumbersHeld() {
    for (int fd : held_) real::close(fd);
  }
  LowNumbersHeld(const LowNumbersHeld&) = delete;
  LowNumbersHeld& operator=(const LowNumbersHeld&) = delete;

 private:
  std::vector<int> held_;
};

}  // namespace

native::Runtime* rt_start() {
  if (native::Runtime* r = rt()) return r;
  if (g_unavailable.load(std::memory_order_relaxed)) return nullptr;
  if (std::getenv("XSTACK_IF") == nullptr) {
    if (!g_unavailable.exchange(true)) log(LogLevel::Info, "XSTACK_IF not set: every socket uses the kernel");
    return nullptr;
  }
  native::Runtime* r;
  {
    Inside in;
    int saved = errno;
    // Frames a call queues leave when the thread next waits (or 100 us
    // later): one kick per event batch, and a response with its FIN
    // (EngineConfig::tx_defer). XSTACK_TX_DEFER_USECS overrides.
    native::set_default_tx_defer(micros(100));
    {
      // 64 under the usual limit of 1024 descriptors; fewer under a low
      // limit, which must leave room for the stack's own.
      LowNumbersHeld low(std::min(64, private_fd_floor() / 8));
      r = native::default_runtime(true);
    }
    if (r == nullptr) {
      int err = errno;
      if (!g_unavailable.exchange(true)) {
        log(LogLevel::Error, "cannot start the stack on %s (%s): every socket uses the kernel",
            std::getenv("XSTACK_IF"), std::strerror(err));
      }
    }
    errno = saved;
  }
  if (r != nullptr && !g_exit_registered.exchange(true)) std::atexit(on_exit_graceful);
  return r;
}

namespace {

// The IPv4 address `addr` names for xstack socket `fd`, or why not: an
// AF_INET6 socket carries IPv4 through IPv4-mapped addresses (RFC 4291
// section 2.5.5.2), and a UDP one also takes AF_INET for a destination.
enum class Named : uint8_t { V4, Any6, V6, Refused };
Named named_v4(int fd, const sockaddr* addr, socklen_t len, bool bind, sockaddr_in* out) {
  native::Runtime* r = rt();
  if (r == nullptr || addr == nullptr || len < sizeof(sa_family_t)) return Named::Refused;
  int domain, type;
  {
    Inside in;
    domain = r->domain_of(fd);
    type = r->kind_of(fd);
  }
  const bool v4_ok = domain == AF_INET || (domain == AF_INET6 && !bind && type == SOCK_DGRAM);
  if (addr->sa_family == AF_INET && v4_ok && len >= sizeof(sockaddr_in)) {
    std::memcpy(out, addr, sizeof *out);
    return Named::V4;
  }
  if (addr->sa_family != AF_INET6 || domain != AF_INET6 || len < 24) return Named::Refused;  // SIN6_LEN_RFC2133
  sockaddr_in6 s6{};
  std::memcpy(&s6, addr, std::min<size_t>(len, sizeof s6));
  *out = sockaddr_in{};
  out->sin_family = AF_INET;
  out->sin_port = s6.sin6_port;
  if (IN6_IS_ADDR_UNSPECIFIED(&s6.sin6_addr)) return Named::Any6;
  if (!IN6_IS_ADDR_V4MAPPED(&s6.sin6_addr)) return Named::V6;
  out->sin_addr.s_addr = htonl(native::v4_in_mapped(s6.sin6_addr));
  return Named::V4;
}

bool reachable_v4(native::Runtime* r, int fd, const sockaddr_in& sin) {
  uint32_t dst = ntohl(sin.sin_addr.s_addr);
  if (dst == 0) return false;  // 0.0.0.0 means loopback to connect: the kernel's
  const EngineConfig& c = r->engine().config();
  if ((dst >> 24) == 127 || dst == c.addr.addr.v) {
    // Loopback, or the stack's own address: through the stack's loopback
    // when one of its sockets serves the port (a program talking to itself),
    // else the kernel's (another local program; in shared-IP mode the
    // address is the kernel's too). A dedicated address has no one else.
    Inside in;
    if (r->serves_locally(fd, Ipv4Addr{dst}, ntohs(sin.sin_port))) return true;
    return dst == c.addr.addr.v && c.dedicated_ip;
  }
  uint32_t mask = c.addr.prefix_len == 0 ? 0 : ~uint32_t{0} << (32 - c.addr.prefix_len);
  if ((dst & mask) == (c.addr.addr.v & mask)) return true;
  if ((dst >> 28) == 14) return false;  // multicast: the kernel
  return c.gateway.has_value();
}

}  // namespace

bool kernel_dst(int fd, const sockaddr* addr, socklen_t len) {
  sockaddr_in sin;
  switch (named_v4(fd, addr, len, false, &sin)) {
    case Named::V4: return !reachable_v4(rt(), fd, sin);
    case Named::Any6:  // "::" as a destination is IPv6 loopback (tcp_v6_connect)
    case Named::V6: return true;
    case Named::Refused: return false;
  }
  return false;
}

bool kernel_bind(int fd, const sockaddr* addr, socklen_t len) {
  sockaddr_in sin;
  switch (named_v4(fd, addr, len, true, &sin)) {
    case Named::V4: {
      uint32_t a = ntohl(sin.sin_addr.s_addr);
      return a != 0 && a != rt()->engine().config().addr.addr.v;
    }
    case Named::Any6: return false;
    case Named::V6: return true;
    case Named::Refused: return false;
  }
  return false;
}

int handover(int fd, const char* why) {
  native::Runtime* r = rt();
  if (r == nullptr) return fail(EBADF);
  Inside in;
  int type = r->kind_of(fd);
  if (type != SOCK_STREAM && type != SOCK_DGRAM) return fail(EINVAL);
  const int domain = r->domain_of(fd);
  int fl = r->fcntl(fd, F_GETFL, 0);
  int fdfl = real::fcntl(fd, F_GETFD, 0);  // the number's flag, kept by the kernel
  int k = real::socket(domain, type | SOCK_CLOEXEC | ((fl >= 0 && (fl & O_NONBLOCK)) ? SOCK_NONBLOCK : 0), 0);
  if (k < 0) return -1;
  // The options a program may have set before deciding where to connect.
  struct Opt {
    int level, name;
  };
  static constexpr Opt kOpts[] = {
      {SOL_SOCKET, SO_REUSEADDR}, {SOL_SOCKET, SO_REUSEPORT}, {SOL_SOCKET, SO_KEEPALIVE},
      {SOL_SOCKET, SO_BROADCAST}, {SOL_SOCKET, SO_LINGER},    {SOL_SOCKET, SO_RCVTIMEO},
      {SOL_SOCKET, SO_SNDTIMEO},  {SOL_SOCKET, SO_RCVLOWAT},  {IPPROTO_IP, IP_TOS},
      {IPPROTO_IP, IP_TTL},       {IPPROTO_TCP, TCP_NODELAY}, {IPPROTO_TCP, TCP_KEEPIDLE},
      {IPPROTO_TCP, TCP_KEEPINTVL}, {IPPROTO_TCP, TCP_KEEPCNT}, {IPPROTO_TCP, TCP_USER_TIMEOUT},
      {IPPROTO_IPV6, IPV6_V6ONLY}, {IPPROTO_IPV6, IPV6_TCLASS}, {IPPROTO_IPV6, IPV6_UNICAST_HOPS},
  };
  for (const Opt& o : kOpts) {
    if (type == SOCK_DGRAM && o.level == IPPROTO_TCP) continue;
    if (domain != AF_INET6 && o.level == IPPROTO_IPV6) continue;
    alignas(8) unsigned char v[32];
    socklen_t vl = sizeof v;
    if (r->getsockopt(fd, o.level, o.name, v, &vl) == 0) real::setsockopt(k, o.level, o.name, v, vl);
  }
  set_kind(fd, FdKind::Kernel);
  r->forget(fd);
  int flags = (fdfl >= 0 && (fdfl & FD_CLOEXEC)) ? O_CLOEXEC : 0;
  if (real::dup3(k, fd, flags) < 0) {
    int e = errno;
    real::close(k);
    return fail(e);
  }
  real::close(k);
  log(LogLevel::Info, "fd %d handed to the kernel (%s)", fd, why);
  return 0;
}

bool release_xs(int fd) {
  epshare::number_closed(fd);
  FdKind k = kind(fd);
  if (k == FdKind::Kernel) {
    drop_companion(fd);
    return false;
  }
  set_kind(fd, FdKind::Kernel);
  if (k == FdKind::Orphan) {
    forkshare::release(fd);
    return false;  // only the kernel descriptor is left
  }
  if (is_proxy(k)) {
    forkshare::forget(fd);
    return false;
  }
  if (native::Runtime* r = rt()) {
    Inside in;
    r->forget(fd);  // the caller's dup2/dup3/close closes the number itself
  }
  return true;
}

void drop_companion(int epfd) {
  if (epfd < 0 || epfd >= kMaxFd) return;
  int c = g_companion[epfd].exchange(0) - 1;
  if (c < 0) return;
  set_kind(c, FdKind::Kernel);
  if (native::Runtime* r = rt()) {
    Inside in;
    r->close(c);
  } else {
    real::close(c);
  }
}

}  // namespace xs::shim
