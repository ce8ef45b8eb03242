// TCP header and options (RFC 9293 3.1, RFC 7323, RFC 2018).
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "stack/wire/checksum.hpp"
#include "stack/wire/tcp.hpp"

namespace xs {
namespace {

const Ipv4Addr kLo = Ipv4Addr::from_octets(127, 0, 0, 1);

std::vector<uint8_t> from_hex(const char* h) {
  std::vector<uint8_t> v;
  auto nib = [](char c) { return uint8_t(c <= '9' ? c - '0' : c - 'a' + 10); };
  for (; h[0] && h[1]; h += 2) v.push_back(uint8_t(nib(h[0]) << 4 | nib(h[1])));
  return v;
}

// A SYN sent by Linux 6.x over loopback (captured with AF_PACKET), MSS 65495,
// SACK-permitted, timestamps, window scale 10. Loopback leaves the checksum
// partial, so the field holds the full checksum computed independently.
const std::vector<uint8_t> kLinuxSyn =
    from_hex("9e08d5ab250a4b8300000000a002ffd777800000"
             "0204ffd70402080a723e81fe000000000103030a");
// The client's first data segment of the same connection: PSH|ACK, "hello".
const std::vector<uint8_t> kLinuxData =
    from_hex("9e08d5ab250a4b84be61b9f380180040fe290000"
             "0101080a723e81fe50dc94c0"
             "68656c6c6f");

// A bare 20-byte header + `opts` (padded here to a multiple of 4 with EOL) +
// `payload`, checksum filled in.
std::vector<uint8_t> segment(const std::vector<uint8_t>& opts, uint8_t flags = tcpflag::kAck,
                             size_t payload = 0) {
  // Sized up front: GCC 12 at -O2 reports a bogus -Warray-bounds on
  // vector::insert into a 20-byte vector.
  const size_t hl = 20 + (opts.size() + 3) / 4 * 4;
  std::vector<uint8_t> s(hl + payload, tcpopt::kEol);
  store_be16(&s[0], 1234);
  store_be16(&s[2], 80);
  store_be32(&s[4], 1000);
  store_be32(&s[8], 2000);
  s[12] = uint8_t(hl / 4 << 4);
  s[13] = flags;
  store_be16(&s[14], 512);
  store_be32(&s[16], 0);  // checksum and urgent pointer
  for (size_t i = 0; i < opts.size(); ++i) s[20 + i] = opts[i];
  for (size_t i = 0; i < payload; ++i) s[hl + i] = uint8_t(i);
  uint64_t ph = pseudo_header_sum(kLo, kLo, 6, uint16_t(s.size()));
  store_be16(&s[16], csum_fold(csum_partial(s, ph)));
  return s;
}

Expected<TcpRepr, WireError> parse(const std::vector<uint8_t>& s, bool verify = true) {
  return parse_tcp(s, kLo, kLo, verify);
}

WireError error_of(const std::vector<uint8_t>& s, bool verify = true) {
  auto r = parse(s, verify);
  EXPECT_FALSE(r);
  return r ? WireError::Unsupported : r.error();
}

// Emits `r` with `payload` into a fresh buffer; returns header + payload.
std::vector<uint8_t> emit(const TcpRepr& r, const std::vector<uint8_t>& payload = {}) {
  std::vector<uint8_t> out(20 + tcp_options_len(r.opts) + payload.size(), 0xcc);
  std::copy(payload.begin(), payload.end(), out.end() - std::ptrdiff_t(payload.size()));
  size_t hl = emit_tcp(r, kLo, kLo, out, payload.size());
  EXPECT_EQ(hl, out.size() - payload.size());
  return out;
}

std::vector<uint8_t> options_of(const std::vector<uint8_t>& seg) {
  size_t hl = size_t(seg[12] >> 4) * 4;
  return std::vector<uint8_t>(seg.begin() + 20, seg.begin() + std::ptrdiff_t(hl));
}

// ---- known answers -------------------------------------------------------

TEST(TcpParse, LinuxSyn) {
  auto r = parse(kLinuxSyn);
  ASSERT_TRUE(r) << to_string(r.error());
  EXPECT_EQ(r->src_port, 0x9e08);
  EXPECT_EQ(r->dst_port, 0xd5ab);
  EXPECT_EQ(r->seq, Seq(0x250a4b83));
  EXPECT_EQ(r->flags, tcpflag::kSyn);
  EXPECT_EQ(r->window, 0xffd7);
  EXPECT_EQ(r->urgent, 0);
  EXPECT_EQ(r->opts.mss, 65495);
  EXPECT_TRUE(r->opts.sack_permitted);
  ASSERT_TRUE(r->opts.ts);
  EXPECT_EQ(r->opts.ts->val, 0x723e81feu);
  EXPECT_EQ(r->opts.ts->ecr, 0u);
  EXPECT_EQ(r->opts.wscale, 10);
  EXPECT_EQ(r->opts.sack_count, 0);
  EXPECT_TRUE(r->payload.empty());
  EXPECT_EQ(r->seg_len(), 1u);
}

TEST(TcpParse, LinuxDataSegment) {
  auto r = parse(kLinuxData);
  ASSERT_TRUE(r) << to_string(r.error());
  EXPECT_EQ(r->flags, tcpflag::kPsh | tcpflag::kAck);
  EXPECT_EQ(r->seq, Seq(0x250a4b84));
  EXPECT_EQ(r->ack, Seq(0xbe61b9f3));
  EXPECT_EQ(r->window, 0x40);
  EXPECT_FALSE(r->opts.mss);
  EXPECT_FALSE(r->opts.wscale);
  EXPECT_FALSE(r->opts.sack_permitted);
  ASSERT_TRUE(r->opts.ts);
  EXPECT_EQ(r->opts.ts->val, 0x723e81feu);
  EXPECT_EQ(r->opts.ts->ecr, 0x50dc94c0u);
  ASSERT_EQ(r->payload.size(), 5u);
  EXPECT_EQ(std::memcmp(r->payload.data(), "hello", 5), 0);
  EXPECT_EQ(r->seg_len(), 5u);
}

TEST(TcpEmit, ReproducesLinuxSynByteForByte) {
  auto r = parse(kLinuxSyn);
  ASSERT_TRUE(r);
  EXPECT_EQ(emit(*r), kLinuxSyn);
}

TEST(TcpEmit, ReproducesLinuxDataSegmentByteForByte) {
  auto r = parse(kLinuxData);
  ASSERT_TRUE(r);
  EXPECT_EQ(emit(*r, {'h', 'e', 'l', 'l', 'o'}), kLinuxData);
}

// ---- Linux option layouts ------------------------------------------------

TEST(TcpEmit, SynLayouts) {
  struct Case {
    bool mss, sack, ts, ws;
    std::vector<uint8_t> want;
  };
  const Case cases[] = {
      {false, false, false, false, {}},
      {true, false, false, false, {2, 4, 0x05, 0xb4}},
      {false, false, true, false, {1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9}},
      {false, true, false, false, {1, 1, 4, 2}},
      {false, false, false, true, {1, 3, 3, 7}},
      {true, true, false, true, {2, 4, 0x05, 0xb4, 1, 1, 4, 2, 1, 3, 3, 7}},
      {true, false, true, true, {2, 4, 0x05, 0xb4, 1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9, 1, 3, 3, 7}},
      {true, true, true, true, {2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9, 1, 3, 3, 7}},
  };
  for (const Case& c : cases) {
    TcpRepr r;
    r.src_port = 1;
    r.dst_port = 2;
    r.flags = tcpflag::kSyn;
    if (c.mss) r.opts.mss = 1460;
    r.opts.sack_permitted = c.sack;
    if (c.ts) r.opts.ts = TcpTimestamps{7, 9};
    if (c.ws) r.opts.wscale = 7;
    EXPECT_EQ(tcp_options_len(r.opts), c.want.size());
    auto out = emit(r);
    EXPECT_EQ(options_of(out), c.want) << c.mss << c.sack << c.ts << c.ws;
    EXPECT_EQ(out[12] >> 4, int(5 + c.want.size() / 4));
    auto back = parse(out);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->opts.mss.has_value(), c.mss);
    EXPECT_EQ(back->opts.sack_permitted, c.sack);
    EXPECT_EQ(back->opts.ts.has_value(), c.ts);
    EXPECT_EQ(back->opts.wscale.has_value(), c.ws);
  }
}

TcpRepr ack_with_sack(bool ts, uint8_t blocks) {
  TcpRepr r;
  r.src_port = 5000;
  r.dst_port = 443;
  r.seq = Seq(100);
  r.ack = Seq(0xfffffff0u);
  r.flags = tcpflag::kAck;
  r.window = 1000;
  if (ts) r.opts.ts = TcpTimestamps{0x01020304, 0x05060708};
  r.opts.sack_count = blocks;
  for (uint32_t i = 0; i < 4; ++i) r.opts.sack[i] = {Seq(0x10000 * (i + 1)), Seq(0x10000 * (i + 1) + 0x100)};
  return r;
}

TEST(TcpEmit, NonSynTimestampsThenSack) {
  auto out = emit(ack_with_sack(true, 1));
  const std::vector<uint8_t> want = {1, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8,
                                     1, 1, 5, 10, 0, 1, 0, 0, 0, 1, 1, 0};
  EXPECT_EQ(options_of(out), want);
  auto back = parse(out);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->opts.sack_count, 1);
  EXPECT_EQ(back->opts.sack[0], (SackBlock{Seq(0x10000), Seq(0x10100)}));
}

