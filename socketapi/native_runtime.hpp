// The native socket API's implementation: a table of xstack descriptors over
// one Engine. Each descriptor (TCP socket, UDP socket, epoll instance) holds a
// real kernel fd (an eventfd) as its number, so numbers never collide with the
// process's other descriptors. Every member mirrors one xs_* call: same
// arguments, -1 with errno set as Linux sets it.
//
// Locking: the engine mutex guards the stack and this table. Blocking calls
// wait with Engine::wait_locked, which releases it.
//
// Known deviations from Linux:
//  - Blocking waits end with EINTR on a signal in interrupt mode (restarted
//    after an SA_RESTART handler when the call has no timeout, as Linux); in
//    spin/busy-poll modes a signal does not end the wait. A descriptor closed
//    by another thread ends the wait with EBADF (Linux would keep waiting).
//  - A state change made by one application thread (close, shutdown,
//    epoll_ctl, ...) wakes the other threads' blocking waits by running one
//    engine poll, which notifies the engine's waiters.
//  - MSG_OOB (TCP urgent data) as Linux: send marks the call's last byte
//    urgent; recv(MSG_OOB) returns the byte kept aside (EINVAL / EAGAIN as
//    tcp_recv_urg), reads stop at the mark, SIOCATMARK, SO_OOBINLINE,
//    POLLPRI/EPOLLPRI. No SIGURG (there is no F_SETOWN). UDP: EOPNOTSUPP.
//  - Ancillary data (native_cmsg.hpp): recvmsg delivers IP_PKTINFO, IP_TTL,
//    IP_TOS, IP_ORIGDSTADDR and SO_TIMESTAMP* on UDP, SO_TIMESTAMP* on TCP;
//    stamps have microsecond resolution, and a TCP stamp is when in-order
//    data last arrived (Linux: the last segment read). sendmsg takes
//    IP_PKTINFO/IP_TTL/IP_TOS on UDP; UDP_SEGMENT, IP_RETOPTS and
//    SO_TIMESTAMPING cmsgs give EINVAL, an IP_PKTINFO ifindex other than
//    ours ENETUNREACH (ENODEV when no such interface). MSG_ERRQUEUE gives EAGAIN.
//  - Kernel fds cannot be added to xstack epoll instances (EPERM); xstack
//    epoll instances nest in each other as Linux's do (ELOOP on a cycle or
//    beyond 4 levels). xs_poll accepts kernel fds, looking at them every
//    millisecond while it waits. EPOLLEXCLUSIVE is accepted and wakes all.
//  - Edge-triggered epoll reports again after any wakeup of the socket (every
//    event the stack signals), like Linux's, not only on a readiness change.
//  - fcntl: only F_GETFL/F_SETFL (O_NONBLOCK)/F_GETFD/F_SETFD (EINVAL else).
//  - connect(AF_UNSPEC) on a TCP connection resets it and gives the
//    descriptor a fresh socket (options kept, an explicit bind is not).
//  - Privileged ports (< 1024) need no capability.
//  - Zero-copy calls (zc_*, docs/zerocopy.md): while received bytes are
//    lent, a consuming recv fails with EBUSY; while a send reservation is
//    open, send fails with EBUSY.
#pragma once
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstdarg>
#include <map>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "socketapi/engine.hpp"
#include "stack/tcp/tcp_socket.hpp"
#include "stack/udp/udp_socket.hpp"

struct xs_config;
struct xs_zc_iov;

namespace xs::native {

class CmsgWriter;

class Runtime {
 public:
  // Over an engine the caller owns (tests, embedders). Installs the engine's event hook.
  explicit Runtime(Engine& e);
  // Owns the engine (built from a configuration by create()).
  explicit Runtime(std::unique_ptr<Engine> owned);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Builds an engine on AF_XDP as xs_init describes; nullptr with errno set.
  static std::unique_ptr<Runtime> create(const xs_config& cfg);
  // From XSTACK_* environment variables; nullptr with errno set.
  static std::unique_ptr<Runtime> create_from_env();

  Engine& engine() { return e_; }

