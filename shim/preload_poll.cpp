// epoll, poll and select over mixed sets of xstack and kernel descriptors.
//
// A kernel epoll descriptor that watches xstack sockets gets a companion: an
// xstack epoll instance in wake mode, whose own descriptor (an eventfd) sits
// in the kernel epoll set under a marker. epoll_wait collects the xstack
// events first, then sleeps in the kernel's epoll_wait, so kernel
// descriptors, xstack sockets, timeouts and signals (EINTR) all end the same
// sleep, and an idle program sleeps. poll/select do the same with a per-thread
// companion. In spin/busy-poll modes the waits poll the stack instead of
// sleeping.
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <algorithm>
#include <vector>

#include "shim/epoll_share.hpp"
#include "shim/fork_share.hpp"
#include "shim/real.hpp"
#include "shim/signal_hold.hpp"
#include "shim/state.hpp"

using namespace xs::shim;
using xs::native::Runtime;

namespace {

using epshare::kMarker;

int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

// Milliseconds left until `deadline_ns` (-1: none), rounded up.
int remaining_ms(int64_t deadline_ns) {
  if (deadline_ns < 0) return -1;
  int64_t left = deadline_ns - now_ns();
  if (left <= 0) return 0;
  return static_cast<int>(std::min<int64_t>((left + 999999) / 1000000, INT_MAX));
}

bool spinning(Runtime* r) { return r->mode() != xs::PollMode::Interrupt; }

// A wait that spins (spin/busy-poll mode, not a zero timeout) tells the
// engine, whose progress thread would otherwise look every millisecond and
// preempt it (Engine::spinner_enter).
class SpinGuard {
 public:
  SpinGuard(Runtime* r, bool on) : e_(on ? &r->engine() : nullptr) {
    if (e_) e_->spinner_enter();
  }
  ~SpinGuard() {
    if (e_) e_->spinner_leave();
  }
  SpinGuard(const SpinGuard&) = delete;
  SpinGuard& operator=(const SpinGuard&) = delete;

