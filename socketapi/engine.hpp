// The engine: one protocol stack, its packet device, the clock and the event
// loop. Threading model (docs/architecture.md):
//  - The stack is single-threaded; `mutex()` serialises every entry into it.
//    Application threads take the lock, do their socket call (which may
//    transmit at once), then release it: no hand-off to another thread.
//  - A progress thread keeps the stack moving when no application thread is
//    inside it: in Interrupt mode it sleeps in epoll on the device's
//    descriptors, an eventfd (woken when an application call moves a deadline
//    earlier) and a timerfd armed at the stack's next deadline, so an idle
//    engine uses no CPU and still fires retransmit and keepalive timers on
//    time; in Spin/BusyPoll mode it polls continuously.
//  - A blocked application call (Interrupt mode) sleeps in the kernel on an
//    eventfd of its own thread, which poll_locked writes after every poll that
//    changed some socket's state; the only thread asleep also watches the
//    device's descriptors itself (the device slot, engine_wait.cpp), so that
//    a frame wakes it directly rather than through the progress thread.
//    Sleeping in a system call (not on a condition variable) is what lets a
//    signal interrupt the wait (EINTR).
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "socketapi/capture_tap.hpp"
#include "socketapi/host_kernel.hpp"
#include "socketapi/packet_device.hpp"
#include "socketapi/stats_publisher.hpp"
#include "stack/base/random.hpp"
#include "stack/stack.hpp"
#include "xdp/function_ref.hpp"

namespace xs {

enum class PollMode : uint8_t { Interrupt, Spin, BusyPoll };

// How a wait ended. Interrupted: a signal arrived (Interrupt mode only).
enum class WaitStatus : uint8_t { Ready, Timeout, Interrupted };
// Restartable: with no deadline, a signal whose handler has SA_RESTART does
// not end the wait (Linux restarts a socket call with no timeout; one with
// SO_RCVTIMEO/SO_SNDTIMEO, and poll/epoll_wait, always return EINTR).
enum class WaitKind : uint8_t { Restartable, Interruptible, Uninterruptible };

// What a caught signal does to a blocking socket call with no timeout: the
// same for every signal with a handler (Always: all have SA_RESTART; Never:
// none has), or Unknown (mixed, or nobody can tell). Such a wait sleeps
// where the kernel applies SA_RESTART itself (read(2) on its eventfd) unless
// the answer is known; then it may sleep in ppoll on the device too and
// restart or fail after EINTR by that answer.
enum class SignalRestart : uint8_t { Unknown, Always, Never };
using SignalRestartProbe = SignalRestart (*)();
// The shim, which sees every sigaction(), installs one; without (nullptr:
// a program using the native API) the answer is Unknown.
void set_signal_restart_probe(SignalRestartProbe probe);
// What the handlers installed now say (one sigaction() query per signal).
SignalRestart scan_signal_restart();

struct EngineConfig {
  Ipv4Cidr addr;
  std::optional<Ipv4Addr> gateway;
  PollMode poll_mode = PollMode::Interrupt;
  TcpConfig tcp;
  uint64_t seed = 0;  // 0: seed from getrandom(2)
  size_t rx_batch = 64;
  // Interrupt mode: frames an application call queues are sent (the TX kick,
  // a system call doing the copy-mode transmit) when the calling thread next
  // waits or polls, or at the latest this long after the first of them
  // (XSTACK_TX_DEFER_USECS; 0 kicks in every call). A server answering a
  // batch of events then kicks once, and a response and the FIN of the
  // close() after it leave together, as from the kernel. The shim turns it
  // on (100 us, native::set_default_tx_defer); a native API program, whose
  // frames could be lost if it _exit()s right after a send, opts in.
  Duration tx_defer = micros(0);
  // Dedicated-IP mode: the device steers everything for our address (ARP,
  // ICMP, every TCP/UDP port) to us and the stack answers it. Shared-IP mode
  // (false): only the ports the stack claims are steered; the kernel keeps
  // ARP/ICMP and, through a HostKernel, tells us neighbours and the gateway.
  bool dedicated_ip = true;
  // The shared-memory stats segment for xstack-stat / xstack-dump
  // (docs/observability.md); start() applies the XSTACK_STATS* variables.
  StatsConfig stats;
};

class Engine final : public SocketObserver {
 public:
  // `host` is required in shared-IP mode and unused otherwise.
  Engine(const EngineConfig& cfg, std::unique_ptr<PacketDevice> dev, std::unique_ptr<HostKernel> host = nullptr);
  ~Engine() override;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // CLOCK_MONOTONIC as the stack's Instant.
  static Instant clock_now();

  void start();  // the progress thread
  void stop();

