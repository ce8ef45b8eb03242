// posix_spawn, posix_spawnp and system with inherited xstack sockets
// (docs/shim.md, "exec").
//
// glibc's posix_spawn (and system, which uses it) execs inside the C library,
// out of the interposed execve's reach: an xstack socket the new image could
// inherit would arrive there as the bare eventfd behind its number. When the
// process has such a socket, the spawn goes through fork (so the child can
// reach the sockets through the stack's process, fork_share.hpp), the file
// actions and attributes are applied in the child as glibc applies them, and
// the interposed execve passes the sockets on (XSTACK_FDS). Otherwise the C
// library's own function runs, untouched.
//
// posix_spawn_file_actions_t is opaque, so the actions are recorded as they
// are added (the real functions still run), keyed by the object's address.
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "shim/state.hpp"

using namespace xs::shim;

namespace {

template <typename Fn>
Fn next(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
}
#define XS_NEXT(name) \
  static auto real_##name = next<decltype(&::name)>(#name)

struct Action {
  enum Op { Open, Close, Dup2, Chdir, Fchdir, Closefrom, Unknown } op;
  int fd = -1, newfd = -1, oflag = 0;
  mode_t mode = 0;
  std::string path;
};
struct Actions {
  std::vector<Action> list;
  bool unknown = false;  // an action we cannot replay (tcsetpgrp): the C library spawns
};

std::mutex g_mu;
std::unordered_map<const void*, Actions> g_actions;

void add(const posix_spawn_file_actions_t* fa, Action a) {
  std::lock_guard<std::mutex> lk(g_mu);
  Actions& acts = g_actions[fa];
  if (a.op == Action::Unknown) acts.unknown = true;
  acts.list.push_back(std::move(a));
}

// What the child will need of `fa` (false: not recorded, so not replayable).
bool actions_of(const posix_spawn_file_actions_t* fa, Actions* out) {
  if (fa == nullptr) return true;
  std::lock_guard<std::mutex> lk(g_mu);
  auto it = g_actions.find(fa);
  if (it == g_actions.end() || it->second.unknown) return false;
  *out = it->second;
  return true;
}

// Whether the new image could inherit one of our sockets: one without
// close-on-exec, or the source of a dup2 action (which clears it).
bool passes_sockets(const Actions& acts) {
  rlimit rl{};
  int top = kMaxFd;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < static_cast<rlim_t>(kMaxFd)) top = static_cast<int>(rl.rlim_cur);
  for (int fd = 0; fd < top; ++fd) {
    FdKind k = kind(fd);
    if (k != FdKind::XsSocket && k != FdKind::Orphan && !is_proxy(k)) continue;
    int fl = fcntl(fd, F_GETFD);
    if (fl >= 0 && !(fl & FD_CLOEXEC)) return true;
    for (const Action& a : acts.list)
      if (a.op == Action::Dup2 && a.fd == fd) return true;
  }
  return false;
}

[[noreturn]] void child_fail(int errfd, int e) {
  ssize_t w = write(errfd, &e, sizeof e);
  (void)w;
  _exit(127);
}

// closefrom(low) that spares the error pipe, through the interposed close
// (an inherited socket's reference goes back to its parent).
void close_from(int low, int keep) {
  std::vector<int> fds;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(d)) {
      int fd = std::atoi(e->d_name);
      if (e->d_name[0] >= '0' && e->d_name[0] <= '9' && fd >= low && fd != keep && fd != dirfd(d)) fds.push_back(fd);
    }
    closedir(d);
  }
  for (int fd : fds) close(fd);
}

