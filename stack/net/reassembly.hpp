// IPv4 fragment reassembly (RFC 791 3.2, RFC 815). Datagrams are keyed by
// (src, dst, protocol, ident). Received ranges are kept as a sorted list of
// disjoint intervals, the complement of RFC 815's hole list: since any
// overlap discards the whole datagram (RFC 5722 applied to IPv4, as Linux does
// since 4.19), intervals never need splitting. Memory is bounded (datagram
// count and bytes, like ipfrag_high_thresh); this is a rare path, so buffers
// are allocated per datagram.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "stack/base/bytes.hpp"
#include "stack/base/counters.hpp"
#include "stack/base/time.hpp"
#include "stack/wire/ipv4.hpp"

namespace xs {

struct ReassemblyConfig {
  size_t max_datagrams = 64;
  size_t max_bytes = 4u << 20;     // ipfrag_high_thresh
  Duration timeout = seconds(30);  // ipfrag_time
};

class Reassembly {
 public:
  explicit Reassembly(StackCounters& counters, const ReassemblyConfig& cfg = {});

  // Adds one fragment (a parsed, checksum-valid packet with MF or offset set).
  // Returns the whole datagram once complete: hdr has no fragment bits and
  // payload_len = the reassembled length, `header` is the first fragment's
  // header, `payload` the contiguous data. Spans stay valid until the next
  // call to add() or poll(). Counts ip_reasm_reqds/oks/fails.
  std::optional<Ipv4Packet> add(Instant now, const Ipv4Packet& frag);

  // Drops datagrams older than the timeout (ip_reasm_timeouts, ip_reasm_fails).
  // For each one whose first fragment had arrived, calls
  // on_timeout(const Ipv4Packet& first) with the first fragment's header and up
  // to 8 bytes of its data, so the caller can send ICMP time exceeded code 1
  // (RFC 792; RFC 1122 3.3.2).
  template <class F>
  void poll(Instant now, F&& on_timeout) {
    release_done();
    if (now < next_deadline_) return;
    for (size_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i].live && slots_[i].started + cfg_.timeout <= now) {
        ++c_.ip_reasm_timeouts;
        ++c_.ip_reasm_fails;
        if (auto first = first_fragment(slots_[i])) on_timeout(*first);
        drop(i);
      }
    }
    recompute_deadline();
  }
  Instant poll_at() const { return next_deadline_; }

  size_t in_progress() const { return live_; }
  size_t bytes_used() const { return mem_; }

 private:
  struct Datagram {
    bool live = false;
    Ipv4Addr src, dst;
    uint8_t protocol = 0;
    uint16_t ident = 0;
    Instant started;
    size_t total = 0;      // known once the last fragment (MF=0) arrived
    bool have_last = false;
    bool have_first = false;
    Ipv4Repr first_hdr;
    uint8_t first_header[60] = {};
    size_t first_header_len = 0;
    std::vector<std::pair<uint32_t, uint32_t>> ranges;  // sorted, disjoint, [begin, end)
    std::vector<uint8_t> data;
    size_t charged = 0;
  };

  std::optional<Ipv4Packet> first_fragment(const Datagram& d) const;
  void drop(size_t i);
  void release_done();
  void recompute_deadline();
  void charge(Datagram& d);
  bool make_room(size_t need, size_t keep);

  StackCounters& c_;
  ReassemblyConfig cfg_;
  std::vector<Datagram> slots_;
  size_t live_ = 0;
  size_t mem_ = 0;
  Instant next_deadline_ = kNever;
  Datagram done_;  // the datagram last returned by add(), kept for its spans
};

}  // namespace xs
