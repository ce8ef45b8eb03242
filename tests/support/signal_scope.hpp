// Signal helpers for tests of calls that a signal interrupts or restarts.
#pragma once
#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <functional>
#include <thread>

namespace xs::testing_signals {

inline void ignore_signal(int) {}

// Installs a do-nothing handler for `sig`, with or without SA_RESTART, for
// the object's life.
struct HandlerScope {
  HandlerScope(int sig, bool restart) : sig_(sig) {
    struct sigaction sa {};
    sa.sa_handler = ignore_signal;
    sa.sa_flags = restart ? SA_RESTART : 0;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, &old_);
  }
  ~HandlerScope() { sigaction(sig_, &old_, nullptr); }
  HandlerScope(const HandlerScope&) = delete;
  HandlerScope& operator=(const HandlerScope&) = delete;

 private:
  int sig_;
  struct sigaction old_ {};
};

// Sends SIGUSR1 to `target` after `ms`, then (after `ms` more) runs `after`.
inline std::thread signal_later(pthread_t target, int ms, std::function<void()> after = {}) {
  return std::thread([=] {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    pthread_kill(target, SIGUSR1);
    if (after) {
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      after();
    }
  });
}

}  // namespace xs::testing_signals
