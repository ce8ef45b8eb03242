// Conformance of the LD_PRELOAD shim's interposition semantics (label `apps`).
//
// One program, run twice by tests/shim/test_shim.sh in the lab's namespace a:
// plain (kernel sockets, --local 198.18.0.1) and under tools/xstack-run
// (xstack, --local 198.18.0.3), against tests/shim/shim_peer.py in namespace b.
// Both runs must pass: every check below states what Linux does, and the shim
// must do the same for a program that mixes its sockets with kernel
// descriptors (pipes, epoll, AF_UNIX, loopback) and uses signals, dup, fork.
//
//   shim_conformance --mode kernel|xstack --local IP --peer IP --port P [--only N[,N...]]
//
// The peer is driven over a control connection (shim_peer.py documents the
// commands); data connections are registered with the peer under a name.
// Output: one "ok   - case N ..." / "FAIL - case N ..." line per case, failed
// checks (with observed vs expected values) above it, notes as "# note: ...",
// and a final "summary: ..." line. Exit 0 when every case passed, 1 if not.
// A watchdog ends a case that hangs (exit 1, naming the case and its step).
#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace {

// ---------------------------------------------------------------- the harness

bool g_xstack = false;
std::string g_local, g_peer;
int g_port = 0;
int g_case_failures = 0;
std::atomic<int64_t> g_deadline_ms{0};  // watchdog: monotonic ms, 0 = off
std::atomic<int> g_case_no{0};
char g_step[160] = "";

int64_t now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}
int64_t now_us() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, f);
  vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

void step(const char* s) {
  snprintf(g_step, sizeof g_step, "%s", s);
}

void note(const std::string& s) { printf("# note: case %d: %s\n", g_case_no.load(), s.c_str()); }

bool check_impl(bool ok, const char* expr, int line, const std::string& detail) {
  if (!ok) {
    ++g_case_failures;
    printf("  check failed (case %d, line %d, step '%s'): %s%s%s\n", g_case_no.load(), line, g_step, expr,
           detail.empty() ? "" : " -- ", detail.c_str());
    fflush(stdout);
  }
  return ok;
}
#define CHECK(cond) check_impl(static_cast<bool>(cond), #cond, __LINE__, "")
#define CHECKF(cond, ...) check_impl(static_cast<bool>(cond), #cond, __LINE__, fmt(__VA_ARGS__))

const char* ename(int e) {
  switch (e) {
    case 0: return "0";
    case EINTR: return "EINTR";
    case EAGAIN: return "EAGAIN";
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case ENOTCONN: return "ENOTCONN";
    case EPIPE: return "EPIPE";
    case ECONNRESET: return "ECONNRESET";
    case ENOENT: return "ENOENT";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ENOTSOCK: return "ENOTSOCK";
    case ETIMEDOUT: return "ETIMEDOUT";
    default: return strerrorname_np(e) ? strerrorname_np(e) : "E?";
  }
}
// "rc" or "-1 ENAME"
std::string rcs(long rc, int e) { return rc < 0 ? fmt("%ld %s", rc, ename(e)) : fmt("%ld", rc); }

std::string evstr(uint32_t ev) {
  std::string s;
  auto add = [&](uint32_t bit, const char* n) {
    if (ev & bit) s += s.empty() ? n : std::string("|") + n;
  };
  add(EPOLLIN, "IN");
  add(EPOLLOUT, "OUT");
  add(EPOLLPRI, "PRI");
  add(EPOLLERR, "ERR");
  add(EPOLLHUP, "HUP");
  add(EPOLLRDHUP, "RDHUP");
  add(EPOLLRDNORM, "RDNORM");
  add(EPOLLWRNORM, "WRNORM");
  return s.empty() ? "0" : s;
}
std::string pevstr(short ev) {
  std::string s;
  auto add = [&](short bit, const char* n) {
    if (ev & bit) s += s.empty() ? n : std::string("|") + n;
  };
  add(POLLIN, "IN");
  add(POLLOUT, "OUT");
  add(POLLPRI, "PRI");
  add(POLLERR, "ERR");
  add(POLLHUP, "HUP");
  add(POLLNVAL, "NVAL");
  add(POLLRDHUP, "RDHUP");
  add(POLLRDNORM, "RDNORM");
  add(POLLWRNORM, "WRNORM");
  return s.empty() ? "0" : s;
}

// The peer's pattern byte i (shim_peer.py pattern()).
unsigned char pat(size_t i) { return static_cast<unsigned char>((i * 7 + 3) % 251); }

// ---------------------------------------------------------------- SHA-256

struct Sha256 {
  uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  unsigned char block[64];
  size_t used = 0;
  uint64_t bits = 0;
  static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
  void compress() {
    static const uint32_t k[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
    uint32_t w[64];
    for (int i = 0; i < 16; ++i)
      w[i] = uint32_t{block[4 * i]} << 24 | uint32_t{block[4 * i + 1]} << 16 | uint32_t{block[4 * i + 2]} << 8 |
             block[4 * i + 3];
    for (int i = 16; i < 64; ++i) {
      uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; ++i) {
      uint32_t t1 = hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
      uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      hh = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
  }
  void update(const void* p, size_t n) {
    auto* s = static_cast<const unsigned char*>(p);
    bits += uint64_t{n} * 8;
    while (n--) {
      block[used++] = *s++;
      if (used == 64) compress(), used = 0;
    }
  }
  std::string hex() {
    uint64_t total = bits;
    unsigned char pad = 0x80;
    update(&pad, 1);
    unsigned char z = 0;
    while (used != 56) update(&z, 1);
    for (int i = 7; i >= 0; --i) {
      unsigned char b = static_cast<unsigned char>(total >> (8 * i));
      update(&b, 1);
    }
    std::string out;
    for (uint32_t v : h) out += fmt("%08x", v);
    return out;
  }
};

// ---------------------------------------------------------------- I/O helpers

sockaddr_in sin_of(const std::string& ip, int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  return a;
}
std::string ip_of(const sockaddr_in& a) {
  char b[INET_ADDRSTRLEN] = "";
  inet_ntop(AF_INET, &a.sin_addr, b, sizeof b);
  return b;
}

// Waits up to `ms` for `ev` on fd (through poll, which is interposed).
bool wait_fd(int fd, short ev, int ms) {
  pollfd p{fd, ev, 0};
  int64_t end = now_ms() + ms;
  for (;;) {
    int left = static_cast<int>(std::max<int64_t>(0, end - now_ms()));
    int rc = poll(&p, 1, left);
    if (rc > 0) return true;
    if (rc == 0) return false;
    if (errno != EINTR) return false;
  }
}

// Reads exactly n bytes within ms (poll + recv/read). Returns bytes read.
size_t read_exact(int fd, void* buf, size_t n, int ms) {
  size_t got = 0;
  int64_t end = now_ms() + ms;
  while (got < n) {
    int left = static_cast<int>(end - now_ms());
    if (left <= 0 || !wait_fd(fd, POLLIN, left)) break;
    ssize_t r = read(fd, static_cast<char*>(buf) + got, n - got);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  return got;
}

bool send_all(int fd, const void* buf, size_t n) {
  size_t off = 0;
  while (off < n) {
    ssize_t r = send(fd, static_cast<const char*>(buf) + off, n - off, MSG_NOSIGNAL);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == EAGAIN) {
      wait_fd(fd, POLLOUT, 1000);
      continue;
    }
    if (r <= 0) return false;
    off += static_cast<size_t>(r);
  }
  return true;
}

bool send_str(int fd, const std::string& s) { return send_all(fd, s.data(), s.size()); }

std::string hex_of(const std::string& s) {
  std::string h;
  for (unsigned char c : s) h += fmt("%02x", c);
  return h;
}
std::string pat_str(size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += static_cast<char>(pat(i));
  return s;
}

// Connects a TCP socket to ip:port with a bounded wait (blocking connect in
// a non-blocking socket + poll, then back to blocking). -1 on failure.
int tcp_connect(const std::string& ip, int port, int ms = 5000) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  int fl = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  sockaddr_in a = sin_of(ip, port);
  int rc = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  if (rc < 0 && errno != EINPROGRESS) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  if (rc < 0) {
    if (!wait_fd(fd, POLLOUT, ms)) {
      close(fd);
      errno = ETIMEDOUT;
      return -1;
    }
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      close(fd);
      errno = err;
      return -1;
    }
  }
  fcntl(fd, F_SETFL, fl);
  return fd;
}

// The control connection to the peer.
int g_ctl = -1;

std::string ctl(const std::string& cmd, int ms = 15000) {
  if (!send_str(g_ctl, cmd + "\n")) return "error send";
  std::string line;
  int64_t end = now_ms() + ms;
  for (;;) {
    char c;
    int left = static_cast<int>(end - now_ms());
    if (left <= 0 || !wait_fd(g_ctl, POLLIN, left)) return "error timeout (" + cmd + ")";
    ssize_t r = recv(g_ctl, &c, 1, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return "error eof";
    if (c == '\n') return line;
    line += c;
  }
}

// A data connection registered with the peer as `name`; -1 on failure.
int open_data(const std::string& name) {
  int fd = tcp_connect(g_peer, g_port);
  if (fd < 0) return -1;
  if (!send_str(fd, "DATA " + name + "\n")) {
    close(fd);
    return -1;
  }
  return fd;
}

// Peer command helpers.
bool peer_ok(const std::string& cmd) {
  std::string r = ctl(cmd);
  return CHECKF(r == "ok", "peer '%s' answered '%s'", cmd.c_str(), r.c_str());
}
std::string peer_eof(const std::string& name, int ms) {
  std::string r = ctl(fmt("EOF %s %d", name.c_str(), ms), ms + 10000);
  return r.substr(0, r.find(' '));
}
std::string peer_read(const std::string& name, size_t n, int ms = 3000) {
  return ctl(fmt("READ %s %zu %d", name.c_str(), n, ms), ms + 10000);
}

// Drains whatever is readable on a pipe now.
size_t drain_pipe(int fd) {
  size_t total = 0;
  char buf[4096];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 0) <= 0 || !(p.revents & POLLIN)) return total;
    ssize_t r = read(fd, buf, sizeof buf);
    if (r <= 0) return total;
    total += static_cast<size_t>(r);
  }
}

// Waits until FIONREAD on fd reaches n (segments may trickle in), up to ms.
int fionread_reach(int fd, int n, int ms) {
  int64_t end = now_ms() + ms;
  int v = -1;
  for (;;) {
    v = -1;
    if (ioctl(fd, FIONREAD, &v) < 0) return -1;
    if (v >= n || now_ms() >= end) return v;
    usleep(5000);
  }
}

// Waits up to `ms` for child `pid` to exit; one still running then is
// killed and 0 returned (the caller's check fails), never left behind.
pid_t reap(pid_t pid, int ms, int* status) {
  pid_t wr = 0;
  for (int i = 0; i < ms / 20 && wr == 0; ++i) {
    wr = waitpid(pid, status, WNOHANG);
    if (wr == 0) usleep(20000);
  }
  if (wr == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, status, 0);
  }
  return wr;
}

struct Closer {
  std::vector<int> fds;
  ~Closer() {
    for (int fd : fds)
      if (fd >= 0) close(fd);
  }
  int add(int fd) {
    fds.push_back(fd);
    return fd;
  }
  void forget(int fd) {
    for (int& f : fds)
      if (f == fd) f = -1;
  }
};

// epoll_wait measured: returns rc, fills evs; *elapsed_ms set.
int ep_wait(int ep, epoll_event* evs, int max, int timeout, int64_t* elapsed_ms = nullptr) {
  int64_t t0 = now_us();
  int rc = epoll_wait(ep, evs, max, timeout);
  int e = errno;
  if (elapsed_ms) *elapsed_ms = (now_us() - t0) / 1000;
  errno = e;
  return rc;
}

std::string evlist(const epoll_event* evs, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += fmt("%s{data=%llu %s}", i ? " " : "", (unsigned long long)evs[i].data.u64,
                                       evstr(evs[i].events).c_str());
  return s.empty() ? "none" : s;
}

bool has_ev(const epoll_event* evs, int n, uint64_t data, uint32_t bits) {
  for (int i = 0; i < n; ++i)
    if (evs[i].data.u64 == data && (evs[i].events & bits) == bits) return true;
  return false;
}

int ep_add(int ep, int fd, uint32_t events, uint64_t data, int op = EPOLL_CTL_ADD) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = data;
  return epoll_ctl(ep, op, fd, &ev);
}

