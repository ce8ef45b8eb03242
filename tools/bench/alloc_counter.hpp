#pragma once
#include <cstdint>

namespace xs::bench {
// Heap allocations through operator new since the process started (single-threaded use).
extern uint64_t g_allocations;
}  // namespace xs::bench
