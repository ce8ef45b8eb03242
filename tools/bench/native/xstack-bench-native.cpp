// xstack-bench-native: benchmark workloads written once against a small
// socket-ops abstraction, instantiated for kernel sockets and for xstack's
// native API (socketapi/xstack.h). Running the kernel build of a workload
// under tools/xstack-run gives the LD_PRELOAD shim figure for the same,
// unmodified program.
//
//   xstack-bench-native server --api kernel|xstack --workload W [--port P]
//                       [--bind IP] [--size B] [--busy] [--seconds LIFETIME]
//   xstack-bench-native client --api kernel|xstack --workload W
//                       --connect IP:PORT [--size B] [--streams N]
//                       [--count N] [--seconds S] [--warmup N] [--busy]
//
// Workloads (W):
//   pingpong-tcp  one connection, SIZE-byte request echoed back; the client
//                 checks every echoed byte and records the round trip.
//   pingpong-udp  the same over UDP (a lost datagram is counted after 200 ms
//                 and the next one is sent).
//   msgrate       one connection, SIZE-byte messages one send() each, as fast
//                 as possible for S seconds; the server counts the bytes and
//                 returns the total after EOF (checked against what was sent).
//   bulk          STREAMS connections, SIZE-byte sends (default 64 KiB),
//                 nonblocking, epoll; same byte-count check per stream.
//   connrate      connect, SIZE-byte request, SIZE-byte response, the server
//                 closes, the client reads EOF and closes: one per loop.
// The xstack API takes its configuration from XSTACK_IF, XSTACK_ADDR,
// XSTACK_MODE (see socketapi/xstack.h).
//
// --busy: receive with MSG_DONTWAIT in a loop and epoll_wait with timeout 0
// (a spinning kernel-socket program, to compare fairly with xstack busy-poll;
// with --api xstack the stack's own mode decides how a blocked call waits).
//
// The client prints one JSON line; the server prints {"ready":...} once it
// listens, and a JSON line with its CPU time when it gets SIGTERM/SIGINT or
// its lifetime ends. CPU time is getrusage(RUSAGE_SELF) (all threads, so the
// stack's progress thread is included).
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "socketapi/xstack.h"

