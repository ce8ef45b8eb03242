#include "stack/tcp/assembler.hpp"

#include <algorithm>

namespace xs {

bool Assembler::add(uint32_t offset, uint32_t len) {
  if (r_.empty()) r_.resize(max_);
  if (len == 0) return true;
  // 64-bit ends: offset + len cannot wrap (offsets are window-bounded in
  // practice, but a hostile peer must not be able to corrupt the bookkeeping).
  uint64_t lo = offset;
  uint64_t hi = uint64_t{offset} + len;
  // Ranges [first, last) touch the new one (overlap or adjacency: RFC 2018
  // section 3 wants maximal contiguous blocks, so adjacent ranges merge).
  size_t first = 0;
  while (first < n_ && uint64_t{r_[first].offset} + r_[first].len < lo) ++first;
  size_t last = first;
  while (last < n_ && r_[last].offset <= hi) ++last;
  const size_t merged = last - first;
  if (merged == 0 && n_ == max_) return false;
  if (merged > 0) {
    lo = std::min<uint64_t>(lo, r_[first].offset);
    hi = std::max<uint64_t>(hi, uint64_t{r_[last - 1].offset} + r_[last - 1].len);
  }
  if (hi > UINT32_MAX) hi = UINT32_MAX;  // clip rather than wrap
  // Replace r_[first, last) by one range.
  const Range nr{static_cast<uint32_t>(lo), static_cast<uint32_t>(hi - lo), ++clock_};
  if (merged == 0) {
    std::move_backward(r_.begin() + first, r_.begin() + n_, r_.begin() + n_ + 1);
    ++n_;
  } else if (merged > 1) {
    std::move(r_.begin() + last, r_.begin() + n_, r_.begin() + first + 1);
    n_ -= merged - 1;
  }
  r_[first] = nr;
  return true;
}

uint32_t Assembler::pop_front() {
  if (n_ == 0 || r_[0].offset != 0) return 0;
  const uint32_t len = r_[0].len;
  std::move(r_.begin() + 1, r_.begin() + n_, r_.begin());
  --n_;
  // Ranges are non-adjacent, so every remaining offset is > len.
  for (size_t i = 0; i < n_; ++i) r_[i].offset -= len;
  return len;
}

void Assembler::shift(uint32_t n) {
  if (n == 0) return;
  size_t out = 0;
  for (size_t i = 0; i < n_; ++i) {
    Range r = r_[i];
    const uint64_t end = uint64_t{r.offset} + r.len;
    if (end <= n) continue;  // wholly duplicated by the in-order data
    if (r.offset < n) {
      r.len = static_cast<uint32_t>(end - n);
      r.offset = 0;
    } else {
      r.offset -= n;
    }
    r_[out++] = r;
  }
  n_ = out;
}

uint32_t Assembler::total_bytes() const {
  uint32_t t = 0;
  for (size_t i = 0; i < n_; ++i) t += r_[i].len;
  return t;
}

size_t Assembler::sack_blocks(Seq rcv_nxt, std::span<SackBlock> out) const {
  // RFC 2018 section 4: the first block reports the segment that triggered
  // this ACK (the range add() touched last); following blocks repeat the most
  // recently reported ones. Stamps are unique, so picking the next-largest
  // stamp each round gives a strict recency order without sorting or
  // allocating (out is at most 4 entries, n_ at most 32).
  size_t k = 0;
  uint64_t below = UINT64_MAX;
  while (k < out.size()) {
    size_t best = n_;
    for (size_t i = 0; i < n_; ++i) {
      if (r_[i].stamp < below && (best == n_ || r_[i].stamp > r_[best].stamp)) best = i;
    }
    if (best == n_) break;
    below = r_[best].stamp;
    out[k++] = SackBlock{rcv_nxt + r_[best].offset, rcv_nxt + r_[best].offset + r_[best].len};
  }
  return k;
}

}  // namespace xs
