#include "tests/diff/diff_harness.hpp"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <vector>

#ifndef XS_DIFF_SOURCE_DIR
#error "XS_DIFF_SOURCE_DIR must name the source tree (for tools/xstack-lab)"
#endif

namespace xsdiff {
namespace {

constexpr int kRunTimeoutSec = 20;  // one side of one case
constexpr uint32_t kKernelLocalIp = (198u << 24) | (18u << 16) | 1u;
constexpr uint32_t kXstackLocalIp = (198u << 24) | (18u << 16) | 3u;

bool env_is(const char* name, const char* value) {
  const char* v = getenv(name);
  return v != nullptr && strcmp(v, value) == 0;
}

std::string errname(int e) {
  const char* n = strerrorname_np(e);
  return n != nullptr ? n : ("errno" + std::to_string(e));
}

std::string quote(const std::string& s) {
  std::string out = "'";
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
      out += char(c);
    } else {
      char b[8];
      snprintf(b, sizeof(b), "\\x%02x", c);
      out += b;
    }
  }
  return out + "'";
}

std::string revents_str(short r) {
  static const struct {
    short bit;
    const char* name;
  } kBits[] = {{POLLIN, "IN"},         {POLLPRI, "PRI"},       {POLLOUT, "OUT"},       {POLLERR, "ERR"},
               {POLLHUP, "HUP"},       {POLLNVAL, "NVAL"},     {POLLRDNORM, "RDNORM"}, {POLLRDBAND, "RDBAND"},
               {POLLWRNORM, "WRNORM"}, {POLLWRBAND, "WRBAND"}, {POLLRDHUP, "RDHUP"}};
  std::string out;
  for (const auto& b : kBits) {
    if ((r & b.bit) != 0) {
      if (!out.empty()) out += '|';
      out += b.name;
      r = short(r & ~b.bit);
    }
  }
  if (r != 0) out += (out.empty() ? "" : "|") + std::to_string(r);
  return out.empty() ? "0" : out;
}

// ---- the lab ----------------------------------------------------------------
struct LabState {
  bool up = false;
  std::string name, ns_a, ns_b, if_a;
};
LabState g_lab;
// For the signal handler (async-signal-safe teardown): argv of `xstack-lab
// down`.
char g_lab_script[512];
char g_lab_name_sig[32];
volatile sig_atomic_t g_child_pid = 0;

std::string lab_script() { return std::string(XS_DIFF_SOURCE_DIR) + "/tools/xstack-lab"; }

int sh(const std::string& cmd, std::string* out = nullptr) {
  FILE* f = popen((cmd + " 2>&1").c_str(), "r");
  if (f == nullptr) return -1;
  std::string text;
  char buf[512];
  while (fgets(buf, sizeof(buf), f) != nullptr) text += buf;
  const int st = pclose(f);
  if (out != nullptr) *out = text;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void lab_down_signal_safe() {
  if (g_lab_name_sig[0] == '\0') return;
  const pid_t child = g_child_pid;
  if (child > 0) kill(child, SIGKILL);
  const pid_t p = fork();
  if (p == 0) {
    char down[] = "down";
    char name_opt[] = "--name";
    char* argv[] = {g_lab_script, down, name_opt, g_lab_name_sig, nullptr};
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) {
      dup2(devnull, 1);
      dup2(devnull, 2);
    }
    execv(g_lab_script, argv);
    _exit(127);
  }
  if (p > 0) {
    int st = 0;
    waitpid(p, &st, 0);
  }
}

void on_fatal_signal(int sig) {
  lab_down_signal_safe();
  signal(sig, SIG_DFL);
  raise(sig);
}

void install_signal_handlers() {
  static bool done = false;
  if (done) return;
  done = true;
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGABRT, SIGSEGV, SIGBUS}) {
    struct sigaction sa {};
    sa.sa_handler = on_fatal_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, nullptr);
  }
  atexit([] { lab_down_signal_safe(); });
}

