#include "shim/state.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "shim/epoll_share.hpp"
#include "shim/fork_share.hpp"
#include "shim/real.hpp"

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
    for (auto& c : g_companion) c.store(0, std::memory_order_relaxed);
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
    r = native::default_runtime(true);
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

bool accelerable_dst(int fd, const sockaddr* addr, socklen_t len) {
  native::Runtime* r = rt();
  if (r == nullptr || addr == nullptr || len < sizeof(sockaddr_in) || addr->sa_family != AF_INET) return false;
  const auto* sin = reinterpret_cast<const sockaddr_in*>(addr);
  uint32_t dst = ntohl(sin->sin_addr.s_addr);
  if (dst == 0) return false;  // 0.0.0.0 means loopback to connect: the kernel's
  const EngineConfig& c = r->engine().config();
  if ((dst >> 24) == 127 || dst == c.addr.addr.v) {
    // Loopback, or the stack's own address: through the stack's loopback
    // when one of its sockets serves the port (a program talking to itself),
    // else the kernel's (another local program; in shared-IP mode the
    // address is the kernel's too). A dedicated address has no one else.
    Inside in;
    if (r->serves_locally(fd, Ipv4Addr{dst}, ntohs(sin->sin_port))) return true;
    return dst == c.addr.addr.v && c.dedicated_ip;
  }
  uint32_t mask = c.addr.prefix_len == 0 ? 0 : ~uint32_t{0} << (32 - c.addr.prefix_len);
  if ((dst & mask) == (c.addr.addr.v & mask)) return true;
  if ((dst >> 28) == 14) return false;  // multicast: the kernel
  return c.gateway.has_value();
}

bool accelerable_bind(const sockaddr* addr, socklen_t len) {
  native::Runtime* r = rt();
  if (r == nullptr || addr == nullptr || len < sizeof(sockaddr_in) || addr->sa_family != AF_INET) return false;
  uint32_t a = ntohl(reinterpret_cast<const sockaddr_in*>(addr)->sin_addr.s_addr);
  return a == 0 || a == r->engine().config().addr.addr.v;
}

int handover(int fd, const char* why) {
  native::Runtime* r = rt();
  if (r == nullptr) return fail(EBADF);
  Inside in;
  int type = r->kind_of(fd);
  if (type != SOCK_STREAM && type != SOCK_DGRAM) return fail(EINVAL);
  int fl = r->fcntl(fd, F_GETFL, 0);
  int fdfl = real::fcntl(fd, F_GETFD, 0);  // the number's flag, kept by the kernel
  int k = real::socket(AF_INET, type | SOCK_CLOEXEC | ((fl >= 0 && (fl & O_NONBLOCK)) ? SOCK_NONBLOCK : 0), 0);
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
  };
  for (const Opt& o : kOpts) {
    if (type == SOCK_DGRAM && o.level == IPPROTO_TCP) continue;
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
