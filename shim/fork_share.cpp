#include "shim/fork_share.hpp"
#include "socketapi/quiet_thread.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "shim/pump_loop.hpp"
#include "shim/real.hpp"
#include "shim/sock_name.hpp"

namespace xs::shim::forkshare {

namespace {

enum Op : uint32_t {
  kActivate = 1, kRelease = 2, kGetOpt = 3, kSetOpt = 4, kShutdown = 5, kNewChannel = 6, kNames = 7, kFcntl = 8
};
constexpr size_t kOptMax = 128;

struct Req {
  uint32_t op = 0;
  int32_t fd = -1;   // the child's number of an inherited socket
  uint32_t id = 0;   // or a pumped connection's id (accepted through a proxy listener)
  int32_t level = 0, name = 0;
  uint32_t len = 0;
  uint8_t val[kOptMax]{};
};

struct Rep {
  int32_t rc = -1;
  int32_t err = EBADF;
  uint32_t kind = 0;
  uint32_t nonblock = 0;
  uint32_t id = 0;
  SockName local{}, peer{};
  uint32_t len = 0;
  uint8_t val[kOptMax]{};
};

// Sent by the parent on a proxy listener's new connection, before any data.
struct ConnHeader {
  uint32_t magic = 0x78736864;  // "xshd"
  uint32_t id = 0;
  SockName local{}, peer{};
};

// Before each datagram on a datagram proxy: parent -> child, the sender and
// the datagram's full length; child -> parent, the destination (family 0:
// the connected peer).
struct DgramHeader {
  uint32_t len = 0;
  SockName addr{};
};
constexpr size_t kMaxDatagram = 65535;

// ---- parent side ----------------------------------------------------------------

struct Pending {
  bool active = false;
  int chan_parent = -1, chan_child = -1;
  std::map<int, int> held;  // child's number -> parent's alias of the socket
};
thread_local Pending t_pending;

std::mutex g_pumps_mu;
std::unordered_map<uint32_t, int> g_pumps;  // id -> the pump's xstack descriptor
uint32_t g_next_id = 1;

struct ProxyListener {
  int ufd = -1;
  sockaddr_un addr{};
  socklen_t addr_len = 0;
};
std::mutex g_listeners_mu;
std::map<uint64_t, ProxyListener> g_listeners;  // local endpoint -> AF_UNIX listener

// The shim's own references to xstack sockets in the process with the stack
// (the aliases held for each child, the pumps' and the proxy listeners'
// descriptors, the connections accepted for a proxy listener). A fork
// hands the child the program's sockets only: were these handed too, each
// child's references would include the references held for the children
// alive at its fork, and a fork-per-connection server with a few
// connections at once (busybox httpd) would double them fork after fork
// until the descriptor limit (EMFILE).
std::atomic<uint8_t> g_internal[kMaxFd];
std::atomic<int> g_internal_top{0};  // above every number ever marked: the child's scan stops there

void own_mark(int fd) {
  if (fd < 0 || fd >= kMaxFd) return;
  g_internal[fd].store(1, std::memory_order_release);
  int top = g_internal_top.load(std::memory_order_relaxed);
  while (top <= fd && !g_internal_top.compare_exchange_weak(top, fd + 1, std::memory_order_relaxed)) {
  }
}
bool is_own(int fd) { return fd >= 0 && fd < kMaxFd && g_internal[fd].load(std::memory_order_acquire) != 0; }
int own_dup(int fd) {
  int a = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  own_mark(a);
  return a;
}
void own_close(int fd) {
  if (fd >= 0 && fd < kMaxFd) g_internal[fd].store(0, std::memory_order_release);  // before the number is free again
  ::close(fd);
}

uint32_t register_pump(int xsfd) {
  std::lock_guard<std::mutex> lk(g_pumps_mu);
  uint32_t id = g_next_id++;
  g_pumps[id] = xsfd;
  return id;
}

// Also called by the pump loop just before it closes the pump's descriptor.
void unregister_pump(uint32_t id) {
  std::lock_guard<std::mutex> lk(g_pumps_mu);
  auto it = g_pumps.find(id);
  if (it == g_pumps.end()) return;
  if (it->second >= 0 && it->second < kMaxFd) g_internal[it->second].store(0, std::memory_order_release);
  g_pumps.erase(it);
}

// Every proxied connection is served by the one pump loop (pump_loop.hpp).
void start_pump(int xsfd, int ufd, uint32_t id) { pumploop::add(xsfd, ufd, id, unregister_pump); }

// Connections adopted for an inherited epoll set (epoll_share.hpp): one
// proxy per connection, passed to every child that asks, so the children's
// entries in the shared set are one socket's, as on Linux (an edge, a
// one-shot event, goes to a process that can read the data). The parent
// keeps the children's end until the last child gives it back, then closes
// it, which ends the pump.
struct SharedConn {
  int child_end = -1;
  uint32_t id = 0;
  int refs = 0;
};
using ConnKey = std::pair<uint64_t, uint64_t>;  // local, peer endpoint
std::mutex g_shared_mu;
std::map<ConnKey, SharedConn> g_shared;

ConnKey conn_key(const SockName& local, const SockName& peer) { return {local.key(), peer.key()}; }

void shared_put(const ConnKey& key) {
  std::lock_guard<std::mutex> lk(g_shared_mu);
  auto it = g_shared.find(key);
  if (it == g_shared.end() || --it->second.refs > 0) return;
  real::close(it->second.child_end);
  g_shared.erase(it);
}

// Moves datagrams both ways between an xstack UDP socket and a child's
// seqpacket socket until the child closes it. Datagrams are read as they
// arrive, so while a child holds the socket it receives before the parent
// (Linux would give each datagram to whichever process reads first). A
// datagram the child has no room for is dropped, as UDP would drop it.
void dgram_pump(int xsfd, int ufd, uint32_t id) {
  std::unique_ptr<uint8_t[]> buf(new uint8_t[kMaxDatagram]);
  for (;;) {
    pollfd p[2] = {{xsfd, POLLIN, 0}, {ufd, POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (p[0].revents & POLLIN) {
      DgramHeader h;
      socklen_t al = sizeof h.addr.sa;
      ssize_t n = ::recvfrom(xsfd, buf.get(), kMaxDatagram, MSG_DONTWAIT | MSG_TRUNC, h.addr.get(), &al);
      if (n >= 0) {
        h.len = static_cast<uint32_t>(n);
        iovec iov[2] = {{&h, sizeof h}, {buf.get(), std::min<size_t>(static_cast<size_t>(n), kMaxDatagram)}};
        msghdr m{};
        m.msg_iov = iov;
        m.msg_iovlen = 2;
        if (real::sendmsg(ufd, &m, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && errno != EAGAIN && errno != ENOBUFS) break;
      }
    }
    if (p[1].revents & POLLIN) {
      DgramHeader h;
      iovec iov[2] = {{&h, sizeof h}, {buf.get(), kMaxDatagram}};
      msghdr m{};
      m.msg_iov = iov;
      m.msg_iovlen = 2;
      ssize_t n = real::recvmsg(ufd, &m, MSG_DONTWAIT);
      if (n == 0) break;  // the child closed its end
      if (n >= static_cast<ssize_t>(sizeof h)) {
        const bool named = h.addr.family() == AF_INET || h.addr.family() == AF_INET6;
        ::sendto(xsfd, buf.get(), static_cast<size_t>(n) - sizeof h, MSG_NOSIGNAL, named ? h.addr.get() : nullptr,
                 named ? h.addr.size() : 0);
      }
    } else if (p[1].revents & (POLLHUP | POLLERR)) {
      break;
    }
  }
  unregister_pump(id);
  real::close(ufd);
  own_close(xsfd);
}

uint64_t endpoint_key(int fd) {
  SockName n;
  socklen_t l = sizeof n.sa;
  if (::getsockname(fd, n.get(), &l) < 0) return 0;
  return n.key();
}

// Accepts on the xstack listener (an alias the thread owns) and pumps every
// connection into the AF_UNIX listener the children accept on.
void listener_pump(int lfd, sockaddr_un addr, socklen_t alen) {
  for (;;) {
    // Sleep in poll, which wakes for this listener's events only; a thread
    // blocked in accept4 is woken by every event of the stack (one per
    // frame of every connection) and made nginx's workers spend most of a
    // core here.
    pollfd pf{lfd, POLLIN, 0};
    if (::poll(&pf, 1, -1) < 0 && errno != EINTR) break;
    if (pf.revents & POLLNVAL) break;
    SockName peer;
    socklen_t pl = sizeof peer.sa;
    int c = ::accept4(lfd, peer.get(), &pl, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN) continue;
      break;  // the listener is gone (process exit)
    }
    own_mark(c);
    int u = real::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (u < 0 || real::connect(u, reinterpret_cast<sockaddr*>(&addr), alen) < 0) {
      if (u >= 0) real::close(u);
      own_close(c);
      continue;
    }
    ConnHeader h;
    socklen_t ll = sizeof h.local.sa;
    ::getsockname(c, h.local.get(), &ll);
    h.peer = peer;
    h.id = register_pump(c);
    if (real::send(u, &h, sizeof h, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof h)) {
      unregister_pump(h.id);
      real::close(u);
      own_close(c);
      continue;
    }
    start_pump(c, u, h.id);
  }
  own_close(lfd);
}

// The AF_UNIX listener standing for xstack listener `a` (made, with its
// pump, on first use).
int proxy_listener_for(int a) {
  uint64_t key = endpoint_key(a);
  std::lock_guard<std::mutex> lk(g_listeners_mu);
  auto it = g_listeners.find(key);
  if (it != g_listeners.end()) return it->second.ufd;
  ProxyListener pl;
  pl.ufd = real::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (pl.ufd < 0) return -1;
  pl.addr.sun_family = AF_UNIX;
  // Abstract name (no file): gone with the process.
  int n = std::snprintf(pl.addr.sun_path + 1, sizeof pl.addr.sun_path - 1, "xstack-%d-%llx", static_cast<int>(getpid()),
                        static_cast<unsigned long long>(key));
  pl.addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + n);
  if (real::bind(pl.ufd, reinterpret_cast<sockaddr*>(&pl.addr), pl.addr_len) < 0 || real::listen(pl.ufd, 4096) < 0) {
    real::close(pl.ufd);
    return -1;
  }
  int lfd = own_dup(a);  // the pump's own reference
  if (lfd < 0) {
    real::close(pl.ufd);
    return -1;
  }
  xs::start_quiet_thread(listener_pump, lfd, pl.addr, pl.addr_len).detach();
  g_listeners[key] = pl;
  return pl.ufd;
}

void reply(int chan, const Rep& r, int pass_fd) {
  iovec iov{const_cast<Rep*>(&r), sizeof r};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))];
  if (pass_fd >= 0) {
    m.msg_control = cbuf;
    m.msg_controllen = sizeof cbuf;
    cmsghdr* c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
  }
  real::sendmsg(chan, &m, MSG_NOSIGNAL);
}

