#include "socketapi/stats_publisher.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "socketapi/log.hpp"
#include "socketapi/private_fd.hpp"
#include "socketapi/stats_reader.hpp"
#include "stack/tcp/tcp_socket.hpp"

namespace xs {

namespace {

void set_name(stats::CounterRow& r, const char* prefix, const char* name) {
  std::snprintf(r.name, sizeof r.name, "%s%s", prefix, name);
}

stats::SocketRow tcp_row(const TcpSocket& s, Instant now) {
  stats::SocketRow r;
  r.proto = stats::kProtoTcp;
  r.local_addr = s.local().addr.v;
  r.local_port = s.local().port;
  r.remote_addr = s.remote().addr.v;
  r.remote_port = s.remote().port;
  if (s.state() == TcpState::Listen) {
    r.state = linux_state_number(TcpState::Listen);
    r.rcv_queue = static_cast<uint32_t>(s.accept_queue_len());
    r.snd_queue = static_cast<uint32_t>(std::max(s.backlog(), 0));
    return r;
  }
  // The same figures TCP_INFO reports (TcpSocket::info).
  TcpInfo i = s.info(now);
  r.state = i.state;
  r.ca_state = i.ca_state;
  r.options = i.options;
  r.snd_queue = i.snd_queue_bytes;
  r.rcv_queue = i.rcv_queue_bytes;
  r.cwnd = i.snd_cwnd;
  r.ssthresh = i.snd_ssthresh;
  r.srtt_us = i.rtt_us;
  r.rttvar_us = i.rttvar_us;
  r.rto_us = i.rto_us;
  r.min_rtt_us = i.min_rtt_us;
  r.retransmits = i.retransmits;
  r.total_retrans = i.total_retrans;
  r.snd_mss = i.snd_mss;
  r.rcv_mss = i.rcv_mss;
  r.pmtu = i.pmtu;
  r.unacked = i.unacked;
  r.sacked = i.sacked;
  r.lost = i.lost;
  r.snd_wnd = i.snd_wnd;
  r.rcv_wnd = i.rcv_wnd;
  r.notsent = i.notsent_bytes;
  r.segs_in = i.segs_in;
  r.segs_out = i.segs_out;
  r.snd_wscale = i.snd_wscale;
  r.rcv_wscale = i.rcv_wscale;
  r.bytes_sent = i.bytes_sent;
  r.bytes_acked = i.bytes_acked;
  r.bytes_received = i.bytes_received;
  r.bytes_retrans = i.bytes_retrans;
  r.last_data_recv_ms = i.last_data_recv_ms;
  r.last_data_sent_ms = i.last_data_sent_ms;
  return r;
}

stats::SocketRow udp_row(const UdpSocket& s) {
  stats::SocketRow r;
  r.proto = stats::kProtoUdp;
  r.local_addr = s.local().addr.v;
  r.local_port = s.local().port;
  if (auto rem = s.remote()) {
    r.remote_addr = rem->addr.v;
    r.remote_port = rem->port;
    r.state = 1;  // "ESTAB", as ss shows a connected UDP socket
  } else {
    r.state = 7;  // "UNCONN"
  }
  r.rcv_queue = static_cast<uint32_t>(s.rx_queued_bytes());
  r.snd_queue = static_cast<uint32_t>(s.tx_queued_bytes());
  return r;
}

int64_t realtime_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

bool env_u32(const char* name, uint32_t& out) {
  const char* v = std::getenv(name);
  if (!v || !*v) return false;
  char* end = nullptr;
  unsigned long x = std::strtoul(v, &end, 10);
  if (*end != '\0') return false;
  out = static_cast<uint32_t>(std::min<unsigned long>(x, 0xffffffffu));
  return true;
}

std::atomic<uint32_t> g_engines{0};  // names further engines of the process "<pid>.<n>"

}  // namespace

void StatsConfig::apply_env() {
  if (const char* v = std::getenv("XSTACK_STATS"); v && std::strcmp(v, "0") == 0) enabled = false;
  uint32_t x;
  if (env_u32("XSTACK_STATS_PERIOD_MS", x)) period = millis(std::max<uint32_t>(x, 1));
  if (env_u32("XSTACK_STATS_SOCKETS", x)) socket_capacity = std::clamp<uint32_t>(x, 1, 1u << 20);
}

std::string stats_capture_name(const std::string& stats_name) { return stats_name + "-cap"; }

void fill_stats_snapshot(stats::Header& h, Stack& stack, const DeviceCounters& dev, Instant now,
                         int64_t realtime) {
  auto* base = reinterpret_cast<uint8_t*>(&h);
  auto* rows = reinterpret_cast<stats::SocketRow*>(base + h.sockets_offset);
  auto* ctrs = reinterpret_cast<stats::CounterRow*>(base + h.counters_offset);
  uint32_t n = 0, c = 0;
  const size_t total = stack.tcp().socket_count() + stack.udp().socket_count();
  stats::write_begin(h);
  // Only as many sockets as there are rows are visited: a server closing
  // thousands of connections a second holds hundreds of thousands in
  // TIME_WAIT, and walking them all every period cost it ~2% of its core.
  stack.tcp().for_each_socket([&](const TcpSocket& s) { rows[n++] = tcp_row(s, now); }, h.socket_capacity);
  stack.udp().for_each_socket([&](const UdpSocket& s) { rows[n++] = udp_row(s); }, h.socket_capacity - n);
  // Names are rewritten every time (cheap) so that a counter added to
  // StackCounters needs no change here or in the tool.
  stack.counters().for_each([&](const char* name, uint64_t v) {
    if (c >= h.counter_capacity) return;
    set_name(ctrs[c], "", name);
    ctrs[c++].value = v;
  });
  auto dev_counter = [&](const char* name, uint64_t v) {
    if (c >= h.counter_capacity) return;
    set_name(ctrs[c], "dev_", name);
    ctrs[c++].value = v;
  };
  dev_counter("rx_frames", dev.rx_frames);
  dev_counter("tx_frames", dev.tx_frames);
  dev_counter("tx_kicks", dev.tx_kicks);
  dev_counter("tx_no_buffer", dev.tx_no_buffer);
  dev_counter("rx_dropped", dev.rx_dropped);
  dev_counter("rx_ring_full", dev.rx_ring_full);
  dev_counter("rx_fill_empty", dev.rx_fill_empty);
  dev_counter("tx_ring_empty", dev.tx_ring_empty);
  dev_counter("invalid_descs", dev.invalid_descs);
  dev_counter("rx_lent", dev.rx_lent);
  dev_counter("rx_lend_refused", dev.rx_lend_refused);
  dev_counter("rx_lends", dev.rx_lends);
  dev_counter("busy_polls", dev.busy_polls);
  dev_counter("busy_poll_off", dev.busy_poll_off);
  h.socket_rows = n;
  h.socket_total = static_cast<uint32_t>(total);
  h.truncated = total > n;
  h.counter_rows = c;
  h.publish_count++;
  h.publish_realtime_ns = realtime;
  h.publish_monotonic_us = now.us;
  stats::write_end(h);
}

std::unique_ptr<StatsPublisher> StatsPublisher::create(const StatsConfig& cfg, const std::string& device,
                                                       Ipv4Cidr addr) {
  std::unique_ptr<StatsPublisher> p(new StatsPublisher());
  uint32_t k = g_engines.fetch_add(1, std::memory_order_relaxed);
  p->name_ = "xstack-" + std::to_string(getpid());
  if (k > 0) p->name_ += "." + std::to_string(k);
  std::string path = "/" + p->name_;
  p->len_ = stats::segment_size(cfg.socket_capacity, cfg.counter_capacity);
  int fd = shm_open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0 && errno == EEXIST) {
    // Left by an earlier process that had our pid and died without
    // unlinking it (names are unique within this process).
    shm_unlink(path.c_str());
    shm_unlink(stats_capture_name(path).c_str());
    fd = shm_open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  }
  if (fd < 0) {
    XS_LOG(Warn, "stats segment %s: %s (xstack-stat will not see this process)", path.c_str(),
           std::strerror(errno));
    return nullptr;
  }
  // Held shared for the process's life: remove_stale_segments() takes a
  // segment only when nothing holds it (see stats_reader.hpp).
  (void)flock(fd, LOCK_SH);
  void* m = MAP_FAILED;
  if (ftruncate(fd, static_cast<off_t>(p->len_)) == 0) {
    m = mmap(nullptr, p->len_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  }
  int err = errno;
  if (m == MAP_FAILED) {
    close(fd);
    shm_unlink(path.c_str());
    XS_LOG(Warn, "stats segment %s: %s", path.c_str(), std::strerror(err));
    return nullptr;
  }
  stats::Header* h = stats::init_segment(m, cfg.socket_capacity, cfg.counter_capacity);
  h->pid = static_cast<uint32_t>(getpid());
  h->period_ms = static_cast<uint32_t>(cfg.period.us / 1000);
  std::snprintf(h->device, sizeof h->device, "%s", device.c_str());
  h->local_addr = addr.addr.v;
  h->prefix_len = addr.prefix_len;
  std::atomic_ref<uint64_t>(h->magic).store(stats::kMagic, std::memory_order_release);  // complete now
  p->hdr_ = h;
  p->lock_fd_ = move_fd_high(fd);
  // Segments of processes killed or crashed earlier would stay in /dev/shm
  // until reboot: every new process sweeps them.
  if (size_t n = stats::remove_stale_segments()) XS_LOG(Debug, "removed %zu stale stats segment(s)", n);
  return p;
}

StatsPublisher::~StatsPublisher() {
  if (lock_fd_ >= 0) close(lock_fd_);
  if (!hdr_) return;
  // A forked child that inherited the engine must not remove its parent's segment.
  bool ours = hdr_->pid == static_cast<uint32_t>(getpid());
  munmap(hdr_, len_);
  if (ours) shm_unlink(("/" + name_).c_str());
}

void StatsPublisher::publish_locked(Instant now, Stack& stack, const DeviceCounters& dev, CaptureTap& tap) {
  update_capture_locked(tap);
  fill_stats_snapshot(*hdr_, stack, dev, now, realtime_ns());
}

void StatsPublisher::update_capture_locked(CaptureTap& tap) {
  uint32_t req = hdr_->capture_request.load(std::memory_order_acquire);
  if (tap.active()) {
    const capture::CaptureHeader& ch = *tap.header();
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t mono_ns = int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
    bool silent = mono_ns - ch.reader_heartbeat_ns.load(std::memory_order_relaxed) > 1000000000;
    bool dead = ch.reader_pid != 0 && kill(static_cast<pid_t>(ch.reader_pid), 0) != 0 && errno == ESRCH;
    if (req == attached_gen_ && !silent && !dead) return;  // still capturing
    // A reader that asked to stop removes its segment itself; one that is
    // gone (killed) cannot, so the engine does.
    bool reader_gone = req == attached_gen_;
    tap.detach(reader_gone);
    if (reader_gone) hdr_->capture_request.compare_exchange_strong(req, 0, std::memory_order_acq_rel);
    attached_gen_ = 0;
    hdr_->capture_attached.store(0, std::memory_order_release);
    req = hdr_->capture_request.load(std::memory_order_acquire);
  }
  if (req != 0 && req != attached_gen_) {
    if (tap.attach("/" + stats_capture_name(name_))) {
      attached_gen_ = req;
      hdr_->capture_attached.store(req, std::memory_order_release);
    } else {
      // Not (or no longer) there: forget the request rather than retry forever.
      hdr_->capture_request.compare_exchange_strong(req, 0, std::memory_order_acq_rel);
    }
  }
}

void StatsPublisher::end_capture_locked(CaptureTap& tap) {
  if (!tap.active()) return;
  tap.detach(true);
  attached_gen_ = 0;
  hdr_->capture_attached.store(0, std::memory_order_release);
  hdr_->capture_request.store(0, std::memory_order_release);
}

}  // namespace xs
