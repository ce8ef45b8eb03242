// Circular byte buffer backing the TCP send and receive queues.
//
// Offsets in every method count from the front (the oldest byte still held).
// The receive side keeps out-of-order data in the free space beyond size()
// (write_at) and makes it readable with commit() once the hole before it is
// filled (RFC 9293 3.10.7.4, "seventh, process the segment text"); the
// Assembler records which of those bytes are valid. The send side builds
// segments straight from segments() without copying.
//
// Storage is allocated only by the constructor and reserve(); every other
// operation is allocation-free, so per-segment work never touches the heap.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>

#include "stack/base/bytes.hpp"

namespace xs {

class ByteRing {
 public:
  explicit ByteRing(size_t capacity = 0);

  // Moves leave the source an empty zero-capacity ring (a defaulted move
  // would leave cap_ set over a null buffer).
  ByteRing(ByteRing&& o) noexcept
      : buf_(std::move(o.buf_)), cap_(std::exchange(o.cap_, 0)),
        head_(std::exchange(o.head_, 0)), size_(std::exchange(o.size_, 0)) {}
  ByteRing& operator=(ByteRing&& o) noexcept {
    buf_ = std::move(o.buf_);
    cap_ = std::exchange(o.cap_, 0);
    head_ = std::exchange(o.head_, 0);
    size_ = std::exchange(o.size_, 0);
    return *this;
  }
  ByteRing(const ByteRing&) = delete;
  ByteRing& operator=(const ByteRing&) = delete;

  // Grows the buffer to new_capacity, keeping every byte at its offset --
  // including bytes placed with write_at() beyond size() (out-of-order data
  // awaiting commit), so receive-buffer auto-tuning never loses them.
  // Requests not larger than capacity() are ignored (never shrinks).
  void reserve(size_t new_capacity);

  size_t capacity() const { return cap_; }
  size_t size() const { return size_; }
  size_t free_space() const { return cap_ - size_; }
  bool empty() const { return size_ == 0; }

  // Appends as much of data as fits; returns the number of bytes appended.
  size_t push(Bytes data);

  // Copies bytes [offset, offset + out.size()) clipped to size() into out
  // without consuming them; returns the number copied (0 if offset >= size()).
  size_t read(MutBytes out, size_t offset = 0) const;

  // Drops n bytes from the front (clamped to size()).
  void consume(size_t n);

  // Stores data at offset from the front, where offset may be >= size()
  // (out-of-order receive). Writes only what fits below capacity(); does not
  // change size(). Returns the number of bytes written.
  size_t write_at(size_t offset, Bytes data);

  // Makes n more bytes readable (clamped to free_space()): bytes already placed
  // with write_at() or through writable().
  void commit(size_t n);

  // Up to two contiguous spans covering [offset, offset + len) clipped to
  // size(); the second span is empty unless the range wraps.
  std::array<Bytes, 2> segments(size_t offset, size_t len) const;

  // The free space [size(), capacity()) as up to two spans; call commit()
  // with the number of bytes filled.
  std::array<MutBytes, 2> writable();

  void clear() { head_ = 0; size_ = 0; }

 private:
  // Physical index of logical offset off (off < cap_).
  size_t phys(size_t off) const {
    size_t p = head_ + off;
    return p >= cap_ ? p - cap_ : p;
  }

  std::unique_ptr<uint8_t[]> buf_;
  size_t cap_ = 0;
  size_t head_ = 0;  // physical index of the front byte
  size_t size_ = 0;  // readable bytes
};

}  // namespace xs
