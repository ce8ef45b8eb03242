/* xstack native socket API (C). One call per BSD socket call, same arguments,
 * same return values, errno set exactly as Linux sets it for the same call.
 * Descriptors returned by xs_socket/xs_accept4/xs_epoll_create1 are real
 * kernel file descriptors (each xstack object holds one, so numbers never
 * collide with the process's other fds), but they are only meaningful to
 * xs_* calls.
 *
 * The stack starts at the first call (or xs_init): it runs on one interface
 * over AF_XDP, configured by xs_init or by environment variables
 *   XSTACK_IF      interface name (required)
 *   XSTACK_ADDR    A.B.C.D/LEN: the stack's address
 *   XSTACK_GW      default gateway (optional)
 *   XSTACK_MODE    interrupt (default) | spin | busy-poll
 *   XSTACK_QUEUES  RX queues (default 1)
 *   XSTACK_SHARED_IP  1: the address is the kernel's own (shared-IP mode)
 * Only AF_INET with SOCK_STREAM (IPPROTO_TCP) and SOCK_DGRAM (IPPROTO_UDP)
 * are supported; other families/types fail with EAFNOSUPPORT / EPROTONOSUPPORT
 * (the shim hands those to the kernel). */
#ifndef XSTACK_XSTACK_H
#define XSTACK_XSTACK_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <netinet/in.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

struct xs_config {
  const char* ifname;     /* required */
  const char* addr_cidr;  /* "198.18.0.3/24", required */
  const char* gateway;    /* NULL: none */
  const char* mode;       /* "interrupt", "spin", "busy-poll"; NULL: interrupt */
  unsigned queues;        /* 0: 1 */
  int shared_ip;          /* nonzero: shared-IP mode */
};

/* Starts the stack with this configuration. 0, or -1 with errno (EALREADY if
 * already started, EINVAL for a bad configuration, ENODEV/EPERM from AF_XDP). */
int xs_init(const struct xs_config* cfg);
/* Stops the stack: every socket is reset, the XDP program detached. */
void xs_shutdown_stack(void);

int xs_socket(int domain, int type, int protocol); /* SOCK_NONBLOCK, SOCK_CLOEXEC accepted */
int xs_bind(int fd, const struct sockaddr* addr, socklen_t len);
int xs_listen(int fd, int backlog);
int xs_accept(int fd, struct sockaddr* addr, socklen_t* len);
int xs_accept4(int fd, struct sockaddr* addr, socklen_t* len, int flags);
int xs_connect(int fd, const struct sockaddr* addr, socklen_t len);
ssize_t xs_send(int fd, const void* buf, size_t len, int flags);
ssize_t xs_recv(int fd, void* buf, size_t len, int flags);
ssize_t xs_sendto(int fd, const void* buf, size_t len, int flags, const struct sockaddr* to, socklen_t tolen);
ssize_t xs_recvfrom(int fd, void* buf, size_t len, int flags, struct sockaddr* from, socklen_t* fromlen);
ssize_t xs_sendmsg(int fd, const struct msghdr* msg, int flags);
ssize_t xs_recvmsg(int fd, struct msghdr* msg, int flags);
int xs_sendmmsg(int fd, struct mmsghdr* msgs, unsigned int n, int flags);
int xs_recvmmsg(int fd, struct mmsghdr* msgs, unsigned int n, int flags, struct timespec* timeout);
ssize_t xs_read(int fd, void* buf, size_t len);
ssize_t xs_write(int fd, const void* buf, size_t len);
ssize_t xs_readv(int fd, const struct iovec* iov, int iovcnt);
ssize_t xs_writev(int fd, const struct iovec* iov, int iovcnt);
int xs_shutdown(int fd, int how);
int xs_close(int fd);
int xs_getsockopt(int fd, int level, int name, void* val, socklen_t* len);
int xs_setsockopt(int fd, int level, int name, const void* val, socklen_t len);
int xs_getsockname(int fd, struct sockaddr* addr, socklen_t* len);
int xs_getpeername(int fd, struct sockaddr* addr, socklen_t* len);
int xs_fcntl(int fd, int cmd, ... /* int arg */);  /* F_GETFL, F_SETFL (O_NONBLOCK), F_GETFD, F_SETFD */
int xs_ioctl(int fd, unsigned long req, ... /* int* arg */); /* FIONREAD, FIONBIO, SIOCOUTQ, SIOCOUTQNSD, SIOCATMARK */

