#include "shim/epoll_share.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <ctime>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "shim/fork_share.hpp"
#include "shim/real.hpp"
#include "shim/state.hpp"

namespace xs::shim::epshare {

namespace {

using Regs = std::map<int, epoll_event>;  // xstack socket number -> its registration

// Held across fork (prepare .. parent/child), so the child's copy of the
// tables is consistent and the mutex is not left locked by another thread.
std::mutex g_mu;
std::unordered_map<int, Regs> g_sets;     // with the stack: kernel epoll fd -> companion's registrations
std::unordered_map<int, Regs> g_pending;  // in a child: inherited epoll fds not used yet
std::atomic<int> g_active{0};             // g_sets.size() + g_pending.size(): the fast path of number_closed
std::atomic<int> g_pending_n{0};          // g_pending.size(): the fast path of inherit
std::atomic<int> g_private[kMaxFd];       // kernel epoll fd -> private epoll fd + 1 (0: none)
// fd may be a key or a member in g_sets/g_pending: set before it becomes one,
// cleared by number_closed. The fast path of number_closed, which runs on
// every close (a server closes a file per request).
std::atomic<uint8_t> g_mentioned[kMaxFd];

void mention(int fd) {
  if (fd >= 0 && fd < kMaxFd) g_mentioned[fd].store(1, std::memory_order_relaxed);
}
bool g_forked = false;                    // this process has forked since its stack started

int64_t mono_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void count_locked() {
  g_pending_n.store(static_cast<int>(g_pending.size()), std::memory_order_release);
  g_active.store(static_cast<int>(g_sets.size() + g_pending.size()), std::memory_order_release);
}

// Moves the companion's wake and the device descriptors out of the kernel set
// `epfd` into a new private set that also watches `epfd`: the parent sleeps
// on the private set (preload_poll.cpp), and a child sharing `epfd` is never
// woken by wakes meant for the parent. Entries are added to the private set
// before they leave the shared one, so the parent's next sleep misses none.
void privatize_locked(int epfd, int companion) {
  if (epfd < 0 || epfd >= kMaxFd || g_private[epfd].load() != 0) return;
  if (is_nested(epfd)) {
    log(LogLevel::Info, "epoll fd %d is nested in another: a child sharing it may see the parent's wakes", epfd);
    return;
  }
  int p = real::epoll_create1(EPOLL_CLOEXEC);
  if (p < 0) return;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kSetMarker;
  if (real::epoll_ctl(p, EPOLL_CTL_ADD, epfd, &ev) < 0) {
    real::close(p);
    return;
  }
  ev.data.u64 = kMarker | static_cast<uint32_t>(companion);
  real::epoll_ctl(p, EPOLL_CTL_ADD, companion, &ev);
  native::Runtime* r = rt();
  std::vector<int> devs;
  if (r != nullptr && r->mode() == PollMode::Interrupt) {
    Inside in;
    devs = r->device_fds();
  }
  add_device_waits(p, devs);
  real::epoll_ctl(epfd, EPOLL_CTL_DEL, companion, nullptr);
  for (int dfd : devs) real::epoll_ctl(epfd, EPOLL_CTL_DEL, dfd, nullptr);
  if (r != nullptr && !devs.empty()) {
    Inside in;
    r->engine().requeue_device_waits();  // the progress thread's entry behind the new one
  }
  g_private[epfd].store(p + 1, std::memory_order_release);
  log(LogLevel::Debug, "epoll fd %d: shared with a child, the parent now sleeps on %d", epfd, p);
}

// Undoes privatize_locked: the wake and device entries back into epfd.
void unprivatize_locked(int epfd) {
  int p = g_private[epfd].exchange(0) - 1;
  if (p < 0) return;
  int c = companion_of(epfd);
  native::Runtime* r = rt();
  if (c >= 0) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kMarker | static_cast<uint32_t>(c);
    real::epoll_ctl(epfd, EPOLL_CTL_ADD, c, &ev);
    if (r != nullptr && r->mode() == PollMode::Interrupt) {
      Inside in;
      add_device_waits(epfd, r->device_fds());
      r->engine().requeue_device_waits();
    }
  }
  // A thread asleep on it sleeps on until one of its entries fires, then
  // loops to epfd itself (preload_poll.cpp's kernel_wait).
  real::close(p);
}

}  // namespace

