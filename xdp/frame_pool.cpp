#include "xdp/frame_pool.hpp"

#include <bit>
#include <cassert>

namespace xs {

const char* FramePool::state_name(State s) {
  switch (s) {
    case State::kFree: return "free";
    case State::kFill: return "fill";
    case State::kRx: return "rx";
    case State::kTxAcquired: return "tx-acquired";
    case State::kTxInFlight: return "tx-in-flight";
    case State::kLent: return "lent";
  }
  return "?";
}

FramePool::FramePool(uint32_t frame_count, uint32_t frame_size)
    : frame_count_(frame_count),
      frame_size_(frame_size),
      shift_(unsigned(std::countr_zero(frame_size))),
      state_(frame_count, State::kFree) {
  assert(std::has_single_bit(frame_size));
  free_.reserve(frame_count);
  // Reverse order so the first take() returns frame 0: easier to read in a dump.
  for (uint32_t i = frame_count; i > 0; --i) free_.push_back(uint64_t(i - 1) * frame_size);
  counts_[size_t(State::kFree)] = frame_count;
}

std::optional<uint64_t> FramePool::take(State to) {
  if (free_.empty()) return std::nullopt;
  const uint64_t addr = free_.back();
  free_.pop_back();
  state_[index_of(addr)] = to;
  --counts_[size_t(State::kFree)];
  ++counts_[size_t(to)];
  return addr;
}

bool FramePool::move(uint64_t addr, State from, State to) {
  if (!contains(addr)) return false;
  const size_t i = index_of(addr);
  if (state_[i] != from || from == State::kFree) return false;
  state_[i] = to;
  --counts_[size_t(from)];
  ++counts_[size_t(to)];
  if (to == State::kFree) free_.push_back(chunk_of(addr));
  return true;
}

std::string FramePool::check_invariant() const {
  std::array<size_t, kStateCount> seen{};
  for (State s : state_) {
    if (size_t(s) >= kStateCount) return "frame in an unknown state";
    ++seen[size_t(s)];
  }
  size_t total = 0;
  for (size_t s = 0; s < kStateCount; ++s) {
    if (seen[s] != counts_[s]) {
      return std::string("count of ") + state_name(State(s)) + " is " + std::to_string(counts_[s]) +
             " but " + std::to_string(seen[s]) + " frames are in that state";
    }
    total += seen[s];
  }
  if (total != frame_count_) return "frames lost: " + std::to_string(total) + " of " + std::to_string(frame_count_);
  if (free_.size() != counts_[size_t(State::kFree)]) {
    return "free list holds " + std::to_string(free_.size()) + " entries, " +
           std::to_string(counts_[size_t(State::kFree)]) + " frames are free";
  }
  std::vector<bool> on_list(frame_count_, false);
  for (uint64_t addr : free_) {
    if (!contains(addr) || chunk_of(addr) != addr) return "free list holds a bad address " + std::to_string(addr);
    const size_t i = index_of(addr);
    if (on_list[i]) return "frame " + std::to_string(addr) + " is on the free list twice";
    on_list[i] = true;
    if (state_[i] != State::kFree) {
      return "frame " + std::to_string(addr) + " is on the free list but " + state_name(state_[i]);
    }
  }
  return {};
}

}  // namespace xs