// Answers one child's requests until it exits (or execs), then gives back
// the references it held.
void serve(int chan, std::map<int, int> held) {
  std::map<int, ConnKey> shared;  // child's number -> a shared proxy it holds
  for (;;) {
    Req q;
    ssize_t n = real::recv(chan, &q, sizeof q, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n != static_cast<ssize_t>(sizeof q)) break;
    Rep r;
    int target = -1;
    if (q.id != 0) {
      std::lock_guard<std::mutex> lk(g_pumps_mu);
      auto it = g_pumps.find(q.id);
      if (it != g_pumps.end()) target = it->second;
    } else if (auto it = held.find(q.fd); it != held.end()) {
      target = it->second;
    }
    switch (q.op) {
      case kRelease:
        if (q.id == 0 && target >= 0) {
          own_close(target);
          held.erase(q.fd);
        }
        if (auto it = shared.find(q.fd); q.id == 0 && it != shared.end()) {
          shared_put(it->second);
          shared.erase(it);
        }
        continue;  // no reply
      case kActivate: {
        if (target < 0) break;
        int type = 0, acc = 0;
        socklen_t l = sizeof type;
        ::getsockopt(target, SOL_SOCKET, SO_TYPE, &type, &l);
        l = sizeof acc;
        ::getsockopt(target, SOL_SOCKET, SO_ACCEPTCONN, &acc, &l);
        r.nonblock = (::fcntl(target, F_GETFL, 0) & O_NONBLOCK) != 0;
        socklen_t sl = sizeof r.local.sa;
        ::getsockname(target, r.local.get(), &sl);
        if (type == SOCK_DGRAM) {
          sl = sizeof r.peer.sa;
          ::getpeername(target, r.peer.get(), &sl);  // ENOTCONN: stays zero
          int sv[2];
          if (real::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
            r.err = errno;
            break;
          }
          int mine = own_dup(target);
          if (mine < 0) {
            r.err = errno;
            real::close(sv[0]);
            real::close(sv[1]);
            break;
          }
          r.id = register_pump(mine);
          xs::start_quiet_thread(dgram_pump, mine, sv[0], r.id).detach();
          r.rc = 0;
          r.kind = static_cast<uint32_t>(FdKind::ProxyDgram);
          reply(chan, r, sv[1]);
          real::close(sv[1]);
          continue;
        }
        if (type != SOCK_STREAM) {
          r.err = EOPNOTSUPP;
          break;
        }
        if (acc) {
          int u = proxy_listener_for(target);
          if (u < 0) {
            r.err = errno;
            break;
          }
          r.rc = 0;
          r.kind = static_cast<uint32_t>(FdKind::ProxyListener);
          reply(chan, r, u);
          continue;
        }
        sl = sizeof r.peer.sa;
        ::getpeername(target, r.peer.get(), &sl);
        bool share = q.level == 1;  // for an inherited epoll set
        ConnKey key = conn_key(r.local, r.peer);
        // Held until the new proxy is in g_shared: two children asking at
        // once must get the same one.
        std::unique_lock<std::mutex> shared_lk(g_shared_mu, std::defer_lock);
        if (share) {
          shared_lk.lock();
          auto it = g_shared.find(key);
          if (it != g_shared.end() && shared.count(q.fd) == 0) {
            it->second.refs++;
            shared[q.fd] = key;
            r.rc = 0;
            r.id = it->second.id;
            r.kind = static_cast<uint32_t>(FdKind::ProxyConn);
            reply(chan, r, it->second.child_end);
            continue;
          }
        }
        int sv[2];
        if (real::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
          r.err = errno;
          break;
        }
        int mine = own_dup(target);
        if (mine < 0) {
          r.err = errno;
          real::close(sv[0]);
          real::close(sv[1]);
          break;
        }
        r.id = register_pump(mine);
        start_pump(mine, sv[0], r.id);
        r.rc = 0;
        r.kind = static_cast<uint32_t>(FdKind::ProxyConn);
        reply(chan, r, sv[1]);
        if (share && shared.count(q.fd) == 0) {
          g_shared[key] = SharedConn{sv[1], r.id, 1};
          shared[q.fd] = key;
        } else {
          real::close(sv[1]);
        }
        continue;
      }
      case kGetOpt: {
        if (target < 0) break;
        socklen_t l = std::min<socklen_t>(q.len, kOptMax);
        r.rc = ::getsockopt(target, q.level, q.name, r.val, &l);
        r.err = r.rc < 0 ? errno : 0;
        r.len = l;
        break;
      }
      case kNewChannel: {
        // A child is forking: its child gets a channel of its own (sharing
        // this one would mix up their replies), holding its own references
        // to the sockets this child has not adopted or closed.
        int sv[2];
        if (real::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
          r.err = errno;
          break;
        }
        std::map<int, int> copies;
        for (auto& [cfd, a] : held) {
          int d = own_dup(a);
          if (d >= 0) copies[cfd] = d;
        }
        xs::start_quiet_thread(serve, sv[0], std::move(copies)).detach();
        r.rc = 0;
        reply(chan, r, sv[1]);
        real::close(sv[1]);
        continue;
      }
      case kNames: {  // an orphan's addresses, without adopting it
        if (target < 0) break;
        socklen_t sl = sizeof r.local.sa;
        r.rc = ::getsockname(target, r.local.get(), &sl);
        r.err = r.rc < 0 ? errno : 0;
        sl = sizeof r.peer.sa;
        r.len = ::getpeername(target, r.peer.get(), &sl) < 0 ? static_cast<uint32_t>(errno) : 0;
        break;
      }
      case kFcntl:  // F_GETFL/F_SETFL on an orphan: the flags are the open file's, shared as on Linux
        if (target < 0) break;
        r.rc = ::fcntl(target, q.level, static_cast<long>(q.name));
        r.err = r.rc < 0 ? errno : 0;
        break;
      case kShutdown: {
        if (target < 0) break;
        int type = 0;
        socklen_t l = sizeof type;
        ::getsockopt(target, SOL_SOCKET, SO_TYPE, &type, &l);
        if (q.id != 0 && type == SOCK_STREAM && (q.level == SHUT_WR || q.level == SHUT_RDWR)) {
          // A pumped connection: the child wrote its data into the stream
          // before asking, and shuts its end after the answer; the pump
          // loop sends the FIN once it has moved all of it (an immediate
          // shutdown here overtook a response written just before a
          // lingering close: apache, busybox httpd answered nothing).
          SockName peer;
          socklen_t pl = sizeof peer.sa;
          r.rc = ::getpeername(target, peer.get(), &pl);  // ENOTCONN as shutdown would say
          if (r.rc == 0 && q.level == SHUT_RDWR) r.rc = ::shutdown(target, SHUT_RD);
          if (r.rc == 0 && !pumploop::shutdown_after_child(q.id)) r.rc = ::shutdown(target, SHUT_WR);
          r.err = r.rc < 0 ? errno : 0;
          break;
        }
        r.rc = ::shutdown(target, q.level);
        r.err = r.rc < 0 ? errno : 0;
        break;
      }
      case kSetOpt:
        if (target < 0) break;
        r.rc = ::setsockopt(target, q.level, q.name, q.val, std::min<socklen_t>(q.len, kOptMax));
        r.err = r.rc < 0 ? errno : 0;
        break;
      default: r.err = EINVAL;
    }
    reply(chan, r, -1);
  }
  for (auto& [fd, a] : held) own_close(a);
  for (auto& [fd, key] : shared) shared_put(key);
  real::close(chan);
}