// ---------------------------------------------------------------- case 1
void case_epoll_mixed() {
  Closer cl;
  int p[2];
  step("pipe + data connection");
  if (!CHECK(pipe2(p, O_CLOEXEC) == 0)) return;
  cl.add(p[0]), cl.add(p[1]);
  int s = cl.add(open_data("ep1"));
  if (!CHECKF(s >= 0, "open_data: %s", ename(errno))) return;
  constexpr uint64_t kPipe = 1, kSock = 2;
  epoll_event evs[8];
  int64_t el = 0;

  step("level-triggered");
  int ep = cl.add(epoll_create1(EPOLL_CLOEXEC));
  CHECK(ep >= 0);
  CHECKF(ep_add(ep, p[0], EPOLLIN, kPipe) == 0, "%s", ename(errno));
  CHECKF(ep_add(ep, s, EPOLLIN, kSock) == 0, "%s", ename(errno));
  int n = ep_wait(ep, evs, 8, 0, &el);
  CHECKF(n == 0, "nothing ready, timeout 0: got %s, events %s", rcs(n, errno).c_str(), evlist(evs, n).c_str());
  CHECKF(el < 1000, "timeout 0 took %lld ms", (long long)el);

  CHECK(write(p[1], "a", 1) == 1);
  n = ep_wait(ep, evs, 8, 2000);
  CHECKF(n == 1 && has_ev(evs, n, kPipe, EPOLLIN), "pipe only: got %s %s", rcs(n, errno).c_str(),
         evlist(evs, std::max(n, 0)).c_str());
  n = ep_wait(ep, evs, 8, 0);
  CHECKF(n == 1 && has_ev(evs, n, kPipe, EPOLLIN), "pipe again (LT, unread): got %s %s", rcs(n, errno).c_str(),
         evlist(evs, std::max(n, 0)).c_str());
  drain_pipe(p[0]);
  n = ep_wait(ep, evs, 8, 0);
  CHECKF(n == 0, "after reading the pipe: got %s %s", rcs(n, errno).c_str(), evlist(evs, std::max(n, 0)).c_str());

  step("socket only");
  peer_ok("SEND ep1 10");
  n = ep_wait(ep, evs, 8, 3000);
  CHECKF(n == 1 && has_ev(evs, n, kSock, EPOLLIN), "socket only: got %s %s", rcs(n, errno).c_str(),
         evlist(evs, std::max(n, 0)).c_str());
  n = ep_wait(ep, evs, 8, 0);
  CHECKF(n == 1 && has_ev(evs, n, kSock, EPOLLIN), "socket again (LT, unread): got %s %s", rcs(n, errno).c_str(),
         evlist(evs, std::max(n, 0)).c_str());

  step("both");
  CHECK(write(p[1], "b", 1) == 1);
  n = ep_wait(ep, evs, 8, 2000);
  CHECKF(n == 2 && has_ev(evs, n, kSock, EPOLLIN) && has_ev(evs, n, kPipe, EPOLLIN), "both: got %s %s",
         rcs(n, errno).c_str(), evlist(evs, std::max(n, 0)).c_str());
  step("both, maxevents 1");
  n = ep_wait(ep, evs, 1, 0);
  CHECKF(n == 1, "maxevents 1: got %s %s", rcs(n, errno).c_str(), evlist(evs, std::max(n, 0)).c_str());
  char buf[64];
  CHECK(read_exact(s, buf, 10, 2000) == 10);
  drain_pipe(p[0]);
  n = ep_wait(ep, evs, 8, 0);
  CHECKF(n == 0, "both consumed: got %s %s", rcs(n, errno).c_str(), evlist(evs, std::max(n, 0)).c_str());

  step("timeout with nothing ready");
  n = ep_wait(ep, evs, 8, 200, &el);
  CHECKF(n == 0, "got %s %s", rcs(n, errno).c_str(), evlist(evs, std::max(n, 0)).c_str());
  CHECKF(el >= 199, "epoll_wait(200 ms) returned after %lld ms", (long long)el);

  step("EPOLLET");
  int et = cl.add(epoll_create1(EPOLL_CLOEXEC));
  CHECK(ep_add(et, p[0], EPOLLIN | EPOLLET, kPipe) == 0);
  CHECK(ep_add(et, s, EPOLLIN | EPOLLET, kSock) == 0);
  n = ep_wait(et, evs, 8, 0);
  CHECKF(n == 0, "ET, nothing yet: got %s %s", rcs(n, errno).c_str(), evlist(evs, std::max(n, 0)).c_str());
  peer_ok("SEND ep1 5");
  n = ep_wait(et, evs, 8, 3000);
  CHECKF(n == 1 && has_ev(evs, n, kSock, EPOLLIN), "ET first arrival: got %s %s", rcs(n, errno).c_str(),
         evlist(evs, std::max(n, 0)).c_str());
  n = ep_wait(et, evs, 8, 150);
  CHECKF(n == 0, "ET, no new arrival (5 bytes unread): got %s %s", rcs(n, errno).c_str(),
         evlist(evs, std::max(n, 0)).c_str());
  peer_ok("SEND ep1 5");
  n = ep_wait(et, evs, 8, 3000);
  CHECKF(n == 1 && has_ev(evs, n, kSock, EPOLLIN), "ET second arrival (first still unread): got %s %s",
         rcs(n, errno).c_str(), evlist(evs, std::max(n, 0)).c_str());
  n = ep_wait(et, evs, 8, 150);
  CHECKF(n == 0, "ET, once per arrival: got %s %s", rcs(n, errno).c_str(), evlist(evs, std::max(n, 0)).c_str());
  CHECK(read_exact(s, buf, 10, 2000) == 10);
  CHECK(write(p[1], "c", 1) == 1);
  n = ep_wait(et, evs, 8, 2000);
  CHECKF(n == 1 && has_ev(evs, n, kPipe, EPOLLIN), "ET pipe: got %s %s", rcs(n, errno).c_str(),
         evlist(evs, std::max(n, 0)).c_str());
  n = ep_wait(et, evs, 8, 100);
  CHECKF(n == 0, "ET pipe, no new write: got %s %s", rcs(n, errno).c_str(), evlist(evs, std::max(n, 0)).c_str());
  drain_pipe(p[0]);

  step("EPOLLONESHOT");
  int os = cl.add(epoll_create1(EPOLL_CLOEXEC));
  CHECK(ep_add(os, p[0], EPOLLIN | EPOLLONESHOT, kPipe) == 0);
  CHECK(ep_add(os, s, EPOLLIN | EPOLLONESHOT, kSock) == 0);
  peer_ok("SEND ep1 3");
  n = ep_wait(os, evs, 8, 3000);
  CHECKF(n == 1 && has_ev(evs, n, kSock, EPOLLIN), "oneshot fires: got %s %s", rcs(n, errno).c_str(),
         evlist(evs, std::max(n, 0)).c_str());
  n = ep_wait(os, evs, 8, 150);
  CHECKF(n == 0, "oneshot disarmed (data unread): got %s %s", rcs(n, errno).c_str(),
         evlist(evs, std::max(n, 0)).c_str());
  CHECKF(ep_add(os, s, EPOLLIN | EPOLLONESHOT, kSock, EPOLL_CTL_MOD) == 0, "MOD: %s", ename(errno));
  n = ep_wait(os, evs, 8, 2000);
  CHECKF(n == 1 && has_ev(evs, n, kSock, EPOLLIN), "re-armed by MOD: got %s %s", rcs(n, errno).c_str(),
         evlist(evs, std::max(n, 0)).c_str());
  n = ep_wait(os, evs, 8, 100);
  CHECKF(n == 0, "disarmed again: got %s %s", rcs(n, errno).c_str(), evlist(evs, std::max(n, 0)).c_str());
  CHECK(write(p[1], "d", 1) == 1);
  n = ep_wait(os, evs, 8, 2000);
  CHECKF(n == 1 && has_ev(evs, n, kPipe, EPOLLIN), "pipe oneshot: got %s %s", rcs(n, errno).c_str(),
         evlist(evs, std::max(n, 0)).c_str());
  n = ep_wait(os, evs, 8, 100);
  CHECKF(n == 0, "pipe disarmed: got %s %s", rcs(n, errno).c_str(), evlist(evs, std::max(n, 0)).c_str());
  CHECK(ep_add(os, p[0], EPOLLIN | EPOLLONESHOT, kPipe, EPOLL_CTL_MOD) == 0);
  n = ep_wait(os, evs, 8, 2000);
  CHECKF(n == 1 && has_ev(evs, n, kPipe, EPOLLIN), "pipe re-armed: got %s %s", rcs(n, errno).c_str(),
         evlist(evs, std::max(n, 0)).c_str());
  CHECK(read_exact(s, buf, 3, 2000) == 3);
  drain_pipe(p[0]);

  step("EPOLLRDHUP on peer SHUT_WR");
  int rd = cl.add(epoll_create1(EPOLL_CLOEXEC));
  CHECK(ep_add(rd, s, EPOLLIN | EPOLLRDHUP, kSock) == 0);
  CHECK(ep_add(rd, p[0], EPOLLIN, kPipe) == 0);
  n = ep_wait(rd, evs, 8, 0);
  CHECKF(n == 0, "before the FIN: got %s %s", rcs(n, errno).c_str(), evlist(evs, std::max(n, 0)).c_str());
  peer_ok("SHUTWR ep1");
  n = ep_wait(rd, evs, 8, 3000);
  CHECKF(n == 1 && has_ev(evs, n, kSock, EPOLLIN | EPOLLRDHUP), "after the FIN: got %s %s", rcs(n, errno).c_str(),
         evlist(evs, std::max(n, 0)).c_str());
  CHECKF(n != 1 || !(evs[0].events & EPOLLHUP), "EPOLLHUP with only the read side shut: %s",
         evstr(evs[0].events).c_str());
  ssize_t r = recv(s, buf, sizeof buf, 0);
  CHECKF(r == 0, "recv after the FIN: %s", rcs(r, errno).c_str());
  // Our side can still send after the peer's SHUT_WR.
  CHECK(send_str(s, "after-fin"));
  std::string got = peer_read("ep1", 9);
  CHECKF(got == "data " + hex_of("after-fin"), "peer read '%s'", got.c_str());
}

