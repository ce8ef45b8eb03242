// xstack-peer options and workloads (see xstack_peer.cpp for usage).
#include "tools/peer/peer.hpp"

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <list>
#include <thread>
#include <vector>

#include "tools/peer/backend.hpp"

namespace xs::peer {

namespace {

std::atomic<bool> g_stop{false};
void on_term(int) { g_stop = true; }

bool parse_endpoint(const std::string& s, Endpoint* out) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos) return false;
  if (!Ipv4Addr::parse(s.substr(0, colon).c_str(), &out->addr)) return false;
  out->port = static_cast<uint16_t>(std::strtoul(s.c_str() + colon + 1, nullptr, 10));
  return out->port != 0;
}

bool parse_cidr(const std::string& s, Ipv4Cidr* out) {
  auto slash = s.find('/');
  if (slash == std::string::npos) return false;
  if (!Ipv4Addr::parse(s.substr(0, slash).c_str(), &out->addr)) return false;
  int len = std::atoi(s.c_str() + slash + 1);
  if (len < 1 || len > 32) return false;
  out->prefix_len = static_cast<uint8_t>(len);
  return true;
}

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

double now_seconds() { return double(Engine::clock_now().us) / 1e6; }

// ---- workloads -------------------------------------------------------------

void echo_connection(std::unique_ptr<Conn> c, const Options& o) {
  if (o.ka_idle > 0) c->set_keepalive(o.ka_idle, o.ka_interval, o.ka_count);
  std::vector<uint8_t> buf(1 << 16);
  while (!g_stop) {
    long n = c->recv(MutBytes(buf.data(), buf.size()), millis(200));
    if (n == kTimeout) continue;
    if (n <= 0) break;
    if (c->send_all(Bytes(buf.data(), size_t(n))) < 0) break;
  }
  c->shutdown_write();
}

int serve(Backend& b, const Options& o) {
  std::unique_ptr<Listener> l;
  std::unique_ptr<Datagram> d;
  if (o.tcp_port && !(l = b.listen(o.tcp_port))) return 1;
  if (o.udp_port && !(d = b.udp_bind(o.udp_port))) return 1;
  std::printf("ready\n");
  std::fflush(stdout);
  double end = o.seconds > 0 ? now_seconds() + o.seconds : 1e300;
  std::list<std::thread> threads;
  std::thread udp;
  if (d) {
    udp = std::thread([&] {
      std::vector<uint8_t> buf(65536);
      while (!g_stop) {
        Endpoint from;
        long n = d->recv_from(MutBytes(buf.data(), buf.size()), &from, millis(200));
        if (n >= 0) d->send_to(Bytes(buf.data(), size_t(n)), from);
      }
    });
  }
  while (!g_stop && now_seconds() < end) {
    if (!l) {
      usleep(100000);
      continue;
    }
    // In spin/busy-poll modes a blocked accept spins like every waiter; the
    // echo threads must have the core to themselves, so the accept loop
    // looks now and then instead (the kernel back end sleeps in poll()).
    const bool spinning = !o.kernel && o.poll != PollMode::Interrupt;
    auto c = l->accept(spinning ? Duration{0} : millis(200));
    if (c) threads.emplace_back(echo_connection, std::move(c), std::cref(o));
    else if (spinning) usleep(20000);
  }
  g_stop = true;
  for (auto& t : threads) t.join();
  if (udp.joinable()) udp.join();
  b.print_stats();
  return 0;
}

