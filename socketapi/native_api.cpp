// The C API (socketapi/xstack.h): each xs_* call forwards to the process's
// default Runtime, created by xs_init or, at the first xs_socket /
// xs_epoll_create*, from the XSTACK_* environment variables.
#include <cerrno>
#include <cstdarg>
#include <mutex>
#include <new>

#include "socketapi/native_runtime.hpp"
#include "socketapi/xstack.h"

using xs::native::Runtime;

namespace {

std::mutex g_mu;
std::atomic<Runtime*> g_rt{nullptr};
std::unique_ptr<Runtime> g_owned;

// The runtime if the stack runs, else nullptr (calls on descriptors then fail
// with EBADF: no descriptor can be ours).
Runtime* current() { return g_rt.load(std::memory_order_acquire); }

// The runtime, starting the stack from the environment if needed.
Runtime* started() {
  if (Runtime* r = current()) return r;
  std::lock_guard<std::mutex> lk(g_mu);
  if (Runtime* r = current()) return r;
  auto rt = Runtime::create_from_env();
  if (!rt) return nullptr;  // errno set
  g_owned = std::move(rt);
  g_rt.store(g_owned.get(), std::memory_order_release);
  return g_owned.get();
}

int ebadf() {
  errno = EBADF;
  return -1;
}

}  // namespace

namespace xs::native {
Runtime* default_runtime(bool start) { return start ? started() : current(); }

void abandon_default_runtime() {
  // No lock: called in a fork child, where another thread of the parent may
  // have held g_mu at the fork; this child is single-threaded.
  g_rt.store(nullptr, std::memory_order_release);
  (void)g_owned.release();  // the parent's stack: never run, never destroyed here
  new (&g_mu) std::mutex();
}

void shutdown_default_runtime_graceful(Duration max) {
  std::lock_guard<std::mutex> lk(g_mu);
  if (!g_owned) return;
  g_rt.store(nullptr, std::memory_order_release);
  g_owned->close_all_graceful(max);
  // The process is exiting, and other threads may still be inside a call
  // (asleep in a blocking wait, or about to take the engine lock): stop the
  // progress thread but leave the memory in place, so that none of them can
  // touch a destroyed engine. Exit frees it, and closes the bpf_link.
  g_owned->engine().stop();
  (void)g_owned.release();
}

bool set_default_runtime(Runtime* rt) {
  std::lock_guard<std::mutex> lk(g_mu);
  if (g_owned) return false;
  g_rt.store(rt, std::memory_order_release);
  return true;
}
}  // namespace xs::native

#define XS_RT_OR_EBADF()         \
  Runtime* rt = current();       \
  if (rt == nullptr) return ebadf()

