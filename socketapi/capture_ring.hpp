// The capture ring xstack-dump reads: a single-producer single-consumer byte
// ring of variable-length frame records in shared memory. The engine (one
// writer, under its lock) appends the frames it receives and sends; the tool
// (one reader) drains them into a pcap file. A full ring drops the new frame
// and counts it: the engine never waits for the reader.
//
// Layout: CaptureHeader, then `ring_size` bytes (a power of two) at
// `data_offset`. `head` and `tail` count bytes ever written/consumed; each
// record is a RecordHeader plus the frame, padded to 8 bytes, and never
// straddles the end of the ring: when it would not fit, a wrap marker fills
// the rest and the record starts again at offset 0.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <span>

namespace xs::capture {

inline constexpr uint64_t kMagic = 0x3150414353534b58ull;  // "XKSSCAP1" little-endian
inline constexpr uint32_t kVersion = 1;
inline constexpr uint32_t kMaxSnaplen = 2048;
inline constexpr uint32_t kWrapMarker = 0xffffffffu;

enum class Dir : uint8_t { Rx = 0, Tx = 1 };

struct alignas(64) CaptureHeader {
  uint64_t magic = 0;
  uint32_t version = 0;
  uint32_t header_size = 0;
  uint64_t ring_size = 0;    // power of two
  uint64_t data_offset = 0;  // from the start of the segment
  uint32_t snaplen = 0;      // bytes kept of each frame
  uint32_t reader_pid = 0;
  // Written by the engine.
  alignas(64) std::atomic<uint64_t> head{0};
  std::atomic<uint64_t> frames{0};  // records written
  std::atomic<uint64_t> drops{0};   // frames lost to a full ring
  // Written by the reader.
  alignas(64) std::atomic<uint64_t> tail{0};
  // CLOCK_MONOTONIC (ns) of the reader's last poll: a reader silent for a
  // second is taken to be gone (killed without detaching).
  std::atomic<int64_t> reader_heartbeat_ns{0};
};

struct RecordHeader {
  uint32_t caplen;   // bytes that follow, or kWrapMarker
  uint32_t origlen;  // length of the frame on the wire
  int64_t ts_ns;     // CLOCK_REALTIME
  uint8_t dir;       // Dir
  uint8_t reserved[7];
};
static_assert(sizeof(RecordHeader) == 24);

inline constexpr uint64_t align8(uint64_t n) { return (n + 7) & ~uint64_t(7); }

inline constexpr size_t data_offset() { return (sizeof(CaptureHeader) + 4095) & ~size_t(4095); }
inline constexpr size_t segment_size(uint64_t ring_size) { return data_offset() + ring_size; }

// Fills a zeroed region of segment_size(ring_size) bytes. ring_size must be a
// power of two of at least 4096.
inline CaptureHeader* init(void* mem, uint64_t ring_size, uint32_t snaplen, uint32_t reader_pid) {
  auto* h = new (mem) CaptureHeader{};
  h->version = kVersion;
  h->header_size = sizeof(CaptureHeader);
  h->ring_size = ring_size;
  h->data_offset = data_offset();
  h->snaplen = snaplen > kMaxSnaplen ? kMaxSnaplen : snaplen;
  h->reader_pid = reader_pid;
  h->magic = kMagic;  // last: a reader of the header sees it complete
  return h;
}

// Checks a mapped segment of `mapped_len` bytes before trusting its sizes
// (the engine validates what a tool wrote).
inline bool valid(const CaptureHeader& h, size_t mapped_len) {
  return h.magic == kMagic && h.version == kVersion && h.ring_size >= 4096 &&
         (h.ring_size & (h.ring_size - 1)) == 0 && h.data_offset >= sizeof(CaptureHeader) &&
         h.data_offset <= mapped_len && h.ring_size <= mapped_len - h.data_offset && h.snaplen > 0 &&
         h.snaplen <= kMaxSnaplen;
}

// The engine's side. Not thread-safe: the engine calls it under its lock.
class Writer {
 public:
  Writer(CaptureHeader& h, uint8_t* data) : h_(h), data_(data), size_(h.ring_size), snaplen_(h.snaplen) {}

  void write(std::span<const uint8_t> frame, Dir dir, int64_t ts_ns) {
    uint32_t caplen = frame.size() < snaplen_ ? static_cast<uint32_t>(frame.size()) : snaplen_;
    uint64_t need = sizeof(RecordHeader) + align8(caplen);
    uint64_t head = h_.head.load(std::memory_order_relaxed);
    // A tail beyond head would be a reader bug: treat the ring as full.
    uint64_t tail = h_.tail.load(std::memory_order_acquire);
    uint64_t used = head - tail;
    uint64_t off = head & (size_ - 1);
    uint64_t to_end = size_ - off;
    uint64_t total = need <= to_end ? need : to_end + need;  // wrap marker fills the rest
    if (used > size_ || total > size_ - used) {
      h_.drops.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (need > to_end) {
      // to_end >= 8: records are 8-aligned, so there is room for caplen at least.
      uint32_t marker = kWrapMarker;
      std::memcpy(data_ + off, &marker, sizeof marker);
      head += to_end;
      off = 0;
    }
    RecordHeader r{caplen, static_cast<uint32_t>(frame.size()), ts_ns, static_cast<uint8_t>(dir), {}};
    std::memcpy(data_ + off, &r, sizeof r);
    std::memcpy(data_ + off + sizeof r, frame.data(), caplen);
    h_.frames.fetch_add(1, std::memory_order_relaxed);
    h_.head.store(head + need, std::memory_order_release);
  }

 private:
  CaptureHeader& h_;
  uint8_t* data_;
  uint64_t size_;
  uint32_t snaplen_;
};

struct Record {
  RecordHeader hdr;
  std::span<const uint8_t> bytes;
};

// The tool's side: calls fn(Record) for each record available, then frees
// their space. Returns records read, or -1 when the ring is corrupt.
template <class F>
long drain(CaptureHeader& h, const uint8_t* data, F&& fn) {
  const uint64_t size = h.ring_size;
  uint64_t tail = h.tail.load(std::memory_order_relaxed);
  uint64_t head = h.head.load(std::memory_order_acquire);
  long n = 0;
  while (tail != head) {
    if (head - tail > size) return -1;
    uint64_t off = tail & (size - 1);
    uint32_t caplen;
    std::memcpy(&caplen, data + off, sizeof caplen);
    if (caplen == kWrapMarker) {
      tail += size - off;
      continue;
    }
    RecordHeader r;
    if (size - off < sizeof r) return -1;
    std::memcpy(&r, data + off, sizeof r);
    uint64_t need = sizeof r + align8(r.caplen);
    if (r.caplen > kMaxSnaplen || need > size - off || need > head - tail) return -1;
    fn(Record{r, {data + off + sizeof r, r.caplen}});
    tail += need;
    ++n;
  }
  h.tail.store(tail, std::memory_order_release);
  return n;
}

}  // namespace xs::capture
