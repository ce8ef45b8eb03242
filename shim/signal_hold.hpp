// SignalHold: the signal mask of a shim wait (epoll_wait, poll, select).
#pragma once

#include <pthread.h>
#include <signal.h>

#include <cerrno>

namespace xs::shim {

// Signals are held from the start of a wait that may sleep until its sleep
// begins: the sleep (epoll_pwait/ppoll) unblocks them atomically, so one
// arriving during the shim's work before it (a poll, a TX kick) still ends
// the wait with EINTR, as it would end the kernel's epoll_wait. Otherwise the
// handler ran before the sleep and an application that waits for its flag
// (nginx's SIGTERM) slept on. Faults stay unblocked: one in our code with
// them held would kill the process outright. Restored (errno kept) on return.
class SignalHold {
 public:
  SignalHold(bool may_sleep, const sigset_t* app_mask) {
    if (!may_sleep) {
      sleep_mask_ = app_mask;
      return;
    }
    sigset_t all;
    sigfillset(&all);
    for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS}) sigdelset(&all, sig);
    held_ = pthread_sigmask(SIG_BLOCK, &all, &saved_) == 0;
    sleep_mask_ = app_mask != nullptr ? app_mask : (held_ ? &saved_ : nullptr);
  }
  ~SignalHold() {
    if (!held_) return;
    int e = errno;
    pthread_sigmask(SIG_SETMASK, &saved_, nullptr);
    errno = e;
  }
  SignalHold(const SignalHold&) = delete;
  SignalHold& operator=(const SignalHold&) = delete;
  // The mask to sleep with (nullptr: the thread's own).
  const sigset_t* sleep_mask() const { return sleep_mask_; }

 private:
  sigset_t saved_;
  bool held_ = false;
  const sigset_t* sleep_mask_ = nullptr;
};

}  // namespace xs::shim
