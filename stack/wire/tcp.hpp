// TCP header and options (RFC 9293 3.1; MSS RFC 9293 3.7.1; window scale and
// timestamps RFC 7323; SACK RFC 2018).
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "stack/base/addr.hpp"
#include "stack/base/bytes.hpp"
#include "stack/base/expected.hpp"
#include "stack/base/seq.hpp"
#include "stack/wire/error.hpp"

namespace xs {

inline constexpr size_t kTcpMinHeaderLen = 20;
inline constexpr size_t kTcpMaxOptionsLen = 40;
inline constexpr uint8_t kMaxWindowScale = 14;  // RFC 7323 2.3

namespace tcpflag {
inline constexpr uint8_t kFin = 0x01;
inline constexpr uint8_t kSyn = 0x02;
inline constexpr uint8_t kRst = 0x04;
inline constexpr uint8_t kPsh = 0x08;
inline constexpr uint8_t kAck = 0x10;
inline constexpr uint8_t kUrg = 0x20;
inline constexpr uint8_t kEce = 0x40;
inline constexpr uint8_t kCwr = 0x80;
}  // namespace tcpflag

namespace tcpopt {
inline constexpr uint8_t kEol = 0;
inline constexpr uint8_t kNop = 1;
inline constexpr uint8_t kMss = 2;
inline constexpr uint8_t kWscale = 3;
inline constexpr uint8_t kSackPermitted = 4;
inline constexpr uint8_t kSack = 5;
inline constexpr uint8_t kTimestamps = 8;
}  // namespace tcpopt

struct SackBlock {
  Seq left;   // first sequence number of the block
  Seq right;  // one past the last
  bool operator==(const SackBlock&) const = default;
};

struct TcpTimestamps {
  uint32_t val = 0;
  uint32_t ecr = 0;
  bool operator==(const TcpTimestamps&) const = default;
};

struct TcpOptions {
  std::optional<uint16_t> mss;
  std::optional<uint8_t> wscale;  // as received; the caller clamps to 14 (RFC 7323 2.3)
  bool sack_permitted = false;
  std::optional<TcpTimestamps> ts;
  uint8_t sack_count = 0;  // valid entries in sack[]
  std::array<SackBlock, 4> sack{};
};

struct TcpRepr {
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  Seq seq;
  Seq ack;  // meaningful only when flags has kAck
  uint8_t flags = 0;
  uint16_t window = 0;  // raw, unscaled
  uint16_t urgent = 0;
  TcpOptions opts;
  Bytes payload;

  bool has(uint8_t f) const { return (flags & f) != 0; }
  // Sequence space consumed: payload plus one each for SYN and FIN.
  uint32_t seg_len() const {
    return static_cast<uint32_t>(payload.size()) + (has(tcpflag::kSyn) ? 1 : 0) + (has(tcpflag::kFin) ? 1 : 0);
  }
};

// Validates data offset (5..15, within the buffer), every option (kind, then
// length >= 2, then length <= remaining, then the exact length each known kind
// requires; unknown kinds skipped by length), ports != 0, and the checksum
// against the pseudo-header when verify_checksum. SYN+RST and SYN+FIN are Malformed.
// SACK blocks beyond 4 are ignored; a SACK option whose length is not 2+8n is BadOption.
Expected<TcpRepr, WireError> parse_tcp(Bytes segment, Ipv4Addr src, Ipv4Addr dst,
                                       bool verify_checksum = true);

// Length of the encoded options, padded to a multiple of 4. Encoding follows
// Linux's order: on SYN segments MSS, SACK-permitted, timestamps, window scale
// (packed with NOPs as Linux does); otherwise NOP,NOP,timestamps then
// NOP,NOP,SACK blocks. The caller must not ask for more than fits in 40 bytes
// (emit drops trailing SACK blocks that do not fit).
size_t tcp_options_len(const TcpOptions& o);

// Writes header + options at out[0..header_len) and computes the checksum over
// header + the payload_len bytes that must already be at out[header_len..].
// r.payload is ignored (the payload is taken from `out`). Returns header_len.
size_t emit_tcp(const TcpRepr& r, Ipv4Addr src, Ipv4Addr dst, MutBytes out, size_t payload_len);

}  // namespace xs
