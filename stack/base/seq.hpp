// TCP sequence numbers: 32-bit values compared modulo 2^32 (RFC 9293 3.4).
// No implicit conversion from integers so that a length or port can never be
// compared with a sequence number by accident.
#pragma once
#include <cstdint>

namespace xs {

class Seq {
 public:
  constexpr Seq() = default;
  constexpr explicit Seq(uint32_t v) : v_(v) {}
  constexpr uint32_t raw() const { return v_; }

  constexpr Seq operator+(uint32_t n) const { return Seq(v_ + n); }
  constexpr Seq operator-(uint32_t n) const { return Seq(v_ - n); }
  constexpr Seq& operator+=(uint32_t n) { v_ += n; return *this; }
  // Signed distance this - o; valid when the two are within 2^31 of each other.
  constexpr int32_t operator-(Seq o) const { return static_cast<int32_t>(v_ - o.v_); }

  constexpr bool operator==(const Seq&) const = default;
  constexpr bool operator<(Seq o) const { return (*this - o) < 0; }
  constexpr bool operator<=(Seq o) const { return (*this - o) <= 0; }
  constexpr bool operator>(Seq o) const { return (*this - o) > 0; }
  constexpr bool operator>=(Seq o) const { return (*this - o) >= 0; }

  // start <= *this < start + size  (modular). size 0 contains nothing.
  constexpr bool in_window(Seq start, uint32_t size) const {
    return static_cast<uint32_t>(v_ - start.v_) < size;
  }

 private:
  uint32_t v_ = 0;
};

constexpr Seq seq_max(Seq a, Seq b) { return a < b ? b : a; }
constexpr Seq seq_min(Seq a, Seq b) { return a < b ? a : b; }

}  // namespace xs
