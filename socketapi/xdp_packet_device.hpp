// The engine's PacketDevice on top of an AF_XDP XdpDevice (xdp/): the
// production device. Flows the stack uses are steered by our XDP program;
// everything else stays with the kernel.
#pragma once
#include <memory>
#include <string>

#include "socketapi/packet_device.hpp"
#include "stack/base/expected.hpp"
#include "xdp/xdp_device.hpp"

namespace xs {

class XdpPacketDevice final : public PacketDevice, public FrameLender {
 public:
  static Expected<std::unique_ptr<XdpPacketDevice>, std::string> open(const XdpDeviceConfig& cfg);
  explicit XdpPacketDevice(std::unique_ptr<XdpDevice> dev) : dev_(std::move(dev)) {}

  size_t poll_rx(const std::function<void(Bytes)>& fn, size_t max) override;
  void flush_tx() override { dev_->flush_tx(); }
  bool tx_pending() const override { return dev_->tx_pending(); }
  std::vector<int> wait_fds() const override { return dev_->fds(); }
  bool add_flow(uint8_t proto, Ipv4Addr local, uint16_t port) override;
  void remove_flow(uint8_t proto, Ipv4Addr local, uint16_t port) override;
  MacAddr mac() const override { return dev_->mac(); }
  uint16_t mtu() const override { return static_cast<uint16_t>(dev_->mtu()); }
  int ifindex() const override { return dev_->ifindex(); }
  DeviceCounters counters() const override;
  std::string name() const override { return "xdp:" + dev_->ifname(); }
  FrameLender* frame_lender() override { return this; }

  // FrameLender: lends the UMEM frame being delivered (XdpDevice::hold).
  std::optional<uint64_t> hold(Bytes bytes) override { return dev_->hold(bytes); }
  void release(uint64_t handle) override { dev_->release(handle); }

  MutBytes tx_acquire() override { return dev_->tx_acquire(); }
  void tx_commit(size_t len) override { dev_->tx_commit(len); }
  size_t max_frame_len() const override { return dev_->max_frame_len(); }

  XdpDevice& xdp() { return *dev_; }

 private:
  std::unique_ptr<XdpDevice> dev_;
};

}  // namespace xs
