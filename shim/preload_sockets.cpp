// Interposed socket calls: an xstack descriptor goes to the native runtime,
// anything else to the C library. See docs/shim.md for what goes where.
#include <fcntl.h>
#include <netinet/in.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <linux/close_range.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <vector>

#include "shim/epoll_share.hpp"
#include "shim/fork_share.hpp"
#include "shim/real.hpp"
#include "shim/state.hpp"

using namespace xs::shim;
using xs::native::Runtime;

namespace {

// Runs `call` on the runtime when `fd` is an xstack socket. A socket
// inherited across fork is first adopted (fork_share.hpp): then it is a
// kernel socket, and the call falls through to the C library.
#define XS_ROUTE(fd, call)                                          \
  do {                                                              \
    FdKind k_ = kind(fd);                                           \
    if (k_ == FdKind::Orphan) k_ = forkshare::adopt(fd);            \
    if (k_ == FdKind::XsSocket) {                                   \
      if (Runtime* r = rt()) {                                      \
        Inside in_;                                                 \
        return r->call;                                             \
      }                                                             \
    } else if (k_ == FdKind::Orphan) {                              \
      return fail(EBADF);                                           \
    }                                                               \
  } while (0)

// An inherited UDP socket in a child (a datagram proxy, fork_share.hpp).
#define XS_DGRAM(fd, call) \
  if (kind(fd) == FdKind::ProxyDgram) return call

ssize_t dg_recv(int fd, const iovec* iov, size_t cnt, int flags, sockaddr* from, socklen_t* fromlen) {
  msghdr m{};
  m.msg_name = from;
  m.msg_namelen = (from && fromlen) ? *fromlen : 0;
  m.msg_iov = const_cast<iovec*>(iov);
  m.msg_iovlen = cnt;
  ssize_t r = forkshare::dgram_recvmsg(fd, &m, flags);
  if (r >= 0 && from && fromlen) *fromlen = m.msg_namelen;
  return r;
}

ssize_t dg_send(int fd, const iovec* iov, size_t cnt, int flags, const sockaddr* to, socklen_t tolen) {
  msghdr m{};
  m.msg_name = const_cast<sockaddr*>(to);
  m.msg_namelen = to ? tolen : 0;
  m.msg_iov = const_cast<iovec*>(iov);
  m.msg_iovlen = cnt;
  return forkshare::dgram_sendmsg(fd, &m, flags);
}

// An xstack socket handed to another process arrives there as its
// placeholder eventfd, which is no socket (docs/shim.md, Limits). The
// receiver fails far from the cause, so say it here, once. Only after the
// kernel accepted the message: `msg` and its control data are readable then.
void warn_if_passing_sockets(const msghdr* msg) {
  static std::atomic<bool> warned{false};
  if (msg->msg_control == nullptr || msg->msg_controllen < sizeof(cmsghdr) || warned.load()) return;
  for (cmsghdr* c = CMSG_FIRSTHDR(msg); c != nullptr; c = CMSG_NXTHDR(const_cast<msghdr*>(msg), c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < n; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      const FdKind k = kind(fd);
      if (k == FdKind::Kernel || k == FdKind::Companion || warned.exchange(true)) continue;
      log(LogLevel::Warn, "fd %d, an xstack socket, passed with SCM_RIGHTS: the receiving process gets a "
          "placeholder, not a socket (unsupported)", fd);
    }
  }
}

// The kind of `fd` after adopting an inherited socket.
FdKind adopted_kind(int fd) {
  FdKind k = kind(fd);
  return k == FdKind::Orphan ? forkshare::adopt(fd) : k;
}

bool wants_xstack(int domain, int type, int protocol) {
  // AF_INET6 too: a dual-stack socket's IPv4 traffic (IPv4-mapped
  // addresses); it moves to the kernel when it turns to IPv6 (state.hpp).
  if (t_inside > 0 || (domain != AF_INET && domain != AF_INET6)) return false;
  int base = type & 0xf;
  if (base == SOCK_STREAM) return protocol == 0 || protocol == IPPROTO_TCP;
  if (base == SOCK_DGRAM) return protocol == 0 || protocol == IPPROTO_UDP;
  return false;
}

// A new xstack socket: its number's close-on-exec flag as asked (the
// runtime's eventfd is made close-on-exec).
int track(int fd, bool cloexec) {
  if (fd < 0) return fd;
  if (!cloexec) real::fcntl(fd, F_SETFD, 0);
  set_kind(fd, FdKind::XsSocket);
  return fd;
}

// A kernel dup of xstack socket `fd` as `newfd` names the same socket.
int alias(int fd, int newfd) {
  if (newfd < 0) return newfd;
  Inside in;
  if (Runtime* r = rt(); r && r->dup_alias(fd, newfd) >= 0) set_kind(newfd, FdKind::XsSocket);
  return newfd;
}

}  // namespace

