// The simulator and its link, with plain frame sources and recorders as
// endpoints (no stack): timing, impairments, determinism, buffer accounting.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <tuple>
#include <vector>

#include "stack/base/bytes.hpp"
#include "tests/support/sim.hpp"

// Counts heap allocations in this binary so a test can show that the frame
// path allocates nothing in steady state. Only counts; behaviour is malloc's.
namespace {
std::atomic<uint64_t> g_allocations{0};
}
void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n != 0 ? n : 1)) return p;
  throw std::bad_alloc();
}
// Out of line: inlined into callers, GCC pairs the builtin new with free()
// and warns (-Wmismatched-new-delete).
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace xs {
namespace {

// Frames carry their sequence number in the first 4 bytes and the low byte of
// it in every other byte.
constexpr size_t kMinLen = 4;

bool send_frame(SimLink::End& end, size_t len, uint32_t id) {
  MutBytes buf = end.tx_acquire();
  if (buf.size() < len) return false;
  for (size_t i = kMinLen; i < len; ++i) buf[i] = static_cast<uint8_t>(id);
  store_be32(buf.data(), id);
  end.tx_commit(len);
  return true;
}

bool frame_intact(Bytes f) {
  if (f.size() < kMinLen) return false;
  const auto fill = static_cast<uint8_t>(load_be32(f.data()));
  for (size_t i = kMinLen; i < f.size(); ++i) {
    if (f[i] != fill) return false;
  }
  return true;
}

struct Arrival {
  Instant at;
  uint32_t id;
  size_t len;
  auto operator<=>(const Arrival&) const = default;
};

// Records every frame arriving at an end.
struct Recorder {
  std::vector<Arrival> got;
  bool all_intact = true;
  void attach(SimLink::End& end) {
    end.set_receiver([this](Instant now, Bytes f) {
      all_intact = all_intact && frame_intact(f);
      got.push_back({now, load_be32(f.data()), f.size()});
    });
  }
};

// Sends `count` frames of `len` bytes, one every `gap` from `start` (gap 0: a
// burst), as a Pollable; remembers when each left.
struct Source {
  SimLink::End* end;
  size_t len;
  Duration gap;
  uint32_t count;
  Instant next{};
  uint32_t sent = 0;
  std::vector<Instant> sent_at;

  Pollable pollable() {
    sent_at.reserve(count);
    return {[this](Instant now) {
              while (sent < count && next <= now) {
                if (send_frame(*end, len, sent)) sent_at.push_back(now);
                ++sent;
                next += gap;
              }
            },
            [this] { return sent < count ? next : kNever; }};
  }
};

constexpr Instant kLimit{seconds(3600).us};

// ---- Simulator ---------------------------------------------------------------

TEST(Simulator, EventsRunInTimeThenInsertionOrder) {
  Simulator sim(1);
  std::vector<int> order;
  sim.at(Instant{300}, [&] { order.push_back(3); });
  sim.at(Instant{100}, [&] { order.push_back(1); });
  sim.at(Instant{100}, [&] {
    order.push_back(2);
    sim.at(Instant{50}, [&] { order.push_back(20); });  // in the past: runs now
  });
  sim.at(Instant{300}, [&] { order.push_back(4); });
  EXPECT_TRUE(sim.run_until_idle(kLimit));
  EXPECT_EQ(order, (std::vector<int>{1, 2, 20, 3, 4}));
  EXPECT_EQ(sim.now(), Instant{300});
}

TEST(Simulator, RunUntilStopsAtPredicateOrLimit) {
  Simulator sim(1);
  int fired = 0;
  for (int i = 1; i <= 10; ++i) sim.at(Instant{i * 1000}, [&] { ++fired; });
  EXPECT_TRUE(sim.run_until(kLimit, [&] { return fired == 4; }));
  EXPECT_EQ(sim.now(), Instant{4000});
  EXPECT_FALSE(sim.run_until(Instant{6500}, [&] { return fired == 10; }));
  EXPECT_EQ(sim.now(), Instant{6500});
  EXPECT_EQ(fired, 6);
  sim.run_for(millis(10));
  EXPECT_EQ(sim.now(), Instant{16500});
  EXPECT_EQ(fired, 10);
  EXPECT_TRUE(sim.run_until(Instant{1000}));  // in the past: nothing happens
  EXPECT_EQ(sim.now(), Instant{16500});
}

TEST(Simulator, PollsAtPollAtInstants) {
  Simulator sim(1);
  std::vector<Instant> polled;
  Instant deadline{7000};
  sim.add_pollable({[&](Instant now) {
                      polled.push_back(now);
                      if (now >= deadline) deadline = deadline < Instant{20000} ? deadline + millis(7) : kNever;
                    },
                    [&] { return deadline; }});
  EXPECT_TRUE(sim.run_until_idle(kLimit));
  // Once at the start, then exactly at each deadline.
  EXPECT_EQ(polled, (std::vector<Instant>{Instant{0}, Instant{7000}, Instant{14000}, Instant{21000}}));
}

TEST(Simulator, ThrowsWhenTimeCannotAdvance) {
  Simulator sim(1);
  sim.add_pollable({[](Instant) {}, [] { return Instant{0}; }});
  EXPECT_THROW(sim.run_until(kLimit), std::runtime_error);
}

// ---- SimLink timing ------------------------------------------------------------

TEST(SimLink, SerializationIsExactAtBandwidth) {
  Simulator sim(1);
  SimLink link(sim, LinkConfig{.bandwidth_bps = 8'000'000, .delay = millis(2)});  // 1 byte/us
  Recorder rx;
  rx.attach(link.b());
  for (uint32_t i = 0; i < 5; ++i) ASSERT_TRUE(send_frame(link.a(), 1000, i));
  EXPECT_EQ(link.next_event(), Instant{1000 + 2000});
  EXPECT_TRUE(sim.run_until_idle(kLimit));
  ASSERT_EQ(rx.got.size(), 5u);
  for (uint32_t i = 0; i < 5; ++i) {
    EXPECT_EQ(rx.got[i], (Arrival{Instant{(i + 1) * 1000 + 2000}, i, 1000})) << i;
  }
  // After the link went idle a frame leaves when it is sent.
  sim.advance_to(Instant{20000});
  ASSERT_TRUE(send_frame(link.a(), 500, 9));
  EXPECT_TRUE(sim.run_until_idle(kLimit));
  ASSERT_EQ(rx.got.size(), 6u);
  EXPECT_EQ(rx.got[5].at, Instant{20000 + 500 + 2000});
  EXPECT_EQ(link.stats_ab().bytes_delivered, 5500u);
}

TEST(SimLink, SerializationDoesNotAccumulateRounding) {
  Simulator sim(1);
  // 1500 bytes at 10 Gb/s take 1.2 us; arrivals round up to whole us, but the
  // wire keeps ns, so 1000 frames end at exactly 1200 us.
  SimLink link(sim, LinkConfig{.bandwidth_bps = 10'000'000'000, .queue_limit_bytes = 2 << 20});
  Recorder rx;
  rx.attach(link.b());
  Source src{&link.a(), 1500, Duration{}, 1000};
  sim.add_pollable(src.pollable());
  EXPECT_TRUE(sim.run_until_idle(kLimit));
  ASSERT_EQ(rx.got.size(), 1000u);
  EXPECT_EQ(rx.got[0].at, Instant{2});
  EXPECT_EQ(rx.got[1].at, Instant{3});
  EXPECT_EQ(rx.got[2].at, Instant{4});
  EXPECT_EQ(rx.got.back().at, Instant{1200});
}

TEST(SimLink, DelayAndJitterStayWithinBounds) {
  Simulator sim(7);
  SimLink link(sim, LinkConfig{.delay = millis(5), .jitter = millis(2)});
  Recorder rx;
  rx.attach(link.b());
  Source src{&link.a(), 100, micros(10), 10000};
  sim.add_pollable(src.pollable());
  EXPECT_TRUE(sim.run_until_idle(kLimit));
  ASSERT_EQ(rx.got.size(), 10000u);
  int64_t lo = INT64_MAX, hi = INT64_MIN, sum = 0;
  for (const Arrival& a : rx.got) {
    const int64_t d = (a.at - src.sent_at[a.id]).us;
    lo = std::min(lo, d);
    hi = std::max(hi, d);
    sum += d;
  }
  EXPECT_GE(lo, 5000);
  EXPECT_LE(lo, 5010);
  EXPECT_LE(hi, 7000);
  EXPECT_GE(hi, 6990);
  EXPECT_NEAR(static_cast<double>(sum) / 10000, 6000, 30);  // uniform: sd 577/sqrt(10000)
}

TEST(SimLink, DrivenByHand) {
  // The loop an engine-like test writes itself: deliver, poll, jump.
  Simulator sim(1);
  SimLink link(sim, LinkConfig{.bandwidth_bps = 8'000'000, .delay = millis(1)});
  Recorder rx;
  rx.attach(link.b());
  Instant next_send{};  // the "stack": sends a 250-byte frame every 2 ms, 5 times
  uint32_t sent = 0;
  const auto poll_at = [&] { return sent < 5 ? next_send : kNever; };
  Instant t{};
  while (t < kNever) {
    sim.advance_to(t);
    link.deliver_due(sim.now());
    if (sim.now() >= poll_at()) {
      send_frame(link.a(), 250, sent++);
      next_send += millis(2);
    }
    t = min(link.next_event(), poll_at());
  }
  ASSERT_EQ(rx.got.size(), 5u);
  for (uint32_t i = 0; i < 5; ++i) EXPECT_EQ(rx.got[i].at, Instant{i * 2000 + 250 + 1000});
  EXPECT_EQ(sim.now(), Instant{4 * 2000 + 250 + 1000});
}

// ---- impairments ------------------------------------------------------------

TEST(SimLink, LossRateMatchesProbability) {
  Simulator sim(12345);
  SimLink link(sim, LinkConfig{.loss = 0.1});
  Recorder rx;
  rx.attach(link.b());
  constexpr uint32_t kFrames = 100000;
  Source src{&link.a(), 64, micros(1), kFrames};
  sim.add_pollable(src.pollable());
  EXPECT_TRUE(sim.run_until_idle(kLimit));
  const LinkStats& s = link.stats_ab();
  EXPECT_EQ(s.frames_sent, kFrames);
  EXPECT_EQ(s.frames_delivered + s.frames_lost, kFrames);
  EXPECT_EQ(rx.got.size(), s.frames_delivered);
  // Binomial sd is sqrt(1e5 * 0.1 * 0.9) = 95; allow 5 sd.
  EXPECT_NEAR(static_cast<double>(s.frames_lost), 10000, 475);
  // Loss only removes frames: the survivors arrive once each, in order.
  for (size_t i = 1; i < rx.got.size(); ++i) ASSERT_LT(rx.got[i - 1].id, rx.got[i].id);
}

TEST(SimLink, DuplicatesAreIdenticalCopies) {
  Simulator sim(3);
  SimLink link(sim, LinkConfig{.delay = micros(100), .jitter = micros(50), .duplicate = 0.05});
  Recorder rx;
  rx.attach(link.b());
  constexpr uint32_t kFrames = 20000;
  Source src{&link.a(), 300, micros(20), kFrames};
  sim.add_pollable(src.pollable());
  EXPECT_TRUE(sim.run_until_idle(kLimit));
  const LinkStats& s = link.stats_ab();
  EXPECT_NEAR(static_cast<double>(s.frames_duplicated), 1000, 5 * std::sqrt(20000 * 0.05 * 0.95));
  EXPECT_EQ(s.frames_delivered, kFrames + s.frames_duplicated);
  std::vector<int> copies(kFrames);
  for (const Arrival& a : rx.got) ++copies[a.id];
  uint64_t twice = 0;
  for (int c : copies) {
    ASSERT_TRUE(c == 1 || c == 2);
    twice += c == 2;
  }
  EXPECT_EQ(twice, s.frames_duplicated);
  EXPECT_TRUE(rx.all_intact);
}

TEST(SimLink, ReorderedFramesAreOvertaken) {
  Simulator sim(5);
  SimLink link(sim, LinkConfig{.delay = millis(1), .reorder = 0.1, .reorder_extra = millis(1)});
  Recorder rx;
  rx.attach(link.b());
  constexpr uint32_t kFrames = 5000;
  Source src{&link.a(), 100, micros(100), kFrames};
  sim.add_pollable(src.pollable());
  EXPECT_TRUE(sim.run_until_idle(kLimit));
  const LinkStats& s = link.stats_ab();
  EXPECT_NEAR(static_cast<double>(s.frames_reordered), 500, 5 * std::sqrt(5000 * 0.1 * 0.9));
  EXPECT_EQ(s.frames_delivered, kFrames);
  // A frame is out of order when a later one arrived before it. Each reordered
  // frame is 1 ms (10 frames) late, so nearly every one is overtaken.
  uint64_t out_of_order = 0;
  uint32_t highest = 0;
  for (const Arrival& a : rx.got) {
    if (a.id < highest) ++out_of_order;
    highest = std::max(highest, a.id);
  }
  EXPECT_LE(out_of_order, s.frames_reordered);
  EXPECT_GE(out_of_order, s.frames_reordered - 2);
}

TEST(SimLink, NoImpairmentKeepsOrder) {
  Simulator sim(5);
  SimLink link(sim, LinkConfig{.bandwidth_bps = 1'000'000'000, .delay = millis(1)});
  Recorder rx;
  rx.attach(link.b());
  Source src{&link.a(), 1514, micros(15), 3000};
  sim.add_pollable(src.pollable());
  EXPECT_TRUE(sim.run_until_idle(kLimit));
  ASSERT_EQ(rx.got.size(), 3000u);
  for (uint32_t i = 0; i < 3000; ++i) ASSERT_EQ(rx.got[i].id, i);
  EXPECT_TRUE(rx.all_intact);
}

TEST(SimLink, DropsFramesAboveMtu) {
  Simulator sim(1);
  SimLink link(sim, LinkConfig{.mtu = 1500}, LinkConfig{.mtu = 1000});
  EXPECT_EQ(link.a().max_frame_len(), 1514u);
  EXPECT_EQ(link.b().max_frame_len(), 1014u);
  EXPECT_GT(link.a().tx_acquire().size(), 1514u);  // room to write an oversize frame
  Recorder at_a, at_b;
  at_a.attach(link.a());
  at_b.attach(link.b());
  EXPECT_TRUE(send_frame(link.a(), 1514, 1));
  EXPECT_TRUE(send_frame(link.a(), 1515, 2));
  EXPECT_TRUE(send_frame(link.b(), 1014, 3));
  EXPECT_TRUE(send_frame(link.b(), 1500, 4));
  EXPECT_TRUE(sim.run_until_idle(kLimit));
  ASSERT_EQ(at_b.got.size(), 1u);
  EXPECT_EQ(at_b.got[0].id, 1u);
  ASSERT_EQ(at_a.got.size(), 1u);
  EXPECT_EQ(at_a.got[0].id, 3u);
  EXPECT_EQ(link.stats_ab().frames_dropped_mtu, 1u);
  EXPECT_EQ(link.stats_ba().frames_dropped_mtu, 1u);
  EXPECT_EQ(link.stats_ab().frames_sent, 2u);
}

TEST(SimLink, DropTailQueueWhenBursting) {
  Simulator sim(1);
  // 1 byte/us; room for ten 1000-byte frames waiting.
  SimLink link(sim, LinkConfig{.bandwidth_bps = 8'000'000, .queue_limit_bytes = 10000});
  Recorder rx;
  rx.attach(link.b());
  for (uint32_t i = 0; i < 100; ++i) ASSERT_TRUE(send_frame(link.a(), 1000, i));
  EXPECT_EQ(link.stats_ab().frames_dropped_queue, 90u);
  // Half drained: room for five more.
  sim.run_until(Instant{5000});
  EXPECT_EQ(rx.got.size(), 5u);
  for (uint32_t i = 100; i < 106; ++i) ASSERT_TRUE(send_frame(link.a(), 1000, i));
  EXPECT_EQ(link.stats_ab().frames_dropped_queue, 91u);
  EXPECT_EQ(link.stats_ab().bytes_sent, 106u * 1000);
  EXPECT_EQ(link.stats_ab().bytes_on_wire, 15u * 1000);
  EXPECT_TRUE(sim.run_until_idle(kLimit));
  ASSERT_EQ(rx.got.size(), 15u);
  for (uint32_t i = 0; i < 10; ++i) EXPECT_EQ(rx.got[i], (Arrival{Instant{(i + 1) * 1000}, i, 1000}));
  for (uint32_t i = 10; i < 15; ++i) {
    EXPECT_EQ(rx.got[i], (Arrival{Instant{(i + 1) * 1000}, 90 + i, 1000}));
  }
}

TEST(SimLink, EchoRoundTrip) {
  Simulator sim(1);
  SimLink link(sim, LinkConfig{.bandwidth_bps = 8'000'000, .delay = millis(3)});
  link.b().set_receiver([&](Instant, Bytes f) { send_frame(link.b(), f.size(), load_be32(f.data()) + 1); });
  Recorder at_a;
  at_a.attach(link.a());
  ASSERT_TRUE(send_frame(link.a(), 500, 41));
  EXPECT_TRUE(sim.run_until_idle(kLimit));
  ASSERT_EQ(at_a.got.size(), 1u);
  EXPECT_EQ(at_a.got[0], (Arrival{Instant{2 * (500 + 3000)}, 42, 500}));
}

// ---- determinism and resources ----------------------------------------------------

struct TraceEntry {
  Instant at;
  int dir;
  uint32_t id;
  auto operator<=>(const TraceEntry&) const = default;
};

std::vector<TraceEntry> impaired_run(uint64_t seed) {
  Simulator sim(seed);
  const LinkConfig cfg{.bandwidth_bps = 100'000'000, .delay = millis(1), .jitter = micros(500),
                       .loss = 0.05, .duplicate = 0.02, .reorder = 0.05, .queue_limit_bytes = 64 * 1024};
  SimLink link(sim, cfg);
  std::vector<TraceEntry> trace;
  link.a().set_receiver([&](Instant t, Bytes f) { trace.push_back({t, 0, load_be32(f.data())}); });
  link.b().set_receiver([&](Instant t, Bytes f) { trace.push_back({t, 1, load_be32(f.data())}); });
  Source ab{&link.a(), 1200, micros(80), 5000};
  Source ba{&link.b(), 200, micros(300), 1000};
  sim.add_pollable(ab.pollable());
  sim.add_pollable(ba.pollable());
  EXPECT_TRUE(sim.run_until_idle(kLimit));
  EXPECT_GT(link.stats_ab().frames_dropped_queue, 0u);  // the A->B source overruns the link
  return trace;
}

TEST(SimLink, SameSeedSameTraceDifferentSeedDifferentTrace) {
  const auto first = impaired_run(42);
  const auto again = impaired_run(42);
  const auto other = impaired_run(43);
  EXPECT_GT(first.size(), 3000u);
  EXPECT_EQ(first, again);
  EXPECT_NE(first, other);
}

TEST(SimLink, AllBuffersReturnToThePool) {
  Simulator sim(9);
  const LinkConfig ab{.bandwidth_bps = 50'000'000, .delay = millis(2), .jitter = micros(300), .loss = 0.02,
                      .duplicate = 0.05, .reorder = 0.05, .mtu = 1400, .queue_limit_bytes = 32 * 1024};
  const LinkConfig ba{.delay = millis(5), .max_frames_in_flight = 64};
  SimLink link(sim, ab, ba);
  link.b().set_receiver([&](Instant, Bytes f) {  // B answers every 4th frame
    const uint32_t id = load_be32(f.data());
    if (id % 4 == 0) send_frame(link.b(), 100, id);
  });
  Source steady{&link.a(), 1414, micros(150), 4000};
  Source oversize{&link.a(), 1500, millis(1), 50};   // all dropped (mtu)
  Source burst{&link.b(), 100, Duration{}, 200};     // exhausts B's pool
  sim.add_pollable(steady.pollable());
  sim.add_pollable(oversize.pollable());
  sim.add_pollable(burst.pollable());
  EXPECT_TRUE(sim.run_until_idle(kLimit));
  const LinkStats& s = link.stats_ab();
  EXPECT_GT(s.frames_dropped_queue, 0u);
  EXPECT_EQ(s.frames_dropped_mtu, 50u);
  EXPECT_GT(s.frames_lost, 0u);
  EXPECT_GT(s.frames_duplicated, 0u);
  EXPECT_GT(s.frames_reordered, 0u);
  EXPECT_EQ(s.frames_delivered + s.frames_lost + s.frames_dropped_queue + s.frames_dropped_mtu,
            s.frames_sent + s.frames_duplicated);
  EXPECT_GT(link.stats_ba().tx_no_buffer, 0u);
  EXPECT_GT(link.stats_ba().frames_delivered, 64u);
  EXPECT_EQ(link.frames_in_flight(), 0u);
  EXPECT_EQ(link.buffers_free(), link.buffers_total());
}

TEST(SimLink, SteadyStateDoesNotAllocate) {
  Simulator sim(11);
  SimLink link(sim, LinkConfig{.bandwidth_bps = 1'000'000'000, .delay = micros(200), .jitter = micros(100),
                               .loss = 0.01, .duplicate = 0.01, .reorder = 0.01});
  uint64_t received = 0;
  link.b().set_receiver([&](Instant, Bytes f) {
    ++received;
    send_frame(link.b(), 64, load_be32(f.data()));
  });
  link.a().set_receiver([&](Instant, Bytes) { ++received; });
  Source src{&link.a(), 1514, micros(15), 10000};  // below the 12.1 us/frame the link carries
  sim.add_pollable(src.pollable());
  // Warm up: the pool and heaps grow to their working size.
  sim.run_until(Instant{millis(20).us});
  const uint64_t before = g_allocations.load();
  const uint64_t received_before = received;
  sim.run_until(Instant{millis(70).us});
  const uint64_t allocated = g_allocations.load() - before;
  EXPECT_GT(received - received_before, 6000u);
  EXPECT_EQ(allocated, 0u);
  EXPECT_TRUE(sim.run_until_idle(kLimit));
  EXPECT_EQ(link.buffers_free(), link.buffers_total());
}

}  // namespace
}  // namespace xs
