// The capture ring (socketapi/capture_ring.hpp) and the handshake with an
// engine (capture_client.hpp): records survive wrap-around intact, a full ring
// drops and counts, the engine attaches on request, detaches on withdrawal
// and drops a reader that stopped polling. Also the pcap writer.
#include <gtest/gtest.h>

#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <functional>
#include <vector>

#include "tests/support/scoped_env.hpp"
#include "socketapi/capture_client.hpp"
#include "socketapi/engine.hpp"
#include "socketapi/internal_api.hpp"
#include "socketapi/memory_device.hpp"
#include "tools/observe/pcap_writer.hpp"

namespace xs {
namespace {

using namespace capture;

struct Ring {
  explicit Ring(uint64_t size, uint32_t snaplen = kMaxSnaplen) : mem(segment_size(size) / 8) {
    h = init(mem.data(), size, snaplen, 0);
    data = reinterpret_cast<uint8_t*>(h) + h->data_offset;
  }
  std::vector<uint64_t> mem;
  CaptureHeader* h;
  uint8_t* data;
};

std::vector<uint8_t> frame(size_t len, uint8_t seed) {
  std::vector<uint8_t> f(len);
  for (size_t i = 0; i < len; ++i) f[i] = static_cast<uint8_t>(seed + i * 7);
  return f;
}

TEST(CaptureRing, RecordsSurviveWrapAroundInOrder) {
  Ring r(4096);
  ASSERT_TRUE(valid(*r.h, r.mem.size() * 8));
  Writer w(*r.h, r.data);
  // Odd sizes so records land at every offset and wrap many times.
  uint8_t next_write = 0, next_read = 0;
  long total = 0;
  for (int round = 0; round < 200; ++round) {
    for (int i = 0; i < 3; ++i, ++next_write) {
      auto f = frame(60 + (next_write * 37) % 900, next_write);
      w.write(f, next_write % 2 ? Dir::Tx : Dir::Rx, 1000 + next_write);
    }
    long n = drain(*r.h, r.data, [&](const Record& rec) {
      auto want = frame(60 + (next_read * 37) % 900, next_read);
      ASSERT_EQ(rec.bytes.size(), want.size());
      ASSERT_EQ(std::memcmp(rec.bytes.data(), want.data(), want.size()), 0);
      ASSERT_EQ(rec.hdr.origlen, want.size());
      ASSERT_EQ(rec.hdr.dir, next_read % 2 ? 1 : 0);
      ASSERT_EQ(rec.hdr.ts_ns, 1000 + next_read);
      ++next_read;
    });
    ASSERT_EQ(n, 3);
    total += n;
  }
  EXPECT_EQ(total, 600);
  EXPECT_EQ(r.h->drops.load(), 0u);
  EXPECT_GT(r.h->head.load(), 10 * 4096u);  // wrapped many times
}

TEST(CaptureRing, FullRingDropsNewFramesAndCountsThem) {
  Ring r(4096);
  Writer w(*r.h, r.data);
  auto f = frame(1100, 1);  // 24 + 1104 bytes a record: three fit in 4096
  for (int i = 0; i < 10; ++i) w.write(f, Dir::Rx, i);
  EXPECT_EQ(r.h->frames.load(), 3u);
  EXPECT_EQ(r.h->drops.load(), 7u);
  std::vector<int64_t> ts;
  EXPECT_EQ(drain(*r.h, r.data, [&](const Record& rec) { ts.push_back(rec.hdr.ts_ns); }), 3);
  EXPECT_EQ(ts, (std::vector<int64_t>{0, 1, 2}));  // the oldest kept, the newest dropped
  w.write(f, Dir::Rx, 99);  // room again, after a wrap marker
  EXPECT_EQ(r.h->frames.load(), 4u);
  EXPECT_EQ(r.h->drops.load(), 7u);
  ts.clear();
  EXPECT_EQ(drain(*r.h, r.data, [&](const Record& rec) { ts.push_back(rec.hdr.ts_ns); }), 1);
  EXPECT_EQ(ts, (std::vector<int64_t>{99}));
}

TEST(CaptureRing, SnaplenTruncatesButKeepsOriginalLength) {
  Ring r(8192, 64);
  Writer w(*r.h, r.data);
  w.write(frame(1500, 3), Dir::Tx, 5);
  int seen = 0;
  drain(*r.h, r.data, [&](const Record& rec) {
    EXPECT_EQ(rec.bytes.size(), 64u);
    EXPECT_EQ(rec.hdr.origlen, 1500u);
    ++seen;
  });
  EXPECT_EQ(seen, 1);
}

TEST(CaptureRing, CorruptHeadIsDetectedNotFollowed) {
  Ring r(4096);
  r.h->head.store(1 << 20);  // claims more than the ring holds
  EXPECT_EQ(drain(*r.h, r.data, [](const Record&) {}), -1);
  Ring bad(4096);
  bad.h->ring_size = 3000;  // not a power of two
  EXPECT_FALSE(valid(*bad.h, bad.mem.size() * 8));
}

TEST(PcapWriter, WritesAHeaderAndRecordsLibpcapReads) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  pcap::Writer w(f, 2048, true);
  auto a = frame(60, 1);
  ASSERT_TRUE(w.write(int64_t(1700000000) * 1000000000 + 123456789, a, 60));
  ASSERT_TRUE(w.write(int64_t(1700000001) * 1000000000 + 5, std::span<const uint8_t>(a.data(), 20), 1514));
  std::fflush(f);
  std::vector<uint8_t> bytes(24 + 2 * 16 + 60 + 20);
  std::rewind(f);
  ASSERT_EQ(std::fread(bytes.data(), 1, bytes.size(), f), bytes.size());
  EXPECT_EQ(std::fgetc(f), EOF);
  std::fclose(f);
  pcap::FileHeader fh;
  std::memcpy(&fh, bytes.data(), sizeof fh);
  EXPECT_EQ(fh.magic, pcap::kMagicNanos);
  EXPECT_EQ(fh.version_major, 2);
  EXPECT_EQ(fh.version_minor, 4);
  EXPECT_EQ(fh.snaplen, 2048u);
  EXPECT_EQ(fh.linktype, 1u);
  pcap::RecordHeader r1, r2;
  std::memcpy(&r1, bytes.data() + 24, sizeof r1);
  EXPECT_EQ(r1.ts_sec, 1700000000u);
  EXPECT_EQ(r1.ts_frac, 123456789u);
  EXPECT_EQ(r1.caplen, 60u);
  EXPECT_EQ(r1.origlen, 60u);
  EXPECT_EQ(std::memcmp(bytes.data() + 40, a.data(), 60), 0);
  std::memcpy(&r2, bytes.data() + 100, sizeof r2);
  EXPECT_EQ(r2.ts_sec, 1700000001u);
  EXPECT_EQ(r2.caplen, 20u);
  EXPECT_EQ(r2.origlen, 1514u);