namespace {

// ---- socket operations --------------------------------------------------------
struct KernelOps {
  static constexpr const char* kName = "kernel";
  static int socket(int d, int t, int p) { return ::socket(d, t, p); }
  static int bind(int fd, const sockaddr* a, socklen_t l) { return ::bind(fd, a, l); }
  static int listen(int fd, int b) { return ::listen(fd, b); }
  static int accept4(int fd, sockaddr* a, socklen_t* l, int f) { return ::accept4(fd, a, l, f); }
  static int connect(int fd, const sockaddr* a, socklen_t l) { return ::connect(fd, a, l); }
  static ssize_t send(int fd, const void* b, size_t n, int f) { return ::send(fd, b, n, f); }
  static ssize_t recv(int fd, void* b, size_t n, int f) { return ::recv(fd, b, n, f); }
  static ssize_t sendto(int fd, const void* b, size_t n, int f, const sockaddr* a, socklen_t l) {
    return ::sendto(fd, b, n, f, a, l);
  }
  static ssize_t recvfrom(int fd, void* b, size_t n, int f, sockaddr* a, socklen_t* l) {
    return ::recvfrom(fd, b, n, f, a, l);
  }
  static int setsockopt(int fd, int lv, int nm, const void* v, socklen_t l) { return ::setsockopt(fd, lv, nm, v, l); }
  static int shutdown(int fd, int how) { return ::shutdown(fd, how); }
  static int close(int fd) { return ::close(fd); }
  static int set_nonblock(int fd) {
    const int fl = ::fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : ::fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  }
  static int set_blocking(int fd) {
    const int fl = ::fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : ::fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  }
  static int epoll_create1(int f) { return ::epoll_create1(f); }
  static int epoll_ctl(int ep, int op, int fd, epoll_event* ev) { return ::epoll_ctl(ep, op, fd, ev); }
  static int epoll_wait(int ep, epoll_event* evs, int n, int t) { return ::epoll_wait(ep, evs, n, t); }
};

struct XsOps {
  static constexpr const char* kName = "xstack";
  static int socket(int d, int t, int p) { return xs_socket(d, t, p); }
  static int bind(int fd, const sockaddr* a, socklen_t l) { return xs_bind(fd, a, l); }
  static int listen(int fd, int b) { return xs_listen(fd, b); }
  static int accept4(int fd, sockaddr* a, socklen_t* l, int f) { return xs_accept4(fd, a, l, f); }
  static int connect(int fd, const sockaddr* a, socklen_t l) { return xs_connect(fd, a, l); }
  static ssize_t send(int fd, const void* b, size_t n, int f) { return xs_send(fd, b, n, f); }
  static ssize_t recv(int fd, void* b, size_t n, int f) { return xs_recv(fd, b, n, f); }
  static ssize_t sendto(int fd, const void* b, size_t n, int f, const sockaddr* a, socklen_t l) {
    return xs_sendto(fd, b, n, f, a, l);
  }
  static ssize_t recvfrom(int fd, void* b, size_t n, int f, sockaddr* a, socklen_t* l) {
    return xs_recvfrom(fd, b, n, f, a, l);
  }
  static int setsockopt(int fd, int lv, int nm, const void* v, socklen_t l) { return xs_setsockopt(fd, lv, nm, v, l); }
  static int shutdown(int fd, int how) { return xs_shutdown(fd, how); }
  static int close(int fd) { return xs_close(fd); }
  static int set_nonblock(int fd) {
    const int fl = xs_fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : xs_fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  }
  static int set_blocking(int fd) {
    const int fl = xs_fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : xs_fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  }
  static int epoll_create1(int f) { return xs_epoll_create1(f); }
  static int epoll_ctl(int ep, int op, int fd, epoll_event* ev) { return xs_epoll_ctl(ep, op, fd, ev); }
  static int epoll_wait(int ep, epoll_event* evs, int n, int t) { return xs_epoll_wait(ep, evs, n, t); }
};

// ---- options, time, output -------------------------------------------------------
struct Options {
  std::string role, api = "kernel", workload = "pingpong-tcp", bind_ip = "0.0.0.0", connect;
  size_t size = 0;  // 0: workload default
  int streams = 1;
  long count = 0;
  double seconds = 0;  // client: run time; server: lifetime
  long warmup = -1;
  uint16_t port = 7000;
  bool busy = false;
  bool spin_send = false;  // msgrate/bulk: finish with nonblocking send/recv retry loops (see usage)
};

using Clock = std::chrono::steady_clock;
inline double secs_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double cpu_now() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "xstack-bench-native: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

bool parse_endpoint(const std::string& s, sockaddr_in* out) {
  const auto colon = s.rfind(':');
  if (colon == std::string::npos) return false;
  *out = {};
  out->sin_family = AF_INET;
  out->sin_port = htons(uint16_t(std::atoi(s.c_str() + colon + 1)));
  return inet_pton(AF_INET, s.substr(0, colon).c_str(), &out->sin_addr) == 1;
}

// Pattern of message i: its index in the first 8 bytes, then bytes derived from it.
void fill_msg(uint8_t* b, size_t n, uint64_t i) {
  for (size_t k = 0; k < n; ++k) b[k] = uint8_t((i * 131 + k * 7 + 1) & 0xff);
  if (n >= 8) std::memcpy(b, &i, 8);
}

constexpr int kIoTimeoutS = 10;

// Blocking-or-spinning helpers. They return false on error/timeout/EOF
// (eof set when the peer closed).
template <class Ops>
bool send_all(int fd, const uint8_t* b, size_t n, bool spin) {
  const auto deadline = Clock::now() + std::chrono::seconds(kIoTimeoutS);
  size_t off = 0;
  unsigned spins = 0;
  while (off < n) {
    const ssize_t r = Ops::send(fd, b + off, n - off, MSG_NOSIGNAL | (spin ? MSG_DONTWAIT : 0));
    if (r > 0) {
      off += size_t(r);
      continue;
    }
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      if ((++spins & 1023) == 0 && Clock::now() > deadline) return false;
      continue;
    }
    return false;
  }
  return true;
}

