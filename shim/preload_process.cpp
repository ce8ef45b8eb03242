// Process-level calls: vfork becomes fork (a vfork child shares our memory,
// so a close() in it would change the parent's stack), and the exec family
// keeps the shim's environment when a program passes its own, and carries
// a child's inherited xstack sockets into the new image (docs/shim.md, "exec").
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "shim/fork_share.hpp"
#include "socketapi/native_runtime.hpp"
#include "shim/real.hpp"
#include "shim/state.hpp"

namespace {

using namespace xs::shim;

// The environment for the new image: `envp` with LD_PRELOAD and every
// XSTACK_* setting put back where the program dropped them, and XSTACK_FDS
// (the inherited sockets) set. `storage` owns the added strings.
std::vector<char*> exec_env(char* const envp[], const std::string& fds, std::vector<std::string>* storage) {
  std::vector<char*> env;
  auto name_of = [](const char* e) { return std::string(e, std::strcspn(e, "=")); };
  auto ours = [](const std::string& n) { return n == "LD_PRELOAD" || n.rfind("XSTACK_", 0) == 0; };
  for (char* const* e = envp; e && *e; ++e) {
    if (name_of(*e) != "XSTACK_FDS") env.push_back(*e);
  }
  // Every XSTACK_* setting of ours (and LD_PRELOAD) the new environment lacks.
  for (char** e = environ; e && *e; ++e) {
    std::string n = name_of(*e);
    if (!ours(n) || n == "XSTACK_FDS") continue;
    bool present = false;
    for (char* x : env) present |= name_of(x) == n;
    if (!present) storage->push_back(*e);
  }
  if (!fds.empty()) storage->push_back("XSTACK_FDS=" + fds);
  for (auto& s : *storage) env.push_back(s.data());
  env.push_back(nullptr);
  return env;
}

std::vector<char*> collect_args(const char* first, va_list ap, char* const** envp_out) {
  std::vector<char*> args;
  args.push_back(const_cast<char*>(first));
  while (args.back() != nullptr) args.push_back(va_arg(ap, char*));
  if (envp_out) *envp_out = va_arg(ap, char* const*);
  return args;
}

// Frames the stack deferred (EngineConfig::tx_defer) leave before the
// process image does: the kernel would still deliver data written before
// _exit or exec, so the stack must have sent it.
void flush_before_leaving() {
  if (xs::native::Runtime* r = xs::native::default_runtime(false)) {
    Inside in;
    (void)r->try_flush_deferred();
  }
}

}  // namespace

extern "C" {

pid_t vfork() { return fork(); }

[[noreturn]] void _exit(int status) {
  flush_before_leaving();
  for (;;) syscall(SYS_exit_group, status);
}

[[noreturn]] void _Exit(int status) { _exit(status); }

int execve(const char* path, char* const argv[], char* const envp[]) {
  flush_before_leaving();
  std::string fds = forkshare::prepare_exec();
  std::vector<std::string> storage;
  std::vector<char*> env = exec_env(envp, fds, &storage);
  int rc = real::execve(path, argv, env.data());
  int e = errno;
  forkshare::undo_exec();
  errno = e;
  return rc;
}

int execv(const char* path, char* const argv[]) { return execve(path, argv, environ); }

int execvpe(const char* file, char* const argv[], char* const envp[]) {
  std::string fds = forkshare::prepare_exec();
  std::vector<std::string> storage;
  std::vector<char*> env = exec_env(envp, fds, &storage);
  int rc = real::execvpe(file, argv, env.data());
  int e = errno;
  forkshare::undo_exec();
  errno = e;
  return rc;
}

int execvp(const char* file, char* const argv[]) { return execvpe(file, argv, environ); }

int fexecve(int fd, char* const argv[], char* const envp[]) {
  std::string fds = forkshare::prepare_exec();
  std::vector<std::string> storage;
  std::vector<char*> env = exec_env(envp, fds, &storage);
  int rc = real::fexecve(fd, argv, env.data());
  int e = errno;
  forkshare::undo_exec();
  errno = e;
  return rc;
}

int execl(const char* path, const char* arg, ...) {
  va_list ap;
  va_start(ap, arg);
  std::vector<char*> args = collect_args(arg, ap, nullptr);
  va_end(ap);
  return execve(path, args.data(), environ);
}

int execlp(const char* file, const char* arg, ...) {
  va_list ap;
  va_start(ap, arg);
  std::vector<char*> args = collect_args(arg, ap, nullptr);
  va_end(ap);
  return execvpe(file, args.data(), environ);
}

int execle(const char* path, const char* arg, ...) {
  va_list ap;
  va_start(ap, arg);
  char* const* envp = nullptr;
  std::vector<char*> args = collect_args(arg, ap, &envp);
  va_end(ap);
  return execve(path, args.data(), envp);
}

}  // extern "C"