 private:
  xs::Engine* e_;
};

// Epoll fds nested in each kernel epoll fd (by epoll_ctl). A nested epoll's
// readiness, to the kernel, is its companion's eventfd, which stays written
// after its events were consumed by reading the sockets; refreshing it
// before a wait on the outer instance (or a poll of the inner) makes it say
// what is true now.
std::mutex g_nested_mu;
std::unordered_map<int, std::vector<int>> g_nested;

bool is_epoll_fd(int fd) {
  char path[64], target[64];
  std::snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(path, target, sizeof target - 1);
  if (n <= 0) return false;
  target[n] = 0;
  return std::strcmp(target, "anon_inode:[eventpoll]") == 0;
}

void refresh(int epfd) {
  int c = companion_of(epfd);
  Runtime* r = rt();
  if (c < 0 || r == nullptr) return;
  Inside in;
  r->epoll_refresh_wake(c);
}

void refresh_nested(int epfd) {
  if (epfd < 0 || epfd >= kMaxFd || !g_has_nested[epfd].load(std::memory_order_relaxed)) return;
  std::vector<int> inner;
  {
    std::lock_guard<std::mutex> lk(g_nested_mu);
    auto it = g_nested.find(epfd);
    if (it != g_nested.end()) inner = it->second;
  }
  for (int i : inner) {
    refresh_nested(i);
    refresh(i);
  }
}

int companion_for(int epfd, bool create) {
  int c = companion_of(epfd);
  if (c >= 0 || !create) return c;
  Runtime* r = rt();
  if (r == nullptr) return -1;
  Inside in;
  c = r->epoll_create_private();
  if (c < 0) return -1;
  r->epoll_set_wake(c);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kMarker | static_cast<uint32_t>(c);
  if (real::epoll_ctl(epfd, EPOLL_CTL_ADD, c, &ev) < 0) {
    int e = errno;
    r->close(c);
    return fail(e);
  }
  // The device's descriptors too: when frames arrive, the waiting thread runs
  // the stack itself (one wakeup) rather than waiting for the progress thread
  // to run it and write the companion (two).
  // Exclusive: a burst of frames wakes one waiting thread, not every thread
  // with a companion and the progress thread too (Engine::requeue_device_waits).
  if (!spinning(r)) {
    epshare::add_device_waits(epfd, r->device_fds());
    r->engine().requeue_device_waits();
  }
  set_kind(c, FdKind::Companion);
  int expected = 0;
  if (!g_companion[epfd].compare_exchange_strong(expected, c + 1)) {
    // Another thread made one first: use it (the device fds are shared).
    real::epoll_ctl(epfd, EPOLL_CTL_DEL, c, nullptr);
    set_kind(c, FdKind::Kernel);
    r->close(c);
    return expected - 1;
  }
  epshare::companion_made(epfd, c);
  return c;
}

// The common body of epoll_wait/epoll_pwait/epoll_pwait2. timeout_ns < 0: forever.
int epoll_wait_impl(int epfd, epoll_event* evs, int max, int64_t timeout_ns, const sigset_t* mask) {
  epshare::inherit(epfd);
  refresh_nested(epfd);
  int c = companion_of(epfd);
  Runtime* r = rt();
  int64_t deadline = timeout_ns < 0 ? -1 : now_ns() + timeout_ns;
  while (c < 0 || r == nullptr) {
    int got = epshare::plain_wait(epfd, evs, max, timeout_ns, mask, [](int fd) { return companion_of(fd) >= 0; });
    if (got != epshare::kCompanionMade) return got;
    // Another thread added an xstack socket while this one slept: its
    // companion's wake fired. Wait on through the companion.
    c = companion_of(epfd);
    r = rt();
    if (deadline >= 0) timeout_ns = std::max<int64_t>(0, deadline - now_ns());
  }
  if (max <= 0 || evs == nullptr) return real::epoll_wait(epfd, evs, max, 0);  // the kernel's EINVAL/EFAULT
  bool spin = spinning(r);
  SignalHold hold(timeout_ns != 0 && !spin, mask);
  SpinGuard spinner(r, spin && timeout_ns != 0);
  mask = hold.sleep_mask();
  for (;;) {
    int n;
    {
      Inside in;
      r->wait_begin(c);
      n = r->epoll_wait(c, evs, max, 0);
    }
    if (n < 0) n = 0;
    int k = 0;
    if (n < max) {
      // Device descriptors readable (marker events, stripped): the loop
      // comes round to wait_begin, which polls.
      int ms = (n > 0 || spin) ? 0 : remaining_ms(deadline);
      int got = epshare::kernel_wait(epfd, evs + n, max - n, ms, mask);
      if (got < 0) {
        if (n > 0) return n;
        return -1;  // EINTR and friends, as the kernel reports them
      }
      k = got;
    }
    if (n + k > 0) return n + k;
    if (deadline >= 0 && now_ns() >= deadline) return 0;
    if (spin) __builtin_ia32_pause();
  }
}

// Per-thread companion for poll/select.
struct ThreadCompanion {
  int fd = -1;
  Runtime* owner = nullptr;
  // Closed with its thread: a program whose threads come and go would
  // otherwise keep one eventfd per thread that ever polled an xstack socket.
  ~ThreadCompanion() {
    if (fd < 0 || owner == nullptr || rt() != owner || kind(fd) != FdKind::Companion) return;
    Inside in;
    set_kind(fd, FdKind::Kernel);
    owner->close(fd);
    fd = -1;
  }
};
thread_local ThreadCompanion t_comp;

int thread_companion(Runtime* r) {
  if (t_comp.owner == r && t_comp.fd >= 0 && kind(t_comp.fd) == FdKind::Companion) return t_comp.fd;
  Inside in;
  int c = r->epoll_create_private();
  if (c < 0) return -1;
  r->epoll_set_wake(c);
  set_kind(c, FdKind::Companion);
  t_comp.fd = c;
  t_comp.owner = r;
  return c;
}

// poll over a mixed set. timeout_ns < 0: forever.
int poll_impl(pollfd* fds, nfds_t n, int64_t timeout_ns, const sigset_t* mask) {
  Runtime* r = rt();
  bool any_xs = false;
  for (nfds_t i = 0; i < n; ++i) {
    FdKind k = kind(fds[i].fd);
    if (k == FdKind::Orphan) k = forkshare::adopt(fds[i].fd);
    if (k == FdKind::Kernel) epshare::inherit(fds[i].fd);  // an inherited epoll fd, polled
    any_xs |= k == FdKind::XsSocket || k == FdKind::Orphan;
    if (k == FdKind::Kernel && companion_of(fds[i].fd) >= 0) {
      epshare::exposed(fds[i].fd);
      refresh_nested(fds[i].fd);
      refresh(fds[i].fd);
    }
  }
  if (any_xs && r == nullptr) {
    // A fork child: only orphans that could not be adopted. POLLNVAL them.
    std::vector<pollfd> k_set;
    std::vector<nfds_t> k_idx;
    for (nfds_t i = 0; i < n; ++i) {
      if (kind(fds[i].fd) == FdKind::Orphan) {
        fds[i].revents = POLLNVAL;
        continue;
      }
      k_set.push_back({fds[i].fd, fds[i].events, 0});
      k_idx.push_back(i);
    }
    // POLLNVAL entries make poll return at once, as the kernel's does.
    timespec ts{static_cast<time_t>(timeout_ns / 1000000000), static_cast<long>(timeout_ns % 1000000000)};
    if (k_set.size() < n) ts = {0, 0};
    bool forever = timeout_ns < 0 && k_set.size() == n;
    int rc = real::ppoll(k_set.data(), k_set.size(), forever ? nullptr : &ts, mask);
    if (rc < 0) return -1;
    for (size_t j = 0; j < k_set.size(); ++j) fds[k_idx[j]].revents = k_set[j].revents;
    int count = 0;
    for (nfds_t i = 0; i < n; ++i) count += fds[i].revents != 0;
    return count;
  }
  if (!any_xs) {
    if (mask == nullptr && (timeout_ns < 0 || timeout_ns % 1000000 == 0))
      return real::poll(fds, n, timeout_ns < 0 ? -1 : static_cast<int>(std::min<int64_t>(timeout_ns / 1000000, INT_MAX)));
    timespec ts{static_cast<time_t>(timeout_ns / 1000000000), static_cast<long>(timeout_ns % 1000000000)};
    return real::ppoll(fds, n, timeout_ns < 0 ? nullptr : &ts, mask);
  }
  // Split: xstack entries are answered by the runtime, the rest (and the
  // companion) by the kernel.
  // Reused per thread: no allocation per call once they have grown.
  thread_local std::vector<pollfd> xs_set, k_set;
  thread_local std::vector<nfds_t> xs_idx, k_idx;
  xs_set.clear(), k_set.clear(), xs_idx.clear(), k_idx.clear();
  for (nfds_t i = 0; i < n; ++i) {
    FdKind kd = kind(fds[i].fd);
    if (kd == FdKind::XsSocket) {
      xs_set.push_back({fds[i].fd, fds[i].events, 0});
      xs_idx.push_back(i);
    } else if (kd == FdKind::Orphan) {
      fds[i].revents = POLLNVAL;
    } else {
      k_set.push_back({fds[i].fd, fds[i].events, 0});
      k_idx.push_back(i);
    }
  }
  int c = thread_companion(r);
  if (c < 0) return -1;
  {
    Inside in;
    for (auto& p : xs_set) {
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI;
      ev.data.fd = p.fd;
      r->epoll_ctl(c, EPOLL_CTL_ADD, p.fd, &ev);  // EEXIST for a repeated fd: fine
    }
  }
  bool spin = spinning(r);
  size_t extra = 1;
  k_set.push_back({c, POLLIN, 0});
  if (!spin) {
    thread_local std::vector<int> dev_fds = r->device_fds();
    for (int dfd : dev_fds) k_set.push_back({dfd, POLLIN, 0});
    extra += dev_fds.size();
  }
  int64_t deadline = timeout_ns < 0 ? -1 : now_ns() + timeout_ns;
  int result = 0;
  SignalHold hold(timeout_ns != 0 && !spin, mask);
  SpinGuard spinner(r, spin && timeout_ns != 0);
  mask = hold.sleep_mask();
  for (;;) {
    int nx;
    {
      Inside in;
      r->wait_begin(c);
      nx = xs_set.empty() ? 0 : r->poll(xs_set.data(), xs_set.size(), 0);
    }
    if (nx < 0) nx = 0;
    int ms = (nx > 0 || spin) ? 0 : remaining_ms(deadline);
    int nk;
    if (mask) {
      timespec ts{ms / 1000, (ms % 1000) * 1000000L};
      nk = real::ppoll(k_set.data(), k_set.size(), ms < 0 ? nullptr : &ts, mask);
    } else {
      nk = real::poll(k_set.data(), k_set.size(), ms);
    }
    if (nk < 0 && nx == 0) {
      result = -1;
      break;
    }
    int ready = nx;
    size_t nk_user = k_set.size() - extra;
    for (size_t j = 0; j < nk_user; ++j) ready += k_set[j].revents != 0;
    if (ready > 0 || (deadline >= 0 && now_ns() >= deadline)) {
      for (size_t j = 0; j < xs_set.size(); ++j) fds[xs_idx[j]].revents = xs_set[j].revents;
      for (size_t j = 0; j < nk_user; ++j) fds[k_idx[j]].revents = k_set[j].revents;
      result = 0;
      for (nfds_t i = 0; i < n; ++i) result += fds[i].revents != 0;
      break;
    }
    if (spin) __builtin_ia32_pause();
  }
  int saved = errno;
  {
    Inside in;
    for (auto& p : xs_set) r->epoll_ctl(c, EPOLL_CTL_DEL, p.fd, nullptr);
  }
  errno = saved;
  return result;
}

// select/pselect through poll_impl. timeout_ns < 0: forever.
int select_impl(int nfds, fd_set* rd, fd_set* wr, fd_set* ex, int64_t timeout_ns, const sigset_t* mask,
                int64_t* left_ns) {
  if (nfds < 0 || nfds > FD_SETSIZE) return fail(EINVAL);
  std::vector<pollfd> p;
  for (int fd = 0; fd < nfds; ++fd) {
    short ev = 0;
    if (rd && FD_ISSET(fd, rd)) ev |= POLLIN;
    if (wr && FD_ISSET(fd, wr)) ev |= POLLOUT;
    if (ex && FD_ISSET(fd, ex)) ev |= POLLPRI;
    if (ev) p.push_back({fd, ev, 0});
  }
  int64_t start = now_ns();
  int rc = poll_impl(p.data(), p.size(), timeout_ns, mask);
  if (left_ns) *left_ns = timeout_ns < 0 ? -1 : std::max<int64_t>(0, timeout_ns - (now_ns() - start));
  if (rc < 0) return -1;
  for (auto& q : p) {
    if (q.revents & POLLNVAL) return fail(EBADF);
  }
  if (rd) FD_ZERO(rd);
  if (wr) FD_ZERO(wr);
  if (ex) FD_ZERO(ex);
  int count = 0;
  for (auto& q : p) {
    // Linux's select: readable on IN/HUP/ERR, writable on OUT/ERR, except on PRI.
    if (rd && (q.events & POLLIN) && (q.revents & (POLLIN | POLLHUP | POLLERR))) FD_SET(q.fd, rd), count++;
    if (wr && (q.events & POLLOUT) && (q.revents & (POLLOUT | POLLERR))) FD_SET(q.fd, wr), count++;
    if (ex && (q.events & POLLPRI) && (q.revents & POLLPRI)) FD_SET(q.fd, ex), count++;
  }
  return count;
}

bool set_has_xs(int nfds, fd_set* a, fd_set* b, fd_set* c) {
  if (nfds < 0) return false;
  for (int fd = 0; fd < std::min(nfds, FD_SETSIZE); ++fd) {
    FdKind k = kind(fd);
    if (k != FdKind::XsSocket && k != FdKind::Orphan) continue;
    if ((a && FD_ISSET(fd, a)) || (b && FD_ISSET(fd, b)) || (c && FD_ISSET(fd, c))) return true;
  }
  return false;
}

}  // namespace

