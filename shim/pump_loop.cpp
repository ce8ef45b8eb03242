#include "shim/pump_loop.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "shim/real.hpp"
#include "shim/state.hpp"
#include "socketapi/quiet_thread.hpp"

namespace xs::shim::pumploop {

namespace {

constexpr size_t kBuf = 64 * 1024;
constexpr uint32_t kAnyIn = EPOLLIN | EPOLLHUP | EPOLLERR;

// One proxied connection: the bytes in flight each way and how far each end
// has got. The rules are those of a socket pair glued together: a FIN from
// the peer becomes shutdown(SHUT_WR) toward the child; the child's own
// shutdown reaches the xstack socket by request (kShutdown, fork_share.cpp),
// because an EOF here may also mean the child merely closed its copy, which
// must not end a connection other processes hold (Linux closes a socket with
// its last descriptor).
struct Conn {
  int xsfd = -1, ufd = -1;
  uint32_t id = 0;
  DoneFn done = nullptr;
  std::unique_ptr<char[]> a2u{new char[kBuf]}, u2a{new char[kBuf]};
  size_t a2u_len = 0, a2u_off = 0, u2a_len = 0, u2a_off = 0;
  bool xs_eof = false, u_eof = false, u_shut = false, child_gone = false;
  bool shut_wr = false, xs_shut = false;  // the child's shutdown(SHUT_WR): asked, done
  bool xs_in_set = false, u_in_set = false;
  uint32_t xs_events = 0, u_events = 0;
};

struct Loop {
  std::mutex mu;
  int ep = -1;
  std::unordered_map<uint32_t, std::unique_ptr<Conn>> conns;
};
// Never destroyed: the detached loop thread may still run while the process
// exits.
Loop* g_loop = new Loop;

uint64_t tag(uint32_t id, bool child_side) { return (uint64_t{id} << 1) | (child_side ? 1 : 0); }

// Puts one end in the set with `events`, or takes it out when nothing is
// wanted: epoll reports EPOLLHUP whatever the mask, and a child that has
// closed while we wait for the other end must not spin the loop.
void watch(int ep, Conn& c, bool child_side, uint32_t events, bool keep) {
  int fd = child_side ? c.ufd : c.xsfd;
  bool& in_set = child_side ? c.u_in_set : c.xs_in_set;
  uint32_t& cur = child_side ? c.u_events : c.xs_events;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = tag(c.id, child_side);
  if (events == 0 && !keep) {
    if (in_set) ::epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
    in_set = false;
  } else if (!in_set) {
    in_set = ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0;
    cur = events;
  } else if (cur != events) {
    ::epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
    cur = events;
  }
}

void rewatch(int ep, Conn& c) {
  uint32_t xe = 0, ue = 0;
  if (!c.xs_eof && c.a2u_len == 0) xe |= EPOLLIN;
  if (c.u2a_len > 0) xe |= EPOLLOUT;
  if (!c.u_eof && c.u2a_len == 0) ue |= EPOLLIN;
  if (c.a2u_len > 0) ue |= EPOLLOUT;
  watch(ep, c, false, xe, false);
  // Once the child has shut its side, the end stays watched only to learn
  // that the child closed it (EPOLLHUP), and only when nothing waits to go
  // to the xstack side.
  watch(ep, c, true, ue, c.u_eof && c.u2a_len == 0);
}

// One round for a connection whose ends reported `xs_rev` / `u_rev`.
// True when the proxy is finished.
bool step(Conn& c, uint32_t xs_rev, uint32_t u_rev) {
  if ((xs_rev & kAnyIn) && !c.xs_eof && c.a2u_len == 0) {
    ssize_t n = ::recv(c.xsfd, c.a2u.get(), kBuf, MSG_DONTWAIT);
    if (n > 0) {
      c.a2u_len = static_cast<size_t>(n);
      c.a2u_off = 0;
    } else if (n == 0) {
      c.xs_eof = true;
    } else if (errno != EAGAIN && errno != EINTR) {
      c.xs_eof = true;  // reset or error: the child sees EOF
      c.a2u_len = 0;
    }
  }
  if (c.a2u_len > 0) {
    ssize_t n = ::send(c.ufd, c.a2u.get() + c.a2u_off, c.a2u_len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      c.a2u_off += static_cast<size_t>(n);
      c.a2u_len -= static_cast<size_t>(n);
    } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
      c.child_gone = true;  // the child closed its end
    }
  }
  // Child to connection: what is pending first, then read on while each
  // read goes out whole. A child that writes its answer and closes (nginx
  // with `Connection: close`) is thus seen closing in the same round, and
  // the FIN leaves with the data: sent a round later, it reached the peer
  // after the peer had closed first, leaving the peer's ports in TIME_WAIT.
  bool u_try = (u_rev & kAnyIn) != 0;
  for (int round = 0; round < 16 && !c.child_gone; ++round) {
    if (c.u2a_len > 0) {
      ssize_t n = ::send(c.xsfd, c.u2a.get() + c.u2a_off, c.u2a_len, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0) {
        c.u2a_off += static_cast<size_t>(n);
        c.u2a_len -= static_cast<size_t>(n);
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        c.u2a_len = 0;  // the connection is gone; the child learns it from the EOF above
      }
      if (c.u2a_len > 0) break;  // the connection's send buffer is full: wait for EPOLLOUT
    }
    if (!u_try || c.u_eof) break;
    ssize_t n = ::recv(c.ufd, c.u2a.get(), kBuf, MSG_DONTWAIT);
    if (n > 0) {
      c.u2a_len = static_cast<size_t>(n);
      c.u2a_off = 0;
    } else if (n == 0) {
      c.u_eof = true;
      // End of stream: shutdown(SHUT_WR) by the child, or its close
      // (EPOLLHUP, both directions shut), which ends this proxy.
      pollfd pf{c.ufd, 0, 0};
      if (real::poll(&pf, 1, 0) == 1 && (pf.revents & POLLHUP)) u_rev |= EPOLLHUP;
    } else {
      if (errno != EAGAIN && errno != EINTR) c.child_gone = true;
      break;
    }
  }
  if (c.u_eof && (u_rev & EPOLLHUP) && c.u2a_len == 0) c.child_gone = true;
  if (c.shut_wr && !c.xs_shut && c.u_eof && c.u2a_len == 0) {
    ::shutdown(c.xsfd, SHUT_WR);  // after everything the child wrote before it
    c.xs_shut = true;
  }
  if (c.xs_eof && c.a2u_len == 0 && !c.u_shut) {
    ::shutdown(c.ufd, SHUT_WR);
    c.u_shut = true;
  }
  return c.child_gone || (c.xs_eof && c.u_eof && c.a2u_len == 0 && c.u2a_len == 0);
}

void finish(Loop& l, Conn& c) {
  if (c.xs_in_set) ::epoll_ctl(l.ep, EPOLL_CTL_DEL, c.xsfd, nullptr);
  if (c.u_in_set) ::epoll_ctl(l.ep, EPOLL_CTL_DEL, c.ufd, nullptr);
  if (c.shut_wr && !c.xs_shut) ::shutdown(c.xsfd, SHUT_WR);  // the child's SHUT_RDWR
  if (c.done != nullptr) c.done(c.id);
  ::close(c.ufd);
  ::close(c.xsfd);  // drops this reference to the xstack socket
}

void run(Loop* l) {
  // add() holds the lock until the first connection is in the set, so the
  // first wait already goes through the set's xstack companion: a sleep
  // begun before it existed would not see its wakes once a fork has made
  // the set's wakes private (epoll_share.hpp).
  { std::lock_guard<std::mutex> lk(l->mu); }
  epoll_event evs[64];
  for (;;) {
    int n = ::epoll_wait(l->ep, evs, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      log(LogLevel::Warn, "fork proxies: epoll_wait failed (%s); proxied connections stall", std::strerror(errno));
      return;
    }
    std::lock_guard<std::mutex> lk(l->mu);
    for (int i = 0; i < n; ++i) {
      const uint32_t id = static_cast<uint32_t>(evs[i].data.u64 >> 1);
      const bool child_side = (evs[i].data.u64 & 1) != 0;
      auto it = l->conns.find(id);
      if (it == l->conns.end()) continue;  // finished earlier in this batch
      Conn& c = *it->second;
      if (step(c, child_side ? 0 : evs[i].events, child_side ? evs[i].events : 0)) {
        finish(*l, c);
        l->conns.erase(it);
      } else {
        rewatch(l->ep, c);
      }
    }
  }
}

}  // namespace