// posix_spawnp's search, as glibc's (__execvpex): the caller's PATH, a
// file that is not an executable image is an error (ENOEXEC, no /bin/sh
// fallback as execvp has), EACCES reported if any candidate gave it. Each
// candidate goes through the interposed execve. Returns with errno set.
void exec_search(const char* file, char* const argv[], char* const envp[]) {
  if (file == nullptr || *file == '\0') {
    errno = ENOENT;
    return;
  }
  if (std::strchr(file, '/') != nullptr) {
    execve(file, argv, envp);
    return;
  }
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/bin:/usr/bin";
  bool eacces = false;
  size_t start = 0;
  for (;;) {
    size_t end = dirs.find(':', start);
    std::string dir = dirs.substr(start, end == std::string::npos ? std::string::npos : end - start);
    std::string full = (dir.empty() ? "." : dir) + "/" + file;
    execve(full.c_str(), argv, envp);
    if (errno == EACCES) eacces = true;
    else if (errno != ENOENT && errno != ENOTDIR && errno != ESTALE && errno != ENODEV && errno != ETIMEDOUT) return;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  errno = eacces ? EACCES : ENOENT;
}

// In the child: the attributes and file actions in glibc's order
// (__spawni_child), then the interposed exec. Errors go to `errfd`.
[[noreturn]] void child_run(int errfd, const char* file, bool search, const Actions& acts,
                            const posix_spawnattr_t* attr, const sigset_t& oldmask, char* const argv[],
                            char* const envp[]) {
  short flags = 0;
  if (attr != nullptr) posix_spawnattr_getflags(attr, &flags);
  // The program's handlers must not run here once signals are unblocked
  // below (exec would reset them anyway); SETSIGDEF resets ignored ones too.
  sigset_t def;
  sigemptyset(&def);
  if (flags & POSIX_SPAWN_SETSIGDEF) posix_spawnattr_getsigdefault(attr, &def);
  for (int sig = 1; sig < NSIG; ++sig) {
    struct sigaction cur {};
    if (sigaction(sig, nullptr, &cur) < 0) continue;
    bool handled = !(cur.sa_flags & SA_SIGINFO) ? (cur.sa_handler != SIG_DFL && cur.sa_handler != SIG_IGN) : true;
    if (!handled && sigismember(&def, sig) != 1) continue;
    struct sigaction sa {};
    sa.sa_handler = SIG_DFL;
    sigaction(sig, &sa, nullptr);
  }
  if (flags & (POSIX_SPAWN_SETSCHEDPARAM | POSIX_SPAWN_SETSCHEDULER)) {
    sched_param sp{};
    posix_spawnattr_getschedparam(attr, &sp);
    if (flags & POSIX_SPAWN_SETSCHEDULER) {
      int policy = 0;
      posix_spawnattr_getschedpolicy(attr, &policy);
      if (sched_setscheduler(0, policy, &sp) < 0) child_fail(errfd, errno);
    } else if (sched_setparam(0, &sp) < 0) {
      child_fail(errfd, errno);
    }
  }
  if ((flags & POSIX_SPAWN_SETSID) && setsid() < 0) child_fail(errfd, errno);
  if (flags & POSIX_SPAWN_SETPGROUP) {
    pid_t pg = 0;
    posix_spawnattr_getpgroup(attr, &pg);
    if (setpgid(0, pg) != 0) child_fail(errfd, errno);
  }
  if ((flags & POSIX_SPAWN_RESETIDS) && (seteuid(getuid()) != 0 || setegid(getgid()) != 0)) child_fail(errfd, errno);
  for (const Action& a : acts.list) {
    switch (a.op) {
      case Action::Open: {
        int fd = open(a.path.c_str(), a.oflag, a.mode);
        if (fd < 0) child_fail(errfd, errno);
        if (fd != a.fd) {
          if (dup2(fd, a.fd) < 0) child_fail(errfd, errno);
          close(fd);
        }
        break;
      }
      case Action::Close:
        close(a.fd);  // glibc ignores a close of a descriptor that is not open
        break;
      case Action::Dup2:
        if (a.fd == a.newfd) {  // the same number: only close-on-exec is cleared
          int fl = fcntl(a.fd, F_GETFD);
          if (fl < 0 || fcntl(a.fd, F_SETFD, fl & ~FD_CLOEXEC) < 0) child_fail(errfd, errno);
        } else if (dup2(a.fd, a.newfd) < 0) {
          child_fail(errfd, errno);
        }
        break;
      case Action::Chdir:
        if (chdir(a.path.c_str()) < 0) child_fail(errfd, errno);
        break;
      case Action::Fchdir:
        if (fchdir(a.fd) < 0) child_fail(errfd, errno);
        break;
      case Action::Closefrom: close_from(a.fd, errfd); break;
      case Action::Unknown: child_fail(errfd, ENOSYS);  // not reached: such spawns use the C library
    }
  }
  sigset_t mask = oldmask;
  if (flags & POSIX_SPAWN_SETSIGMASK) posix_spawnattr_getsigmask(attr, &mask);
  sigprocmask(SIG_SETMASK, &mask, nullptr);
  if (search) exec_search(file, argv, envp);
  else execve(file, argv, envp);
  child_fail(errfd, errno);
}

// fork + child_run; returns 0 with *pid, or the errno (the child reaped).
int spawn_via_fork(pid_t* pid, const char* file, bool search, const Actions& acts, const posix_spawnattr_t* attr,
                   char* const argv[], char* const envp[]) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return errno;
  // Above every number an action names, so no action closes or replaces it
  // (closefrom spares it by name).
  int high = 3;
  for (const Action& a : acts.list) high = std::max({high, a.fd + 1, a.newfd + 1});
  for (int& e : p) {
    int moved = fcntl(e, F_DUPFD_CLOEXEC, high);
    if (moved >= 0) {
      ::close(e);
      e = moved;
    }
  }
  // No parent handler may run in the child before exec.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t c = fork();
  if (c == 0) {
    close(p[0]);
    child_run(p[1], file, search, acts, attr, old, argv, envp);
  }
  int fork_err = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  close(p[1]);
  if (c < 0) {
    close(p[0]);
    return fork_err;
  }
  int e = 0;
  ssize_t n;
  do {
    n = read(p[0], &e, sizeof e);
  } while (n < 0 && errno == EINTR);
  close(p[0]);
  if (n == static_cast<ssize_t>(sizeof e)) {  // exec (or an action) failed: no zombie left, as glibc
    int st;
    while (waitpid(c, &st, 0) < 0 && errno == EINTR) {
    }
    return e;
  }
  if (pid != nullptr) *pid = c;
  return 0;
}