// ---- child side -----------------------------------------------------------------

int g_chan = -1;
std::mutex g_chan_mu;

struct Info {
  uint32_t id = 0;         // a pumped connection (0: a listener, asked by number)
  bool inherited = false;  // adopted: the parent holds a reference until we close it
  SockName local{}, peer{};
};
std::mutex g_info_mu;
// A function-local static: import_exec runs from the shim's constructor,
// possibly before this file's globals are constructed.
std::unordered_map<int, Info>& info_map() {
  static std::unordered_map<int, Info> m;
  return m;
}

// One request and its reply (and a passed descriptor, if any).
bool call(const Req& q, Rep* r, int* passed) {
  if (passed) *passed = -1;
  if (real::send(g_chan, &q, sizeof q, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof q)) return false;
  iovec iov{r, sizeof *r};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))];
  m.msg_control = cbuf;
  m.msg_controllen = sizeof cbuf;
  ssize_t n;
  do {
    n = real::recvmsg(g_chan, &m, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(sizeof *r)) return false;
  for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && passed) std::memcpy(passed, CMSG_DATA(c), sizeof(int));
  }
  return true;
}

bool info_of(int fd, Info* out) {
  std::lock_guard<std::mutex> lk(g_info_mu);
  auto it = info_map().find(fd);
  if (it == info_map().end()) return false;
  *out = it->second;
  return true;
}


}  // namespace