extern "C" {

int socket(int domain, int type, int protocol) {
  if (wants_xstack(domain, type, protocol)) {
    if (Runtime* r = rt_start()) {
      Inside in;
      return track(r->socket(domain, type, protocol), (type & SOCK_CLOEXEC) != 0);
    }
  }
  return real::socket(domain, type, protocol);
}

int bind(int fd, const sockaddr* addr, socklen_t len) {
  if (is_xs(fd) && kernel_bind(fd, addr, len) && rt()->is_fresh(fd)) {
    if (handover(fd, "bind to an address not on the xstack interface") == 0) return real::bind(fd, addr, len);
  }
  XS_ROUTE(fd, bind(fd, addr, len));
  return real::bind(fd, addr, len);
}

int listen(int fd, int backlog) {
  XS_ROUTE(fd, listen(fd, backlog));
  return real::listen(fd, backlog);
}

int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
  FdKind k = adopted_kind(fd);
  if (k == FdKind::ProxyListener) return forkshare::accept4(fd, addr, len, flags);
  if (k == FdKind::XsSocket) {
    if (Runtime* r = rt()) {
      Inside in;
      return track(r->accept4(fd, addr, len, flags), (flags & SOCK_CLOEXEC) != 0);
    }
  }
  if (kind(fd) == FdKind::Orphan) return fail(EBADF);
  return real::accept4(fd, addr, len, flags);
}

int accept(int fd, sockaddr* addr, socklen_t* len) {
  FdKind k = kind(fd);
  if (k == FdKind::XsSocket || k == FdKind::Orphan || k == FdKind::ProxyListener) return accept4(fd, addr, len, 0);
  return real::accept(fd, addr, len);
}

int connect(int fd, const sockaddr* addr, socklen_t len) {
  if (is_xs(fd) && kernel_dst(fd, addr, len) && rt()->is_fresh(fd)) {
    if (handover(fd, "destination not reachable through the xstack interface") == 0)
      return real::connect(fd, addr, len);
  }
  XS_ROUTE(fd, connect(fd, addr, len));
  XS_DGRAM(fd, forkshare::dgram_connect(fd, addr, len));
  return real::connect(fd, addr, len);
}

ssize_t read(int fd, void* buf, size_t n) {
  XS_ROUTE(fd, read(fd, buf, n));
  iovec v{buf, n};
  XS_DGRAM(fd, dg_recv(fd, &v, 1, 0, nullptr, nullptr));
  return real::read(fd, buf, n);
}

ssize_t __read_chk(int fd, void* buf, size_t n, size_t buflen) {
  if (n > buflen) __builtin_trap();  // what glibc's __chk_fail amounts to
  return read(fd, buf, n);
}

ssize_t readv(int fd, const iovec* iov, int cnt) {
  XS_ROUTE(fd, readv(fd, iov, cnt));
  XS_DGRAM(fd, cnt < 0 ? fail(EINVAL) : dg_recv(fd, iov, static_cast<size_t>(cnt), 0, nullptr, nullptr));
  return real::readv(fd, iov, cnt);
}

ssize_t write(int fd, const void* buf, size_t n) {
  XS_ROUTE(fd, write(fd, buf, n));
  iovec v{const_cast<void*>(buf), n};
  XS_DGRAM(fd, dg_send(fd, &v, 1, 0, nullptr, 0));
  return real::write(fd, buf, n);
}

ssize_t writev(int fd, const iovec* iov, int cnt) {
  XS_ROUTE(fd, writev(fd, iov, cnt));
  XS_DGRAM(fd, cnt < 0 ? fail(EINVAL) : dg_send(fd, iov, static_cast<size_t>(cnt), 0, nullptr, 0));
  return real::writev(fd, iov, cnt);
}

