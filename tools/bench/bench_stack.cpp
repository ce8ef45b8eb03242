// Protocol-core benchmarks (issue: >= 3 M MSS-sized segments/s through
// receive+ACK processing on one core, 0 allocations per segment).
//
// BM_TcpReceiveAck: a synthesised peer feeds in-order 1448-byte data
// segments (full Ethernet frames, checksums valid) into one Stack; the stack
// verifies them, queues the data, ACKs every second segment into a null
// device, and the application reads the data. Only the receiving stack and
// the application copy are timed: the sender side is a pre-built frame whose
// sequence number and checksum are patched incrementally (RFC 1624).
//
// BM_TcpBulkTwoStacks: two complete stacks on one core joined by a
// zero-delay in-memory wire; A sends, B receives and reads.
#include <benchmark/benchmark.h>

#include <cstring>
#include <vector>

#include "stack/stack.hpp"
#include "stack/tcp/tcp_socket.hpp"
#include "stack/wire/checksum.hpp"
#include "stack/wire/ethernet.hpp"
#include "stack/wire/ipv4.hpp"
#include "stack/wire/tcp.hpp"
#include "tools/bench/alloc_counter.hpp"

namespace xs::bench {
namespace {

constexpr Ipv4Addr kA = Ipv4Addr::from_octets(198, 18, 0, 1);
constexpr Ipv4Addr kB = Ipv4Addr::from_octets(198, 18, 0, 2);
constexpr MacAddr kMacA{{0x02, 0, 0, 0, 0, 1}};
constexpr MacAddr kMacB{{0x02, 0, 0, 0, 0, 2}};
constexpr size_t kMss = 1448;

// A device that accepts every frame and keeps the last one.
class NullSink final : public FrameSink {
 public:
  MutBytes tx_acquire() override { return MutBytes(buf_.data(), buf_.size()); }
  void tx_commit(size_t len) override { last_len = len; ++frames; }
  size_t max_frame_len() const override { return 1514; }
  Bytes last() const { return Bytes(buf_.data(), last_len); }
  uint64_t frames = 0;
  size_t last_len = 0;