void prepare() {
  Pending& p = t_pending;
  p = Pending{};
  if (rt() == nullptr) {
    // A child forking in turn (a forking server's worker, a double fork):
    // the grandchild needs its own channel to the process with the stack.
    std::lock_guard<std::mutex> lk(g_chan_mu);
    if (g_chan < 0) return;
    Req q;
    q.op = kNewChannel;
    Rep r;
    int got = -1;
    if (!call(q, &r, &got) || r.rc < 0 || got < 0) {
      if (got >= 0) real::close(got);
      return;
    }
    p.active = true;
    p.chan_child = got;  // chan_parent stays -1: the serving end is with the stack
    return;
  }
  int sv[2];
  if (real::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) return;
  p.chan_parent = sv[0];
  p.chan_child = sv[1];
  p.active = true;
  std::vector<int> socks;  // listed first: each alias made below is an xstack socket too
  for (int fd = 0; fd < kMaxFd; ++fd) {
    if (kind(fd) == FdKind::XsSocket && !is_own(fd)) socks.push_back(fd);
  }
  for (int fd : socks) {
    int a = own_dup(fd);  // an alias the parent holds for the child
    if (a >= 0) p.held[fd] = a;
  }
}

void parent() {
  Pending& p = t_pending;
  if (!p.active) return;
  real::close(p.chan_child);
  if (p.chan_parent >= 0) xs::start_quiet_thread(serve, p.chan_parent, std::move(p.held)).detach();
  p = Pending{};
}

