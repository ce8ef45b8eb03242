#include "socketapi/xdp_packet_device.hpp"

#include <cstdio>

#include "socketapi/log.hpp"

namespace xs {

Expected<std::unique_ptr<XdpPacketDevice>, std::string> XdpPacketDevice::open(const XdpDeviceConfig& cfg) {
  auto dev = XdpDevice::open(cfg);
  if (!dev) return unexpected(dev.error());
  return std::make_unique<XdpPacketDevice>(std::move(*dev));
}

size_t XdpPacketDevice::poll_rx(const std::function<void(Bytes)>& fn, size_t max) {
  int n = dev_->poll_rx([&fn](Bytes f) { fn(f); }, static_cast<int>(max));
  return n > 0 ? static_cast<size_t>(n) : 0;
}

bool XdpPacketDevice::add_flow(uint8_t proto, Ipv4Addr local, uint16_t port) {
  auto r = dev_->add_flow(static_cast<FlowProto>(proto), local, port);
  if (!r) XS_LOG(Warn, "steering %u/%u failed: %s", proto, port, r.error().c_str());
  return r.has_value();
}

void XdpPacketDevice::remove_flow(uint8_t proto, Ipv4Addr local, uint16_t port) {
  (void)dev_->remove_flow(static_cast<FlowProto>(proto), local, port);
}

DeviceCounters XdpPacketDevice::counters() const {
  XdpDeviceCounters c = dev_->counters();
  DeviceCounters d;
  d.rx_frames = c.xsk.rx_frames;
  d.tx_frames = c.xsk.tx_frames;
  d.tx_kicks = c.xsk.kicks;
  d.tx_no_buffer = c.xsk.tx_ring_full + c.xsk.tx_no_frame;
  d.rx_dropped = c.kernel.rx_dropped;
  d.rx_ring_full = c.kernel.rx_ring_full;
  d.rx_fill_empty = c.kernel.rx_fill_ring_empty_descs;
  d.tx_ring_empty = c.kernel.tx_ring_empty_descs;
  d.invalid_descs = c.kernel.rx_invalid_descs + c.kernel.tx_invalid_descs;
  d.rx_lent = c.xsk.lent;
  d.rx_lends = c.xsk.lends;
  d.rx_lend_refused = c.xsk.lend_refused;
  d.busy_polls = c.xsk.busy_polls;
  d.busy_poll_off = c.xsk.busy_poll_off;
  return d;
}

}  // namespace xs