// Labs named xd<pid> whose process is gone (killed by a ctest timeout, say).
void reap_stale_labs() {
  std::string out;
  if (sh("ip netns list", &out) != 0) return;
  std::istringstream in(out);
  std::string ln;
  while (std::getline(in, ln)) {
    const std::string ns = ln.substr(0, ln.find(' '));
    if (ns.size() < 5 || ns.compare(0, 2, "xd") != 0 || ns.compare(ns.size() - 2, 2, "-a") != 0) continue;
    const std::string digits = ns.substr(2, ns.size() - 4);
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    const long pid = strtol(digits.c_str(), nullptr, 10);
    if (pid == getpid() || kill(pid_t(pid), 0) == 0 || errno != ESRCH) continue;
    sh(lab_script() + " down --name xd" + digits);
  }
}

std::string lab_up(std::string* err) {
  install_signal_handlers();
  reap_stale_labs();
  const std::string name = "xd" + std::to_string(getpid());
  snprintf(g_lab_script, sizeof(g_lab_script), "%s", lab_script().c_str());
  snprintf(g_lab_name_sig, sizeof(g_lab_name_sig), "%s", name.c_str());
  std::string out;
  if (sh("XSL_QUIET=1 " + lab_script() + " up --name " + name, &out) != 0) {
    *err = "xstack-lab up failed:\n" + out;
    return "";
  }
  if (sh(lab_script() + " env --name " + name, &out) != 0) {
    *err = "xstack-lab env failed:\n" + out;
    return "";
  }
  g_lab = LabState{};
  g_lab.name = name;
  std::istringstream in(out);
  std::string ln;
  while (std::getline(in, ln)) {
    const auto eq = ln.find('=');
    if (eq == std::string::npos) continue;
    const std::string k = ln.substr(0, eq), v = ln.substr(eq + 1);
    if (k == "XSL_NS_A") g_lab.ns_a = v;
    if (k == "XSL_NS_B") g_lab.ns_b = v;
    if (k == "XSL_IF_A") g_lab.if_a = v;
  }
  g_lab.up = true;
  if (g_lab.ns_a.empty() || g_lab.ns_b.empty() || g_lab.if_a.empty()) *err = "xstack-lab env: missing fields:\n" + out;
  return name;
}

void lab_down() {
  if (!g_lab.up) return;
  std::string out;
  if (sh(lab_script() + " down --name " + g_lab.name, &out) != 0) {
    ADD_FAILURE() << "xstack-lab down --name " << g_lab.name << " failed:\n" << out;
  }
  g_lab.up = false;
  g_lab_name_sig[0] = '\0';
}

// ---- one run ------------------------------------------------------------------------
struct RunResult {
  std::vector<std::string> lines;
  std::string status;  // "" = exited 0 after END
};

void write_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    const ssize_t n = write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += size_t(n);
  }
}

[[noreturn]] void child_main(bool xstack, int wfd, const Body& body) {
  // The lab belongs to the parent: a crashing child must not tear it down.
  g_lab_name_sig[0] = '\0';
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGABRT, SIGSEGV, SIGBUS}) signal(sig, SIG_DFL);
  prctl(PR_SET_PDEATHSIG,
        SIGKILL);  // never outlive the parent (it owns the lab)
  auto fail = [&](const std::string& msg) {
    write_all(wfd, "SETUP FAILED: " + msg + "\n");
    _exit(3);
  };
  const std::string pa = "/var/run/netns/" + g_lab.ns_a, pb = "/var/run/netns/" + g_lab.ns_b;
  const int ns_a = open(pa.c_str(), O_RDONLY | O_CLOEXEC);
  const int ns_b = open(pb.c_str(), O_RDONLY | O_CLOEXEC);
  if (ns_a < 0 || ns_b < 0) fail("open netns: " + errname(errno));
  if (setns(ns_a, CLONE_NEWNET) != 0) fail("setns a: " + errname(errno));
  alarm(kRunTimeoutSec + 5);  // the parent kills us first; a backstop
  KernelOps kops;
  XstackOps xops;
  SocketOps& ops = xstack ? static_cast<SocketOps&>(xops) : static_cast<SocketOps&>(kops);
  if (xstack) {
    const auto missing = XstackOps::missing();
    if (!missing.empty()) {
      std::string m;
      for (const auto& s : missing) m += " " + s;
      write_all(wfd, "NOT IMPLEMENTED (undefined in xs_socketapi):" + m + "\n");
      _exit(4);
    }
    if (XstackOps::init(g_lab.if_a.c_str(), "198.18.0.3/24") != 0) fail("xs_init: " + errname(errno));
  }
  Session run(ops, xstack, xstack ? kXstackLocalIp : kKernelLocalIp, wfd, ns_a, ns_b);
  body(run);
  run.line("END");
  if (xstack) XstackOps::shutdown_stack();
  _exit(0);
}