void child() {
  pumploop::forget_after_fork();
  Pending& p = t_pending;
  // A grandchild keeps what it knows of its proxies (addresses, ids) but not
  // its parent's channel, whose replies belong to the parent.
  if (g_chan >= 0) real::close(g_chan);
  g_chan = -1;
  if (!p.active) return;
  if (p.chan_parent >= 0) real::close(p.chan_parent);
  for (auto& [fd, a] : p.held) {
    set_kind(a, FdKind::Kernel);
    g_internal[a].store(0, std::memory_order_relaxed);
    real::close(a);  // the parent's references, not ours
  }
  // The parent's other own references (pumps, proxy listeners, the aliases
  // held for its other children) are no socket of this process either.
  if (rt() != nullptr) {
    const int top = g_internal_top.load(std::memory_order_relaxed);
    for (int fd = 0; fd < top; ++fd) {
      if (g_internal[fd].load(std::memory_order_relaxed) == 0) continue;
      g_internal[fd].store(0, std::memory_order_relaxed);
      if (kind(fd) != FdKind::XsSocket) continue;
      set_kind(fd, FdKind::Kernel);
      real::close(fd);
    }
  }
  g_chan = p.chan_child;
  p = Pending{};
}

FdKind adopt(int fd, bool shared) {
  std::lock_guard<std::mutex> lk(g_chan_mu);
  FdKind k = kind(fd);
  if (k != FdKind::Orphan) return k;  // another thread did it
  if (g_chan < 0) return FdKind::Orphan;
  Req q;
  q.op = kActivate;
  q.fd = fd;
  q.level = shared ? 1 : 0;
  Rep r;
  int got = -1;
  if (!call(q, &r, &got) || r.rc < 0 || got < 0) {
    log(LogLevel::Warn, "fd %d: inherited xstack socket not usable in this child (%s)", fd,
        std::strerror(r.rc < 0 ? r.err : EBADF));
    if (got >= 0) real::close(got);
    return FdKind::Orphan;
  }
  if (r.nonblock) real::fcntl(got, F_SETFL, O_NONBLOCK);
  int fdfl = real::fcntl(fd, F_GETFD, 0);
  if (real::dup3(got, fd, (fdfl >= 0 && (fdfl & FD_CLOEXEC)) ? O_CLOEXEC : 0) < 0) {
    real::close(got);
    return FdKind::Orphan;
  }
  real::close(got);
  Info in;
  in.id = r.id;  // a connection's pump (0 for a listener: asked by number)
  in.inherited = true;
  in.local = r.local;
  in.peer = r.peer;
  {
    std::lock_guard<std::mutex> lk2(g_info_mu);
    info_map()[fd] = in;
  }
  FdKind nk = static_cast<FdKind>(r.kind);
  set_kind(fd, nk);
  log(LogLevel::Debug, "fd %d: inherited xstack socket now served by the parent", fd);
  return nk;
}