 private:
  std::array<uint8_t, 2048> buf_{};
};

StackConfig config(MacAddr mac, Ipv4Addr ip) {
  StackConfig c;
  c.mac = mac;
  c.addr = Ipv4Cidr{ip, 24};
  return c;
}

// Builds a frame from A to B carrying `tcp` and `payload_len` payload bytes.
size_t build_frame(uint8_t* out, const TcpRepr& tcp, size_t payload_len) {
  size_t thl = kTcpMinHeaderLen + tcp_options_len(tcp.opts);
  emit_ethernet({kMacB, kMacA, ethertype::kIpv4}, MutBytes(out, kEthHeaderLen));
  Ipv4Repr ip;
  ip.src = kA;
  ip.dst = kB;
  ip.protocol = ipproto::kTcp;
  ip.dont_frag = true;
  ip.payload_len = static_cast<uint16_t>(thl + payload_len);
  emit_ipv4(ip, MutBytes(out + kEthHeaderLen, kIpv4MinHeaderLen));
  emit_tcp(tcp, kA, kB, MutBytes(out + kEthHeaderLen + kIpv4MinHeaderLen, thl + payload_len), payload_len);
  return kEthHeaderLen + kIpv4MinHeaderLen + thl + payload_len;
}

void BM_TcpReceiveAck(benchmark::State& state) {
  SeededRandom rng(1);
  NullSink sink;
  Stack b(config(kMacB, kB), rng, sink);
  (void)b.arp().insert_static(kA, kMacA);
  TcpSocket* l = b.tcp().open();
  (void)l->bind({Ipv4Addr::any(), 5001});
  (void)l->listen(8);
  Instant now{1000000};

  std::vector<uint8_t> frame(2048);
  TcpRepr syn;
  syn.src_port = 40000;
  syn.dst_port = 5001;
  syn.seq = Seq(100);
  syn.flags = tcpflag::kSyn;
  syn.window = 65535;
  syn.opts.mss = 1460;
  syn.opts.wscale = 7;
  syn.opts.sack_permitted = true;
  syn.opts.ts = TcpTimestamps{1, 0};
  b.receive_frame(now, Bytes(frame.data(), build_frame(frame.data(), syn, 0)));
  auto synack_ip = parse_ipv4(sink.last().subspan(kEthHeaderLen));
  auto synack = parse_tcp(synack_ip->payload, kB, kA);
  if (!synack || !synack->has(tcpflag::kSyn)) {
    state.SkipWithError("no SYN-ACK");
    return;
  }
  TcpRepr ack;
  ack.src_port = 40000;
  ack.dst_port = 5001;
  ack.seq = Seq(101);
  ack.ack = synack->seq + 1;
  ack.flags = tcpflag::kAck;
  ack.window = 65535;
  ack.opts.ts = TcpTimestamps{2, synack->opts.ts ? synack->opts.ts->val : 0};
  b.receive_frame(now, Bytes(frame.data(), build_frame(frame.data(), ack, 0)));
  auto accepted = l->accept(now);
  if (!accepted) {
    state.SkipWithError("not accepted");
    return;
  }
  TcpSocket* s = *accepted;

  // The data frame template: payload 1448 bytes, timestamps (as Linux sends).
  TcpRepr data = ack;
  data.flags = tcpflag::kAck;
  size_t hdr = kEthHeaderLen + kIpv4MinHeaderLen;
  size_t thl = kTcpMinHeaderLen + tcp_options_len(data.opts);
  for (size_t k = 0; k < kMss; ++k) frame[hdr + thl + k] = static_cast<uint8_t>(k * 7);
  const size_t flen = build_frame(frame.data(), data, kMss);
  uint8_t* tcp = frame.data() + hdr;
  uint32_t seq = 101;
  std::vector<uint8_t> app(64 * 1024);

  auto feed16 = [&] {
    for (int k = 0; k < 16; ++k) {
      b.receive_frame(now, Bytes(frame.data(), flen));
      // Next segment: patch the sequence number and the checksum (RFC 1624).
      uint32_t next = seq + kMss;
      uint16_t csum = load_be16(tcp + 16);
      store_be32(tcp + 4, next);
      store_be16(tcp + 16, csum_update32(csum, seq, next));
      seq = next;
    }
    while (true) {
      auto r = s->recv(now, MutBytes(app.data(), app.size()));
      if (!r || *r == 0) break;
      benchmark::DoNotOptimize(app.data());
    }
    now += micros(10);
    b.poll(now);
  };
  // Warm-up: buffers reach their working size before anything is counted.
  for (int i = 0; i < 256; ++i) feed16();
  uint64_t segs = 0;
  const uint64_t allocs0 = g_allocations;
  const uint64_t acks0 = sink.frames;
  for (auto _ : state) {
    feed16();
    segs += 16;
  }
  const uint64_t allocs = g_allocations - allocs0;  // before counters[] allocates
  state.counters["segments/s"] = benchmark::Counter(double(segs), benchmark::Counter::kIsRate);
  state.counters["bytes/s"] = benchmark::Counter(double(segs * kMss), benchmark::Counter::kIsRate);
  state.counters["allocs/segment"] = double(allocs) / double(segs ? segs : 1);
  state.counters["acks/segment"] = double(sink.frames - acks0) / double(segs ? segs : 1);
  if (b.counters().tcp_in_csum_errors || s->bytes_readable()) state.SkipWithError("segments rejected");
}
BENCHMARK(BM_TcpReceiveAck)->MinTime(2.0);

// A zero-delay wire between two stacks: frames are queued and delivered in order.
class Wire final : public FrameSink {
 public:
  MutBytes tx_acquire() override {
    if (free_.empty()) return {};
    cur_ = free_.back();
    return MutBytes(pool_[cur_].data(), pool_[cur_].size());
  }
  void tx_commit(size_t len) override {
    free_.pop_back();
    q_[(qh_ + qn_++) % q_.size()] = {cur_, len};
  }
  size_t max_frame_len() const override { return 1514; }
  Wire() : pool_(4096), q_(4096) {
    for (auto& p : pool_) p.resize(1514);
    free_.reserve(pool_.size());
    for (uint32_t i = 0; i < pool_.size(); ++i) free_.push_back(i);
  }
  // Delivers everything queued to `to`.
  size_t drain(Stack& to, Instant now) {
    size_t n = 0;
    while (qn_ > 0) {
      auto [i, len] = q_[qh_];
      qh_ = (qh_ + 1) % q_.size();
      --qn_;
      to.receive_frame(now, Bytes(pool_[i].data(), len));
      free_.push_back(i);
      ++n;
    }
    return n;
  }

