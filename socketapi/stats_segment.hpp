// The layout of the shared-memory segments a running engine publishes for
// xstack-stat and xstack-dump (docs/observability.md). Plain data: the engine
// writes it, the tools map it read-only (stats) or read-write (capture
// control), and both compile this one header.
//
// Versioning: `magic` identifies the segment, `version` changes only when an
// existing field moves or changes meaning. New fields are appended to a row
// or to the header; the sizes written in the header let an older tool read a
// newer engine's rows (it ignores the tail) and a newer tool read an older
// engine's (missing fields read as zero).
//
// Consistency: a seqlock. The writer makes `seq` odd, writes, makes it even;
// a reader copies everything between two equal even reads of `seq`.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>

namespace xs::stats {

inline constexpr uint64_t kMagic = 0x3154415453534b58ull;  // "XKSSTAT1" little-endian
inline constexpr uint32_t kVersion = 1;
inline constexpr size_t kCounterNameLen = 48;

// Socket kinds in SocketRow::proto.
inline constexpr uint8_t kProtoTcp = 6, kProtoUdp = 17;

// One socket. TCP fields follow struct tcp_info's units (microseconds,
// segments for cwnd/ssthresh). Listeners: rcv_queue = accept-queue length,
// snd_queue = backlog (as `ss` shows them).
struct SocketRow {
  uint8_t proto = 0;
  uint8_t state = 0;     // Linux TCP state number (tcp_states.h); UDP: 7 (CLOSE) or 1 (connected)
  uint8_t ca_state = 0;  // 0 open, 1 disorder, 3 recovery, 4 loss
  uint8_t options = 0;   // TCPI_OPT_* bits
  uint32_t local_addr = 0, remote_addr = 0;  // host byte order (Ipv4Addr::v)
  uint16_t local_port = 0, remote_port = 0;
  uint32_t snd_queue = 0, rcv_queue = 0;  // bytes
  uint32_t cwnd = 0, ssthresh = 0, srtt_us = 0, rttvar_us = 0, rto_us = 0, min_rtt_us = 0;
  uint32_t retransmits = 0;  // consecutive (backoff)
  uint32_t total_retrans = 0, snd_mss = 0, rcv_mss = 0, pmtu = 0, unacked = 0, sacked = 0, lost = 0;
  uint32_t snd_wnd = 0, rcv_wnd = 0, notsent = 0, segs_in = 0, segs_out = 0;
  uint8_t snd_wscale = 0, rcv_wscale = 0, reserved8[2] = {};
  uint64_t bytes_sent = 0, bytes_acked = 0, bytes_received = 0, bytes_retrans = 0;
  uint32_t last_data_recv_ms = 0, last_data_sent_ms = 0;
};

struct CounterRow {
  char name[kCounterNameLen] = {};  // NUL-terminated
  uint64_t value = 0;
};

// Offset 0 of the stats segment. Rows follow at the offsets given here.
struct alignas(64) Header {
  uint64_t magic = 0;
  uint32_t version = 0;
  uint32_t header_size = 0;
  uint64_t total_size = 0;
  uint32_t pid = 0;
  uint32_t period_ms = 0;
  uint32_t socket_row_size = 0, socket_capacity = 0;
  uint32_t counter_row_size = 0, counter_capacity = 0;
  uint64_t sockets_offset = 0, counters_offset = 0;
  char device[32] = {};      // interface name
  uint32_t local_addr = 0;   // the stack's address, host order
  uint8_t prefix_len = 0, reserved8[3] = {};

  // ---- capture control (xstack-dump) ---------------------------------------
  // The reader sets capture_request to a nonzero generation after creating
  // "<name>-cap"; the engine maps that segment and echoes the generation in
  // capture_attached; 0 in capture_request asks the engine to detach.
  alignas(64) std::atomic<uint32_t> capture_request{0};
  std::atomic<uint32_t> capture_attached{0};

  // ---- seqlock-protected snapshot -------------------------------------------
  alignas(64) std::atomic<uint64_t> seq{0};
  uint64_t publish_count = 0;
  int64_t publish_realtime_ns = 0;  // CLOCK_REALTIME of the snapshot
  int64_t publish_monotonic_us = 0;
  uint32_t socket_rows = 0;   // rows valid in this snapshot
  uint32_t socket_total = 0;  // sockets the stack has (> socket_rows: truncated)
  uint32_t counter_rows = 0;
  uint32_t truncated = 0;
};

static_assert(std::atomic<uint32_t>::is_always_lock_free && std::atomic<uint64_t>::is_always_lock_free,
              "atomics in shared memory must be lock-free (address-free)");

inline size_t segment_size(uint32_t socket_capacity, uint32_t counter_capacity) {
  return sizeof(Header) + size_t(socket_capacity) * sizeof(SocketRow) + size_t(counter_capacity) * sizeof(CounterRow);
}

// Fills the fixed part of a zeroed region of segment_size() bytes.
inline Header* init_segment(void* mem, uint32_t socket_capacity, uint32_t counter_capacity) {
  auto* h = new (mem) Header{};
  h->version = kVersion;
  h->header_size = sizeof(Header);
  h->total_size = segment_size(socket_capacity, counter_capacity);
  h->socket_row_size = sizeof(SocketRow);
  h->socket_capacity = socket_capacity;
  h->counter_row_size = sizeof(CounterRow);
  h->counter_capacity = counter_capacity;
  h->sockets_offset = sizeof(Header);
  h->counters_offset = sizeof(Header) + size_t(socket_capacity) * sizeof(SocketRow);
  return h;
}

// Writer side of the seqlock. Readers never block the writer.
inline void write_begin(Header& h) {
  h.seq.store(h.seq.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
}
inline void write_end(Header& h) { h.seq.store(h.seq.load(std::memory_order_relaxed) + 1, std::memory_order_release); }

// Reader side: copies `len` bytes at `src` (inside the segment) into `dst`
// consistently with the seqlock; false after `max_tries` torn reads. The copy
// of a torn snapshot is discarded, so racing with the writer is harmless.
inline bool read_consistent(const Header& h, const void* src, void* dst, size_t len, int max_tries = 1000) {
  for (int i = 0; i < max_tries; ++i) {
    uint64_t s1 = h.seq.load(std::memory_order_acquire);
    if (s1 & 1) continue;
    std::memcpy(dst, src, len);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (h.seq.load(std::memory_order_relaxed) == s1) return true;
  }
  return false;
}

}  // namespace xs::stats
