#include "socketapi/native_internal.hpp"

namespace xs::native {

namespace {
std::atomic<int64_t> g_default_tx_defer_us{0};  // set_default_tx_defer
}  // namespace

void set_default_tx_defer(Duration d) { g_default_tx_defer_us.store(d.us, std::memory_order_relaxed); }

namespace {

constexpr int kSockTypeMask = 0xf;
constexpr int kSockMax = 11;

}  // namespace

// ---- construction -------------------------------------------------------------

Runtime::Runtime(Engine& e) : e_(e) {
  std::lock_guard<std::mutex> lk(e_.mutex());
  e_.set_event_hook([this](void* c) { on_event(c); });
}

Runtime::Runtime(std::unique_ptr<Engine> owned) : owned_(std::move(owned)), e_(*owned_) {
  std::lock_guard<std::mutex> lk(e_.mutex());
  e_.set_event_hook([this](void* c) { on_event(c); });
}

Runtime::~Runtime() {
  close_all();
  {
    std::lock_guard<std::mutex> lk(e_.mutex());
    e_.set_event_hook({});
  }
  if (owned_) owned_->stop();
}

namespace {

// A tuning variable (docs/tuning.md): unset leaves the default; a value out
// of [lo, hi] (or not a number) fails the start with EINVAL rather than
// being ignored.
bool env_u32(const char* name, uint32_t lo, uint32_t hi, uint32_t* out) {
  const char* v = std::getenv(name);
  if (v == nullptr || v[0] == 0) return true;
  char* end = nullptr;
  unsigned long x = std::strtoul(v, &end, 10);
  if (*end != 0 || x < lo || x > hi) return false;
  *out = static_cast<uint32_t>(x);
  return true;
}

// "min default max", as the tcp_rmem/tcp_wmem sysctls.
bool env_triple(const char* name, uint32_t* mn, uint32_t* def, uint32_t* mx) {
  const char* v = std::getenv(name);
  if (v == nullptr || v[0] == 0) return true;
  unsigned long a = 0, b = 0, c = 0;
  int used = 0;
  if (std::sscanf(v, "%lu %lu %lu%n", &a, &b, &c, &used) != 3 || v[used] != 0) return false;
  if (a < 1024 || a > b || b > c || c > (1ul << 30)) return false;
  *mn = static_cast<uint32_t>(a), *def = static_cast<uint32_t>(b), *mx = static_cast<uint32_t>(c);
  return true;
}

bool is_pow2(uint32_t x) { return x != 0 && (x & (x - 1)) == 0; }

// A numeric sysctl of this host (its network namespace), or nothing.
std::optional<uint32_t> read_sysctl(const char* path) {
  FILE* f = std::fopen(path, "re");
  if (f == nullptr) return std::nullopt;
  unsigned long v = 0;
  const bool ok = std::fscanf(f, "%lu", &v) == 1 && v <= 0x7fffffffu;
  std::fclose(f);
  if (!ok) return std::nullopt;
  return static_cast<uint32_t>(v);
}

// The tuning variables, read whether the stack starts from xs_init or from
// the environment.
bool apply_tuning_env(EngineConfig* ec, XdpDeviceConfig* dc) {
  ec->tx_defer = micros(g_default_tx_defer_us.load(std::memory_order_relaxed));
  uint32_t ring = 0, us = static_cast<uint32_t>(dc->busy_poll_usecs), budget = static_cast<uint32_t>(dc->busy_poll_budget);
  if (!env_u32("XSTACK_FRAMES", 256, 1u << 18, &dc->frame_count)) return false;
  // Lending more than half the frames would starve the fill ring and TX.
  if (!env_u32("XSTACK_ZC_LEND_FRAMES", 1, dc->frame_count / 2, &dc->lend_limit)) return false;
  if (!env_u32("XSTACK_RING", 64, 1u << 15, &ring) || (ring != 0 && !is_pow2(ring))) return false;
  if (ring != 0) dc->rx_ring = dc->tx_ring = dc->fill_ring = dc->comp_ring = ring;
  if (!env_u32("XSTACK_BUSY_POLL_USECS", 0, 100000, &us) || !env_u32("XSTACK_BUSY_POLL_BUDGET", 1, 1024, &budget))
    return false;
  dc->busy_poll_usecs = static_cast<int>(us);
  dc->busy_poll_budget = static_cast<int>(budget);
  uint32_t batch = static_cast<uint32_t>(ec->rx_batch);
  if (!env_u32("XSTACK_RX_BATCH", 1, 1024, &batch)) return false;
  ec->rx_batch = batch;
  uint32_t defer = static_cast<uint32_t>(ec->tx_defer.us);
  if (!env_u32("XSTACK_TX_DEFER_USECS", 0, 10000, &defer)) return false;
  ec->tx_defer = micros(defer);
  TcpConfig& t = ec->tcp;
  // SO_RCVBUF/SO_SNDBUF are capped by the host's net.core.[rw]mem_max, as a
  // kernel socket in the same namespace would be (sock_setsockopt).
  if (auto v = read_sysctl("/proc/sys/net/core/rmem_max")) t.core_rmem_max = *v;
  if (auto v = read_sysctl("/proc/sys/net/core/wmem_max")) t.core_wmem_max = *v;
  // How many TIME_WAIT sockets the stack keeps, as the host's kernel would.
  if (auto v = read_sysctl("/proc/sys/net/ipv4/tcp_max_tw_buckets")) t.max_tw_buckets = *v;
  if (!env_triple("XSTACK_TCP_RMEM", &t.rmem_min, &t.rmem_default, &t.rmem_max)) return false;
  if (!env_triple("XSTACK_TCP_WMEM", &t.wmem_min, &t.wmem_default, &t.wmem_max)) return false;
  uint32_t frames = 0;
  if (!env_u32("XSTACK_ZC_RX_FRAMES", 0, 1, &frames)) return false;
  t.rx_frames = frames != 0;
  if (const char* cc = std::getenv("XSTACK_CC"); cc != nullptr && cc[0] != 0) {
    if (std::strcmp(cc, "cubic") == 0) t.default_cubic = true;
    else if (std::strcmp(cc, "reno") == 0) t.default_cubic = false;
    else return false;
  } else if (FILE* f = std::fopen("/proc/sys/net/ipv4/tcp_congestion_control", "re")) {
    // New sockets take the host's default, as kernel sockets do, when it is
    // one xstack has; otherwise (bbr, ...) CUBIC, Linux's built-in default.
    char name[32] = {};
    if (std::fscanf(f, "%31s", name) == 1 && std::strcmp(name, "reno") == 0) t.default_cubic = false;
    std::fclose(f);
  }
  return true;
}

}  // namespace

std::unique_ptr<Runtime> Runtime::create(const xs_config& cfg) {
  if (cfg.ifname == nullptr || cfg.addr_cidr == nullptr || cfg.ifname[0] == 0) {
    errno = EINVAL;
    return nullptr;
  }
  EngineConfig ec;
  std::string cidr = cfg.addr_cidr;
  auto slash = cidr.find('/');
  if (slash == std::string::npos) {
    errno = EINVAL;
    return nullptr;
  }
  char* end = nullptr;
  long plen = std::strtol(cidr.c_str() + slash + 1, &end, 10);
  if (*end != 0 || plen < 0 || plen > 32 || !Ipv4Addr::parse(cidr.substr(0, slash).c_str(), &ec.addr.addr)) {
    errno = EINVAL;
    return nullptr;
  }
  ec.addr.prefix_len = static_cast<uint8_t>(plen);
  if (cfg.gateway != nullptr && cfg.gateway[0] != 0) {
    Ipv4Addr gw;
    if (!Ipv4Addr::parse(cfg.gateway, &gw)) {
      errno = EINVAL;
      return nullptr;
    }
    ec.gateway = gw;
  }
  std::string mode = cfg.mode ? cfg.mode : "interrupt";
  if (mode == "interrupt" || mode.empty()) ec.poll_mode = PollMode::Interrupt;
  else if (mode == "spin") ec.poll_mode = PollMode::Spin;
  else if (mode == "busy-poll") ec.poll_mode = PollMode::BusyPoll;
  else {
    errno = EINVAL;
    return nullptr;
  }
  ec.dedicated_ip = cfg.shared_ip == 0;
  XdpDeviceConfig dc;
  dc.ifname = cfg.ifname;
  dc.queues = cfg.queues ? cfg.queues : 1;
  dc.busy_poll = ec.poll_mode == PollMode::BusyPoll;
  if (!apply_tuning_env(&ec, &dc)) {
    errno = EINVAL;
    return nullptr;
  }
  errno = 0;
  auto dev = XdpPacketDevice::open(dc);
  if (!dev) {
    int err = errno;
    if (err == 0) err = ENODEV;
    errno = err;
    return nullptr;
  }
  std::unique_ptr<HostKernel> host;
  if (cfg.shared_ip) {
    auto h = KernelHost::open((*dev)->xdp().ifindex(), ec.addr.addr);
    if (!h) {
      if (errno == 0) errno = ENODEV;
      return nullptr;
    }
    host = std::move(*h);
  }
  try {
    auto engine = std::make_unique<Engine>(ec, std::move(*dev), std::move(host));
    engine->start();
    return std::make_unique<Runtime>(std::move(engine));
  } catch (const std::exception&) {
    errno = EINVAL;
    return nullptr;
  }
}

std::unique_ptr<Runtime> Runtime::create_from_env() {
  xs_config c{};
  c.ifname = std::getenv("XSTACK_IF");
  c.addr_cidr = std::getenv("XSTACK_ADDR");
  c.gateway = std::getenv("XSTACK_GW");
  c.mode = std::getenv("XSTACK_MODE");
  if (const char* q = std::getenv("XSTACK_QUEUES")) c.queues = static_cast<unsigned>(std::strtoul(q, nullptr, 10));
  if (const char* s = std::getenv("XSTACK_SHARED_IP")) c.shared_ip = std::strcmp(s, "1") == 0;
  return create(c);
}

// ---- table ----------------------------------------------------------------------

std::shared_ptr<Runtime::Obj> Runtime::lookup_locked(int fd) {
  if (fd < 0 || static_cast<size_t>(fd) >= table_.size()) return nullptr;
  return table_[static_cast<size_t>(fd)];
}

int Runtime::bad_fd_errno(int fd) { return (fd >= 0 && ::fcntl(fd, F_GETFD) != -1) ? ENOTSOCK : EBADF; }

int Runtime::install_locked(std::shared_ptr<Obj> o) {
  size_t i = static_cast<size_t>(o->fd);
  if (table_.size() <= i) table_.resize(i + 1);
  live_.insert(o.get());
  table_[i] = std::move(o);
  return static_cast<int>(i);
}

WaitStatus Runtime::wait_locked(std::unique_lock<std::mutex>& lk, FunctionRef<bool()> pred, Instant deadline,
                                WaitKind kind) {
  blocked_++;
  WaitStatus r = e_.wait_locked(lk, pred, deadline, kind);
  blocked_--;
  return r;
}

void Runtime::kick_locked() {
  if (blocked_ == 0) return;
  e_.on_socket_event(nullptr);  // marks the engine's waiters for notification
  e_.poll_locked(Engine::clock_now());
}

void Runtime::on_event(void* cookie) {
  auto& live = live_;
  if (!live.count(cookie)) return;  // a socket opened by someone else on this engine
  signal_locked(*static_cast<Obj*>(cookie), 0);
}

void Runtime::drop_reg_locked(Obj& ep, int fd) {
  if (ep.regs.erase(fd) == 0) return;
  // Keeps "queued" and "on the list once" the same thing for a re-added fd.
  auto& q = ep.ready;
  q.erase(std::remove(q.begin(), q.end(), fd), q.end());
}

void Runtime::enqueue_locked(Obj& ep, int fd) {
  auto it = ep.regs.find(fd);
  if (it == ep.regs.end() || it->second.queued) return;
  it->second.queued = true;
  ep.ready.push_back(fd);
}

// sock_wake_async / sk_send_sigurg: with an owner, urgent data raises
// SIGURG (whether or not O_ASYNC is set); with O_ASYNC, an event that leaves
// the socket readable, in error or hung up, or newly writable raises SIGIO
// (or the F_SETSIG signal, with si_fd and si_band when sent to ourselves).
void Runtime::async_notify_locked(Obj& o) {
  if (o.owner == 0 || o.kind == Obj::Kind::Epoll) return;
  const uint32_t r = readiness_locked(o);
  const uint32_t fresh = r & ~o.async_seen;
  o.async_seen = r;
  if ((fresh & ev::kPri) != 0) send_owner_signal(o, SIGURG, r);
  if (!o.async) return;
  if ((r & (ev::kErr | ev::kHup | ev::kIn | ev::kRdHup)) != 0 || (fresh & ev::kOut) != 0)
    send_owner_signal(o, o.sigio ? o.sigio : SIGIO, r);
}

void Runtime::send_owner_signal(const Obj& o, int sig, uint32_t band) {
  const pid_t self = ::getpid();
  const bool to_self = (o.owner_type == F_OWNER_PID && o.owner == self) || o.owner_type == F_OWNER_TID;
  if (sig != SIGIO && sig != SIGURG && to_self) {
    // F_SETSIG: a queued signal carrying the descriptor and the poll band.
    // The kernel lets a process queue a positive si_code (POLL_IN, ...) only
    // from the receiving thread itself, and the stack's threads block every
    // signal: si_code is SI_QUEUE, si_fd and si_band are as Linux fills them.
    siginfo_t si{};
    si.si_signo = sig;
    si.si_code = SI_QUEUE;
    si.si_fd = o.fd;
    si.si_band = static_cast<long>(band);
    if (o.owner_type == F_OWNER_TID) {
      if (::syscall(SYS_rt_tgsigqueueinfo, self, o.owner, sig, &si) == 0) return;
    } else if (::syscall(SYS_rt_sigqueueinfo, self, sig, &si) == 0) {
      return;
    }
  }
  if (o.owner_type == F_OWNER_TID) {
    ::syscall(SYS_tgkill, self, o.owner, sig);
  } else if (o.owner_type == F_OWNER_PGRP) {
    ::kill(-o.owner, sig);
  } else {
    ::kill(o.owner, sig);  // a negative owner (F_SETOWN -pgrp) names the group
  }
}

void Runtime::signal_locked(Obj& o, int depth) {
  o.gen++;
  if (o.owner != 0) async_notify_locked(o);
  for (const Obj::Watch& w : o.watchers) {
    Obj* ep = w.ep;
    enqueue_locked(*ep, w.fd);
    // An epoll instance inside another is itself an event source for the
    // outer one (its gen drives EPOLLET there); nesting is at most
    // kMaxEpollNests deep (epoll_ctl refuses deeper, as Linux's ELOOP).
    if (depth < kMaxEpollNests && !ep->watchers.empty()) signal_locked(*ep, depth + 1);
    if (!ep->collecting) write_wake_locked(*ep);
  }
}

void Runtime::write_wake_locked(Obj& ep) {
  if (!ep.wake || ep.wake_pending) return;
  ep.wake_pending = true;
  uint64_t one = 1;
  ssize_t r = ::write(ep.fd, &one, sizeof one);
  (void)r;
}

void Runtime::wake_if_ready_locked(Obj& ep) {
  if (ep.collecting) return;  // the collecting thread reports it itself
  const bool wake = ep.wake && !ep.wake_pending;
  if (!wake && ep.watchers.empty()) return;
  if (epoll_collect_locked(ep, nullptr, 1, false) == 0) return;
  if (!ep.watchers.empty()) signal_locked(ep, 1);
  write_wake_locked(ep);
}

int Runtime::epoll_set_wake(int epfd) {
  std::lock_guard<std::mutex> lk(e_.mutex());
  auto o = lookup_locked(epfd);
  if (!o || o->kind != Obj::Kind::Epoll) return fail(EINVAL);
  o->wake = true;
  return 0;
}

void Runtime::wait_begin(int epfd) {
  std::lock_guard<std::mutex> lk(e_.mutex());
  auto o = lookup_locked(epfd);
  if (!o || o->kind != Obj::Kind::Epoll) {
    poll_once_locked();
    return;
  }
  if (o->wake_pending) {
    uint64_t v;
    ssize_t r = ::read(o->fd, &v, sizeof v);
    (void)r;
    o->wake_pending = false;
  }
  o->collecting = true;
  poll_once_locked();
  o->collecting = false;
}

void Runtime::epoll_refresh_wake(int epfd) {
  std::lock_guard<std::mutex> lk(e_.mutex());
  auto o = lookup_locked(epfd);
  if (!o || o->kind != Obj::Kind::Epoll || !o->wake) return;
  bool ready = epoll_collect_locked(*o, nullptr, 1, false) > 0;
  if (ready == o->wake_pending) return;
  uint64_t v = 1;
  ssize_t r = ready ? ::write(o->fd, &v, sizeof v) : ::read(o->fd, &v, sizeof v);
  (void)r;
  o->wake_pending = ready;
}

int Runtime::dup_alias(int fd, int newfd) {
  std::lock_guard<std::mutex> lk(e_.mutex());
  auto o = lookup_locked(fd);
  if (!o || newfd < 0) return fail(EBADF);
  if (lookup_locked(newfd)) return fail(EBUSY);
  size_t i = static_cast<size_t>(newfd);
  if (table_.size() <= i) table_.resize(i + 1);
  o->refs++;
  table_[i] = std::move(o);
  return newfd;
}

int Runtime::forget(int fd) {
  std::lock_guard<std::mutex> lk(e_.mutex());
  auto o = lookup_locked(fd);
  if (!o) return fail(EBADF);
  table_[static_cast<size_t>(fd)].reset();
  if (--o->refs == 0) {
    detach_locked(*o);
    kick_locked();
  }
  return 0;
}

bool Runtime::is_fresh(int fd) {
  std::lock_guard<std::mutex> lk(e_.mutex());
  auto o = lookup_locked(fd);
  if (!o || o->refs != 1) return false;
  if (o->tcp) return o->tcp->state() == TcpState::Closed && o->tcp->local().port == 0;
  if (o->udp) return o->udp->local().port == 0 && o->ss == Obj::Ss::Unconnected;
  return false;
}

bool Runtime::serves_locally(int fd, Ipv4Addr dst, uint16_t port) {
  std::lock_guard<std::mutex> lk(e_.mutex());
  auto self = lookup_locked(fd);
  if (!self || self->kind == Obj::Kind::Epoll) return false;
  auto matches = [&](Endpoint local) {
    return local.port == port && (local.addr.is_unspecified() || local.addr == dst);
  };
  for (const auto& o : table_) {
    if (!o || o->kind != self->kind) continue;
    if (o->tcp && o->tcp->state() == TcpState::Listen && matches(o->tcp->local())) return true;
    if (o->udp && matches(o->udp->local())) return true;
  }
  return false;
}

int Runtime::domain_of(int fd) {
  std::lock_guard<std::mutex> lk(e_.mutex());
  auto o = lookup_locked(fd);
  if (!o || o->kind == Obj::Kind::Epoll) return -1;
  return o->inet6 ? AF_INET6 : AF_INET;
}

int Runtime::kind_of(int fd) {
  std::lock_guard<std::mutex> lk(e_.mutex());
  auto o = lookup_locked(fd);
  if (!o) return -1;
  if (o->tcp || o->kind == Obj::Kind::Tcp) return SOCK_STREAM;
  if (o->udp || o->kind == Obj::Kind::Udp) return SOCK_DGRAM;
  return 0;
}

std::vector<int> Runtime::device_fds() {
  std::lock_guard<std::mutex> lk(e_.mutex());
  return e_.device_locked().wait_fds();
}

void Runtime::poll_once_locked() {
  // Interrupt mode: the inline poll also tells the progress thread that this
  // application polls (it rests) and re-arms its timer if a deadline moved.
  if (e_.config().poll_mode == PollMode::Interrupt) e_.poll_inline_locked(Engine::clock_now());
  else e_.poll_locked(Engine::clock_now());
}

bool Runtime::try_flush_deferred() {
  std::unique_lock<std::mutex> lk(e_.mutex(), std::try_to_lock);
  if (!lk.owns_lock()) return false;
  e_.flush_deferred_locked();
  return true;
}

void Runtime::close_all_graceful(Duration max) {
  std::vector<int> fds;
  std::unique_lock<std::mutex> lk(e_.mutex());
  for (size_t i = 0; i < table_.size(); ++i) {
    auto& o = table_[i];
    if (!o) continue;
    if (--o->refs == 0) detach_locked(*o);
    fds.push_back(static_cast<int>(i));
    o.reset();
  }
  Instant deadline = Engine::clock_now() + max;
  auto& tcp = e_.stack_locked().tcp();
  while (tcp.closing_count() > 0 && Engine::clock_now() < deadline) {
    e_.wait_locked(lk, [&] { return tcp.closing_count() == 0; }, min(deadline, Engine::clock_now() + millis(10)));
  }
  lk.unlock();
  for (int fd : fds) ::close(fd);
}

bool Runtime::is_xstack_fd(int fd) {
  std::lock_guard<std::mutex> lk(e_.mutex());
  return lookup_locked(fd) != nullptr;
}

void Runtime::detach_locked(Obj& o) {
  o.closed = true;
  live_.erase(&o);
  if (o.kind == Obj::Kind::Epoll) {
    for (auto& [fd, reg] : o.regs) {
      auto& w = reg.target->watchers;
      w.erase(std::remove_if(w.begin(), w.end(), [&](const Obj::Watch& x) { return x.ep == &o; }), w.end());
    }
    o.regs.clear();
    o.ready.clear();
    for (const Obj::Watch& w : o.watchers) drop_reg_locked(*w.ep, w.fd);  // nested in another instance
    o.watchers.clear();
    return;
  }
  for (const Obj::Watch& w : o.watchers) drop_reg_locked(*w.ep, w.fd);
  o.watchers.clear();
  Instant now = Engine::clock_now();
  if (o.tcp) {
    e_.release_claim_locked(o.tcp);
    o.tcp->set_observer(nullptr, nullptr);
    o.tcp->close(now);
    o.tcp = nullptr;
  }
  if (o.udp) {
    e_.release_claim_locked(o.udp);
    o.udp->set_observer(nullptr, nullptr);
    e_.stack_locked().udp().close(o.udp);
    o.udp = nullptr;
  }
  e_.after_call_locked();
}

void Runtime::close_all() {
  std::vector<int> fds;
  {
    std::lock_guard<std::mutex> lk(e_.mutex());
    for (size_t i = 0; i < table_.size(); ++i) {
      auto& o = table_[i];
      if (!o) continue;
      if (o->tcp) o->tcp->options().linger_on = true, o->tcp->options().linger_seconds = 0;  // reset
      if (!o->closed) detach_locked(*o);
      fds.push_back(static_cast<int>(i));
      o.reset();
    }
  }
  for (int fd : fds) ::close(fd);
}

bool Runtime::claim_and_bind_locked(Obj& o, Endpoint ep, int* err) {
  const void* owner = o.tcp ? static_cast<const void*>(o.tcp) : static_cast<const void*>(o.udp);
  bool reuse = o.tcp ? o.tcp->options().reuseaddr : o.udp->reuseaddr();
  uint8_t proto = o.tcp ? ipproto::kTcp : ipproto::kUdp;
  auto c = e_.claim_port_locked(owner, proto, ep.port, reuse);
  if (!c) {
    *err = to_errno(c.error());
    return false;
  }
  Endpoint b{ep.addr, *c};
  auto r = o.tcp ? o.tcp->bind(b) : o.udp->bind(b);
  if (!r) {
    e_.release_claim_locked(owner);
    *err = to_errno(r.error());
    return false;
  }
  return true;
}

bool Runtime::autobind_locked(Obj& o, int* err) {
  // Dedicated IP: the stack picks ports itself. Shared IP: the kernel must pick
  // (and reserve) it, so bind explicitly first.
  if (!e_.shared_ip()) return true;
  bool bound = o.tcp ? o.tcp->is_bound() : o.udp->local().port != 0;
  if (bound) return true;
  return claim_and_bind_locked(o, {Ipv4Addr::any(), 0}, err);
}

// ---- socket calls ---------------------------------------------------------------

int Runtime::socket(int domain, int type, int protocol) {
  int flags = type & ~kSockTypeMask;
  int base = type & kSockTypeMask;
  if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) return fail(EINVAL);
  if (domain != AF_INET && domain != AF_INET6) return fail(EAFNOSUPPORT);
  if (base < 0 || base >= kSockMax) return fail(EINVAL);
  if (protocol < 0 || protocol >= IPPROTO_MAX) return fail(EINVAL);
  Obj::Kind kind;
  if (base == SOCK_STREAM) {
    if (protocol != 0 && protocol != IPPROTO_TCP) return fail(EPROTONOSUPPORT);
    kind = Obj::Kind::Tcp;
  } else if (base == SOCK_DGRAM) {
    if (protocol != 0 && protocol != IPPROTO_UDP) return fail(EPROTONOSUPPORT);
    kind = Obj::Kind::Udp;
  } else if (base == SOCK_RAW) {
    return fail(EPROTONOSUPPORT);
  } else {
    return fail(ESOCKTNOSUPPORT);
  }
  int kfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (kfd < 0) return -1;
  auto o = std::make_shared<Obj>();
  o->kind = kind;
  o->inet6 = domain == AF_INET6;
  o->fd = kfd;
  o->nonblock = (flags & SOCK_NONBLOCK) != 0;
  o->cloexec = (flags & SOCK_CLOEXEC) != 0;
  std::lock_guard<std::mutex> lk(e_.mutex());
  if (kind == Obj::Kind::Tcp) {
    o->tcp = e_.stack_locked().tcp().open();
    o->tcp->set_observer(&e_, o.get());
  } else {
    o->udp = e_.stack_locked().udp().open();
    o->udp->set_observer(&e_, o.get());
  }
  return install_locked(std::move(o));
}

