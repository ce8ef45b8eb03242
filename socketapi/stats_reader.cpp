#include "socketapi/stats_reader.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace xs::stats {

bool process_alive(uint32_t pid) { return pid != 0 && (kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH); }

std::vector<SegmentInfo> list_segments() {
  std::vector<SegmentInfo> out;
  DIR* d = opendir("/dev/shm");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n.rfind("xstack-", 0) != 0 || n.ends_with("-cap")) continue;
    char* end = nullptr;
    unsigned long pid = std::strtoul(n.c_str() + 7, &end, 10);
    if (end == n.c_str() + 7 || (*end != '\0' && *end != '.')) continue;
    out.push_back({n, static_cast<uint32_t>(pid), !process_alive(static_cast<uint32_t>(pid))});
  }
  closedir(d);
  std::sort(out.begin(), out.end(), [](const SegmentInfo& a, const SegmentInfo& b) {
    return a.pid != b.pid ? a.pid < b.pid : a.name < b.name;
  });
  return out;
}

bool remove_if_stale(const SegmentInfo& s) {
  if (!s.stale) return false;
  const std::string path = "/" + s.name;
  int fd = shm_open(path.c_str(), O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) return false;
  const bool unheld = flock(fd, LOCK_EX | LOCK_NB) == 0;
  if (unheld) {
    shm_unlink(path.c_str());
    shm_unlink((path + "-cap").c_str());
  }
  close(fd);
  return unheld;
}

size_t remove_stale_segments() {
  size_t removed = 0;
  for (const SegmentInfo& s : list_segments()) removed += remove_if_stale(s) ? 1 : 0;
  return removed;
}

Mapping& Mapping::operator=(Mapping&& o) noexcept {
  std::swap(hdr_, o.hdr_);
  std::swap(len_, o.len_);
  std::swap(name_, o.name_);
  return *this;
}

Mapping::~Mapping() {
  if (hdr_) munmap(hdr_, len_);
}

Expected<Mapping, std::string> Mapping::open(const std::string& name) {
  std::string path = "/" + name;
  int fd = shm_open(path.c_str(), O_RDWR | O_CLOEXEC, 0);
  if (fd < 0) return unexpected(path + ": " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || size_t(st.st_size) < sizeof(Header)) {
    close(fd);
    return unexpected(path + ": too small for a stats segment");
  }
  void* p = mmap(nullptr, size_t(st.st_size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  int err = errno;
  close(fd);
  if (p == MAP_FAILED) return unexpected(path + ": mmap: " + std::strerror(err));
  Mapping m;
  m.hdr_ = static_cast<Header*>(p);
  m.len_ = size_t(st.st_size);
  m.name_ = name;
  return m;
}

Expected<Snapshot, std::string> read_snapshot(const Header& h, size_t len) {
  if (std::atomic_ref<const uint64_t>(h.magic).load(std::memory_order_acquire) != kMagic) {
    return unexpected(std::string("not an xstack stats segment (or not initialised yet)"));
  }
  if (h.version != kVersion) return unexpected("segment version " + std::to_string(h.version) + ", tool knows " +
                                               std::to_string(kVersion));
  if (h.total_size > len || h.header_size > len || h.sockets_offset > len || h.counters_offset > len ||
      h.sockets_offset + uint64_t(h.socket_capacity) * h.socket_row_size > len ||
      h.counters_offset + uint64_t(h.counter_capacity) * h.counter_row_size > len) {
    return unexpected(std::string("segment sizes are inconsistent"));
  }
  // Copy the whole segment between two equal sequence numbers, then decode
  // the copy at leisure.
  std::vector<uint8_t> buf(h.total_size);
  // A publish of a large table takes a fraction of a millisecond: back off
  // and retry for up to a second rather than report a busy segment.
  bool ok = false;
  for (int i = 0; i < 2000 && !ok; ++i) {
    ok = read_consistent(h, &h, buf.data(), buf.size(), 100);
    if (!ok) usleep(500);
  }
  if (!ok) return unexpected(std::string("segment kept changing"));
  const auto& c = *reinterpret_cast<const Header*>(buf.data());
  Snapshot s;
  s.pid = c.pid;
  s.device.assign(c.device, strnlen(c.device, sizeof c.device));
  s.local_addr = c.local_addr;
  s.prefix_len = c.prefix_len;
  s.period_ms = c.period_ms;
  s.publish_count = c.publish_count;
  s.publish_realtime_ns = c.publish_realtime_ns;
  s.socket_total = c.socket_total;
  s.truncated = c.truncated != 0;
  uint32_t rows = std::min(c.socket_rows, c.socket_capacity);
  size_t rsz = std::min<size_t>(c.socket_row_size, sizeof(SocketRow));
  s.sockets.resize(rows);
  for (uint32_t i = 0; i < rows; ++i) {
    std::memcpy(&s.sockets[i], buf.data() + c.sockets_offset + size_t(i) * c.socket_row_size, rsz);
  }
  uint32_t nc = std::min(c.counter_rows, c.counter_capacity);
  if (c.counter_row_size < sizeof(CounterRow)) nc = 0;  // layout we cannot read
  for (uint32_t i = 0; i < nc; ++i) {
    CounterRow r;
    std::memcpy(&r, buf.data() + c.counters_offset + size_t(i) * c.counter_row_size, sizeof r);
    s.counters.emplace_back(std::string(r.name, strnlen(r.name, sizeof r.name)), r.value);
  }
  return s;
}

Expected<Snapshot, std::string> read_snapshot(const Mapping& m) { return read_snapshot(m.header(), m.size()); }

const char* state_name(uint8_t proto, uint8_t state) {
  if (proto == kProtoUdp) return state == 1 ? "ESTAB" : "UNCONN";
  static const char* const names[] = {"?",        "ESTAB",   "SYN-SENT",   "SYN-RECV", "FIN-WAIT-1", "FIN-WAIT-2",
                                      "TIME-WAIT", "UNCONN", "CLOSE-WAIT", "LAST-ACK", "LISTEN",     "CLOSING"};
  return state < std::size(names) ? names[state] : "?";
}

}  // namespace xs::stats
