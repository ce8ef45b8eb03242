// Where the engine copies frames for xstack-dump: a FrameSink decorator in
// front of the device (TX) plus record_rx() called from the engine's RX loop.
// Detached (the usual case) it costs one pointer test per TX frame and per RX
// batch; attached it appends each frame to a capture ring in a shared-memory
// segment the tool created (capture_ring.hpp). All calls under the engine lock.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "socketapi/capture_ring.hpp"
#include "stack/net/frame_sink.hpp"

namespace xs {

class CaptureTap final : public FrameSink {
 public:
  explicit CaptureTap(FrameSink& dev) : dev_(dev) {}
  ~CaptureTap() override { detach(false); }
  CaptureTap(const CaptureTap&) = delete;
  CaptureTap& operator=(const CaptureTap&) = delete;

  MutBytes tx_acquire() override {
    last_ = dev_.tx_acquire();
    return last_;
  }
  void tx_commit(size_t len) override {
    if (writer_) [[unlikely]] record(Bytes(last_.data(), len < last_.size() ? len : last_.size()), capture::Dir::Tx);
    dev_.tx_commit(len);
  }
  size_t max_frame_len() const override { return dev_.max_frame_len(); }

  bool active() const { return writer_.has_value(); }
  void record_rx(Bytes frame) { record(frame, capture::Dir::Rx); }

  // Maps the capture segment `shm_name` (created by the reader) and starts
  // copying frames into it. False (and detached) if it is missing or invalid.
  bool attach(const std::string& shm_name);
  // Stops copying and unmaps; `unlink` removes the segment too (the reader
  // is gone and cannot).
  void detach(bool unlink);
  // The attached ring's header (nullptr when detached).
  capture::CaptureHeader* header() const { return hdr_; }

 private:
  void record(Bytes frame, capture::Dir dir);

  FrameSink& dev_;
  MutBytes last_;
  std::optional<capture::Writer> writer_;  // engaged while attached
  capture::CaptureHeader* hdr_ = nullptr;
  void* map_ = nullptr;
  size_t map_len_ = 0;
  std::string name_;
};

}  // namespace xs