ssize_t send(int fd, const void* buf, size_t n, int flags) {
  XS_ROUTE(fd, send(fd, buf, n, flags));
  iovec v{const_cast<void*>(buf), n};
  XS_DGRAM(fd, dg_send(fd, &v, 1, flags, nullptr, 0));
  return real::send(fd, buf, n, flags);
}

ssize_t sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* to, socklen_t tolen) {
  if (is_xs(fd) && kernel_dst(fd, to, tolen) && rt()->is_fresh(fd)) {
    if (handover(fd, "datagram to a destination not reachable through xstack") == 0)
      return real::sendto(fd, buf, n, flags, to, tolen);
  }
  XS_ROUTE(fd, sendto(fd, buf, n, flags, to, tolen));
  iovec v{const_cast<void*>(buf), n};
  XS_DGRAM(fd, dg_send(fd, &v, 1, flags, to, tolen));
  return real::sendto(fd, buf, n, flags, to, tolen);
}

ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
  XS_ROUTE(fd, sendmsg(fd, msg, flags));
  XS_DGRAM(fd, forkshare::dgram_sendmsg(fd, msg, flags));
  const ssize_t r = real::sendmsg(fd, msg, flags);
  if (r >= 0) warn_if_passing_sockets(msg);
  return r;
}

int sendmmsg(int fd, mmsghdr* msgs, unsigned int n, int flags) {
  XS_ROUTE(fd, sendmmsg(fd, msgs, n, flags));
  if (kind(fd) == FdKind::ProxyDgram) {
    unsigned int i = 0;
    for (; i < n; ++i) {
      ssize_t r = forkshare::dgram_sendmsg(fd, &msgs[i].msg_hdr, flags);
      if (r < 0) return i > 0 ? static_cast<int>(i) : -1;
      msgs[i].msg_len = static_cast<unsigned int>(r);
    }
    return static_cast<int>(i);
  }
  return real::sendmmsg(fd, msgs, n, flags);
}

ssize_t recv(int fd, void* buf, size_t n, int flags) {
  XS_ROUTE(fd, recv(fd, buf, n, flags));
  iovec v{buf, n};
  XS_DGRAM(fd, dg_recv(fd, &v, 1, flags, nullptr, nullptr));
  return real::recv(fd, buf, n, flags);
}

ssize_t __recv_chk(int fd, void* buf, size_t n, size_t buflen, int flags) {
  if (n > buflen) __builtin_trap();
  return recv(fd, buf, n, flags);
}

ssize_t recvfrom(int fd, void* buf, size_t n, int flags, sockaddr* from, socklen_t* fromlen) {
  XS_ROUTE(fd, recvfrom(fd, buf, n, flags, from, fromlen));
  iovec v{buf, n};
  XS_DGRAM(fd, dg_recv(fd, &v, 1, flags, from, fromlen));
  return real::recvfrom(fd, buf, n, flags, from, fromlen);
}

ssize_t __recvfrom_chk(int fd, void* buf, size_t n, size_t buflen, int flags, sockaddr* from, socklen_t* fromlen) {
  if (n > buflen) __builtin_trap();
  return recvfrom(fd, buf, n, flags, from, fromlen);
}

ssize_t recvmsg(int fd, msghdr* msg, int flags) {
  XS_ROUTE(fd, recvmsg(fd, msg, flags));
  XS_DGRAM(fd, forkshare::dgram_recvmsg(fd, msg, flags));
  return real::recvmsg(fd, msg, flags);
}

int recvmmsg(int fd, mmsghdr* msgs, unsigned int n, int flags, timespec* timeout) {
  XS_ROUTE(fd, recvmmsg(fd, msgs, n, flags, timeout));
  if (kind(fd) == FdKind::ProxyDgram) {
    // The first waits as the socket would; the rest take what is there
    // (MSG_WAITFORONE; a timeout is checked between datagrams by Linux too).
    unsigned int i = 0;
    for (; i < n; ++i) {
      ssize_t r = forkshare::dgram_recvmsg(fd, &msgs[i].msg_hdr, i == 0 ? flags & ~MSG_WAITFORONE : flags | MSG_DONTWAIT);
      if (r < 0) return i > 0 ? static_cast<int>(i) : -1;
      msgs[i].msg_len = static_cast<unsigned int>(r);
    }
    return static_cast<int>(i);
  }
  return real::recvmmsg(fd, msgs, n, flags, timeout);
}

