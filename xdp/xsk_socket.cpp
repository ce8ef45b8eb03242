#include "xdp/xsk_socket.hpp"

#include <linux/if_xdp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cassert>
#include <cerrno>
#include <cstring>

#ifndef SOL_XDP
#define SOL_XDP 283
#endif
// Debian 12's libc headers predate these (values from the kernel's
// include/uapi/asm-generic/socket.h).
#ifndef SO_BUSY_POLL
#define SO_BUSY_POLL 46
#endif
#ifndef SO_PREFER_BUSY_POLL
#define SO_PREFER_BUSY_POLL 69
#endif
#ifndef SO_BUSY_POLL_BUDGET
#define SO_BUSY_POLL_BUDGET 70
#endif
#ifndef XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD
#define XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD (1 << 0)
#endif

namespace xs {

using State = FramePool::State;

namespace {

// sendto() sends at most 32 descriptors per call in copy mode and then says
// EAGAIN; this bounds flush() at ~64 calls beyond what the ring needs.
constexpr int kKickExtraTries = 64;

bool pow2(uint32_t v) { return v != 0 && std::has_single_bit(v); }

// Entries produced and not yet consumed, read from the shared ring indices.
uint32_t ring_used(const uint32_t* producer, const uint32_t* consumer) {
  return __atomic_load_n(producer, __ATOMIC_ACQUIRE) - __atomic_load_n(consumer, __ATOMIC_ACQUIRE);
}

}  // namespace

XskCounters& XskCounters::operator+=(const XskCounters& o) {
  rx_frames += o.rx_frames;
  rx_bytes += o.rx_bytes;
  rx_polls += o.rx_polls;
  tx_frames += o.tx_frames;
  tx_bytes += o.tx_bytes;
  fill_ring_empty += o.fill_ring_empty;
  tx_ring_full += o.tx_ring_full;
  tx_no_frame += o.tx_no_frame;
  tx_bad_len += o.tx_bad_len;
  kicks += o.kicks;
  kick_retries += o.kick_retries;
  kick_errors += o.kick_errors;
  kick_gave_up += o.kick_gave_up;
  bad_descs += o.bad_descs;
  lent += o.lent;
  lends += o.lends;
  lend_refused += o.lend_refused;
  lend_bad_release += o.lend_bad_release;
  busy_polls += o.busy_polls;
  busy_poll_off += o.busy_poll_off;
  return *this;
}

XskKernelStats& XskKernelStats::operator+=(const XskKernelStats& o) {
  rx_dropped += o.rx_dropped;
  rx_invalid_descs += o.rx_invalid_descs;
  tx_invalid_descs += o.tx_invalid_descs;
  rx_ring_full += o.rx_ring_full;
  rx_fill_ring_empty_descs += o.rx_fill_ring_empty_descs;
  tx_ring_empty_descs += o.tx_ring_empty_descs;
  return *this;
}

XskSocket::XskSocket(const XskConfig& cfg, std::unique_ptr<Umem> umem) : cfg_(cfg), umem_(std::move(umem)) {}

Expected<std::unique_ptr<XskSocket>, std::string> XskSocket::create(const XskConfig& cfg) {
  if (!pow2(cfg.rx_size) || !pow2(cfg.tx_size)) {
    return unexpected(std::string("xsk: RX and TX ring sizes must be powers of two"));
  }
  auto umem = Umem::create(UmemConfig{cfg.frame_size, cfg.frame_count, cfg.fill_size, cfg.comp_size});
  if (!umem) return unexpected(umem.error());

  std::unique_ptr<XskSocket> s(new XskSocket(cfg, std::move(*umem)));
  xsk_socket_config scfg{};
  scfg.rx_size = cfg.rx_size;
  scfg.tx_size = cfg.tx_size;
  scfg.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD;  // our own program, our own XSKMAP
  scfg.xdp_flags = 0;
  scfg.bind_flags = XDP_USE_NEED_WAKEUP | (cfg.force_copy ? XDP_COPY : 0);
  // The kernel unbinds a closed XSK from its queue in deferred work, so binding
  // right after a previous socket on the same queue closed can see EBUSY for a
  // moment: retry for up to a second before calling the queue taken.
  int rc = 0;
  for (int attempt = 0; attempt < 100; ++attempt) {
    rc = xsk_socket__create(&s->xsk_, cfg.ifname.c_str(), cfg.queue_id, s->umem_->raw(), &s->rx_, &s->tx_, &scfg);
    if (rc != -EBUSY) break;
    usleep(10000);
  }
  if (rc != 0) {
    s->xsk_ = nullptr;
    return unexpected("xsk: socket on " + cfg.ifname + " queue " + std::to_string(cfg.queue_id) + ": " +
                      strerror(-rc));
  }
  s->fd_ = xsk_socket__fd(s->xsk_);

  // Half the frames (at most the fill ring) are lent to the kernel for RX; the
  // rest stay free for TX, so neither direction can starve the other.
  s->fill_target_ = std::min(cfg.fill_size, cfg.frame_count / 2);
  s->max_frame_len_ = cfg.frame_size - kRxHeadroom;
  if (cfg.max_frame_len != 0) s->set_max_frame_len(cfg.max_frame_len);
  s->lend_limit_ = cfg.lend_limit != 0 ? cfg.lend_limit : cfg.frame_count / 4;
  s->refill();
  if (cfg.busy_poll) {
    if (auto st = s->set_busy_poll(true, cfg.busy_poll_usecs, cfg.busy_poll_budget); !st) return unexpected(st.error());
  }
  return s;
}

XskSocket::~XskSocket() {
  if (xsk_ != nullptr) xsk_socket__delete(xsk_);
}

void XskSocket::set_max_frame_len(size_t len) {
  max_frame_len_ = std::min<size_t>(len, cfg_.frame_size - kRxHeadroom);
}

void XskSocket::refill() {
  FramePool& pool = umem_->pool();
  const size_t lent = pool.count(State::kFill);
  if (lent >= fill_target_) return;
  const uint32_t want = uint32_t(std::min<size_t>(fill_target_ - lent, pool.free_count()));
  if (want == 0) return;
  uint32_t idx = 0;
  const uint32_t n = xsk_ring_prod__reserve(umem_->fill(), want, &idx);
  for (uint32_t i = 0; i < n; ++i) {
    *xsk_ring_prod__fill_addr(umem_->fill(), idx + i) = *pool.take(State::kFill);
  }
  if (n > 0) xsk_ring_prod__submit(umem_->fill(), n);
}

int XskSocket::poll_rx(RxHandler on_frame, int max) {
  if (max <= 0) return 0;
  // The kernel took every frame we lent it: it drops what arrives until we refill.
  if (ring_used(umem_->fill()->producer, umem_->fill()->consumer) == 0) ++counters_.fill_ring_empty;

  uint32_t idx = 0;
  uint32_t n = xsk_ring_cons__peek(&rx_, uint32_t(max), &idx);
  if (n == 0 && busy_poll_) {
    // With SO_PREFER_BUSY_POLL the driver's NAPI runs from our syscalls.
    ++counters_.busy_polls;
    recvfrom(fd_, nullptr, 0, MSG_DONTWAIT, nullptr, nullptr);
    n = xsk_ring_cons__peek(&rx_, uint32_t(max), &idx);
  }
  if (n > 0 && busy_poll_ && !busy_poll_checked_) check_busy_poll();
  FramePool& pool = umem_->pool();
  // The kernel wrote the frames from another CPU (copy mode: in the sender's
  // softirq): start fetching the header lines of the first frames now, so the
  // misses overlap instead of following one another through the parsers.
  for (uint32_t i = 0; i < std::min<uint32_t>(n, 4); ++i) {
    const xdp_desc* d = xsk_ring_cons__rx_desc(&rx_, idx + i);
    if (!pool.contains(d->addr)) continue;
    const uint8_t* p = umem_->data(d->addr);
    for (uint32_t off = 0; off < std::min<uint32_t>(d->len, 192); off += 64) __builtin_prefetch(p + off);
  }
  int delivered = 0;
  for (uint32_t i = 0; i < n; ++i) {
    const xdp_desc* d = xsk_ring_cons__rx_desc(&rx_, idx + i);
    const uint64_t addr = d->addr;
    const uint32_t len = d->len;
    const uint64_t chunk = pool.chunk_of(addr);
    rx_batch_seen_ = i + 1;
    if (!pool.contains(addr) || addr + len > chunk + cfg_.frame_size || !pool.move(addr, State::kFill, State::kRx)) {
      ++counters_.bad_descs;
      continue;
    }
    ++counters_.rx_frames;
    counters_.rx_bytes += len;
    rx_in_callback_ = true;
    rx_cur_held_ = false;
    rx_cur_addr_ = addr;
    rx_cur_data_ = umem_->data(addr);
    rx_cur_len_ = len;
    on_frame(Bytes(rx_cur_data_, len));
    rx_in_callback_ = false;
    // A held frame is the socket's now (kLent) until release_lent().
    if (!rx_cur_held_) pool.move(addr, State::kRx, State::kFree);
    ++delivered;
  }
  if (n > 0) xsk_ring_cons__release(&rx_, n);
  rx_batch_seen_ = 0;
  refill();
#ifndef NDEBUG
  // O(frame_count): every 256th poll in debug builds.
  if ((++counters_.rx_polls & 255) == 0) assert(check_invariant().empty());
#else
  ++counters_.rx_polls;
#endif
  return delivered;
}

std::optional<uint64_t> XskSocket::hold_current(Bytes bytes) {
  // One hold per frame: a frame has one state, so a second holder could not
  // be told apart from the first at release.
  if (!rx_in_callback_ || rx_cur_held_) return std::nullopt;
  // Compared as integers: pointers into different objects have no order.
  const auto lo = reinterpret_cast<uintptr_t>(rx_cur_data_);
  const auto p = reinterpret_cast<uintptr_t>(bytes.data());
  if (p < lo || p + bytes.size() > lo + rx_cur_len_) return std::nullopt;
  if (counters_.lent >= lend_limit_) {
    ++counters_.lend_refused;
    return std::nullopt;
  }
  FramePool& pool = umem_->pool();
  if (!pool.move(rx_cur_addr_, State::kRx, State::kLent)) {
    ++counters_.bad_descs;  // poll_rx moved it to kRx before the callback: a bug here
    return std::nullopt;
  }
  rx_cur_held_ = true;
  ++counters_.lent;
  ++counters_.lends;
  return pool.chunk_of(rx_cur_addr_);
}

void XskSocket::release_lent(uint64_t addr) {
  if (!umem_->pool().move(addr, State::kLent, State::kFree)) {
    ++counters_.lend_bad_release;
    return;
  }
  --counters_.lent;
  // The kernel has no fill entry left and drops what arrives: give it this
  // frame now rather than at the next poll_rx, which in interrupt mode waits
  // for traffic that cannot arrive. Otherwise the next poll_rx refills.
  if (ring_used(umem_->fill()->producer, umem_->fill()->consumer) == 0) refill();
}

size_t XskSocket::drain_completions() {
  FramePool& pool = umem_->pool();
  // Nothing sent is outstanding: no completion can be due. Spares the ring's
  // producer line (written by the kernel) on every poll of an idle queue.
  if (pool.count(State::kTxInFlight) == 0) return 0;
  uint32_t idx = 0;
  const uint32_t n = xsk_ring_cons__peek(umem_->comp(), cfg_.comp_size, &idx);
  for (uint32_t i = 0; i < n; ++i) {
    const uint64_t addr = *xsk_ring_cons__comp_addr(umem_->comp(), idx + i);
    if (!pool.move(addr, State::kTxInFlight, State::kFree)) ++counters_.bad_descs;
  }
  if (n > 0) xsk_ring_cons__release(umem_->comp(), n);
  return n;
}

size_t XskSocket::tx_pending() { return ring_used(tx_.producer, tx_.consumer); }

MutBytes XskSocket::tx_acquire() {
  if (tx_held_) return MutBytes(umem_->data(tx_held_addr_), max_frame_len_);  // not committed: lend it again
  if (xsk_prod_nb_free(&tx_, 1) < 1) {
    flush();
    if (xsk_prod_nb_free(&tx_, 1) < 1) {
      ++counters_.tx_ring_full;
      return {};
    }
  }
  FramePool& pool = umem_->pool();
  if (pool.free_count() == 0) drain_completions();
  if (pool.free_count() == 0) {
    flush();
    if (pool.free_count() == 0) {
      ++counters_.tx_no_frame;
      return {};
    }
  }
  tx_held_addr_ = *pool.take(State::kTxAcquired);
  tx_held_ = true;
  return MutBytes(umem_->data(tx_held_addr_), max_frame_len_);
}

void XskSocket::tx_commit(size_t len) {
  if (!tx_held_) return;
  tx_held_ = false;
  FramePool& pool = umem_->pool();
  uint32_t idx = 0;
  if (len == 0 || len > max_frame_len_ || xsk_ring_prod__reserve(&tx_, 1, &idx) != 1) {
    ++counters_.tx_bad_len;
    pool.move(tx_held_addr_, State::kTxAcquired, State::kFree);
    return;
  }
  xdp_desc* d = xsk_ring_prod__tx_desc(&tx_, idx);
  d->addr = tx_held_addr_;
  d->len = uint32_t(len);
  d->options = 0;
  pool.move(tx_held_addr_, State::kTxAcquired, State::kTxInFlight);
  xsk_ring_prod__submit(&tx_, 1);
  ++counters_.tx_frames;
  counters_.tx_bytes += len;
}

bool XskSocket::kick_once() {
  ++counters_.kicks;
  if (sendto(fd_, nullptr, 0, MSG_DONTWAIT, nullptr, 0) >= 0) return true;
  if (errno == EAGAIN || errno == EBUSY || errno == ENOBUFS || errno == EINTR) {
    ++counters_.kick_retries;
    return true;
  }
  ++counters_.kick_errors;
  return false;
}

size_t XskSocket::flush() {
  drain_completions();
  size_t pending = tx_pending();
  // One call takes at most 32 descriptors in copy mode; allow for that plus slack.
  const int tries = int(pending / 32) + kKickExtraTries;
  for (int i = 0; i < tries && pending > 0; ++i) {
    // Zero-copy drivers clear the flag while they are busy sending anyway;
    // copy mode always sets it.
    if (!xsk_ring_prod__needs_wakeup(&tx_)) break;
    const bool ok = kick_once();
    drain_completions();
    pending = tx_pending();
    if (!ok) break;
  }
  if (pending > 0 && xsk_ring_prod__needs_wakeup(&tx_)) ++counters_.kick_gave_up;
  return pending;
}

void XskSocket::check_busy_poll() {
  // The kernel busy-polls a socket only through the NAPI id its first frames
  // recorded (sk_napi_id; sk_can_busy_loop). A driver that registers its XDP
  // RX queue without one (veth) leaves it 0: every recvfrom() is then a bare
  // system call that polls nothing, and its entry and exit cost more than the
  // ring wait it was meant to shorten (measured on veth: a 64 B TCP round
  // trip 30 % slower than spinning on the ring). Spin instead.
  busy_poll_checked_ = true;
  unsigned napi_id = 0;
  socklen_t len = sizeof napi_id;
  if (getsockopt(fd_, SOL_SOCKET, SO_INCOMING_NAPI_ID, &napi_id, &len) == 0 && napi_id == 0) {
    busy_poll_ = false;
    counters_.busy_poll_off = 1;
  }
}

Status<std::string> XskSocket::set_busy_poll(bool on, int usecs, int budget) {
  const int prefer = on ? 1 : 0;
  const int us = on ? usecs : 0;
  if (setsockopt(fd_, SOL_SOCKET, SO_PREFER_BUSY_POLL, &prefer, sizeof(prefer)) != 0) {
    return unexpected(std::string("xsk: SO_PREFER_BUSY_POLL: ") + strerror(errno));
  }
  if (setsockopt(fd_, SOL_SOCKET, SO_BUSY_POLL, &us, sizeof(us)) != 0) {
    return unexpected(std::string("xsk: SO_BUSY_POLL: ") + strerror(errno));
  }
  if (on && setsockopt(fd_, SOL_SOCKET, SO_BUSY_POLL_BUDGET, &budget, sizeof(budget)) != 0) {
    return unexpected(std::string("xsk: SO_BUSY_POLL_BUDGET: ") + strerror(errno));
  }
  busy_poll_ = on;
  busy_poll_checked_ = false;
  counters_.busy_poll_off = 0;
  return {};
}

Expected<XskKernelStats, std::string> XskSocket::kernel_stats() const {
  xdp_statistics st{};
  socklen_t len = sizeof(st);
  if (getsockopt(fd_, SOL_XDP, XDP_STATISTICS, &st, &len) != 0) {
    return unexpected(std::string("xsk: XDP_STATISTICS: ") + strerror(errno));
  }
  XskKernelStats out;
  out.rx_dropped = st.rx_dropped;
  out.rx_invalid_descs = st.rx_invalid_descs;
  out.tx_invalid_descs = st.tx_invalid_descs;
  // Kernels before 5.9 return the first three fields only.
  if (len >= sizeof(st)) {
    out.rx_ring_full = st.rx_ring_full;
    out.rx_fill_ring_empty_descs = st.rx_fill_ring_empty_descs;
    out.tx_ring_empty_descs = st.tx_ring_empty_descs;
  }
  return out;
}

std::string XskSocket::check_invariant() const {
  const FramePool& pool = umem_->pool();
  if (std::string why = pool.check_invariant(); !why.empty()) return why;
  // Inside a callback the frame being delivered is kRx unless it was held.
  const size_t rx_expected = rx_in_callback_ && !rx_cur_held_ ? 1 : 0;
  if (pool.count(State::kRx) != rx_expected) return "frames held by RX outside a poll_rx callback";
  if (pool.count(State::kLent) != counters_.lent) return "lent count disagrees with hold_current/release_lent";
  if (pool.count(State::kLent) > lend_limit_) return "more frames lent than lend_limit";
  if (pool.count(State::kTxAcquired) != (tx_held_ ? 1u : 0u)) return "tx-acquired count disagrees with tx_acquire()";
  Umem& u = *umem_;
  // Frames on the fill ring are a subset of those lent for RX (the kernel also
  // holds some and some sit on the RX ring); likewise for TX.
  const uint32_t on_fill = ring_used(u.fill()->producer, u.fill()->consumer);
  if (on_fill > pool.count(State::kFill)) return "fill ring holds more frames than were lent for RX";
  const uint32_t on_tx = ring_used(tx_.producer, tx_.consumer);
  if (on_tx > pool.count(State::kTxInFlight)) return "TX ring holds more frames than were sent";
  // Inside a callback the batch is still on the RX ring (released after the
  // loop), but the descriptors already taken are no longer lent for RX.
  // Not summed with on_fill: the kernel publishes its fill-ring consumer
  // index lazily (at its next peek), so a frame it already put on the RX
  // ring can still count as on the fill ring while frames arrive.
  const uint32_t on_rx = ring_used(rx_.producer, rx_.consumer) - rx_batch_seen_;
  if (on_rx > pool.count(State::kFill)) return "RX ring holds more frames than were lent for RX";
  return {};
}

}  // namespace xs
