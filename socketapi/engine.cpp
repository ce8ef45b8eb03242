#include "socketapi/engine.hpp"
#include "socketapi/private_fd.hpp"
#include "socketapi/quiet_thread.hpp"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace xs {

namespace {

// An idle engine wakes this often to refresh its stats snapshot: negligible
// CPU, and xstack-stat is never more than this out of date.
constexpr Duration kStatsIdleRefresh = seconds(1);


// Secrets for ISNs, cookies and port offsets come from the kernel's CSPRNG,
// mixed into a fast generator.
class OsSeededRandom final : public Random {
 public:
  explicit OsSeededRandom(uint64_t seed) : r_(seed) {}
  uint64_t next_u64() override { return r_.next_u64(); }

 private:
  SeededRandom r_;
};

uint64_t os_seed() {
  uint64_t s = 0;
  if (getrandom(&s, sizeof s, 0) != sizeof s) s = static_cast<uint64_t>(Engine::clock_now().us) * 0x9e3779b97f4a7c15ull;
  return s;
}

}  // namespace

Instant Engine::clock_now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return Instant{int64_t(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000};
}

Engine::Engine(const EngineConfig& cfg, std::unique_ptr<PacketDevice> dev, std::unique_ptr<HostKernel> host)
    : cfg_(cfg), dev_(std::move(dev)), host_(std::move(host)) {
  rng_ = std::make_unique<OsSeededRandom>(cfg.seed ? cfg.seed : os_seed());
  StackConfig sc;
  sc.mac = dev_->mac();
  sc.addr = cfg.addr;
  sc.gateway = cfg.gateway;
  sc.mtu = dev_->mtu();
  sc.tcp = cfg.tcp;
  if (!cfg.dedicated_ip) {
    if (!host_) throw std::invalid_argument("xstack: shared-IP mode needs the host kernel's routes and neighbours");
    sc.arp.external = host_.get();
    if (!sc.gateway) sc.gateway = host_->default_gateway();
    cfg_.gateway = sc.gateway;
  } else {
    host_.reset();
  }
  tap_ = std::make_unique<CaptureTap>(*dev_);
  stack_ = std::make_unique<Stack>(sc, *rng_, *tap_);
  stack_->set_frame_lender(dev_->frame_lender());
  if (host_) host_->sync(stack_->arp());
  if (cfg.dedicated_ip) {
    // The address is ours alone: every packet for it comes to the stack, so
    // closed ports get a RST / port unreachable from us as from a host.
    for (uint8_t proto : {kFlowArp, uint8_t(1 /*ICMP*/), uint8_t(6 /*TCP*/), uint8_t(17 /*UDP*/)}) {
      dev_->add_flow(proto, cfg.addr.addr, 0);
    }
  }
}

Engine::~Engine() { stop(); }