int Runtime::bind(int fd, const sockaddr* addr, socklen_t len) {
  std::lock_guard<std::mutex> lk(e_.mutex());
  XS_SOCK_OR_FAIL(o, fd);
  if (static_cast<int>(len) < static_cast<int>(o->inet6 ? kSin6LenRfc2133 : sizeof(sockaddr_in))) return fail(EINVAL);
  if (addr == nullptr) return fail(EFAULT);
  AddrResult a = addr_in(*o, addr, len, AddrUse::Bind);
  if (a.err != 0) return fail(a.err);
  bool bound = o->tcp ? (o->tcp->is_bound() || o->tcp->state() != TcpState::Closed) : o->udp->local().port != 0;
  if (bound) return fail(EINVAL);
  int err = 0;
  if (!claim_and_bind_locked(*o, a.ep, &err)) return fail(err);
  if (o->inet6 && a.ep.addr.v == 0) {
    sockaddr_in6 s6{};
    std::memcpy(&s6, addr, std::min<size_t>(len, sizeof s6));
    o->bound_mapped_any = IN6_IS_ADDR_V4MAPPED(&s6.sin6_addr);
  }
  return 0;
}

int Runtime::listen(int fd, int backlog) {
  std::lock_guard<std::mutex> lk(e_.mutex());
  XS_SOCK_OR_FAIL(o, fd);
  if (!o->tcp) return fail(EOPNOTSUPP);
  if (o->ss != Obj::Ss::Unconnected) return fail(EINVAL);
  TcpState st = o->tcp->state();
  if (st != TcpState::Closed && st != TcpState::Listen) return fail(EINVAL);
  int err = 0;
  if (!autobind_locked(*o, &err)) return fail(err);
  if (auto r = o->tcp->listen(backlog); !r) return fail(to_errno(r.error()));
  e_.after_call_locked();
  return 0;
}