RunResult run_side(bool xstack, const Body& body) {
  RunResult res;
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) {
    res.status = "pipe: " + errname(errno);
    return res;
  }
  fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) {
    res.status = "fork: " + errname(errno);
    ::close(p[0]);
    ::close(p[1]);
    return res;
  }
  if (pid == 0) {
    ::close(p[0]);
    child_main(xstack, p[1], body);
  }
  g_child_pid = pid;
  ::close(p[1]);
  std::string buf;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kRunTimeoutSec);
  bool timed_out = false;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd pfd{p[0], POLLIN, 0};
    const int r = ::poll(&pfd, 1, int(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    char tmp[4096];
    const ssize_t n = read(p[0], tmp, sizeof(tmp));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buf.append(tmp, size_t(n));
  }
  ::close(p[0]);
  if (timed_out) kill(pid, SIGKILL);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  g_child_pid = 0;
  std::istringstream in(buf);
  std::string ln;
  while (std::getline(in, ln)) res.lines.push_back(ln);
  if (timed_out) {
    res.status = "TIMEOUT after " + std::to_string(kRunTimeoutSec) + "s";
  } else if (WIFSIGNALED(st)) {
    res.status = std::string("KILLED by signal ") + strsignal(WTERMSIG(st));
  } else if (WIFEXITED(st) && WEXITSTATUS(st) != 0) {
    res.status = "exit status " + std::to_string(WEXITSTATUS(st));
  } else if (res.lines.empty() || res.lines.back() != "END") {
    res.status = "no END line";
  }
  if (!res.status.empty()) res.lines.push_back("RUN ENDED: " + res.status);
  return res;
}

std::string numbered(const std::vector<std::string>& lines) {
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) out += "  " + std::to_string(i + 1) + ": " + lines[i] + "\n";
  return out;
}

bool has_failed_check(const std::vector<std::string>& lines) {
  for (const auto& l : lines)
    if (l.rfind("check ", 0) == 0 && l.size() >= 6 && l.compare(l.size() - 6, 6, "FAILED") == 0) return true;
  return false;
}

}  // namespace

std::string events_str(uint32_t ev) {
  std::string s = revents_str(short(ev & 0xffff));
  if ((ev & ~0xffffu) != 0)
    s += "|0x" + [&] {
      char b[16];
      snprintf(b, sizeof(b), "%x", ev & ~0xffffu);
      return std::string(b);
    }();
  return s;
}

// ---- fixture ------------------------------------------------------------------------
void DiffTest::SetUp() {
  if (geteuid() != 0) {
    if (env_is("CI", "true")) FAIL() << "CI=true but not root: the differential veth tests cannot run";
    GTEST_SKIP() << "needs root (network namespaces, AF_XDP)";
  }
  std::string err;
  lab_up(&err);
  ASSERT_TRUE(err.empty()) << err;
}

void DiffTest::TearDown() { lab_down(); }

