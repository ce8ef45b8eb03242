// Logging for socketapi/ and xdp/-facing code: levels from XSTACK_LOG
// (error, warn (default), info, debug, off), and a token bucket per call site
// so that a message in a loop (a failing steering call, a netlink error
// storm) cannot flood stderr or slow the engine: each site may print a burst
// of 5, then one per second, and says how many it suppressed. Never use it
// per packet; stack/ does not log at all (it counts, StackCounters).
//
//   XS_LOG(Warn, "steering %u/%u failed: %s", proto, port, why);
#pragma once
#include <atomic>
#include <cstdint>

namespace xs::log {

enum class Level : uint8_t { Off, Error, Warn, Info, Debug };

// The level XSTACK_LOG asks for (read once).
Level threshold();

// One call site's budget. Lock-free; racing threads may both print.
struct RateLimit {
  std::atomic<int64_t> next_refill_ms{0};
  std::atomic<int32_t> tokens{5};
  std::atomic<uint32_t> suppressed{0};
  // True if a message may print now; `suppressed_out` gets the count of
  // messages dropped since the last one that printed.
  bool allow(uint32_t& suppressed_out);
};

[[gnu::format(printf, 3, 4)]] void write(Level lvl, RateLimit& rl, const char* fmt, ...);

}  // namespace xs::log

#define XS_LOG(level, ...)                                                                  \
  do {                                                                                      \
    if (::xs::log::Level::level <= ::xs::log::threshold()) {                                \
      static ::xs::log::RateLimit xs_log_site_;                                             \
      ::xs::log::write(::xs::log::Level::level, xs_log_site_, __VA_ARGS__);                 \
    }                                                                                       \
  } while (0)