// ---------------------------------------------------------------- case 2
void case_epoll_threads_nested() {
  Closer cl;
  int s = cl.add(open_data("ep2"));
  if (!CHECKF(s >= 0, "open_data: %s", ename(errno))) return;
  char buf[64];

  // Level-triggered five times over (a lost wake-up can be a race), then
  // edge-triggered once.
  for (int round = 0; round < 6; ++round) {
    int et = round == 5;
    step(et ? "two threads, EPOLLET" : "two threads, level-triggered");
    int ep = cl.add(epoll_create1(EPOLL_CLOEXEC));
    CHECK(ep_add(ep, s, EPOLLIN | (et ? uint32_t{EPOLLET} : 0u), 7) == 0);
    int wait_ms = 1500;
    std::atomic<int> started{0};
    int rc[2] = {-2, -2};
    uint64_t data[2] = {0, 0};
    int64_t took[2] = {0, 0};
    auto waiter = [&](int i) {
      epoll_event ev{};
      started++;
      int64_t t = now_ms();
      rc[i] = epoll_wait(ep, &ev, 1, wait_ms);
      took[i] = now_ms() - t;
      data[i] = ev.data.u64;
    };
    std::thread t0(waiter, 0), t1(waiter, 1);
    while (started < 2) usleep(1000);
    usleep(150000);  // both inside epoll_wait
    peer_ok("SEND ep2 4");
    t0.join();
    t1.join();
    int woke = (rc[0] == 1 && data[0] == 7) + (rc[1] == 1 && data[1] == 7);
    if (et) {
      CHECKF(woke == 1 && (rc[0] == 0 || rc[1] == 0),
             "EPOLLET: exactly one waiter gets the event: rc %d/%d after %lld/%lld ms", rc[0], rc[1],
             (long long)took[0], (long long)took[1]);
    } else {
      CHECKF(woke == 2,
             "LT round %d, data left unread: both waiters get the event: rc %d/%d (data %#llx/%#llx) after "
             "%lld/%lld ms (timeout %d ms)",
             round + 1, rc[0], rc[1], (unsigned long long)data[0], (unsigned long long)data[1], (long long)took[0],
             (long long)took[1], wait_ms);
    }
    CHECK(read_exact(s, buf, 4, 2000) == 4);
  }

  step("nested epoll");
  int inner = cl.add(epoll_create1(EPOLL_CLOEXEC));
  int outer = cl.add(epoll_create1(EPOLL_CLOEXEC));
  CHECK(ep_add(inner, s, EPOLLIN, 11) == 0);
  CHECKF(ep_add(outer, inner, EPOLLIN, 22) == 0, "add inner to outer: %s", ename(errno));
  epoll_event evs[4];
  int n = ep_wait(outer, evs, 4, 100);
  CHECKF(n == 0, "outer, nothing ready: got %s %s", rcs(n, errno).c_str(), evlist(evs, std::max(n, 0)).c_str());
  pollfd pi{inner, POLLIN, 0};
  int pr = poll(&pi, 1, 0);
  CHECKF(pr == 0, "poll(inner epoll fd), nothing ready: %s revents %s", rcs(pr, errno).c_str(),
         pevstr(pi.revents).c_str());
  peer_ok("SEND ep2 6");
  n = ep_wait(outer, evs, 4, 3000);
  CHECKF(n == 1 && has_ev(evs, n, 22, EPOLLIN), "outer after data: got %s %s", rcs(n, errno).c_str(),
         evlist(evs, std::max(n, 0)).c_str());
  pi.revents = 0;
  pr = poll(&pi, 1, 1000);
  CHECKF(pr == 1 && (pi.revents & POLLIN), "poll(inner epoll fd) after data: %s revents %s", rcs(pr, errno).c_str(),
         pevstr(pi.revents).c_str());
  n = ep_wait(inner, evs, 4, 1000);
  CHECKF(n == 1 && has_ev(evs, n, 11, EPOLLIN), "inner: got %s %s", rcs(n, errno).c_str(),
         evlist(evs, std::max(n, 0)).c_str());
  CHECK(read_exact(s, buf, 6, 2000) == 6);
  n = ep_wait(outer, evs, 4, 100);
  CHECKF(n == 0, "outer after reading: got %s %s", rcs(n, errno).c_str(), evlist(evs, std::max(n, 0)).c_str());

  step("nested epoll, waiter sleeping in the outer when data arrives");
  std::atomic<int> orc{-2};
  std::thread w([&] {
    epoll_event e{};
    orc = epoll_wait(outer, &e, 1, 4000);
  });
  usleep(150000);
  int64_t t0 = now_ms();
  peer_ok("SEND ep2 2");
  w.join();
  CHECKF(orc == 1, "outer wait: %d after %lld ms", orc.load(), (long long)(now_ms() - t0));
  CHECK(read_exact(s, buf, 2, 2000) == 2);

  // Linux's ep_insert wakes the set's waiters when the new entry is ready.
  // Under the shim the set has only kernel fds when the waiter goes to
  // sleep, and the socket is the first xstack one added to it.
  step("a thread asleep on a set of kernel fds; another thread adds a readable socket");
  int kp[2] = {-1, -1};
  CHECK(pipe2(kp, O_CLOEXEC) == 0);
  cl.add(kp[0]);
  cl.add(kp[1]);
  int ep3 = cl.add(epoll_create1(EPOLL_CLOEXEC));
  CHECK(ep_add(ep3, kp[0], EPOLLIN, 1) == 0);
  peer_ok("SEND ep2 3");
  pollfd ps{s, POLLIN, 0};
  CHECK(poll(&ps, 1, 2000) == 1);
  std::atomic<int> arc{-2};
  std::atomic<uint64_t> adata{0};
  std::thread w3([&] {
    epoll_event e{};
    arc = epoll_wait(ep3, &e, 1, 3000);
    adata = e.data.u64;
  });
  usleep(150000);  // inside epoll_wait
  t0 = now_ms();
  CHECK(ep_add(ep3, s, EPOLLIN, 33) == 0);
  w3.join();
  CHECKF(arc == 1 && adata == 33 && now_ms() - t0 < 2000, "waiter: rc %d data %llu after %lld ms", arc.load(),
         (unsigned long long)adata.load(), (long long)(now_ms() - t0));
  CHECK(read_exact(s, buf, 3, 2000) == 3);
}

// ---------------------------------------------------------------- case 3
void case_poll_select() {
  Closer cl;
  int p[2];
  if (!CHECK(pipe2(p, O_CLOEXEC) == 0)) return;
  cl.add(p[0]), cl.add(p[1]);
  int s = cl.add(open_data("pl"));
  if (!CHECKF(s >= 0, "open_data: %s", ename(errno))) return;
  char buf[64];

  step("poll, nothing ready");
  pollfd pf[2] = {{p[0], POLLIN, 0}, {s, POLLIN, 0}};
  int n = poll(pf, 2, 0);
  CHECKF(n == 0, "got %s (%s, %s)", rcs(n, errno).c_str(), pevstr(pf[0].revents).c_str(), pevstr(pf[1].revents).c_str());
  int64_t t0 = now_us();
  n = poll(pf, 2, 150);
  int64_t el = (now_us() - t0) / 1000;
  CHECKF(n == 0 && el >= 149, "poll(150 ms): %s after %lld ms", rcs(n, errno).c_str(), (long long)el);

  step("poll, pipe ready");
  CHECK(write(p[1], "x", 1) == 1);
  n = poll(pf, 2, 2000);
  CHECKF(n == 1 && (pf[0].revents & POLLIN) && pf[1].revents == 0, "got %s (%s, %s)", rcs(n, errno).c_str(),
         pevstr(pf[0].revents).c_str(), pevstr(pf[1].revents).c_str());

  step("poll, both ready");
  peer_ok("SEND pl 8");
  int64_t end = now_ms() + 3000;
  do {
    n = poll(pf, 2, 3000);
  } while (n == 1 && now_ms() < end);  // the pipe is ready at once; wait for the socket too
  CHECKF(n == 2 && (pf[0].revents & POLLIN) && (pf[1].revents & POLLIN), "got %s (%s, %s)", rcs(n, errno).c_str(),
         pevstr(pf[0].revents).c_str(), pevstr(pf[1].revents).c_str());

  step("poll, POLLOUT on the connected socket");
  pollfd po[2] = {{s, POLLOUT, 0}, {p[1], POLLOUT, 0}};
  n = poll(po, 2, 1000);
  CHECKF(n == 2 && (po[0].revents & POLLOUT) && (po[1].revents & POLLOUT), "got %s (%s, %s)", rcs(n, errno).c_str(),
         pevstr(po[0].revents).c_str(), pevstr(po[1].revents).c_str());
  pollfd pn{-1, POLLIN, 0};
  n = poll(&pn, 1, 0);
  CHECKF(n == 0 && pn.revents == 0, "negative fd ignored: %s %s", rcs(n, errno).c_str(), pevstr(pn.revents).c_str());

  step("select, both readable");
  fd_set rs, ws;
  FD_ZERO(&rs);
  FD_SET(p[0], &rs);
  FD_SET(s, &rs);
  timeval tv{1, 0};
  n = select(std::max(p[0], s) + 1, &rs, nullptr, nullptr, &tv);
  CHECKF(n == 2 && FD_ISSET(p[0], &rs) && FD_ISSET(s, &rs), "select: %s pipe=%d sock=%d", rcs(n, errno).c_str(),
         FD_ISSET(p[0], &rs) ? 1 : 0, FD_ISSET(s, &rs) ? 1 : 0);
  CHECK(read_exact(s, buf, 8, 2000) == 8);
  drain_pipe(p[0]);

  step("select, writable");
  FD_ZERO(&ws);
  FD_SET(s, &ws);
  FD_SET(p[1], &ws);
  tv = {1, 0};
  n = select(std::max(p[1], s) + 1, nullptr, &ws, nullptr, &tv);
  CHECKF(n == 2 && FD_ISSET(s, &ws) && FD_ISSET(p[1], &ws), "select write: %s", rcs(n, errno).c_str());

  step("select timeout: tv updated to 0");
  FD_ZERO(&rs);
  FD_SET(p[0], &rs);
  FD_SET(s, &rs);
  tv = {0, 300000};
  t0 = now_us();
  n = select(std::max(p[0], s) + 1, &rs, nullptr, nullptr, &tv);
  el = (now_us() - t0) / 1000;
  CHECKF(n == 0, "select: %s", rcs(n, errno).c_str());
  CHECKF(el >= 299, "select(300 ms) returned after %lld ms", (long long)el);
  CHECKF(tv.tv_sec == 0 && tv.tv_usec == 0, "tv after timeout: {%ld, %ld}", (long)tv.tv_sec, (long)tv.tv_usec);
  CHECKF(!FD_ISSET(p[0], &rs) && !FD_ISSET(s, &rs), "sets cleared on timeout");

  step("select: tv holds the time left");
  peer_ok("SENDLATER pl 400 3");
  FD_ZERO(&rs);
  FD_SET(p[0], &rs);
  FD_SET(s, &rs);
  tv = {3, 0};
  t0 = now_us();
  n = select(std::max(p[0], s) + 1, &rs, nullptr, nullptr, &tv);
  el = (now_us() - t0) / 1000;
  long left_us = tv.tv_sec * 1000000L + tv.tv_usec;
  CHECKF(n == 1 && FD_ISSET(s, &rs) && !FD_ISSET(p[0], &rs), "select: %s after %lld ms", rcs(n, errno).c_str(),
         (long long)el);
  // Left = 3 s - elapsed, within scheduling slack.
  CHECKF(left_us > 0 && left_us < 3000000 && std::labs(left_us - (3000000 - el * 1000)) < 100000,
         "tv left %ld us, elapsed %lld ms (expected about %lld us)", left_us, (long long)el,
         (long long)(3000000 - el * 1000));
  CHECK(read_exact(s, buf, 3, 2000) == 3);

  step("POLLHUP/POLLIN after peer close");
  peer_ok("CLOSE pl");
  pollfd ph[2] = {{s, POLLIN | POLLRDHUP, 0}, {p[0], POLLIN, 0}};
  n = poll(ph, 2, 3000);
  CHECKF(n == 1 && (ph[0].revents & POLLIN) && (ph[0].revents & POLLRDHUP) && !(ph[0].revents & POLLHUP),
         "after the peer's FIN: %s sock=%s", rcs(n, errno).c_str(), pevstr(ph[0].revents).c_str());
  ssize_t r = recv(s, buf, sizeof buf, 0);
  CHECKF(r == 0, "recv at EOF: %s", rcs(r, errno).c_str());
  CHECK(shutdown(s, SHUT_WR) == 0);
  end = now_ms() + 3000;
  do {
    ph[0].revents = 0;
    n = poll(ph, 1, 1000);
  } while (!(ph[0].revents & POLLHUP) && now_ms() < end);
  CHECKF(n == 1 && (ph[0].revents & POLLHUP) && (ph[0].revents & POLLIN),
         "both directions shut: %s sock=%s (expected IN|HUP)", rcs(n, errno).c_str(), pevstr(ph[0].revents).c_str());
  close(p[1]);
  cl.forget(p[1]);
  ph[0].revents = ph[1].revents = 0;
  n = poll(ph, 2, 1000);
  CHECKF(n == 2 && (ph[1].revents & POLLHUP), "pipe writer closed: %s pipe=%s sock=%s", rcs(n, errno).c_str(),
         pevstr(ph[1].revents).c_str(), pevstr(ph[0].revents).c_str());
  FD_ZERO(&rs);
  FD_SET(s, &rs);
  FD_SET(p[0], &rs);
  tv = {1, 0};
  n = select(std::max(p[0], s) + 1, &rs, nullptr, nullptr, &tv);
  CHECKF(n == 2 && FD_ISSET(s, &rs) && FD_ISSET(p[0], &rs), "select at EOF/HUP: %s", rcs(n, errno).c_str());
}

// ---------------------------------------------------------------- case 4
std::atomic<int> g_alarms{0};
std::atomic<pid_t> g_alarm_tid{0};
void on_alarm(int) {
  g_alarms++;
  g_alarm_tid = gettid();
}

void set_alarm_handler(bool restart) {
  struct sigaction sa{};
  sa.sa_handler = on_alarm;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = restart ? SA_RESTART : 0;
  sigaction(SIGALRM, &sa, nullptr);
}
void arm_timer(int ms) {
  itimerval it{};
  it.it_value.tv_sec = ms / 1000;
  it.it_value.tv_usec = (ms % 1000) * 1000;
  setitimer(ITIMER_REAL, &it, nullptr);
}
void disarm_timer() {
  itimerval it{};
  setitimer(ITIMER_REAL, &it, nullptr);
}

void alarm_note() {
  if (g_alarms > 0 && g_alarm_tid != gettid())
    note(fmt("SIGALRM ran on thread %d, not the main thread %d", (int)g_alarm_tid.load(), (int)gettid()));
}

