// The AF_XDP device of one interface: our XDP program plus one XskSocket per
// RX queue (socket i bound to queue i, in XSKMAP slot i). The engine in
// socketapi/ owns one, writes frames into it as a FrameSink, and polls it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "stack/base/addr.hpp"
#include "stack/base/expected.hpp"
#include "stack/net/frame_sink.hpp"
#include "xdp/function_ref.hpp"
#include "xdp/xdp_program.hpp"
#include "xdp/xsk_socket.hpp"

namespace xs {

struct XdpDeviceConfig {
  std::string ifname;
  uint32_t queues = 1;          // sockets on RX queues 0..queues-1
  uint32_t frame_size = 2048;   // 2048 (frames up to 1792 B) or 4096 (3840 B)
  uint32_t frame_count = 4096;  // per queue
  uint32_t rx_ring = 2048;
  uint32_t tx_ring = 2048;
  uint32_t fill_ring = 2048;
  uint32_t comp_ring = 2048;
  bool busy_poll = false;
  int busy_poll_usecs = 20;     // SO_BUSY_POLL
  int busy_poll_budget = 64;    // SO_BUSY_POLL_BUDGET
  bool force_copy = true;       // veth supports copy mode only
  bool replace_foreign_program = false;  // see XdpProgramOptions
  uint32_t lend_limit = 0;      // frames per queue lent for zero-copy receive; 0: frame_count / 4
};

struct XdpDeviceCounters {
  XskCounters xsk;          // summed over queues
  XskKernelStats kernel;    // summed over queues
  XdpProgramStats program;
};

class XdpDevice final : public FrameSink {
 public:
  static Expected<std::unique_ptr<XdpDevice>, std::string> open(const XdpDeviceConfig& cfg);
  ~XdpDevice() override;  // detaches the program, closes the sockets
  XdpDevice(const XdpDevice&) = delete;
  XdpDevice& operator=(const XdpDevice&) = delete;

  // Up to `max` frames from all queues (round robin), each handed to
  // `on_frame`; also drains TX completions. Returns the number handed over.
  int poll_rx(RxHandler on_frame, int max);
  // Zero-copy receive (FrameLender): from inside a poll_rx callback, keeps
  // the frame being delivered (XskSocket::hold_current on the queue being
  // polled). The handle is (queue << 48) | UMEM address, for release().
  std::optional<uint64_t> hold(Bytes bytes);
  // Gives a held frame back to its queue; a bad handle is counted
  // (lend_bad_release) and ignored.
  void release(uint64_t handle);
  // Kicks every queue with TX descriptors pending.
  void flush_tx();
  // Some queue has TX descriptors the kernel has not taken yet.
  bool tx_pending() const;
  // One fd per queue: POLLIN when its RX ring has frames (interrupt mode).
  std::vector<int> fds() const;

  // Steer (proto, dst, port) to the stack; port 0 = every port of dst (and
  // the only port for ICMP and ARP).
  Status<std::string> add_flow(FlowProto proto, Ipv4Addr dst, uint16_t port);
  Status<std::string> remove_flow(FlowProto proto, Ipv4Addr dst, uint16_t port);

  // FrameSink: frames go out on the TX queue chosen by set_tx_queue (0).
  MutBytes tx_acquire() override;
  void tx_commit(size_t len) override;
  size_t max_frame_len() const override;
  void set_tx_queue(uint32_t q);

  const std::string& ifname() const { return cfg_.ifname; }
  int ifindex() const { return ifindex_; }
  MacAddr mac() const { return mac_; }
  uint32_t mtu() const { return mtu_; }
  size_t queue_count() const { return sockets_.size(); }
  XskSocket& socket(size_t q) { return *sockets_[q]; }
  XdpProgram& program() { return *program_; }

  XdpDeviceCounters counters() const;
  // Empty when every queue's frame accounting holds, else what is wrong.
  std::string check_invariant() const;

 private:
  XdpDevice() = default;

  XdpDeviceConfig cfg_;
  int ifindex_ = 0;
  MacAddr mac_;
  uint32_t mtu_ = 0;
  uint32_t tx_queue_ = 0;
  size_t rr_ = 0;
  // The queue whose poll_rx is running (its callback may hold its frame);
  // kNoQueue between polls.
  static constexpr size_t kNoQueue = ~size_t(0);
  size_t rx_queue_ = kNoQueue;
  uint64_t bad_releases_ = 0;  // release() handles naming no queue
  std::unique_ptr<XdpProgram> program_;
  std::vector<std::unique_ptr<XskSocket>> sockets_;
};

}  // namespace xs
