#include "stack/wire/tcp.hpp"

#include <algorithm>

#include "stack/wire/checksum.hpp"
#include "stack/wire/ipv4.hpp"

namespace xs {

namespace {
// RFC 9293 3.1 header layout.
constexpr size_t kSrcPortOff = 0;
constexpr size_t kDstPortOff = 2;
constexpr size_t kSeqOff = 4;
constexpr size_t kAckOff = 8;
constexpr size_t kDataOffOff = 12;  // high nibble: header length in 32-bit words
constexpr size_t kFlagsOff = 13;
constexpr size_t kWindowOff = 14;
constexpr size_t kChecksumOff = 16;
constexpr size_t kUrgentOff = 18;

// Option lengths (kind and length octets included).
constexpr uint8_t kLenMss = 4;            // RFC 9293 3.2
constexpr uint8_t kLenWscale = 3;         // RFC 7323 2.2
constexpr uint8_t kLenSackPermitted = 2;  // RFC 2018 2
constexpr uint8_t kLenTimestamps = 10;    // RFC 7323 3.2
constexpr uint8_t kSackBlockLen = 8;      // RFC 2018 3: two 32-bit edges
constexpr size_t kMaxSackBlocks = 4;      // what TcpOptions holds (and what fits in 40 bytes)

// Parses the option list `opts` (the bytes between the fixed header and the
// data). The order of checks follows STYLE.md rule 4: kind; for TLV kinds, that
// the length octet exists, then 2 <= length <= remaining; only then the exact
// length a known kind needs. Nothing is read before the check that covers it.
bool parse_options(Bytes opts, TcpOptions* o) {
  size_t i = 0;
  while (i < opts.size()) {
    const uint8_t kind = opts[i];
    // RFC 9293 3.2: End of Option List; what follows is padding.
    if (kind == tcpopt::kEol) return true;
    if (kind == tcpopt::kNop) {
      ++i;
      continue;
    }
    const size_t remaining = opts.size() - i;
    if (remaining < 2) return false;
    const uint8_t len = opts[i + 1];
    if (len < 2 || len > remaining) return false;
    const uint8_t* d = opts.data() + i + 2;  // option data, len - 2 bytes
    switch (kind) {
      case tcpopt::kMss:
        if (len != kLenMss) return false;
        o->mss = load_be16(d);
        break;
      case tcpopt::kWscale:
        if (len != kLenWscale) return false;
        o->wscale = d[0];
        break;
      case tcpopt::kSackPermitted:
        if (len != kLenSackPermitted) return false;
        o->sack_permitted = true;
        break;
      case tcpopt::kTimestamps:
        if (len != kLenTimestamps) return false;
        o->ts = TcpTimestamps{load_be32(d), load_be32(d + 4)};
        break;
      case tcpopt::kSack: {
        // RFC 2018 3: length 2 + 8n, n >= 1.
        if (len < 2 + kSackBlockLen || (len - 2) % kSackBlockLen != 0) return false;
        size_t n = std::min<size_t>((len - 2) / kSackBlockLen, kMaxSackBlocks);
        for (size_t b = 0; b < n; ++b) {
          o->sack[b] = SackBlock{Seq(load_be32(d + b * kSackBlockLen)), Seq(load_be32(d + b * kSackBlockLen + 4))};
        }
        o->sack_count = static_cast<uint8_t>(n);
        break;
      }
      default:
        // RFC 9293 3.1: unknown options are skipped using their length.
        break;
    }
    i += len;
  }
  return true;
}

// Encoded sizes of each option group in the layout below.
constexpr size_t kSzMss = 4;
constexpr size_t kSzTsGroup = 12;        // 4,2,8,10,ts or NOP,NOP,8,10,ts
constexpr size_t kSzSackPermGroup = 4;   // NOP,NOP,4,2 (when no timestamps)
constexpr size_t kSzWscaleGroup = 4;     // NOP,3,3,ws
constexpr size_t kSzSackHdrGroup = 4;    // NOP,NOP,5,len

size_t fixed_options_len(const TcpOptions& o) {
  size_t n = 0;
  if (o.mss) n += kSzMss;
  if (o.ts) n += kSzTsGroup;
  else if (o.sack_permitted) n += kSzSackPermGroup;
  if (o.wscale) n += kSzWscaleGroup;
  return n;
}

// How many SACK blocks emit writes: those asked for, capped by what fits in
// the 40 bytes left by the other options (3 with timestamps, 4 without).
size_t sack_blocks_to_emit(const TcpOptions& o) {
  size_t want = std::min<size_t>(o.sack_count, kMaxSackBlocks);
  if (want == 0) return 0;
  size_t used = fixed_options_len(o);
  if (used + kSzSackHdrGroup + kSackBlockLen > kTcpMaxOptionsLen) return 0;
  return std::min(want, (kTcpMaxOptionsLen - used - kSzSackHdrGroup) / kSackBlockLen);
}

}  // namespace

Expected<TcpRepr, WireError> parse_tcp(Bytes segment, Ipv4Addr src, Ipv4Addr dst, bool verify_checksum) {
  if (segment.size() < kTcpMinHeaderLen) return unexpected(WireError::Truncated);
  const uint8_t* p = segment.data();
  size_t header_len = size_t(p[kDataOffOff] >> 4) * 4;
  if (header_len < kTcpMinHeaderLen) return unexpected(WireError::BadLength);
  if (header_len > segment.size()) return unexpected(WireError::Truncated);
  if (verify_checksum) {
    // RFC 9293 3.1: the checksum covers the pseudo-header, header and data.
    // A TCP segment in IPv4 cannot exceed 65535 - 20 bytes; a longer span can
    // not have come from a valid IP packet.
    if (segment.size() > 0xffff) return unexpected(WireError::BadLength);
    uint64_t acc = pseudo_header_sum(src, dst, ipproto::kTcp, static_cast<uint16_t>(segment.size()));
    if (!csum_verify(segment, acc)) return unexpected(WireError::BadChecksum);
  }

  TcpRepr r;
  r.src_port = load_be16(p + kSrcPortOff);
  r.dst_port = load_be16(p + kDstPortOff);
  // Port 0 parses like any other: Linux answers a SYN to port 0 with an RST
  // from port 0, and a connect() to port 0 must take that RST (ECONNREFUSED).
  r.seq = Seq(load_be32(p + kSeqOff));
  r.ack = Seq(load_be32(p + kAckOff));
  r.flags = p[kFlagsOff];
  // SYN+RST and SYN+FIN have no meaning in RFC 9293 and are classic scanner
  // probes (nmap); Linux drops both before any state lookup.
  if (r.has(tcpflag::kSyn) && (r.has(tcpflag::kRst) || r.has(tcpflag::kFin))) {
    return unexpected(WireError::Malformed);
  }
  r.window = load_be16(p + kWindowOff);
  r.urgent = load_be16(p + kUrgentOff);
  if (!parse_options(segment.subspan(kTcpMinHeaderLen, header_len - kTcpMinHeaderLen), &r.opts)) {
    return unexpected(WireError::BadOption);
  }
  r.payload = segment.subspan(header_len);
  return r;
}

// The layout is a function of the options alone (not of the SYN flag) so that
// tcp_options_len and emit_tcp can never disagree about where the payload
// starts. Callers set mss / wscale / sack_permitted only on SYN segments
// (RFC 9293 3.7.1, RFC 7323 2.2, RFC 2018 2) and SACK blocks only on others,
// which yields exactly Linux's two layouts (tcp_options_write()):
//   SYN:      MSS | 4,2,8,10,ts (or NOP,NOP,8,10,ts, or NOP,NOP,4,2) | NOP,3,3,ws
//   non-SYN:  NOP,NOP,8,10,ts | NOP,NOP,5,len,blocks
// Every group is a multiple of 4 bytes, so no trailing padding is needed.
size_t tcp_options_len(const TcpOptions& o) {
  size_t n = fixed_options_len(o);
  size_t blocks = sack_blocks_to_emit(o);
  if (blocks > 0) n += kSzSackHdrGroup + blocks * kSackBlockLen;
  return n;
}

size_t emit_tcp(const TcpRepr& r, Ipv4Addr src, Ipv4Addr dst, MutBytes out, size_t payload_len) {
  const TcpOptions& o = r.opts;
  const size_t header_len = kTcpMinHeaderLen + tcp_options_len(o);
  uint8_t* p = out.data();
  store_be16(p + kSrcPortOff, r.src_port);
  store_be16(p + kDstPortOff, r.dst_port);
  store_be32(p + kSeqOff, r.seq.raw());
  // RFC 9293 3.1: the acknowledgment field is only meaningful with ACK; send 0
  // otherwise rather than leak state.
  store_be32(p + kAckOff, r.has(tcpflag::kAck) ? r.ack.raw() : 0);
  p[kDataOffOff] = static_cast<uint8_t>((header_len / 4) << 4);
  p[kFlagsOff] = r.flags;
  store_be16(p + kWindowOff, r.window);
  store_be16(p + kChecksumOff, 0);
  store_be16(p + kUrgentOff, r.urgent);

  uint8_t* q = p + kTcpMinHeaderLen;
  if (o.mss) {
    *q++ = tcpopt::kMss;
    *q++ = kLenMss;
    store_be16(q, *o.mss);
    q += 2;
  }
  if (o.ts) {
    // With SACK-permitted, Linux packs it in front of the timestamps instead of
    // two NOPs, saving 4 bytes.
    if (o.sack_permitted) {
      *q++ = tcpopt::kSackPermitted;
      *q++ = kLenSackPermitted;
    } else {
      *q++ = tcpopt::kNop;
      *q++ = tcpopt::kNop;
    }
    *q++ = tcpopt::kTimestamps;
    *q++ = kLenTimestamps;
    store_be32(q, o.ts->val);
    store_be32(q + 4, o.ts->ecr);
    q += 8;
  } else if (o.sack_permitted) {
    *q++ = tcpopt::kNop;
    *q++ = tcpopt::kNop;
    *q++ = tcpopt::kSackPermitted;
    *q++ = kLenSackPermitted;
  }
  if (o.wscale) {
    *q++ = tcpopt::kNop;
    *q++ = tcpopt::kWscale;
    *q++ = kLenWscale;
    *q++ = *o.wscale;
  }
  size_t blocks = sack_blocks_to_emit(o);
  if (blocks > 0) {
    *q++ = tcpopt::kNop;
    *q++ = tcpopt::kNop;
    *q++ = tcpopt::kSack;
    *q++ = static_cast<uint8_t>(2 + blocks * kSackBlockLen);
    for (size_t b = 0; b < blocks; ++b) {
      store_be32(q, o.sack[b].left.raw());
      store_be32(q + 4, o.sack[b].right.raw());
      q += kSackBlockLen;
    }
  }

  const size_t seg_len = header_len + payload_len;
  uint64_t acc = pseudo_header_sum(src, dst, ipproto::kTcp, static_cast<uint16_t>(seg_len));
  store_be16(p + kChecksumOff, csum_fold(csum_partial(Bytes(p, seg_len), acc)));
  return header_len;
}

}  // namespace xs
