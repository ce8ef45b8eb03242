// xstack-stat: the socket table and counters of running xstack processes,
// read from their shared-memory stats segments (docs/observability.md).
// Sockets print like `ss -tinm` (a line per socket, an indented info line),
// counters like `nstat` (nonzero only unless -z).
#include <getopt.h>
#include <sys/mman.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "socketapi/stats_reader.hpp"

namespace {

using namespace xs::stats;

struct Options {
  long pid = -1;
  bool sockets = true, counters = true, zeros = false, json = false, clean = false;
  double interval = 0;
  long count = -1;  // with -i: repeat N times (default: until interrupted)
};

volatile sig_atomic_t g_stop = 0;

std::string ip(uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "%u.%u.%u.%u", v >> 24, (v >> 16) & 255, (v >> 8) & 255, v & 255);
  return b;
}
std::string endpoint(uint32_t a, uint16_t p, bool wildcard_port_star) {
  std::string s = a ? ip(a) : "0.0.0.0";
  return s + ":" + (p == 0 && wildcard_port_star ? std::string("*") : std::to_string(p));
}
double ms(uint32_t us) { return us / 1000.0; }

// Strings from the segment go into JSON escaped: the segment is data, and a
// counter name with a quote must not break the document.
std::string js(const std::string& in) {
  std::string out;
  for (unsigned char ch : in) {
    if (ch == '"' || ch == '\\') out += '\\', out += char(ch);
    else if (ch < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", ch);
      out += b;
    } else out += char(ch);
  }
  return out;
}

void print_text(const SegmentInfo& seg, const Snapshot& s, const Options& o) {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  double age = (int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec - s.publish_realtime_ns) / 1e9;
  std::printf("# %s pid %u dev %s addr %s/%u: %zu socket(s)%s, snapshot %.3f s old (period %u ms)\n",
              seg.name.c_str(), s.pid, s.device.c_str(), ip(s.local_addr).c_str(), s.prefix_len, s.sockets.size(),
              s.truncated ? (" TRUNCATED of " + std::to_string(s.socket_total)).c_str() : "", age, s.period_ms);
  if (o.sockets) {
    std::printf("%-5s %-10s %8s %8s %-22s %-22s\n", "Netid", "State", "Recv-Q", "Send-Q", "Local Address:Port",
                "Peer Address:Port");
    for (const SocketRow& r : s.sockets) {
      bool tcp = r.proto == kProtoTcp;
      std::printf("%-5s %-10s %8u %8u %-22s %-22s\n", tcp ? "tcp" : "udp", state_name(r.proto, r.state),
                  r.rcv_queue, r.snd_queue, endpoint(r.local_addr, r.local_port, false).c_str(),
                  endpoint(r.remote_addr, r.remote_port, true).c_str());
      if (!tcp || r.state == 10 /*LISTEN*/ || r.state == 7 /*CLOSE*/) continue;
      std::printf("\t wscale:%u,%u rto:%.0f rtt:%.3f/%.3f minrtt:%.3f mss:%u pmtu:%u rcvmss:%u cwnd:%u",
                  r.snd_wscale, r.rcv_wscale, ms(r.rto_us), ms(r.srtt_us), ms(r.rttvar_us), ms(r.min_rtt_us),
                  r.snd_mss, r.pmtu, r.rcv_mss, r.cwnd);
      if (r.ssthresh < 0x7fffffff) std::printf(" ssthresh:%u", r.ssthresh);
      std::printf(" bytes_sent:%" PRIu64 " bytes_retrans:%" PRIu64 " bytes_acked:%" PRIu64
                  " bytes_received:%" PRIu64 " segs_out:%u segs_in:%u lastsnd:%u lastrcv:%u",
                  r.bytes_sent, r.bytes_retrans, r.bytes_acked, r.bytes_received, r.segs_out, r.segs_in,
                  r.last_data_sent_ms, r.last_data_recv_ms);
      std::printf(" unacked:%u retrans:%u/%u sacked:%u lost:%u notsent:%u snd_wnd:%u rcv_wnd:%u ca_state:%u\n",
                  r.unacked, r.retransmits, r.total_retrans, r.sacked, r.lost, r.notsent, r.snd_wnd, r.rcv_wnd,
                  r.ca_state);
    }
  }
  if (o.counters) {
    std::printf("#counters\n");
    for (const auto& [name, v] : s.counters) {
      if (v != 0 || o.zeros) std::printf("%-32s %20" PRIu64 "\n", name.c_str(), v);
    }
  }
}