  std::mutex& mutex() { return mu_; }
  // The following require mutex() held.
  Stack& stack_locked() { return *stack_; }
  PacketDevice& device_locked() { return *dev_; }
  // One loop iteration: a batch of RX, due timers, TX kick. Returns frames received.
  size_t poll_locked(Instant now);
  // After an application call: kick TX and make sure the progress thread
  // re-arms its timer if the stack now needs attention earlier.
  void after_call_locked();
  // Waits (releasing the lock) until pred() holds or `deadline` passes.
  // Returns pred(). In busy-poll/spin modes the caller polls the device itself.
  // Never interrupted by signals.
  // `pred` is borrowed for the call (no std::function: no allocation for a
  // lambda with several captures, on every blocking call).
  bool wait_locked(std::unique_lock<std::mutex>& lk, FunctionRef<bool()> pred, Instant deadline);
  WaitStatus wait_locked(std::unique_lock<std::mutex>& lk, FunctionRef<bool()> pred, Instant deadline,
                         WaitKind kind);
  // A local port the stack is about to bind (0: any). Dedicated IP: returns
  // `port` (the stack picks when 0). Shared IP: reserves it with the kernel
  // (which picks when 0) and steers it to us; AddressInUse when the kernel
  // or another process has it. Undo with release_port_locked.
  // `owner` (the socket) releases the claim with release_claim_locked.
  Expected<uint16_t, SockError> claim_port_locked(const void* owner, uint8_t proto, uint16_t port, bool reuseaddr);
  void release_claim_locked(const void* owner);
  bool shared_ip() const { return !cfg_.dedicated_ip; }

  // Readiness changed on some socket (SocketObserver).
  void on_socket_event(void* cookie) override;
  // Extra observer for the API layer (epoll emulation); called with the lock held.
  void set_event_hook(std::function<void(void*)> hook) { hook_ = std::move(hook); }

  // Interrupt mode: an application thread that sleeps on the device's
  // descriptors itself (the shim's epoll companion) registered them with
  // EPOLLEXCLUSIVE after the progress thread did. Re-registering the progress
  // thread's moves its wait behind theirs, so that frames wake a waiting
  // application thread, which runs the stack itself (one wakeup), and the
  // progress thread only when no application thread waits (an exclusive
  // wakeup passes over an epoll instance nobody is waiting on).
  void requeue_device_waits();

  // A call about to fail with EAGAIN polls the rings once first. Spin/busy-
  // poll: an application that retries non-blocking calls in a loop is then
  // what moves the stack (the progress thread keeps away from a thread that
  // calls in often), as a spinning waiter would; returns true. Interrupt
  // mode: frames already received are processed without waiting for the
  // progress thread; true when there were any.
  bool poll_before_eagain_locked() { return poll_before_eagain_locked(clock_now()); }
  // The same with the time the caller has just read (one clock read less
  // per retry of a non-blocking call).
  bool poll_before_eagain_locked(Instant now);
  // Interrupt mode: one poll of the rings and timers from the calling
  // (application) thread; returns the frames processed.
  size_t poll_inline_locked(Instant now);
  // Spin/busy-poll: an application thread polling in a loop of its own (the
  // shim's epoll/poll/select) counts as a spinning waiter meanwhile, so the
  // progress thread keeps off its core (run_spin). No lock needed.
  void spinner_enter() {
    spinning_waiters_.fetch_add(1, std::memory_order_relaxed);
    app_active_.store(true, std::memory_order_relaxed);
  }
  void spinner_leave() { spinning_waiters_.fetch_sub(1, std::memory_order_relaxed); }
  // Sends frames deferred by tx_defer now (before a thread blocks outside
  // the engine, e.g. in the shim's kernel epoll_wait).
  void flush_deferred_locked();

  const EngineConfig& config() const { return cfg_; }
  uint64_t polls() const { return polls_.load(std::memory_order_relaxed); }
  uint64_t progress_rests() const { return rests_.load(std::memory_order_relaxed); }
  // Times the progress thread woke (spin modes: looked), and times a thread asleep
  // in wait_locked was woken by the device itself / slept in the device slot.
  uint64_t progress_wakeups() const { return progress_wakeups_.load(std::memory_order_relaxed); }
  uint64_t slot_wakeups() const { return slot_wakeups_.load(std::memory_order_relaxed); }
  uint64_t slot_sleeps() const { return slot_sleeps_.load(std::memory_order_relaxed); }
  // The stats segment's name ("xstack-<pid>[.<n>]"), empty when not published.
  std::string stats_name() const { return stats_ ? stats_->name() : std::string(); }