bool add(int xsfd, int ufd, uint32_t id, DoneFn done) {
  Loop* l = g_loop;
  std::lock_guard<std::mutex> lk(l->mu);
  if (l->ep < 0) {
    l->ep = ::epoll_create1(EPOLL_CLOEXEC);
    if (l->ep >= 0) xs::start_quiet_thread(run, l).detach();
  }
  auto c = std::make_unique<Conn>();
  c->xsfd = xsfd;
  c->ufd = ufd;
  c->id = id;
  c->done = done;
  if (l->ep < 0) {
    finish(*l, *c);
    return false;
  }
  ::fcntl(ufd, F_SETFL, O_NONBLOCK);
  rewatch(l->ep, *c);
  l->conns.emplace(id, std::move(c));
  return true;
}

bool shutdown_after_child(uint32_t id) {
  Loop* l = g_loop;
  std::lock_guard<std::mutex> lk(l->mu);
  auto it = l->conns.find(id);
  if (it == l->conns.end()) return false;
  Conn& c = *it->second;
  c.shut_wr = true;
  if (!c.xs_shut && c.u_eof && c.u2a_len == 0) {
    ::shutdown(c.xsfd, SHUT_WR);
    c.xs_shut = true;
  }
  return true;
}

void forget_after_fork() {
  // The parent's loop (its thread, its set, its connections) stays the
  // parent's; its memory here is left alone, as the parent's copies of those
  // descriptors are.
  g_loop = new Loop;
}

}  // namespace xs::shim::pumploop