size_t Engine::poll_locked(Instant now) {
  // Written under the lock only: a plain increment, no locked instruction.
  polls_.store(polls_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  if (host_ && (host_pending_.exchange(false, std::memory_order_relaxed) || host_->wants_sync() ||
                (cfg_.poll_mode != PollMode::Interrupt && now >= next_host_sync_))) {
    host_->sync(stack_->arp());
    next_host_sync_ = now + millis(1);
  }
  // Before the RX batch: a capture requested while the engine slept is
  // attached in time for the frame that woke it.
  if (now >= next_publish_) [[unlikely]] publish_stats_locked(now);
  size_t n;
  if (!tap_->active()) [[likely]] {
    n = dev_->poll_rx([&](Bytes f) { stack_->receive_frame(now, f); }, cfg_.rx_batch);
  } else {
    n = dev_->poll_rx([&](Bytes f) { tap_->record_rx(f); stack_->receive_frame(now, f); }, cfg_.rx_batch);
  }
  bool timers = stack_->poll_at() <= now;
  if (timers) stack_->poll(now);
  if (n > 0 || timers) stats_dirty_ = true;
  dev_->flush_tx();
  tx_deferred_ = false;
  notify_waiters_locked();
  return n;
}

void Engine::notify_waiters_locked() {
  if (!events_) return;
  events_ = false;
  for (int fd : waiter_fds_) {
    uint64_t one = 1;
    ssize_t r = write(fd, &one, sizeof one);
    (void)r;
  }
}

void Engine::after_call_locked() {
  // A call that needed a neighbour the kernel already knew sends at once.
  if (host_ && host_->wants_sync()) host_->sync(stack_->arp());
  // Work the call made due at once (a closed socket to free, frames looped
  // to ourselves) is done here, on the calling thread: leaving it to the
  // progress thread would wake it (a timer at 0) after every close() of a
  // server that closes thousands of connections a second.
  if (stack_->poll_at().us <= 0) {
    stack_->poll(clock_now());
    notify_waiters_locked();
  }
  if (cfg_.poll_mode == PollMode::Interrupt && cfg_.tx_defer.us > 0 && thread_.joinable()) {
    if (!tx_deferred_ && dev_->tx_pending()) {
      tx_deferred_ = true;
      tx_flush_at_ = clock_now() + cfg_.tx_defer;
    }
  } else {
    dev_->flush_tx();
  }
  if (cfg_.poll_mode != PollMode::Interrupt) {
    // Spin/busy-poll: a thread polls continuously and looks at the deadlines
    // on every poll; there is no timer to re-arm and no sleeper to wake.
    app_active_.store(true, std::memory_order_relaxed);
    return;
  }
  // The call may have changed a queue: an idle progress thread publishes it
  // at the next period (rearm_locked brings its timer forward to it).
  if (stats_) stats_dirty_ = true;
  rearm_locked();
}

void Engine::publish_stats_locked(Instant now) {
  stats_->publish_locked(now, *stack_, dev_->counters(), *tap_);
  next_publish_ = now + cfg_.stats.period;
  stats_dirty_ = false;
}

Expected<uint16_t, SockError> Engine::claim_port_locked(const void* owner, uint8_t proto, uint16_t port,
                                                        bool reuseaddr) {
  if (cfg_.dedicated_ip) return port;  // the whole address is steered already
  auto r = host_->reserve(proto, port, reuseaddr);
  if (!r) {
    switch (r.error()) {
      case EADDRINUSE: return unexpected(SockError::AddressInUse);
      case EADDRNOTAVAIL: return unexpected(SockError::AddressNotAvailable);
      case EACCES: return unexpected(SockError::AccessDenied);
      case ENOBUFS:
      case ENOMEM: return unexpected(SockError::NoBufferSpace);
      default: return unexpected(SockError::InvalidArgument);
    }
  }
  if (!dev_->add_flow(proto, cfg_.addr.addr, *r)) {
    host_->release(proto, *r);
    return unexpected(SockError::NoBufferSpace);
  }
  claims_[owner] = {proto, *r};
  return *r;
}

void Engine::release_claim_locked(const void* owner) {
  auto it = claims_.find(owner);
  if (it == claims_.end()) return;
  auto [proto, port] = it->second;
  claims_.erase(it);
  // The stack may still hold the port (TIME_WAIT, a graceful close in the
  // background); its stray segments then reach the kernel, which answers with
  // RST: the price of handing the port back as soon as the application is done.
  dev_->remove_flow(proto, cfg_.addr.addr, port);
  host_->release(proto, port);
}

void Engine::on_socket_event(void* cookie) {
  events_ = true;
  if (hook_) hook_(cookie);
}

void Engine::wake() {
  if (eventfd_ >= 0) {
    uint64_t one = 1;
    ssize_t r = write(eventfd_, &one, sizeof one);
    (void)r;
  }
}

void Engine::start() {
  if (thread_.joinable()) return;
  stop_ = false;
  cfg_.stats.apply_env();
  if (cfg_.stats.enabled && !stats_) {
    std::lock_guard<std::mutex> lk(mu_);
    stats_ = StatsPublisher::create(cfg_.stats, dev_->name(), cfg_.addr);
    if (stats_) next_publish_ = clock_now();  // the first poll publishes
  }
  if (cfg_.poll_mode == PollMode::Interrupt) {
    epfd_ = move_fd_high(epoll_create1(EPOLL_CLOEXEC));
    timerfd_ = move_fd_high(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    eventfd_ = move_fd_high(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLEXCLUSIVE;  // see requeue_device_waits
    dev_wait_fds_ = dev_->wait_fds();
    for (int fd : dev_wait_fds_) {
      ev.data.fd = fd;
      epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
    }
    ev.events = EPOLLIN;
    ev.data.fd = timerfd_;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, timerfd_, &ev);
    ev.data.fd = eventfd_;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, eventfd_, &ev);
    if (host_ && host_->fd() >= 0) {
      ev.data.fd = host_->fd();
      epoll_ctl(epfd_, EPOLL_CTL_ADD, host_->fd(), &ev);
    }
  }
  thread_ = start_quiet_thread([this] { run(); });
}

bool Engine::poll_before_eagain_locked(Instant now) {
  if (cfg_.poll_mode == PollMode::Interrupt) return poll_inline_locked(now) > 0;
  app_active_.store(true, std::memory_order_relaxed);
  poll_locked(now);
  return true;
}

void Engine::flush_deferred_locked() {
  if (!tx_deferred_) return;
  dev_->flush_tx();
  tx_deferred_ = false;
}

void Engine::set_timer_locked(Instant deadline) {
  itimerspec its{};
  if (deadline != kNever) {
    int64_t us = std::max<int64_t>(deadline.us, 1);
    its.it_value.tv_sec = us / 1000000;
    its.it_value.tv_nsec = (us % 1000000) * 1000;
  }
  timerfd_settime(timerfd_, TFD_TIMER_ABSTIME, &its, nullptr);
  timer_set_ = deadline;
}

size_t Engine::poll_inline_locked(Instant now) {
  // Interrupt mode, from an application thread: frames already on the RX
  // ring are processed here instead of waiting for the progress thread to be
  // scheduled, woken and to wake this thread in turn (two context switches
  // per batch on a busy server). An empty ring costs a few loads.
  const size_t n = poll_locked(now);
  app_active_.store(true, std::memory_order_relaxed);  // see kRestCheck
  // Processing may have set an earlier deadline (a retransmission timer)
  // than the one the sleeping progress thread armed.
  rearm_locked();
  return n;
}

bool Engine::rearm_locked() {
  // A resting progress thread looks within rest_period_ anyway, and the
  // application that rests it runs due timers and kicks deferred frames at
  // each of its polls: no timer system call (and no wakeup) for a deadline a
  // call moved. Work due at once was done by after_call_locked.
  // A thread asleep in the device slot runs nothing until a frame wakes it:
  // the progress thread keeps the timers on time meanwhile.
  if (resting_ && !device_sleeper_) return false;
  Instant want = stack_->poll_at();
  if (tx_deferred_) want = std::min(want, tx_flush_at_);
  // A call may have changed a queue: the snapshot is published on time.
  if (stats_) want = std::min(want, next_publish_);
  if (want >= armed_) return false;
  // Moving the sleeping progress thread's timer is enough: waking it would
  // cost a context switch for nothing until the deadline. The timer is only
  // set under the lock, so its value and timer_set_ agree.
  armed_ = want;
  if (want < timer_set_) set_timer_locked(want);
  return true;
}

void Engine::requeue_device_waits() {
  std::lock_guard<std::mutex> lk(mu_);
  if (epfd_ < 0 || resting_) return;  // leaving the rest adds them at the back
  watch_devices_locked(false);
  watch_devices_locked(true);
}

void Engine::watch_devices_locked(bool on) {
  for (int fd : dev_wait_fds_) {
    if (!on) {
      epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
      continue;
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLEXCLUSIVE;
    ev.data.fd = fd;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);  // polls it: frames already waiting wake us
  }
}

void Engine::stop() {
  if (!thread_.joinable()) return;
  stop_ = true;
  wake();
  thread_.join();
  {
    std::lock_guard<std::mutex> lk(mu_);
    flush_deferred_locked();  // what the last calls queued (tx_defer) still leaves
  }
  for (int* fd : {&epfd_, &timerfd_, &eventfd_}) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
  std::lock_guard<std::mutex> lk(mu_);
  if (stats_) {
    stats_->end_capture_locked(*tap_);
    stats_.reset();  // unlinks the segment: the process no longer shows in xstack-stat
    next_publish_ = kNever;
  }
}

void Engine::run() {
  if (cfg_.poll_mode == PollMode::Interrupt) run_interrupt();
  else run_spin();
}

void Engine::run_spin() {
  while (!stop_.load(std::memory_order_relaxed)) {
    progress_wakeups_.store(progress_wakeups_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    // While an application thread is polling (waiting, or between two calls
    // of a request/response loop) it runs the rings and the timers itself;
    // competing for the lock and the core would only delay it. Each wakeup of
    // this thread preempts the application on a shared core for some
    // microseconds: looking every 1 ms made 1-2 % of a ping-pong's round
    // trips 10 us slower (native one-way p99 13 us, the kernel's 5.6). So
    // while a thread spins in wait_locked, which polls for everyone, it looks
    // every kSpinnerCheck; between calls (the flag) every 1 ms, so that it
    // resumes polling soon after the application goes quiet.
    if (spinning_waiters_.load(std::memory_order_relaxed) > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(kSpinnerCheck.millis()));
      continue;
    }
    if (app_active_.exchange(false, std::memory_order_relaxed)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    {
      std::unique_lock<std::mutex> lk(mu_, std::try_to_lock);
      // An application thread inside the stack is making progress for us.
      if (lk.owns_lock()) poll_locked(clock_now());
    }
    std::this_thread::yield();
  }
}

void Engine::run_interrupt() {
  epoll_event evs[16];
  while (!stop_.load(std::memory_order_relaxed)) {
    Instant deadline;
    {
      std::lock_guard<std::mutex> lk(mu_);
      Instant now = clock_now();
      // Drain everything that is ready before sleeping.
      while (poll_locked(now) > 0) now = clock_now();
      // kRestCheck: an application thread polled since our last sleep (we
      // were woken by frames it would have taken, or by a timer such as a
      // deferred kick it has made already) -> rest; resting, and no
      // application poll for kRestMisses looks, or a thread now sleeping on
      // its eventfd -> watch. Not while a thread sleeps in the device slot:
      // it watches the rings itself (and wakes us when it leaves the slot to
      // others sleeping on their eventfds).
      const bool app_polled = app_active_.exchange(false, std::memory_order_relaxed);
      if (resting_) rest_misses_ = app_polled ? 0 : rest_misses_ + 1;
      if (resting_ && !device_sleeper_ && (rest_misses_ >= kRestMisses || !waiter_fds_.empty())) {
        resting_ = false;
        watch_devices_locked(true);
      } else if (resting_) {
        if (app_polled) rest_period_ = std::min(rest_period_ + rest_period_, kRestCheckMax);
      } else if (app_polled && waiter_fds_.empty()) {
        resting_ = true;
        rest_period_ = kRestCheck;
        rest_misses_ = 0;
        watch_devices_locked(false);
        rests_.store(rests_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
      }
      deadline = stack_->poll_at();
      // Resting: timers are run by the application's polls; we look once per
      // period. Timer keys are lazy (a deadline that moved later pops early,
      // STYLE 8): a server closing 12,000 connections a second has one due
      // every ~100 us, each a wakeup if we slept until it.
      // With a thread in the device slot, frames wake it: we only keep the
      // timers on time.
      if (resting_ && !device_sleeper_ && deadline > now) deadline = now + rest_period_;
      // Publish what changed since the last snapshot, and keep checking a
      // capture reader's heartbeat while one is attached.
      // An idle engine also refreshes the snapshot every kStatsIdleRefresh,
      // for changes no poll or call reported (a socket opened without I/O).
      if (stats_) {
        deadline = std::min(deadline, stats_dirty_ || tap_->active() ? next_publish_
                                                                     : next_publish_ + kStatsIdleRefresh);
      }
      if (tx_deferred_) deadline = std::min(deadline, tx_flush_at_);
      armed_ = deadline;
      // The timer keeps its setting while the deadline does not move (most
      // wakeups on a busy server): one system call less per wakeup. Set
      // under the lock: an application call may move it earlier (tx_defer).
      if (deadline != timer_set_) set_timer_locked(deadline);
    }
    int n = epoll_wait(epfd_, evs, 16, -1);
    progress_wakeups_.store(progress_wakeups_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    for (int i = 0; i < n; ++i) {
      uint64_t v;
      if (evs[i].data.fd == timerfd_ || evs[i].data.fd == eventfd_) {
        ssize_t r = read(evs[i].data.fd, &v, sizeof v);
        (void)r;
        if (evs[i].data.fd == timerfd_) {
          std::lock_guard<std::mutex> lk(mu_);
          timer_set_ = kNever;  // fired: a one-shot timer is disarmed
        }
      } else if (host_ && evs[i].data.fd == host_->fd()) {
        host_pending_ = true;  // applied by the next poll_locked, under the lock
      }
    }
  }
}

}  // namespace xs
