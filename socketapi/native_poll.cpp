#include "socketapi/native_internal.hpp"

namespace xs::native {

// ---- readiness ---------------------------------------------------------------------

uint32_t Runtime::readiness_locked(Obj& o) {
  if (o.tcp) return o.tcp->readiness();
  if (o.udp) {
    uint32_t m = o.udp->readiness();
    if (o.shut_rd) m |= ev::kIn | ev::kRdNorm | ev::kRdHup;  // datagram_poll
    if (o.shut_rd && o.shut_wr) m |= ev::kHup;
    return m;
  }
  if (o.kind == Obj::Kind::Epoll) return epoll_collect_locked(o, nullptr, INT_MAX, false) > 0 ? uint32_t{EPOLLIN} : 0u;
  return 0;
}

int Runtime::poll(pollfd* fds, nfds_t n, int timeout_ms) {
  if (n > 0 && fds == nullptr) return fail(EFAULT);
  std::unique_lock<std::mutex> lk(e_.mutex());
  bool any_kernel = false;
  auto scan = [&]() -> int {
    int count = 0;
    for (nfds_t i = 0; i < n; ++i) {
      pollfd& p = fds[i];
      p.revents = 0;
      if (p.fd < 0) continue;
      auto o = lookup_locked(p.fd);
      if (o) {
        p.revents = static_cast<short>(readiness_locked(*o) & (static_cast<uint16_t>(p.events) | POLLERR | POLLHUP));
      } else {
        any_kernel = true;
        pollfd k{p.fd, p.events, 0};
        if (::poll(&k, 1, 0) > 0) p.revents = k.revents;
      }
      if (p.revents) count++;
    }
    return count;
  };
  int c = scan();
  if (c == 0 && timeout_ms == 0 && e_.poll_before_eagain_locked()) c = scan();
  if (c > 0 || timeout_ms == 0) return c;
  Instant deadline = timeout_ms < 0 ? kNever : Engine::clock_now() + millis(timeout_ms);
  for (;;) {
    Instant now = Engine::clock_now();
    // Kernel descriptors are looked at every millisecond (no shared wait).
    Instant step = any_kernel ? min(deadline, now + millis(1)) : deadline;
    WaitStatus ws = wait_locked(lk, [&] { return (c = scan()) > 0; }, step, WaitKind::Interruptible);
    if (ws == WaitStatus::Ready) return c;
    if (ws == WaitStatus::Interrupted) return fail(EINTR);
    if (Engine::clock_now() >= deadline) return 0;
  }
}

int Runtime::epoll_create(int size) {
  if (size <= 0) return fail(EINVAL);
  return epoll_create1(0);
}

int Runtime::epoll_create1(int flags) { return epoll_create_numbered(flags, false); }

int Runtime::epoll_create_private() { return epoll_create_numbered(EPOLL_CLOEXEC, true); }

int Runtime::epoll_create_numbered(int flags, bool high) {
  if (flags & ~EPOLL_CLOEXEC) return fail(EINVAL);
  int kfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (kfd < 0) return -1;
  if (high) kfd = move_fd_high(kfd);
  auto o = std::make_shared<Obj>();
  o->kind = Obj::Kind::Epoll;
  o->fd = kfd;
  o->cloexec = (flags & EPOLL_CLOEXEC) != 0;
  std::lock_guard<std::mutex> lk(e_.mutex());
  return install_locked(std::move(o));
}

int Runtime::epoll_ctl(int epfd, int op, int fd, epoll_event* ev) {
  bool has_event = op != EPOLL_CTL_DEL;
  if (has_event && ev == nullptr) return fail(EFAULT);
  std::lock_guard<std::mutex> lk(e_.mutex());
  auto ep = lookup_locked(epfd);
  if (!ep && bad_fd_errno(epfd) == EBADF) return fail(EBADF);
  auto t = lookup_locked(fd);
  if (!t) return fail(bad_fd_errno(fd) == EBADF ? EBADF : EPERM);  // a kernel fd: not ours to watch
  if (has_event && (ev->events & EPOLLEXCLUSIVE)) {
    if (op == EPOLL_CTL_MOD) return fail(EINVAL);
    constexpr uint32_t ok = EPOLLIN | EPOLLOUT | EPOLLRDNORM | EPOLLRDBAND | EPOLLWRNORM | EPOLLWRBAND | EPOLLERR |
                            EPOLLHUP | EPOLLWAKEUP | EPOLLET | EPOLLEXCLUSIVE;
    if (ev->events & ~ok) return fail(EINVAL);
  }
  if (!ep || ep->kind != Obj::Kind::Epoll || fd == epfd) return fail(EINVAL);
  if (t->kind == Obj::Kind::Epoll && op == EPOLL_CTL_ADD) {
    // Linux's ep_loop_check: no cycle, and at most EP_MAX_NESTS (4) levels.
    if (nest_depth_locked(*t, ep.get(), 0) < 0 || nest_depth_locked(*t, nullptr, 0) + nest_height_locked(*ep, 0) + 1 > kMaxEpollNests)
      return fail(ELOOP);
  }
  auto it = ep->regs.find(fd);
  switch (op) {
    case EPOLL_CTL_ADD: {
      if (it != ep->regs.end()) return fail(EEXIST);
      Obj::Reg r;
      r.events = ev->events;
      r.data = ev->data;
      r.target = t;
      r.seen_gen = t->gen - 1;  // report the current state once
      ep->regs.emplace(fd, std::move(r));
      t->watchers.push_back({ep.get(), fd});
      enqueue_locked(*ep, fd);
      wake_if_ready_locked(*ep);
      kick_locked();
      return 0;
    }
    case EPOLL_CTL_MOD:
      if (it == ep->regs.end()) return fail(ENOENT);
      if (it->second.events & EPOLLEXCLUSIVE) return fail(EINVAL);
      it->second.events = ev->events;
      it->second.data = ev->data;
      it->second.seen_gen = t->gen - 1;
      it->second.disabled = false;
      enqueue_locked(*ep, fd);
      wake_if_ready_locked(*ep);
      kick_locked();
      return 0;
    case EPOLL_CTL_DEL: {
      if (it == ep->regs.end()) return fail(ENOENT);
      drop_reg_locked(*ep, fd);
      auto& w = t->watchers;
      w.erase(std::remove_if(w.begin(), w.end(), [&](const Obj::Watch& x) { return x.ep == ep.get() && x.fd == fd; }),
              w.end());
      return 0;
    }
    default: return fail(EINVAL);
  }
}

int Runtime::nest_depth_locked(Obj& ep, const Obj* forbidden, int level) {
  if (&ep == forbidden || level > kMaxEpollNests) return -1;
  int deepest = 0;
  for (auto& [fd, reg] : ep.regs) {
    if (reg.target->kind != Obj::Kind::Epoll) continue;
    int d = nest_depth_locked(*reg.target, forbidden, level + 1);
    if (d < 0) return -1;
    deepest = std::max(deepest, d + 1);
  }
  return deepest;
}

int Runtime::nest_height_locked(Obj& ep, int level) {
  if (level > kMaxEpollNests) return level;
  int highest = 0;
  for (const Obj::Watch& w : ep.watchers) highest = std::max(highest, nest_height_locked(*w.ep, level + 1) + 1);
  return highest;
}

int Runtime::epoll_collect_locked(Obj& ep, epoll_event* evs, int max, bool consume, bool* lt_reported) {
  // Walks the ready list only (Linux ep_send_events): an entry found not
  // ready, or an edge already reported, leaves the list until its target
  // signals again; a reported level-triggered entry goes to the tail, so
  // ready registrations take turns when there are more than `max`.
  std::vector<int>& q = ep.ready;
  int n = 0;
  size_t keep = 0;
  std::vector<int>& tail = ep.ready_tail;
  tail.clear();
  for (size_t i = 0; i < q.size(); ++i) {
    const int fd = q[i];
    auto it = ep.regs.find(fd);
    if (it == ep.regs.end()) continue;  // deleted since it was queued
    Obj::Reg& reg = it->second;
    if (n >= max) {
      q[keep++] = fd;
      continue;
    }
    uint32_t r = reg.disabled ? 0 : readiness_locked(*reg.target) & (reg.events | EPOLLERR | EPOLLHUP);
    if (r == 0 || ((reg.events & EPOLLET) && reg.target->gen == reg.seen_gen)) {
      reg.queued = false;
      continue;
    }
    n++;
    if (!consume) {
      q[keep++] = fd;
      continue;
    }
    evs[n - 1].events = r;
    evs[n - 1].data = reg.data;
    if (reg.events & EPOLLET) reg.seen_gen = reg.target->gen;
    if (reg.events & EPOLLONESHOT) reg.disabled = true;
    if (reg.events & (EPOLLET | EPOLLONESHOT)) {
      reg.queued = false;
    } else {
      if (lt_reported) *lt_reported = true;
      tail.push_back(fd);
    }
  }
  q.resize(keep);
  q.insert(q.end(), tail.begin(), tail.end());
  return n;
}

int Runtime::epoll_wait(int epfd, epoll_event* evs, int max, int timeout_ms) {
  if (max <= 0 || max > INT_MAX / static_cast<int>(sizeof(epoll_event))) return fail(EINVAL);
  if (evs == nullptr) return fail(EFAULT);
  std::unique_lock<std::mutex> lk(e_.mutex());
  auto ep = lookup_locked(epfd);
  if (!ep) return fail(bad_fd_errno(epfd) == EBADF ? EBADF : EINVAL);
  if (ep->kind != Obj::Kind::Epoll) return fail(EINVAL);
  Instant deadline = timeout_ms < 0 ? kNever : Engine::clock_now() + millis(timeout_ms);
  if (timeout_ms != 0) {
    WaitStatus ws = wait_locked(lk, [&] { return ep->closed || epoll_collect_locked(*ep, nullptr, max, false) > 0; },
                                deadline, WaitKind::Interruptible);
    if (ws == WaitStatus::Interrupted && !ep->closed) return fail(EINTR);
  } else if (epoll_collect_locked(*ep, nullptr, max, false) == 0) {
    e_.poll_before_eagain_locked();  // spin/busy-poll: an epoll_wait(0) loop moves the stack
  }
  if (ep->closed) return fail(EBADF);
  bool lt = false;
  int n = epoll_collect_locked(*ep, evs, max, true, &lt);
  // Wake mode: a level-triggered event stays ready, and events beyond `max`
  // wait, so other threads sleeping on the same instance must see them too
  // (Linux puts them back on the ready list and wakes another waiter).
  if (lt || !ep->ready.empty()) write_wake_locked(*ep);
  return n;
}

}  // namespace xs::native