int Runtime::accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
  if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) return fail(EINVAL);
  std::unique_lock<std::mutex> lk(e_.mutex());
  XS_SOCK_OR_FAIL(o, fd);
  if (!o->tcp) return fail(EOPNOTSUPP);
  if (o->tcp->state() != TcpState::Listen) return fail(EINVAL);
  if (addr != nullptr) {
    if (len == nullptr) return fail(EFAULT);
    if (static_cast<int>(*len) < 0) return fail(EINVAL);
  }
  Expected<TcpSocket*, SockError> got = unexpected(SockError::WouldBlock);
  WaitStatus ws = wait_locked(lk, [&] {
    if (o->closed) return true;
    got = o->tcp->accept(Engine::clock_now());
    return got.has_value() || got.error() != SockError::WouldBlock;
  }, deadline_after(o->nonblock, o->rcvtimeo));
  if (o->closed) return fail(EBADF);
  if (ws == WaitStatus::Interrupted) return fail(EINTR);
  if (!got) return fail(to_errno(got.error()));
  TcpSocket* c = *got;
  int kfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (kfd < 0) {
    int err = errno;
    c->close(Engine::clock_now());
    e_.after_call_locked();
    return fail(err);
  }
  auto n = std::make_shared<Obj>();
  n->kind = Obj::Kind::Tcp;
  n->inet6 = o->inet6;
  n->tclass = o->tclass;
  n->unicast_hops = o->unicast_hops;
  n->fd = kfd;
  n->tcp = c;
  n->ss = Obj::Ss::Connected;
  n->nonblock = (flags & SOCK_NONBLOCK) != 0;
  n->cloexec = (flags & SOCK_CLOEXEC) != 0;
  n->rcvtimeo = o->rcvtimeo;
  n->sndtimeo = o->sndtimeo;
  n->rcvlowat = o->rcvlowat;
  n->rcvbuf_set = o->rcvbuf_set;
  n->broadcast = o->broadcast;
  n->cm = o->cm;  // sk_clone copies the flags, inet_sk the cmsg flags
  c->set_observer(&e_, n.get());
  Endpoint peer = c->remote();
  const bool n_inet6 = o->inet6;
  int nfd = install_locked(std::move(n));
  e_.after_call_locked();
  (void)put_addr(peer, addr, len, n_inet6);
  return nfd;
}

