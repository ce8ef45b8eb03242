// An epoll instance shared across fork (docs/shim.md, "epoll across fork").
//
// A kernel epoll instance survives fork and is shared by parent and child,
// but the xstack sockets it watches live in the parent's companion (an
// xstack epoll, preload_poll.cpp), which a child cannot use. So:
//  - the parent remembers, per kernel epoll fd, what was registered in its
//    companion (number, events, data);
//  - at fork, the parent moves its companion's wake marker and the device
//    descriptors out of the shared kernel set into a private kernel epoll
//    (which also watches the shared set): a child waiting on the shared set
//    would otherwise be woken by the parent's wakes, which it cannot clear;
//  - in the child, the first use of an inherited epoll fd (epoll_wait,
//    epoll_ctl) adopts every xstack socket that was registered (each becomes
//    a kernel proxy, fork_share.hpp) and adds the proxy to the shared kernel
//    set with the same events and data.
#pragma once
#include <signal.h>
#include <sys/epoll.h>

#include <cstdint>
#include <vector>

namespace xs::shim::epshare {

// Data of the shim's own entries in kernel epoll sets (never the program's).
constexpr uint64_t kMarker = 0x7873746b00000000ULL;     // "xstk" << 32, the companion fd below: its wake
constexpr uint64_t kDevMarker = 0x7873746400000000ULL;  // "xstd" << 32, a device fd below: frames wait
constexpr uint64_t kSetMarker = 0x7873746500000000ULL;  // "xste" << 32, the shared set, in the private one

// Parent side: a successful epoll_ctl of an xstack socket in epfd's companion.
// Adds the device's descriptors to kernel set `set`, EPOLLEXCLUSIVE under
// kDevMarker: arriving frames wake one thread sleeping there, which then runs
// the stack itself (the caller requeues the progress thread's entry behind).
void add_device_waits(int set, const std::vector<int>& devs);

void record(int epfd, int op, int fd, const epoll_event* ev);
// Parent side: epfd got a companion. After a fork, a new companion goes
// straight to a private set (the kernel set may be shared with children).
void companion_made(int epfd, int companion);
// The private kernel epoll the parent sleeps on instead of epfd (-1: none).
int private_of(int epfd);
// A descriptor number is being closed or replaced (an xstack socket or an
// epoll fd): forget what was recorded for it.
void number_closed(int fd);

// Whether the epoll fd is itself in another epoll set (preload_poll.cpp
// keeps that list). Such a set keeps its wake inside at fork: moving it out
// would hide its xstack events from the outer set.
bool is_nested(int epfd);

// epfd is being nested in another epoll set or polled: its own readiness
// must include its xstack sockets' again, so a private set made at fork is
// undone (the wake goes back into epfd; a child sharing it skips those wakes).
void exposed(int epfd);

// Waits on kernel epoll sets (preload_poll.cpp's epoll_wait). strip:
// removes the shim's own entries from evs[0, n) and returns how many are
// left (device descriptors included: the caller's next wait_begin polls the
// rings whether or not they were readable). kernel_wait: the kernel
// half of a wait on epfd, which has a companion: on its private set if it
// has one (the sleep includes the wakes and epfd itself). plain_wait: a wait
// on a set without a companion here, which may hold the entries of the
// process that has the stack (a set shared with it): skipped, unless
// `ours(epfd)` says that this process has made a companion for epfd since
// the wait began (another thread added an xstack socket): then it returns
// kCompanionMade and the caller waits again through the companion.
int strip(epoll_event* evs, int n);
int kernel_wait(int epfd, epoll_event* evs, int max, int ms, const sigset_t* mask);
constexpr int kCompanionMade = -2;
int plain_wait(int epfd, epoll_event* evs, int max, int64_t timeout_ns, const sigset_t* mask, bool (*ours)(int epfd));

// pthread_atfork handlers (called from state.cpp).
void prepare();
void parent();
void child();

// Child side: the first use of an inherited epoll fd. Cheap when there is
// nothing to do.
void inherit(int epfd);

}  // namespace xs::shim::epshare
