#include "shim/real.hpp"

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace xs::shim::real {

namespace {

// dlsym(RTLD_NEXT) of `name`, cached per call site. A missing symbol (an old
// libc without epoll_pwait2, say) makes the call fail with ENOSYS.
template <typename Fn>
Fn lookup(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
}

}  // namespace

#define XS_REAL(ret, name, params, args)                            \
  ret name params {                                                 \
    using Fn = ret(*) params;                                       \
    static Fn fn = lookup<Fn>(#name);                               \
    if (fn == nullptr) {                                            \
      errno = ENOSYS;                                               \
      return static_cast<ret>(-1);                                  \
    }                                                               \
    return fn args;                                                 \
  }

XS_REAL(int, socket, (int a, int b, int c), (a, b, c))
XS_REAL(int, socketpair, (int a, int b, int c, int* d), (a, b, c, d))
XS_REAL(int, bind, (int a, const sockaddr* b, socklen_t c), (a, b, c))
XS_REAL(int, listen, (int a, int b), (a, b))
XS_REAL(int, accept, (int a, sockaddr* b, socklen_t* c), (a, b, c))
XS_REAL(int, accept4, (int a, sockaddr* b, socklen_t* c, int d), (a, b, c, d))
XS_REAL(int, connect, (int a, const sockaddr* b, socklen_t c), (a, b, c))
XS_REAL(ssize_t, read, (int a, void* b, size_t c), (a, b, c))
XS_REAL(ssize_t, readv, (int a, const iovec* b, int c), (a, b, c))
XS_REAL(ssize_t, write, (int a, const void* b, size_t c), (a, b, c))
XS_REAL(ssize_t, writev, (int a, const iovec* b, int c), (a, b, c))
XS_REAL(ssize_t, send, (int a, const void* b, size_t c, int d), (a, b, c, d))
XS_REAL(ssize_t, sendto, (int a, const void* b, size_t c, int d, const sockaddr* e, socklen_t f), (a, b, c, d, e, f))
XS_REAL(ssize_t, sendmsg, (int a, const msghdr* b, int c), (a, b, c))
XS_REAL(int, sendmmsg, (int a, mmsghdr* b, unsigned int c, int d), (a, b, c, d))
XS_REAL(ssize_t, recv, (int a, void* b, size_t c, int d), (a, b, c, d))
XS_REAL(ssize_t, recvfrom, (int a, void* b, size_t c, int d, sockaddr* e, socklen_t* f), (a, b, c, d, e, f))
XS_REAL(ssize_t, recvmsg, (int a, msghdr* b, int c), (a, b, c))
XS_REAL(int, recvmmsg, (int a, mmsghdr* b, unsigned int c, int d, timespec* e), (a, b, c, d, e))
XS_REAL(int, close, (int a), (a))
XS_REAL(int, shutdown, (int a, int b), (a, b))
XS_REAL(int, getsockopt, (int a, int b, int c, void* d, socklen_t* e), (a, b, c, d, e))
XS_REAL(int, setsockopt, (int a, int b, int c, const void* d, socklen_t e), (a, b, c, d, e))
XS_REAL(int, getsockname, (int a, sockaddr* b, socklen_t* c), (a, b, c))
XS_REAL(int, getpeername, (int a, sockaddr* b, socklen_t* c), (a, b, c))
XS_REAL(int, sigaction, (int a, const struct sigaction* b, struct sigaction* c), (a, b, c))
XS_REAL(int, poll, (pollfd* a, nfds_t b, int c), (a, b, c))
XS_REAL(int, ppoll, (pollfd* a, nfds_t b, const timespec* c, const sigset_t* d), (a, b, c, d))
XS_REAL(int, select, (int a, fd_set* b, fd_set* c, fd_set* d, timeval* e), (a, b, c, d, e))
XS_REAL(int, pselect, (int a, fd_set* b, fd_set* c, fd_set* d, const timespec* e, const sigset_t* f), (a, b, c, d, e, f))
XS_REAL(int, epoll_create, (int a), (a))
XS_REAL(int, epoll_create1, (int a), (a))
XS_REAL(int, epoll_ctl, (int a, int b, int c, epoll_event* d), (a, b, c, d))
XS_REAL(int, epoll_wait, (int a, epoll_event* b, int c, int d), (a, b, c, d))
XS_REAL(int, epoll_pwait, (int a, epoll_event* b, int c, int d, const sigset_t* e), (a, b, c, d, e))
XS_REAL(int, epoll_pwait2, (int a, epoll_event* b, int c, const timespec* d, const sigset_t* e), (a, b, c, d, e))
XS_REAL(int, dup, (int a), (a))
XS_REAL(int, dup2, (int a, int b), (a, b))
XS_REAL(int, dup3, (int a, int b, int c), (a, b, c))
XS_REAL(pid_t, fork, (), ())
XS_REAL(ssize_t, sendfile, (int a, int b, off_t* c, size_t d), (a, b, c, d))
XS_REAL(ssize_t, splice, (int a, loff_t* b, int c, loff_t* d, size_t e, unsigned int f), (a, b, c, d, e, f))
XS_REAL(int, execve, (const char* a, char* const b[], char* const c[]), (a, b, c))
XS_REAL(int, execvpe, (const char* a, char* const b[], char* const c[]), (a, b, c))
XS_REAL(int, fexecve, (int a, char* const b[], char* const c[]), (a, b, c))

// Variadic in libc; the third argument is an int or a pointer, passed in a
// register either way on the ABIs we run on.
int fcntl(int fd, int cmd, long arg) {
  using Fn = int (*)(int, int, ...);
  static Fn fn = lookup<Fn>("fcntl64") ? lookup<Fn>("fcntl64") : lookup<Fn>("fcntl");
  return fn(fd, cmd, arg);
}

int ioctl(int fd, unsigned long req, void* arg) {
  using Fn = int (*)(int, unsigned long, ...);
  static Fn fn = lookup<Fn>("ioctl");
  return fn(fd, req, arg);
}

// The signal() family: SIG_ERR (not -1) when the C library lacks one.
#define XS_REAL_SIGNAL(name)                                   \
  sighandler_t name(int sig, sighandler_t h) {                 \
    using Fn = sighandler_t (*)(int, sighandler_t);            \
    static Fn fn = lookup<Fn>(#name);                          \
    if (fn == nullptr) {                                       \
      errno = ENOSYS;                                          \
      return SIG_ERR;                                          \
    }                                                          \
    return fn(sig, h);                                         \
  }
XS_REAL_SIGNAL(signal)
XS_REAL_SIGNAL(sysv_signal)
XS_REAL_SIGNAL(sigset)

}  // namespace xs::shim::real