template <class Ops>
bool recv_exact(int fd, uint8_t* b, size_t n, bool spin, bool* eof) {
  const auto deadline = Clock::now() + std::chrono::seconds(kIoTimeoutS);
  size_t got = 0;
  unsigned spins = 0;
  *eof = false;
  while (got < n) {
    const ssize_t r = Ops::recv(fd, b + got, n - got, spin ? MSG_DONTWAIT : 0);
    if (r > 0) {
      got += size_t(r);
      continue;
    }
    if (r == 0) {
      *eof = true;
      return false;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      if ((++spins & 1023) == 0 && Clock::now() > deadline) return false;
      if (!spin && errno != EINTR) return false;  // SO_RCVTIMEO expired
      continue;
    }
    return false;
  }
  return true;
}

template <class Ops>
void set_timeouts(int fd, int ms) {
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  Ops::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);  // best effort
  Ops::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

template <class Ops>
int tcp_connect(const sockaddr_in& to, bool nodelay, bool spin) {
  const int fd = Ops::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  set_timeouts<Ops>(fd, kIoTimeoutS * 1000);
  if (Ops::connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) < 0) {
    const int e = errno;
    Ops::close(fd);
    errno = e;
    return -1;
  }
  if (nodelay) {
    const int one = 1;
    Ops::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  if (spin && Ops::set_nonblock(fd) < 0) {
    Ops::close(fd);
    return -1;
  }
  return fd;
}

struct Json {
  std::string s = "{";
  void sep() {
    if (s.size() > 1) s += ",";
  }
  Json& str(const char* k, const std::string& v) {
    sep();
    s += "\"" + std::string(k) + "\":\"" + v + "\"";
    return *this;
  }
  Json& num(const char* k, double v) {
    sep();
    char b[64];
    if (v != v) std::snprintf(b, sizeof b, "null");
    else std::snprintf(b, sizeof b, "%.6g", v);
    s += "\"" + std::string(k) + "\":" + b;
    return *this;
  }
  Json& raw(const char* k, const std::string& v) {
    sep();
    s += "\"" + std::string(k) + "\":" + v;
    return *this;
  }
  void print() {
    s += "}";
    std::printf("%s\n", s.c_str());
    std::fflush(stdout);
  }
};

// One-way latency percentiles (RTT/2) in microseconds, from RTT samples in ns.
std::string percentiles(std::vector<uint64_t>& rtt_ns) {
  if (rtt_ns.empty()) return "{}";
  std::sort(rtt_ns.begin(), rtt_ns.end());
  static const double kP[] = {0, 1, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 100};
  std::string s = "{";
  for (double p : kP) {
    size_t idx = size_t(p / 100.0 * double(rtt_ns.size() - 1) + 0.5);
    idx = std::min(idx, rtt_ns.size() - 1);
    char b[96];
    std::snprintf(b, sizeof b, "%s\"%g\":%.3f", s.size() > 1 ? "," : "", p, double(rtt_ns[idx]) / 2e3);
    s += b;
  }
  return s + "}";
}

Json base_json(const Options& o, const char* api) {
  Json j;
  j.str("role", o.role).str("api", api).str("workload", o.workload);
  j.num("size", double(o.size)).num("streams", o.streams).num("busy", o.busy ? 1 : 0);
  return j;
}

bool time_up(const Options& o, long done, Clock::time_point t0) {
  if (g_stop) return true;
  if (o.count > 0 && done >= o.count) return true;
  if (o.seconds > 0 && secs_since(t0) >= o.seconds) return true;
  return false;
}

