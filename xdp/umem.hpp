// A UMEM: the frame memory shared with the kernel, its fill and completion
// rings, and the FramePool that says who owns each frame. One per XskSocket
// (no shared UMEM: simplest, and a queue never waits on another's frames).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <xdp/xsk.h>

#include "stack/base/expected.hpp"
#include "xdp/frame_pool.hpp"

namespace xs {

struct UmemConfig {
  uint32_t frame_size = 2048;   // 2048 or 4096 (a power of two, at most a page)
  uint32_t frame_count = 4096;
  uint32_t fill_size = 2048;    // ring sizes: powers of two
  uint32_t comp_size = 2048;
};

class Umem {
 public:
  static Expected<std::unique_ptr<Umem>, std::string> create(const UmemConfig& cfg);
  ~Umem();
  Umem(const Umem&) = delete;
  Umem& operator=(const Umem&) = delete;

  const UmemConfig& config() const { return cfg_; }
  uint8_t* data(uint64_t addr) { return area_ + addr; }
  const uint8_t* data(uint64_t addr) const { return area_ + addr; }
  size_t size() const { return size_; }

  xsk_umem* raw() { return umem_; }
  xsk_ring_prod* fill() { return &fill_; }
  xsk_ring_cons* comp() { return &comp_; }
  FramePool& pool() { return pool_; }
  const FramePool& pool() const { return pool_; }

 private:
  Umem(const UmemConfig& cfg, uint8_t* area, size_t size);

  UmemConfig cfg_;
  uint8_t* area_;
  size_t size_;
  xsk_umem* umem_ = nullptr;
  xsk_ring_prod fill_{};
  xsk_ring_cons comp_{};
  FramePool pool_;
};

}  // namespace xs