int channel_fd() {
  std::lock_guard<std::mutex> lk(g_chan_mu);
  return g_chan;
}

void release(int fd) {
  std::lock_guard<std::mutex> lk(g_chan_mu);
  if (g_chan < 0) return;
  Req q;
  q.op = kRelease;
  q.fd = fd;
  real::send(g_chan, &q, sizeof q, MSG_NOSIGNAL);
}

ssize_t dgram_recvmsg(int fd, msghdr* msg, int flags) {
  if (msg == nullptr) return fail(EFAULT);
  if (flags & MSG_OOB) return fail(EOPNOTSUPP);
  if (msg->msg_iovlen > 1023) return fail(EMSGSIZE);
  DgramHeader h;
  iovec iov[1024];
  iov[0] = {&h, sizeof h};
  for (size_t i = 0; i < msg->msg_iovlen; ++i) iov[i + 1] = msg->msg_iov[i];
  msghdr m{};
  m.msg_iov = iov;
  m.msg_iovlen = msg->msg_iovlen + 1;
  ssize_t n = real::recvmsg(fd, &m, flags & (MSG_DONTWAIT | MSG_PEEK));
  if (n < 0) return -1;
  if (n < static_cast<ssize_t>(sizeof h)) return fail(EAGAIN);  // the parent went away
  size_t got = static_cast<size_t>(n) - sizeof h;
  if (msg->msg_name != nullptr) {
    std::memcpy(msg->msg_name, &h.addr.sa, std::min<size_t>(msg->msg_namelen, h.addr.size()));
    msg->msg_namelen = h.addr.size();
  }
  msg->msg_controllen = 0;
  msg->msg_flags = h.len > got ? MSG_TRUNC : 0;
  return static_cast<ssize_t>((flags & MSG_TRUNC) ? h.len : got);  // MSG_TRUNC: the real length, as UDP
}

ssize_t dgram_sendmsg(int fd, const msghdr* msg, int flags) {
  if (msg == nullptr) return fail(EFAULT);
  if (flags & MSG_OOB) return fail(EOPNOTSUPP);
  if (msg->msg_iovlen > 1023) return fail(EMSGSIZE);
  DgramHeader h;
  if (msg->msg_name != nullptr && msg->msg_namelen > 0) {
    if (int e = SockName::from_user(static_cast<const sockaddr*>(msg->msg_name), msg->msg_namelen, &h.addr))
      return fail(e);
  } else {
    Info in;
    if (!info_of(fd, &in) || in.peer.port() == 0) return fail(EDESTADDRREQ);
    h.addr = in.peer;
  }
  size_t total = 0;
  iovec iov[1024];
  iov[0] = {&h, sizeof h};
  for (size_t i = 0; i < msg->msg_iovlen; ++i) {
    iov[i + 1] = msg->msg_iov[i];
    total += msg->msg_iov[i].iov_len;
  }
  if (total > 65507) return fail(EMSGSIZE);  // IPv4 UDP's limit, as udp_sendmsg
  h.len = static_cast<uint32_t>(total);
  msghdr m{};
  m.msg_iov = iov;
  m.msg_iovlen = msg->msg_iovlen + 1;
  ssize_t n = real::sendmsg(fd, &m, (flags & MSG_DONTWAIT) | MSG_NOSIGNAL);
  if (n < 0) return errno == EPIPE ? fail(ECONNREFUSED) : -1;
  return static_cast<ssize_t>(total);
}

int dgram_connect(int fd, const sockaddr* addr, socklen_t len) {
  // The default destination is this process's own: the parent's socket
  // keeps its own (the datagrams it sends for us carry their address).
  if (addr == nullptr) return fail(EFAULT);
  if (len < sizeof(sa_family_t)) return fail(EINVAL);
  std::lock_guard<std::mutex> lk(g_info_mu);
  auto it = info_map().find(fd);
  if (it == info_map().end()) return fail(EBADF);
  if (addr->sa_family == AF_UNSPEC) {
    it->second.peer = SockName{};
    return 0;
  }
  SockName n;
  if (int e = SockName::from_user(addr, len, &n)) return fail(e);
  it->second.peer = n;
  return 0;
}