  int socket(int domain, int type, int protocol);
  int bind(int fd, const sockaddr* addr, socklen_t len);
  int listen(int fd, int backlog);
  int accept(int fd, sockaddr* addr, socklen_t* len) { return accept4(fd, addr, len, 0); }
  int accept4(int fd, sockaddr* addr, socklen_t* len, int flags);
  int connect(int fd, const sockaddr* addr, socklen_t len);
  ssize_t send(int fd, const void* buf, size_t len, int flags);
  ssize_t recv(int fd, void* buf, size_t len, int flags);
  ssize_t sendto(int fd, const void* buf, size_t len, int flags, const sockaddr* to, socklen_t tolen);
  ssize_t recvfrom(int fd, void* buf, size_t len, int flags, sockaddr* from, socklen_t* fromlen);
  ssize_t sendmsg(int fd, const msghdr* msg, int flags);
  ssize_t recvmsg(int fd, msghdr* msg, int flags);
  int sendmmsg(int fd, mmsghdr* msgs, unsigned int n, int flags);
  int recvmmsg(int fd, mmsghdr* msgs, unsigned int n, int flags, timespec* timeout);
  ssize_t read(int fd, void* buf, size_t len);
  ssize_t write(int fd, const void* buf, size_t len);
  ssize_t readv(int fd, const iovec* iov, int iovcnt);
  ssize_t writev(int fd, const iovec* iov, int iovcnt);
  int shutdown(int fd, int how);
  int close(int fd);
  int getsockopt(int fd, int level, int name, void* val, socklen_t* len);
  int setsockopt(int fd, int level, int name, const void* val, socklen_t len);
  int getsockname(int fd, sockaddr* addr, socklen_t* len);
  int getpeername(int fd, sockaddr* addr, socklen_t* len);
  int fcntl(int fd, int cmd, long arg);
  int ioctl(int fd, unsigned long req, void* arg);

  int poll(pollfd* fds, nfds_t n, int timeout_ms);
  int epoll_create(int size);
  int epoll_create1(int flags);
  // An epoll instance for the caller's own use (the shim's companions),
  // numbered above the program's descriptors (socketapi/private_fd.hpp).
  int epoll_create_private();
  int epoll_ctl(int epfd, int op, int fd, epoll_event* ev);
  int epoll_wait(int epfd, epoll_event* evs, int max, int timeout_ms);

  // Zero-copy calls (native_zerocopy.cpp, docs/zerocopy.md).
  int zc_recv(int fd, xs_zc_iov* out, int max, int flags);
  int zc_release(int fd, size_t count);
  ssize_t zc_send_reserve(int fd, size_t len, xs_zc_iov* out, int* n, int flags);
  ssize_t zc_send_commit(int fd, size_t len, int flags);

  bool is_xstack_fd(int fd);
  // Closes every descriptor (connections are reset).
  void close_all();

  // ---- for the LD_PRELOAD shim (shim/) ------------------------------------
  // Wake mode for an xstack epoll instance: its descriptor (an eventfd)
  // becomes readable when a registered socket signals an event, so that a
  // kernel epoll/poll can sleep on it beside kernel descriptors.
  int epoll_set_wake(int epfd);
  // The start of a shim wait on `epfd`, under one lock: drains its eventfd
  // (re-arming the wake) before events are collected, then one engine loop
  // iteration on the calling thread. An event loop coming back to wait has
  // finished its batch: what it sent (deferred by tx_defer, EngineConfig)
  // leaves now in one kick, and frames that arrived meanwhile are processed
  // here, so a busy loop keeps the progress thread resting (Engine). An
  // empty RX ring costs a few loads.
  void wait_begin(int epfd);
  // Drains it, then writes it again if an event is ready now: for an epoll
  // instance nested in another or polled, whose readiness is that eventfd's.
  void epoll_refresh_wake(int epfd);
  // `newfd` (a kernel dup of `fd`) names the same socket from now on; the
  // socket closes when its last name does.
  int dup_alias(int fd, int newfd);
  // Drops the socket behind `fd` (fresh: no connection to reset) without
  // closing the kernel descriptor, which the caller has replaced.
  int forget(int fd);
  // A TCP/UDP socket with no local address and no peer yet.
  bool is_fresh(int fd);
  // SOCK_STREAM, SOCK_DGRAM, 0 for an epoll instance, -1 when not ours.
  int kind_of(int fd);
  // AF_INET or AF_INET6 (a socket made as AF_INET6), -1 when not a socket of ours.
  int domain_of(int fd);
  // Whether a socket of fd's type here would take traffic sent to `dst`:port
  // through the stack's loopback (a TCP listener, or a bound UDP socket, on
  // that port with the wildcard or that address).
  bool serves_locally(int fd, Ipv4Addr dst, uint16_t port);
  // Sends frames the engine deferred (EngineConfig::tx_defer) without waiting
  // for the engine lock (from _exit, which may run in a signal handler):
  // false when the lock was busy.
  bool try_flush_deferred();
  // The packet device's descriptors: readable when frames wait (interrupt
  // mode). A waiter that sleeps on them too can run the stack itself instead
  // of waiting for the progress thread to do it and wake it.
  std::vector<int> device_fds();
  PollMode mode() const { return e_.config().poll_mode; }
  // At process exit: closes every descriptor as close() would (FIN, or RST
  // with unread data), then runs the engine until those connections have
  // delivered what they held or `max` has passed.
  void close_all_graceful(Duration max);

