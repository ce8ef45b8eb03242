// Engine::wait_locked: how a blocked application call waits (docs/architecture.md).
//
// Interrupt mode. A thread with nothing to do sleeps in the kernel, on an
// eventfd of its own that any poll changing some socket's readiness writes.
// Alone, it would be woken by the progress thread: a frame wakes the progress
// thread, which processes it and writes the eventfd, which wakes the caller:
// two wakeups and a lock hand-over per frame, tens of microseconds on a VM
// (sockperf's blocking server waited 6 us longer per message than on kernel
// sockets). So the one thread asleep also watches the device's descriptors
// (the device slot): a frame wakes it, and it runs the stack itself. The
// progress thread rests from the descriptors meanwhile (two threads woken
// for one frame would fight for the lock and the core) and only keeps the
// timers on time. Others that come to sleep while the slot is taken sleep on
// their eventfds: the slot's holder writes them when its polls change
// readiness, and wakes the progress thread to watch again when it leaves.
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <thread>

#include "socketapi/engine.hpp"
#include "socketapi/private_fd.hpp"

namespace xs {

namespace {

// The calling thread's wait eventfd (blocking, so that a restartable wait can
// sleep in read(2) and let the kernel apply SA_RESTART).
struct ThreadWaitFd {
  int fd = move_fd_high(eventfd(0, EFD_CLOEXEC));
  ~ThreadWaitFd() {
    if (fd >= 0) close(fd);
  }
};

int thread_wait_fd() {
  thread_local ThreadWaitFd w;
  return w.fd;
}

// One pollfd for the eventfd, the others for the device's RX queues.
constexpr size_t kMaxSlotFds = 16;

// Without a probe (a program using the native API: nobody watches its
// sigaction() calls) the answer is Unknown. A scan cached for some time is
// not enough: `signal(SIGALRM, h); alarm(1); recv(...)` installs a handler
// just before the call, and the scan again at the EINTR cannot tell mixed
// handlers apart (the unit test NativeSignals.BlockingRecvRestartsAfter-
// SaRestartHandler under ASan, whose own handlers lack SA_RESTART).
SignalRestart unknown() { return SignalRestart::Unknown; }

std::atomic<SignalRestartProbe> g_restart_probe{unknown};

// ppoll without the shim's interposition (the engine runs inside the shim
// too), as a cancellation point like the C library's.
int raw_ppoll(pollfd* fds, nfds_t n, const timespec* ts) {
  int old = 0;
  pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, &old);
  long rc = syscall(SYS_ppoll, fds, n, ts, nullptr, 0);
  pthread_setcanceltype(old, nullptr);
  return static_cast<int>(rc);
}

}  // namespace

void set_signal_restart_probe(SignalRestartProbe probe) { g_restart_probe.store(probe ? probe : unknown); }

SignalRestart scan_signal_restart() {
  bool any_restart = false, any_not = false;
  for (int sig = 1; sig < NSIG; ++sig) {
    struct sigaction sa {};
    // The C library refuses its own signals (SIGCANCEL, SIGSETXID) and
    // SIGKILL/SIGSTOP cannot be caught: both answer EINVAL.
    if (sigaction(sig, nullptr, &sa) != 0) continue;
    const bool caught = (sa.sa_flags & SA_SIGINFO) != 0
                            ? sa.sa_sigaction != nullptr
                            : sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN;
    if (!caught) continue;
    ((sa.sa_flags & SA_RESTART) != 0 ? any_restart : any_not) = true;
  }
  if (any_restart && any_not) return SignalRestart::Unknown;
  return any_not ? SignalRestart::Never : SignalRestart::Always;
}

bool Engine::wait_locked(std::unique_lock<std::mutex>& lk, FunctionRef<bool()> pred, Instant deadline) {
  return wait_locked(lk, pred, deadline, WaitKind::Uninterruptible) == WaitStatus::Ready;
}

