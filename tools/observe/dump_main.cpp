// xstack-dump: writes the frames a running xstack process receives and sends
// to a pcap file, through the capture ring the engine fills while we are
// attached (docs/observability.md). Stops on -c COUNT packets, -G SECONDS,
// SIGINT/SIGTERM, or when the process goes away; always detaches.
#include <getopt.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "socketapi/capture_client.hpp"
#include "tools/observe/pcap_writer.hpp"

namespace {

volatile sig_atomic_t g_stop = 0;

int64_t mono_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void usage() {
  std::fprintf(stderr,
               "usage: xstack-dump -p PID -w FILE [-c COUNT] [-G SECONDS] [-s SNAPLEN] [-B KiB] [--micro]\n"
               "  -p PID      the xstack process (its first engine; -n NAME for another segment)\n"
               "  -w FILE     pcap output (\"-\": stdout)\n"
               "  -c COUNT    stop after COUNT frames     -G SECONDS  stop after SECONDS\n"
               "  -s SNAPLEN  bytes kept per frame (default and max 2048)\n"
               "  -B KiB      capture ring size (default 4096 KiB)\n"
               "  --micro     microsecond timestamps (default nanoseconds)\n");
}

}  // namespace

int main(int argc, char** argv) {
  long pid = -1, count = -1, ring_kib = 4096;
  double seconds = 0;
  uint32_t snaplen = xs::capture::kMaxSnaplen;
  bool nanos = true;
  std::string name, file;
  static const option longopts[] = {{"micro", no_argument, nullptr, 'u'}, {"help", no_argument, nullptr, 'h'}, {}};
  int c;
  while ((c = getopt_long(argc, argv, "p:n:w:c:G:s:B:h", longopts, nullptr)) != -1) {
    switch (c) {
      case 'p': pid = std::atol(optarg); break;
      case 'n': name = optarg; break;
      case 'w': file = optarg; break;
      case 'c': count = std::atol(optarg); break;
      case 'G': seconds = std::atof(optarg); break;
      case 's': snaplen = static_cast<uint32_t>(std::atol(optarg)); break;
      case 'B': ring_kib = std::atol(optarg); break;
      case 'u': nanos = false; break;
      default: usage(); return c == 'h' ? 0 : 2;
    }
  }
  if ((pid < 0 && name.empty()) || file.empty() || snaplen == 0 || ring_kib <= 0) {
    usage();
    return 2;
  }
  if (snaplen > xs::capture::kMaxSnaplen) snaplen = xs::capture::kMaxSnaplen;
  if (name.empty()) name = "xstack-" + std::to_string(pid);

  auto stats = xs::stats::Mapping::open(name);
  if (!stats) {
    std::fprintf(stderr, "xstack-dump: %s (is pid %ld an xstack process with XSTACK_STATS on?)\n",
                 stats.error().c_str(), pid);
    return 1;
  }
  uint32_t target = stats->header().pid;
  std::FILE* out = file == "-" ? stdout : std::fopen(file.c_str(), "wb");
  if (!out) {
    std::fprintf(stderr, "xstack-dump: %s: %s\n", file.c_str(), std::strerror(errno));
    return 1;
  }
  xs::pcap::Writer pcap(out, snaplen, nanos);

  struct sigaction sa {};
  sa.sa_handler = [](int) { g_stop = 1; };  // no SA_RESTART: end the sleep at once
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);

  auto client = xs::capture::Client::start(*stats, uint64_t(ring_kib) * 1024, snaplen);
  if (!client) {
    std::fprintf(stderr, "xstack-dump: %s\n", client.error().c_str());
    return 1;
  }
  std::fprintf(stderr, "xstack-dump: capturing %s (pid %u, dev %s), snaplen %u\n", name.c_str(), target,
               stats->header().device, snaplen);

  long written = 0;
  bool corrupt = false, announced = false;
  int64_t start = mono_ms();
  auto write_records = [&] {
    long n = client->poll([&](const xs::capture::Record& r) {
      if (count >= 0 && written >= count) return;  // past the limit: drop
      pcap.write(r.hdr.ts_ns, r.bytes, r.hdr.origlen);
      ++written;
    });
    if (n < 0) corrupt = true;
  };
  const char* why = "interrupted";
  unsigned loops = 0;
  while (!g_stop) {
    write_records();
    std::fflush(out);
    if (!announced && client->attached()) {
      announced = true;
      std::fprintf(stderr, "xstack-dump: attached\n");
    }
    if (corrupt) { why = "capture ring corrupt"; break; }
    if (!pcap.ok()) { why = "write error"; break; }
    if (count >= 0 && written >= count) { why = "count reached"; break; }
    if (seconds > 0 && mono_ms() - start >= int64_t(seconds * 1000)) { why = "time limit"; break; }
    if (!xs::stats::process_alive(target)) { why = "process exited"; break; }
    // The engine stopped (its segment is gone) while the process lives on.
    if (++loops % 64 == 0 && access(("/dev/shm/" + name).c_str(), F_OK) != 0) { why = "engine stopped"; break; }
    usleep(5000);  // the ring absorbs bursts in between (-B)
  }
  client->withdraw();
  if (!corrupt && !(count >= 0 && written >= count)) write_records();
  uint64_t drops = client->drops();
  client->stop();
  if (out != stdout) std::fclose(out);
  else std::fflush(out);
  std::fprintf(stderr, "xstack-dump: %s; %ld packets captured, %" PRIu64 " dropped by the capture ring\n", why,
               written, drops);
  return corrupt || !pcap.ok() ? 1 : 0;
}
