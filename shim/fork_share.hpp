// Sockets inherited across fork (docs/shim.md, "fork").
//
// The stack stays in the process that started it. A child reaches the
// sockets it inherited through its parent, over a channel made at fork:
//  - at the first use of an inherited TCP connection, the parent starts a
//    pump between it and an AF_UNIX stream socket and passes the other end to
//    the child, which puts it in place of the inherited number: from then on
//    the child's reads, writes, poll and epoll are the kernel's;
//  - an inherited TCP listener becomes, in the child, an AF_UNIX listener
//    shared by every child; the parent accepts on xstack and pumps each new
//    connection into it (so nginx workers can accept in parallel);
//  - a socket lives while any process holds it: the parent keeps a reference
//    for each child until the child closes its copy or exits.
// Socket options and addresses of such sockets are asked of the parent.
#pragma once
#include <sys/socket.h>

#include <string>

#include "shim/state.hpp"

namespace xs::shim::forkshare {

// pthread_atfork handlers.
void prepare();
void parent();
void child();

// In a child: turns the orphan `fd` into a proxy. Returns its new kind
// (ProxyConn, ProxyListener) or Orphan when it cannot (then EBADF).
// `shared`: a connection's proxy is the one every child that asked this way
// holds (one socket in an epoll set they share, epoll_share.hpp), not a
// proxy of its own.
FdKind adopt(int fd, bool shared = false);
// In a child: closing an orphan gives the parent's reference back.
void release(int fd);

// This process's channel to the process with the stack (-1: none): the
// shim's own descriptor, which close_range/closefrom must spare.
int channel_fd();

// On a proxy (in a child): the calls the kernel cannot answer for the xstack
// socket behind it. -1/errno like the real call.
int accept4(int fd, sockaddr* addr, socklen_t* len, int flags);
int getsockname(int fd, sockaddr* addr, socklen_t* len);
int getpeername(int fd, sockaddr* addr, socklen_t* len);
int getsockopt(int fd, int level, int name, void* val, socklen_t* len);
int setsockopt(int fd, int level, int name, const void* val, socklen_t len);
int shutdown(int fd, int how);
// A datagram proxy (an inherited UDP socket): each message on the AF_UNIX
// seqpacket socket is a DgramHeader and the datagram. These carry out the
// I/O calls on it as UDP would. -1/errno like the real call.
ssize_t dgram_recvmsg(int fd, msghdr* msg, int flags);
ssize_t dgram_sendmsg(int fd, const msghdr* msg, int flags);
int dgram_connect(int fd, const sockaddr* addr, socklen_t len);

// A proxy's number is closed or replaced: forget what we know of it.
void forget(int fd);
// On an orphan (an inherited socket not used for I/O yet): its addresses
// and file status flags, asked of the parent without adopting it. Adopting
// starts a pump that reads the socket's data for this process, so only I/O
// adopts: a process that merely looks at an inherited socket (or sets it
// non-blocking before exec) takes nothing from the one that uses it.
int orphan_names(int fd, bool peer, sockaddr* addr, socklen_t* len);
int orphan_fcntl(int fd, int cmd, long arg);
// dup of a proxy: `to` names the same proxy (its own close releases nothing).
void copy_info(int from, int to);

// exec in a child: describes the inherited sockets that survive exec (no
// close-on-exec), proxies and orphans alike, for the new image (the value of
// XSTACK_FDS; empty: nothing to pass), keeping the channel open across exec. undo_exec() puts the channel's close-on-exec back when exec failed.
std::string prepare_exec();
void undo_exec();
// In the new image, at start-up: takes the proxies and channel back.
void import_exec(const char* desc);

}  // namespace xs::shim::forkshare
