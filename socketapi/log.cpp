#include "socketapi/log.hpp"

#include <time.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace xs::log {

namespace {

Level parse_env() {
  const char* v = std::getenv("XSTACK_LOG");
  if (!v) return Level::Warn;
  if (!std::strcmp(v, "off") || !std::strcmp(v, "none")) return Level::Off;
  if (!std::strcmp(v, "error")) return Level::Error;
  if (!std::strcmp(v, "info")) return Level::Info;
  if (!std::strcmp(v, "debug")) return Level::Debug;
  return Level::Warn;
}

int64_t mono_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

const char* name(Level l) {
  switch (l) {
    case Level::Error: return "error";
    case Level::Warn: return "warning";
    case Level::Info: return "info";
    case Level::Debug: return "debug";
    default: return "";
  }
}

}  // namespace

Level threshold() {
  static const Level l = parse_env();
  return l;
}

bool RateLimit::allow(uint32_t& suppressed_out) {
  constexpr int32_t kBurst = 5;
  int64_t now = mono_ms();
  int64_t next = next_refill_ms.load(std::memory_order_relaxed);
  if (now >= next && next_refill_ms.compare_exchange_strong(next, now + 1000, std::memory_order_relaxed)) {
    // One token a second, up to the burst.
    int32_t t = tokens.load(std::memory_order_relaxed);
    if (t < kBurst) tokens.store(next == 0 ? t : t + 1, std::memory_order_relaxed);
  }
  if (tokens.fetch_sub(1, std::memory_order_relaxed) <= 0) {
    tokens.fetch_add(1, std::memory_order_relaxed);
    suppressed.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  suppressed_out = suppressed.exchange(0, std::memory_order_relaxed);
  return true;
}

void write(Level lvl, RateLimit& rl, const char* fmt, ...) {
  uint32_t dropped = 0;
  if (!rl.allow(dropped)) return;
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  // One fprintf: lines from different threads do not interleave.
  if (dropped) std::fprintf(stderr, "xstack %s: %s (%u similar messages suppressed)\n", name(lvl), buf, dropped);
  else std::fprintf(stderr, "xstack %s: %s\n", name(lvl), buf);
}

}  // namespace xs::log