TEST(TcpEmit, SackBlockLimits) {
  // (timestamps, asked) -> emitted: 3 fit beside timestamps, 4 without.
  struct Case { bool ts; uint8_t asked, emitted; };
  const Case cases[] = {{true, 3, 3}, {true, 4, 3}, {false, 4, 4}, {false, 9, 4}, {true, 0, 0}};
  for (auto c : cases) {
    TcpRepr r = ack_with_sack(c.ts, c.asked);
    size_t olen = tcp_options_len(r.opts);
    EXPECT_LE(olen, kTcpMaxOptionsLen);
    EXPECT_EQ(olen, (c.ts ? 12u : 0u) + (c.emitted ? 4u + 8u * c.emitted : 0u));
    auto out = emit(r);
    auto back = parse(out);
    ASSERT_TRUE(back);
    ASSERT_EQ(back->opts.sack_count, c.emitted) << c.ts << int(c.asked);
    for (int i = 0; i < c.emitted; ++i) EXPECT_EQ(back->opts.sack[i], r.opts.sack[i]);
  }
}

TEST(TcpEmit, OptionsLenMatchesEmitForAllCombinations) {
  for (int m = 0; m < 64; ++m) {
    for (uint8_t blocks = 0; blocks <= 4; ++blocks) {
      TcpOptions o;
      if (m & 1) o.mss = 536;
      if (m & 2) o.wscale = 14;
      o.sack_permitted = (m & 4) != 0;
      if (m & 8) o.ts = TcpTimestamps{1, 2};
      o.sack_count = blocks;
      size_t olen = tcp_options_len(o);
      EXPECT_EQ(olen % 4, 0u);
      EXPECT_LE(olen, kTcpMaxOptionsLen);
      TcpRepr r;
      r.src_port = 9;
      r.dst_port = 10;
      r.opts = o;
      std::vector<uint8_t> out(60 + 3, 0xcc);
      size_t hl = emit_tcp(r, kLo, kLo, out, 0);
      EXPECT_EQ(hl, 20 + olen);
      EXPECT_EQ(size_t(out[12] >> 4) * 4, hl);
      // Nothing beyond the header is written.
      for (size_t i = hl; i < out.size(); ++i) ASSERT_EQ(out[i], 0xcc) << m << " " << int(blocks);
    }
  }
}

