// xstack-raw-floor: the floor a userspace stack over AF_XDP cannot beat on
// this machine. Two AF_XDP sockets (xs::XdpDevice) on the two ends of a veth
// pair, one per network namespace, each driven by its own thread:
//   ping-pong  A sends a frame, B echoes it, A measures the round trip
//              (busy-poll spinning, and sleeping in poll()).
//   blast      A sends frames as fast as it can for a while; B counts them.
// The tool builds its own lab (namespaces xsf-<pid>-a/b, veth fa/fb, no IP
// addresses: frames are steered by our XDP program's flows for 198.18.0.1/.2
// UDP port 9000) and deletes it on exit. Needs root.
//
//   xstack-raw-floor [--count N] [--size BYTES] [--seconds S]
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "stack/base/bytes.hpp"
#include "xdp/xdp_device.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using xs::Bytes;
using xs::Ipv4Addr;
using xs::MacAddr;
using xs::MutBytes;
using xs::XdpDevice;

std::string g_ns_a, g_ns_b;

void cleanup_lab() {
  if (g_ns_a.empty()) return;
  std::string cmd = "ip netns del " + g_ns_a + " 2>/dev/null; ip netns del " + g_ns_b + " 2>/dev/null";
  if (system(cmd.c_str()) != 0) {
  }
}

void on_signal(int) {
  cleanup_lab();
  _exit(130);
}

bool setup_lab() {
  const std::string id = std::to_string(getpid());
  g_ns_a = "xsf-" + id + "-a";
  g_ns_b = "xsf-" + id + "-b";
  cleanup_lab();
  const std::vector<std::string> cmds = {
      "ip netns add " + g_ns_a,
      "ip netns add " + g_ns_b,
      "ip link add fa netns " + g_ns_a + " type veth peer name fb netns " + g_ns_b,
      "ip -n " + g_ns_a + " link set fa up",
      "ip -n " + g_ns_b + " link set fb up",
  };
  for (const auto& c : cmds) {
    if (system((c + " >/dev/null 2>&1").c_str()) != 0) {
      fprintf(stderr, "raw-floor: lab setup failed: %s\n", c.c_str());
      return false;
    }
  }
  return true;
}