void print_json(const SegmentInfo& seg, const Snapshot& s, const Options& o, bool& first) {
  std::printf("%s{\"segment\":\"%s\",\"pid\":%u,\"device\":\"%s\",\"addr\":\"%s/%u\",\"publish_count\":%" PRIu64
              ",\"publish_realtime_ns\":%" PRId64 ",\"socket_total\":%u,\"truncated\":%s",
              first ? "" : ",", js(seg.name).c_str(), s.pid, js(s.device).c_str(), ip(s.local_addr).c_str(), s.prefix_len,
              s.publish_count, s.publish_realtime_ns, s.socket_total, s.truncated ? "true" : "false");
  first = false;
  if (o.sockets) {
    std::printf(",\"sockets\":[");
    bool f = true;
    for (const SocketRow& r : s.sockets) {
      std::printf("%s{\"proto\":\"%s\",\"state\":\"%s\",\"local\":\"%s\",\"peer\":\"%s\",\"recv_q\":%u,\"send_q\":%u",
                  f ? "" : ",", r.proto == kProtoTcp ? "tcp" : "udp", state_name(r.proto, r.state),
                  endpoint(r.local_addr, r.local_port, false).c_str(),
                  endpoint(r.remote_addr, r.remote_port, false).c_str(), r.rcv_queue, r.snd_queue);
      if (r.proto == kProtoTcp) {
        std::printf(",\"cwnd\":%u,\"ssthresh\":%u,\"srtt_us\":%u,\"rttvar_us\":%u,\"rto_us\":%u,\"min_rtt_us\":%u,"
                    "\"retransmits\":%u,\"total_retrans\":%u,\"mss\":%u,\"rcv_mss\":%u,\"pmtu\":%u,\"unacked\":%u,"
                    "\"snd_wnd\":%u,\"rcv_wnd\":%u,\"segs_in\":%u,\"segs_out\":%u,\"bytes_sent\":%" PRIu64
                    ",\"bytes_acked\":%" PRIu64 ",\"bytes_received\":%" PRIu64 ",\"bytes_retrans\":%" PRIu64,
                    r.cwnd, r.ssthresh, r.srtt_us, r.rttvar_us, r.rto_us, r.min_rtt_us, r.retransmits, r.total_retrans,
                    r.snd_mss, r.rcv_mss, r.pmtu, r.unacked, r.snd_wnd, r.rcv_wnd, r.segs_in, r.segs_out, r.bytes_sent,
                    r.bytes_acked, r.bytes_received, r.bytes_retrans);
      }
      std::printf("}");
      f = false;
    }
    std::printf("]");
  }
  if (o.counters) {
    std::printf(",\"counters\":{");
    bool f = true;
    for (const auto& [name, v] : s.counters) {
      if (v == 0 && !o.zeros) continue;
      std::printf("%s\"%s\":%" PRIu64, f ? "" : ",", js(name).c_str(), v);
      f = false;
    }
    std::printf("}");
  }
  std::printf("}");
}

// One report over every selected segment. Returns the number shown.
int report(const Options& o) {
  std::vector<SegmentInfo> segs;
  for (const SegmentInfo& s : list_segments()) {
    if (o.pid >= 0 && s.pid != uint32_t(o.pid)) continue;
    if (s.stale) {
      if (o.clean) {
        // Left by a process that died without unlinking (SIGKILL, crash).
        if (remove_if_stale(s)) {
          std::fprintf(stderr, "xstack-stat: removed stale /dev/shm/%s (pid %u is gone)\n", s.name.c_str(), s.pid);
        } else {
          std::fprintf(stderr, "xstack-stat: kept /dev/shm/%s (pid %u is gone here, but a process holds it)\n",
                       s.name.c_str(), s.pid);
        }
      } else {
        std::fprintf(stderr, "xstack-stat: /dev/shm/%s is stale (pid %u is gone; --clean removes it)\n",
                     s.name.c_str(), s.pid);
      }
      continue;
    }
    segs.push_back(s);
  }
  int shown = 0;
  bool first = true;
  if (o.json) std::printf("[");
  for (const SegmentInfo& seg : segs) {
    auto m = Mapping::open(seg.name);
    if (!m) {
      std::fprintf(stderr, "xstack-stat: %s\n", m.error().c_str());
      continue;
    }
    auto s = read_snapshot(*m);
    if (!s) {
      std::fprintf(stderr, "xstack-stat: %s: %s\n", seg.name.c_str(), s.error().c_str());
      continue;
    }
    if (o.json) print_json(seg, *s, o, first);
    else print_text(seg, *s, o);
    ++shown;
  }
  if (o.json) std::printf("]\n");
  std::fflush(stdout);
  return shown;
}

void usage() {
  std::fprintf(stderr,
               "usage: xstack-stat [-p PID] [-t] [-s] [-z] [--json] [-i SECONDS [-c COUNT]] [--clean]\n"
               "  -p PID    only this process (default: every running xstack process)\n"
               "  -t        sockets only     -s  counters only     -z  also zero counters\n"
               "  -i SEC    repeat every SEC seconds (-c COUNT times; default until ^C)\n"
               "  --json    one JSON array per report\n"
               "  --clean   remove segments left by processes that died without removing them\n");
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  static const option longopts[] = {{"json", no_argument, nullptr, 'j'}, {"clean", no_argument, nullptr, 'C'}, {"help", no_argument, nullptr, 'h'}, {}};
  int c;
  while ((c = getopt_long(argc, argv, "p:tszi:c:h", longopts, nullptr)) != -1) {
    switch (c) {
      case 'p': o.pid = std::atol(optarg); break;
      case 't': o.sockets = true, o.counters = false; break;
      case 's': o.counters = true, o.sockets = false; break;
      case 'z': o.zeros = true; break;
      case 'i': o.interval = std::atof(optarg); break;
      case 'c': o.count = std::atol(optarg); break;
      case 'j': o.json = true; break;
      case 'C': o.clean = true; break;
      default: usage(); return c == 'h' ? 0 : 2;
    }
  }
  signal(SIGINT, [](int) { g_stop = 1; });
  signal(SIGTERM, [](int) { g_stop = 1; });
  for (long i = 0;; ++i) {
    int shown = report(o);
    if (shown == 0 && o.interval <= 0) {
      if (o.pid >= 0) std::fprintf(stderr, "xstack-stat: no stats segment for pid %ld\n", o.pid);
      else std::fprintf(stderr, "xstack-stat: no running xstack process\n");
      return 1;
    }
    if (o.interval <= 0 || g_stop || (o.count > 0 && i + 1 >= o.count)) break;
    timespec d{time_t(o.interval), long((o.interval - time_t(o.interval)) * 1e9)};
    nanosleep(&d, nullptr);
    if (g_stop) break;
    if (!o.json) std::printf("\n");
  }
  return 0;
}