int orphan_names(int fd, bool peer, sockaddr* addr, socklen_t* len) {
  Req q;
  q.op = kNames;
  q.fd = fd;
  Rep r;
  {
    std::lock_guard<std::mutex> lk(g_chan_mu);
    if (g_chan < 0 || !call(q, &r, nullptr)) return fail(EBADF);
  }
  if (r.rc < 0) return fail(r.err);
  if (peer && r.len != 0) return fail(static_cast<int>(r.len));
  return put_name(peer ? r.peer : r.local, addr, len);
}

int orphan_fcntl(int fd, int cmd, long arg) {
  Req q;
  q.op = kFcntl;
  q.fd = fd;
  q.level = cmd;
  q.name = static_cast<int32_t>(arg);
  Rep r;
  {
    std::lock_guard<std::mutex> lk(g_chan_mu);
    if (g_chan < 0 || !call(q, &r, nullptr)) return fail(EBADF);
  }
  if (r.rc < 0) return fail(r.err);
  return r.rc;
}

void copy_info(int from, int to) {
  std::lock_guard<std::mutex> lk(g_info_mu);
  auto it = info_map().find(from);
  if (it == info_map().end()) return;
  Info in = it->second;
  in.inherited = false;  // the parent's reference goes with the first number
  info_map()[to] = in;
}

std::string prepare_exec() {
  if (g_chan < 0) return {};
  std::string out;
  for (int fd = 0; fd < kMaxFd; ++fd) {
    FdKind k = kind(fd);
    if (k == FdKind::Kernel) continue;
    int fl = real::fcntl(fd, F_GETFD, 0);
    if (fl < 0 || (fl & FD_CLOEXEC)) continue;
    // An orphan stays one: adopting it now would start a pump that takes
    // its data from the parent whether or not the new image ever reads it.
    // The new image adopts it at first use, through the same channel.
    Info in;
    if (k != FdKind::Orphan && (!is_proxy(k) || !info_of(fd, &in))) continue;
    char buf[128];
    std::snprintf(buf, sizeof buf, "%d:%u:%u:%u:%u:%08x:%u:%08x:%u,", fd, static_cast<unsigned>(k), in.id,
                  in.inherited ? 1u : 0u, static_cast<unsigned>(in.local.family()), in.local.v4(), in.local.port(),
                  in.peer.v4(), in.peer.port());
    out += buf;
  }
  std::lock_guard<std::mutex> lk(g_chan_mu);
  if (out.empty() || g_chan < 0) return {};
  // The new image asks the parent through the same channel: it is this
  // process still, so the replies stay in order.
  int fl = real::fcntl(g_chan, F_GETFD, 0);
  real::fcntl(g_chan, F_SETFD, fl & ~FD_CLOEXEC);
  return "c" + std::to_string(g_chan) + "," + out;
}

void undo_exec() {
  std::lock_guard<std::mutex> lk(g_chan_mu);
  if (g_chan < 0) return;
  int fl = real::fcntl(g_chan, F_GETFD, 0);
  real::fcntl(g_chan, F_SETFD, fl | FD_CLOEXEC);
}

void import_exec(const char* desc) {
  const char* p = desc;
  int chan = -1;
  if (std::sscanf(p, "c%d,", &chan) != 1 || chan < 0 || real::fcntl(chan, F_GETFD, 0) < 0) return;
  real::fcntl(chan, F_SETFD, FD_CLOEXEC);
  p = std::strchr(p, ',');
  while (p != nullptr && *++p != '\0') {
    int fd = -1;
    unsigned k = 0, id = 0, inh = 0, fam = 0, la = 0, lp = 0, pa = 0, pp = 0;
    if (std::sscanf(p, "%d:%u:%u:%u:%u:%x:%u:%x:%u", &fd, &k, &id, &inh, &fam, &la, &lp, &pa, &pp) != 9) break;
    p = std::strchr(p, ',');
    if (fd < 0 || fd >= kMaxFd || real::fcntl(fd, F_GETFD, 0) < 0) continue;
    FdKind kd = static_cast<FdKind>(k);
    if (kd == FdKind::Orphan) {
      set_kind(fd, kd);
      continue;
    }
    if (!is_proxy(kd)) continue;
    Info in;
    in.id = id;
    in.inherited = inh != 0;
    const sa_family_t f = fam == AF_INET6 ? AF_INET6 : AF_INET;
    in.local = SockName::of(f, la, static_cast<uint16_t>(lp));
    in.peer = SockName::of(f, pa, static_cast<uint16_t>(pp));
    {
      std::lock_guard<std::mutex> lk(g_info_mu);
      info_map()[fd] = in;
    }
    set_kind(fd, kd);
  }
  std::lock_guard<std::mutex> lk(g_chan_mu);
  g_chan = chan;
}

