#include "stack/tcp/byte_ring.hpp"

#include <algorithm>
#include <cstring>

namespace xs {

ByteRing::ByteRing(size_t capacity) { reserve(capacity); }

void ByteRing::reserve(size_t new_capacity) {
  if (new_capacity <= cap_) return;
  // Value-initialised (zeroed): bytes committed without being written read as
  // zeros, never as stale heap contents. Only paid on resize.
  auto nb = std::make_unique<uint8_t[]>(new_capacity);
  // Linearise the whole old buffer, not just [0, size()): out-of-order bytes
  // stored with write_at() beyond size() must keep their offsets.
  if (cap_ > 0) {
    const size_t first = cap_ - head_;
    std::memcpy(nb.get(), buf_.get() + head_, first);
    std::memcpy(nb.get() + first, buf_.get(), head_);
  }
  buf_ = std::move(nb);
  cap_ = new_capacity;
  head_ = 0;
}

size_t ByteRing::push(Bytes data) {
  const size_t n = write_at(size_, data);
  size_ += n;
  return n;
}

size_t ByteRing::read(MutBytes out, size_t offset) const {
  auto segs = segments(offset, out.size());
  size_t n = 0;
  for (Bytes s : segs) {
    if (s.empty()) continue;
    std::memcpy(out.data() + n, s.data(), s.size());
    n += s.size();
  }
  return n;
}

void ByteRing::consume(size_t n) {
  n = std::min(n, size_);
  size_ -= n;
  // head_ is never reset to 0 when the ring empties: out-of-order bytes may
  // sit beyond size() (a hole at rcv_nxt) and must keep their offsets.
  if (cap_ > 0) head_ = phys(n);  // phys(cap_) == head_, a full turn
}

size_t ByteRing::write_at(size_t offset, Bytes data) {
  if (offset >= cap_) return 0;
  const size_t n = std::min(data.size(), cap_ - offset);
  if (n == 0) return 0;
  const size_t p = phys(offset);
  const size_t first = std::min(n, cap_ - p);
  std::memcpy(buf_.get() + p, data.data(), first);
  if (n > first) std::memcpy(buf_.get(), data.data() + first, n - first);
  return n;
}

void ByteRing::commit(size_t n) { size_ += std::min(n, free_space()); }

std::array<Bytes, 2> ByteRing::segments(size_t offset, size_t len) const {
  if (offset >= size_) return {};
  len = std::min(len, size_ - offset);
  const size_t p = phys(offset);
  const size_t first = std::min(len, cap_ - p);
  return {Bytes(buf_.get() + p, first), Bytes(buf_.get(), len - first)};
}

std::array<MutBytes, 2> ByteRing::writable() {
  const size_t len = free_space();
  if (len == 0) return {};
  const size_t p = phys(size_);  // size_ < cap_ here
  const size_t first = std::min(len, cap_ - p);
  return {MutBytes(buf_.get() + p, first), MutBytes(buf_.get(), len - first)};
}

}  // namespace xs
