// Out-of-order receive bookkeeping: which byte ranges beyond the contiguous
// receive point (rcv_nxt) have arrived. The bytes themselves live in the
// receive ByteRing at ring offset ring.size() + assembler offset.
//
// Receiver usage:
//   out-of-order segment at rcv_nxt + off, length len:
//     if (!a.add(off, len)) drop and count; else ring.write_at(ring.size() + off, data)
//   in-order segment of length n (already written at ring offset ring.size()):
//     a.shift(n); uint32_t more = a.pop_front(); ring.commit(n + more); rcv_nxt += n + more
//
// Fixed capacity, no allocation. Ranges are kept sorted, disjoint and
// non-adjacent (adjacent ranges merge, as RFC 2018 section 3 requires each
// SACK block to be a maximal contiguous block).
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "stack/base/seq.hpp"
#include "stack/wire/tcp.hpp"

namespace xs {

class Assembler {
 public:
  // Drop-tail queues in slow start lose every other segment, so a window can
  // hold hundreds of holes; storage for the ranges is allocated at the first
  // out-of-order event of a connection (not per segment).
  static constexpr size_t kMaxRanges = 1024;

  explicit Assembler(size_t max_ranges = kMaxRanges) : max_(max_ranges) {}

  // Records [offset, offset + len) (relative to rcv_nxt) as received. Overlaps
  // and duplicates merge. Returns false, changing nothing, if the result would
  // need more than kMaxRanges ranges. len 0 is a no-op returning true.
  bool add(uint32_t offset, uint32_t len);

  // If a range starts at offset 0, removes it and returns its length; all
  // remaining offsets shift down by that length. Otherwise returns 0.
  uint32_t pop_front();

  // n bytes of in-order data arrived at offset 0: every range moves down by n;
  // ranges (or parts) inside [0, n) are dropped. A range that reached offset
  // 0 is then taken by pop_front().
  void shift(uint32_t n);

  bool empty() const { return n_ == 0; }
  size_t range_count() const { return n_; }
  uint32_t total_bytes() const;  // bytes held out of order

  // SACK blocks (RFC 2018 section 4) in absolute sequence numbers: first the
  // range holding the most recently received out-of-order segment, then the
  // others, most recently updated first. Returns the number written to out.
  size_t sack_blocks(Seq rcv_nxt, std::span<SackBlock> out) const;

  void clear() { n_ = 0; }

  struct Range {
    uint32_t offset = 0;
    uint32_t len = 0;
    uint64_t stamp = 0;  // add() counter at the last update: SACK recency
  };
  // Current ranges in ascending offset order (for tests and diagnostics).
  std::span<const Range> ranges() const { return {r_.data(), n_}; }

 private:
  size_t max_;
  std::vector<Range> r_;  // max_ slots once in use
  size_t n_ = 0;
  uint64_t clock_ = 0;
};

}  // namespace xs