void run_diff(const char* case_name, const Body& body) {
  ASSERT_TRUE(g_lab.up) << "no lab";
  const RunResult k = run_side(false, body);
  const bool kernel_ok = k.status.empty() && !has_failed_check(k.lines);
  if (env_is("XS_DIFF_KERNEL_ONLY", "1")) {
    EXPECT_TRUE(kernel_ok) << case_name << ": the kernel run failed (the body is wrong):\n" << numbered(k.lines);
    printf("[%s] kernel log:\n%s", case_name, numbered(k.lines).c_str());
    return;
  }
  EXPECT_TRUE(kernel_ok) << case_name << ": the kernel run failed (the body is wrong):\n" << numbered(k.lines);
  const RunResult x = run_side(true, body);
  const size_t n = std::max(k.lines.size(), x.lines.size());
  for (size_t i = 0; i < n; ++i) {
    const std::string kl = i < k.lines.size() ? k.lines[i] : "<missing>";
    const std::string xl = i < x.lines.size() ? x.lines[i] : "<missing>";
    if (kl != xl) {
      ADD_FAILURE() << case_name << ": first mismatch at line " << (i + 1) << "\n  kernel: " << kl
                    << "\n  xstack: " << xl << "\nkernel log:\n"
                    << numbered(k.lines) << "xstack log:\n"
                    << numbered(x.lines);
      return;
    }
  }
  if (env_is("XS_DIFF_VERBOSE", "1")) printf("[%s] logs match:\n%s", case_name, numbered(k.lines).c_str());
}

// ---- Session ------------------------------------------------------------------------
Session::Session(SocketOps& o, bool x, uint32_t ip, int log_fd, int ns_a_fd, int ns_b_fd)
    : ops(o), xstack(x), local_ip(ip), log_fd_(log_fd), ns_a_fd_(ns_a_fd), ns_b_fd_(ns_b_fd) {}

void Session::line(const std::string& text) { write_all(log_fd_, text + "\n"); }

void Session::log_result(const std::string& step, long ret, int err, const std::string& extra, bool fd) {
  std::string s = step + " -> ";
  if (ret < 0) {
    s += std::to_string(ret) + " " + errname(err);
  } else {
    s += fd ? "FD" : std::to_string(ret);
  }
  if (!extra.empty()) s += " " + extra;
  line(s);
}

long Session::rec(const char* step, long ret) {
  const int e = errno;
  log_result(step, ret, e);
  return ret;
}

long Session::rec_fd(const char* step, long ret) {
  const int e = errno;
  log_result(step, ret, e, "", true);
  return ret;
}

bool Session::check(bool cond, const std::string& what) {
  line("check " + what + ": " + (cond ? "ok" : "FAILED"));
  return cond;
}

sockaddr_in Session::local(uint16_t port) const {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(local_ip);
  return sa;
}

sockaddr_in Session::peer(uint16_t port) const {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(kPeerIp);
  return sa;
}

std::string Session::norm(const sockaddr_in& sa) const {
  std::string s;
  if (sa.sin_family != AF_INET) s = "family" + std::to_string(sa.sin_family) + ":";
  const uint32_t a = ntohl(sa.sin_addr.s_addr);
  if (a == local_ip) {
    s += "LOCAL";
  } else if (a == kPeerIp) {
    s += "PEER";
  } else if (a == 0) {
    s += "ANY";
  } else {
    char b[INET_ADDRSTRLEN];
    in_addr ia{sa.sin_addr.s_addr};
    s += inet_ntop(AF_INET, &ia, b, sizeof(b));
  }
  const uint16_t port = ntohs(sa.sin_port);
  s += ":";
  s += (port == 0 || (port >= kFixedPortLo && port < kFixedPortHi)) ? std::to_string(port) : "EPH";
  return s;
}

std::string Session::norm_addr(uint32_t addr_net) const {
  const uint32_t a = ntohl(addr_net);
  if (a == local_ip) return "LOCAL";
  if (a == kPeerIp) return "PEER";
  if (a == 0) return "ANY";
  char b[INET_ADDRSTRLEN];
  in_addr ia{addr_net};
  return inet_ntop(AF_INET, &ia, b, sizeof(b));
}

int Session::lab_ifindex() const { return int(if_nametoindex(g_lab.if_a.c_str())); }

int Session::tcp_socket(int flags) { return int(rec_fd("socket", ops.socket(AF_INET, SOCK_STREAM | flags, 0))); }

long Session::connect_to_peer(int fd, uint16_t port, const char* step) {
  const sockaddr_in sa = peer(port);
  return rec(step, ops.connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)));
}

long Session::bind_local(int fd, uint16_t port, const char* step) {
  const sockaddr_in sa = local(port);
  return rec(step, ops.bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)));
}

