// One AF_XDP socket bound to one RX queue of an interface, with its own UMEM.
// RX: poll_rx() peeks a batch, hands each frame to a callback, releases the
// batch and refills the fill ring; a callback may keep its frame past the
// call (hold_current, zero-copy receive) until release_lent(). TX: the FrameSink interface lends a free
// UMEM frame (tx_acquire), puts its descriptor on the TX ring (tx_commit), and
// flush() kicks the kernel. Copy mode (veth): every TX submit needs a sendto()
// kick, RX needs no syscall (see xdp/README.md).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <xdp/xsk.h>

#include "stack/base/expected.hpp"
#include "stack/net/frame_sink.hpp"
#include "xdp/function_ref.hpp"
#include "xdp/umem.hpp"

namespace xs {

struct XskConfig {
  std::string ifname;
  uint32_t queue_id = 0;
  uint32_t frame_size = 2048;  // 2048 or 4096
  uint32_t frame_count = 4096;
  uint32_t rx_size = 2048;     // ring sizes: powers of two
  uint32_t tx_size = 2048;
  uint32_t fill_size = 2048;
  uint32_t comp_size = 2048;   // keep >= tx_size: a full completion ring stalls TX silently
  bool force_copy = true;      // XDP_COPY; false lets the kernel pick zero-copy where the driver has it
  bool busy_poll = false;      // set_busy_poll() at creation
  int busy_poll_usecs = 20;    // SO_BUSY_POLL: how long a busy poll may spin in the driver
  int busy_poll_budget = 64;   // SO_BUSY_POLL_BUDGET: packets per busy poll
  size_t max_frame_len = 0;    // 0: frame_size - XDP_PACKET_HEADROOM
  // Received frames hold_current() may keep past their callback at once;
  // 0: frame_count / 4. Lent frames are neither on the fill ring nor free
  // for TX, so the bound keeps both directions supplied.
  uint32_t lend_limit = 0;
};

// Counted by us, per socket.
struct XskCounters {
  uint64_t rx_frames = 0;
  uint64_t rx_bytes = 0;
  uint64_t rx_polls = 0;         // poll_rx() calls
  uint64_t tx_frames = 0;
  uint64_t tx_bytes = 0;
  uint64_t fill_ring_empty = 0;  // polls that found the kernel had used every fill entry
  uint64_t tx_ring_full = 0;     // tx_acquire: no TX descriptor free
  uint64_t tx_no_frame = 0;      // tx_acquire: no UMEM frame free
  uint64_t tx_bad_len = 0;       // tx_commit with 0 or too long a length (frame dropped)
  uint64_t kicks = 0;            // sendto() calls
  uint64_t kick_retries = 0;     // sendto() returned EAGAIN/EBUSY/ENOBUFS and we called again
  uint64_t kick_errors = 0;      // sendto() failed otherwise (e.g. ENETDOWN, ENXIO)
  uint64_t kick_gave_up = 0;     // flush() left descriptors on the ring after its bounded loop
  uint64_t bad_descs = 0;        // RX/completion address not in the expected state: a bug
  uint64_t lent = 0;             // frames kept by hold_current() and not released yet (a level)
  uint64_t lend_refused = 0;     // hold_current() refused: lend_limit frames already lent
  uint64_t lends = 0;            // hold_current() granted, ever (lent is the level)
  uint64_t lend_bad_release = 0; // release_lent() of a frame that was not lent: a bug
  uint64_t busy_polls = 0;       // recvfrom() calls made to busy-poll the driver
  uint64_t busy_poll_off = 0;    // 1: busy polling asked for, but the socket has no NAPI id (veth)

  XskCounters& operator+=(const XskCounters& o);
};

// getsockopt(SOL_XDP, XDP_STATISTICS): counted by the kernel.
struct XskKernelStats {
  uint64_t rx_dropped = 0;
  uint64_t rx_invalid_descs = 0;
  uint64_t tx_invalid_descs = 0;
  uint64_t rx_ring_full = 0;
  uint64_t rx_fill_ring_empty_descs = 0;
  uint64_t tx_ring_empty_descs = 0;

  XskKernelStats& operator+=(const XskKernelStats& o);
};

class XskSocket final : public FrameSink {
 public:
  // The kernel puts RX data this far into a chunk (XDP_PACKET_HEADROOM).
  static constexpr uint32_t kRxHeadroom = 256;