bool epshare::is_nested(int epfd) {
  std::lock_guard<std::mutex> lk(g_nested_mu);
  for (auto& [outer, inner] : g_nested) {
    if (std::find(inner.begin(), inner.end(), epfd) != inner.end()) return true;
  }
  return false;
}

extern "C" {

int epoll_ctl(int epfd, int op, int fd, epoll_event* ev) {
  epshare::inherit(epfd);
  epshare::inherit(fd);  // an inherited epoll fd nested in another: its sockets first
  FdKind k = kind(fd);
  if (k == FdKind::Orphan) k = forkshare::adopt(fd);
  if (k == FdKind::Orphan) return fail(EBADF);
  if (k != FdKind::XsSocket) {
    int rc = real::epoll_ctl(epfd, op, fd, ev);
    if (rc == 0 && op == EPOLL_CTL_ADD && epfd >= 0 && epfd < kMaxFd && is_epoll_fd(fd)) {
      epshare::exposed(fd);
      std::lock_guard<std::mutex> lk(g_nested_mu);
      g_nested[epfd].push_back(fd);
      g_has_nested[epfd].store(1, std::memory_order_relaxed);
    } else if (rc == 0 && op == EPOLL_CTL_DEL && epfd >= 0 && epfd < kMaxFd && g_has_nested[epfd].load()) {
      std::lock_guard<std::mutex> lk(g_nested_mu);
      auto& v = g_nested[epfd];
      v.erase(std::remove(v.begin(), v.end(), fd), v.end());
    }
    return rc;
  }
  Runtime* r = rt();
  if (r == nullptr) return fail(EBADF);
  // The kernel's own checks on epfd first (EBADF; EINVAL when not an epoll).
  if (real::fcntl(epfd, F_GETFD, 0) < 0) return -1;
  int c = companion_for(epfd, op == EPOLL_CTL_ADD);
  if (c < 0) {
    if (op == EPOLL_CTL_ADD) return -1;
    // Never added here. An epoll descriptor answers ENOENT, anything else EINVAL
    // (do_epoll_ctl: !is_file_epoll).
    return fail(is_epoll_fd(epfd) ? ENOENT : EINVAL);
  }
  int rc;
  {
    Inside in;
    rc = r->epoll_ctl(c, op, fd, ev);
  }
  if (rc == 0) epshare::record(epfd, op, fd, ev);  // what a child sharing epfd must watch
  return rc;
}

int epoll_wait(int epfd, epoll_event* evs, int max, int timeout) {
  return epoll_wait_impl(epfd, evs, max, timeout < 0 ? -1 : int64_t{timeout} * 1000000, nullptr);
}

int epoll_pwait(int epfd, epoll_event* evs, int max, int timeout, const sigset_t* mask) {
  return epoll_wait_impl(epfd, evs, max, timeout < 0 ? -1 : int64_t{timeout} * 1000000, mask);
}

int epoll_pwait2(int epfd, epoll_event* evs, int max, const timespec* t, const sigset_t* mask) {
  if (t != nullptr && (t->tv_sec < 0 || t->tv_nsec < 0 || t->tv_nsec >= 1000000000)) return fail(EINVAL);
  int64_t ns = t == nullptr ? -1 : t->tv_sec * 1000000000LL + t->tv_nsec;
  if (companion_of(epfd) < 0 && epshare::private_of(epfd) < 0) {
    epshare::inherit(epfd);
    int got = real::epoll_pwait2(epfd, evs, max, t, mask);
    return got <= 0 ? got : epshare::strip(evs, got);  // a child: the parent's entries
  }
  return epoll_wait_impl(epfd, evs, max, ns, mask);
}

int poll(pollfd* fds, nfds_t n, int timeout) {
  return poll_impl(fds, n, timeout < 0 ? -1 : int64_t{timeout} * 1000000, nullptr);
}

int __poll_chk(pollfd* fds, nfds_t n, int timeout, size_t fdslen) {
  if (fdslen / sizeof(pollfd) < n) __builtin_trap();
  return poll(fds, n, timeout);
}

int ppoll(pollfd* fds, nfds_t n, const timespec* t, const sigset_t* mask) {
  if (t != nullptr && (t->tv_sec < 0 || t->tv_nsec < 0 || t->tv_nsec >= 1000000000)) return fail(EINVAL);
  return poll_impl(fds, n, t == nullptr ? -1 : t->tv_sec * 1000000000LL + t->tv_nsec, mask);
}

int __ppoll_chk(pollfd* fds, nfds_t n, const timespec* t, const sigset_t* mask, size_t fdslen) {
  if (fdslen / sizeof(pollfd) < n) __builtin_trap();
  return ppoll(fds, n, t, mask);
}

int select(int nfds, fd_set* rd, fd_set* wr, fd_set* ex, timeval* tv) {
  if (!set_has_xs(nfds, rd, wr, ex)) return real::select(nfds, rd, wr, ex, tv);
  if (tv != nullptr && (tv->tv_sec < 0 || tv->tv_usec < 0)) return fail(EINVAL);
  int64_t ns = tv == nullptr ? -1 : tv->tv_sec * 1000000000LL + int64_t{tv->tv_usec} * 1000;
  int64_t left = 0;
  int rc = select_impl(nfds, rd, wr, ex, ns, nullptr, &left);
  if (tv != nullptr && left >= 0) {  // Linux writes back the time not slept
    tv->tv_sec = left / 1000000000;
    tv->tv_usec = (left % 1000000000) / 1000;
  }
  return rc;
}

int pselect(int nfds, fd_set* rd, fd_set* wr, fd_set* ex, const timespec* t, const sigset_t* mask) {
  if (!set_has_xs(nfds, rd, wr, ex)) return real::pselect(nfds, rd, wr, ex, t, mask);
  if (t != nullptr && (t->tv_sec < 0 || t->tv_nsec < 0 || t->tv_nsec >= 1000000000)) return fail(EINVAL);
  return select_impl(nfds, rd, wr, ex, t == nullptr ? -1 : t->tv_sec * 1000000000LL + t->tv_nsec, mask, nullptr);
}

}  // extern "C"
