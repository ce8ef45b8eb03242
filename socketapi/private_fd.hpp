// Descriptors the stack keeps for itself (the engine's epoll, timerfd and
// eventfd, each thread's wait eventfd, the shim's companion epoll instances)
// live above the numbers a program uses first, so that the program's own
// descriptors keep the numbers Linux would give them. Some programs depend
// on that: wrk sizes each thread's event loop by its connection count and
// fails a connection whose socket is numbered beyond it.
#pragma once

namespace xs {

// The lowest number a private descriptor is moved to: 512, or half the
// RLIMIT_NOFILE soft limit when that is lower.
int private_fd_floor();

// `fd` (which the caller owns) renumbered to the lowest free number at or
// above private_fd_floor(), close-on-exec; `fd` itself when it is negative,
// already there, or cannot move (descriptor limit).
int move_fd_high(int fd);

}  // namespace xs