// ---- round trips -----------------------------------------------------------

TEST(TcpEmit, RoundTripAllFields) {
  std::mt19937 rng(31337);
  for (int iter = 0; iter < 500; ++iter) {
    TcpRepr r;
    r.src_port = uint16_t(1 + rng() % 65535);
    r.dst_port = uint16_t(1 + rng() % 65535);
    r.seq = Seq(uint32_t(rng()));
    r.ack = Seq(uint32_t(rng()));
    r.flags = uint8_t(rng());
    if (r.has(tcpflag::kSyn)) r.flags &= uint8_t(~(tcpflag::kRst | tcpflag::kFin));
    r.window = uint16_t(rng());
    r.urgent = uint16_t(rng());
    if (r.has(tcpflag::kSyn)) {
      if (rng() & 1) r.opts.mss = uint16_t(rng());
      if (rng() & 1) r.opts.wscale = uint8_t(rng() % 15);
      r.opts.sack_permitted = rng() & 1;
    }
    if (rng() & 1) r.opts.ts = TcpTimestamps{uint32_t(rng()), uint32_t(rng())};
    if (!r.has(tcpflag::kSyn)) {
      r.opts.sack_count = uint8_t(rng() % (r.opts.ts ? 4 : 5));
      for (auto& b : r.opts.sack) b = {Seq(uint32_t(rng())), Seq(uint32_t(rng()))};
    }
    std::vector<uint8_t> payload(rng() % 100);
    for (auto& b : payload) b = uint8_t(rng());
    auto out = emit(r, payload);
    auto back = parse(out);
    ASSERT_TRUE(back) << to_string(back.error());
    EXPECT_EQ(back->src_port, r.src_port);
    EXPECT_EQ(back->dst_port, r.dst_port);
    EXPECT_EQ(back->seq, r.seq);
    EXPECT_EQ(back->ack, r.has(tcpflag::kAck) ? r.ack : Seq(0));
    EXPECT_EQ(back->flags, r.flags);
    EXPECT_EQ(back->window, r.window);
    EXPECT_EQ(back->urgent, r.urgent);
    EXPECT_EQ(back->opts.mss, r.opts.mss);
    EXPECT_EQ(back->opts.wscale, r.opts.wscale);
    EXPECT_EQ(back->opts.sack_permitted, r.opts.sack_permitted);
    EXPECT_EQ(back->opts.ts, r.opts.ts);
    ASSERT_EQ(back->opts.sack_count, r.opts.sack_count);
    for (int i = 0; i < r.opts.sack_count; ++i) EXPECT_EQ(back->opts.sack[i], r.opts.sack[i]);
    ASSERT_EQ(back->payload.size(), payload.size());
    EXPECT_TRUE(std::equal(payload.begin(), payload.end(), back->payload.begin()));
  }
}