// A call made with SIGALRM due in 200 ms (the handler's count reset first):
// its result, errno and how long it took.
struct AlarmedCall {
  long rc;
  int err;
  long long ms;
  std::string str() const { return rcs(rc, err); }
};
template <typename Call>
AlarmedCall during_alarm(Call call) {
  g_alarms = 0;
  arm_timer(200);
  int64_t t0 = now_ms();
  long rc = call();
  int e = errno;
  int64_t el = now_ms() - t0;
  disarm_timer();
  return {rc, e, static_cast<long long>(el)};
}

void case_eintr() {
  Closer cl;
  int s = cl.add(open_data("intr"));
  if (!CHECKF(s >= 0, "open_data: %s", ename(errno))) return;
  char buf[64];
  auto do_recv = [&] { return static_cast<long>(recv(s, buf, sizeof buf, 0)); };
  // The peer sends 5 bytes 800 ms from now: a restarted recv gets them.
  auto check_restarted = [&](const AlarmedCall& c) {
    CHECKF(c.rc == 5, "recv: %s after %lld ms (expected 5: restarted, then the data sent at 800 ms)",
           c.str().c_str(), c.ms);
    CHECKF(g_alarms == 1, "handler ran %d times", g_alarms.load());
    CHECKF(c.rc != 5 || c.ms >= 700, "data after %lld ms", c.ms);
    CHECKF(c.rc != 5 || memcmp(buf, pat_str(5).data(), 5) == 0, "data differs from the peer's pattern");
    alarm_note();
    if (c.rc > 0 && c.rc < 5) read_exact(s, buf, 5 - c.rc, 2000);
  };
  auto check_eintr = [&](const char* what, const AlarmedCall& c) {
    CHECKF(c.rc == -1 && c.err == EINTR, "%s: %s after %lld ms (expected -1 EINTR)", what, c.str().c_str(), c.ms);
    CHECKF(g_alarms == 1, "handler ran %d times", g_alarms.load());
  };

  step("recv, handler without SA_RESTART");
  set_alarm_handler(false);
  AlarmedCall c = during_alarm(do_recv);
  check_eintr("recv", c);
  CHECKF(c.ms >= 150, "recv returned after %lld ms, before the 200 ms alarm", c.ms);
  alarm_note();

  step("recv, handler with SA_RESTART");
  set_alarm_handler(true);
  peer_ok("SENDLATER intr 800 5");
  check_restarted(during_alarm(do_recv));

  // The shim lets a lone sleeper wait in ppoll and applies SA_RESTART itself
  // from what it knows of the handlers: a change must be seen at once, and
  // mixed handlers must still be told apart (the kernel does it then).
  step("recv, the SA_RESTART handler replaced by one without");
  set_alarm_handler(false);
  check_eintr("recv", during_alarm(do_recv));

  step("recv, mixed handlers: SIGALRM with SA_RESTART, SIGUSR2 without");
  struct sigaction usr2 {}, old_usr2 {};
  usr2.sa_handler = on_alarm;
  sigemptyset(&usr2.sa_mask);
  sigaction(SIGUSR2, &usr2, &old_usr2);
  set_alarm_handler(true);
  peer_ok("SENDLATER intr 800 5");
  check_restarted(during_alarm(do_recv));
  sigaction(SIGUSR2, &old_usr2, nullptr);

  step("epoll_wait with SA_RESTART");
  int p[2];
  CHECK(pipe2(p, O_CLOEXEC) == 0);
  cl.add(p[0]), cl.add(p[1]);
  int ep = cl.add(epoll_create1(EPOLL_CLOEXEC));
  CHECK(ep_add(ep, s, EPOLLIN, 1) == 0);
  CHECK(ep_add(ep, p[0], EPOLLIN, 2) == 0);
  epoll_event evs[4];
  check_eintr("epoll_wait", during_alarm([&] { return static_cast<long>(epoll_wait(ep, evs, 4, 5000)); }));
  alarm_note();

  step("poll with SA_RESTART");
  pollfd pf[2] = {{s, POLLIN, 0}, {p[0], POLLIN, 0}};
  check_eintr("poll", during_alarm([&] { return static_cast<long>(poll(pf, 2, 5000)); }));

  step("select with SA_RESTART");
  fd_set rs;
  FD_ZERO(&rs);
  FD_SET(s, &rs);
  FD_SET(p[0], &rs);
  timeval tv{5, 0};
  c = during_alarm([&] { return static_cast<long>(select(std::max(s, p[0]) + 1, &rs, nullptr, nullptr, &tv)); });
  CHECKF(c.rc == -1 && c.err == EINTR, "select: %s after %lld ms (expected -1 EINTR)", c.str().c_str(), c.ms);

  step("recv with SO_RCVTIMEO and SA_RESTART");
  timeval rto{3, 0};
  CHECK(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &rto, sizeof rto) == 0);
  c = during_alarm(do_recv);
  CHECKF(c.rc == -1 && c.err == EINTR, "recv with a timeout: %s after %lld ms (expected -1 EINTR: not restarted)",
         c.str().c_str(), c.ms);

  signal(SIGALRM, SIG_DFL);
}

// ---------------------------------------------------------------- case 5
// What the kernel itself records for descriptor fd: /proc/self/fdinfo's
// octal "flags" (O_CLOEXEC is 02000000), bypassing any interposed fcntl.
std::string fdinfo_flags(int fd) {
  FILE* f = fopen(fmt("/proc/self/fdinfo/%d", fd).c_str(), "re");
  if (f == nullptr) return "fdinfo unreadable";
  char line[128];
  std::string out = "no flags line";
  while (fgets(line, sizeof line, f)) {
    unsigned long v = 0;
    if (sscanf(line, "flags: %lo", &v) == 1) {
      out = fmt("fdinfo flags 0%lo, O_CLOEXEC %s", v, (v & O_CLOEXEC) ? "set" : "clear");
      break;
    }
  }
  fclose(f);
  return out;
}

void case_dup() {
  Closer cl;
  char buf[64];

  step("dup: I/O through the duplicate");
  int s = open_data("dup1");
  if (!CHECKF(s >= 0, "open_data: %s", ename(errno))) return;
  int d = dup(s);
  CHECKF(d >= 0 && d != s, "dup: %d", d);
  CHECK(send_str(d, "via-dup"));
  std::string got = peer_read("dup1", 7);
  CHECKF(got == "data " + hex_of("via-dup"), "peer read '%s'", got.c_str());
  peer_ok("SEND dup1 4");
  CHECKF(read_exact(d, buf, 4, 3000) == 4 && memcmp(buf, pat_str(4).data(), 4) == 0, "read via the dup");

  step("dup: close the original, the connection stays");
  CHECK(close(s) == 0);
  std::string st = peer_eof("dup1", 500);
  CHECKF(st == "open", "peer after closing the original: %s (expected open)", st.c_str());
  CHECK(send_str(d, "still"));
  got = peer_read("dup1", 5);
  CHECKF(got == "data " + hex_of("still"), "peer read '%s'", got.c_str());
  peer_ok("SEND dup1 2");
  CHECKF(read_exact(d, buf, 2, 3000) == 2, "read after closing the original");
  step("dup: close the last number, the peer sees EOF");
  CHECK(close(d) == 0);
  st = peer_eof("dup1", 5000);
  CHECKF(st == "eof", "peer after closing the last number: %s (expected eof)", st.c_str());

  step("dup2 over a pipe's number");
  int s2 = open_data("dup2");
  if (!CHECKF(s2 >= 0, "open_data: %s", ename(errno))) return;
  int p[2];
  CHECK(pipe(p) == 0);
  cl.add(p[0]);
  int t = p[1];
  int r = dup2(s2, t);
  CHECKF(r == t, "dup2: %s", rcs(r, errno).c_str());
  ssize_t pr = read(p[0], buf, 1);  // the pipe's only writer was replaced
  CHECKF(pr == 0, "pipe read after its writer's number was reused: %s (expected 0, EOF)", rcs(pr, errno).c_str());
  CHECKF(fcntl(t, F_GETFD) == 0, "dup2 clears close-on-exec: F_GETFD=%d", fcntl(t, F_GETFD));
  CHECK(send_str(t, "via-dup2"));
  got = peer_read("dup2", 8);
  CHECKF(got == "data " + hex_of("via-dup2"), "peer read '%s'", got.c_str());
  sockaddr_in a{};
  socklen_t al = sizeof a;
  CHECKF(getpeername(t, reinterpret_cast<sockaddr*>(&a), &al) == 0 && ip_of(a) == g_peer, "getpeername via dup2: %s",
         ip_of(a).c_str());
  CHECK(close(s2) == 0);
  st = peer_eof("dup2", 500);
  CHECKF(st == "open", "peer after closing the original: %s (expected open)", st.c_str());
  CHECK(close(t) == 0);
  st = peer_eof("dup2", 5000);
  CHECKF(st == "eof", "peer after closing the dup2 number: %s (expected eof)", st.c_str());

  step("dup2 over another connected socket's number");
  int sa = open_data("dupA");
  int sb = open_data("dupB");
  if (!CHECK(sa >= 0 && sb >= 0)) return;
  CHECK(send_str(sb, "b"));  // make sure the peer has registered dupB's data first
  got = peer_read("dupB", 1);
  r = dup2(sa, sb);
  CHECKF(r == sb, "dup2: %s", rcs(r, errno).c_str());
  st = peer_eof("dupB", 5000);
  CHECKF(st == "eof", "peer on the replaced connection: %s (expected eof: its only number was reused)", st.c_str());
  CHECK(send_str(sb, "to-A"));
  got = peer_read("dupA", 4);
  CHECKF(got == "data " + hex_of("to-A"), "the number now names A: peer A read '%s'", got.c_str());
  CHECK(close(sa) == 0);
  st = peer_eof("dupA", 500);
  CHECKF(st == "open", "A after closing its first number: %s (expected open)", st.c_str());
  CHECK(close(sb) == 0);
  st = peer_eof("dupA", 5000);
  CHECKF(st == "eof", "A after closing its last number: %s (expected eof)", st.c_str());

  step("dup3(O_CLOEXEC) and F_DUPFD_CLOEXEC");
  int s3 = open_data("dup3");
  if (!CHECK(s3 >= 0)) return;
  int target = open("/dev/null", O_RDONLY | O_CLOEXEC);  // a kernel fd's number to dup3 onto
  CHECK(target >= 0);
  r = dup3(s3, target, O_CLOEXEC);
  CHECKF(r == target, "dup3: %s", rcs(r, errno).c_str());
  CHECKF(fcntl(target, F_GETFD) == FD_CLOEXEC, "dup3 O_CLOEXEC: F_GETFD=%d (kernel descriptor: %s)",
         fcntl(target, F_GETFD), fdinfo_flags(target).c_str());
  r = dup3(s3, s3, 0);
  CHECKF(r == -1 && errno == EINVAL, "dup3 onto itself: %s (expected -1 EINVAL)", rcs(r, errno).c_str());
  int hi = fcntl(s3, F_DUPFD_CLOEXEC, 200);
  CHECKF(hi >= 200, "F_DUPFD_CLOEXEC 200: %s", rcs(hi, errno).c_str());
  CHECKF(fcntl(hi, F_GETFD) == FD_CLOEXEC, "F_DUPFD_CLOEXEC: F_GETFD=%d (kernel descriptor: %s)", fcntl(hi, F_GETFD),
         fdinfo_flags(hi).c_str());
  CHECK(send_str(target, "3"));
  CHECK(send_str(hi, "4"));
  got = peer_read("dup3", 2);
  CHECKF(got == "data " + hex_of("34"), "peer read '%s'", got.c_str());
  peer_ok("SEND dup3 3");
  CHECKF(read_exact(hi, buf, 3, 3000) == 3, "read via F_DUPFD_CLOEXEC number");
  CHECK(close(s3) == 0);
  CHECK(close(target) == 0);
  st = peer_eof("dup3", 500);
  CHECKF(st == "open", "after closing 2 of 3 numbers: %s (expected open)", st.c_str());
  CHECK(close(hi) == 0);
  st = peer_eof("dup3", 5000);
  CHECKF(st == "eof", "after closing the last: %s (expected eof)", st.c_str());
  r = fcntl(hi, F_GETFD);
  CHECKF(r == -1 && errno == EBADF, "closed number: F_GETFD %s (expected -1 EBADF)", rcs(r, errno).c_str());
}

