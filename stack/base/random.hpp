// Randomness is injected so that tests and the simulator are reproducible.
#pragma once
#include <cstdint>

namespace xs {

class Random {
 public:
  virtual ~Random() = default;
  virtual uint64_t next_u64() = 0;
  uint32_t next_u32() { return static_cast<uint32_t>(next_u64() >> 32); }
  // Uniform in [0, n). n > 0.
  uint64_t below(uint64_t n) { return next_u64() % n; }
};

// xoshiro256** seeded by splitmix64: deterministic, fast, good enough for
// simulation and for ephemeral-port offsets. Secrets (ISN key, cookie key)
// come from the engine's OS randomness through the same interface.
class SeededRandom final : public Random {
 public:
  explicit SeededRandom(uint64_t seed) {
    for (auto& w : s_) {
      seed += 0x9e3779b97f4a7c15ull;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      w = z ^ (z >> 31);
    }
  }
  uint64_t next_u64() override {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0]; s_[3] ^= s_[1]; s_[1] ^= s_[2]; s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace xs
