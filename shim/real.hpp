// The C library's own versions of the calls the shim interposes, looked up
// once with dlsym(RTLD_NEXT). Every shim path that is not for an xstack
// descriptor ends in one of these.
#pragma once
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

namespace xs::shim::real {

int socket(int, int, int);
int socketpair(int, int, int, int*);
int bind(int, const sockaddr*, socklen_t);
int listen(int, int);
int accept(int, sockaddr*, socklen_t*);
int accept4(int, sockaddr*, socklen_t*, int);
int connect(int, const sockaddr*, socklen_t);
ssize_t read(int, void*, size_t);
ssize_t readv(int, const iovec*, int);
ssize_t write(int, const void*, size_t);
ssize_t writev(int, const iovec*, int);
ssize_t send(int, const void*, size_t, int);
ssize_t sendto(int, const void*, size_t, int, const sockaddr*, socklen_t);
ssize_t sendmsg(int, const msghdr*, int);
int sendmmsg(int, mmsghdr*, unsigned int, int);
ssize_t recv(int, void*, size_t, int);
ssize_t recvfrom(int, void*, size_t, int, sockaddr*, socklen_t*);
ssize_t recvmsg(int, msghdr*, int);
int recvmmsg(int, mmsghdr*, unsigned int, int, timespec*);
int close(int);
int shutdown(int, int);
int getsockopt(int, int, int, void*, socklen_t*);
int setsockopt(int, int, int, const void*, socklen_t);
int getsockname(int, sockaddr*, socklen_t*);
int getpeername(int, sockaddr*, socklen_t*);
int fcntl(int, int, long);
int ioctl(int, unsigned long, void*);
int poll(pollfd*, nfds_t, int);
int ppoll(pollfd*, nfds_t, const timespec*, const sigset_t*);
int select(int, fd_set*, fd_set*, fd_set*, timeval*);
int pselect(int, fd_set*, fd_set*, fd_set*, const timespec*, const sigset_t*);
int epoll_create(int);
int epoll_create1(int);
int epoll_ctl(int, int, int, epoll_event*);
int epoll_wait(int, epoll_event*, int, int);
int epoll_pwait(int, epoll_event*, int, int, const sigset_t*);
int epoll_pwait2(int, epoll_event*, int, const timespec*, const sigset_t*);
int dup(int);
int dup2(int, int);
int dup3(int, int, int);
pid_t fork();
ssize_t sendfile(int, int, off_t*, size_t);
ssize_t splice(int, loff_t*, int, loff_t*, size_t, unsigned int);
int execve(const char*, char* const[], char* const[]);
int execvpe(const char*, char* const[], char* const[]);
int fexecve(int, char* const[], char* const[]);
int sigaction(int, const struct sigaction*, struct sigaction*);
sighandler_t signal(int, sighandler_t);
sighandler_t sysv_signal(int, sighandler_t);
sighandler_t sigset(int, sighandler_t);

}  // namespace xs::shim::real