// ---------------------------------------------------------------- case 6
void case_nonblock() {
  Closer cl;
  int s = cl.add(open_data("nb"));
  if (!CHECKF(s >= 0, "open_data: %s", ename(errno))) return;
  char buf[2048];

  step("fcntl O_NONBLOCK");
  int fl = fcntl(s, F_GETFL);
  CHECKF(fl >= 0 && !(fl & O_NONBLOCK), "F_GETFL %#x", fl);
  CHECKF((fl & O_ACCMODE) == O_RDWR, "F_GETFL access mode %#x", fl & O_ACCMODE);
  CHECK(fcntl(s, F_SETFL, fl | O_NONBLOCK) == 0);
  CHECKF(fcntl(s, F_GETFL) & O_NONBLOCK, "F_GETFL after F_SETFL %#x", fcntl(s, F_GETFL));
  ssize_t r = recv(s, buf, sizeof buf, 0);
  CHECKF(r == -1 && (errno == EAGAIN || errno == EWOULDBLOCK), "recv: %s (expected -1 EAGAIN)", rcs(r, errno).c_str());
  r = read(s, buf, sizeof buf);
  CHECKF(r == -1 && errno == EAGAIN, "read: %s (expected -1 EAGAIN)", rcs(r, errno).c_str());
  CHECK(fcntl(s, F_SETFL, fl) == 0);

  step("ioctl FIONBIO");
  int on = 1;
  CHECK(ioctl(s, FIONBIO, &on) == 0);
  r = recv(s, buf, sizeof buf, 0);
  CHECKF(r == -1 && errno == EAGAIN, "recv after FIONBIO 1: %s (expected -1 EAGAIN)", rcs(r, errno).c_str());
  CHECKF(fcntl(s, F_GETFL) & O_NONBLOCK, "FIONBIO 1 shows in F_GETFL: %#x", fcntl(s, F_GETFL));
  on = 0;
  CHECK(ioctl(s, FIONBIO, &on) == 0);
  CHECKF(!(fcntl(s, F_GETFL) & O_NONBLOCK), "FIONBIO 0 shows in F_GETFL: %#x", fcntl(s, F_GETFL));
  r = recv(s, buf, sizeof buf, MSG_DONTWAIT);
  CHECKF(r == -1 && errno == EAGAIN, "MSG_DONTWAIT on a blocking socket: %s", rcs(r, errno).c_str());

  step("FIONREAD");
  int v = -1;
  CHECKF(ioctl(s, FIONREAD, &v) == 0 && v == 0, "FIONREAD empty: %d", v);
  peer_ok("SEND nb 1234");
  v = fionread_reach(s, 1234, 3000);
  CHECKF(v == 1234, "FIONREAD with 1234 bytes waiting: %d", v);
  r = recv(s, buf, 1000, 0);
  CHECKF(r == 1000, "recv 1000: %s", rcs(r, errno).c_str());
  v = -1;
  CHECKF(ioctl(s, FIONREAD, &v) == 0 && v == 234, "FIONREAD after reading 1000: %d (expected 234)", v);
  r = recv(s, buf, sizeof buf, MSG_PEEK);
  CHECKF(r == 234, "MSG_PEEK: %s", rcs(r, errno).c_str());
  v = -1;
  CHECKF(ioctl(s, FIONREAD, &v) == 0 && v == 234, "FIONREAD after MSG_PEEK: %d (expected 234)", v);
  r = recv(s, buf, sizeof buf, 0);
  CHECKF(r == 234 && memcmp(buf, pat_str(1234).data() + 1000, 234) == 0, "the last 234 bytes: %s",
         rcs(r, errno).c_str());
  CHECKF(ioctl(s, FIONREAD, &v) == 0 && v == 0, "FIONREAD drained: %d", v);
}

// ---------------------------------------------------------------- case 7
void case_fallback() {
  Closer cl;
  char buf[64];

  step("AF_UNIX socketpair");
  int sp[2];
  if (CHECKF(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0, "%s", ename(errno))) {
    cl.add(sp[0]), cl.add(sp[1]);
    CHECK(write(sp[0], "ping", 4) == 4);
    CHECKF(read_exact(sp[1], buf, 4, 2000) == 4 && memcmp(buf, "ping", 4) == 0, "unix a->b");
    CHECK(send(sp[1], "pong", 4, 0) == 4);
    CHECKF(read_exact(sp[0], buf, 4, 2000) == 4 && memcmp(buf, "pong", 4) == 0, "unix b->a");
  }

  step("TCP over 127.0.0.1");
  int l = cl.add(socket(AF_INET, SOCK_STREAM, 0));
  int one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in la = sin_of("127.0.0.1", 0);
  int r = bind(l, reinterpret_cast<sockaddr*>(&la), sizeof la);
  CHECKF(r == 0, "bind 127.0.0.1: %s", rcs(r, errno).c_str());
  CHECKF(listen(l, 8) == 0, "listen: %s", ename(errno));
  socklen_t len = sizeof la;
  CHECK(getsockname(l, reinterpret_cast<sockaddr*>(&la), &len) == 0);
  CHECKF(ip_of(la) == "127.0.0.1" && ntohs(la.sin_port) != 0, "listener at %s:%d", ip_of(la).c_str(),
         ntohs(la.sin_port));
  int c = cl.add(tcp_connect("127.0.0.1", ntohs(la.sin_port)));
  CHECKF(c >= 0, "connect to 127.0.0.1:%d: %s", ntohs(la.sin_port), ename(errno));
  int a = -1;
  if (wait_fd(l, POLLIN, 3000)) a = cl.add(accept(l, nullptr, nullptr));
  CHECKF(a >= 0, "accept: %s", ename(errno));
  if (c >= 0 && a >= 0) {
    CHECK(send_str(c, "hello-lo"));
    CHECKF(read_exact(a, buf, 8, 2000) == 8 && memcmp(buf, "hello-lo", 8) == 0, "loopback c->a");
    CHECK(send_str(a, "back"));
    CHECKF(read_exact(c, buf, 4, 2000) == 4 && memcmp(buf, "back", 4) == 0, "loopback a->c");
    sockaddr_in ca{};
    len = sizeof ca;
    CHECK(getsockname(c, reinterpret_cast<sockaddr*>(&ca), &len) == 0);
    CHECKF(ip_of(ca) == "127.0.0.1", "client local address %s", ip_of(ca).c_str());
    // A mixed poll: the loopback socket and a data connection to the peer.
    int s = cl.add(open_data("fb"));
    if (CHECK(s >= 0)) {
      peer_ok("SEND fb 2");
      CHECK(send_str(a, "zz"));
      pollfd pf[2] = {{c, POLLIN, 0}, {s, POLLIN, 0}};
      int64_t end = now_ms() + 3000;
      int n;
      do n = poll(pf, 2, 1000);
      while (n < 2 && now_ms() < end);
      CHECKF(n == 2 && (pf[0].revents & POLLIN) && (pf[1].revents & POLLIN), "mixed poll: %s (%s, %s)",
             rcs(n, errno).c_str(), pevstr(pf[0].revents).c_str(), pevstr(pf[1].revents).c_str());
    }
  }

  step("UDP over 127.0.0.1");
  int u1 = cl.add(socket(AF_INET, SOCK_DGRAM, 0));
  int u2 = cl.add(socket(AF_INET, SOCK_DGRAM, 0));
  sockaddr_in ua = sin_of("127.0.0.1", 0);
  CHECKF(bind(u1, reinterpret_cast<sockaddr*>(&ua), sizeof ua) == 0, "bind udp: %s", ename(errno));
  len = sizeof ua;
  CHECK(getsockname(u1, reinterpret_cast<sockaddr*>(&ua), &len) == 0);
  ssize_t sr = sendto(u2, "dgram", 5, 0, reinterpret_cast<sockaddr*>(&ua), sizeof ua);
  CHECKF(sr == 5, "sendto 127.0.0.1:%d: %s", ntohs(ua.sin_port), rcs(sr, errno).c_str());
  sockaddr_in from{};
  socklen_t fl = sizeof from;
  sr = -1;
  if (wait_fd(u1, POLLIN, 2000)) sr = recvfrom(u1, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fl);
  CHECKF(sr == 5 && memcmp(buf, "dgram", 5) == 0 && ip_of(from) == "127.0.0.1", "recvfrom: %s from %s",
         rcs(sr, errno).c_str(), ip_of(from).c_str());
  if (sr == 5) {
    sr = sendto(u1, "reply", 5, 0, reinterpret_cast<sockaddr*>(&from), fl);
    CHECKF(sr == 5, "reply: %s", rcs(sr, errno).c_str());
    sr = -1;
    if (wait_fd(u2, POLLIN, 2000)) sr = recv(u2, buf, sizeof buf, 0);
    CHECKF(sr == 5 && memcmp(buf, "reply", 5) == 0, "reply received: %s", rcs(sr, errno).c_str());
  }

  step("AF_INET6 over ::1");
  int l6 = socket(AF_INET6, SOCK_STREAM, 0);
  if (l6 < 0) {
    note(fmt("no IPv6 (socket(AF_INET6): %s): skipped", ename(errno)));
    return;
  }
  cl.add(l6);
  sockaddr_in6 a6{};
  a6.sin6_family = AF_INET6;
  a6.sin6_addr = in6addr_loopback;
  if (bind(l6, reinterpret_cast<sockaddr*>(&a6), sizeof a6) < 0) {
    note(fmt("no IPv6 on lo (bind ::1: %s): skipped", ename(errno)));
    return;
  }
  CHECK(listen(l6, 4) == 0);
  len = sizeof a6;
  CHECK(getsockname(l6, reinterpret_cast<sockaddr*>(&a6), &len) == 0);
  int c6 = cl.add(socket(AF_INET6, SOCK_STREAM, 0));
  r = connect(c6, reinterpret_cast<sockaddr*>(&a6), sizeof a6);
  CHECKF(r == 0, "connect [::1]:%d: %s", ntohs(a6.sin6_port), rcs(r, errno).c_str());
  int a6c = -1;
  if (wait_fd(l6, POLLIN, 3000)) a6c = cl.add(accept(l6, nullptr, nullptr));
  CHECKF(a6c >= 0, "accept6: %s", ename(errno));
  if (r == 0 && a6c >= 0) {
    CHECK(send_str(c6, "six"));
    CHECKF(read_exact(a6c, buf, 3, 2000) == 3 && memcmp(buf, "six", 3) == 0, "v6 data");
  }
}

// ---------------------------------------------------------------- case 8
void case_sendfile() {
  Closer cl;
  int s = cl.add(open_data("sf"));
  if (!CHECKF(s >= 0, "open_data: %s", ename(errno))) return;
  char path[] = "/tmp/xs_shim_sendfileXXXXXX";
  int f = mkstemp(path);
  if (!CHECKF(f >= 0, "mkstemp: %s", ename(errno))) return;
  cl.add(f);
  unlink(path);
  constexpr size_t kLen = 700001;
  std::string content(kLen, '\0');
  uint64_t x = 0x9e3779b97f4a7c15ULL;
  for (size_t i = 0; i < kLen; ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    content[i] = static_cast<char>(x);
  }
  CHECK(write(f, content.data(), kLen) == static_cast<ssize_t>(kLen));
  CHECK(lseek(f, 0, SEEK_SET) == 0);
  Sha256 h;
  h.update(content.data(), kLen);
  std::string want = h.hex();

  // The peer reads in the background: a blocking sendfile may need it to.
  peer_ok(fmt("HASHBG sf %zu 30000", kLen));

  step("sendfile with an offset pointer (first 300000 bytes)");
  off_t off = 0;
  size_t first = 300000;
  while (static_cast<size_t>(off) < first) {
    ssize_t r = sendfile(s, f, &off, first - static_cast<size_t>(off));
    if (!CHECKF(r > 0, "sendfile: %s at offset %lld", rcs(r, errno).c_str(), (long long)off)) return;
  }
  CHECKF(static_cast<size_t>(off) == first, "offset %lld", (long long)off);
  CHECKF(lseek(f, 0, SEEK_CUR) == 0, "file position moved with an offset pointer: %lld",
         (long long)lseek(f, 0, SEEK_CUR));

  step("sendfile with NULL offset (the rest, from the file position)");
  CHECK(lseek(f, static_cast<off_t>(first), SEEK_SET) == static_cast<off_t>(first));
  size_t sent = first;
  while (sent < kLen) {
    ssize_t r = sendfile(s, f, nullptr, kLen - sent);
    if (!CHECKF(r > 0, "sendfile: %s after %zu", rcs(r, errno).c_str(), sent)) return;
    sent += static_cast<size_t>(r);
  }
  CHECKF(lseek(f, 0, SEEK_CUR) == static_cast<off_t>(kLen), "file position after NULL-offset sendfile: %lld",
         (long long)lseek(f, 0, SEEK_CUR));
  ssize_t r = sendfile(s, f, nullptr, 100);
  CHECKF(r == 0, "sendfile at end of file: %s", rcs(r, errno).c_str());

  step("peer hash");
  std::string got = ctl("RESULT sf 30000", 40000);
  std::string exp = fmt("hash %zu %s", kLen, want.c_str());
  CHECKF(got == exp, "peer: '%s', expected '%s'", got.c_str(), exp.c_str());
}

