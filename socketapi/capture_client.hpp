// The reader side of the capture handshake (xstack-dump, tests): creates the
// capture ring segment next to an engine's stats segment, asks the engine to
// attach, drains records, and detaches (docs/observability.md).
#pragma once
#include <cstdint>
#include <string>

#include "socketapi/capture_ring.hpp"
#include "socketapi/stats_reader.hpp"

namespace xs::capture {

class Client {
 public:
  // Creates "/<stats name>-cap" with a ring of `ring_size` bytes (rounded up
  // to a power of two) and requests the capture. Fails if another live
  // reader holds the segment (one capture per engine at a time).
  static Expected<Client, std::string> start(stats::Mapping& stats, uint64_t ring_size, uint32_t snaplen);
  Client(Client&& o) noexcept { *this = std::move(o); }
  Client& operator=(Client&& o) noexcept;
  ~Client();  // stop()

  // Whether the engine has mapped the ring (it does at its next poll).
  bool attached() const;
  // Calls fn(const Record&) for each record written since the last call and
  // refreshes the heartbeat. -1: the ring is corrupt.
  template <class F>
  long poll(F&& fn) {
    heartbeat();
    return drain(*hdr_, reinterpret_cast<const uint8_t*>(hdr_) + hdr_->data_offset, fn);
  }
  uint64_t drops() const { return hdr_->drops.load(std::memory_order_relaxed); }
  uint64_t frames() const { return hdr_->frames.load(std::memory_order_relaxed); }
  // Withdraws the request and waits (up to `wait_ms`) for the engine to let
  // go; poll() then reads the last records.
  void withdraw(int wait_ms = 300);
  // withdraw(), then unmaps and removes the segment. Idempotent.
  void stop();

 private:
  Client() = default;
  void heartbeat();

  stats::Header* stats_ = nullptr;
  CaptureHeader* hdr_ = nullptr;
  size_t len_ = 0;
  std::string name_;
  uint32_t gen_ = 0;
};

}  // namespace xs::capture