// popen streams opened here (pclose must reap their child): stream -> pid.
std::mutex g_popen_mu;
std::unordered_map<FILE*, pid_t> g_popen;

}  // namespace

extern "C" {

int posix_spawn_file_actions_init(posix_spawn_file_actions_t* fa) {
  XS_NEXT(posix_spawn_file_actions_init);
  int rc = real_posix_spawn_file_actions_init(fa);
  if (rc == 0) {
    std::lock_guard<std::mutex> lk(g_mu);
    g_actions[fa] = Actions{};
  }
  return rc;
}

int posix_spawn_file_actions_destroy(posix_spawn_file_actions_t* fa) {
  XS_NEXT(posix_spawn_file_actions_destroy);
  {
    std::lock_guard<std::mutex> lk(g_mu);
    g_actions.erase(fa);
  }
  return real_posix_spawn_file_actions_destroy(fa);
}

int posix_spawn_file_actions_addopen(posix_spawn_file_actions_t* fa, int fd, const char* path, int oflag,
                                     mode_t mode) {
  XS_NEXT(posix_spawn_file_actions_addopen);
  int rc = real_posix_spawn_file_actions_addopen(fa, fd, path, oflag, mode);
  if (rc == 0) add(fa, Action{Action::Open, fd, -1, oflag, mode, path});
  return rc;
}

int posix_spawn_file_actions_addclose(posix_spawn_file_actions_t* fa, int fd) {
  XS_NEXT(posix_spawn_file_actions_addclose);
  int rc = real_posix_spawn_file_actions_addclose(fa, fd);
  if (rc == 0) add(fa, Action{Action::Close, fd});
  return rc;
}

int posix_spawn_file_actions_adddup2(posix_spawn_file_actions_t* fa, int fd, int newfd) {
  XS_NEXT(posix_spawn_file_actions_adddup2);
  int rc = real_posix_spawn_file_actions_adddup2(fa, fd, newfd);
  if (rc == 0) add(fa, Action{Action::Dup2, fd, newfd});
  return rc;
}

int posix_spawn_file_actions_addchdir_np(posix_spawn_file_actions_t* fa, const char* path) {
  XS_NEXT(posix_spawn_file_actions_addchdir_np);
  int rc = real_posix_spawn_file_actions_addchdir_np(fa, path);
  if (rc == 0) add(fa, Action{Action::Chdir, -1, -1, 0, 0, path});
  return rc;
}

int posix_spawn_file_actions_addfchdir_np(posix_spawn_file_actions_t* fa, int fd) {
  XS_NEXT(posix_spawn_file_actions_addfchdir_np);
  int rc = real_posix_spawn_file_actions_addfchdir_np(fa, fd);
  if (rc == 0) add(fa, Action{Action::Fchdir, fd});
  return rc;
}

int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t* fa, int from) {
  XS_NEXT(posix_spawn_file_actions_addclosefrom_np);
  int rc = real_posix_spawn_file_actions_addclosefrom_np(fa, from);
  if (rc == 0) add(fa, Action{Action::Closefrom, from});
  return rc;
}

int posix_spawn_file_actions_addtcsetpgrp_np(posix_spawn_file_actions_t* fa, int fd) {
  XS_NEXT(posix_spawn_file_actions_addtcsetpgrp_np);
  int rc = real_posix_spawn_file_actions_addtcsetpgrp_np(fa, fd);
  if (rc == 0) add(fa, Action{Action::Unknown, fd});
  return rc;
}

int posix_spawn(pid_t* pid, const char* path, const posix_spawn_file_actions_t* fa, const posix_spawnattr_t* attr,
                char* const argv[], char* const envp[]) {
  XS_NEXT(posix_spawn);
  Actions acts;
  if (!actions_of(fa, &acts) || !passes_sockets(acts)) return real_posix_spawn(pid, path, fa, attr, argv, envp);
  return spawn_via_fork(pid, path, false, acts, attr, argv, envp);
}