void add_device_waits(int set, const std::vector<int>& devs) {
  for (int dfd : devs) {
    epoll_event dev{};
    dev.events = EPOLLIN | EPOLLEXCLUSIVE;
    dev.data.u64 = kDevMarker | static_cast<uint32_t>(dfd);
    real::epoll_ctl(set, EPOLL_CTL_ADD, dfd, &dev);
  }
}

void record(int epfd, int op, int fd, const epoll_event* ev) {
  std::lock_guard<std::mutex> lk(g_mu);
  mention(epfd);
  mention(fd);
  Regs& regs = g_sets[epfd];
  if (op == EPOLL_CTL_DEL) regs.erase(fd);
  else if (ev != nullptr) regs[fd] = *ev;
  count_locked();
}

void companion_made(int epfd, int companion) {
  std::lock_guard<std::mutex> lk(g_mu);
  mention(epfd);
  g_sets[epfd];
  count_locked();
  if (g_forked) privatize_locked(epfd, companion);  // the set may be shared with a child already
}

int private_of(int epfd) {
  if (epfd < 0 || epfd >= kMaxFd) return -1;
  return g_private[epfd].load(std::memory_order_acquire) - 1;
}

void number_closed(int fd) {
  if (fd < 0 || fd >= kMaxFd) return;
  if (g_private[fd].load(std::memory_order_relaxed) != 0) {  // a load first: close is frequent
    int p = g_private[fd].exchange(0) - 1;
    if (p >= 0) real::close(p);
  }
  if (g_active.load(std::memory_order_acquire) == 0) return;
  if (g_mentioned[fd].load(std::memory_order_relaxed) == 0) return;
  std::lock_guard<std::mutex> lk(g_mu);
  g_mentioned[fd].store(0, std::memory_order_relaxed);
  g_sets.erase(fd);
  g_pending.erase(fd);
  for (auto& [ep, regs] : g_sets) regs.erase(fd);
  for (auto& [ep, regs] : g_pending) regs.erase(fd);
  count_locked();
}

void exposed(int epfd) {
  if (private_of(epfd) < 0) return;
  std::lock_guard<std::mutex> lk(g_mu);
  unprivatize_locked(epfd);
  log(LogLevel::Info, "epoll fd %d is nested or polled: a child sharing it may see the parent's wakes", epfd);
}

int strip(epoll_event* evs, int n) {
  int out = 0;
  for (int i = 0; i < n; ++i) {
    uint64_t hi = evs[i].data.u64 & ~uint64_t{0xffffffff};
    if (hi == kMarker || hi == kSetMarker || hi == kDevMarker) continue;
    evs[out++] = evs[i];
  }
  return out;
}

int kernel_wait(int epfd, epoll_event* evs, int max, int ms, const sigset_t* mask) {
  int p = private_of(epfd);
  if (p < 0) {
    int got = mask ? real::epoll_pwait(epfd, evs, max, ms, mask) : real::epoll_wait(epfd, evs, max, ms);
    return got < 0 ? -1 : strip(evs, got);
  }
  epoll_event pe[8];
  int got = mask ? real::epoll_pwait(p, pe, 8, ms, mask) : real::epoll_wait(p, pe, 8, ms);
  if (got < 0) return errno == EBADF ? 0 : -1;  // EBADF: made public again meanwhile (exposed)
  bool set_ready = false;
  for (int i = 0; i < got; ++i) set_ready |= pe[i].data.u64 == kSetMarker;
  if (!set_ready) return 0;
  got = real::epoll_wait(epfd, evs, max, 0);
  return got < 0 ? -1 : strip(evs, got);
}