// ---------------------------------------------------------------- case 9
void case_fork() {
  Closer cl;
  int s = cl.add(open_data("fork"));
  if (!CHECKF(s >= 0, "open_data: %s", ename(errno))) return;
  int p[2], rp[2];
  CHECK(pipe(p) == 0);
  CHECK(pipe(rp) == 0);
  cl.add(p[0]), cl.add(p[1]), cl.add(rp[0]), cl.add(rp[1]);

  step("fork");
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    // The child: reports one line per check on rp[1]; exit code unused.
    std::string rep;
    auto out = [&](const std::string& l) { rep += l + "\n"; };
    char b[64];
    // kernel fds: the pipe inherited from the parent
    ssize_t w = write(p[1], "child", 5);
    out(fmt("pipe_write %zd", w));
    // a new loopback socket pair
    int l = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in la = sin_of("127.0.0.1", 0);
    socklen_t len = sizeof la;
    int ok = l >= 0 && bind(l, reinterpret_cast<sockaddr*>(&la), sizeof la) == 0 && listen(l, 4) == 0 &&
             getsockname(l, reinterpret_cast<sockaddr*>(&la), &len) == 0;
    int c = ok ? tcp_connect("127.0.0.1", ntohs(la.sin_port), 3000) : -1;
    int a = (c >= 0 && wait_fd(l, POLLIN, 3000)) ? accept(l, nullptr, nullptr) : -1;
    bool lo_ok = a >= 0 && send_str(c, "lo") && read_exact(a, b, 2, 2000) == 2 && memcmp(b, "lo", 2) == 0;
    out(fmt("loopback %d", lo_ok ? 1 : 0));
    if (c >= 0) close(c);
    if (a >= 0) close(a);
    if (l >= 0) close(l);
    // a new socket to the peer (the kernel in the shim's child)
    int n = tcp_connect(g_peer, g_port, 3000);
    sockaddr_in na{};
    len = sizeof na;
    if (n >= 0) getsockname(n, reinterpret_cast<sockaddr*>(&na), &len);
    out(fmt("new_peer_socket %s %s", n >= 0 ? "ok" : ename(errno), n >= 0 ? ip_of(na).c_str() : "-"));
    if (n >= 0) {
      send_str(n, "DATA forkchild\n");
      close(n);
    }
    // the inherited connection
    sockaddr_in pa{};
    len = sizeof pa;
    int gp = getpeername(s, reinterpret_cast<sockaddr*>(&pa), &len);
    out(fmt("inherited_getpeername %s %s", rcs(gp, errno).c_str(), gp == 0 ? ip_of(pa).c_str() : "-"));
    ssize_t sr = send(s, "C", 1, MSG_NOSIGNAL);
    out(fmt("inherited_send %s", rcs(sr, errno).c_str()));
    int cr = close(s);
    out(fmt("inherited_close %s", rcs(cr, errno).c_str()));
    if (write(rp[1], rep.data(), rep.size()) < 0) _exit(2);
    _exit(0);
  }
  if (!CHECKF(pid > 0, "fork: %s", ename(errno))) return;
  close(rp[1]);
  cl.forget(rp[1]);
  std::string rep;
  char b[512];
  int64_t end = now_ms() + 20000;
  for (;;) {
    int left = static_cast<int>(end - now_ms());
    if (left <= 0 || !wait_fd(rp[0], POLLIN, left)) break;
    ssize_t r = read(rp[0], b, sizeof b);
    if (r <= 0) break;
    rep.append(b, static_cast<size_t>(r));
  }
  int status = -1;
  pid_t wr = reap(pid, 2000, &status);
  CHECKF(wr == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0, "child exit status %#x", status);
  auto field = [&](const std::string& key) {
    size_t at = rep.find(key + " ");
    if (at == std::string::npos) return std::string("(missing)");
    size_t e = rep.find('\n', at);
    return rep.substr(at + key.size() + 1, e - at - key.size() - 1);
  };
  step("child: kernel fds and new sockets");
  char pb[8] = {};
  CHECKF(read_exact(p[0], pb, 5, 2000) == 5 && memcmp(pb, "child", 5) == 0, "pipe from the child");
  CHECKF(field("pipe_write") == "5", "child pipe write: %s", field("pipe_write").c_str());
  CHECKF(field("loopback") == "1", "child loopback TCP: %s", field("loopback").c_str());
  std::string np = field("new_peer_socket");
  CHECKF(np.rfind("ok ", 0) == 0, "child: new socket to the peer: %s", np.c_str());
  note("child: new socket to the peer: " + np + (g_xstack ? " (the kernel: the parent holds the interface)" : ""));

  step("child: the inherited connection");
  std::string gp = field("inherited_getpeername"), sd = field("inherited_send"), cs = field("inherited_close");
  note(fmt("child on the inherited socket: getpeername -> %s, send -> %s, close -> %s", gp.c_str(), sd.c_str(),
           cs.c_str()));
  // Both runs: the child uses the inherited connection (under the shim it is
  // served through the parent, docs/shim.md "fork").
  CHECKF(gp == "0 " + g_peer, "child getpeername on the inherited socket: %s", gp.c_str());
  CHECKF(sd == "1", "child send on the inherited socket: %s", sd.c_str());
  CHECKF(cs == "0", "child close of the inherited socket: %s", cs.c_str());

  step("parent: the connection survives the child");
  std::string st = peer_eof("fork", 300);
  CHECKF(st == "open", "peer after the child closed its copy and exited: %s (expected open)", st.c_str());
  // peer_eof consumed the child's "C" (kernel run); now the parent's own I/O.
  CHECK(send_str(s, "P"));
  std::string got = peer_read("fork", 1);
  CHECKF(got == "data " + hex_of("P"), "peer read '%s'", got.c_str());
  peer_ok("SEND fork 3");
  char rb[8];
  CHECKF(read_exact(s, rb, 3, 3000) == 3, "parent reads after fork");
}

// ---------------------------------------------------------------- case 10
void case_names() {
  Closer cl;
  int s = cl.add(open_data("names"));
  if (!CHECKF(s >= 0, "open_data: %s", ename(errno))) return;
  sockaddr_in me{}, him{};
  socklen_t len = sizeof me;
  step("getsockname");
  int r = getsockname(s, reinterpret_cast<sockaddr*>(&me), &len);
  CHECKF(r == 0 && len == sizeof me && me.sin_family == AF_INET, "getsockname: %s len %u", rcs(r, errno).c_str(), len);
  CHECKF(ip_of(me) == g_local, "local address %s (expected %s)", ip_of(me).c_str(), g_local.c_str());
  CHECKF(ntohs(me.sin_port) != 0, "local port 0");
  step("getpeername");
  len = sizeof him;
  r = getpeername(s, reinterpret_cast<sockaddr*>(&him), &len);
  CHECKF(r == 0 && len == sizeof him, "getpeername: %s", rcs(r, errno).c_str());
  CHECKF(ip_of(him) == g_peer && ntohs(him.sin_port) == g_port, "peer %s:%d (expected %s:%d)", ip_of(him).c_str(),
         ntohs(him.sin_port), g_peer.c_str(), g_port);
  step("the peer's view");
  std::string got = ctl("ADDR names");
  std::string exp = fmt("addr %s %d", g_local.c_str(), ntohs(me.sin_port));
  CHECKF(got == exp, "peer sees '%s', expected '%s'", got.c_str(), exp.c_str());
  step("short buffer");
  char small[4];
  len = sizeof small;
  r = getsockname(s, reinterpret_cast<sockaddr*>(small), &len);
  CHECKF(r == 0 && len == sizeof(sockaddr_in), "getsockname with a 4-byte buffer: %s len %u (expected 0, len 16)",
         rcs(r, errno).c_str(), len);
  step("connected UDP socket");
  int u = cl.add(socket(AF_INET, SOCK_DGRAM, 0));
  sockaddr_in pa = sin_of(g_peer, 9);
  r = connect(u, reinterpret_cast<sockaddr*>(&pa), sizeof pa);
  CHECKF(r == 0, "udp connect: %s", rcs(r, errno).c_str());
  len = sizeof me;
  r = getsockname(u, reinterpret_cast<sockaddr*>(&me), &len);
  CHECKF(r == 0 && ip_of(me) == g_local && ntohs(me.sin_port) != 0, "udp local %s:%d", ip_of(me).c_str(),
         ntohs(me.sin_port));
  len = sizeof him;
  r = getpeername(u, reinterpret_cast<sockaddr*>(&him), &len);
  CHECKF(r == 0 && ip_of(him) == g_peer && ntohs(him.sin_port) == 9, "udp peer %s:%d", ip_of(him).c_str(),
         ntohs(him.sin_port));
  step("unconnected socket");
  int t = cl.add(socket(AF_INET, SOCK_STREAM, 0));
  len = sizeof him;
  r = getpeername(t, reinterpret_cast<sockaddr*>(&him), &len);
  CHECKF(r == -1 && errno == ENOTCONN, "getpeername unconnected: %s (expected -1 ENOTCONN)", rcs(r, errno).c_str());
}

// ---------------------------------------------------------------- case 11
// A forking server's worker that forks in turn (ncat --exec, inetd-style
// servers, a double fork): the grandchild still reaches the inherited
// connection. And interface ioctls (SIOCGIFCONF, SIOCGIFINDEX), which Linux
// answers on any socket, work on a TCP socket as on an AF_UNIX one.
void case_grandchild_ioctl() {
  Closer cl;
  step("interface ioctls");
  int t = cl.add(socket(AF_INET, SOCK_STREAM, 0));
  int u = cl.add(socket(AF_UNIX, SOCK_STREAM, 0));
  ifreq ifrs_t[16], ifrs_u[16];
  ifconf ict{}, icu{};
  ict.ifc_len = sizeof ifrs_t, ict.ifc_req = ifrs_t;
  icu.ifc_len = sizeof ifrs_u, icu.ifc_req = ifrs_u;
  int rt = ioctl(t, SIOCGIFCONF, &ict), ru = ioctl(u, SIOCGIFCONF, &icu);
  CHECKF(rt == 0 && ru == 0 && ict.ifc_len == icu.ifc_len && ict.ifc_len > 0,
         "SIOCGIFCONF on TCP: %s len %d; on AF_UNIX: %s len %d", rcs(rt, errno).c_str(), ict.ifc_len,
         rcs(ru, errno).c_str(), icu.ifc_len);
  ifreq ifr{};
  std::strcpy(ifr.ifr_name, "lo");
  int ri = ioctl(t, SIOCGIFINDEX, &ifr);
  CHECKF(ri == 0 && ifr.ifr_ifindex == 1, "SIOCGIFINDEX lo on TCP: %s index %d", rcs(ri, errno).c_str(),
         ifr.ifr_ifindex);
  std::strcpy(ifr.ifr_name, "nosuchif0");
  ri = ioctl(t, SIOCGIFINDEX, &ifr);
  CHECKF(ri == -1 && errno == ENODEV, "SIOCGIFINDEX of a missing interface: %s (expected -1 ENODEV)",
         rcs(ri, errno).c_str());

  int s = cl.add(open_data("gfork"));
  if (!CHECKF(s >= 0, "open_data: %s", ename(errno))) return;
  step("fork, and fork again");
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    pid_t g = fork();
    if (g == 0) {
      sockaddr_in pa{};
      socklen_t len = sizeof pa;
      if (getpeername(s, reinterpret_cast<sockaddr*>(&pa), &len) != 0 || ip_of(pa) != g_peer) _exit(3);
      if (send(s, "G", 1, MSG_NOSIGNAL) != 1) _exit(4);
      char b[2];
      if (read_exact(s, b, 2, 3000) != 2 || memcmp(b, "gc", 2) != 0) _exit(5);
      _exit(0);
    }
    int st = -1;
    if (g < 0 || waitpid(g, &st, 0) != g) _exit(6);
    _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 7);
  }
  if (!CHECKF(pid > 0, "fork: %s", ename(errno))) return;
  std::string got = peer_read("gfork", 1);
  CHECKF(got == "data " + hex_of("G"), "peer read from the grandchild '%s'", got.c_str());
  peer_ok("SENDHEX gfork 6763");
  int status = -1;
  pid_t wr = reap(pid, 5000, &status);
  CHECKF(wr == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
         "child exit status %#x (3 getpeername, 4 send, 5 read, 6 fork/wait in the grandchild)", status);
  step("parent: the connection survives both");
  CHECK(send_str(s, "P"));
  got = peer_read("gfork", 1);
  CHECKF(got == "data " + hex_of("P"), "peer read '%s'", got.c_str());
}