  struct Obj;

 private:
  void poll_once_locked();
  std::shared_ptr<Obj> lookup_locked(int fd);
  // errno for an fd that is not a socket of ours: EBADF or ENOTSOCK.
  int bad_fd_errno(int fd);
  int install_locked(std::shared_ptr<Obj> o);
  int epoll_create_numbered(int flags, bool high);
  void on_event(void* cookie);
  // A readiness event on `o`: bumps its gen, and that of every epoll
  // instance watching it (nested instances included), writing wake fds.
  void signal_locked(Obj& o, int depth);
  // Epoll nesting (Linux's ep_loop_check): levels of epoll instances below
  // `ep` (-1 if `forbidden` is among them: a cycle), and above it.
  static constexpr int kMaxEpollNests = 4;
  int nest_depth_locked(Obj& ep, const Obj* forbidden, int level);
  int nest_height_locked(Obj& ep, int level);
  void detach_locked(Obj& o);
  bool claim_and_bind_locked(Obj& o, Endpoint ep, int* err);
  bool autobind_locked(Obj& o, int* err);
  // Ancillary data (native_cmsg.hpp): sendmsg's msghdr `ctl` for its
  // control data; recvmsg's cmsgs are written through `cmsgs`.
  ssize_t do_send(int fd, const iovec* iov, size_t iovcnt, int flags, const sockaddr* to, socklen_t tolen,
                  const msghdr* ctl = nullptr);
  ssize_t do_recv(int fd, const iovec* iov, size_t iovcnt, int flags, sockaddr* from, socklen_t* fromlen,
                  int* msg_flags, CmsgWriter* cmsgs = nullptr);
  uint32_t readiness_locked(Obj& o);
  // Puts registration `fd` of epoll instance `ep` on its ready list.
  void enqueue_locked(Obj& ep, int fd);
  void async_notify_locked(Obj& o);
  void send_owner_signal(const Obj& o, int sig, uint32_t band);
  int set_owner_locked(Obj& o, int type, int pid);
  // Removes registration `fd` from epoll instance `ep` and its ready list.
  void drop_reg_locked(Obj& ep, int fd);
  // *lt_reported: a level-triggered registration was reported (it stays ready).
  int epoll_collect_locked(Obj& ep, epoll_event* evs, int max, bool consume, bool* lt_reported = nullptr);
  // Engine::wait_locked, counted so that local state changes can wake waiters.
  // Socket calls wait Restartable (EINTR unless SA_RESTART and no timeout);
  // poll/epoll_wait Interruptible (always EINTR), as Linux.
  WaitStatus wait_locked(std::unique_lock<std::mutex>& lk, FunctionRef<bool()> pred, Instant deadline,
                         WaitKind kind = WaitKind::Restartable);
  // After a call that may have made something ready for another thread's
  // blocked call (close, shutdown, epoll_ctl...): wake the engine's waiters.
  void kick_locked();
  // After EPOLL_CTL_ADD/MOD on `ep`: when that leaves an event to report,
  // wake a thread asleep on the instance's wake descriptor (the shim's
  // kernel-side sleep) and the epolls that nest it, as Linux's ep_insert
  // and ep_modify wake the waiters of a set that gains a ready entry.
  void wake_if_ready_locked(Obj& ep);
  // Wake mode: makes the instance's descriptor readable, once until the
  // next wait_begin drains it.
  void write_wake_locked(Obj& ep);

  std::unique_ptr<Engine> owned_;
  Engine& e_;
  std::vector<std::shared_ptr<Obj>> table_;  // indexed by fd
  std::unordered_set<const void*> live_;     // cookies of our sockets (event hook)
  int blocked_ = 0;                          // threads inside wait_locked
};

// Makes `rt` (not owned; nullptr: none) the runtime the xs_* C functions
// use, as if xs_init had started it. For tests and embedders that build their
// own Engine. False (nothing changed) when xs_init or the environment already
// started a stack. Not for use while calls are in flight.
bool set_default_runtime(Runtime* rt);

// The runtime the xs_* C functions use; with `start`, started from the
// XSTACK_* environment if none runs yet (nullptr with errno set on failure).
Runtime* default_runtime(bool start);
// The tx_defer (EngineConfig) of runtimes created after this call when
// XSTACK_TX_DEFER_USECS is not set. The shim sets 100 us.
void set_default_tx_defer(Duration d);
// In a fork child: forget the parent's runtime without touching it (its
// rings and progress thread belong to the parent).
void abandon_default_runtime();
// At process exit: close_all_graceful, then stop and free the stack.
void shutdown_default_runtime_graceful(Duration max);

}  // namespace xs::native