int tcp_echo_client(Backend& b, const Options& o) {
  double t0 = now_seconds();
  auto c = b.connect(*o.connect, seconds(10));
  if (!c) return 1;
  std::atomic<bool> send_failed{false};
  std::thread sender([&] {
    std::vector<uint8_t> buf(1 << 16);
    for (uint64_t off = 0; off < o.bytes;) {
      size_t n = size_t(std::min<uint64_t>(buf.size(), o.bytes - off));
      for (size_t i = 0; i < n; ++i) buf[i] = pattern_byte(off + i);
      if (c->send_all(Bytes(buf.data(), n)) < 0) {
        send_failed = true;
        return;
      }
      off += n;
    }
    c->shutdown_write();
  });
  std::vector<uint8_t> buf(1 << 16);
  uint64_t got = 0;
  uint64_t hash = 0xcbf29ce484222325ull;  // FNV-1a of the echoed stream
  bool mismatch = false;
  for (;;) {
    long n = c->recv(MutBytes(buf.data(), buf.size()), seconds(30));
    if (n <= 0) {
      if (n < 0) std::fprintf(stderr, "xstack-peer: receive failed after %" PRIu64 " bytes\n", got);
      break;
    }
    for (long i = 0; i < n; ++i) {
      uint8_t v = buf[size_t(i)];
      if (!mismatch && v != pattern_byte(got + uint64_t(i))) {
        std::fprintf(stderr, "xstack-peer: echo differs at byte %" PRIu64 "\n", got + uint64_t(i));
        mismatch = true;
      }
      hash = (hash ^ v) * 0x100000001b3ull;
    }
    got += uint64_t(n);
  }
  sender.join();
  double secs = now_seconds() - t0;
  b.print_stats();
  if (send_failed || mismatch || got != o.bytes) {
    std::fprintf(stderr, "xstack-peer: FAIL echoed %" PRIu64 " of %" PRIu64 " bytes\n", got, o.bytes);
    return 1;
  }
  std::printf("ok %" PRIu64 " bytes each way in %.2f s (%.1f MB/s each way), fnv1a %016" PRIx64 "\n", got, secs,
              double(got) / secs / 1e6, hash);
  return 0;
}

int udp_echo_client(Backend& b, const Options& o) {
  auto d = b.udp_bind(0);
  if (!d) return 1;
  std::vector<uint8_t> msg, buf(65536);
  for (uint64_t i = 0; i < o.count; ++i) {
    msg.assign(1 + (i * 37) % 1400, 0);
    for (size_t k = 0; k < msg.size(); ++k) msg[k] = pattern_byte(i * 7919 + k);
    bool ok = false;
    // The first datagram may wait for ARP; a lost one is retried twice.
    for (int attempt = 0; attempt < 3 && !ok; ++attempt) {
      if (d->send_to(Bytes(msg.data(), msg.size()), *o.connect) < 0) return 1;
      Endpoint from;
      long n = d->recv_from(MutBytes(buf.data(), buf.size()), &from, seconds(1));
      ok = n == long(msg.size()) && std::memcmp(buf.data(), msg.data(), msg.size()) == 0 && from == *o.connect;
    }
    if (!ok) {
      std::fprintf(stderr, "xstack-peer: FAIL datagram %" PRIu64 " not echoed\n", i);
      return 1;
    }
  }
  std::printf("ok %" PRIu64 " datagrams echoed\n", o.count);
  return 0;
}

// Holds one idle connection with keepalive and reports the CPU it used.
int idle(Backend& b, const Options& o) {
  auto c = b.connect(*o.connect, seconds(10));
  if (!c) return 1;
  if (o.ka_idle > 0) c->set_keepalive(o.ka_idle, o.ka_interval, o.ka_count);
  double cpu0 = cpu_seconds(), t0 = now_seconds();
  while (!g_stop && now_seconds() - t0 < o.seconds) usleep(50000);
  double cpu = cpu_seconds() - cpu0, wall = now_seconds() - t0;
  std::printf("idle %.2f s, cpu %.4f s (%.3f%%)\n", wall, cpu, 100.0 * cpu / wall);
  b.print_stats();
  return 0;
}

int pingpong(Backend& b, const Options& o) {
  auto c = b.connect(*o.connect, seconds(10));
  if (!c) return 1;
  std::vector<uint8_t> msg(o.size, 0x5a), buf(o.size);
  std::vector<double> rtt_us;
  rtt_us.reserve(o.count);
  uint64_t warmup = std::max<uint64_t>(o.count / 10, 100);
  for (uint64_t i = 0; i < o.count + warmup; ++i) {
    timespec a, z;
    clock_gettime(CLOCK_MONOTONIC, &a);
    if (c->send_all(Bytes(msg.data(), msg.size())) < 0) return 1;
    for (size_t got = 0; got < msg.size();) {
      long n = c->recv(MutBytes(buf.data() + got, buf.size() - got), seconds(5));
      if (n <= 0) {
        std::fprintf(stderr, "xstack-peer: pingpong reply missing at %" PRIu64 "\n", i);
        return 1;
      }
      got += size_t(n);
    }
    clock_gettime(CLOCK_MONOTONIC, &z);
    if (i >= warmup) rtt_us.push_back(double(z.tv_sec - a.tv_sec) * 1e6 + double(z.tv_nsec - a.tv_nsec) / 1e3);
  }
  std::sort(rtt_us.begin(), rtt_us.end());
  auto pct = [&](double p) { return rtt_us[std::min(rtt_us.size() - 1, size_t(p * double(rtt_us.size())))]; };
  // One-way latency is half the round trip (the convention sockperf uses).
  std::printf("pingpong size=%u n=%zu oneway_p50_us=%.2f oneway_p99_us=%.2f oneway_p999_us=%.2f\n", o.size,
              rtt_us.size(), pct(0.5) / 2, pct(0.99) / 2, pct(0.999) / 2);
  b.print_stats();
  return 0;
}

}  // namespace

