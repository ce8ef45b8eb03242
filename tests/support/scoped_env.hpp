// Removes an environment variable for the life of a scope and puts it back,
// so a test does not depend on how the process that runs it was started.
#pragma once
#include <cstdlib>
#include <optional>
#include <string>

namespace xs {

class ScopedUnsetEnv {
 public:
  explicit ScopedUnsetEnv(const char* name) : name_(name) {
    if (const char* v = std::getenv(name)) saved_ = v;
    unsetenv(name);
  }
  ~ScopedUnsetEnv() {
    if (saved_) setenv(name_.c_str(), saved_->c_str(), 1);
  }
  ScopedUnsetEnv(const ScopedUnsetEnv&) = delete;
  ScopedUnsetEnv& operator=(const ScopedUnsetEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> saved_;
};

}  // namespace xs
