// Threads the stack starts (the progress thread, the shim's fork proxies)
// block every signal. A process-directed signal (SIGCHLD, SIGALRM, SIGTERM,
// ...) is delivered to any thread that does not block it; a program waiting
// for one on its own thread -- nginx's master in sigsuspend -- would never
// wake if one of ours took it. A new thread inherits its creator's mask, so
// the mask is set only around the creation.
#pragma once
#include <pthread.h>
#include <signal.h>

#include <thread>
#include <utility>

namespace xs {

template <class... Args>
std::thread start_quiet_thread(Args&&... args) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  std::thread t(std::forward<Args>(args)...);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return t;
}

}  // namespace xs