// ---- client workloads -------------------------------------------------------------
template <class Ops>
int client_pingpong_tcp(const Options& o, const sockaddr_in& to) {
  const int fd = tcp_connect<Ops>(to, true, o.busy);
  if (fd < 0) die("connect");
  std::vector<uint8_t> out(o.size), in(o.size);
  std::vector<uint64_t> rtt;
  rtt.reserve(o.count > 0 ? size_t(o.count) : 1u << 20);
  long bad = 0, i = 0;
  bool eof = false;
  const long warm = o.warmup;
  Clock::time_point t0 = Clock::now();
  double cpu0 = cpu_now();
  for (;; ++i) {
    if (i == warm) {
      t0 = Clock::now();
      cpu0 = cpu_now();
    }
    if (i >= warm && time_up(o, i - warm, t0)) break;
    fill_msg(out.data(), o.size, uint64_t(i));
    const auto a = Clock::now();
    if (!send_all<Ops>(fd, out.data(), o.size, o.busy) || !recv_exact<Ops>(fd, in.data(), o.size, o.busy, &eof)) {
      std::fprintf(stderr, "xstack-bench-native: ping-pong %ld failed (%s)\n", i, eof ? "EOF" : std::strerror(errno));
      return 1;
    }
    const auto b = Clock::now();
    if (std::memcmp(out.data(), in.data(), o.size) != 0) ++bad;
    if (i >= warm && rtt.size() < (32u << 20)) rtt.push_back(uint64_t(std::chrono::nanoseconds(b - a).count()));
  }
  const double el = secs_since(t0), cpu = cpu_now() - cpu0;
  Ops::close(fd);
  const long n = i - warm;
  Json j = base_json(o, Ops::kName);
  j.num("ops", double(n)).num("elapsed_s", el).num("ops_per_s", n / el).num("cpu_s", cpu);
  j.num("cpu_us_per_op", cpu / double(n) * 1e6).num("corrupt", double(bad));
  j.raw("oneway_us", percentiles(rtt));
  j.print();
  if (bad) std::fprintf(stderr, "xstack-bench-native: %ld echoes differ from what was sent\n", bad);
  return bad ? 2 : 0;
}

template <class Ops>
int client_pingpong_udp(const Options& o, const sockaddr_in& to) {
  const int fd = Ops::socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) die("socket");
  set_timeouts<Ops>(fd, 200);
  if (o.busy && Ops::set_nonblock(fd) < 0) die("nonblock");
  std::vector<uint8_t> out(o.size), in(o.size + 64);
  std::vector<uint64_t> rtt;
  rtt.reserve(o.count > 0 ? size_t(o.count) : 1u << 20);
  long bad = 0, lost = 0, i = 0;
  const long warm = o.warmup;
  Clock::time_point t0 = Clock::now();
  double cpu0 = cpu_now();
  const auto* sa = reinterpret_cast<const sockaddr*>(&to);
  for (;; ++i) {
    if (i == warm) {
      t0 = Clock::now();
      cpu0 = cpu_now();
    }
    if (i >= warm && time_up(o, i - warm, t0)) break;
    if (lost > 1000) {
      std::fprintf(stderr, "xstack-bench-native: more than 1000 datagrams lost, giving up\n");
      return 1;
    }
    fill_msg(out.data(), o.size, uint64_t(i));
    const auto a = Clock::now();
    const auto deadline = a + std::chrono::milliseconds(200);
    if (Ops::sendto(fd, out.data(), o.size, 0, sa, sizeof to) != ssize_t(o.size)) die("sendto");
    bool got = false;
    unsigned spins = 0;
    while (!got) {
      const ssize_t r = Ops::recvfrom(fd, in.data(), in.size(), o.busy ? MSG_DONTWAIT : 0, nullptr, nullptr);
      if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
          if ((!o.busy && errno != EINTR) || ((++spins & 255) == 0 && Clock::now() > deadline)) break;
          continue;
        }
        die("recvfrom");
      }
      uint64_t seq = ~0ull;
      if (r >= 8) std::memcpy(&seq, in.data(), 8);
      if (seq != uint64_t(i)) continue;  // a late echo of a datagram counted lost
      got = true;
      if (size_t(r) != o.size || std::memcmp(out.data(), in.data(), o.size) != 0) ++bad;
    }
    if (!got) {
      ++lost;
      continue;
    }
    const auto b = Clock::now();
    if (i >= warm && rtt.size() < (32u << 20)) rtt.push_back(uint64_t(std::chrono::nanoseconds(b - a).count()));
  }
  const double el = secs_since(t0), cpu = cpu_now() - cpu0;
  const uint8_t end = 'E';
  for (int k = 0; k < 3; ++k) Ops::sendto(fd, &end, 1, 0, sa, sizeof to);
  Ops::close(fd);
  const double n = double(rtt.size());
  Json j = base_json(o, Ops::kName);
  j.num("ops", n).num("elapsed_s", el).num("ops_per_s", n / el).num("cpu_s", cpu);
  j.num("cpu_us_per_op", cpu / n * 1e6).num("corrupt", double(bad)).num("lost", double(lost));
  j.raw("oneway_us", percentiles(rtt));
  j.print();
  return bad ? 2 : 0;
}

