// TCP: parse without checksum verification so the fuzzer explores the option
// walker; a parsed segment re-emits in the canonical (Linux) option layout and
// must parse, checksum verified, to the same values. Options are compared as
// parsed values, not bytes, since emit normalises their layout.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "stack/wire/tcp.hpp"

using namespace xs;

namespace {
const Ipv4Addr kSrc = Ipv4Addr::from_octets(198, 19, 2, 1);
const Ipv4Addr kDst = Ipv4Addr::from_octets(198, 19, 100, 7);

// SACK blocks that fit in 40 option bytes beside the other options, computed
// independently of the emitter: MSS 4, TS 12 (SACK-permitted rides along) or
// SACK-permitted alone 4, WS 4, then a 4-byte SACK header + 8 per block.
size_t sack_room(const TcpOptions& o) {
  size_t used = (o.mss ? 4 : 0) + (o.ts ? 12 : o.sack_permitted ? 4 : 0) + (o.wscale ? 4 : 0);
  return used + 4 + 8 <= 40 ? (40 - used - 4) / 8 : 0;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // An IPv4 datagram cannot carry a longer segment; the checksummed re-parse
  // rightly rejects one.
  if (size > 0xffff - 20) return 0;
  auto t = parse_tcp(Bytes(data, size), kSrc, kDst, /*verify_checksum=*/false);
  if (!t) return 0;
  const TcpRepr& a = *t;
  if (a.opts.sack_count > 4) __builtin_trap();
  if (a.payload.size() + kTcpMinHeaderLen > size) __builtin_trap();

  const size_t olen = tcp_options_len(a.opts);
  if (olen > kTcpMaxOptionsLen || olen % 4 != 0) __builtin_trap();
  const size_t hl = kTcpMinHeaderLen + olen;
  std::vector<uint8_t> out(hl + a.payload.size());
  if (!a.payload.empty()) std::memcpy(out.data() + hl, a.payload.data(), a.payload.size());
  if (emit_tcp(a, kSrc, kDst, out, a.payload.size()) != hl) __builtin_trap();

  auto u = parse_tcp(out, kSrc, kDst, /*verify_checksum=*/true);
  if (!u) __builtin_trap();
  const TcpRepr& b = *u;
  if (b.src_port != a.src_port || b.dst_port != a.dst_port || b.seq != a.seq || b.flags != a.flags ||
      b.window != a.window || b.urgent != a.urgent) {
    __builtin_trap();
  }
  if (a.has(tcpflag::kAck) ? b.ack != a.ack : b.ack != Seq(0)) __builtin_trap();
  if (b.opts.mss != a.opts.mss || b.opts.wscale != a.opts.wscale ||
      b.opts.sack_permitted != a.opts.sack_permitted || b.opts.ts != a.opts.ts) {
    __builtin_trap();
  }
  const size_t want_sack = std::min<size_t>(a.opts.sack_count, sack_room(a.opts));
  if (b.opts.sack_count != want_sack) __builtin_trap();
  for (size_t i = 0; i < want_sack; ++i) {
    if (b.opts.sack[i] != a.opts.sack[i]) __builtin_trap();
  }
  if (b.payload.size() != a.payload.size()) __builtin_trap();
  if (!a.payload.empty() && std::memcmp(b.payload.data(), a.payload.data(), a.payload.size()) != 0) {
    __builtin_trap();
  }
  return 0;
}