int shutdown(int fd, int how) {
  if (kind(fd) == FdKind::Orphan || kind(fd) == FdKind::ProxyConn) return forkshare::shutdown(fd, how);
  XS_ROUTE(fd, shutdown(fd, how));
  return real::shutdown(fd, how);
}

int getsockopt(int fd, int level, int name, void* val, socklen_t* len) {
  if (kind(fd) == FdKind::Orphan || is_proxy(kind(fd))) return forkshare::getsockopt(fd, level, name, val, len);
  XS_ROUTE(fd, getsockopt(fd, level, name, val, len));
  return real::getsockopt(fd, level, name, val, len);
}

int setsockopt(int fd, int level, int name, const void* val, socklen_t len) {
  FdKind k = kind(fd);
  if (k == FdKind::Orphan || is_proxy(k)) return forkshare::setsockopt(fd, level, name, val, len);
  if (k == FdKind::XsSocket) {
    if (Runtime* r = rt()) {
      int on = 0;
      if (level == IPPROTO_IPV6 && name == IPV6_V6ONLY && val != nullptr && len >= sizeof on) {
        std::memcpy(&on, val, sizeof on);
        // An IPv6-only socket carries nothing xstack does (IPv4): the kernel's.
        if (on != 0 && r->domain_of(fd) == AF_INET6 && r->is_fresh(fd) && handover(fd, "IPV6_V6ONLY") == 0)
          return real::setsockopt(fd, level, name, val, len);
      }
      int rc;
      {
        Inside in;
        rc = r->setsockopt(fd, level, name, val, len);
      }
      if (rc < 0 && errno == ENOPROTOOPT) {
        // Would Linux take it? Ask a scratch kernel socket of the same type:
        // if not, its errno is Linux's answer; if so, an option xstack cannot
        // honour on a socket not yet bound or connected moves the socket to
        // the kernel (and the option with it).
        int type = r->kind_of(fd);
        int probe = real::socket(r->domain_of(fd), type | SOCK_CLOEXEC, 0);
        if (probe >= 0) {
          int prc = real::setsockopt(probe, level, name, val, len);
          int perr = errno;
          real::close(probe);
          if (prc < 0) return fail(perr);
          if (r->is_fresh(fd) && handover(fd, "socket option xstack does not implement") == 0) {
            log(LogLevel::Info, "  (setsockopt level %d name %d)", level, name);
            return real::setsockopt(fd, level, name, val, len);
          }
          log(LogLevel::Debug, "setsockopt level %d name %d: not implemented by xstack (ENOPROTOOPT)", level, name);
        }
        errno = ENOPROTOOPT;
      }
      return rc;
    }
  }
  if (k == FdKind::Orphan) return fail(EBADF);
  return real::setsockopt(fd, level, name, val, len);
}

int getsockname(int fd, sockaddr* addr, socklen_t* len) {
  if (kind(fd) == FdKind::Orphan) return forkshare::orphan_names(fd, false, addr, len);
  if (is_proxy(kind(fd))) return forkshare::getsockname(fd, addr, len);
  XS_ROUTE(fd, getsockname(fd, addr, len));
  return real::getsockname(fd, addr, len);
}

int getpeername(int fd, sockaddr* addr, socklen_t* len) {
  if (kind(fd) == FdKind::Orphan) return forkshare::orphan_names(fd, true, addr, len);
  if (is_proxy(kind(fd))) return forkshare::getpeername(fd, addr, len);
  XS_ROUTE(fd, getpeername(fd, addr, len));
  return real::getpeername(fd, addr, len);
}

int close(int fd) {
  epshare::number_closed(fd);
  FdKind k = kind(fd);
  if (k == FdKind::XsSocket) {
    set_kind(fd, FdKind::Kernel);
    if (Runtime* r = rt()) {
      Inside in;
      return r->close(fd);
    }
  } else if (k == FdKind::Orphan) {
    set_kind(fd, FdKind::Kernel);
    forkshare::release(fd);
  } else if (is_proxy(k)) {
    set_kind(fd, FdKind::Kernel);
    forkshare::forget(fd);
  } else if (companion_of(fd) >= 0) {
    drop_companion(fd);
  }
  if (fd >= 0 && fd < kMaxFd) g_has_nested[fd].store(0, std::memory_order_relaxed);
  return real::close(fd);
}

