// Classic pcap files (the format tcpdump -w writes), LINKTYPE_ETHERNET, with
// nanosecond or microsecond timestamps. Header-only so the unit tests check it.
#pragma once
#include <cstdint>
#include <cstdio>
#include <span>

namespace xs::pcap {

inline constexpr uint32_t kMagicMicros = 0xa1b2c3d4, kMagicNanos = 0xa1b23c4d;
inline constexpr uint32_t kLinktypeEthernet = 1;

struct FileHeader {
  uint32_t magic;
  uint16_t version_major = 2, version_minor = 4;
  int32_t thiszone = 0;
  uint32_t sigfigs = 0;
  uint32_t snaplen;
  uint32_t linktype = kLinktypeEthernet;
};
static_assert(sizeof(FileHeader) == 24);

struct RecordHeader {
  uint32_t ts_sec, ts_frac, caplen, origlen;
};
static_assert(sizeof(RecordHeader) == 16);

// Writes in host byte order, as libpcap does; readers detect it from the magic.
class Writer {
 public:
  Writer(std::FILE* f, uint32_t snaplen, bool nanos) : f_(f), nanos_(nanos) {
    FileHeader h{nanos ? kMagicNanos : kMagicMicros};
    h.snaplen = snaplen;
    ok_ = std::fwrite(&h, sizeof h, 1, f_) == 1;
  }
  // `ts_ns`: nanoseconds since the Unix epoch.
  bool write(int64_t ts_ns, std::span<const uint8_t> data, uint32_t origlen) {
    RecordHeader r;
    r.ts_sec = static_cast<uint32_t>(ts_ns / 1000000000);
    uint32_t ns = static_cast<uint32_t>(ts_ns % 1000000000);
    r.ts_frac = nanos_ ? ns : ns / 1000;
    r.caplen = static_cast<uint32_t>(data.size());
    r.origlen = origlen;
    ok_ = ok_ && std::fwrite(&r, sizeof r, 1, f_) == 1 &&
          (data.empty() || std::fwrite(data.data(), data.size(), 1, f_) == 1);
    return ok_;
  }
  bool ok() const { return ok_; }

 private:
  std::FILE* f_;
  bool nanos_;
  bool ok_ = false;
};

}  // namespace xs::pcap
