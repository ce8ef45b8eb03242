// The TCP receive queue: in-order bytes that stayed in the frames they
// arrived in (zero-copy receive, docs/zerocopy.md), followed by the byte
// ring that holds copied bytes and out-of-order data.
//
// Frame-held bytes always precede the ring's bytes: a segment is kept in its
// frame only when it is next in sequence and the ring holds nothing (no
// readable bytes, no out-of-order data -- TcpSocket checks the latter), so
// the stream order is frames first, then ring. Offsets in read/consume/
// segments count from the oldest byte of the whole queue; ring() is the
// ring alone, for placing segments (its offsets start after the frames).
//
// The frame list is a fixed array allocated by enable_frames(), never per
// segment; when it is full the caller copies into the ring instead.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "stack/base/bytes.hpp"
#include "stack/net/frame_lender.hpp"
#include "stack/tcp/byte_ring.hpp"

namespace xs {

class RecvQueue {
 public:
  RecvQueue() = default;
  ~RecvQueue() { release_frames(); }
  RecvQueue(const RecvQueue&) = delete;
  RecvQueue& operator=(const RecvQueue&) = delete;

  // Readable bytes: frame-held and copied.
  size_t size() const { return frame_bytes_ + ring_.size(); }
  bool empty() const { return size() == 0; }
  size_t frame_bytes() const { return frame_bytes_; }
  size_t frame_count() const { return count_; }
  size_t frame_capacity() const { return frames_.size(); }

  ByteRing& ring() { return ring_; }
  const ByteRing& ring() const { return ring_; }

  // Sizes the frame list (0 turns frame holding off for new segments; held
  // frames stay until read). Allocates: call from a socket call, not per segment.
  void enable_frames(size_t max_frames);
  // True when a segment that is next in sequence may be kept in its frame.
  bool can_hold_frame() const { return count_ < frames_.size() && ring_.size() == 0; }
  // Appends `data`, which lies in the frame `handle` held from `lender`.
  void append_frame(Bytes data, uint64_t handle, FrameLender& lender);

  // Copies bytes [offset, offset + out.size()) clipped to size() into out;
  // returns the number copied.
  size_t read(MutBytes out, size_t offset) const;
  // Drops n bytes from the front, giving back frames once fully consumed.
  void consume(size_t n);
  // Contiguous spans covering [offset, offset + len) clipped to size(), at
  // most out.size() of them (one per frame, up to two for the ring).
  // Returns the number written.
  size_t segments(size_t offset, size_t len, std::span<Bytes> out) const;

  // Frees the ring's memory when it holds nothing (TIME_WAIT keeps no buffers).
  void drop_ring_if_empty() {
    if (ring_.empty()) ring_ = ByteRing();
  }

 private:
  struct Seg {
    const uint8_t* data;
    uint32_t len;
    uint64_t handle;
  };
  const Seg& seg(size_t i) const { return frames_[(head_ + i) % frames_.size()]; }
  void pop_front();
  void release_frames();

  std::vector<Seg> frames_;  // circular; size() is the capacity
  size_t head_ = 0;
  size_t count_ = 0;
  uint32_t front_used_ = 0;  // bytes of the first frame already consumed
  size_t frame_bytes_ = 0;   // readable bytes in frames (excludes front_used_)
  FrameLender* lender_ = nullptr;
  ByteRing ring_;
};

}  // namespace xs