// msgrate and bulk: o.streams connections, each sending o.size-byte messages.
template <class Ops>
int client_stream(const Options& o, const sockaddr_in& to) {
  const int n = o.streams;
  std::vector<int> fds(n);
  std::vector<uint64_t> sent(n, 0);
  std::vector<size_t> off(n, 0);
  for (int k = 0; k < n; ++k) {
    fds[k] = tcp_connect<Ops>(to, false, true);
    if (fds[k] < 0) die("connect");
  }
  const int ep = Ops::epoll_create1(0);
  if (ep < 0) die("epoll_create1");
  for (int k = 0; k < n; ++k) {
    epoll_event ev{};
    ev.events = EPOLLOUT;
    ev.data.u32 = uint32_t(k);
    if (Ops::epoll_ctl(ep, EPOLL_CTL_ADD, fds[k], &ev) < 0) die("epoll_ctl");
  }
  std::vector<uint8_t> buf(o.size);
  fill_msg(buf.data(), o.size, 0x5a5a);
  std::vector<epoll_event> evs(size_t(n) + 1);
  const auto t0 = Clock::now();
  const double cpu0 = cpu_now();
  long loops = 0;
  while (!time_up(o, 0, t0)) {
    const int m = Ops::epoll_wait(ep, evs.data(), int(evs.size()), o.busy ? 0 : 100);
    if (m < 0 && errno != EINTR) die("epoll_wait");
    for (int e = 0; e < m; ++e) {
      const int k = int(evs[e].data.u32);
      for (int burst = 0; burst < 64; ++burst) {
        const ssize_t r = Ops::send(fds[k], buf.data() + off[k], o.size - off[k], MSG_NOSIGNAL | MSG_DONTWAIT);
        if (r > 0) {
          sent[k] += uint64_t(r);
          off[k] = (off[k] + size_t(r)) % o.size;
          continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) break;
        die("send");
      }
    }
    ++loops;
  }
  const double send_el = secs_since(t0);
  // Finish partial messages, then EOF; each server side answers its byte count.
  // Unless --busy (kernel spinning) or --spin-send, the sockets go back to
  // blocking for this: a blocked call waits as the API's mode says.
  const bool spin_tail = o.busy || o.spin_send;
  int bad = 0;
  uint64_t total = 0;
  for (int k = 0; k < n; ++k) {
    if (!spin_tail && Ops::set_blocking(fds[k]) < 0) die("fcntl");
    if (off[k] && !send_all<Ops>(fds[k], buf.data() + off[k], o.size - off[k], spin_tail)) die("send (tail)");
    if (off[k]) sent[k] += o.size - off[k];
    Ops::shutdown(fds[k], SHUT_WR);
  }
  for (int k = 0; k < n; ++k) {
    uint64_t got = 0;
    bool eof = false;
    if (!recv_exact<Ops>(fds[k], reinterpret_cast<uint8_t*>(&got), 8, spin_tail, &eof)) {
      std::fprintf(stderr, "xstack-bench-native: stream %d: no byte count from the server (%s)\n", k,
                   eof ? "EOF" : std::strerror(errno));
      ++bad;
    } else if (got != sent[k]) {
      std::fprintf(stderr, "xstack-bench-native: stream %d: sent %llu bytes, server received %llu\n", k,
                   (unsigned long long)sent[k], (unsigned long long)got);
      ++bad;
    }
    total += sent[k];
  }
  const double el = secs_since(t0), cpu = cpu_now() - cpu0;
  for (int k = 0; k < n; ++k) Ops::close(fds[k]);
  Ops::close(ep);
  const double msgs = double(total) / double(o.size);
  Json j = base_json(o, Ops::kName);
  j.num("ops", msgs).num("bytes", double(total)).num("elapsed_s", el).num("send_s", send_el);
  j.num("ops_per_s", msgs / el).num("msg_per_s", msgs / el).num("gbit_s", double(total) * 8 / el / 1e9);
  j.num("cpu_s", cpu).num("cpu_us_per_op", cpu / msgs * 1e6).num("cpu_s_per_gb", cpu / (double(total) / 1e9));
  j.num("count_mismatch", bad);
  j.print();
  return bad ? 2 : 0;
}

