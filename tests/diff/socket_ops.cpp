#include "tests/diff/socket_ops.hpp"

#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "socketapi/xstack.h"

// Weak references: a library without an xs_* definition leaves the symbol
// null instead of failing the link (the test binary links xs_socketapi as a
// whole archive so that defined ones are always found).
#pragma weak xs_init
#pragma weak xs_shutdown_stack
#pragma weak xs_socket
#pragma weak xs_bind
#pragma weak xs_listen
#pragma weak xs_accept4
#pragma weak xs_connect
#pragma weak xs_send
#pragma weak xs_recv
#pragma weak xs_sendto
#pragma weak xs_recvfrom
#pragma weak xs_sendmsg
#pragma weak xs_recvmsg
#pragma weak xs_sendmmsg
#pragma weak xs_recvmmsg
#pragma weak xs_shutdown
#pragma weak xs_close
#pragma weak xs_getsockopt
#pragma weak xs_setsockopt
#pragma weak xs_getsockname
#pragma weak xs_getpeername
#pragma weak xs_fcntl
#pragma weak xs_ioctl
#pragma weak xs_poll
#pragma weak xs_epoll_create1
#pragma weak xs_epoll_ctl
#pragma weak xs_epoll_wait

namespace xsdiff {

// ---- kernel -----------------------------------------------------------------
int KernelOps::socket(int d, int t, int p) { return ::socket(d, t, p); }
int KernelOps::bind(int fd, const sockaddr* a, socklen_t l) { return ::bind(fd, a, l); }
int KernelOps::listen(int fd, int b) { return ::listen(fd, b); }
int KernelOps::accept4(int fd, sockaddr* a, socklen_t* l, int f) { return ::accept4(fd, a, l, f); }
int KernelOps::connect(int fd, const sockaddr* a, socklen_t l) { return ::connect(fd, a, l); }
ssize_t KernelOps::send(int fd, const void* b, size_t n, int f) { return ::send(fd, b, n, f); }
ssize_t KernelOps::recv(int fd, void* b, size_t n, int f) { return ::recv(fd, b, n, f); }
ssize_t KernelOps::sendto(int fd, const void* b, size_t n, int f, const sockaddr* to, socklen_t tl) {
  return ::sendto(fd, b, n, f, to, tl);
}
ssize_t KernelOps::recvfrom(int fd, void* b, size_t n, int f, sockaddr* from, socklen_t* fl) {
  return ::recvfrom(fd, b, n, f, from, fl);
}
ssize_t KernelOps::sendmsg(int fd, const msghdr* m, int f) { return ::sendmsg(fd, m, f); }
ssize_t KernelOps::recvmsg(int fd, msghdr* m, int f) { return ::recvmsg(fd, m, f); }
int KernelOps::sendmmsg(int fd, mmsghdr* m, unsigned int n, int f) { return ::sendmmsg(fd, m, n, f); }
int KernelOps::recvmmsg(int fd, mmsghdr* m, unsigned int n, int f, timespec* t) { return ::recvmmsg(fd, m, n, f, t); }
int KernelOps::shutdown(int fd, int how) { return ::shutdown(fd, how); }
int KernelOps::close(int fd) { return ::close(fd); }
int KernelOps::getsockopt(int fd, int lv, int nm, void* v, socklen_t* l) { return ::getsockopt(fd, lv, nm, v, l); }
int KernelOps::setsockopt(int fd, int lv, int nm, const void* v, socklen_t l) { return ::setsockopt(fd, lv, nm, v, l); }
int KernelOps::getsockname(int fd, sockaddr* a, socklen_t* l) { return ::getsockname(fd, a, l); }
int KernelOps::getpeername(int fd, sockaddr* a, socklen_t* l) { return ::getpeername(fd, a, l); }
int KernelOps::fcntl(int fd, int cmd, int arg) { return ::fcntl(fd, cmd, arg); }
int KernelOps::ioctl(int fd, unsigned long req, int* arg) { return ::ioctl(fd, req, arg); }
int KernelOps::poll(pollfd* fds, nfds_t n, int t) { return ::poll(fds, n, t); }
int KernelOps::epoll_create1(int f) { return ::epoll_create1(f); }
int KernelOps::epoll_ctl(int ep, int op, int fd, epoll_event* ev) { return ::epoll_ctl(ep, op, fd, ev); }
int KernelOps::epoll_wait(int ep, epoll_event* evs, int max, int t) { return ::epoll_wait(ep, evs, max, t); }

// ---- xstack -----------------------------------------------------------------
#define XS_DIFF_CALL(fn, ...) \
  do {                        \
    if (&fn == nullptr) {     \
      errno = ENOSYS;         \
      return -1;              \
    }                         \
    return fn(__VA_ARGS__);   \
  } while (0)

std::vector<std::string> XstackOps::missing() {
  std::vector<std::string> out;
#define XS_DIFF_NEED(fn) \
  if (&fn == nullptr) out.push_back(#fn);
  XS_DIFF_NEED(xs_init)
  XS_DIFF_NEED(xs_shutdown_stack)
  XS_DIFF_NEED(xs_socket)
  XS_DIFF_NEED(xs_bind)
  XS_DIFF_NEED(xs_listen)
  XS_DIFF_NEED(xs_accept4)
  XS_DIFF_NEED(xs_connect)
  XS_DIFF_NEED(xs_send)
  XS_DIFF_NEED(xs_recv)
  XS_DIFF_NEED(xs_sendto)
  XS_DIFF_NEED(xs_recvfrom)
  XS_DIFF_NEED(xs_sendmsg)
  XS_DIFF_NEED(xs_recvmsg)
  XS_DIFF_NEED(xs_sendmmsg)
  XS_DIFF_NEED(xs_recvmmsg)
  XS_DIFF_NEED(xs_shutdown)
  XS_DIFF_NEED(xs_close)
  XS_DIFF_NEED(xs_getsockopt)
  XS_DIFF_NEED(xs_setsockopt)
  XS_DIFF_NEED(xs_getsockname)
  XS_DIFF_NEED(xs_getpeername)
  XS_DIFF_NEED(xs_fcntl)
  XS_DIFF_NEED(xs_ioctl)
  XS_DIFF_NEED(xs_poll)
  XS_DIFF_NEED(xs_epoll_create1)
  XS_DIFF_NEED(xs_epoll_ctl)
  XS_DIFF_NEED(xs_epoll_wait)
#undef XS_DIFF_NEED
  return out;
}

int XstackOps::init(const char* ifname, const char* addr_cidr) {
  xs_config cfg{};
  cfg.ifname = ifname;
  cfg.addr_cidr = addr_cidr;
  XS_DIFF_CALL(xs_init, &cfg);
}

void XstackOps::shutdown_stack() {
  if (&xs_shutdown_stack != nullptr) xs_shutdown_stack();
}

int XstackOps::socket(int d, int t, int p) { XS_DIFF_CALL(xs_socket, d, t, p); }
int XstackOps::bind(int fd, const sockaddr* a, socklen_t l) { XS_DIFF_CALL(xs_bind, fd, a, l); }
int XstackOps::listen(int fd, int b) { XS_DIFF_CALL(xs_listen, fd, b); }
int XstackOps::accept4(int fd, sockaddr* a, socklen_t* l, int f) { XS_DIFF_CALL(xs_accept4, fd, a, l, f); }
int XstackOps::connect(int fd, const sockaddr* a, socklen_t l) { XS_DIFF_CALL(xs_connect, fd, a, l); }
ssize_t XstackOps::send(int fd, const void* b, size_t n, int f) { XS_DIFF_CALL(xs_send, fd, b, n, f); }
ssize_t XstackOps::recv(int fd, void* b, size_t n, int f) { XS_DIFF_CALL(xs_recv, fd, b, n, f); }
ssize_t XstackOps::sendto(int fd, const void* b, size_t n, int f, const sockaddr* to, socklen_t tl) {
  XS_DIFF_CALL(xs_sendto, fd, b, n, f, to, tl);
}
ssize_t XstackOps::recvfrom(int fd, void* b, size_t n, int f, sockaddr* from, socklen_t* fl) {
  XS_DIFF_CALL(xs_recvfrom, fd, b, n, f, from, fl);
}
ssize_t XstackOps::sendmsg(int fd, const msghdr* m, int f) { XS_DIFF_CALL(xs_sendmsg, fd, m, f); }
ssize_t XstackOps::recvmsg(int fd, msghdr* m, int f) { XS_DIFF_CALL(xs_recvmsg, fd, m, f); }
int XstackOps::sendmmsg(int fd, mmsghdr* m, unsigned int n, int f) { XS_DIFF_CALL(xs_sendmmsg, fd, m, n, f); }
int XstackOps::recvmmsg(int fd, mmsghdr* m, unsigned int n, int f, timespec* t) {
  XS_DIFF_CALL(xs_recvmmsg, fd, m, n, f, t);
}
int XstackOps::shutdown(int fd, int how) { XS_DIFF_CALL(xs_shutdown, fd, how); }
int XstackOps::close(int fd) { XS_DIFF_CALL(xs_close, fd); }
int XstackOps::getsockopt(int fd, int lv, int nm, void* v, socklen_t* l) {
  XS_DIFF_CALL(xs_getsockopt, fd, lv, nm, v, l);
}
int XstackOps::setsockopt(int fd, int lv, int nm, const void* v, socklen_t l) {
  XS_DIFF_CALL(xs_setsockopt, fd, lv, nm, v, l);
}
int XstackOps::getsockname(int fd, sockaddr* a, socklen_t* l) { XS_DIFF_CALL(xs_getsockname, fd, a, l); }
int XstackOps::getpeername(int fd, sockaddr* a, socklen_t* l) { XS_DIFF_CALL(xs_getpeername, fd, a, l); }
int XstackOps::fcntl(int fd, int cmd, int arg) { XS_DIFF_CALL(xs_fcntl, fd, cmd, arg); }
int XstackOps::ioctl(int fd, unsigned long req, int* arg) { XS_DIFF_CALL(xs_ioctl, fd, req, arg); }
int XstackOps::poll(pollfd* fds, nfds_t n, int t) { XS_DIFF_CALL(xs_poll, fds, n, t); }
int XstackOps::epoll_create1(int f) { XS_DIFF_CALL(xs_epoll_create1, f); }
int XstackOps::epoll_ctl(int ep, int op, int fd, epoll_event* ev) { XS_DIFF_CALL(xs_epoll_ctl, ep, op, fd, ev); }
int XstackOps::epoll_wait(int ep, epoll_event* evs, int max, int t) { XS_DIFF_CALL(xs_epoll_wait, ep, evs, max, t); }

#undef XS_DIFF_CALL

}  // namespace xsdiff