  std::FILE* g = std::tmpfile();
  pcap::Writer wu(g, 100, false);
  wu.write(int64_t(5) * 1000000000 + 123456789, a, 60);
  std::fflush(g);
  std::rewind(g);
  ASSERT_EQ(std::fread(&fh, sizeof fh, 1, g), 1u);
  EXPECT_EQ(fh.magic, pcap::kMagicMicros);
  ASSERT_EQ(std::fread(&r1, sizeof r1, 1, g), 1u);
  EXPECT_EQ(r1.ts_frac, 123456u);
  std::fclose(g);
}

// ---- against a running engine ------------------------------------------------

constexpr Ipv4Addr kA = Ipv4Addr::from_octets(198, 18, 0, 1);
constexpr Ipv4Addr kB = Ipv4Addr::from_octets(198, 18, 0, 2);

struct Pair {
  // Engines publish stats as the environment says; these tests need them on whatever
  // environment runs the test binary (XSTACK_STATS=0 must not make them fail or skip).
  ScopedUnsetEnv stats_env{"XSTACK_STATS"};
  Pair() {
    auto [da, db] = make_memory_device_pair(MacAddr{{2, 0, 0, 0, 0, 1}}, MacAddr{{2, 0, 0, 0, 0, 2}});
    EngineConfig ca;
    ca.addr = {kA, 24};
    ca.stats.period = millis(10);
    EngineConfig cb = ca;
    cb.addr = {kB, 24};
    a = std::make_unique<Engine>(ca, std::move(da));
    b = std::make_unique<Engine>(cb, std::move(db));
    a->start();
    b->start();
  }
  std::unique_ptr<Engine> a, b;
};

// Counts records by direction and checks each is an IPv4/TCP frame to or from the peer.
struct Tally {
  int rx = 0, tx = 0, syn = 0;
  void operator()(const Record& r) {
    (r.hdr.dir == uint8_t(Dir::Tx) ? tx : rx)++;
    if (r.bytes.size() >= 54 && r.bytes[12] == 0x08 && r.bytes[13] == 0x00 && r.bytes[23] == 6 &&
        (r.bytes[47] & 0x02)) {
      ++syn;
    }
  }
};

bool wait_until(const std::function<bool()>& f) {
  for (int i = 0; i < 300; ++i) {
    if (f()) return true;
    usleep(10000);
  }
  return false;
}

TEST(CaptureEngine, AttachCaptureBothDirectionsAndDetach) {
  Pair p;
  auto m = stats::Mapping::open(p.a->stats_name());
  ASSERT_TRUE(m.has_value()) << m.error();
  auto c = Client::start(*m, 1 << 20, 2048);
  ASSERT_TRUE(c.has_value()) << c.error();
  // A second reader of the same engine is refused while we live.
  auto c2 = Client::start(*m, 1 << 16, 2048);
  EXPECT_FALSE(c2.has_value());

  auto l = internal::tcp_listen(*p.b, 7000, 4);
  ASSERT_TRUE(l.has_value());
  // The engine attaches at its next poll; the connection makes one happen.
  auto conn = internal::tcp_connect(*p.a, {kB, 7000}, seconds(5));
  ASSERT_TRUE(conn.has_value());
  ASSERT_TRUE(wait_until([&] { return c->attached(); }));
  Tally t;
  ASSERT_TRUE(internal::tcp_send_all(*p.a, *conn, Bytes(reinterpret_cast<const uint8_t*>("ping"), 4), seconds(5)));
  ASSERT_TRUE(wait_until([&] {
    c->poll(std::ref(t));
    return t.tx >= 1 && t.rx >= 1;
  }));
  EXPECT_EQ(c->drops(), 0u);

  // Withdrawn: the engine stops writing; the segment is removed.
  std::string cap = "/dev/shm/" + p.a->stats_name() + "-cap";
  EXPECT_EQ(access(cap.c_str(), F_OK), 0);
  c->withdraw(1000);
  EXPECT_FALSE(c->attached());
  uint64_t frames = c->frames();
  (void)internal::tcp_send_all(*p.a, *conn, Bytes(reinterpret_cast<const uint8_t*>("pong"), 4), seconds(5));
  usleep(50000);
  EXPECT_EQ(c->frames(), frames);
  c->stop();
  EXPECT_EQ(access(cap.c_str(), F_OK), -1);
}

TEST(CaptureEngine, CapturesTheHandshakeWhenAttachedWhileIdle) {
  Pair p;
  usleep(100000);  // both engines idle, asleep in epoll
  auto m = stats::Mapping::open(p.b->stats_name());
  ASSERT_TRUE(m.has_value());
  auto c = Client::start(*m, 1 << 20, 128);
  ASSERT_TRUE(c.has_value());
  auto l = internal::tcp_listen(*p.b, 7000, 4);
  ASSERT_TRUE(l.has_value());
  auto conn = internal::tcp_connect(*p.a, {kB, 7000}, seconds(5));
  ASSERT_TRUE(conn.has_value());
  Tally t;
  // b's first RX poll after the request attaches before taking the SYN.
  ASSERT_TRUE(wait_until([&] {
    c->poll(std::ref(t));
    return t.syn >= 2;  // the SYN in, the SYN-ACK out
  }));
  EXPECT_GE(t.rx, 2);
  EXPECT_GE(t.tx, 1);
}

TEST(CaptureEngine, ReaderThatStopsPollingIsDetachedAndItsSegmentRemoved) {
  Pair p;
  auto m = stats::Mapping::open(p.a->stats_name());
  ASSERT_TRUE(m.has_value());
  std::string cap = "/dev/shm/" + p.a->stats_name() + "-cap";
  {
    auto c = Client::start(*m, 1 << 16, 2048);
    ASSERT_TRUE(c.has_value());
    ASSERT_TRUE(internal::tcp_listen(*p.b, 7000, 4).has_value());
    auto conn = internal::tcp_connect(*p.a, {kB, 7000}, seconds(5));
    ASSERT_TRUE(conn.has_value());
    ASSERT_TRUE(wait_until([&] { return c->attached(); }));
    // Simulate a killed reader: no heartbeat from now on. The attached
    // engine keeps checking every period even while idle.
    ASSERT_TRUE(wait_until([&] { return m->header().capture_attached.load() == 0; }));
    EXPECT_EQ(m->header().capture_request.load(), 0u);
    EXPECT_EQ(access(cap.c_str(), F_OK), -1);
    // Our object must not unlink anything now; its stop() is harmless.
  }
}

}  // namespace
}  // namespace xs
