#include "xdp/umem.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>

namespace xs {

namespace {
bool pow2(uint32_t v) { return v != 0 && std::has_single_bit(v); }
}  // namespace

Umem::Umem(const UmemConfig& cfg, uint8_t* area, size_t size)
    : cfg_(cfg), area_(area), size_(size), pool_(cfg.frame_count, cfg.frame_size) {}

Expected<std::unique_ptr<Umem>, std::string> Umem::create(const UmemConfig& cfg) {
  const long page = sysconf(_SC_PAGESIZE);
  if (!pow2(cfg.frame_size) || cfg.frame_size < 2048 || long(cfg.frame_size) > page) {
    return unexpected(std::string("umem: frame_size must be 2048 or 4096 (a power of two, at most a page)"));
  }
  if (cfg.frame_count < 2) return unexpected(std::string("umem: frame_count must be at least 2"));
  if (!pow2(cfg.fill_size) || !pow2(cfg.comp_size)) {
    return unexpected(std::string("umem: fill and completion ring sizes must be powers of two"));
  }
  const size_t size = size_t(cfg.frame_count) * cfg.frame_size;
  void* mem = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (mem == MAP_FAILED) return unexpected("umem: mmap " + std::to_string(size) + " bytes: " + strerror(errno));
  // Not into fork children: the kernel pins the area (xsk_umem__create), and
  // fork copies pinned private pages at once rather than sharing them copy-
  // on-write, 8 MiB per queue by default, which made every fork of an
  // accelerated program (a fork-per-connection server) 3-4x slower. Only
  // the process that has the stack touches frames; a child reaches its
  // sockets through it (docs/shim.md, "Processes").
  (void)madvise(mem, size, MADV_DONTFORK);

  std::unique_ptr<Umem> u(new Umem(cfg, static_cast<uint8_t*>(mem), size));
  xsk_umem_config ucfg{};
  ucfg.fill_size = cfg.fill_size;
  ucfg.comp_size = cfg.comp_size;
  ucfg.frame_size = cfg.frame_size;
  ucfg.frame_headroom = 0;
  ucfg.flags = 0;
  const int rc = xsk_umem__create(&u->umem_, mem, size, &u->fill_, &u->comp_, &ucfg);
  if (rc != 0) {
    u->umem_ = nullptr;
    return unexpected(std::string("umem: xsk_umem__create: ") + strerror(-rc) +
                      (rc == -EPERM ? " (needs CAP_NET_RAW, and CAP_IPC_LOCK or enough RLIMIT_MEMLOCK)" : ""));
  }
  return u;
}

Umem::~Umem() {
  // The socket using this UMEM is deleted first (XskSocket's member order).
  if (umem_ != nullptr) xsk_umem__delete(umem_);
  munmap(area_, size_);
}

}  // namespace xs
