// xstack-sim-demo: two complete xstack protocol stacks exchange data over a
// simulated lossy link (deterministic, simulated time), once with CUBIC and
// once with NewReno, and print what TCP did side by side.
//
//   xstack-sim-demo [--mib N] [--loss P] [--delay-ms D] [--mbit R] [--seed S]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/sim_net.hpp"

using namespace xs;
using namespace xs::test;

namespace {

struct Options {
  uint64_t mib = 16;
  double loss = 0.01;
  int64_t delay_ms = 10;
  uint64_t mbit = 100;
  uint64_t seed = 42;
};

struct Sample {
  double t, mbit_s;
  uint32_t cwnd, ssthresh, srtt_us, retrans;
};

struct Run {
  std::string cc;
  bool ok = false, verified = false;
  double seconds = 0;
  uint64_t bytes = 0, digest_sent = 0, digest_recv = 0;
  TcpInfo info;
  LinkStats ab;
  std::vector<Sample> samples;
};

Run run(const Options& o, const char* cc) {
  LinkConfig l;
  l.bandwidth_bps = o.mbit * 1'000'000;
  l.delay = millis(o.delay_ms);
  l.loss = o.loss;
  l.reorder = o.loss > 0 ? 0.005 : 0;
  l.reorder_extra = millis(1);
  l.duplicate = o.loss > 0 ? 0.002 : 0;
  l.queue_limit_bytes = static_cast<size_t>(o.mbit * 1'000'000 / 8 * 2 * o.delay_ms / 1000) + 64 * 1024;
  SimNet net(l, o.seed);
  AppRunner runner(net.sim);
  Run r;
  r.cc = cc;
  Instant t0 = net.sim.now();
  TcpSocket* lsn = net.b->stack.tcp().open();
  (void)lsn->bind({Ipv4Addr::any(), 5201});
  (void)lsn->listen(4);
  TcpSocket* c = net.a->stack.tcp().open();
  (void)c->set_congestion(t0, cc);
  (void)c->connect(t0, {kSimB, 5201});
  const uint64_t total = o.mib << 20;
  StreamApp client(c, 1, total, 2);
  client.hold_open = true;
  runner.add(&client);
  std::unique_ptr<StreamApp> server;
  net.sim.add_pollable({[&](Instant now) {
                          if (server) return;
                          if (auto a = lsn->accept(now)) {
                            server = std::make_unique<StreamApp>(*a, 2, 0, 1);
                            server->hold_open = true;
                            runner.add(server.get());
                          }
                        },
                        [&] { return (!server && !lsn->accept_queue_empty()) ? net.sim.now() : kNever; }});
  // Sample every second of simulated time.
  uint64_t last_bytes = 0;
  std::function<void()> sample = [&] {
    TcpInfo i = c->info(net.sim.now());
    uint64_t got = server ? server->received() : 0;
    r.samples.push_back({(net.sim.now() - t0).us / 1e6, (got - last_bytes) * 8 / 1.0 / 1e6, i.snd_cwnd,
                         i.snd_ssthresh, i.rtt_us, i.total_retrans});
    last_bytes = got;
    if (!(server && server->received() == total)) net.sim.after(seconds(1), sample);
  };
  net.sim.after(seconds(1), sample);
  r.ok = net.sim.run_until(t0 + seconds(3600), [&] { return server && server->received() == total; });
  r.seconds = (net.sim.now() - t0).us / 1e6;
  r.bytes = server ? server->received() : 0;
  r.verified = server && !server->corrupt() && client.sent_digest() == server->recv_digest();
  r.digest_sent = client.sent_digest();
  r.digest_recv = server ? server->recv_digest() : 0;
  r.info = c->info(net.sim.now());
  r.ab = net.link.stats_ab();
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    const char* v = argv[i + 1];
    if (k == "--mib") o.mib = std::strtoull(v, nullptr, 10);
    else if (k == "--loss") o.loss = std::atof(v);
    else if (k == "--delay-ms") o.delay_ms = std::atoll(v);
    else if (k == "--mbit") o.mbit = std::strtoull(v, nullptr, 10);
    else if (k == "--seed") o.seed = std::strtoull(v, nullptr, 10);
    else {
      std::fprintf(stderr, "usage: %s [--mib N] [--loss P] [--delay-ms D] [--mbit R] [--seed S]\n", argv[0]);
      return 2;
    }
  }
  std::printf("xstack protocol core on a simulated link (deterministic, seeded)\n");
  std::printf("link: %llu Mbit/s, %lld ms one way, %.1f%% loss, reordering and duplication, seed %llu\n",
              (unsigned long long)o.mbit, (long long)o.delay_ms, o.loss * 100, (unsigned long long)o.seed);
  std::printf("transfer: %llu MiB from 198.18.0.1 to 198.18.0.2, every byte checked\n\n", (unsigned long long)o.mib);
  Run a = run(o, "cubic");
  Run b = run(o, "reno");
  std::printf("%-8s | %-34s | %-34s\n", "t (s)", "CUBIC: Mbit/s cwnd ssthr rtt(ms)", "NewReno: Mbit/s cwnd ssthr rtt(ms)");
  size_t n = std::max(a.samples.size(), b.samples.size());
  for (size_t i = 0; i < n; ++i) {
    auto cell = [](const std::vector<Sample>& v, size_t k) {
      char buf[64];
      if (k >= v.size()) return std::string(34, ' ');
      const Sample& s = v[k];
      std::snprintf(buf, sizeof buf, "%8.1f %5u %5u %7.1f", s.mbit_s, s.cwnd,
                    s.ssthresh > 100000 ? 0 : s.ssthresh, s.srtt_us / 1000.0);
      return std::string(buf) + std::string(34 - std::strlen(buf), ' ');
    };
    double t = i < a.samples.size() ? a.samples[i].t : b.samples[i].t;
    std::printf("%-8.1f | %s | %s\n", t, cell(a.samples, i).c_str(), cell(b.samples, i).c_str());
  }
  std::printf("\n%-28s %-20s %-20s\n", "", "CUBIC", "NewReno");
  std::printf("%-28s %-20.2f %-20.2f\n", "time to deliver (s)", a.seconds, b.seconds);
  std::printf("%-28s %-20.1f %-20.1f\n", "goodput (Mbit/s)", a.bytes * 8 / a.seconds / 1e6, b.bytes * 8 / b.seconds / 1e6);
  std::printf("%-28s %-20llu %-20llu\n", "frames lost on the link", (unsigned long long)a.ab.frames_lost,
              (unsigned long long)b.ab.frames_lost);
  std::printf("%-28s %-20u %-20u\n", "segments retransmitted", a.info.total_retrans, b.info.total_retrans);
  std::printf("%-28s %-20s %-20s\n", "data verified (FNV-1a)", a.verified ? "yes" : "NO", b.verified ? "yes" : "NO");
  std::printf("%-28s %016llx     %016llx\n", "digest", (unsigned long long)a.digest_recv, (unsigned long long)b.digest_recv);
  return a.ok && b.ok && a.verified && b.verified ? 0 : 1;
}