/* Readiness, as Linux reports it for the same socket state. */
int xs_poll(struct pollfd* fds, nfds_t n, int timeout_ms);
int xs_epoll_create(int size);
int xs_epoll_create1(int flags);
int xs_epoll_ctl(int epfd, int op, int fd, struct epoll_event* ev);
int xs_epoll_wait(int epfd, struct epoll_event* evs, int max, int timeout_ms);

/* True when fd is an xstack socket or epoll instance. */
int xs_is_xstack_fd(int fd);

/* ---- xstack's own socket options (xs_setsockopt/xs_getsockopt) ----------
 * A level no Linux protocol uses, so the kernel answers ENOPROTOOPT for it. */
#define XS_SOL_XSTACK 0x5853
/* int, TCP and UDP: keep received payloads in the frames they arrived in
 * (the device's UMEM) instead of copying them into the socket's receive
 * queue; xs_zc_recv then lends those frames themselves, and xs_recv copies
 * once, from the frame. Accepted sockets inherit it; XSTACK_ZC_RX_FRAMES=1
 * turns it on for every new socket. Frames the device
 * cannot spare (XSTACK_ZC_LEND_FRAMES per queue) are copied as usual. */
#define XS_ZC_RX_FRAMES 1

/* ---- zero-copy calls (docs/zerocopy.md) ---------------------------------
 * A view of bytes in the stack's own socket buffers. */
struct xs_zc_iov {
  void* base;
  size_t len;
  struct sockaddr_in from; /* xs_zc_recv on UDP: the datagram's source; else zeroed */
};

/* Receives without copying into an application buffer: fills up to `max`
 * views of received data in place in the socket's receive queue and lends
 * them to the caller until xs_zc_release. TCP: the oldest readable bytes not
 * yet lent, one view per frame they stayed in (XS_ZC_RX_FRAMES), then one
 * view of the receive ring, or two where it wraps (up to `max` views, at
 * most 64 per call); UDP: one datagram per
 * view, oldest first. Returns the number of views; 0 is end of stream (TCP).
 * Lent bytes keep occupying the receive buffer: the TCP window reopens (and a
 * UDP socket admits more datagrams) only as they are released. Blocking,
 * MSG_DONTWAIT, SO_RCVTIMEO, SO_RCVLOWAT (TCP), EAGAIN, EINTR, and pending
 * errors as xs_recv. While anything is lent, a consuming xs_recv/xs_read on
 * the socket fails with EBUSY (MSG_PEEK works). */
int xs_zc_recv(int fd, struct xs_zc_iov* out, int max, int flags);
/* Gives back the oldest `count` lent units: bytes on TCP (any split, in
 * order), datagrams on UDP. The views covering them become invalid. EINVAL
 * when fewer are lent. Closing the socket releases everything. */
int xs_zc_release(int fd, size_t count);
/* Reserves up to `len` bytes of TCP send-buffer space as one or two writable
 * views (two where the buffer wraps) written to out[0], out[1]; *n = views.
 * Returns the bytes reserved (>= 1; fewer than len when the buffer has less
 * room), blocking while it has none as xs_send would (MSG_DONTWAIT,
 * SO_SNDTIMEO, EAGAIN, EINTR, EPIPE/SIGPIPE unless MSG_NOSIGNAL). A new
 * reservation replaces an open one. While a reservation is open, xs_send and
 * friends fail with EBUSY. UDP: EOPNOTSUPP. */
ssize_t xs_zc_send_reserve(int fd, size_t len, struct xs_zc_iov out[2], int* n, int flags);
/* Queues the first `len` reserved bytes for transmission exactly as xs_send
 * would queue them (Nagle, TCP_NODELAY, TCP_CORK, MSG_MORE; MSG_NOSIGNAL) and
 * ends the reservation (the rest is dropped; len 0 cancels it). Returns len.
 * EINVAL when len exceeds the reservation (it stays open); EPIPE (SIGPIPE),
 * ECONNRESET, ... when the connection failed meanwhile. */
ssize_t xs_zc_send_commit(int fd, size_t len, int flags);

#ifdef __cplusplus
}
#endif

#endif /* XSTACK_XSTACK_H */
