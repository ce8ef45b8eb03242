// Process-level calls: vfork becomes fork (a vfork child shares our memory,
// so a close() in it would change the parent's stack), and the exec family
// keeps the shim's environment when a program passes its own.
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "shim/real.hpp"
#include "shim/state.hpp"

extern "C" {

pid_t vfork() { return fork(); }

// execve with an explicit environment that dropped LD_PRELOAD or XSTACK_*:
// put them back, so that the new image runs on xstack too (its inherited
// xstack sockets are gone: they are close-on-exec; see docs/shim.md).
int execve(const char* path, char* const argv[], char* const envp[]) {
  static const char* kKeep[] = {"LD_PRELOAD", "XSTACK_IF", "XSTACK_ADDR", "XSTACK_GW", "XSTACK_MODE",
                                "XSTACK_QUEUES", "XSTACK_SHARED_IP", "XSTACK_LOG"};
  if (envp == nullptr || envp == environ) return xs::shim::real::execve(path, argv, envp);
  std::vector<char*> env;
  std::vector<std::string> added;
  for (char* const* e = envp; *e; ++e) env.push_back(*e);
  for (const char* name : kKeep) {
    const char* v = std::getenv(name);
    if (v == nullptr) continue;
    size_t len = std::strlen(name);
    bool present = false;
    for (char* e : env) present |= std::strncmp(e, name, len) == 0 && e[len] == '=';
    if (!present) added.push_back(std::string(name) + "=" + v);
  }
  if (added.empty()) return xs::shim::real::execve(path, argv, envp);
  for (auto& s : added) env.push_back(s.data());
  env.push_back(nullptr);
  return xs::shim::real::execve(path, argv, env.data());
}

}  // extern "C"
