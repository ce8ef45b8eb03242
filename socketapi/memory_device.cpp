#include "socketapi/memory_device.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <deque>

namespace xs {

namespace {

struct Pipe {
  std::mutex mu;
  std::deque<std::vector<uint8_t>> frames;
  int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  ~Pipe() { close(efd); }
};

class MemoryDevice final : public PacketDevice {
 public:
  MemoryDevice(MacAddr mac, std::shared_ptr<Pipe> rx, std::shared_ptr<Pipe> tx)
      : mac_(mac), rx_(std::move(rx)), tx_(std::move(tx)), buf_(1514) {}
  MutBytes tx_acquire() override { return MutBytes(buf_.data(), buf_.size()); }
  void tx_commit(size_t len) override {
    {
      std::lock_guard<std::mutex> lk(tx_->mu);
      tx_->frames.emplace_back(buf_.begin(), buf_.begin() + static_cast<long>(len));
    }
    uint64_t one = 1;
    ssize_t r = write(tx_->efd, &one, sizeof one);
    (void)r;
    c_.tx_frames++;
  }
  size_t max_frame_len() const override { return 1514; }
  size_t poll_rx(const std::function<void(Bytes)>& fn, size_t max) override {
    uint64_t v;
    ssize_t r = read(rx_->efd, &v, sizeof v);
    (void)r;
    size_t n = 0;
    while (n < max) {
      std::vector<uint8_t> f;
      {
        std::lock_guard<std::mutex> lk(rx_->mu);
        if (rx_->frames.empty()) break;
        f = std::move(rx_->frames.front());
        rx_->frames.pop_front();
      }
      fn(Bytes(f.data(), f.size()));
      ++n;
      c_.rx_frames++;
    }
    return n;
  }
  void flush_tx() override {}
  std::vector<int> wait_fds() const override { return {rx_->efd}; }
  bool add_flow(uint8_t, Ipv4Addr, uint16_t) override { return true; }
  void remove_flow(uint8_t, Ipv4Addr, uint16_t) override {}
  MacAddr mac() const override { return mac_; }
  uint16_t mtu() const override { return 1500; }
  DeviceCounters counters() const override { return c_; }
  std::string name() const override { return "memory"; }

 private:
  MacAddr mac_;
  std::shared_ptr<Pipe> rx_, tx_;
  std::vector<uint8_t> buf_;
  DeviceCounters c_;
};

}  // namespace

std::pair<std::unique_ptr<PacketDevice>, std::unique_ptr<PacketDevice>> make_memory_device_pair(MacAddr a, MacAddr b) {
  auto ab = std::make_shared<Pipe>();
  auto ba = std::make_shared<Pipe>();
  return {std::make_unique<MemoryDevice>(a, ba, ab), std::make_unique<MemoryDevice>(b, ab, ba)};
}

}  // namespace xs