bool parse_options(int argc, char** argv, Options* o, std::string* err) {
  if (argc < 2) {
    *err = "missing mode";
    return false;
  }
  o->mode = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) return {};
      return argv[++i];
    };
    if (a == "--if") o->ifname = value();
    else if (a == "--addr") {
      Ipv4Cidr c;
      if (!parse_cidr(value(), &c)) return *err = "bad --addr (A.B.C.D/LEN)", false;
      o->addr = c;
    } else if (a == "--gw") {
      Ipv4Addr g;
      if (!Ipv4Addr::parse(value().c_str(), &g)) return *err = "bad --gw", false;
      o->gateway = g;
    } else if (a == "--mode") {
      std::string m = value();
      if (m == "interrupt") o->poll = PollMode::Interrupt;
      else if (m == "spin") o->poll = PollMode::Spin;
      else if (m == "busy-poll") o->poll = PollMode::BusyPoll;
      else return *err = "bad --mode", false;
    } else if (a == "--queues") o->queues = uint32_t(std::atoi(value().c_str()));
    else if (a == "--shared-ip") o->shared_ip = true;
    else if (a == "--kernel") o->kernel = true;
    else if (a == "--kernel-spin") o->kernel = o->kernel_spin = true;
    else if (a == "--tcp-port") o->tcp_port = uint16_t(std::atoi(value().c_str()));
    else if (a == "--udp-port") o->udp_port = uint16_t(std::atoi(value().c_str()));
    else if (a == "--connect") {
      Endpoint e;
      if (!parse_endpoint(value(), &e)) return *err = "bad --connect (IP:PORT)", false;
      o->connect = e;
    } else if (a == "--bytes") o->bytes = std::strtoull(value().c_str(), nullptr, 10);
    else if (a == "--count") o->count = std::strtoull(value().c_str(), nullptr, 10);
    else if (a == "--size") o->size = uint32_t(std::atoi(value().c_str()));
    else if (a == "--seconds") o->seconds = std::atof(value().c_str());
    else if (a == "--keepalive") {
      if (std::sscanf(value().c_str(), "%u,%u,%u", &o->ka_idle, &o->ka_interval, &o->ka_count) != 3)
        return *err = "bad --keepalive (IDLE,INTERVAL,COUNT)", false;
    } else return *err = "unknown option " + a, false;
  }
  if (!o->kernel && (o->ifname.empty() || !o->addr)) return *err = "--if and --addr are required", false;
  bool needs_peer = o->mode != "serve";
  if (needs_peer && !o->connect) return *err = "--connect is required", false;
  if (o->size == 0 || o->count == 0) return *err = "--size and --count must be positive", false;
  return true;
}

int run(const Options& o) {
  struct sigaction sa{};
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  std::unique_ptr<Backend> b = o.kernel ? make_kernel_backend(o) : make_xstack_backend(o);
  if (!b) return 1;
  if (o.mode == "serve") return serve(*b, o);
  if (o.mode == "tcp-echo-client") return tcp_echo_client(*b, o);
  if (o.mode == "udp-echo-client") return udp_echo_client(*b, o);
  if (o.mode == "idle") return idle(*b, o);
  if (o.mode == "pingpong") return pingpong(*b, o);
  std::fprintf(stderr, "xstack-peer: unknown mode %s\n", o.mode.c_str());
  return 2;
}

}  // namespace xs::peer