long Session::poll1(int fd, short events, int timeout_ms, const char* step) {
  pollfd p{fd, events, 0};
  const int r = ops.poll(&p, 1, timeout_ms);
  const int e = errno;
  log_result(std::string(step) + "(" + revents_str(events) + ")", r, e,
             r >= 0 ? "revents=" + revents_str(p.revents) : "");
  return r;
}

long Session::recv_str(int fd, size_t max, int flags, const char* step, std::string* out) {
  std::string buf(max, '\0');
  const ssize_t r = ops.recv(fd, buf.data(), max, flags);
  const int e = errno;
  buf.resize(r > 0 ? size_t(r) : 0);
  log_result(step, r, e, r > 0 ? quote(buf) : "");
  if (out != nullptr) *out = buf;
  return r;
}

long Session::send_str(int fd, const std::string& data, int flags, const char* step) {
  const ssize_t r = ops.send(fd, data.data(), data.size(), flags);
  const int e = errno;
  log_result(step, r, e);
  return r;
}

long Session::getsockopt_int(int fd, int level, int name, const char* label) {
  int v = -12345;
  socklen_t len = sizeof(v);
  const int r = ops.getsockopt(fd, level, name, &v, &len);
  const int e = errno;
  log_result(std::string("getsockopt(") + label + ")", r, e,
             r == 0 ? "val=" + std::to_string(v) + " len=" + std::to_string(len) : "");
  return r == 0 ? v : -1;
}

long Session::setsockopt_int(int fd, int level, int name, int value, const char* label) {
  const int r = ops.setsockopt(fd, level, name, &value, sizeof(value));
  const int e = errno;
  log_result(std::string("setsockopt(") + label + "=" + std::to_string(value) + ")", r, e);
  return r;
}

long Session::sockname(int fd, const char* step, sockaddr_in* out) {
  sockaddr_in sa{};
  socklen_t len = sizeof(sa);
  const int r = ops.getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  const int e = errno;
  log_result(step, r, e, r == 0 ? norm(sa) + " len=" + std::to_string(len) : "");
  if (out != nullptr) *out = sa;
  return r;
}

