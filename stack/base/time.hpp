// Simulated or real time as a plain value. Only the engine reads a clock; the
// stack receives `Instant` in every entry point, so tests drive time by hand.
#pragma once
#include <compare>
#include <cstdint>

namespace xs {

struct Duration {
  int64_t us = 0;
  constexpr auto operator<=>(const Duration&) const = default;
  constexpr Duration operator+(Duration o) const { return {us + o.us}; }
  constexpr Duration operator-(Duration o) const { return {us - o.us}; }
  constexpr Duration operator*(int64_t k) const { return {us * k}; }
  constexpr Duration operator/(int64_t k) const { return {us / k}; }
  constexpr Duration& operator+=(Duration o) { us += o.us; return *this; }
  constexpr Duration& operator-=(Duration o) { us -= o.us; return *this; }
  constexpr int64_t millis() const { return us / 1000; }
};

constexpr Duration micros(int64_t v) { return {v}; }
constexpr Duration millis(int64_t v) { return {v * 1000}; }
constexpr Duration seconds(int64_t v) { return {v * 1000000}; }

struct Instant {
  int64_t us = 0;  // microseconds since an arbitrary epoch chosen by the engine
  constexpr auto operator<=>(const Instant&) const = default;
  constexpr Instant operator+(Duration d) const { return {us + d.us}; }
  constexpr Instant operator-(Duration d) const { return {us - d.us}; }
  constexpr Duration operator-(Instant o) const { return {us - o.us}; }
  constexpr Instant& operator+=(Duration d) { us += d.us; return *this; }
  constexpr int64_t millis() const { return us / 1000; }
};

// "No deadline": later than any real instant.
inline constexpr Instant kNever{INT64_MAX / 2};

constexpr Instant min(Instant a, Instant b) { return a < b ? a : b; }
constexpr Instant max(Instant a, Instant b) { return a < b ? b : a; }
constexpr Duration min(Duration a, Duration b) { return a < b ? a : b; }
constexpr Duration max(Duration a, Duration b) { return a < b ? b : a; }

}  // namespace xs
