#include "stack/tcp/recv_queue.hpp"

#include <algorithm>
#include <cstring>

namespace xs {

void RecvQueue::enable_frames(size_t max_frames) {
  // Held frames keep their order in the new array, which is never smaller
  // than their count (a smaller limit only stops new ones).
  std::vector<Seg> next(std::max(max_frames, count_));
  for (size_t i = 0; i < count_; ++i) next[i] = seg(i);
  frames_ = std::move(next);
  head_ = 0;
}

void RecvQueue::append_frame(Bytes data, uint64_t handle, FrameLender& lender) {
  lender_ = &lender;  // one lender per stack: every held frame goes back to it
  frames_[(head_ + count_) % frames_.size()] = Seg{data.data(), static_cast<uint32_t>(data.size()), handle};
  ++count_;
  frame_bytes_ += data.size();
}

void RecvQueue::pop_front() {
  lender_->release(frames_[head_].handle);
  head_ = (head_ + 1) % frames_.size();
  --count_;
  front_used_ = 0;
}

size_t RecvQueue::read(MutBytes out, size_t offset) const {
  size_t copied = 0;
  size_t skip = offset;
  for (size_t i = 0; i < count_ && copied < out.size(); ++i) {
    const Seg& s = seg(i);
    const size_t first = (i == 0 ? front_used_ : 0);
    const size_t avail = s.len - first;
    if (skip >= avail) {
      skip -= avail;
      continue;
    }
    const size_t n = std::min(avail - skip, out.size() - copied);
    std::memcpy(out.data() + copied, s.data + first + skip, n);
    copied += n;
    skip = 0;
  }
  if (copied < out.size()) copied += ring_.read(out.subspan(copied), skip);
  return copied;
}

void RecvQueue::consume(size_t n) {
  while (n > 0 && count_ > 0) {
    const size_t avail = frames_[head_].len - front_used_;
    if (n < avail) {
      front_used_ += static_cast<uint32_t>(n);
      frame_bytes_ -= n;
      return;
    }
    n -= avail;
    frame_bytes_ -= avail;
    pop_front();
  }
  ring_.consume(n);
}

size_t RecvQueue::segments(size_t offset, size_t len, std::span<Bytes> out) const {
  size_t k = 0;
  size_t skip = offset;
  len = std::min(len, size() > offset ? size() - offset : 0);
  for (size_t i = 0; i < count_ && len > 0 && k < out.size(); ++i) {
    const Seg& s = seg(i);
    const size_t first = (i == 0 ? front_used_ : 0);
    const size_t avail = s.len - first;
    if (skip >= avail) {
      skip -= avail;
      continue;
    }
    const size_t n = std::min(avail - skip, len);
    out[k++] = Bytes(s.data + first + skip, n);
    len -= n;
    skip = 0;
  }
  if (len > 0 && k < out.size()) {
    for (Bytes b : ring_.segments(skip, len)) {
      if (!b.empty() && k < out.size()) out[k++] = b;
    }
  }
  return k;
}

void RecvQueue::release_frames() {
  while (count_ > 0) pop_front();
  frame_bytes_ = 0;
}

}  // namespace xs
