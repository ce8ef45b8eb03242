// The reading side of the stats segment, shared by xstack-stat, xstack-dump
// and the tests: find segments, map one, take a consistent snapshot.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "socketapi/stats_segment.hpp"
#include "stack/base/expected.hpp"

namespace xs::stats {

struct SegmentInfo {
  std::string name;  // "xstack-<pid>[.<n>]" (no leading '/')
  uint32_t pid = 0;
  bool stale = false;  // its process no longer exists (died without unlinking)
};

// Segments in /dev/shm, by name.
std::vector<SegmentInfo> list_segments();
// True if process `pid` exists.
bool process_alive(uint32_t pid);
// Removes `s` (and its capture segment) if a process killed or crashed
// without unlinking left it: its pid is gone here and nothing holds its
// lock. A publisher holds one for its life, so a live process in another
// pid namespace keeps its segment. True if removed.
bool remove_if_stale(const SegmentInfo& s);
// remove_if_stale() over every segment in /dev/shm; how many were removed.
size_t remove_stale_segments();

// A stats segment mapped read-write (the capture handshake writes to it).
class Mapping {
 public:
  static Expected<Mapping, std::string> open(const std::string& name);
  Mapping(Mapping&& o) noexcept { *this = std::move(o); }
  Mapping& operator=(Mapping&& o) noexcept;
  ~Mapping();
  Header& header() const { return *hdr_; }
  size_t size() const { return len_; }
  const std::string& name() const { return name_; }

 private:
  Mapping() = default;
  Header* hdr_ = nullptr;
  size_t len_ = 0;
  std::string name_;
};

struct Snapshot {
  uint32_t pid = 0;
  std::string device;
  uint32_t local_addr = 0;
  uint8_t prefix_len = 0;
  uint32_t period_ms = 0;
  uint64_t publish_count = 0;
  int64_t publish_realtime_ns = 0;
  uint32_t socket_total = 0;
  bool truncated = false;
  std::vector<SocketRow> sockets;
  std::vector<std::pair<std::string, uint64_t>> counters;
};

// A consistent copy of the current snapshot (retries while the writer is
// mid-update). Error if the segment is invalid or never stops changing.
Expected<Snapshot, std::string> read_snapshot(const Mapping& m);
// The same from a segment in memory (tests).
Expected<Snapshot, std::string> read_snapshot(const Header& h, size_t len);

// Linux TCP state names as `ss` prints them (UDP: 1 ESTAB, 7 UNCONN).
const char* state_name(uint8_t proto, uint8_t state);

}  // namespace xs::stats