bool enter_ns(const std::string& name) {
  const int fd = open(("/var/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = setns(fd, CLONE_NEWNET) == 0;
  close(fd);
  return ok;
}

void pin(int cpu) {
  if (std::thread::hardware_concurrency() < 2) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

// Ethernet + IPv4 + UDP to port 9000, checksums zero (nobody verifies them here).
std::vector<uint8_t> frame_template(MacAddr src_mac, Ipv4Addr src, Ipv4Addr dst, size_t size) {
  size = std::max<size_t>(size, 14 + 20 + 8 + 16);
  std::vector<uint8_t> f(size, 0);
  uint8_t* p = f.data();
  memset(p, 0xff, 6);  // broadcast: no MAC learning needed on veth
  memcpy(p + 6, src_mac.b.data(), 6);
  xs::store_be16(p + 12, 0x0800);
  uint8_t* ip = p + 14;
  ip[0] = 0x45;
  xs::store_be16(ip + 2, uint16_t(size - 14));
  ip[8] = 64;
  ip[9] = 17;
  xs::store_be32(ip + 12, src.v);
  xs::store_be32(ip + 16, dst.v);
  uint8_t* udp = ip + 20;
  xs::store_be16(udp, 9000);
  xs::store_be16(udp + 2, 9000);
  xs::store_be16(udp + 4, uint16_t(size - 34));
  return f;
}
constexpr size_t kSeqOff = 42;  // 8-byte sequence number in the UDP payload

bool send(XdpDevice& d, const std::vector<uint8_t>& tmpl, uint64_t seq) {
  MutBytes b = d.tx_acquire();
  if (b.size() < tmpl.size()) return false;
  memcpy(b.data(), tmpl.data(), tmpl.size());
  memcpy(b.data() + kSeqOff, &seq, sizeof(seq));
  d.tx_commit(tmpl.size());
  return true;
}

std::unique_ptr<XdpDevice> open_dev(const std::string& ns, const char* ifname, Ipv4Addr self, bool busy) {
  if (!enter_ns(ns)) {
    fprintf(stderr, "raw-floor: setns %s failed\n", ns.c_str());
    return nullptr;
  }
  xs::XdpDeviceConfig c;
  c.ifname = ifname;
  c.busy_poll = busy;
  auto d = XdpDevice::open(c);
  if (!d) {
    fprintf(stderr, "raw-floor: %s\n", d.error().c_str());
    return nullptr;
  }
  if (!(*d)->add_flow(xs::FlowProto::kUdp, self, 9000)) return nullptr;
  return std::move(*d);
}

// Waits for RX: spins on the ring (busy) or sleeps in poll().
void wait_rx(XdpDevice& d, bool busy) {
  if (busy) return;
  pollfd p{d.fds()[0], POLLIN, 0};
  poll(&p, 1, 100);
}

struct Result {
  std::vector<double> rtt_us;
  double blast_pps = 0;
  uint64_t blast_sent = 0, blast_got = 0;
};

constexpr Ipv4Addr kA = Ipv4Addr::from_octets(198, 18, 0, 1);
constexpr Ipv4Addr kB = Ipv4Addr::from_octets(198, 18, 0, 2);

bool pingpong(int count, size_t size, bool busy, Result* out) {
  std::atomic<int> ready{0};
  std::atomic<bool> stop{false};
  std::atomic<bool> failed{false};
  std::thread echo([&] {
    pin(1);
    auto d = open_dev(g_ns_b, "fb", kB, busy);
    if (!d) {
      failed = true;
      ready++;
      return;
    }
    const auto tmpl = frame_template(d->mac(), kB, kA, size);
    ready++;
    while (!stop.load(std::memory_order_relaxed)) {
      uint64_t seq = 0;
      int n = d->poll_rx([&](Bytes f) {
        if (f.size() >= kSeqOff + 8) memcpy(&seq, f.data() + kSeqOff, 8);
      }, 64);
      if (n > 0) {
        send(*d, tmpl, seq);
        d->flush_tx();
      } else {
        wait_rx(*d, busy);
      }
    }
  });
  pin(0);
  auto d = open_dev(g_ns_a, "fa", kA, busy);
  while (ready.load() == 0) std::this_thread::yield();
  if (!d || failed) {
    stop = true;
    echo.join();
    return false;
  }
  const auto tmpl = frame_template(d->mac(), kA, kB, size);
  out->rtt_us.reserve(size_t(count));
  const int warmup = std::min(1000, count / 10);
  for (int i = 0; i < count + warmup; ++i) {
    const uint64_t seq = uint64_t(i) + 1;
    const auto t0 = Clock::now();
    if (!send(*d, tmpl, seq)) continue;
    d->flush_tx();
    bool got = false;
    const auto deadline = t0 + std::chrono::milliseconds(200);
    while (!got && Clock::now() < deadline) {
      int n = d->poll_rx([&](Bytes f) {
        uint64_t s = 0;
        if (f.size() >= kSeqOff + 8) memcpy(&s, f.data() + kSeqOff, 8);
        if (s == seq) got = true;
      }, 64);
      if (n == 0) wait_rx(*d, busy);
    }
    const auto t1 = Clock::now();
    if (got && i >= warmup) out->rtt_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  stop = true;
  echo.join();
  return true;
}

bool blast(double seconds, size_t size, Result* out) {
  std::atomic<bool> stop{false};
  std::atomic<int> ready{0};
  std::atomic<uint64_t> got{0};
  std::thread sink([&] {
    pin(1);
    auto d = open_dev(g_ns_b, "fb", kB, false);
    ready++;
    if (!d) return;
    uint64_t n = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      const int k = d->poll_rx([&](Bytes) { ++n; }, 256);
      if (k == 0) wait_rx(*d, false);
    }
    // Late frames still in the ring.
    for (int i = 0; i < 100; ++i) n += uint64_t(d->poll_rx([](Bytes) {}, 256));
    got = n;
  });
  pin(0);
  auto d = open_dev(g_ns_a, "fa", kA, false);
  while (ready.load() == 0) std::this_thread::yield();
  if (!d) {
    stop = true;
    sink.join();
    return false;
  }
  const auto tmpl = frame_template(d->mac(), kA, kB, size);
  const auto t0 = Clock::now();
  const auto end = t0 + std::chrono::duration<double>(seconds);
  uint64_t sent = 0;
  while (Clock::now() < end) {
    // A burst below veth's 256-entry queue, then one flush (sendto loop).
    for (int i = 0; i < 64; ++i) {
      if (!send(*d, tmpl, sent)) break;
      ++sent;
    }
    d->flush_tx();
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  stop = true;
  sink.join();
  out->blast_sent = sent;
  out->blast_got = got;
  out->blast_pps = double(got) / elapsed;
  return true;
}

double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, size_t(p / 100.0 * double(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  int count = 20000;
  size_t size = 64;
  double seconds = 2.0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--count") count = atoi(argv[i + 1]);
    else if (a == "--size") size = size_t(atoi(argv[i + 1]));
    else if (a == "--seconds") seconds = atof(argv[i + 1]);
  }
  if (geteuid() != 0) {
    fprintf(stderr, "raw-floor: needs root (network namespaces, XDP)\n");
    return 1;
  }
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  if (!setup_lab()) {
    cleanup_lab();
    return 1;
  }
  const int orig = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  int rc = 0;
  printf("raw AF_XDP floor over veth (copy mode), %zu-byte frames\n", size);
  for (bool busy : {true, false}) {
    Result r;
    if (!pingpong(count, size, busy, &r)) {
      rc = 1;
      break;
    }
    printf("ping-pong %-22s n=%zu  RTT p50 %.1f us  p99 %.1f us  p99.9 %.1f us  min %.1f us  (one-way p50 ~%.1f us)\n",
           busy ? "(busy-poll spinning)" : "(sleeping in poll)", r.rtt_us.size(), pct(r.rtt_us, 50),
           pct(r.rtt_us, 99), pct(r.rtt_us, 99.9), pct(r.rtt_us, 0), pct(r.rtt_us, 50) / 2);
  }
  if (rc == 0) {
    for (size_t sz : {size, size_t(1500)}) {
      Result r;
      if (!blast(seconds, sz, &r)) {
        rc = 1;
        break;
      }
      printf("one-way blast %5zu B: %.3f Mframes/s received (%.2f Gbit/s), sent %llu, received %llu\n", sz,
             r.blast_pps / 1e6, r.blast_pps * double(sz) * 8 / 1e9, (unsigned long long)r.blast_sent,
             (unsigned long long)r.blast_got);
    }
  }
  if (orig >= 0) {
    setns(orig, CLONE_NEWNET);
    close(orig);
  }
  cleanup_lab();
  return rc;
}