int Runtime::connect(int fd, const sockaddr* addr, socklen_t len) {
  std::unique_lock<std::mutex> lk(e_.mutex());
  XS_SOCK_OR_FAIL(o, fd);
  if (static_cast<int>(len) < static_cast<int>(sizeof(sa_family_t))) return fail(EINVAL);
  if (addr == nullptr) return fail(EFAULT);
  sockaddr_in sin{};
  std::memcpy(&sin, addr, std::min<size_t>(len, sizeof sin));
  Instant now = Engine::clock_now();
  if (o->udp) {
    if (sin.sin_family == AF_UNSPEC) {
      o->udp->disconnect();
      signal_locked(*o, 0);
      kick_locked();
      return 0;
    }
    AddrResult a = addr_in(*o, addr, len, AddrUse::Connect);
    if (a.err != 0) return fail(a.err);
    int err = 0;
    if (!autobind_locked(*o, &err)) return fail(err);
    if (auto r = o->udp->connect(a.ep); !r) return fail(to_errno(r.error()));
    e_.after_call_locked();
    return 0;
  }
  TcpSocket* t = o->tcp;
  if (sin.sin_family == AF_UNSPEC) {
    // Linux tcp_disconnect: back to CLOSE, aborting what was there.
    TcpState st = t->state();
    if (st == TcpState::Listen || st == TcpState::SynSent) {
      (void)t->shutdown(now, true, true);
    } else if (st != TcpState::Closed) {
      TcpSocketOptions opts = t->options();
      t->options().linger_on = true;
      t->options().linger_seconds = 0;
      e_.release_claim_locked(t);
      t->set_observer(nullptr, nullptr);
      t->close(now);
      t = e_.stack_locked().tcp().open();
      t->options() = opts;
      t->set_observer(&e_, o.get());
      o->tcp = t;
    }
    o->ss = Obj::Ss::Unconnected;
    signal_locked(*o, 0);
    e_.after_call_locked();
    kick_locked();
    return 0;
  }
  int err = 0;
  switch (o->ss) {
    case Obj::Ss::Connected: return fail(EISCONN);
    case Obj::Ss::Connecting: err = EALREADY; break;
    case Obj::Ss::Unconnected: {
      if (t->state() != TcpState::Closed) return fail(EISCONN);
      AddrResult a = addr_in(*o, addr, len, AddrUse::Connect);
      if (a.err != 0) return fail(a.err);
      if (!autobind_locked(*o, &err)) return fail(err);
      auto r = t->connect(now, a.ep);
      e_.after_call_locked();
      if (!r && r.error() != SockError::InProgress) return fail(to_errno(r.error()));
      o->ss = Obj::Ss::Connecting;
      err = EINPROGRESS;
      break;
    }
  }
  auto connecting = [&] {
    TcpState st = o->tcp->state();
    return st == TcpState::SynSent || st == TcpState::SynReceived;
  };
  if (connecting()) {
    if (o->nonblock) return fail(err);
    WaitStatus ws = wait_locked(lk, [&] { return o->closed || !connecting(); }, deadline_after(false, o->sndtimeo));
    if (o->closed) return fail(EBADF);
    // Interrupted: the handshake goes on; a later connect reports EALREADY (Linux).
    if (ws == WaitStatus::Interrupted) return fail(EINTR);
    if (ws != WaitStatus::Ready) return fail(err);
    if (o->tcp->state() == TcpState::Closed) o->tcp->forget_connect_source();
  }
  if (o->tcp->state() == TcpState::Closed) {
    o->ss = Obj::Ss::Unconnected;
    auto e = o->tcp->take_error();
    return fail(e ? to_errno(*e) : ECONNABORTED);
  }
  o->ss = Obj::Ss::Connected;
  return 0;
}