  // Creates the UMEM and the socket and fills the fill ring. The XDP program is
  // not touched (XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD): put fd() into our
  // XSKMAP (XdpProgram::set_socket) to receive.
  static Expected<std::unique_ptr<XskSocket>, std::string> create(const XskConfig& cfg);
  ~XskSocket() override;
  XskSocket(const XskSocket&) = delete;
  XskSocket& operator=(const XskSocket&) = delete;

  int fd() const { return fd_; }
  uint32_t queue_id() const { return cfg_.queue_id; }
  const XskConfig& config() const { return cfg_; }

  // Hands up to `max` received frames to `on_frame`, then refills the fill
  // ring. Returns the number of frames handed over.
  int poll_rx(RxHandler on_frame, int max);

  // Zero-copy receive. Only from inside a poll_rx callback: keeps the frame
  // being delivered out of reuse (kRx -> kLent) so `bytes`, which must lie
  // within that frame's data, stay valid after the callback, and returns the
  // frame's UMEM address for release_lent(). nullopt outside a callback, for
  // bytes elsewhere, for a frame already held, or when lend_limit frames are
  // lent (counted in lend_refused): the caller copies instead.
  std::optional<uint64_t> hold_current(Bytes bytes);
  // Gives a held frame back (kLent -> kFree); the next refill puts it on the
  // fill ring. A frame not lent is counted in lend_bad_release and ignored.
  void release_lent(uint64_t addr);
  uint32_t lend_limit() const { return lend_limit_; }

  // FrameSink. tx_acquire() returns an empty span when no TX descriptor or no
  // frame is free (after draining completions and one kick).
  MutBytes tx_acquire() override;
  void tx_commit(size_t len) override;
  size_t max_frame_len() const override { return max_frame_len_; }
  void set_max_frame_len(size_t len);

  // Kicks the kernel until it has taken every TX descriptor or a bounded
  // number of tries passed; drains completions. Returns descriptors left.
  size_t flush();
  // Returns completed TX frames to the free list; returns how many.
  size_t drain_completions();
  // TX descriptors the kernel has not consumed yet.
  size_t tx_pending();

  // SO_PREFER_BUSY_POLL=1, SO_BUSY_POLL=usecs, SO_BUSY_POLL_BUDGET=budget
  // (on: 20 us, 64). With busy polling on, poll_rx() also calls recvfrom()
  // to drive the driver's NAPI when the RX ring is empty, until the first
  // frames show that the kernel cannot busy-poll this socket (no NAPI id, as
  // on veth): from then on it spins on the ring without the system call.
  Status<std::string> set_busy_poll(bool on, int usecs = 20, int budget = 64);
  bool busy_poll() const { return busy_poll_; }

  const XskCounters& counters() const { return counters_; }
  Expected<XskKernelStats, std::string> kernel_stats() const;

  // Frame accounting: empty when every frame is in exactly one state and the
  // fill/TX counts agree with the rings; otherwise what is wrong.
  std::string check_invariant() const;
  const FramePool& frames() const { return umem_->pool(); }

 private:
  explicit XskSocket(const XskConfig& cfg, std::unique_ptr<Umem> umem);
  void refill();
  void check_busy_poll();
  bool kick_once();

  XskConfig cfg_;
  std::unique_ptr<Umem> umem_;  // declared first: destroyed after the socket
  xsk_socket* xsk_ = nullptr;
  xsk_ring_cons rx_{};
  xsk_ring_prod tx_{};
  int fd_ = -1;
  uint32_t fill_target_ = 0;
  size_t max_frame_len_ = 0;
  bool busy_poll_ = false;
  bool busy_poll_checked_ = false;  // SO_INCOMING_NAPI_ID looked at (after the first frames)
  bool tx_held_ = false;         // a frame lent by tx_acquire() and not committed
  uint64_t tx_held_addr_ = 0;
  uint32_t lend_limit_ = 0;
  // The frame poll_rx is handing to its callback, which hold_current() may keep.
  bool rx_in_callback_ = false;
  bool rx_cur_held_ = false;
  uint64_t rx_cur_addr_ = 0;
  const uint8_t* rx_cur_data_ = nullptr;
  uint32_t rx_cur_len_ = 0;
  uint32_t rx_batch_seen_ = 0;   // descriptors of the peeked batch taken so far (still on the RX ring)
  XskCounters counters_;
};

}  // namespace xs