template <class Ops>
int client_connrate(const Options& o, const sockaddr_in& to) {
  std::vector<uint8_t> req(o.size), resp(o.size);
  std::vector<uint64_t> lat;
  lat.reserve(1u << 20);
  long i = 0, errors = 0, bad = 0;
  const long warm = o.warmup;
  Clock::time_point t0 = Clock::now();
  double cpu0 = cpu_now();
  for (;; ++i) {
    if (i == warm) {
      t0 = Clock::now();
      cpu0 = cpu_now();
    }
    if (i >= warm && time_up(o, i - warm, t0)) break;
    if (errors > 100) {
      std::fprintf(stderr, "xstack-bench-native: more than 100 failed connections, giving up\n");
      return 1;
    }
    fill_msg(req.data(), o.size, uint64_t(i));
    const auto a = Clock::now();
    const int fd = tcp_connect<Ops>(to, true, o.busy);
    if (fd < 0) {
      std::fprintf(stderr, "xstack-bench-native: connect %ld: %s\n", i, std::strerror(errno));
      ++errors;
      continue;
    }
    bool eof = false;
    uint8_t extra;
    bool ok = send_all<Ops>(fd, req.data(), o.size, o.busy) && recv_exact<Ops>(fd, resp.data(), o.size, o.busy, &eof);
    if (ok) {
      // the server closes after its response: wait for EOF (passive close, no TIME_WAIT here)
      ok = !recv_exact<Ops>(fd, &extra, 1, o.busy, &eof) && eof;
    }
    Ops::close(fd);
    if (!ok) {
      std::fprintf(stderr, "xstack-bench-native: connection %ld failed (%s)\n", i, eof ? "EOF" : std::strerror(errno));
      ++errors;
      continue;
    }
    // the server answers the request with its bitwise complement
    for (size_t k = 0; k < o.size; ++k)
      if (uint8_t(~req[k]) != resp[k]) {
        ++bad;
        break;
      }
    const auto b = Clock::now();
    if (i >= warm) lat.push_back(uint64_t(std::chrono::nanoseconds(b - a).count()) * 2);  // *2: percentiles halve
  }
  const double el = secs_since(t0), cpu = cpu_now() - cpu0;
  const double n = double(lat.size());
  Json j = base_json(o, Ops::kName);
  j.num("ops", n).num("elapsed_s", el).num("ops_per_s", n / el).num("cpu_s", cpu);
  j.num("cpu_us_per_op", cpu / n * 1e6).num("errors", double(errors)).num("corrupt", double(bad));
  j.raw("conn_us", percentiles(lat));
  j.print();
  return bad ? 2 : 0;
}