int Runtime::shutdown(int fd, int how) {
  std::lock_guard<std::mutex> lk(e_.mutex());
  XS_SOCK_OR_FAIL(o, fd);
  if (how < SHUT_RD || how > SHUT_RDWR) return fail(EINVAL);
  bool rd = how != SHUT_WR, wr = how != SHUT_RD;
  if (o->udp) {
    o->shut_rd |= rd;
    o->shut_wr |= wr;
    signal_locked(*o, 0);
    kick_locked();
    if (!o->udp->remote()) return fail(ENOTCONN);
    return 0;
  }
  TcpState st = o->tcp->state();
  auto r = o->tcp->shutdown(Engine::clock_now(), rd, wr);
  e_.after_call_locked();
  if (st == TcpState::SynSent || (st == TcpState::Listen && rd)) o->ss = Obj::Ss::Unconnected;
  kick_locked();
  if (!r) return fail(to_errno(r.error()));
  return 0;
}

int Runtime::close(int fd) {
  std::shared_ptr<Obj> o;
  {
    std::lock_guard<std::mutex> lk(e_.mutex());
    o = lookup_locked(fd);
    if (!o) return fail(EBADF);
    table_[static_cast<size_t>(fd)].reset();
    if (--o->refs == 0) {
      detach_locked(*o);
      kick_locked();
    }
  }
  ::close(fd);
  return 0;
}
int Runtime::getsockname(int fd, sockaddr* addr, socklen_t* len) {
  std::lock_guard<std::mutex> lk(e_.mutex());
  XS_SOCK_OR_FAIL(o, fd);
  if (addr == nullptr || len == nullptr) return fail(EFAULT);
  Endpoint ep = o->tcp ? o->tcp->local() : o->udp->local();
  if (int e = put_addr(ep, addr, len, o->inet6, o->bound_mapped_any)) return fail(e);
  return 0;
}

