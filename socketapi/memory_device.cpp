#include "socketapi/memory_device.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <deque>
#include <unordered_map>

namespace xs {

namespace {

struct Pipe {
  std::mutex mu;
  std::deque<std::vector<uint8_t>> frames;
  int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  ~Pipe() { close(efd); }
};

// Lends frames like the AF_XDP device (FrameLender), so engine tests exercise
// zero-copy receive without privileges.
class MemoryDevice final : public PacketDevice, public FrameLender {
 public:
  // Frames lent at once; beyond, hold() refuses and the stack copies (as the
  // AF_XDP device does at its lend_limit).
  static constexpr size_t kLendLimit = 256;

  MemoryDevice(MacAddr mac, std::shared_ptr<Pipe> rx, std::shared_ptr<Pipe> tx)
      : mac_(mac), rx_(std::move(rx)), tx_(std::move(tx)), buf_(1514) {}
  MutBytes tx_acquire() override { return MutBytes(buf_.data(), buf_.size()); }
  // Committed frames wait for flush_tx(), as on the AF_XDP TX ring until
  // the kick, so the engine's deferred kick (tx_defer) is testable here.
  void tx_commit(size_t len) override {
    pending_.emplace_back(buf_.begin(), buf_.begin() + static_cast<long>(len));
    c_.tx_frames++;
  }
  bool tx_pending() const override { return !pending_.empty(); }
  size_t max_frame_len() const override { return 1514; }
  size_t poll_rx(const std::function<void(Bytes)>& fn, size_t max) override {
    uint64_t v;
    ssize_t r = read(rx_->efd, &v, sizeof v);
    (void)r;
    size_t n = 0;
    while (n < max) {
      {
        std::lock_guard<std::mutex> lk(rx_->mu);
        if (rx_->frames.empty()) break;
        cur_ = std::move(rx_->frames.front());
        rx_->frames.pop_front();
      }
      in_rx_ = true;
      cur_held_ = false;
      fn(Bytes(cur_.data(), cur_.size()));
      in_rx_ = false;
      ++n;
      c_.rx_frames++;
    }
    return n;
  }

  FrameLender* frame_lender() override { return this; }
  std::optional<uint64_t> hold(Bytes bytes) override {
    // Only the frame being delivered, once (cur_ is moved out by the hold).
    if (!in_rx_ || cur_held_) return std::nullopt;
    const auto lo = reinterpret_cast<uintptr_t>(cur_.data());
    const auto p = reinterpret_cast<uintptr_t>(bytes.data());
    if (p < lo || p + bytes.size() > lo + cur_.size()) return std::nullopt;
    if (lent_.size() >= kLendLimit) {
      c_.rx_lend_refused++;
      return std::nullopt;
    }
    const uint64_t handle = next_handle_++;
    // Moving the vector keeps its buffer, so the stack's pointers into it
    // (and the span the callback is still reading) stay valid.
    lent_.emplace(handle, std::move(cur_));
    cur_held_ = true;
    c_.rx_lent = lent_.size();
    c_.rx_lends++;
    return handle;
  }
  void release(uint64_t handle) override {
    lent_.erase(handle);
    c_.rx_lent = lent_.size();
  }
  void flush_tx() override {
    if (pending_.empty()) return;
    {
      std::lock_guard<std::mutex> lk(tx_->mu);
      for (auto& f : pending_) tx_->frames.push_back(std::move(f));
    }
    pending_.clear();
    uint64_t one = 1;
    ssize_t r = write(tx_->efd, &one, sizeof one);
    (void)r;
    c_.tx_kicks++;
  }
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
  std::vector<std::vector<uint8_t>> pending_;  // committed, not flushed
  DeviceCounters c_;
  // The frame poll_rx is delivering, which hold() may take.
  std::vector<uint8_t> cur_;
  bool in_rx_ = false;
  bool cur_held_ = false;
  std::unordered_map<uint64_t, std::vector<uint8_t>> lent_;
  uint64_t next_handle_ = 1;
};

}  // namespace

std::pair<std::unique_ptr<PacketDevice>, std::unique_ptr<PacketDevice>> make_memory_device_pair(MacAddr a, MacAddr b) {
  auto ab = std::make_shared<Pipe>();
  auto ba = std::make_shared<Pipe>();
  return {std::make_unique<MemoryDevice>(a, ba, ab), std::make_unique<MemoryDevice>(b, ab, ba)};
}

}  // namespace xs