WaitStatus Engine::wait_locked(std::unique_lock<std::mutex>& lk, FunctionRef<bool()> pred, Instant deadline,
                               WaitKind kind) {
  bool polled = false;
  while (!pred()) {
    Instant now = clock_now();
    if (now >= deadline) {
      // A non-blocking call (or a wait that just expired) in spin/busy-poll
      // mode: one look at the rings before giving up.
      if (!polled && thread_.joinable() && (polled = poll_before_eagain_locked(now))) continue;
      return WaitStatus::Timeout;
    }
    if (cfg_.poll_mode == PollMode::Interrupt || !thread_.joinable()) {
      if (!thread_.joinable()) {
        // No progress thread: the caller drives the loop itself.
        poll_locked(now);
        continue;
      }
      // Frames that arrived since the caller looked, or work that is due
      // (timers, frames the stack sent itself), may be what it waits for:
      // look again before sleeping. A full batch may have left more behind.
      if (!polled) {
        polled = true;
        while (poll_inline_locked(now) >= cfg_.rx_batch) {
        }
        continue;
      }
      int wfd = thread_wait_fd();
      if (wfd < 0) {
        // No eventfd (descriptor limit): sleep briefly and look again.
        lk.unlock();
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        lk.lock();
        continue;
      }
      bool device_woke = false;
      WaitStatus st = sleep_locked(lk, wfd, now, deadline, kind, &device_woke);
      if (st == WaitStatus::Interrupted) return pred() ? WaitStatus::Ready : WaitStatus::Interrupted;
      // Woken by the device: the frames are ours to process.
      if (device_woke) polled = false;
    } else {
      // Spin / busy-poll: the waiting thread polls the rings itself (lowest
      // latency), letting other threads of the process in between polls.
      // Signals do not end this wait (no system call to interrupt).
      spinning_waiters_.fetch_add(1, std::memory_order_relaxed);
      app_active_.store(true, std::memory_order_relaxed);
      bool done = false;
      Instant last_yield = now;
      Instant t = now;  // the first poll uses the time just read
      for (bool first = true; !done; first = false) {
        if (!first) t = clock_now();
        poll_locked(t);
        if (pred()) {
          done = true;
          break;
        }
        if (t >= deadline) break;
        // Let other threads of the process in between polls. sched_yield
        // costs about a microsecond here (a trip through the scheduler even
        // when nothing else is runnable) and a frame arriving meanwhile waits
        // for it, so yield only every 200 us.
        lk.unlock();
        if (t - last_yield >= micros(200)) {
          std::this_thread::yield();
          last_yield = t;
        } else {
          __builtin_ia32_pause();
        }
        lk.lock();
      }
      spinning_waiters_.fetch_sub(1, std::memory_order_relaxed);
      return done ? WaitStatus::Ready : WaitStatus::Timeout;
    }
  }
  return WaitStatus::Ready;
}