int plain_wait(int epfd, epoll_event* evs, int max, int64_t timeout_ns, const sigset_t* mask, bool (*ours)(int epfd)) {
  int64_t deadline = timeout_ns < 0 ? -1 : mono_ns() + timeout_ns;
  for (;;) {
    int got;
    if (timeout_ns < 0 || timeout_ns % 1000000 == 0 || mask == nullptr) {
      int ms = timeout_ns < 0 ? -1 : static_cast<int>(std::min<int64_t>((timeout_ns + 999999) / 1000000, INT_MAX));
      got = mask ? real::epoll_pwait(epfd, evs, max, ms, mask) : real::epoll_wait(epfd, evs, max, ms);
    } else {
      timespec ts{static_cast<time_t>(timeout_ns / 1000000000), static_cast<long>(timeout_ns % 1000000000)};
      got = real::epoll_pwait2(epfd, evs, max, &ts, mask);
    }
    if (got <= 0) return got;
    int k = strip(evs, got);
    if (k > 0) return k;
    // Only shim entries: this process's own (a companion made meanwhile),
    // which stay readable until collected through it, or the stack
    // process's, which are not ours to collect.
    if (ours != nullptr && ours(epfd)) return kCompanionMade;
    if (timeout_ns == 0) return 0;
    if (deadline >= 0) {  // only the parent's entries were ready: wait on for what is left
      timeout_ns = deadline - mono_ns();
      if (timeout_ns <= 0) return 0;
    }
  }
}

void prepare() {
  g_mu.lock();
  if (rt() == nullptr) return;
  g_forked = true;
  for (auto& [epfd, regs] : g_sets) {
    int c = companion_of(epfd);
    if (c >= 0) privatize_locked(epfd, c);
  }
}

void parent() { g_mu.unlock(); }

void child() {
  // The parent's private sets and companions are of no use here (closing our
  // copies leaves the parent's alone); what they watched becomes pending.
  for (auto& [epfd, regs] : g_sets) {
    int p = private_of(epfd);
    if (p >= 0) {
      g_private[epfd].store(0);
      real::close(p);
    }
    int c = companion_of(epfd);
    if (c >= 0) {
      set_kind(c, FdKind::Kernel);
      real::close(c);
    }
    if (!regs.empty()) g_pending[epfd] = std::move(regs);
  }
  g_sets.clear();
  g_forked = false;
  count_locked();
  g_mu.unlock();
}

void inherit(int epfd) {
  if (g_pending_n.load(std::memory_order_acquire) == 0) return;
  Regs regs;
  {
    std::lock_guard<std::mutex> lk(g_mu);
    auto it = g_pending.find(epfd);
    if (it == g_pending.end()) return;
    regs = std::move(it->second);
    g_pending.erase(it);
    count_locked();
  }
  int saved = errno;
  for (auto& [fd, ev] : regs) {
    FdKind k = kind(fd);
    if (k == FdKind::Orphan) k = forkshare::adopt(fd, true);
    if (!is_proxy(k)) {
      // Closed (or replaced) since, or the parent could not serve it.
      if (k == FdKind::Orphan) log(LogLevel::Warn, "epoll fd %d: inherited fd %d not usable here", epfd, fd);
      continue;
    }
    epoll_event e = ev;
    // EEXIST: another process sharing the set added the same proxy (a
    // listener's proxy is one socket in every child), which is the entry
    // Linux would have: one per socket and number.
    if (real::epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e) < 0 && errno != EEXIST)
      log(LogLevel::Warn, "epoll fd %d: cannot watch inherited fd %d (%s)", epfd, fd, std::strerror(errno));
  }
  errno = saved;
}

}  // namespace xs::shim::epshare