int Runtime::getpeername(int fd, sockaddr* addr, socklen_t* len) {
  std::lock_guard<std::mutex> lk(e_.mutex());
  XS_SOCK_OR_FAIL(o, fd);
  if (addr == nullptr || len == nullptr) return fail(EFAULT);
  Endpoint ep;
  // inet_getname: no peer port, or a socket in CLOSE or SYN_SENT, is not
  // connected. Linux hands a connection entering TIME_WAIT to a separate
  // time-wait sock and leaves the application's socket in CLOSE.
  if (o->tcp) {
    TcpState st = o->tcp->state();
    if (o->tcp->remote().port == 0 || st == TcpState::Closed || st == TcpState::SynSent || st == TcpState::Listen ||
        st == TcpState::TimeWait)
      return fail(ENOTCONN);
    ep = o->tcp->remote();
  } else {
    if (!o->udp->remote() || o->udp->remote()->port == 0) return fail(ENOTCONN);
    ep = *o->udp->remote();
  }
  if (int e = put_addr(ep, addr, len, o->inet6)) return fail(e);
  return 0;
}

int Runtime::set_owner_locked(Obj& o, int type, int pid) {
  // f_setown / f_setown_ex: the owner must exist (ESRCH); 0 clears it.
  if (pid != 0) {
    const int probe = type == F_OWNER_TID ? static_cast<int>(::syscall(SYS_tgkill, ::getpid(), pid, 0))
                      : type == F_OWNER_PGRP ? ::kill(-pid, 0)
                                             : ::kill(pid, 0);
    if (probe != 0 && errno == ESRCH) return fail(ESRCH);
  }
  o.owner = pid;
  o.owner_type = type;
  o.async_seen = readiness_locked(o);  // signal changes from now on
  return 0;
}

