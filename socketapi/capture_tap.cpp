#include "socketapi/capture_tap.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


namespace xs {

void CaptureTap::record(Bytes frame, capture::Dir dir) {
  // Wall-clock time for pcap; read only while a capture is attached.
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  writer_->write(std::span<const uint8_t>(frame.data(), frame.size()), dir,
                 int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec);
}

bool CaptureTap::attach(const std::string& shm_name) {
  detach(false);
  int fd = shm_open(shm_name.c_str(), O_RDWR | O_CLOEXEC, 0);
  if (fd < 0) return false;
  struct stat st {};
  bool ok = fstat(fd, &st) == 0 && size_t(st.st_size) >= capture::data_offset() + 4096 && st.st_uid == geteuid();
  void* m = ok ? mmap(nullptr, size_t(st.st_size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
  close(fd);
  if (m == MAP_FAILED) return false;
  auto* h = static_cast<capture::CaptureHeader*>(m);
  if (!capture::valid(*h, size_t(st.st_size))) {
    munmap(m, size_t(st.st_size));
    return false;
  }
  map_ = m;
  map_len_ = size_t(st.st_size);
  hdr_ = h;
  name_ = shm_name;
  writer_.emplace(*h, static_cast<uint8_t*>(m) + h->data_offset);
  return true;
}

void CaptureTap::detach(bool unlink) {
  if (!map_) return;
  writer_.reset();
  hdr_ = nullptr;
  munmap(map_, map_len_);
  map_ = nullptr;
  map_len_ = 0;
  if (unlink) shm_unlink(name_.c_str());
  name_.clear();
}

}  // namespace xs