void forget(int fd) {
  Info in;
  bool inherited = info_of(fd, &in) && in.inherited;
  {
    std::lock_guard<std::mutex> lk(g_info_mu);
    info_map().erase(fd);
  }
  if (inherited) release(fd);
}

int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
  if (addr != nullptr && (len == nullptr || static_cast<int>(*len) < 0)) return fail(len == nullptr ? EFAULT : EINVAL);
  int c = real::accept4(fd, nullptr, nullptr, flags);
  if (c < 0) return -1;
  // The header the parent wrote before anything else (it is there or on its way).
  ConnHeader h;
  size_t got = 0;
  while (got < sizeof h) {
    pollfd p{c, POLLIN, 0};
    if (real::poll(&p, 1, 5000) <= 0) break;
    ssize_t n = real::recv(c, reinterpret_cast<char*>(&h) + got, sizeof h - got, MSG_DONTWAIT);
    if (n <= 0) {
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      break;
    }
    got += static_cast<size_t>(n);
  }
  if (got != sizeof h || h.magic != ConnHeader{}.magic) {
    real::close(c);
    return fail(ECONNABORTED);
  }
  Info in;
  in.id = h.id;
  in.local = h.local;
  in.peer = h.peer;
  {
    std::lock_guard<std::mutex> lk(g_info_mu);
    info_map()[c] = in;
  }
  set_kind(c, FdKind::ProxyConn);
  if (addr != nullptr) put_name(h.peer, addr, len);
  return c;
}

int getsockname(int fd, sockaddr* addr, socklen_t* len) {
  Info in;
  if (!info_of(fd, &in)) return fail(EBADF);
  return put_name(in.local, addr, len);
}

int getpeername(int fd, sockaddr* addr, socklen_t* len) {
  Info in;
  if (!info_of(fd, &in)) return fail(EBADF);
  if (kind(fd) == FdKind::ProxyListener) return fail(ENOTCONN);
  if (kind(fd) == FdKind::ProxyDgram && in.peer.port() == 0) return fail(ENOTCONN);
  return put_name(in.peer, addr, len);
}

int getsockopt(int fd, int level, int name, void* val, socklen_t* len) {
  Info in;
  if (!info_of(fd, &in) && kind(fd) != FdKind::Orphan) return fail(EBADF);
  if (len == nullptr || val == nullptr) return fail(EFAULT);
  Req q;
  q.op = kGetOpt;
  q.fd = fd;
  q.id = in.id;
  q.level = level;
  q.name = name;
  q.len = std::min<uint32_t>(*len, kOptMax);
  Rep r;
  std::lock_guard<std::mutex> lk(g_chan_mu);
  if (!call(q, &r, nullptr)) return fail(EBADF);
  if (r.rc < 0) return fail(r.err);
  std::memcpy(val, r.val, std::min<size_t>(r.len, *len));
  *len = r.len;
  return 0;
}

int shutdown(int fd, int how) {
  Info in;
  if (!info_of(fd, &in) && kind(fd) != FdKind::Orphan) return fail(EBADF);
  if (how < SHUT_RD || how > SHUT_RDWR) return fail(EINVAL);
  Req q;
  q.op = kShutdown;
  q.fd = fd;
  q.id = in.id;
  q.level = how;
  Rep r;
  {
    std::lock_guard<std::mutex> lk(g_chan_mu);
    if (!call(q, &r, nullptr)) return fail(EBADF);
  }
  if (r.rc < 0) return fail(r.err);
  real::shutdown(fd, how);  // and on our end, so that our own reads and writes see it
  return 0;
}

int setsockopt(int fd, int level, int name, const void* val, socklen_t len) {
  Info in;
  if (!info_of(fd, &in) && kind(fd) != FdKind::Orphan) return fail(EBADF);
  if (len > kOptMax) return fail(EINVAL);
  if (val == nullptr && len > 0) return fail(EFAULT);
  Req q;
  q.op = kSetOpt;
  q.fd = fd;
  q.id = in.id;
  q.level = level;
  q.name = name;
  q.len = len;
  if (len > 0) std::memcpy(q.val, val, len);
  Rep r;
  std::lock_guard<std::mutex> lk(g_chan_mu);
  if (!call(q, &r, nullptr)) return fail(EBADF);
  if (r.rc < 0) return fail(r.err);
  return 0;
}

}  // namespace xs::shim::forkshare