int Runtime::fcntl(int fd, int cmd, long arg) {
  std::lock_guard<std::mutex> lk(e_.mutex());
  auto o = lookup_locked(fd);
  if (!o) return fail(EBADF);
  switch (cmd) {
    case F_GETFL: return O_RDWR | (o->nonblock ? O_NONBLOCK : 0) | (o->async ? O_ASYNC : 0);
    case F_SETFL:
      o->nonblock = (arg & O_NONBLOCK) != 0;
      o->async = (arg & O_ASYNC) != 0;
      return 0;
    case F_SETOWN: {
      // A negative value names a process group (f_setown).
      const int who = static_cast<int>(arg);
      if (who < 0) {
        if (who == INT_MIN) return fail(EINVAL);
        return set_owner_locked(*o, F_OWNER_PGRP, -who);
      }
      return set_owner_locked(*o, F_OWNER_PID, who);
    }
    case F_GETOWN: return o->owner_type == F_OWNER_PGRP ? -o->owner : o->owner;
    case F_SETOWN_EX: {
      auto* ex = reinterpret_cast<const f_owner_ex*>(arg);
      if (ex == nullptr) return fail(EFAULT);
      if (ex->type != F_OWNER_TID && ex->type != F_OWNER_PID && ex->type != F_OWNER_PGRP) return fail(EINVAL);
      return set_owner_locked(*o, ex->type, ex->pid);
    }
    case F_GETOWN_EX: {
      auto* ex = reinterpret_cast<f_owner_ex*>(arg);
      if (ex == nullptr) return fail(EFAULT);
      ex->type = static_cast<__pid_type>(o->owner_type);
      ex->pid = o->owner;
      return 0;
    }
    case F_SETSIG:
      if (arg < 0 || arg > _NSIG) return fail(EINVAL);  // valid_signal
      o->sigio = static_cast<int>(arg);
      return 0;
    case F_GETSIG: return o->sigio;
    case F_GETFD: return o->cloexec ? FD_CLOEXEC : 0;
    case F_SETFD: o->cloexec = (arg & FD_CLOEXEC) != 0; return 0;
    default: return fail(EINVAL);
  }
}