// ---- server ---------------------------------------------------------------------------
template <class Ops>
int server(const Options& o) {
  sockaddr_in me{};
  me.sin_family = AF_INET;
  me.sin_port = htons(o.port);
  if (inet_pton(AF_INET, o.bind_ip.c_str(), &me.sin_addr) != 1) {
    std::fprintf(stderr, "xstack-bench-native: bad --bind %s\n", o.bind_ip.c_str());
    return 2;
  }
  const bool udp = o.workload == "pingpong-udp";
  const int lfd = Ops::socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK, 0);
  if (lfd < 0) die("socket");
  const int one = 1;
  Ops::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (Ops::bind(lfd, reinterpret_cast<sockaddr*>(&me), sizeof me) < 0) die("bind");
  if (!udp && Ops::listen(lfd, 1024) < 0) die("listen");
  const int ep = Ops::epoll_create1(0);
  if (ep < 0) die("epoll_create1");
  epoll_event lev{};
  lev.events = EPOLLIN;
  lev.data.fd = lfd;
  if (Ops::epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0) die("epoll_ctl");
  std::printf("{\"ready\":true,\"api\":\"%s\",\"workload\":\"%s\",\"port\":%u}\n", Ops::kName, o.workload.c_str(),
              unsigned(o.port));
  std::fflush(stdout);

  struct Conn {
    uint64_t rx = 0;
    std::vector<uint8_t> req;  // connrate
  };
  std::unordered_map<int, Conn> conns;
  std::vector<uint8_t> buf(256 * 1024);
  std::vector<epoll_event> evs(256);
  const double cpu_start = cpu_now();
  double cpu_first = -1, cpu_last = -1;
  uint64_t accepted = 0, closed = 0, bytes = 0, datagrams = 0, errors = 0;
  const auto t0 = Clock::now();
  const bool pp = o.workload == "pingpong-tcp", cr = o.workload == "connrate";

  auto close_conn = [&](int fd) {
    Ops::epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
    Ops::close(fd);
    conns.erase(fd);
    ++closed;
    if (conns.empty()) cpu_last = cpu_now();
  };

  while (!g_stop && (o.seconds <= 0 || secs_since(t0) < o.seconds)) {
    const int m = Ops::epoll_wait(ep, evs.data(), int(evs.size()), o.busy ? 0 : 100);
    if (m < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int e = 0; e < m; ++e) {
      const int fd = evs[e].data.fd;
      if (fd == lfd && udp) {
        for (int burst = 0; burst < 64; ++burst) {
          sockaddr_in from{};
          socklen_t fl = sizeof from;
          const ssize_t r = Ops::recvfrom(lfd, buf.data(), buf.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &fl);
          if (r < 0) break;
          if (cpu_first < 0) cpu_first = cpu_now();
          if (r == 1) {  // the client's end marker
            cpu_last = cpu_now();
            continue;
          }
          ++datagrams;
          bytes += uint64_t(r);
          if (Ops::sendto(lfd, buf.data(), size_t(r), 0, reinterpret_cast<sockaddr*>(&from), fl) != r) ++errors;
        }
        continue;
      }
      if (fd == lfd) {
        for (int burst = 0; burst < 64; ++burst) {
          const int c = Ops::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK);
          if (c < 0) break;
          if (cpu_first < 0) cpu_first = cpu_now();
          ++accepted;
          if (pp || cr) Ops::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          epoll_event ev{};
          ev.events = EPOLLIN;
          ev.data.fd = c;
          if (Ops::epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev) < 0) {
            ++errors;
            Ops::close(c);
            continue;
          }
          conns[c] = Conn{};
        }
        continue;
      }
      auto it = conns.find(fd);
      if (it == conns.end()) continue;
      Conn& cn = it->second;
      bool done = false;
      for (int burst = 0; burst < 64 && !done; ++burst) {
        const ssize_t r = Ops::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
        if (r < 0) {
          if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            ++errors;
            done = true;
          }
          break;
        }
        if (r == 0) {
          if (!pp && !cr) {  // msgrate/bulk: answer the byte count
            if (!send_all<Ops>(fd, reinterpret_cast<const uint8_t*>(&cn.rx), 8, true)) ++errors;
          }
          done = true;
          break;
        }
        cn.rx += uint64_t(r);
        bytes += uint64_t(r);
        if (pp) {
          if (!send_all<Ops>(fd, buf.data(), size_t(r), true)) {
            ++errors;
            done = true;
          }
        } else if (cr) {
          cn.req.insert(cn.req.end(), buf.begin(), buf.begin() + r);
          if (cn.req.size() >= o.size) {
            for (auto& b : cn.req) b = uint8_t(~b);
            if (!send_all<Ops>(fd, cn.req.data(), o.size, true)) ++errors;
            done = true;  // the server closes first
          }
        }
      }
      if (done) close_conn(fd);
    }
  }
  const double cpu_end = cpu_now();
  for (auto it = conns.begin(); it != conns.end();) {
    Ops::close(it->first);
    it = conns.erase(it);
  }
  Ops::close(ep);
  Ops::close(lfd);
  if (cpu_first < 0) cpu_first = cpu_start;
  if (cpu_last < cpu_first) cpu_last = cpu_end;
  Json j;
  j.str("role", "server").str("api", Ops::kName).str("workload", o.workload).num("busy", o.busy ? 1 : 0);
  j.num("cpu_s_total", cpu_end - cpu_start).num("cpu_s_active", cpu_last - cpu_first);
  j.num("accepted", double(accepted)).num("closed", double(closed)).num("bytes", double(bytes));
  j.num("datagrams", double(datagrams)).num("errors", double(errors)).num("lifetime_s", secs_since(t0));
  j.print();
  return 0;
}