int posix_spawnp(pid_t* pid, const char* file, const posix_spawn_file_actions_t* fa, const posix_spawnattr_t* attr,
                 char* const argv[], char* const envp[]) {
  XS_NEXT(posix_spawnp);
  Actions acts;
  if (!actions_of(fa, &acts) || !passes_sockets(acts)) return real_posix_spawnp(pid, file, fa, attr, argv, envp);
  return spawn_via_fork(pid, file, true, acts, attr, argv, envp);
}

// system(3) as glibc's: /bin/sh -c, SIGINT and SIGQUIT ignored and SIGCHLD
// blocked in the caller while it waits, the child with the caller's mask
// and SIGINT/SIGQUIT at their default.
int system(const char* cmd) {
  XS_NEXT(system);
  if (cmd == nullptr || !passes_sockets(Actions{})) return real_system(cmd);
  struct sigaction ign {}, old_int {}, old_quit {};
  ign.sa_handler = SIG_IGN;
  sigemptyset(&ign.sa_mask);
  sigaction(SIGINT, &ign, &old_int);
  sigaction(SIGQUIT, &ign, &old_quit);
  sigset_t chld, old_mask;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, &old_mask);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t def;
  sigemptyset(&def);
  if (old_int.sa_handler != SIG_IGN) sigaddset(&def, SIGINT);
  if (old_quit.sa_handler != SIG_IGN) sigaddset(&def, SIGQUIT);
  posix_spawnattr_setsigdefault(&attr, &def);
  posix_spawnattr_setsigmask(&attr, &old_mask);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  char sh[] = "sh", dash_c[] = "-c";
  char* argv[] = {sh, dash_c, const_cast<char*>(cmd), nullptr};
  pid_t pid = -1;
  int status = -1;
  int err = spawn_via_fork(&pid, "/bin/sh", false, Actions{}, &attr, argv, environ);
  if (err == 0) {
    while (waitpid(pid, &status, 0) < 0) {
      if (errno != EINTR) {
        status = -1;
        break;
      }
    }
  } else {
    status = 127 << 8;  // as if the shell had exited 127 (glibc's W_EXITCODE(127, 0))
  }
  posix_spawnattr_destroy(&attr);
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGQUIT, &old_quit, nullptr);
  sigprocmask(SIG_SETMASK, &old_mask, nullptr);
  return status;
}

// popen(3) as glibc's: /bin/sh -c with one end of a pipe on the child's
// stdin ("w") or stdout ("r"), and the other popen streams' descriptors
// closed in the child (POSIX); "e" makes the caller's end close-on-exec.
FILE* popen(const char* cmd, const char* mode) {
  XS_NEXT(popen);
  if (cmd == nullptr || mode == nullptr || !passes_sockets(Actions{})) return real_popen(cmd, mode);
  bool rd = mode[0] == 'r', cloexec = false;
  if (mode[0] != 'r' && mode[0] != 'w') {
    errno = EINVAL;
    return nullptr;
  }
  for (const char* m = mode + 1; *m; ++m) {
    if (*m != 'e') {
      errno = EINVAL;
      return nullptr;
    }
    cloexec = true;
  }
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return nullptr;
  int mine = rd ? p[0] : p[1], theirs = rd ? p[1] : p[0];
  Actions acts;
  acts.list.push_back(Action{Action::Dup2, theirs, rd ? 1 : 0});
  {
    std::lock_guard<std::mutex> lk(g_popen_mu);
    for (auto& [f, pid] : g_popen) acts.list.push_back(Action{Action::Close, fileno(f)});
  }
  char sh[] = "sh", dash_c[] = "-c";
  char* argv[] = {sh, dash_c, const_cast<char*>(cmd), nullptr};
  pid_t pid = -1;
  int err = spawn_via_fork(&pid, "/bin/sh", false, acts, nullptr, argv, environ);
  close(theirs);
  if (err != 0) {
    close(mine);
    errno = err;
    return nullptr;
  }
  if (!cloexec) fcntl(mine, F_SETFD, 0);
  FILE* f = fdopen(mine, rd ? "r" : "w");
  if (f == nullptr) {
    int e = errno;
    close(mine);
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    errno = e;
    return nullptr;
  }
  std::lock_guard<std::mutex> lk(g_popen_mu);
  g_popen[f] = pid;
  return f;
}

int pclose(FILE* f) {
  XS_NEXT(pclose);
  pid_t pid = -1;
  {
    std::lock_guard<std::mutex> lk(g_popen_mu);
    auto it = g_popen.find(f);
    if (it != g_popen.end()) {
      pid = it->second;
      g_popen.erase(it);
    }
  }
  if (pid < 0) return real_pclose(f);
  fclose(f);
  int status = -1;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return status;
}

}  // extern "C"