static int close_range_impl(unsigned first, unsigned last, int flags);
int close_range(unsigned first, unsigned last, int flags) { return close_range_impl(first, last, flags); }

void closefrom(int lowfd) {
  if (lowfd < 0) lowfd = 0;
  close_range_impl(static_cast<unsigned>(lowfd), ~0U, 0);
}

// close_range(2) and closefrom(3) (glibc's closefrom calls close_range
// itself, out of reach of the interposed close): the numbers the shim
// tracks in the range are closed as close() would (an xstack socket, an
// inherited one's reference in the parent), and the shim's channel to the
// process with the stack is spared. sshd re-executes itself for every
// connection and its new image calls closefrom(REEXEC_MIN_FREE_FD): without
// this, the socket it inherited lost its channel, so every getsockopt and
// setsockopt on it failed with EBADF.
static int close_range_impl(unsigned first, unsigned last, int flags) {
  constexpr int kKnown = CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC;
  if (first > last || (flags & ~kKnown) != 0) return static_cast<int>(syscall(SYS_close_range, first, last, flags));
  if ((flags & CLOSE_RANGE_CLOEXEC) == 0) {
    const unsigned top = std::min<unsigned>(last, kMaxFd - 1);
    const int chan = forkshare::channel_fd();
    for (unsigned u = first; u <= top && u < static_cast<unsigned>(kMaxFd); ++u) {
      const int fd = static_cast<int>(u);
      if (fd == chan) continue;
      if (kind(fd) != FdKind::Kernel || companion_of(fd) >= 0) close(fd);
    }
  }
  const int chan = forkshare::channel_fd();
  if (chan < 0 || static_cast<unsigned>(chan) < first || static_cast<unsigned>(chan) > last)
    return static_cast<int>(syscall(SYS_close_range, first, last, flags));
  const unsigned c = static_cast<unsigned>(chan);
  int rc = 0;
  if (c > first) rc = static_cast<int>(syscall(SYS_close_range, first, c - 1, flags));
  if (rc == 0 && c < last) rc = static_cast<int>(syscall(SYS_close_range, c + 1, last, flags & ~CLOSE_RANGE_UNSHARE));
  return rc;
}

// The new number `r` of a proxy (an inherited socket served by the parent)
// is the same proxy.
static int proxy_copy(FdKind k, int fd, int r) {
  if (r >= 0 && is_proxy(k)) {
    forkshare::copy_info(fd, r);
    set_kind(r, k);
  }
  return r;
}

int dup(int fd) {
  FdKind k = adopted_kind(fd);
  if (k == FdKind::XsSocket) return alias(fd, real::dup(fd));
  return proxy_copy(k, fd, real::dup(fd));
}

int dup3(int fd, int newfd, int flags) {
  if (fd == newfd) return real::dup3(fd, newfd, flags);  // EINVAL, as the kernel says
  if (kind(fd) == FdKind::Kernel && kind(newfd) == FdKind::Kernel && companion_of(newfd) < 0) {
    int r = real::dup3(fd, newfd, flags);
    if (r >= 0) epshare::number_closed(newfd);  // an inherited epoll fd replaced (epoll_share.hpp)
    return r;
  }
  if (real::fcntl(fd, F_GETFD, 0) < 0) return -1;  // EBADF before newfd is touched
  FdKind k = adopted_kind(fd);  // an inherited socket (inetd: dup2 onto 0 and 1)
  release_xs(newfd);
  int r = real::dup3(fd, newfd, flags);
  if (r >= 0 && k == FdKind::XsSocket) alias(fd, r);
  return proxy_copy(k, fd, r);
}

int dup2(int fd, int newfd) {
  if (fd == newfd) return real::dup2(fd, newfd);  // checks fd, returns it
  return dup3(fd, newfd, 0);
}

