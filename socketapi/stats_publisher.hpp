// Publishes an engine's socket table and counters into a shared-memory
// segment (stats_segment.hpp) that xstack-stat reads, and runs the capture
// handshake with xstack-dump (capture_request / capture_attached).
//
// The segment is sized once at creation; publish_locked() allocates nothing:
// it rewrites the rows in place under the seqlock. The engine calls it from
// poll_locked() at most once per period (docs/observability.md).
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "socketapi/capture_tap.hpp"
#include "socketapi/packet_device.hpp"
#include "socketapi/stats_segment.hpp"
#include "stack/stack.hpp"

namespace xs {

struct StatsConfig {
  bool enabled = true;               // env XSTACK_STATS=0 turns it off
  Duration period = millis(100);     // env XSTACK_STATS_PERIOD_MS
  uint32_t socket_capacity = 4096;   // env XSTACK_STATS_SOCKETS: rows; more sockets set `truncated`
  uint32_t counter_capacity = 256;
  // Overrides from the environment (the three variables above).
  void apply_env();
};

// Writes one snapshot of `stack` and `dev` into a segment laid out by
// stats::init_segment (no allocation, no system call). Exposed for tests.
void fill_stats_snapshot(stats::Header& h, Stack& stack, const DeviceCounters& dev, Instant now,
                         int64_t realtime_ns);

class StatsPublisher {
 public:
  // Creates "/xstack-<pid>" (the process's first engine) or
  // "/xstack-<pid>.<n>" (further engines), mode 0600. nullptr with a
  // message on stderr if shared memory is unavailable: the engine runs on.
  static std::unique_ptr<StatsPublisher> create(const StatsConfig& cfg, const std::string& device, Ipv4Cidr addr);
  ~StatsPublisher();  // unmaps and unlinks the segment (and a capture segment left behind)
  StatsPublisher(const StatsPublisher&) = delete;
  StatsPublisher& operator=(const StatsPublisher&) = delete;

  // A fresh snapshot; also attaches/detaches `tap` as the capture handshake
  // asks, and detaches a reader that stopped polling (killed). Lock held.
  void publish_locked(Instant now, Stack& stack, const DeviceCounters& dev, CaptureTap& tap);
  // Detaches `tap` and removes the capture segment (engine stopping).
  void end_capture_locked(CaptureTap& tap);

  const std::string& name() const { return name_; }  // without the leading '/'
  stats::Header& header() { return *hdr_; }

 private:
  StatsPublisher() = default;
  void update_capture_locked(CaptureTap& tap);

  std::string name_;
  stats::Header* hdr_ = nullptr;
  size_t len_ = 0;
  uint32_t attached_gen_ = 0;
  int lock_fd_ = -1;  // the segment, open with a shared flock (stale-segment sweeping)
};

// "xstack-<pid>" / "xstack-<pid>-cap" naming shared with the tools.
std::string stats_capture_name(const std::string& stats_name);

}  // namespace xs