extern "C" {

int xs_init(const struct xs_config* cfg) {
  if (cfg == nullptr) {
    errno = EINVAL;
    return -1;
  }
  std::lock_guard<std::mutex> lk(g_mu);
  if (current() != nullptr) {
    errno = EALREADY;
    return -1;
  }
  auto rt = Runtime::create(*cfg);
  if (!rt) return -1;
  g_owned = std::move(rt);
  g_rt.store(g_owned.get(), std::memory_order_release);
  return 0;
}

void xs_shutdown_stack(void) {
  std::lock_guard<std::mutex> lk(g_mu);
  if (!g_owned) return;
  g_rt.store(nullptr, std::memory_order_release);
  g_owned->close_all();
  g_owned.reset();
}

int xs_socket(int domain, int type, int protocol) {
  Runtime* rt = started();
  if (rt == nullptr) return -1;
  return rt->socket(domain, type, protocol);
}

int xs_bind(int fd, const struct sockaddr* addr, socklen_t len) {
  XS_RT_OR_EBADF();
  return rt->bind(fd, addr, len);
}
int xs_listen(int fd, int backlog) {
  XS_RT_OR_EBADF();
  return rt->listen(fd, backlog);
}
int xs_accept(int fd, struct sockaddr* addr, socklen_t* len) {
  XS_RT_OR_EBADF();
  return rt->accept(fd, addr, len);
}
int xs_accept4(int fd, struct sockaddr* addr, socklen_t* len, int flags) {
  XS_RT_OR_EBADF();
  return rt->accept4(fd, addr, len, flags);
}
int xs_connect(int fd, const struct sockaddr* addr, socklen_t len) {
  XS_RT_OR_EBADF();
  return rt->connect(fd, addr, len);
}
ssize_t xs_send(int fd, const void* buf, size_t len, int flags) {
  XS_RT_OR_EBADF();
  return rt->send(fd, buf, len, flags);
}
ssize_t xs_recv(int fd, void* buf, size_t len, int flags) {
  XS_RT_OR_EBADF();
  return rt->recv(fd, buf, len, flags);
}
ssize_t xs_sendto(int fd, const void* buf, size_t len, int flags, const struct sockaddr* to, socklen_t tolen) {
  XS_RT_OR_EBADF();
  return rt->sendto(fd, buf, len, flags, to, tolen);
}
ssize_t xs_recvfrom(int fd, void* buf, size_t len, int flags, struct sockaddr* from, socklen_t* fromlen) {
  XS_RT_OR_EBADF();
  return rt->recvfrom(fd, buf, len, flags, from, fromlen);
}
ssize_t xs_sendmsg(int fd, const struct msghdr* msg, int flags) {
  XS_RT_OR_EBADF();
  return rt->sendmsg(fd, msg, flags);
}
ssize_t xs_recvmsg(int fd, struct msghdr* msg, int flags) {
  XS_RT_OR_EBADF();
  return rt->recvmsg(fd, msg, flags);
}
int xs_sendmmsg(int fd, struct mmsghdr* msgs, unsigned int n, int flags) {
  XS_RT_OR_EBADF();
  return rt->sendmmsg(fd, msgs, n, flags);
}
int xs_recvmmsg(int fd, struct mmsghdr* msgs, unsigned int n, int flags, struct timespec* timeout) {
  XS_RT_OR_EBADF();
  return rt->recvmmsg(fd, msgs, n, flags, timeout);
}
ssize_t xs_read(int fd, void* buf, size_t len) {
  XS_RT_OR_EBADF();
  return rt->read(fd, buf, len);
}
ssize_t xs_write(int fd, const void* buf, size_t len) {
  XS_RT_OR_EBADF();
  return rt->write(fd, buf, len);
}
ssize_t xs_readv(int fd, const struct iovec* iov, int iovcnt) {
  XS_RT_OR_EBADF();
  return rt->readv(fd, iov, iovcnt);
}
ssize_t xs_writev(int fd, const struct iovec* iov, int iovcnt) {
  XS_RT_OR_EBADF();
  return rt->writev(fd, iov, iovcnt);
}
int xs_shutdown(int fd, int how) {
  XS_RT_OR_EBADF();
  return rt->shutdown(fd, how);
}
int xs_close(int fd) {
  XS_RT_OR_EBADF();
  return rt->close(fd);
}
int xs_getsockopt(int fd, int level, int name, void* val, socklen_t* len) {
  XS_RT_OR_EBADF();
  return rt->getsockopt(fd, level, name, val, len);
}
int xs_setsockopt(int fd, int level, int name, const void* val, socklen_t len) {
  XS_RT_OR_EBADF();
  return rt->setsockopt(fd, level, name, val, len);
}
int xs_getsockname(int fd, struct sockaddr* addr, socklen_t* len) {
  XS_RT_OR_EBADF();
  return rt->getsockname(fd, addr, len);
}
int xs_getpeername(int fd, struct sockaddr* addr, socklen_t* len) {
  XS_RT_OR_EBADF();
  return rt->getpeername(fd, addr, len);
}
int xs_fcntl(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  long arg = va_arg(ap, long);
  va_end(ap);
  XS_RT_OR_EBADF();
  return rt->fcntl(fd, cmd, arg);
}
int xs_ioctl(int fd, unsigned long req, ...) {
  va_list ap;
  va_start(ap, req);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  XS_RT_OR_EBADF();
  return rt->ioctl(fd, req, arg);
}

int xs_poll(struct pollfd* fds, nfds_t n, int timeout_ms) {
  Runtime* rt = current();
  if (rt == nullptr) return ::poll(fds, n, timeout_ms);  // none can be ours
  return rt->poll(fds, n, timeout_ms);
}
int xs_epoll_create(int size) {
  Runtime* rt = started();
  if (rt == nullptr) return -1;
  return rt->epoll_create(size);
}
int xs_epoll_create1(int flags) {
  Runtime* rt = started();
  if (rt == nullptr) return -1;
  return rt->epoll_create1(flags);
}
int xs_epoll_ctl(int epfd, int op, int fd, struct epoll_event* ev) {
  XS_RT_OR_EBADF();
  return rt->epoll_ctl(epfd, op, fd, ev);
}
int xs_epoll_wait(int epfd, struct epoll_event* evs, int max, int timeout_ms) {
  XS_RT_OR_EBADF();
  return rt->epoll_wait(epfd, evs, max, timeout_ms);
}

int xs_is_xstack_fd(int fd) {
  Runtime* rt = current();
  return rt != nullptr && rt->is_xstack_fd(fd) ? 1 : 0;
}

int xs_zc_recv(int fd, struct xs_zc_iov* out, int max, int flags) {
  XS_RT_OR_EBADF();
  return rt->zc_recv(fd, out, max, flags);
}
int xs_zc_release(int fd, size_t count) {
  XS_RT_OR_EBADF();
  return rt->zc_release(fd, count);
}
ssize_t xs_zc_send_reserve(int fd, size_t len, struct xs_zc_iov out[2], int* n, int flags) {
  XS_RT_OR_EBADF();
  return rt->zc_send_reserve(fd, len, out, n, flags);
}
ssize_t xs_zc_send_commit(int fd, size_t len, int flags) {
  XS_RT_OR_EBADF();
  return rt->zc_send_commit(fd, len, flags);
}

}  // extern "C"
