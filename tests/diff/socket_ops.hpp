// The socket-call interface the differential tests are written against. Each
// case body calls only through a SocketOps, so the same body runs once on
// kernel sockets (KernelOps: libc) and once on xstack (XstackOps: xs_* from
// socketapi/xstack.h). Every call has the libc signature and errno contract.
#pragma once

#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <string>
#include <vector>

namespace xsdiff {

struct SocketOps {
  virtual ~SocketOps() = default;
  virtual const char* name() const = 0;

  virtual int socket(int domain, int type, int protocol) = 0;
  virtual int bind(int fd, const sockaddr* addr, socklen_t len) = 0;
  virtual int listen(int fd, int backlog) = 0;
  virtual int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) = 0;
  virtual int connect(int fd, const sockaddr* addr, socklen_t len) = 0;
  virtual ssize_t send(int fd, const void* buf, size_t len, int flags) = 0;
  virtual ssize_t recv(int fd, void* buf, size_t len, int flags) = 0;
  virtual ssize_t sendto(int fd, const void* buf, size_t len, int flags, const sockaddr* to, socklen_t tolen) = 0;
  virtual ssize_t recvfrom(int fd, void* buf, size_t len, int flags, sockaddr* from, socklen_t* fromlen) = 0;
  virtual ssize_t sendmsg(int fd, const msghdr* msg, int flags) = 0;
  virtual ssize_t recvmsg(int fd, msghdr* msg, int flags) = 0;
  virtual int sendmmsg(int fd, mmsghdr* msgs, unsigned int n, int flags) = 0;
  virtual int recvmmsg(int fd, mmsghdr* msgs, unsigned int n, int flags, timespec* timeout) = 0;
  virtual int shutdown(int fd, int how) = 0;
  virtual int close(int fd) = 0;
  virtual int getsockopt(int fd, int level, int name, void* val, socklen_t* len) = 0;
  virtual int setsockopt(int fd, int level, int name, const void* val, socklen_t len) = 0;
  virtual int getsockname(int fd, sockaddr* addr, socklen_t* len) = 0;
  virtual int getpeername(int fd, sockaddr* addr, socklen_t* len) = 0;
  virtual int fcntl(int fd, int cmd,
                    int arg) = 0;  // F_GETFL/F_SETFL/F_GETFD/F_SETFD
  virtual int ioctl(int fd, unsigned long req,
                    int* arg) = 0;  // FIONREAD, FIONBIO, SIOCOUTQ, ...
  virtual int poll(pollfd* fds, nfds_t n, int timeout_ms) = 0;
  virtual int epoll_create1(int flags) = 0;
  virtual int epoll_ctl(int epfd, int op, int fd, epoll_event* ev) = 0;
  virtual int epoll_wait(int epfd, epoll_event* evs, int max, int timeout_ms) = 0;
};

// libc: the kernel's sockets.
struct KernelOps final : SocketOps {
  const char* name() const override { return "kernel"; }
  int socket(int domain, int type, int protocol) override;
  int bind(int fd, const sockaddr* addr, socklen_t len) override;
  int listen(int fd, int backlog) override;
  int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) override;
  int connect(int fd, const sockaddr* addr, socklen_t len) override;
  ssize_t send(int fd, const void* buf, size_t len, int flags) override;
  ssize_t recv(int fd, void* buf, size_t len, int flags) override;
  ssize_t sendto(int fd, const void* buf, size_t len, int flags, const sockaddr* to, socklen_t tolen) override;
  ssize_t recvfrom(int fd, void* buf, size_t len, int flags, sockaddr* from, socklen_t* fromlen) override;
  ssize_t sendmsg(int fd, const msghdr* msg, int flags) override;
  ssize_t recvmsg(int fd, msghdr* msg, int flags) override;
  int sendmmsg(int fd, mmsghdr* msgs, unsigned int n, int flags) override;
  int recvmmsg(int fd, mmsghdr* msgs, unsigned int n, int flags, timespec* timeout) override;
  int shutdown(int fd, int how) override;
  int close(int fd) override;
  int getsockopt(int fd, int level, int name, void* val, socklen_t* len) override;
  int setsockopt(int fd, int level, int name, const void* val, socklen_t len) override;
  int getsockname(int fd, sockaddr* addr, socklen_t* len) override;
  int getpeername(int fd, sockaddr* addr, socklen_t* len) override;
  int fcntl(int fd, int cmd, int arg) override;
  int ioctl(int fd, unsigned long req, int* arg) override;
  int poll(pollfd* fds, nfds_t n, int timeout_ms) override;
  int epoll_create1(int flags) override;
  int epoll_ctl(int epfd, int op, int fd, epoll_event* ev) override;
  int epoll_wait(int epfd, epoll_event* evs, int max, int timeout_ms) override;
};

// xs_*: the xstack native API. The xs_* symbols are referenced weakly, so this
// builds while socketapi/ does not define them yet; missing() names the ones
// the linked library lacks (the xstack run then reports "not implemented").
struct XstackOps final : SocketOps {
  const char* name() const override { return "xstack"; }
  // xs_* functions this run needs that the linked library does not define.
  static std::vector<std::string> missing();
  // xs_init(ifname, addr_cidr); 0 or -1 with errno (ENOSYS if not linked).
  static int init(const char* ifname, const char* addr_cidr);
  static void shutdown_stack();

  int socket(int domain, int type, int protocol) override;
  int bind(int fd, const sockaddr* addr, socklen_t len) override;
  int listen(int fd, int backlog) override;
  int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) override;
  int connect(int fd, const sockaddr* addr, socklen_t len) override;
  ssize_t send(int fd, const void* buf, size_t len, int flags) override;
  ssize_t recv(int fd, void* buf, size_t len, int flags) override;
  ssize_t sendto(int fd, const void* buf, size_t len, int flags, const sockaddr* to, socklen_t tolen) override;
  ssize_t recvfrom(int fd, void* buf, size_t len, int flags, sockaddr* from, socklen_t* fromlen) override;
  ssize_t sendmsg(int fd, const msghdr* msg, int flags) override;
  ssize_t recvmsg(int fd, msghdr* msg, int flags) override;
  int sendmmsg(int fd, mmsghdr* msgs, unsigned int n, int flags) override;
  int recvmmsg(int fd, mmsghdr* msgs, unsigned int n, int flags, timespec* timeout) override;
  int shutdown(int fd, int how) override;
  int close(int fd) override;
  int getsockopt(int fd, int level, int name, void* val, socklen_t* len) override;
  int setsockopt(int fd, int level, int name, const void* val, socklen_t len) override;
  int getsockname(int fd, sockaddr* addr, socklen_t* len) override;
  int getpeername(int fd, sockaddr* addr, socklen_t* len) override;
  int fcntl(int fd, int cmd, int arg) override;
  int ioctl(int fd, unsigned long req, int* arg) override;
  int poll(pollfd* fds, nfds_t n, int timeout_ms) override;
  int epoll_create1(int flags) override;
  int epoll_ctl(int epfd, int op, int fd, epoll_event* ev) override;
  int epoll_wait(int epfd, epoll_event* evs, int max, int timeout_ms) override;
};

}  // namespace xsdiff