// ---------------------------------------------------------------- case 12
// inetd style: a child puts an inherited connection on its stdin/stdout and
// execs a program, which reads and writes the connection and asks its
// addresses and options (this program again, --exec-child).
int exec_child_main(const char* peer_ip) {
  sockaddr_in pa{}, la{};
  socklen_t len = sizeof pa;
  if (getpeername(0, reinterpret_cast<sockaddr*>(&pa), &len) != 0 || ip_of(pa) != peer_ip) return 3;
  len = sizeof la;
  if (getsockname(1, reinterpret_cast<sockaddr*>(&la), &len) != 0 || la.sin_family != AF_INET) return 4;
  int type = 0;
  len = sizeof type;
  if (getsockopt(0, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) return 5;
  char b[3] = {'X', 0, 0};
  if (read_exact(0, b + 1, 2, 5000) != 2) return 6;
  if (write(1, b, 3) != 3) return 7;
  return 0;
}

void case_exec() {
  Closer cl;
  int s = cl.add(open_data("exec"));
  if (!CHECKF(s >= 0, "open_data: %s", ename(errno))) return;
  char self[512];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (!CHECKF(n > 0, "readlink /proc/self/exe: %s", ename(errno))) return;
  self[n] = 0;
  step("fork, dup2 onto 0 and 1, exec");
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    if (dup2(s, 0) != 0 || dup2(s, 1) != 1) _exit(8);
    execl(self, self, "--exec-child", g_peer.c_str(), static_cast<char*>(nullptr));
    _exit(9);
  }
  if (!CHECKF(pid > 0, "fork: %s", ename(errno))) return;
  peer_ok("SENDHEX exec 6162");
  std::string got = peer_read("exec", 3, 5000);
  CHECKF(got == "data " + hex_of("Xab"), "peer read from the exec'd program '%s'", got.c_str());
  int status = -1;
  pid_t wr = reap(pid, 5000, &status);
  CHECKF(wr == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
         "exec'd program exit status %#x (3 getpeername, 4 getsockname, 5 SO_TYPE, 6 read, 7 write, 8 dup2, 9 exec)",
         status);
  step("parent: the connection survives");
  CHECK(send_str(s, "P"));
  got = peer_read("exec", 1);
  CHECKF(got == "data " + hex_of("P"), "peer read '%s'", got.c_str());
}

// ---------------------------------------------------------------- case 13
// A UDP socket inherited across fork (prefork UDP servers, socat's
// UDP-RECVFROM with fork): the child sends and receives on it, with the
// peer's address, connects it, and the parent's socket still works after.
void case_udp_fork() {
  Closer cl;
  const int port = g_port + 50;
  peer_ok(fmt("UDPECHO %d", port));
  int u = cl.add(socket(AF_INET, SOCK_DGRAM, 0));
  sockaddr_in me = sin_of(g_local, 0);
  if (!CHECKF(bind(u, reinterpret_cast<sockaddr*>(&me), sizeof me) == 0, "bind: %s", ename(errno))) return;
  socklen_t len = sizeof me;
  getsockname(u, reinterpret_cast<sockaddr*>(&me), &len);
  sockaddr_in pa = sin_of(g_peer, port);
  step("fork");
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    char b[16];
    sockaddr_in from{};
    socklen_t fl = sizeof from;
    if (sendto(u, "c1", 2, 0, reinterpret_cast<sockaddr*>(&pa), sizeof pa) != 2) _exit(3);
    if (!wait_fd(u, POLLIN, 3000)) _exit(4);
    ssize_t n = recvfrom(u, b, sizeof b, 0, reinterpret_cast<sockaddr*>(&from), &fl);
    if (n != 2 || memcmp(b, "c1", 2) != 0 || fl != sizeof from || ip_of(from) != g_peer ||
        ntohs(from.sin_port) != port)
      _exit(5);
    sockaddr_in got{};
    socklen_t gl = sizeof got;
    if (getsockname(u, reinterpret_cast<sockaddr*>(&got), &gl) != 0 || got.sin_port != me.sin_port) _exit(6);
    if (connect(u, reinterpret_cast<sockaddr*>(&pa), sizeof pa) != 0) _exit(7);
    if (send(u, "c2c2", 4, 0) != 4) _exit(8);
    if (!wait_fd(u, POLLIN, 3000)) _exit(9);
    n = recv(u, b, 2, MSG_TRUNC);  // a 4-byte datagram into 2: MSG_TRUNC returns its length
    if (n != 4 || memcmp(b, "c2", 2) != 0) _exit(10);
    _exit(0);
  }
  if (!CHECKF(pid > 0, "fork: %s", ename(errno))) return;
  int status = -1;
  pid_t wr = reap(pid, 5000, &status);
  CHECKF(wr == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
         "child exit status %#x (3 sendto, 4 wait, 5 recvfrom, 6 getsockname, 7 connect, 8 send, 9 wait, 10 "
         "MSG_TRUNC)",
         status);
  step("parent: the socket still works");
  char b[16];
  CHECK(sendto(u, "p1", 2, 0, reinterpret_cast<sockaddr*>(&pa), sizeof pa) == 2);
  bool ready = wait_fd(u, POLLIN, 3000);
  ssize_t n = ready ? recv(u, b, sizeof b, MSG_DONTWAIT) : -1;
  CHECKF(n == 2 && memcmp(b, "p1", 2) == 0, "parent recv after the child: %s", rcs(n, errno).c_str());
}

// ---------------------------------------------------------------- case 14
// A child that only looks at an inherited connection (addresses, options,
// file status flags) while holding it takes none of its data: the parent,
// which reads it, gets every byte (Linux: one socket, whoever reads).
void case_child_looks_only() {
  Closer cl;
  int s = cl.add(open_data("look"));
  if (!CHECKF(s >= 0, "open_data: %s", ename(errno))) return;
  int go[2];
  CHECK(pipe(go) == 0);
  cl.add(go[0]), cl.add(go[1]);
  step("fork a child that looks at the socket");
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    sockaddr_in pa{};
    socklen_t len = sizeof pa;
    if (getpeername(s, reinterpret_cast<sockaddr*>(&pa), &len) != 0 || ip_of(pa) != g_peer) _exit(3);
    int type = 0;
    len = sizeof type;
    if (getsockopt(s, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) _exit(4);
    int fl = fcntl(s, F_GETFL);
    if (fl < 0 || fcntl(s, F_SETFL, fl) != 0) _exit(5);
    if (write(go[1], "g", 1) != 1) _exit(6);
    usleep(600000);  // holds the socket while the parent reads
    _exit(0);
  }
  if (!CHECKF(pid > 0, "fork: %s", ename(errno))) return;
  char g;
  CHECKF(read_exact(go[0], &g, 1, 5000) == 1, "the child's go-ahead");
  peer_ok("SENDHEX look 616263");
  char b[4] = {};
  ssize_t n = read_exact(s, b, 3, 3000);
  CHECKF(n == 3 && memcmp(b, "abc", 3) == 0, "parent read %zd byte(s) '%.3s' while the child held the socket", n, b);
  int status = -1;
  pid_t wr = reap(pid, 5000, &status);
  CHECKF(wr == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
         "child exit status %#x (3 getpeername, 4 SO_TYPE, 5 F_GETFL/F_SETFL, 6 pipe)", status);
}

// ---------------------------------------------------------------- main

struct Case {
  int no;
  const char* name;
  void (*fn)();
  int budget_s;
};

// ---------------------------------------------------------------- case 15
// An epoll instance made before fork, used by the children (prefork servers
// that share one epoll set): the parent registers a listener, a connection
// and a pipe, forks two children that epoll_wait on the inherited instance
// and accept; every connection the peer makes is served by one of them, the
// pre-fork connection's data reaches a child through the same instance, and
// the parent's own epoll_wait on it works after the children are gone.
void epoll_fork_child(int idx, int ep, int l, int d, int rep) {
  auto out = [&](const std::string& line) {
    std::string m = line + "\n";
    if (write(rep, m.data(), m.size()) < 0) _exit(2);
  };
  int64_t end = now_ms() + 15000;
  bool stop = false;
  while (!stop && now_ms() < end) {
    epoll_event evs[8];
    int n = epoll_wait(ep, evs, 8, 200);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      out(fmt("ERR epoll_wait %s", ename(errno)));
      break;
    }
    for (int i = 0; i < n; ++i) {
      uint64_t what = evs[i].data.u64;
      if (what == 3) {
        stop = true;
      } else if (what == 1) {
        int a = accept(l, nullptr, nullptr);
        if (a < 0) {
          if (errno != EAGAIN && errno != EWOULDBLOCK) out(fmt("ERR accept %s", ename(errno)));
          continue;
        }
        char b[2];
        if (read_exact(a, b, 2, 3000) == 2) {
          char r[3] = {'r', b[1], static_cast<char>('0' + idx)};
          send_all(a, r, 3);
          out(fmt("A %c", b[1]));
        } else {
          out("ERR short read on an accepted connection");
        }
        close(a);
      } else if (what == 2) {
        char b[64];
        ssize_t r = recv(d, b, sizeof b, MSG_DONTWAIT);
        if (r > 0) out("D " + std::string(b, static_cast<size_t>(r)));
      } else {
        out(fmt("ERR unexpected epoll data %#llx", static_cast<unsigned long long>(what)));
      }
    }
  }
  _exit(stop ? 0 : 3);
}

