// Counts heap allocations made by the benchmark process, so the benchmark can
// report allocations per segment (the data path must make none).
#include <cstdlib>
#include <new>

#include "tools/bench/alloc_counter.hpp"

namespace xs::bench {
uint64_t g_allocations = 0;
}

void* operator new(std::size_t n) {
  ++xs::bench::g_allocations;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  ++xs::bench::g_allocations;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
