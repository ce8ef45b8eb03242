// Sender-side SACK scoreboard (RFC 6675 section 3): the ranges above snd_una
// that the receiver has reported as held (RFC 2018), kept sorted, disjoint and
// non-adjacent in sequence space. Fixed capacity, no allocation.
//
// When a new block would need more than kMaxRanges ranges, the range with the
// fewest bytes is forgotten (never the highest one, so highest_sacked() and
// the IsLost byte count stay anchored at the top). Forgetting a SACKed range
// is always safe: at worst those bytes are retransmitted needlessly (RFC 2018
// section 8 already lets the receiver renege, so the sender cannot rely on
// SACK state for correctness anyway).
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>
#include <utility>

#include "stack/base/seq.hpp"
#include "stack/wire/tcp.hpp"

namespace xs {

class SackScoreboard {
 public:
  // Drop-tail queues in slow start lose every other segment, so a window can
  // hold hundreds of holes; storage for the ranges is allocated at the first
  // out-of-order event of a connection (not per segment).
  static constexpr size_t kMaxRanges = 1024;

  explicit SackScoreboard(size_t max_ranges = kMaxRanges) : max_(max_ranges) {}

  void reset() { n_ = 0; sacked_ = 0; }

  // Cumulative ACK moved to snd_una: forget everything below it.
  void on_ack(Seq snd_una);

  // Records the SACK blocks of one ACK (first trims below snd_una). Blocks not
  // inside [snd_una, snd_nxt] (or empty) are ignored. A D-SACK (RFC 2883
  // section 4: the first block starts below snd_una, or lies within the second
  // block) is not recorded; *dsack (if non-null) is set to whether one was
  // found. Returns the bytes newly marked SACKed by this ACK (counted before
  // any capacity eviction).
  uint32_t update(Seq snd_una, Seq snd_nxt, std::span<const SackBlock> blocks, bool* dsack);

  bool is_sacked(Seq s) const;
  uint32_t sacked_bytes() const { return sacked_; }
  // Right edge of the highest SACKed range (RFC 6675 HighSACK + 1).
  std::optional<Seq> highest_sacked() const;

  // RFC 6675 section 4 IsLost(seq): true if at least dup_thresh discontiguous
  // SACKed ranges hold sequence numbers above seq, or more than
  // (dup_thresh - 1) * mss bytes above seq are SACKed.
  bool is_lost(Seq seq, uint32_t mss, uint32_t dup_thresh = 3) const;

  // First un-SACKed range [a, b) with from <= a and b <= limit (NextSeg rules
  // 1 and 3, RFC 6675 section 4); nullopt if [from, limit) is fully SACKed.
  std::optional<std::pair<Seq, Seq>> next_hole(Seq from, Seq limit) const;

  // SACKed bytes at sequence numbers >= s.
  uint32_t sacked_above(Seq s) const;
  // SACKed bytes in [a, b) (pipe computation, RFC 6675 SetPipe).
  uint32_t sacked_between(Seq a, Seq b) const;

  size_t range_count() const { return n_; }
  // Current ranges, ascending (for tests and diagnostics).
  std::span<const SackBlock> ranges() const { return {r_.data(), n_}; }

 private:
  // Inserts [left, right), merging; returns bytes newly covered.
  uint32_t insert(Seq left, Seq right);

  // One spare slot: a block is merged in first, then the capacity rule runs.
  size_t max_;
  std::vector<SackBlock> r_;  // max_ + 1 slots once in use
  size_t n_ = 0;
  uint32_t sacked_ = 0;
};

}  // namespace xs
