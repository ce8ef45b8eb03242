#include "stack/net/loopback_queue.hpp"

namespace xs {

MutBytes LoopbackQueue::acquire() {
  if (count_ == kFrames) return {};
  if (mem_.empty()) {
    mem_.resize(kFrames * frame_len_);
    len_.resize(kFrames);
  }
  const size_t slot = (head_ + count_) % kFrames;
  return MutBytes(mem_.data() + slot * frame_len_, frame_len_);
}

void LoopbackQueue::commit(size_t len) {
  if (count_ == kFrames || mem_.empty()) return;
  len_[(head_ + count_) % kFrames] = static_cast<uint16_t>(len);
  ++count_;
}

Bytes LoopbackQueue::front() const { return Bytes(mem_.data() + head_ * frame_len_, len_[head_]); }

void LoopbackQueue::pop() {
  if (count_ == 0) return;
  head_ = (head_ + 1) % kFrames;
  --count_;
}

}  // namespace xs