static int fcntl_impl(int fd, int cmd, long arg) {
  if (kind(fd) == FdKind::XsSocket) {
    if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) return alias(fd, real::fcntl(fd, cmd, arg));
    // Descriptor flags belong to the number, not the socket: the kernel's.
    if (cmd == F_GETFD || cmd == F_SETFD) return real::fcntl(fd, cmd, arg);
    if (Runtime* r = rt()) {
      Inside in;
      return r->fcntl(fd, cmd, arg);
    }
  }
  if (kind(fd) == FdKind::Orphan && (cmd == F_GETFL || cmd == F_SETFL)) return forkshare::orphan_fcntl(fd, cmd, arg);
  if (kind(fd) == FdKind::Orphan && cmd != F_GETFD && cmd != F_SETFD && adopted_kind(fd) == FdKind::Orphan)
    return fail(EBADF);
  if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) return proxy_copy(kind(fd), fd, real::fcntl(fd, cmd, arg));
  return real::fcntl(fd, cmd, arg);
}

int fcntl(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  long arg = va_arg(ap, long);
  va_end(ap);
  return fcntl_impl(fd, cmd, arg);
}

int fcntl64(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  long arg = va_arg(ap, long);
  va_end(ap);
  return fcntl_impl(fd, cmd, arg);
}

// The socket ioctls in 0x89xx that are about a network device, the routing
// table or ARP rather than about the socket they are made on.
static bool is_network_device_ioctl(unsigned long req) {
  if ((req & 0xff00) != 0x8900) return false;
  switch (req) {
    case SIOCATMARK: case SIOCGSTAMP: case SIOCGSTAMPNS: case SIOCOUTQNSD:
    case FIOSETOWN: case SIOCSPGRP: case FIOGETOWN: case SIOCGPGRP:
      return false;  // about the socket itself: the runtime answers
    default: return true;
  }
}

int ioctl(int fd, unsigned long req, ...) {
  va_list ap;
  va_start(ap, req);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  if (is_network_device_ioctl(req) && adopted_kind(fd) == FdKind::XsSocket) {
    // Interface and routing requests (SIOCGIFCONF, SIOCGIFADDR, ...) concern
    // the network namespace, not the socket: Linux answers them on any
    // socket, so a scratch kernel socket answers exactly as Linux would.
    int scratch = real::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (scratch < 0) return -1;
    int rc = real::ioctl(scratch, req, arg);
    int err = errno;
    real::close(scratch);
    errno = err;
    return rc;
  }
  XS_ROUTE(fd, ioctl(fd, req, arg));
  return real::ioctl(fd, req, arg);
}

// sendfile to an xstack socket: read the file and send it (one copy; the
// kernel's zero-copy page splicing has no equivalent here).
ssize_t sendfile(int out, int in, off_t* offset, size_t count) {
  if (is_xs(in)) return fail(EINVAL);
  if (adopted_kind(out) != FdKind::XsSocket) {
    if (kind(out) == FdKind::Orphan) return fail(EBADF);
    return real::sendfile(out, in, offset, count);
  }
  Runtime* r = rt();
  if (r == nullptr) return fail(EBADF);
  off_t pos = offset ? *offset : lseek(in, 0, SEEK_CUR);
  if (pos < 0) return -1;
  thread_local std::vector<char> buf(256 * 1024);
  size_t total = 0;
  int err = 0;
  while (total < count) {
    size_t want = std::min(buf.size(), count - total);
    ssize_t got = pread(in, buf.data(), want, pos + static_cast<off_t>(total));
    if (got < 0) {
      err = errno;
      break;
    }
    if (got == 0) break;
    ssize_t sent;
    {
      Inside g;
      sent = r->send(out, buf.data(), static_cast<size_t>(got), 0);
    }
    if (sent < 0) {
      err = errno;
      break;
    }
    total += static_cast<size_t>(sent);
    if (sent < got) break;  // the socket is full (non-blocking)
  }
  if (total == 0 && err != 0) return fail(err);
  if (offset) *offset = pos + static_cast<off_t>(total);
  else lseek(in, pos + static_cast<off_t>(total), SEEK_SET);
  return static_cast<ssize_t>(total);
}

ssize_t sendfile64(int out, int in, off_t* offset, size_t count) { return sendfile(out, in, offset, count); }

ssize_t splice(int in, loff_t* off_in, int out, loff_t* off_out, size_t len, unsigned int flags) {
  // Splicing needs a kernel socket; programs fall back to read/write on EINVAL.
  if (is_xs(in) || is_xs(out)) return fail(EINVAL);
  return real::splice(in, off_in, out, off_out, len, flags);
}

}  // extern "C"
