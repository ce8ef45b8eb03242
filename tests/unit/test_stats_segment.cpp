// The stats segment (socketapi/stats_segment.hpp): the seqlock between a
// writer and a reader thread, decoding of row sizes other than ours, and an
// engine pair publishing its sockets and counters into /dev/shm.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

#include "tests/support/scoped_env.hpp"
#include "socketapi/engine.hpp"
#include "socketapi/internal_api.hpp"
#include "socketapi/memory_device.hpp"
#include "socketapi/stats_reader.hpp"

namespace xs {
namespace {

using namespace stats;

struct Segment {
  Segment(uint32_t sockets, uint32_t counters) : mem(segment_size(sockets, counters) / 8 + 8) {
    h = init_segment(mem.data(), sockets, counters);
    std::atomic_ref<uint64_t>(h->magic).store(kMagic);
  }
  SocketRow* rows() { return reinterpret_cast<SocketRow*>(reinterpret_cast<uint8_t*>(h) + h->sockets_offset); }
  size_t size() const { return h->total_size; }
  std::vector<uint64_t> mem;  // 8-aligned backing store
  Header* h;
};

TEST(StatsSegment, ReaderNeverSeesATornSnapshot) {
  Segment s(64, 4);
  std::atomic<bool> done{false};
  // Every snapshot the writer makes has all rows equal to its generation and
  // socket_rows = generation % 64: a torn read would mix two generations.
  std::thread writer([&] {
    for (uint32_t g = 1; g < 20000; ++g) {
      write_begin(*s.h);
      for (uint32_t i = 0; i < 64; ++i) s.rows()[i].snd_queue = g, s.rows()[i].rcv_queue = g;
      s.h->socket_rows = g % 64;
      s.h->publish_count = g;
      write_end(*s.h);
    }
    done = true;
  });
  int checked = 0;
  while (!done || checked == 0) {
    auto snap = read_snapshot(*s.h, s.size());
    if (!snap) continue;  // kept changing: allowed, just retry
    uint64_t g = snap->publish_count;
    ASSERT_EQ(snap->sockets.size(), g % 64);
    for (const SocketRow& r : snap->sockets) {
      ASSERT_EQ(r.snd_queue, g);
      ASSERT_EQ(r.rcv_queue, g);
    }
    ++checked;
  }
  writer.join();
  EXPECT_GT(checked, 0);
  EXPECT_EQ(s.h->seq.load() % 2, 0u);
}

bool shm_exists(const std::string& name) {
  int fd = shm_open(("/" + name).c_str(), O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) return false;
  close(fd);
  return true;
}

int make_shm(const std::string& name) {
  int fd = shm_open(("/" + name).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd >= 0) {
    EXPECT_EQ(ftruncate(fd, 4096), 0);
  }
  return fd;
}

// Segments of processes killed without unlinking are swept, with their
// capture segments; one whose lock is still held (a live process in another
// pid namespace) stays. Pids above pid_max (4194304 at most) never exist.
TEST(StatsSegment, StaleSegmentsOfDeadProcessesAreRemoved) {
  const std::string dead = "xstack-4194401", dead_cap = dead + "-cap", held = "xstack-4194402";
  int a = make_shm(dead), b = make_shm(dead_cap), c = make_shm(held);
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  ASSERT_GE(c, 0);
  close(a);
  close(b);
  ASSERT_EQ(flock(c, LOCK_SH), 0);
  EXPECT_GE(remove_stale_segments(), 1u);
  EXPECT_FALSE(shm_exists(dead));
  EXPECT_FALSE(shm_exists(dead_cap));
  EXPECT_TRUE(shm_exists(held)) << "a segment whose lock is held was removed";
  close(c);
  EXPECT_GE(remove_stale_segments(), 1u);  // nothing holds it now
  EXPECT_FALSE(shm_exists(held));
  shm_unlink(("/" + held).c_str());
}

TEST(StatsSegment, RejectsBadMagicVersionAndSizes) {
  Segment s(4, 4);
  EXPECT_TRUE(read_snapshot(*s.h, s.size()).has_value());
  EXPECT_FALSE(read_snapshot(*s.h, s.size() - 1).has_value());  // rows past the mapping
  s.h->version = kVersion + 1;
  EXPECT_FALSE(read_snapshot(*s.h, s.size()).has_value());
  s.h->version = kVersion;
  std::atomic_ref<uint64_t>(s.h->magic).store(0);
  EXPECT_FALSE(read_snapshot(*s.h, s.size()).has_value());
}

TEST(StatsSegment, ShorterRowsFromAnOlderWriterReadAsZeroTail) {
  // An older engine with 16-byte rows: the reader takes what is there and
  // leaves the rest zero.
  std::vector<uint64_t> mem(1024);
  Header* h = init_segment(mem.data(), 0, 0);
  h->socket_row_size = 16;
  h->socket_capacity = 2;
  h->counters_offset = h->sockets_offset + 32;
  h->total_size = h->counters_offset;
  auto* base = reinterpret_cast<uint8_t*>(h) + h->sockets_offset;
  SocketRow r;
  r.proto = kProtoTcp;
  r.state = 1;
  r.local_port = 80;
  std::memcpy(base, &r, 16);
  std::memcpy(base + 16, &r, 16);
  h->socket_rows = 2;
  std::atomic_ref<uint64_t>(h->magic).store(kMagic);
  auto snap = read_snapshot(*h, mem.size() * 8);
  ASSERT_TRUE(snap.has_value()) << snap.error();
  ASSERT_EQ(snap->sockets.size(), 2u);
  EXPECT_EQ(snap->sockets[1].local_port, 80);
  EXPECT_EQ(snap->sockets[1].cwnd, 0u);
}

constexpr Ipv4Addr kA = Ipv4Addr::from_octets(198, 18, 0, 1);
constexpr Ipv4Addr kB = Ipv4Addr::from_octets(198, 18, 0, 2);

struct Pair {
  // Engines publish stats as the environment says; these tests need them on whatever
  // environment runs the test binary (XSTACK_STATS=0 must not make them fail or skip).
  ScopedUnsetEnv stats_env{"XSTACK_STATS"};
  explicit Pair(uint32_t capacity = 4096, PollMode mode = PollMode::Interrupt) {
    auto [da, db] = make_memory_device_pair(MacAddr{{2, 0, 0, 0, 0, 1}}, MacAddr{{2, 0, 0, 0, 0, 2}});
    EngineConfig ca;
    ca.addr = {kA, 24};
    ca.stats.period = millis(10);
    ca.stats.socket_capacity = capacity;
    ca.poll_mode = mode;
    EngineConfig cb = ca;
    cb.addr = {kB, 24};
    a = std::make_unique<Engine>(ca, std::move(da));
    b = std::make_unique<Engine>(cb, std::move(db));
    a->start();
    b->start();
  }
  std::unique_ptr<Engine> a, b;
};

// Waits until the segment of `e` shows a snapshot satisfying pred.
template <class P>
Expected<Snapshot, std::string> wait_snapshot(Engine& e, P pred) {
  auto m = Mapping::open(e.stats_name());
  if (!m) return unexpected(m.error());
  Expected<Snapshot, std::string> s = unexpected(std::string("timeout"));
  for (int i = 0; i < 300; ++i) {
    s = read_snapshot(*m);
    if (s && pred(*s)) return s;
    usleep(10000);
  }
  return s;
}

uint64_t counter(const Snapshot& s, const std::string& name) {
  for (const auto& [n, v] : s.counters) {
    if (n == name) return v;
  }
  return ~uint64_t(0);
}

TEST(StatsSegment, EnginePublishesConnectionsListenersAndCounters) {
  Pair p;
  ASSERT_FALSE(p.a->stats_name().empty());
  ASSERT_NE(p.a->stats_name(), p.b->stats_name());
  auto l = internal::tcp_listen(*p.b, 7000, 16);
  ASSERT_TRUE(l.has_value());
  auto c = internal::tcp_connect(*p.a, {kB, 7000}, seconds(5));
  ASSERT_TRUE(c.has_value());
  ASSERT_TRUE(internal::tcp_send_all(*p.a, *c, Bytes(reinterpret_cast<const uint8_t*>("hello"), 5), seconds(5)));
  auto u = internal::udp_bind(*p.a, 5353);
  ASSERT_TRUE(u.has_value());

  // b: the listener with one connection waiting to be accepted (5 bytes
  // queued on it); a: the connection and the UDP socket.
  auto sb = wait_snapshot(*p.b, [](const Snapshot& s) {
    for (const SocketRow& r : s.sockets) {
      if (r.state == 1 && r.rcv_queue == 5) return true;
    }
    return false;
  });
  ASSERT_TRUE(sb.has_value()) << sb.error();
  bool listener = false, child = false;
  for (const SocketRow& r : sb->sockets) {
    if (r.state == 10) {
      listener = true;
      EXPECT_EQ(r.local_port, 7000);
      EXPECT_EQ(r.rcv_queue, 1u);   // accept queue
      EXPECT_EQ(r.snd_queue, 16u);  // backlog
    } else if (r.state == 1) {
      child = true;
      EXPECT_EQ(r.local_addr, kB.v);
      EXPECT_EQ(r.remote_addr, kA.v);
      EXPECT_EQ(r.local_port, 7000);
      EXPECT_EQ(r.bytes_received, 5u);
      EXPECT_GT(r.snd_mss, 0u);
      EXPECT_GT(r.rto_us, 0u);
    }
  }
  EXPECT_TRUE(listener);
  EXPECT_TRUE(child);
  EXPECT_EQ(sb->pid, uint32_t(getpid()));
  EXPECT_GE(counter(*sb, "tcp_in_segs"), 3u);
  EXPECT_EQ(counter(*sb, "tcp_passive_opens"), 1u);
  EXPECT_GE(counter(*sb, "dev_rx_frames"), 3u);

  auto sa = wait_snapshot(*p.a, [](const Snapshot& s) {
    for (const SocketRow& r : s.sockets) {
      if (r.proto == kProtoTcp && r.state == 1 && r.bytes_acked >= 5) return s.sockets.size() == 2;
    }
    return false;
  });
  ASSERT_TRUE(sa.has_value()) << sa.error();
  bool udp = false;
  for (const SocketRow& r : sa->sockets) {
    if (r.proto == kProtoUdp) {
      udp = true;
      EXPECT_EQ(r.local_port, 5353);
      EXPECT_STREQ(state_name(r.proto, r.state), "UNCONN");
    } else {
      EXPECT_EQ(r.remote_port, 7000);
      EXPECT_GE(r.cwnd, 1u);
      EXPECT_GT(r.srtt_us, 0u);
    }
  }
  EXPECT_TRUE(udp);
  EXPECT_EQ(counter(*sa, "tcp_active_opens"), 1u);

  // The segment is listed while the engine runs, and gone once it stops.
  std::string name = p.a->stats_name();
  bool listed = false;
  for (const SegmentInfo& s : list_segments()) listed |= s.name == name && !s.stale;
  EXPECT_TRUE(listed);
  p.a->stop();
  EXPECT_EQ(access(("/dev/shm/" + name).c_str(), F_OK), -1);
}

TEST(StatsSegment, MoreSocketsThanRowsIsTruncatedWithTotal) {
  Pair p(2);
  for (uint16_t i = 0; i < 5; ++i) {
    auto u = internal::udp_bind(*p.a, static_cast<uint16_t>(6000 + i));
    ASSERT_TRUE(u.has_value());
  }
  auto s = wait_snapshot(*p.a, [](const Snapshot& x) { return x.socket_total == 5; });
  ASSERT_TRUE(s.has_value()) << s.error();
  EXPECT_TRUE(s->truncated);
  EXPECT_EQ(s->sockets.size(), 2u);
}

TEST(StatsSegment, SpinModePublishesToo) {
  Pair p(4096, PollMode::Spin);
  auto l = internal::tcp_listen(*p.b, 7001, 8);
  ASSERT_TRUE(l.has_value());
  auto c = internal::tcp_connect(*p.a, {kB, 7001}, seconds(5));
  ASSERT_TRUE(c.has_value());
  auto s = wait_snapshot(*p.a, [](const Snapshot& x) {
    return x.sockets.size() == 1 && x.sockets[0].state == 1 && x.sockets[0].remote_port == 7001;
  });
  ASSERT_TRUE(s.has_value()) << s.error();
  EXPECT_EQ(counter(*s, "tcp_active_opens"), 1u);
}

}  // namespace
}  // namespace xs