int Runtime::ioctl(int fd, unsigned long req, void* arg) {
  std::lock_guard<std::mutex> lk(e_.mutex());
  auto o = lookup_locked(fd);
  if (!o) return fail(EBADF);
  if (req == FIOCLEX || req == FIONCLEX) {
    o->cloexec = req == FIOCLEX;
    return 0;
  }
  if (arg == nullptr) return fail(EFAULT);
  int v = 0;
  if (req == SIOCATMARK && o->tcp) {
    // tcp_ioctl SIOCATMARK: urg_data && urg_seq == copied_seq (in any state,
    // LISTEN too, unlike SIOCINQ).
    v = o->tcp->at_urgent_mark() ? 1 : 0;
    std::memcpy(arg, &v, sizeof v);
    return 0;
  }
  switch (req) {
    case FIONBIO: {
      std::memcpy(&v, arg, sizeof v);
      o->nonblock = v != 0;
      return 0;
    }
    case FIOASYNC:  // ioctl_fioasync: O_ASYNC
      std::memcpy(&v, arg, sizeof v);
      o->async = v != 0;
      return 0;
    case FIOSETOWN:
    case SIOCSPGRP: {  // sock_ioctl: f_setown
      std::memcpy(&v, arg, sizeof v);
      if (v < 0) {
        if (v == INT_MIN) return fail(EINVAL);
        return set_owner_locked(*o, F_OWNER_PGRP, -v);
      }
      return set_owner_locked(*o, F_OWNER_PID, v);
    }
    case FIOGETOWN:
    case SIOCGPGRP:
      v = o->owner_type == F_OWNER_PGRP ? -o->owner : o->owner;
      std::memcpy(arg, &v, sizeof v);
      return 0;
    case FIONREAD:
    case SIOCOUTQ:
    case SIOCOUTQNSD: break;
    default: return fail(ENOTTY);
  }
  if (o->kind == Obj::Kind::Epoll) return fail(ENOTTY);
  if (o->tcp) {
    if (o->tcp->state() == TcpState::Listen) return fail(EINVAL);
    size_t n = req == FIONREAD ? o->tcp->inq()
               : req == SIOCOUTQ ? o->tcp->bytes_unacked_or_unsent()
                                 : o->tcp->bytes_unsent();
    v = static_cast<int>(std::min<size_t>(n, INT_MAX));
  } else {
    if (req == SIOCOUTQNSD) return fail(ENOTTY);
    v = static_cast<int>(req == FIONREAD ? o->udp->bytes_readable() : o->udp->tx_queued_bytes());
  }
  std::memcpy(arg, &v, sizeof v);
  return 0;
}

}  // namespace xs::native