template <class Ops>
int run(const Options& o) {
  if (o.role == "server") return server<Ops>(o);
  sockaddr_in to{};
  if (!parse_endpoint(o.connect, &to)) {
    std::fprintf(stderr, "xstack-bench-native: client needs --connect IP:PORT\n");
    return 2;
  }
  if (o.workload == "pingpong-tcp") return client_pingpong_tcp<Ops>(o, to);
  if (o.workload == "pingpong-udp") return client_pingpong_udp<Ops>(o, to);
  if (o.workload == "msgrate" || o.workload == "bulk") return client_stream<Ops>(o, to);
  return client_connrate<Ops>(o, to);
}

void usage() {
  std::fprintf(stderr,
               "usage: xstack-bench-native server|client --api kernel|xstack\n"
               "         --workload pingpong-tcp|pingpong-udp|msgrate|bulk|connrate\n"
               "         [--size B] [--streams N] [--count N] [--seconds S] [--warmup N]\n"
               "         [--connect IP:PORT] [--port P] [--bind IP] [--busy] [--spin-send]\n"
               "  --spin-send  msgrate/bulk: send the last partial message and read the\n"
               "               server's byte count with nonblocking calls retried in a loop\n"
               "               (the old behaviour; on xstack it once stalled 10 s)\n");
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (argc < 2) {
    usage();
    return 2;
  }
  o.role = argv[1];
  if (o.role != "server" && o.role != "client") {
    usage();
    return 2;
  }
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) {
        usage();
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--api") o.api = val();
    else if (a == "--workload") o.workload = val();
    else if (a == "--size") o.size = size_t(std::atol(val().c_str()));
    else if (a == "--streams") o.streams = std::atoi(val().c_str());
    else if (a == "--count") o.count = std::atol(val().c_str());
    else if (a == "--seconds") o.seconds = std::atof(val().c_str());
    else if (a == "--warmup") o.warmup = std::atol(val().c_str());
    else if (a == "--connect") o.connect = val();
    else if (a == "--port") o.port = uint16_t(std::atoi(val().c_str()));
    else if (a == "--bind") o.bind_ip = val();
    else if (a == "--busy") o.busy = true;
    else if (a == "--spin-send") o.spin_send = true;
    else {
      usage();
      return 2;
    }
  }
  const std::string& w = o.workload;
  if (w != "pingpong-tcp" && w != "pingpong-udp" && w != "msgrate" && w != "bulk" && w != "connrate") {
    usage();
    return 2;
  }
  if (o.api != "kernel" && o.api != "xstack") {
    usage();
    return 2;
  }
  if (o.size == 0) o.size = w == "bulk" ? 65536 : 64;
  if (w == "pingpong-udp" && (o.size < 8 || o.size > 1472)) {
    std::fprintf(stderr, "xstack-bench-native: UDP size must be 8..1472\n");
    return 2;
  }
  if (o.streams < 1 || o.streams > 64) o.streams = 1;
  if (o.warmup < 0) o.warmup = (w == "connrate") ? 100 : (w == "msgrate" || w == "bulk") ? 0 : 1000;
  if (o.role == "client" && o.seconds <= 0 && (o.count <= 0 || w == "msgrate" || w == "bulk")) o.seconds = 5;
  if (o.role == "server" && o.seconds <= 0) o.seconds = 600;  // bounded lifetime
  struct sigaction sa {};
  sa.sa_handler = on_signal;  // no SA_RESTART: a blocked call ends with EINTR
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return o.api == "kernel" ? run<KernelOps>(o) : run<XsOps>(o);
}