void case_epoll_fork() {
  Closer cl;
  int l = cl.add(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
  sockaddr_in la = sin_of(g_local, 0);
  socklen_t len = sizeof la;
  CHECKF(bind(l, reinterpret_cast<sockaddr*>(&la), sizeof la) == 0, "bind: %s", ename(errno));
  CHECKF(listen(l, 16) == 0, "listen: %s", ename(errno));
  CHECK(getsockname(l, reinterpret_cast<sockaddr*>(&la), &len) == 0);
  int d = cl.add(open_data("epf"));
  if (!CHECKF(d >= 0, "open_data: %s", ename(errno))) return;
  int stop[2], rp[2];
  CHECK(pipe(stop) == 0);
  CHECK(pipe(rp) == 0);
  cl.add(stop[0]), cl.add(stop[1]), cl.add(rp[0]), cl.add(rp[1]);
  int ep = cl.add(epoll_create1(0));
  // The flags must reach the children too: exclusive wakeups on the
  // listener, edge-triggered on the connection.
  CHECK(ep_add(ep, l, EPOLLIN | EPOLLEXCLUSIVE, 1) == 0);
  CHECK(ep_add(ep, d, EPOLLIN | EPOLLET, 2) == 0);
  CHECK(ep_add(ep, stop[0], EPOLLIN, 3) == 0);

  step("fork two children on the epoll fd");
  fflush(stdout);
  pid_t kids[2] = {-1, -1};
  for (int i = 0; i < 2; ++i) {
    kids[i] = fork();
    if (kids[i] == 0) {
      close(stop[1]);
      close(rp[0]);
      epoll_fork_child(i, ep, l, d, rp[1]);
    }
    CHECKF(kids[i] > 0, "fork: %s", ename(errno));
  }
  close(rp[1]);
  cl.forget(rp[1]);
  std::string rep;
  auto collect = [&](const std::string& want, int ms) {  // reads reports until `want` shows up
    int64_t end = now_ms() + ms;
    while (rep.find(want) == std::string::npos) {
      int left = static_cast<int>(end - now_ms());
      if (left <= 0 || !wait_fd(rp[0], POLLIN, left)) return false;
      char b[512];
      ssize_t r = read(rp[0], b, sizeof b);
      if (r <= 0) return false;
      rep.append(b, static_cast<size_t>(r));
    }
    return true;
  };

  step("the peer connects six times; the children serve");
  int served[2] = {0, 0};
  for (int i = 0; i < 6; ++i) {
    std::string name = fmt("epf%d", i);
    if (!peer_ok(fmt("DIAL %s %s %d", name.c_str(), g_local.c_str(), ntohs(la.sin_port)))) break;
    peer_ok(fmt("SENDHEX %s 71%02x", name.c_str(), '0' + i));
    std::string got = peer_read(name, 3, 5000);
    bool ok = got.rfind("data " + hex_of(fmt("r%c", '0' + i)), 0) == 0 && got.size() == 11;
    CHECKF(ok, "connection %d: peer read '%s'", i, got.c_str());
    if (ok) served[got[10] - '0']++;
    ctl("CLOSE " + name);
  }
  note(fmt("connections served by child 0: %d, child 1: %d", served[0], served[1]));

  step("the pre-fork connection, read by a child");
  peer_ok("SENDHEX epf 6464");
  CHECKF(collect("D dd", 5000), "a child reads the pre-fork connection: reports '%s'", rep.c_str());

  step("the children idle, then stop");
  usleep(500000);
  close(stop[1]);
  cl.forget(stop[1]);
  rusage ru0{}, ru1{};
  getrusage(RUSAGE_CHILDREN, &ru0);
  for (pid_t k : kids) {
    if (k <= 0) continue;
    int status = -1;
    pid_t wr = reap(k, 5000, &status);
    CHECKF(wr == k && WIFEXITED(status) && WEXITSTATUS(status) == 0, "child exit status %#x", status);
  }
  getrusage(RUSAGE_CHILDREN, &ru1);
  auto ms_of = [](const timeval& a, const timeval& b) { return (b.tv_sec - a.tv_sec) * 1000 + (b.tv_usec - a.tv_usec) / 1000; };
  long cpu = ms_of(ru0.ru_utime, ru1.ru_utime) + ms_of(ru0.ru_stime, ru1.ru_stime);
  note(fmt("the children used %ld ms of CPU", cpu));
  // They idled at least half a second: a child woken by wakes it cannot
  // clear (the parent's) would spin through all of it.
  CHECKF(cpu < 300, "the children used %ld ms of CPU (spinning in epoll_wait?)", cpu);
  collect("(everything)", 200);
  CHECKF(rep.find("ERR") == std::string::npos, "child reports: %s", rep.c_str());

  step("the parent's own epoll_wait on the instance");
  CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, stop[0], nullptr) == 0);
  usleep(200000);
  peer_ok("SENDHEX epf 5050");
  epoll_event evs[8];
  int n = ep_wait(ep, evs, 8, 3000);
  CHECKF(n >= 1 && has_ev(evs, n, 2, EPOLLIN), "parent epoll_wait: %s", rcs(n, errno).c_str());
  for (int i = 0; i < n; ++i) CHECKF(evs[i].data.u64 == 2, "parent epoll_wait: %s", evlist(evs, n).c_str());
  char b[2];
  CHECKF(read_exact(d, b, 2, 3000) == 2 && memcmp(b, "PP", 2) == 0, "parent reads the connection");
}

// ---------------------------------------------------------------- case 16
// posix_spawn, posix_spawnp and system with an inherited connection: the
// spawned program (the connection dup2'd onto its stdin/stdout by file
// actions, or left open across system()) reads, writes and asks getpeername;
// a spawn of a missing program fails with ENOENT and leaves no child.
void case_spawn() {
  Closer cl;
  int s = cl.add(open_data("spawn"));
  if (!CHECKF(s >= 0, "open_data: %s", ename(errno))) return;
  char self[512];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (!CHECKF(n > 0, "readlink /proc/self/exe: %s", ename(errno))) return;
  self[n] = 0;

  step("posix_spawn with dup2 onto 0 and 1");
  fflush(stdout);
  posix_spawn_file_actions_t fa;
  CHECK(posix_spawn_file_actions_init(&fa) == 0);
  CHECK(posix_spawn_file_actions_adddup2(&fa, s, 0) == 0);
  CHECK(posix_spawn_file_actions_adddup2(&fa, s, 1) == 0);
  char a0[] = "shim_conformance", a1[] = "--exec-child";
  std::string peer = g_peer;
  char* argv[] = {a0, a1, peer.data(), nullptr};
  pid_t pid = -1;
  int rc = posix_spawn(&pid, self, &fa, nullptr, argv, environ);
  if (CHECKF(rc == 0, "posix_spawn: %s", ename(rc))) {
    peer_ok("SENDHEX spawn 6162");
    std::string got = peer_read("spawn", 3, 5000);
    CHECKF(got == "data " + hex_of("Xab"), "peer read from the spawned program '%s'", got.c_str());
    int status = -1;
    pid_t wr = reap(pid, 5000, &status);
    CHECKF(wr == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
           "spawned program exit status %#x (3 getpeername, 4 getsockname, 5 SO_TYPE, 6 read, 7 write)", status);
  }

  step("posix_spawnp of sh with a signal mask attribute");
  posix_spawn_file_actions_t fa2;
  CHECK(posix_spawn_file_actions_init(&fa2) == 0);
  CHECK(posix_spawn_file_actions_adddup2(&fa2, s, 1) == 0);
  posix_spawnattr_t attr;
  CHECK(posix_spawnattr_init(&attr) == 0);
  sigset_t none;
  sigemptyset(&none);
  CHECK(posix_spawnattr_setsigmask(&attr, &none) == 0);
  CHECK(posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK) == 0);
  char sh[] = "sh", dc[] = "-c", cmd[] = "printf Z";
  char* sargv[] = {sh, dc, cmd, nullptr};
  rc = posix_spawnp(&pid, "sh", &fa2, &attr, sargv, environ);
  if (CHECKF(rc == 0, "posix_spawnp: %s", ename(rc))) {
    std::string got = peer_read("spawn", 1, 5000);
    CHECKF(got == "data " + hex_of("Z"), "peer read from sh '%s'", got.c_str());
    int status = -1;
    pid_t wr = reap(pid, 5000, &status);
    CHECKF(wr == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0, "sh exit status %#x", status);
  }
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&fa2);

  step("system with the connection open on fd 7");
  fflush(stdout);
  CHECK(dup2(s, 7) == 7);
  int st = system("printf Y >&7");
  close(7);
  CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "system status %#x", st);
  std::string got = peer_read("spawn", 1, 5000);
  CHECKF(got == "data " + hex_of("Y"), "peer read from system's shell '%s'", got.c_str());

  step("popen with the connection open on fd 7");
  fflush(stdout);
  CHECK(dup2(s, 7) == 7);
  FILE* f = popen("printf Q >&7; printf out", "r");
  close(7);
  if (CHECKF(f != nullptr, "popen: %s", ename(errno))) {
    char pb[16] = {};
    size_t pn = fread(pb, 1, sizeof pb - 1, f);
    CHECKF(pn == 3 && memcmp(pb, "out", 3) == 0, "popen's pipe gave '%s'", pb);
    st = pclose(f);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "pclose status %#x", st);
  }
  got = peer_read("spawn", 1, 5000);
  CHECKF(got == "data " + hex_of("Q"), "peer read from popen's shell '%s'", got.c_str());

  step("posix_spawn of a missing program");
  pid = -1;
  char missing[] = "/nonexistent/xs-spawn";
  char* margv[] = {missing, nullptr};
  rc = posix_spawn(&pid, missing, &fa, nullptr, margv, environ);
  CHECKF(rc == ENOENT, "posix_spawn of a missing program: %s (expected ENOENT)", ename(rc));
  rc = posix_spawnp(&pid, "xs-no-such-program", &fa, nullptr, margv, environ);
  CHECKF(rc == ENOENT, "posix_spawnp of a missing program: %s (expected ENOENT)", ename(rc));
  int status = 0;
  pid_t wr = waitpid(-1, &status, WNOHANG);
  CHECKF(wr <= 0, "a child is left after the failed spawn: waitpid -> %d", static_cast<int>(wr));
  posix_spawn_file_actions_destroy(&fa);

  step("parent: the connection survives");
  CHECK(send_str(s, "P"));
  got = peer_read("spawn", 1);
  CHECKF(got == "data " + hex_of("P"), "peer read '%s'", got.c_str());
}

const Case kCases[] = {
    {1, "epoll over a pipe and a socket (LT, ET, ONESHOT, RDHUP, timeouts)", case_epoll_mixed, 30},
    {2, "epoll: two threads on one fd, nested epoll", case_epoll_threads_nested, 30},
    {3, "poll and select over a pipe and a socket", case_poll_select, 30},
    {4, "EINTR and SA_RESTART", case_eintr, 30},
    {5, "dup, dup2, dup3, F_DUPFD_CLOEXEC", case_dup, 45},
    {6, "O_NONBLOCK, FIONBIO, FIONREAD", case_nonblock, 20},
    {7, "kernel fallback: AF_UNIX, 127.0.0.1 TCP/UDP, ::1", case_fallback, 20},
    {8, "sendfile to a connected socket", case_sendfile, 45},
    {9, "fork: child's kernel fds, new sockets, inherited socket", case_fork, 40},
    {10, "getsockname / getpeername", case_names, 20},
    {11, "grandchild on an inherited connection; interface ioctls", case_grandchild_ioctl, 30},
    {12, "exec with an inherited connection on stdin/stdout (inetd style)", case_exec, 30},
    {13, "UDP socket inherited across fork", case_udp_fork, 30},
    {14, "a child that only looks at an inherited connection takes none of its data", case_child_looks_only, 30},
    {15, "epoll made before fork: children wait and accept on it", case_epoll_fork, 45},
    {16, "posix_spawn, posix_spawnp, system, popen with an inherited connection", case_spawn, 40},
};

void watchdog() {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  for (;;) {
    usleep(100000);
    int64_t d = g_deadline_ms.load();
    if (d != 0 && now_ms() > d) {
      printf("FAIL - case %d: TIMEOUT (hung in step '%s')\n", g_case_no.load(), g_step);
      printf("summary: mode=%s aborted by the watchdog\n", g_xstack ? "xstack" : "kernel");
      fflush(stdout);
      _exit(1);
    }
  }
}

int usage() {
  fprintf(stderr,
          "usage: shim_conformance --mode kernel|xstack --local IP --peer IP --port P [--only N[,N...]]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--exec-child") return exec_child_main(argv[2]);
  std::string mode, only;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) return usage();
    if (a == "--mode") mode = argv[++i];
    else if (a == "--local") g_local = argv[++i];
    else if (a == "--peer") g_peer = argv[++i];
    else if (a == "--port") g_port = atoi(argv[++i]);
    else if (a == "--only") only = "," + std::string(argv[++i]) + ",";
    else return usage();
  }
  if ((mode != "kernel" && mode != "xstack") || g_local.empty() || g_peer.empty() || g_port <= 0) return usage();
  g_xstack = mode == "xstack";
  setvbuf(stdout, nullptr, _IOLBF, 0);
  signal(SIGPIPE, SIG_IGN);
  std::thread(watchdog).detach();

  printf("# shim_conformance: mode %s, local %s, peer %s:%d%s\n", mode.c_str(), g_local.c_str(), g_peer.c_str(),
         g_port, getenv("LD_PRELOAD") ? (std::string(", LD_PRELOAD ") + getenv("LD_PRELOAD")).c_str() : "");
  g_deadline_ms = now_ms() + 20000;
  step("control connection");
  g_ctl = tcp_connect(g_peer, g_port, 10000);
  if (g_ctl < 0 || !send_str(g_ctl, "CTL\n")) {
    printf("FAIL - control connection to %s:%d: %s\n", g_peer.c_str(), g_port, ename(errno));
    return 1;
  }
  int passed = 0, failed = 0;
  std::string failed_list;
  for (const Case& c : kCases) {
    if (!only.empty() && only.find("," + std::to_string(c.no) + ",") == std::string::npos) continue;
    g_case_no = c.no;
    g_case_failures = 0;
    step("start");
    g_deadline_ms = now_ms() + c.budget_s * 1000;
    int64_t t0 = now_ms();
    c.fn();
    g_deadline_ms = 0;
    if (g_case_failures == 0) {
      ++passed;
      printf("ok   - case %d: %s (%lld ms)\n", c.no, c.name, (long long)(now_ms() - t0));
    } else {
      ++failed;
      failed_list += " " + std::to_string(c.no);
      printf("FAIL - case %d: %s (%d check(s) failed)\n", c.no, c.name, g_case_failures);
    }
  }
  ctl("QUIT", 2000);
  close(g_ctl);
  printf("summary: mode=%s passed=%d failed=%d%s%s\n", mode.c_str(), passed, failed, failed ? " failed_cases=" : "",
         failed_list.c_str());
  return failed == 0 ? 0 : 1;
}