long Session::peername(int fd, const char* step, sockaddr_in* out) {
  sockaddr_in sa{};
  socklen_t len = sizeof(sa);
  const int r = ops.getpeername(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  const int e = errno;
  log_result(step, r, e, r == 0 ? norm(sa) + " len=" + std::to_string(len) : "");
  if (out != nullptr) *out = sa;
  return r;
}

long Session::close(int fd, const char* step) { return rec(step, ops.close(fd)); }

void Session::sleep_ms(int ms) {
  timespec ts{ms / 1000, long(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

// ---- peer ---------------------------------------------------------------------------
int Session::peer_socket(int flags) {
  if (setns(ns_b_fd_, CLONE_NEWNET) != 0) {
    line("peer.socket setns failed: " + errname(errno));
    return -1;
  }
  const int type = (flags & SOCK_DGRAM) != 0 ? SOCK_DGRAM : SOCK_STREAM;
  const int fd = ::socket(AF_INET, type | SOCK_CLOEXEC | (flags & ~SOCK_DGRAM), 0);
  const int e = errno;
  if (setns(ns_a_fd_, CLONE_NEWNET) != 0) line("peer.socket setns back failed: " + errname(errno));
  if (fd < 0) {
    line("peer.socket failed: " + errname(e));
    return -1;
  }
  timeval tv{3, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  return fd;
}

int Session::peer_listen(uint16_t port, int backlog) {
  const int fd = peer_socket();
  if (fd < 0) return -1;
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  const sockaddr_in sa = peer(port);
  int r = ::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa));
  if (r == 0) r = ::listen(fd, backlog);
  const int e = errno;
  log_result("peer.listen(" + std::to_string(port) + ")", r, e);
  if (r != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

int Session::peer_udp(uint16_t port) {
  const int fd = peer_socket(SOCK_DGRAM);
  if (fd < 0) return -1;
  const sockaddr_in sa = peer(port);
  const int r = ::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa));
  const int e = errno;
  log_result("peer.udp_bind(" + std::to_string(port) + ")", r, e);
  return fd;
}

int Session::peer_accept(int lfd, int timeout_ms, sockaddr_in* from) {
  pollfd p{lfd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) {
    line("peer.accept -> timeout");
    return -1;
  }
  sockaddr_in sa{};
  socklen_t len = sizeof(sa);
  const int fd = ::accept4(lfd, reinterpret_cast<sockaddr*>(&sa), &len, SOCK_CLOEXEC);
  const int e = errno;
  log_result("peer.accept", fd, e, fd >= 0 ? "from " + norm(sa) : "", true);
  if (fd >= 0) {
    timeval tv{3, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  }
  if (from != nullptr) *from = sa;
  return fd;
}

int Session::peer_connect(uint16_t port, bool nonblocking) {
  const int fd = peer_socket(nonblocking ? SOCK_NONBLOCK : 0);
  if (fd < 0) return -1;
  const sockaddr_in sa = local(port);
  const int r = ::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa));
  const int e = errno;
  log_result("peer.connect(LOCAL:" + std::to_string(port) + ")", r, e);
  if (r != 0 && !(nonblocking && e == EINPROGRESS)) {
    ::close(fd);
    return -1;
  }
  return fd;
}

long Session::peer_send(int fd, const std::string& data) {
  const ssize_t r = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
  const int e = errno;
  log_result("peer.send", r, e);
  return r;
}

long Session::peer_send_flags(int fd, const std::string& data, int flags, const char* step) {
  const ssize_t r = ::send(fd, data.data(), data.size(), flags | MSG_NOSIGNAL);
  const int e = errno;
  log_result(step, r, e);
  return r;
}

long Session::peer_recv_oob(int fd, int flags, int timeout_ms, const char* step) {
  pollfd p{fd, POLLPRI, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) line(std::string(step) + " -> no POLLPRI");
  char c = 0;
  const ssize_t r = ::recv(fd, &c, 1, flags | MSG_OOB | MSG_DONTWAIT);
  const int e = errno;
  log_result(step, r, e, r > 0 ? quote(std::string(1, c)) : "");
  return r;
}

long Session::peer_recv(int fd, size_t max, int timeout_ms, std::string* out) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) {
    line("peer.recv -> timeout");
    return -2;
  }
  std::string buf(max, '\0');
  const ssize_t r = ::recv(fd, buf.data(), max, MSG_DONTWAIT);
  const int e = errno;
  buf.resize(r > 0 ? size_t(r) : 0);
  log_result("peer.recv", r, e, r > 0 ? quote(buf) : (r == 0 ? "EOF" : ""));
  if (out != nullptr) *out = buf;
  return r;
}

long Session::peer_recv_exact(int fd, size_t n, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::string got;
  std::string end = "ok";
  while (got.size() < n) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    pollfd p{fd, POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, int(left)) <= 0) {
      end = "timeout";
      break;
    }
    char buf[4096];
    const ssize_t r = ::recv(fd, buf, std::min(sizeof(buf), n - got.size()), MSG_DONTWAIT);
    if (r > 0) {
      got.append(buf, size_t(r));
      continue;
    }
    if (r == 0) {
      end = "EOF";
      break;
    }
    if (errno == EAGAIN || errno == EINTR) continue;
    end = errname(errno);
    break;
  }
  line("peer.recv_exact(" + std::to_string(n) + ") -> " + std::to_string(got.size()) + " " + quote(got) + " " + end);
  return long(got.size());
}

long Session::peer_recv_until_eof(int fd, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  size_t total = 0;
  std::string end;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    pollfd p{fd, POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, int(left)) <= 0) {
      end = "timeout";
      break;
    }
    char buf[65536];
    const ssize_t r = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (r > 0) {
      total += size_t(r);
      continue;
    }
    if (r == 0) {
      end = "EOF";
      break;
    }
    if (errno == EAGAIN || errno == EINTR) continue;
    end = errname(errno);
    break;
  }
  line("peer.recv_until_eof -> " + std::to_string(total) + " bytes then " + end);
  return long(total);
}

void Session::peer_close(int fd) {
  if (fd >= 0) ::close(fd);
}

}  // namespace xsdiff