TEST(TcpEmit, AckFieldZeroWithoutAckFlag) {
  TcpRepr r;
  r.src_port = 1;
  r.dst_port = 2;
  r.flags = tcpflag::kRst;
  r.ack = Seq(0xdeadbeef);
  auto out = emit(r);
  EXPECT_EQ(load_be32(&out[8]), 0u);
}

TEST(TcpEmit, ChecksumCoversPayloadAndPseudoHeader) {
  auto out = emit(ack_with_sack(false, 0), {1, 2, 3});
  EXPECT_TRUE(parse(out));
  auto bad = out;
  bad.back() ^= 0x10;
  EXPECT_EQ(error_of(bad), WireError::BadChecksum);
  auto r = parse_tcp(out, kLo, Ipv4Addr::from_octets(127, 0, 0, 2));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), WireError::BadChecksum);
}

// ---- malformed -------------------------------------------------------------

TEST(TcpParse, TruncatedAtEveryLength) {
  for (const auto* seg : {&kLinuxSyn, &kLinuxData}) {
    size_t hl = size_t((*seg)[12] >> 4) * 4;
    for (size_t n = 0; n < seg->size(); ++n) {
      auto r = parse_tcp(Bytes(seg->data(), n), kLo, kLo, /*verify_checksum=*/false);
      if (n < hl) {
        ASSERT_FALSE(r) << n;
        EXPECT_EQ(r.error(), WireError::Truncated) << n;
      } else {
        // Cutting payload is only caught by the checksum.
        ASSERT_TRUE(r) << n;
        EXPECT_EQ(r->payload.size(), n - hl);
        EXPECT_FALSE(parse_tcp(Bytes(seg->data(), n), kLo, kLo, true)) << n;
      }
    }
  }
}

TEST(TcpParse, DataOffset) {
  for (uint8_t doff = 0; doff < 5; ++doff) {
    auto s = kLinuxSyn;
    s[12] = uint8_t(doff << 4);
    EXPECT_EQ(error_of(s, false), WireError::BadLength) << int(doff);
  }
  auto s = kLinuxSyn;
  s[12] = 0xb0;  // 44 bytes claimed, 40 present
  EXPECT_EQ(error_of(s, false), WireError::Truncated);
  s[12] = 0xf0;
  EXPECT_EQ(error_of(s, false), WireError::Truncated);
}

TEST(TcpParse, IllegalFlagCombinations) {
  EXPECT_EQ(error_of(segment({}, tcpflag::kSyn | tcpflag::kRst)), WireError::Malformed);
  EXPECT_EQ(error_of(segment({}, tcpflag::kSyn | tcpflag::kFin)), WireError::Malformed);
  EXPECT_EQ(error_of(segment({}, tcpflag::kSyn | tcpflag::kRst | tcpflag::kAck)), WireError::Malformed);
  EXPECT_TRUE(parse(segment({}, tcpflag::kRst | tcpflag::kAck)));
  EXPECT_TRUE(parse(segment({}, tcpflag::kFin | tcpflag::kAck)));
  EXPECT_TRUE(parse(segment({}, tcpflag::kSyn | tcpflag::kAck | tcpflag::kEce | tcpflag::kCwr)));
}

