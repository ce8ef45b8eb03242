#include "stack/tcp/sack_scoreboard.hpp"

#include <algorithm>

namespace xs {

namespace {

uint32_t span_len(Seq left, Seq right) { return static_cast<uint32_t>(right - left); }

}  // namespace

void SackScoreboard::on_ack(Seq snd_una) {
  size_t out = 0;
  for (size_t i = 0; i < n_; ++i) {
    SackBlock b = r_[i];
    if (b.right <= snd_una) {  // wholly cumulatively acked
      sacked_ -= span_len(b.left, b.right);
      continue;
    }
    if (b.left < snd_una) {
      sacked_ -= span_len(b.left, snd_una);
      b.left = snd_una;
    }
    r_[out++] = b;
  }
  n_ = out;
}

uint32_t SackScoreboard::insert(Seq left, Seq right) {
  if (r_.empty()) r_.resize(max_ + 1);
  // Ranges [first, last) overlap or touch [left, right); they merge into one.
  size_t first = 0;
  while (first < n_ && r_[first].right < left) ++first;
  size_t last = first;
  while (last < n_ && r_[last].left <= right) ++last;

  uint32_t already = 0;
  Seq lo = left;
  Seq hi = right;
  for (size_t i = first; i < last; ++i) {
    const Seq ol = seq_max(r_[i].left, left);
    const Seq oh = seq_min(r_[i].right, right);
    if (ol < oh) already += span_len(ol, oh);
    lo = seq_min(lo, r_[i].left);
    hi = seq_max(hi, r_[i].right);
    sacked_ -= span_len(r_[i].left, r_[i].right);
  }
  const size_t merged = last - first;
  if (merged == 0) {
    // r_ has max_ + 1 slots and n_ <= max_ here.
    std::move_backward(r_.begin() + first, r_.begin() + n_, r_.begin() + n_ + 1);
    ++n_;
  } else if (merged > 1) {
    std::move(r_.begin() + last, r_.begin() + n_, r_.begin() + first + 1);
    n_ -= merged - 1;
  }
  r_[first] = SackBlock{lo, hi};
  sacked_ += span_len(lo, hi);

  if (n_ > max_) {
    // Over capacity: forget the smallest range below the top one (ties: the
    // lowest). It carries the least information for IsLost and costs the
    // fewest bytes if it is retransmitted needlessly; the top range is kept
    // so highest_sacked() and "SACKed above" counts stay right.
    size_t victim = 0;
    for (size_t i = 1; i + 1 < n_; ++i) {
      if (span_len(r_[i].left, r_[i].right) < span_len(r_[victim].left, r_[victim].right)) victim = i;
    }
    sacked_ -= span_len(r_[victim].left, r_[victim].right);
    std::move(r_.begin() + victim + 1, r_.begin() + n_, r_.begin() + victim);
    --n_;
  }
  return span_len(left, right) - already;
}

uint32_t SackScoreboard::update(Seq snd_una, Seq snd_nxt, std::span<const SackBlock> blocks,
                                bool* dsack) {
  on_ack(snd_una);
  bool is_dsack = false;
  // A block reaching beyond snd_nxt reports data never sent: bogus, never a D-SACK.
  if (!blocks.empty() && blocks[0].left < blocks[0].right && blocks[0].right <= snd_nxt) {
    const SackBlock& b0 = blocks[0];
    // RFC 2883 section 4 (and 5, sender side): the first block is a D-SACK if
    // it reports data already covered by the cumulative ACK (its left edge is
    // below snd_una -- a genuine SACK block can never start there), or if it
    // is a subset of the second block (duplicate of out-of-order data).
    if (b0.left < snd_una) {
      is_dsack = true;
    } else if (blocks.size() >= 2 && blocks[1].left <= b0.left && b0.right <= blocks[1].right) {
      is_dsack = true;
    }
  }
  if (dsack != nullptr) *dsack = is_dsack;

  uint32_t newly = 0;
  for (size_t i = is_dsack ? 1 : 0; i < blocks.size(); ++i) {
    const SackBlock& b = blocks[i];
    // RFC 2018 section 3 only lets a receiver SACK data it holds above the
    // cumulative ACK; anything else (below snd_una, beyond what was sent,
    // empty or inverted) is stale or bogus and must not mark data delivered.
    if (!(b.left < b.right) || b.left < snd_una || snd_nxt < b.right) continue;
    newly += insert(b.left, b.right);
  }
  return newly;
}

bool SackScoreboard::is_sacked(Seq s) const {
  for (size_t i = 0; i < n_; ++i) {
    if (r_[i].left <= s && s < r_[i].right) return true;
    if (s < r_[i].left) break;
  }
  return false;
}

std::optional<Seq> SackScoreboard::highest_sacked() const {
  if (n_ == 0) return std::nullopt;
  return r_[n_ - 1].right;
}

bool SackScoreboard::is_lost(Seq seq, uint32_t mss, uint32_t dup_thresh) const {
  // "Above seq" means sequence numbers greater than seq (RFC 6675 section 4,
  // IsLost). The discontiguous count is the number of SACKed ranges holding
  // such a sequence number: each is a separate run the receiver reported.
  uint32_t ranges = 0;
  for (size_t i = 0; i < n_; ++i) {
    if (seq + 1 < r_[i].right) ++ranges;
  }
  if (ranges >= dup_thresh) return true;
  const uint64_t limit = uint64_t{dup_thresh > 0 ? dup_thresh - 1 : 0} * mss;
  return uint64_t{sacked_above(seq + 1)} > limit;
}

std::optional<std::pair<Seq, Seq>> SackScoreboard::next_hole(Seq from, Seq limit) const {
  Seq a = from;
  for (size_t i = 0; i < n_ && a < limit; ++i) {
    if (r_[i].right <= a) continue;
    if (r_[i].left <= a) {
      a = r_[i].right;  // a is SACKed: the hole can start only past this range
      continue;
    }
    return std::pair{a, seq_min(r_[i].left, limit)};
  }
  if (a < limit) return std::pair{a, limit};
  return std::nullopt;
}

uint32_t SackScoreboard::sacked_above(Seq s) const {
  uint32_t t = 0;
  for (size_t i = 0; i < n_; ++i) {
    if (r_[i].right <= s) continue;
    t += span_len(seq_max(r_[i].left, s), r_[i].right);
  }
  return t;
}

uint32_t SackScoreboard::sacked_between(Seq a, Seq b) const {
  uint32_t t = 0;
  for (size_t i = 0; i < n_; ++i) {
    const Seq lo = seq_max(r_[i].left, a);
    const Seq hi = seq_min(r_[i].right, b);
    if (lo < hi) t += span_len(lo, hi);
  }
  return t;
}

}  // namespace xs