// One sleep of an interrupt-mode wait, the lock released meanwhile. Ready:
// woken (or a deadline passed: the caller looks at the clock); Interrupted:
// a signal ends the wait.
WaitStatus Engine::sleep_locked(std::unique_lock<std::mutex>& lk, int wfd, Instant now, Instant deadline,
                                WaitKind kind, bool* device_woke) {
  // Registered under the lock: a poll that changes state after pred() was
  // false writes our eventfd, so no wakeup is lost.
  waiter_fds_.push_back(wfd);
  SignalRestart restart = SignalRestart::Unknown;
  const bool slot = take_device_slot_locked(kind, deadline, &restart);
  // A resting progress thread watches no device descriptor: it must again,
  // or nothing would poll for this sleeper.
  if (!slot && resting_ && !device_sleeper_) wake();
  // Back under the lock on every way out, also a cancellation's unwinding.
  struct Relock {
    Engine& e;
    std::unique_lock<std::mutex>& lk;
    int wfd;
    bool slot;
    ~Relock() {
      lk.lock();
      e.waiter_fds_.erase(std::find(e.waiter_fds_.begin(), e.waiter_fds_.end(), wfd));
      if (slot) e.release_device_slot_locked(clock_now());
    }
  } relock{*this, lk, wfd, slot};
  lk.unlock();

  int rc;
  int err = 0;
  uint64_t v;
  if (!slot && deadline == kNever && kind == WaitKind::Restartable) {
    rc = static_cast<int>(read(wfd, &v, sizeof v));
    if (rc < 0) err = errno;
    return err == EINTR ? WaitStatus::Interrupted : WaitStatus::Ready;
  }
  std::array<pollfd, kMaxSlotFds> fds{};
  nfds_t n = 1;
  fds[0] = {wfd, POLLIN, 0};
  if (slot) {
    for (int fd : dev_wait_fds_) fds[n++] = {fd, POLLIN, 0};
  }
  for (;;) {
    timespec ts{};
    if (deadline != kNever) {
      int64_t us = std::max<int64_t>((deadline - now).us, 0);
      ts.tv_sec = us / 1000000;
      ts.tv_nsec = (us % 1000000) * 1000;
    }
    rc = raw_ppoll(fds.data(), n, deadline == kNever ? nullptr : &ts);
    if (rc >= 0) break;
    err = errno;
    if (err != EINTR) break;
    // Linux: a socket call with no timeout is restarted after an SA_RESTART
    // handler (signal(7)); one with SO_RCVTIMEO/SO_SNDTIMEO, and poll and
    // epoll_wait, fail with EINTR. A slot is taken for the first kind only
    // when every handler agrees (the probe); the handlers now say which.
    if (kind == WaitKind::Uninterruptible) continue;
    if (kind == WaitKind::Restartable && deadline == kNever) {
      SignalRestart now_says = scan_signal_restart();
      if (now_says == SignalRestart::Unknown) now_says = restart;
      if (now_says == SignalRestart::Always) continue;
    }
    return WaitStatus::Interrupted;
  }
  if (rc > 0) {
    if (fds[0].revents & POLLIN) {
      ssize_t r = read(wfd, &v, sizeof v);
      (void)r;
    }
    for (nfds_t i = 1; i < n; ++i) {
      *device_woke |= (fds[i].revents & POLLIN) != 0;
      // A device descriptor in error would end every sleep at once: sleep
      // on the eventfd alone from now on (the progress thread watches).
      if (fds[i].revents & (POLLERR | POLLHUP | POLLNVAL)) slot_broken_.store(true, std::memory_order_relaxed);
    }
    if (*device_woke) slot_wakeups_.fetch_add(1, std::memory_order_relaxed);
  }
  return WaitStatus::Ready;
}

bool Engine::take_device_slot_locked(WaitKind kind, Instant deadline, SignalRestart* restart) {
  // Only a thread asleep alone: with several, one frame would wake them all.
  if (device_sleeper_ || waiter_fds_.size() != 1 || dev_wait_fds_.empty() ||
      slot_broken_.load(std::memory_order_relaxed) ||
      dev_wait_fds_.size() >= kMaxSlotFds || epfd_ < 0) {
    return false;
  }
  if (kind == WaitKind::Restartable && deadline == kNever) {
    *restart = g_restart_probe.load(std::memory_order_relaxed)();
    if (*restart == SignalRestart::Unknown) return false;
  }
  device_sleeper_ = true;
  slot_sleeps_.store(slot_sleeps_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  if (!resting_) {
    resting_ = true;
    rest_period_ = kRestCheck;
    rest_misses_ = 0;
    watch_devices_locked(false);
  }
  // The progress thread may have armed its timer for a resting look; the
  // stack's own deadlines must now fire on time.
  rearm_locked();
  return true;
}

void Engine::release_device_slot_locked(Instant now) {
  device_sleeper_ = false;
  // Others sleep on their eventfds, and nobody watches the device for them.
  if (!waiter_fds_.empty()) {
    wake();
    return;
  }
  // The caller goes back to its work and may not wait again for a while:
  // the resting progress thread looks within rest_period_ (frames left on
  // the ring would otherwise wait for the caller's next call).
  if (resting_) {
    Instant look = now + rest_period_;
    if (look < armed_) {
      armed_ = look;
      if (look < timer_set_) set_timer_locked(look);
    }
  }
}

}  // namespace xs