TEST(TcpParse, PortZeroParses) {
  // Linux's peer answers a SYN to port 0 with an RST from port 0; dropping it
  // would leave a connect() to port 0 hanging instead of ECONNREFUSED.
  auto s = segment({});
  store_be16(&s[0], 0);
  auto r = parse(s, false);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->src_port, 0);
  s = segment({});
  store_be16(&s[2], 0);
  r = parse(s, false);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->dst_port, 0);
}

TEST(TcpParse, MalformedOptions) {
  const std::vector<std::vector<uint8_t>> bad = {
      {2, 0, 0, 0},                                  // length 0
      {2, 1, 0, 0},                                  // length 1
      {99, 1, 0, 0},                                 // unknown kind, length 1
      {1, 1, 1, 99},                                 // kind in the last byte, no length byte
      {1, 1, 99, 3},                                 // unknown kind running past the end
      {2, 5, 0, 0},                                  // MSS running past the end
      {2, 3, 0, 1},                                  // MSS length 3
      {2, 6, 0, 0, 0, 0, 1, 1},                      // MSS length 6
      {3, 2, 1, 1},                                  // WS length 2
      {3, 4, 7, 0},                                  // WS length 4
      {4, 3, 0, 1},                                  // SACK-permitted length 3
      {8, 8, 0, 0, 0, 1, 0, 0, 0, 2},                // TS length 8
      {8, 12, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0},         // TS length 12
      {5, 2, 1, 1},                                  // SACK with no blocks
      {5, 9, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0},          // SACK 2+7
      {5, 11, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0},         // SACK 2+9
      {5, 18, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0},         // SACK 2+16 past the end
      {2, 4, 5, 0xb4, 8, 10, 0, 0, 0, 1, 0, 0},      // second option past the end
  };
  for (const auto& o : bad) {
    auto s = segment(o);
    EXPECT_EQ(error_of(s), WireError::BadOption) << ::testing::PrintToString(o);
  }
}

TEST(TcpParse, UnknownOptionsSkippedByLength) {
  // Kind 30 (MPTCP) of length 6, then MSS; kind 254 (experimental) of length 2.
  auto r = parse(segment({30, 6, 0xff, 0xff, 0xff, 0xff, 2, 4, 0x05, 0xb4, 254, 2}, tcpflag::kSyn));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->opts.mss, 1460);
}

TEST(TcpParse, EolEndsParsing) {
  // Garbage after EOL (here an invalid length-1 option) is padding and ignored.
  auto r = parse(segment({2, 4, 0x05, 0xb4, 0, 3, 1, 9}, tcpflag::kSyn));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->opts.mss, 1460);
  EXPECT_FALSE(r->opts.wscale);
}

TEST(TcpParse, FourSackBlocks) {
  std::vector<uint8_t> o = {1, 1, 5, 34};
  for (uint32_t i = 0; i < 8; ++i) {
    uint8_t e[4];
    store_be32(e, 0xfffffff0u + i * 0x10);
    o.insert(o.end(), e, e + 4);
  }
  auto r = parse(segment(o));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->opts.sack_count, 4);
  EXPECT_EQ(r->opts.sack[0], (SackBlock{Seq(0xfffffff0u), Seq(0x0)}));
  EXPECT_EQ(r->opts.sack[3], (SackBlock{Seq(0x50), Seq(0x60)}));
}

TEST(TcpParse, WscaleKeptAsReceived) {
  // RFC 7323 2.3: values above 14 are clamped by the connection, not the parser.
  auto r = parse(segment({1, 3, 3, 200}, tcpflag::kSyn));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->opts.wscale, 200);
}

TEST(TcpParse, MaximalOptionSpace) {
  // 40 bytes of options: TS + 3 SACK blocks exactly fills the header.
  auto r = parse(emit(ack_with_sack(true, 3)));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->opts.sack_count, 3);
  ASSERT_TRUE(r->opts.ts);
}

TEST(WireError, ToStringDistinct) {
  const WireError all[] = {WireError::Truncated, WireError::BadLength,  WireError::BadVersion,
                           WireError::BadChecksum, WireError::BadOption, WireError::Malformed,
                           WireError::Unsupported};
  for (auto a : all) {
    EXPECT_STRNE(to_string(a), "unknown");
    for (auto b : all) {
      if (a != b) {
        EXPECT_STRNE(to_string(a), to_string(b));
      }
    }
  }
  EXPECT_STREQ(to_string(WireError::BadChecksum), "bad checksum");
}

}  // namespace
}  // namespace xs
