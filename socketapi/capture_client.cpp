#include "socketapi/capture_client.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace xs::capture {

namespace {

int64_t mono_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

uint64_t round_pow2(uint64_t n) {
  uint64_t p = 4096;
  while (p < n && p < (uint64_t(1) << 32)) p <<= 1;
  return p;
}

}  // namespace

Expected<Client, std::string> Client::start(stats::Mapping& stats, uint64_t ring_size, uint32_t snaplen) {
  std::string path = "/" + stats.name() + "-cap";
  int fd = -1;
  for (int attempt = 0; attempt < 2 && fd < 0; ++attempt) {
    fd = shm_open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0 || errno != EEXIST) break;
    // Someone's segment: refuse if its reader lives, else it is left over.
    int ofd = shm_open(path.c_str(), O_RDONLY | O_CLOEXEC, 0);
    uint32_t owner = 0;
    if (ofd >= 0) {
      CaptureHeader h;
      if (pread(ofd, &h, sizeof h, 0) == ssize_t(sizeof h) && h.magic == kMagic) owner = h.reader_pid;
      close(ofd);
    }
    if (owner && stats::process_alive(owner)) {
      return unexpected(path + ": pid " + std::to_string(owner) + " is already capturing this process");
    }
    shm_unlink(path.c_str());
  }
  if (fd < 0) return unexpected(path + ": " + std::strerror(errno));
  uint64_t ring = round_pow2(ring_size);
  size_t len = segment_size(ring);
  void* m = MAP_FAILED;
  if (ftruncate(fd, off_t(len)) == 0) m = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  int err = errno;
  close(fd);
  if (m == MAP_FAILED) {
    shm_unlink(path.c_str());
    return unexpected(path + ": " + std::strerror(err));
  }
  Client c;
  c.hdr_ = init(m, ring, snaplen, static_cast<uint32_t>(getpid()));
  c.len_ = len;
  c.name_ = path;
  c.stats_ = &stats.header();
  c.heartbeat();
  // A generation unique to this reader, so that the engine tells a new
  // request from the one it served (and never 0, which means "none").
  c.gen_ = static_cast<uint32_t>(getpid()) ^ static_cast<uint32_t>(mono_ns());
  if (c.gen_ == 0) c.gen_ = 1;
  c.stats_->capture_request.store(c.gen_, std::memory_order_release);
  return c;
}

Client& Client::operator=(Client&& o) noexcept {
  std::swap(stats_, o.stats_);
  std::swap(hdr_, o.hdr_);
  std::swap(len_, o.len_);
  std::swap(name_, o.name_);
  std::swap(gen_, o.gen_);
  return *this;
}

Client::~Client() { stop(); }

bool Client::attached() const {
  return stats_ && stats_->capture_attached.load(std::memory_order_acquire) == gen_;
}

void Client::heartbeat() { hdr_->reader_heartbeat_ns.store(mono_ns(), std::memory_order_relaxed); }

void Client::withdraw(int wait_ms) {
  if (!hdr_) return;
  uint32_t g = gen_;
  stats_->capture_request.compare_exchange_strong(g, 0, std::memory_order_acq_rel);
  // The engine lets go at its next publish; frames it writes meanwhile land
  // in a ring nobody reads, which is harmless.
  for (int i = 0; i < wait_ms && attached(); ++i) {
    heartbeat();
    usleep(1000);
  }
}

void Client::stop() {
  if (!hdr_) return;
  withdraw();
  munmap(hdr_, len_);
  shm_unlink(name_.c_str());
  hdr_ = nullptr;
}

}  // namespace xs::capture