 private:
  std::vector<std::vector<uint8_t>> pool_;
  std::vector<uint32_t> free_;
  std::vector<std::pair<uint32_t, size_t>> q_;  // ring: no allocation per frame
  size_t qh_ = 0, qn_ = 0;
  uint32_t cur_ = 0;
};

// Two stacks joined by a Wire each way, with a connection from A (c) to a
// listener on B, accepted (s); null `s` if the handshake failed.
struct TwoStacks {
  SeededRandom ra{1}, rb{2};
  Wire to_b, to_a;
  Stack a{config(kMacA, kA), ra, to_b};
  Stack b{config(kMacB, kB), rb, to_a};
  Instant now{1000000};
  TcpSocket* c = nullptr;
  TcpSocket* s = nullptr;
  TwoStacks() {
    (void)a.arp().insert_static(kB, kMacB);
    (void)b.arp().insert_static(kA, kMacA);
    TcpSocket* l = b.tcp().open();
    (void)l->bind({Ipv4Addr::any(), 5001});
    (void)l->listen(8);
    c = a.tcp().open();
    (void)c->connect(now, {kB, 5001});
    for (int i = 0; i < 4; ++i) {
      to_b.drain(b, now);
      to_a.drain(a, now);
    }
    if (auto acc = l->accept(now)) s = *acc;
  }
};

void BM_TcpBulkTwoStacks(benchmark::State& state) {
  TwoStacks t;
  if (t.s == nullptr) {
    state.SkipWithError("not accepted");
    return;
  }
  Stack &a = t.a, &b = t.b;
  Wire &to_a = t.to_a, &to_b = t.to_b;
  Instant& now = t.now;
  TcpSocket *c = t.c, *s = t.s;
  std::vector<uint8_t> out(256 * 1024, 0x5a), in(256 * 1024);
  uint64_t segs = 0, bytes = 0;
  auto round = [&] {
    (void)c->send(now, Bytes(out.data(), out.size()));
    segs += to_b.drain(b, now);
    for (;;) {
      auto r = s->recv(now, MutBytes(in.data(), in.size()));
      if (!r || *r == 0) break;
      bytes += *r;
    }
    to_a.drain(a, now);
    now += micros(20);
    a.poll(now);
    b.poll(now);
  };
  for (int i = 0; i < 200; ++i) round();
  segs = bytes = 0;
  const uint64_t allocs0 = g_allocations;
  for (auto _ : state) round();
  const uint64_t allocs = g_allocations - allocs0;  // before counters[] allocates
  state.counters["segments/s"] = benchmark::Counter(double(segs), benchmark::Counter::kIsRate);
  state.counters["bytes/s"] = benchmark::Counter(double(bytes), benchmark::Counter::kIsRate);
  state.counters["allocs/segment"] = double(allocs) / double(segs ? segs : 1);
}
BENCHMARK(BM_TcpBulkTwoStacks)->MinTime(2.0);

// BM_TcpPingPong64: the protocol's share of a request/response round trip.
// 64 bytes A -> B, B reads them and answers 64 bytes, A reads: two segments,
// each through one stack's output and the other's input, and four socket
// calls. Time per round trip, for comparison with the raw AF_XDP floor.
void BM_TcpPingPong64(benchmark::State& state) {
  TwoStacks t;
  if (t.s == nullptr) {
    state.SkipWithError("not accepted");
    return;
  }
  Stack &a = t.a, &b = t.b;
  Wire &to_a = t.to_a, &to_b = t.to_b;
  Instant& now = t.now;
  TcpSocket *c = t.c, *s = t.s;
  uint8_t msg[64], buf[64];
  memset(msg, 0x5a, sizeof msg);
  uint64_t trips = 0;
  bool ok = true;
  auto round = [&] {
    (void)c->send(now, Bytes(msg, sizeof msg));
    to_b.drain(b, now);
    auto r = s->recv(now, MutBytes(buf, sizeof buf));
    (void)s->send(now, Bytes(buf, sizeof buf));
    to_a.drain(a, now);
    auto r2 = c->recv(now, MutBytes(buf, sizeof buf));
    ok = ok && r && *r == 64 && r2 && *r2 == 64;
    now += micros(3);
    ++trips;
  };
  for (int i = 0; i < 1000; ++i) round();
  const uint64_t allocs0 = g_allocations;
  trips = 0;
  for (auto _ : state) round();
  const uint64_t allocs = g_allocations - allocs0;
  if (!ok) state.SkipWithError("a round trip lost data");
  state.counters["allocs/trip"] = double(allocs) / double(trips ? trips : 1);
}
BENCHMARK(BM_TcpPingPong64)->MinTime(2.0);

}  // namespace
}  // namespace xs::bench

BENCHMARK_MAIN();
