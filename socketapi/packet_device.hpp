// What the engine needs from a packet device: the stack's FrameSink for TX,
// batched RX, a TX kick, descriptors to sleep on, and flow steering (which
// flows the device must hand to us instead of the kernel).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "stack/base/addr.hpp"
#include "stack/base/bytes.hpp"
#include "stack/net/frame_lender.hpp"
#include "stack/net/frame_sink.hpp"

namespace xs {

// A flow steered to us: (protocol, local address, local port). Port 0 with
// protocol ICMP or kFlowArp steers those packets for a dedicated address.
inline constexpr uint8_t kFlowArp = 0xFE;

struct DeviceCounters {
  uint64_t rx_frames = 0, tx_frames = 0, tx_kicks = 0, tx_no_buffer = 0;
  uint64_t rx_dropped = 0, rx_ring_full = 0, rx_fill_empty = 0, tx_ring_empty = 0, invalid_descs = 0;
  // Zero-copy receive (FrameLender): frames lent to sockets now, and holds
  // refused because the device's lend limit was reached (those were copied).
  uint64_t rx_lent = 0, rx_lend_refused = 0, rx_lends = 0;  // lent: now; lends: ever
  // Busy-poll mode: recvfrom() calls made to run the driver's NAPI, and the
  // queues on which the kernel cannot busy-poll (no NAPI id: veth), which spin.
  uint64_t busy_polls = 0, busy_poll_off = 0;
};

class PacketDevice : public FrameSink {
 public:
  // Calls fn for up to `max` received frames (the span is valid during the
  // call, and after it while held through frame_lender()).
  virtual size_t poll_rx(const std::function<void(Bytes)>& fn, size_t max) = 0;
  // Makes committed TX frames leave (copy-mode AF_XDP needs a sendto kick).
  virtual void flush_tx() = 0;
  // Committed TX frames that flush_tx() has not made leave yet.
  virtual bool tx_pending() const { return false; }
  // Descriptors that become readable when frames arrive (interrupt mode).
  virtual std::vector<int> wait_fds() const = 0;
  virtual bool add_flow(uint8_t proto, Ipv4Addr local, uint16_t port) = 0;
  virtual void remove_flow(uint8_t proto, Ipv4Addr local, uint16_t port) = 0;
  virtual MacAddr mac() const = 0;
  virtual uint16_t mtu() const = 0;
  // The kernel's index of the interface (IP_PKTINFO's ipi_ifindex); 0 when none.
  virtual int ifindex() const { return 0; }
  virtual DeviceCounters counters() const = 0;
  // Lends received frames to sockets that keep payloads in place (zero-copy
  // receive); null when the device cannot, and sockets then copy.
  virtual FrameLender* frame_lender() { return nullptr; }
  virtual std::string name() const = 0;
};

}  // namespace xs
