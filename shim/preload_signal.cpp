// Signal handlers, watched. A blocked socket call sleeps in ppoll on the
// device's descriptors too when it is the only one asleep (the device slot,
// socketapi/engine_wait.cpp): then the kernel no longer applies SA_RESTART
// for it, and the engine must know whether a caught signal restarts the call
// or ends it with EINTR. Every call that installs a handler bumps a
// generation; the answer (SignalRestart) is computed again, one sigaction()
// query per signal, only after the handlers changed. A handler installed by
// a raw system call goes unseen until then: the engine asks the handlers
// again after every EINTR, so it is wrong only for the rare program that
// mixes SA_RESTART and non-SA_RESTART handlers behind our back.
#include <signal.h>

#include <atomic>
#include <cstdint>

#include "shim/real.hpp"
#include "socketapi/engine.hpp"

namespace {

std::atomic<uint64_t> g_generation{1};
std::atomic<uint64_t> g_answer{0};  // (generation << 2) | SignalRestart

xs::SignalRestart probe() {
  const uint64_t gen = g_generation.load(std::memory_order_acquire);
  const uint64_t a = g_answer.load(std::memory_order_acquire);
  if ((a >> 2) == gen) return static_cast<xs::SignalRestart>(a & 3);
  const xs::SignalRestart r = xs::scan_signal_restart();
  g_answer.store((gen << 2) | static_cast<uint64_t>(r), std::memory_order_release);
  return r;
}

template <typename T>
T changed(T result) {
  g_generation.fetch_add(1, std::memory_order_acq_rel);
  return result;
}

// Installed before main (a static object of the shim): the engine asks it
// from the first blocking call on.
[[maybe_unused]] const bool g_installed = (xs::set_signal_restart_probe(probe), true);

}  // namespace

extern "C" {

int sigaction(int sig, const struct sigaction* act, struct sigaction* old) {
  int rc = xs::shim::real::sigaction(sig, act, old);
  return act != nullptr && rc == 0 ? changed(rc) : rc;
}

sighandler_t signal(int sig, sighandler_t handler) { return changed(xs::shim::real::signal(sig, handler)); }
sighandler_t sysv_signal(int sig, sighandler_t handler) { return changed(xs::shim::real::sysv_signal(sig, handler)); }
sighandler_t __sysv_signal(int sig, sighandler_t handler) {
  return changed(xs::shim::real::sysv_signal(sig, handler));
}
sighandler_t bsd_signal(int sig, sighandler_t handler) { return changed(xs::shim::real::signal(sig, handler)); }
sighandler_t sigset(int sig, sighandler_t handler) { return changed(xs::shim::real::sigset(sig, handler)); }

}  // extern "C"
