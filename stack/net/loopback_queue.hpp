// Frames the stack sends to itself (its own address, 127.0.0.0/8): the
// loopback device it does not otherwise have. IpLayer writes a looped frame
// here instead of into the device and delivers it on its next poll, never
// from inside the send, so a socket call never re-enters the stack.
// A fixed pool, allocated at first use: no allocation per frame.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "stack/base/bytes.hpp"

namespace xs {

class LoopbackQueue {
 public:
  static constexpr size_t kFrames = 256;
  explicit LoopbackQueue(size_t frame_len) : frame_len_(frame_len) {}

  // A free frame buffer, empty when all kFrames are queued (the frame is
  // then dropped, as a full device queue would drop it).
  MutBytes acquire();
  // Queues the buffer acquire() returned, `len` bytes long.
  void commit(size_t len);
  bool empty() const { return count_ == 0; }
  // The oldest queued frame; valid until pop().
  Bytes front() const;
  void pop();

 private:
  size_t frame_len_;
  std::vector<uint8_t> mem_;       // kFrames * frame_len_, at first acquire()
  std::vector<uint16_t> len_;      // per slot
  size_t head_ = 0, count_ = 0;    // ring of queued slots
};

}  // namespace xs
