// Ownership of UMEM frames. Every frame is in exactly one state at any time:
// on the free list, lent to the kernel for RX (fill ring, kernel, RX ring),
// held by the stack while an RX callback runs, kept by a socket past the
// callback (zero-copy receive), lent to the stack by tx_acquire(), or handed
// to the kernel for TX (TX ring, in flight, completion ring). The pool tracks
// a state per frame so a double free, a lost frame or a descriptor the kernel
// should never have returned is detected, not silently corrupting memory.
// check_invariant() is used by debug builds and tests.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace xs {

class FramePool {
 public:
  enum class State : uint8_t {
    kFree = 0,      // on the free list
    kFill = 1,      // lent to the kernel for RX: fill ring, kernel, RX ring
    kRx = 2,        // held by the stack during an RX callback
    kTxAcquired = 3,  // lent to the stack by tx_acquire(), not committed yet
    kTxInFlight = 4,  // on the TX ring, in flight, or on the completion ring
    kLent = 5,        // received, kept by a socket past its RX callback (FrameLender)
  };
  static constexpr size_t kStateCount = 6;
  static const char* state_name(State s);

  // frame_size must be a power of two; all frames start free.
  FramePool(uint32_t frame_count, uint32_t frame_size);

  uint32_t frame_count() const { return frame_count_; }
  uint32_t frame_size() const { return frame_size_; }
  // UMEM offset of the chunk holding `addr` (RX descriptors point past the
  // kernel's headroom inside a chunk).
  uint64_t chunk_of(uint64_t addr) const { return addr & ~uint64_t(frame_size_ - 1); }
  size_t free_count() const { return free_.size(); }
  size_t count(State s) const { return counts_[size_t(s)]; }

  // Pops a free frame and puts it in state `to`; nullopt when none is free.
  std::optional<uint64_t> take(State to);
  // Moves the frame holding `addr` from `from` to `to` (kFree puts it back on
  // the free list). Returns false, changing nothing, when addr is outside the
  // UMEM or the frame is not in `from`: a bug here or in the kernel, which the
  // caller counts.
  bool move(uint64_t addr, State from, State to);
  State state_of(uint64_t addr) const { return state_[index_of(addr)]; }
  bool contains(uint64_t addr) const { return addr < uint64_t(frame_count_) * frame_size_; }

  // Empty when the invariant holds; otherwise what is wrong. O(frame_count).
  std::string check_invariant() const;

 private:
  size_t index_of(uint64_t addr) const { return size_t(addr >> shift_); }

  uint32_t frame_count_;
  uint32_t frame_size_;
  unsigned shift_;
  std::vector<uint64_t> free_;  // LIFO: the most recently used frame is warm in cache
  std::vector<State> state_;
  std::array<size_t, kStateCount> counts_{};
};

}  // namespace xs