 private:
  // Interrupt mode: while an application thread keeps polling the rings itself
  // (an event loop under load), the progress thread takes its wait off the
  // device descriptors and only looks this often whether the application went
  // quiet. Frames then wake nobody but the application: on a busy server the
  // progress thread used to be woken for every batch that arrived while the
  // application was running, preempting it (two context switches and a lock
  // hand-over per batch, ~20% of nginx's CPU on one core). It bounds how long
  // frames can wait when the application stops polling without sleeping on
  // the device descriptors (a long computation). The period starts at
  // kRestCheck and doubles, up to kRestCheckMax, while every look finds the
  // application still polling: on this VM a wakeup of the progress thread
  // costs tens of microseconds of the core it shares with the application.
  // It watches again after kRestMisses looks in a row without an application
  // poll: one event loop turn can take longer than a period (nginx closing 32
  // connections takes ~3 ms), and leaving the rest for it costs a burst of
  // wakeups. Frames wait at most kRestCheckMax * kRestMisses.
  static constexpr Duration kRestCheck = millis(1);
  static constexpr Duration kRestCheckMax = millis(4);
  static constexpr int kRestMisses = 2;
  // Spin/busy-poll: how often the progress thread looks while an application
  // thread spins in wait_locked (run_spin). A frame waits at most about this
  // long after the application stops calling in.
  static constexpr Duration kSpinnerCheck = millis(20);

  void run();
  void run_interrupt();
  void run_spin();
  void wake();
  void publish_stats_locked(Instant now);

  EngineConfig cfg_;
  std::unique_ptr<PacketDevice> dev_;
  std::unique_ptr<HostKernel> host_;
  std::atomic<bool> host_pending_{false};  // the host fd reported updates
  Instant next_host_sync_;                  // spin modes look every millisecond
  std::unordered_map<const void*, std::pair<uint8_t, uint16_t>> claims_;  // owner -> (proto, port)
  std::unique_ptr<Random> rng_;
  // Between the stack and the device: copies frames for xstack-dump when a
  // capture is attached (one pointer test per TX frame otherwise).
  std::unique_ptr<CaptureTap> tap_;
  std::unique_ptr<Stack> stack_;
  std::mutex mu_;
  std::vector<int> waiter_fds_;  // eventfds of threads sleeping in wait_locked
  // Interrupt mode, the device slot (engine_wait.cpp): a thread asleep in
  // wait_locked, alone, watches the device's descriptors itself, and the
  // progress thread rests from them meanwhile but keeps the timers on time.
  bool device_sleeper_ = false;
  std::atomic<bool> slot_broken_{false};  // a device descriptor reported an error
  std::vector<int> dev_wait_fds_;  // dev_->wait_fds(), read once at start()
  bool take_device_slot_locked(WaitKind kind, Instant deadline, SignalRestart* restart);
  void release_device_slot_locked(Instant now);
  WaitStatus sleep_locked(std::unique_lock<std::mutex>& lk, int wfd, Instant now, Instant deadline, WaitKind kind,
                          bool* device_woke);
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> polls_{0};
  // Application threads polling the device themselves in wait_locked
  // (spin/busy-poll modes): while any does, the progress thread stays off
  // the rings instead of competing for the lock and a core.
  std::atomic<int> spinning_waiters_{0};
  // Set whenever an application thread polls (spin modes: or calls in); the
  // progress thread clears it once per sleep step. Spin modes: it keeps away
  // while it finds it set (activity in the last 1-2 ms). Interrupt mode: it
  // rests while it finds it set (kRestCheck in engine.cpp). A flag, not a
  // timestamp: no clock read per call.
  std::atomic<bool> app_active_{false};
  bool events_ = false;
  // Interrupt mode: the progress thread has taken its wait off the device
  // descriptors while an application thread polls them (kRestCheck in
  // engine.cpp). Under mu_.
  bool resting_ = false;
  Duration rest_period_{};  // how long it sleeps before the next look
  int rest_misses_ = 0;     // looks in a row that found no application poll
  std::atomic<uint64_t> rests_{0};  // times it went to rest
  std::atomic<uint64_t> progress_wakeups_{0};
  std::atomic<uint64_t> slot_wakeups_{0};
  std::atomic<uint64_t> slot_sleeps_{0};
  void watch_devices_locked(bool on);
  void notify_waiters_locked();  // after a poll that changed readiness (events_)
  Instant armed_ = kNever;  // the progress thread's timer deadline
  Instant timer_set_ = kNever;  // what timerfd_ is set to (under mu_)
  bool tx_deferred_ = false;     // frames queued by a call, not kicked yet (tx_defer)
  Instant tx_flush_at_ = kNever; // when the progress thread kicks them at the latest
  void set_timer_locked(Instant deadline);
  // Interrupt mode, from a call: brings the progress thread's timer forward
  // to the stack's (or a deferred kick's) earlier deadline. True if it did.
  bool rearm_locked();
  int epfd_ = -1, timerfd_ = -1, eventfd_ = -1;
  std::function<void(void*)> hook_;
  // Stats publishing: poll_locked compares `now` with next_publish_ (kNever
  // when disabled) and nothing else. stats_dirty_: something may have changed
  // since the last snapshot, so an idle progress thread wakes once more to
  // publish it (then sleeps until the next activity).
  std::unique_ptr<StatsPublisher> stats_;
  Instant next_publish_ = kNever;
  bool stats_dirty_ = false;
};

}  // namespace xs
