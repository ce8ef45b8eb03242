// ArpCache: resolution, RFC 826 merge, ageing, re-verification, bounded queue.
#include <gtest/gtest.h>

#include <cstring>

#include "stack/net/arp_cache.hpp"
#include "tests/support/capture_sink.hpp"

using namespace xs;
using xs::test::CaptureSink;

namespace {

constexpr MacAddr kOurMac{{0x02, 0, 0, 0, 0, 0x01}};
constexpr MacAddr kPeerMac{{0x02, 0, 0, 0, 0, 0x02}};
constexpr MacAddr kPeerMac2{{0x02, 0, 0, 0, 0, 0x22}};
constexpr Ipv4Addr kOurIp = Ipv4Addr::from_octets(198, 18, 0, 1);
constexpr Ipv4Addr kPeerIp = Ipv4Addr::from_octets(198, 18, 0, 2);
constexpr Ipv4Addr kOtherIp = Ipv4Addr::from_octets(198, 18, 0, 3);

Instant at_ms(int64_t ms) { return Instant{ms * 1000}; }

struct ArpFixture : ::testing::Test {
  CaptureSink sink;
  StackCounters c;
  ArpCache arp{kOurMac, kOurIp, sink, c};

  // Queues a small frame (marker byte at offset 14) for next hop `ip`.
  bool queue_frame(Instant now, Ipv4Addr ip, uint8_t marker) {
    MutBytes b = arp.enqueue_begin(now, ip);
    if (b.empty()) return false;
    std::memset(b.data(), 0, 60);
    std::memcpy(b.data() + 6, kOurMac.b.data(), 6);
    b[12] = 0x08;
    b[13] = 0x00;
    b[14] = marker;
    arp.enqueue_commit(60);
    return true;
  }
  void rx(Instant now, MacAddr eth_dst, const ArpRepr& a) {
    auto f = test::arp_frame(eth_dst, a);
    auto e = parse_ethernet(Bytes(f.data(), f.size()));
    ASSERT_TRUE(e.has_value());
    arp.on_arp(now, e->payload);
  }
  void reply_from_peer(Instant now, MacAddr mac = kPeerMac) {
    rx(now, kOurMac, {ArpOp::Reply, mac, kPeerIp, kOurMac, kOurIp});
  }
};

TEST_F(ArpFixture, UnknownNeighbourStartsResolutionWithBroadcastRequest) {
  EXPECT_FALSE(arp.lookup(at_ms(0), kPeerIp).has_value());
  EXPECT_EQ(sink.size(), 0u);  // lookup alone never sends
  ASSERT_TRUE(queue_frame(at_ms(0), kPeerIp, 1));
  ASSERT_EQ(sink.size(), 1u);
  auto e = sink.eth();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->hdr.dst, MacAddr::broadcast());
  EXPECT_EQ(e->hdr.src, kOurMac);
  auto a = sink.arp();
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->op, ArpOp::Request);
  EXPECT_EQ(a->sender_mac, kOurMac);
  EXPECT_EQ(a->sender_ip, kOurIp);
  EXPECT_EQ(a->target_mac, MacAddr{});
  EXPECT_EQ(a->target_ip, kPeerIp);
  EXPECT_EQ(arp.state_of(kPeerIp), ArpCache::State::Incomplete);
  EXPECT_EQ(arp.queued(kPeerIp), 1u);
  EXPECT_EQ(c.arp_tx_requests, 1u);
  EXPECT_EQ(arp.poll_at(), at_ms(1000));
}

TEST_F(ArpFixture, ReplyResolvesAndFlushesQueueInOrderWithDestinationMac) {
  ASSERT_TRUE(queue_frame(at_ms(0), kPeerIp, 1));
  ASSERT_TRUE(queue_frame(at_ms(1), kPeerIp, 2));
  EXPECT_EQ(sink.size(), 1u);  // only the one request: resolution already running
  sink.clear();
  reply_from_peer(at_ms(5));
  ASSERT_EQ(sink.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    auto e = sink.eth(i);
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->hdr.dst, kPeerMac);
    EXPECT_EQ(sink.frames[i].size(), 60u);
    EXPECT_EQ(sink.frames[i][14], uint8_t(i + 1));
  }
  EXPECT_EQ(arp.state_of(kPeerIp), ArpCache::State::Reachable);
  EXPECT_EQ(arp.lookup(at_ms(6), kPeerIp), kPeerMac);
  EXPECT_EQ(arp.queued(kPeerIp), 0u);
  EXPECT_EQ(arp.free_buffers(), 64u);
  EXPECT_EQ(c.eth_tx_frames, 3u);
}

TEST_F(ArpFixture, RetriesEverySecondThenFailsAndDropsQueue) {
  ASSERT_TRUE(queue_frame(at_ms(0), kPeerIp, 1));
  arp.poll(at_ms(999));
  EXPECT_EQ(c.arp_tx_requests, 1u);
  arp.poll(at_ms(1000));
  EXPECT_EQ(c.arp_tx_requests, 2u);
  arp.poll(at_ms(2000));
  EXPECT_EQ(c.arp_tx_requests, 3u);
  EXPECT_EQ(arp.state_of(kPeerIp), ArpCache::State::Incomplete);
  arp.poll(at_ms(3000));
  EXPECT_EQ(c.arp_tx_requests, 3u);  // three requests in all (mcast_solicit)
  EXPECT_EQ(c.arp_resolve_failed, 1u);
  EXPECT_FALSE(arp.state_of(kPeerIp).has_value());
  EXPECT_EQ(arp.free_buffers(), 64u);  // queued frame released
  EXPECT_EQ(arp.poll_at(), kNever);
  // A later reply for the failed neighbour is unsolicited and creates nothing.
  reply_from_peer(at_ms(3100));
  EXPECT_FALSE(arp.state_of(kPeerIp).has_value());
}

TEST_F(ArpFixture, RequestForUsIsAnsweredAndCreatesStaleEntry) {
  rx(at_ms(0), MacAddr::broadcast(), {ArpOp::Request, kPeerMac, kPeerIp, MacAddr{}, kOurIp});
  ASSERT_EQ(sink.size(), 1u);
  auto e = sink.eth();
  EXPECT_EQ(e->hdr.dst, kPeerMac);
  EXPECT_EQ(e->hdr.ethertype, ethertype::kArp);
  auto a = sink.arp();
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->op, ArpOp::Reply);
  EXPECT_EQ(a->sender_mac, kOurMac);
  EXPECT_EQ(a->sender_ip, kOurIp);
  EXPECT_EQ(a->target_mac, kPeerMac);
  EXPECT_EQ(a->target_ip, kPeerIp);
  EXPECT_EQ(c.arp_tx_replies, 1u);
  EXPECT_EQ(arp.state_of(kPeerIp), ArpCache::State::Stale);
  EXPECT_EQ(arp.peek(kPeerIp), kPeerMac);
}

TEST_F(ArpFixture, RequestForSomeoneElseIsIgnoredAndLearnsNothing) {
  rx(at_ms(0), MacAddr::broadcast(), {ArpOp::Request, kPeerMac, kPeerIp, MacAddr{}, kOtherIp});
  EXPECT_EQ(sink.size(), 0u);
  EXPECT_FALSE(arp.state_of(kPeerIp).has_value());
  EXPECT_EQ(c.arp_rx, 1u);
}

TEST_F(ArpFixture, MergeUpdatesExistingEntryEvenWhenNotTargeted) {
  rx(at_ms(0), MacAddr::broadcast(), {ArpOp::Request, kPeerMac, kPeerIp, MacAddr{}, kOurIp});
  // The peer's MAC changes (gratuitous ARP aimed at someone else): RFC 826
  // updates the entry we already have.
  rx(at_ms(10), MacAddr::broadcast(), {ArpOp::Request, kPeerMac2, kPeerIp, MacAddr{}, kOtherIp});
  EXPECT_EQ(arp.peek(kPeerIp), kPeerMac2);
}

TEST_F(ArpFixture, UnsolicitedReplyCreatesNoEntry) {
  reply_from_peer(at_ms(0));
  EXPECT_FALSE(arp.state_of(kPeerIp).has_value());
  EXPECT_EQ(arp.size(), 0u);
}

TEST_F(ArpFixture, MalformedAndBogusSendersAreCountedBad) {
  uint8_t junk[10] = {};
  arp.on_arp(at_ms(0), Bytes(junk, sizeof junk));
  rx(at_ms(0), MacAddr::broadcast(), {ArpOp::Request, MacAddr::broadcast(), kPeerIp, MacAddr{}, kOurIp});
  EXPECT_EQ(c.arp_rx_bad, 2u);
  EXPECT_EQ(sink.size(), 0u);
  EXPECT_EQ(arp.size(), 0u);
}

TEST_F(ArpFixture, ReachableGoesStaleAfter30sAndUseSendsUnicastProbe) {
  ASSERT_TRUE(queue_frame(at_ms(0), kPeerIp, 1));
  reply_from_peer(at_ms(0));
  sink.clear();
  arp.poll(at_ms(29999));
  EXPECT_EQ(arp.state_of(kPeerIp), ArpCache::State::Reachable);
  arp.poll(at_ms(30000));
  EXPECT_EQ(arp.state_of(kPeerIp), ArpCache::State::Stale);
  EXPECT_EQ(sink.size(), 0u);  // stale entries are verified only when used

  // Used while stale: the cached MAC is still returned, and a unicast request
  // goes to it (RFC 1122 2.3.2.1).
  EXPECT_EQ(arp.lookup(at_ms(31000), kPeerIp), kPeerMac);
  ASSERT_EQ(sink.size(), 1u);
  EXPECT_EQ(sink.eth()->hdr.dst, kPeerMac);
  EXPECT_EQ(sink.arp()->op, ArpOp::Request);
  EXPECT_EQ(sink.arp()->target_ip, kPeerIp);
  EXPECT_EQ(arp.state_of(kPeerIp), ArpCache::State::Probe);
  // One probe per use is enough: a second lookup does not send another.
  EXPECT_EQ(arp.lookup(at_ms(31001), kPeerIp), kPeerMac);
  EXPECT_EQ(sink.size(), 1u);

  reply_from_peer(at_ms(31100));
  EXPECT_EQ(arp.state_of(kPeerIp), ArpCache::State::Reachable);
}

TEST_F(ArpFixture, UnansweredProbesRemoveEntry) {
  ASSERT_TRUE(queue_frame(at_ms(0), kPeerIp, 1));
  reply_from_peer(at_ms(0));
  arp.poll(at_ms(30000));
  sink.clear();
  ASSERT_TRUE(arp.lookup(at_ms(30000), kPeerIp).has_value());
  arp.poll(at_ms(31000));
  arp.poll(at_ms(32000));
  EXPECT_EQ(sink.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(sink.eth(i)->hdr.dst, kPeerMac);
  arp.poll(at_ms(33000));
  EXPECT_FALSE(arp.state_of(kPeerIp).has_value());
}

TEST_F(ArpFixture, UnusedStaleEntryExpiresAfter60s) {
  rx(at_ms(0), MacAddr::broadcast(), {ArpOp::Request, kPeerMac, kPeerIp, MacAddr{}, kOurIp});
  EXPECT_EQ(arp.poll_at(), at_ms(60000));
  arp.poll(at_ms(59999));
  EXPECT_TRUE(arp.state_of(kPeerIp).has_value());
  arp.poll(at_ms(60000));
  EXPECT_FALSE(arp.state_of(kPeerIp).has_value());
  EXPECT_EQ(arp.size(), 0u);
}

TEST_F(ArpFixture, StaticEntryIsPermanentAndIgnoresArp) {
  ASSERT_TRUE(arp.insert_static(kPeerIp, kPeerMac));
  EXPECT_EQ(arp.lookup(at_ms(0), kPeerIp), kPeerMac);
  reply_from_peer(at_ms(1), kPeerMac2);
  rx(at_ms(2), MacAddr::broadcast(), {ArpOp::Request, kPeerMac2, kPeerIp, MacAddr{}, kOurIp});
  arp.poll(at_ms(10'000'000));
  EXPECT_EQ(arp.state_of(kPeerIp), ArpCache::State::Permanent);
  EXPECT_EQ(arp.lookup(at_ms(10'000'000), kPeerIp), kPeerMac);
  EXPECT_EQ(c.arp_tx_requests, 0u);
}

TEST_F(ArpFixture, PerEntryQueueOverflowDropsOldest) {
  for (uint8_t i = 0; i < 17; ++i) ASSERT_TRUE(queue_frame(at_ms(0), kPeerIp, i));
  EXPECT_EQ(arp.queued(kPeerIp), 16u);
  EXPECT_EQ(c.arp_queue_drops, 1u);
  sink.clear();
  reply_from_peer(at_ms(1));
  ASSERT_EQ(sink.size(), 16u);
  EXPECT_EQ(sink.frames.front()[14], 1);  // frame 0 was the one dropped
  EXPECT_EQ(sink.frames.back()[14], 16);
}

TEST_F(ArpFixture, PoolIsSharedAndBounded) {
  for (uint8_t n = 0; n < 4; ++n) {
    for (uint8_t i = 0; i < 16; ++i) {
      ASSERT_TRUE(queue_frame(at_ms(0), Ipv4Addr::from_octets(198, 18, 0, uint8_t(10 + n)), i));
    }
  }
  EXPECT_EQ(arp.free_buffers(), 0u);
  // A fifth neighbour finds no buffer: its frame is lost and counted.
  EXPECT_FALSE(queue_frame(at_ms(0), Ipv4Addr::from_octets(198, 18, 0, 20), 0));
  EXPECT_EQ(c.arp_queue_drops, 1u);
  // A neighbour with frames queued recycles its own oldest buffer.
  EXPECT_TRUE(queue_frame(at_ms(0), Ipv4Addr::from_octets(198, 18, 0, 10), 99));
  EXPECT_EQ(c.arp_queue_drops, 2u);
  EXPECT_EQ(arp.queued(Ipv4Addr::from_octets(198, 18, 0, 10)), 16u);
}

TEST_F(ArpFixture, AbandonedEnqueueDoesNotLeakBuffer) {
  EXPECT_FALSE(arp.enqueue_begin(at_ms(0), kPeerIp).empty());  // never committed
  EXPECT_EQ(arp.free_buffers(), 63u);
  ASSERT_TRUE(queue_frame(at_ms(0), kPeerIp, 1));
  EXPECT_EQ(arp.free_buffers(), 63u);
  EXPECT_EQ(arp.queued(kPeerIp), 1u);
}

TEST(ArpCacheTable, FullTableEvictsLeastRecentlyUsedStaleEntry) {
  CaptureSink sink;
  StackCounters c;
  ArpConfig cfg;
  cfg.max_entries = 3;
  ArpCache arp(kOurMac, kOurIp, sink, c, cfg);
  auto ip = [](uint8_t d) { return Ipv4Addr::from_octets(198, 18, 0, d); };
  auto request_from = [&](Instant now, uint8_t d) {
    auto f = test::arp_frame(MacAddr::broadcast(),
                             {ArpOp::Request, MacAddr{{0x02, 0, 0, 0, 1, d}}, ip(d), MacAddr{}, kOurIp});
    arp.on_arp(now, Bytes(f.data(), f.size()).subspan(kEthHeaderLen));
  };
  request_from(at_ms(0), 10);
  request_from(at_ms(1), 11);
  request_from(at_ms(2), 12);
  EXPECT_EQ(arp.size(), 3u);
  request_from(at_ms(3), 13);
  EXPECT_EQ(arp.size(), 3u);
  EXPECT_FALSE(arp.state_of(ip(10)).has_value());  // oldest stale entry went
  EXPECT_TRUE(arp.state_of(ip(13)).has_value());
  // Entries being resolved are not evictable: with the table full of
  // incomplete entries a new neighbour cannot be queued.
  ArpCache arp2(kOurMac, kOurIp, sink, c, cfg);
  for (uint8_t d = 20; d < 23; ++d) {
    EXPECT_FALSE(arp2.enqueue_begin(at_ms(0), ip(d)).empty());
    arp2.enqueue_commit(60);
  }
  EXPECT_TRUE(arp2.enqueue_begin(at_ms(0), ip(30)).empty());
}

TEST(ArpCacheTable, ManyEntriesAndRemovalsKeepIndexConsistent) {
  CaptureSink sink;
  StackCounters c;
  ArpCache arp(kOurMac, kOurIp, sink, c);
  for (uint32_t i = 0; i < 1000; ++i) {
    ASSERT_TRUE(arp.insert_static(Ipv4Addr{0xc6120000u + i}, MacAddr{{2, 0, 0, 0, uint8_t(i >> 8), uint8_t(i)}}));
  }
  for (uint32_t i = 0; i < 1000; i += 2) arp.remove(Ipv4Addr{0xc6120000u + i});
  EXPECT_EQ(arp.size(), 500u);
  for (uint32_t i = 0; i < 1000; ++i) {
    auto m = arp.peek(Ipv4Addr{0xc6120000u + i});
    if (i % 2 == 0) {
      EXPECT_FALSE(m.has_value()) << i;
    } else {
      ASSERT_TRUE(m.has_value()) << i;
      EXPECT_EQ(m->b[5], uint8_t(i));
    }
  }
}

}  // namespace

// Shared-IP mode: the kernel owns ARP; the cache asks it to resolve and is told
// the answer (through insert_static / remove, relayed from rtnetlink).
struct RecordingResolver : NeighbourResolver {
  std::vector<Ipv4Addr> asked;
  void request(Ipv4Addr ip) override { asked.push_back(ip); }
};

struct ExternalArpFixture : ArpFixture {
  RecordingResolver resolver;
  ArpCache ext{kOurMac, kOurIp, sink, c, [this] {
                 ArpConfig cfg;
                 cfg.external = &resolver;
                 return cfg;
               }()};
};

TEST_F(ExternalArpFixture, ResolutionGoesToKernelAndAnswerFlushesQueue) {
  MutBytes b = ext.enqueue_begin(at_ms(0), kPeerIp);
  ASSERT_FALSE(b.empty());
  std::memset(b.data(), 0, 60);
  b[12] = 0x08;  // IPv4 ethertype, so the frame parses
  b[14] = 7;
  ext.enqueue_commit(60);
  EXPECT_EQ(sink.size(), 0u);  // no ARP on the wire from us
  ASSERT_EQ(resolver.asked.size(), 1u);
  EXPECT_EQ(resolver.asked[0], kPeerIp);
  ext.poll(at_ms(1000));  // still unresolved: ask again, on the same schedule
  EXPECT_EQ(resolver.asked.size(), 2u);
  EXPECT_EQ(sink.size(), 0u);
  ASSERT_TRUE(ext.insert_static(kPeerIp, kPeerMac));
  ASSERT_EQ(sink.size(), 1u);
  auto eth = sink.eth();
  ASSERT_TRUE(eth.has_value());
  EXPECT_EQ(eth->hdr.dst, kPeerMac);
  EXPECT_EQ(sink.frames[0][14], 7);
  EXPECT_EQ(ext.lookup(at_ms(1001), kPeerIp), kPeerMac);
  // The kernel re-learns a new MAC: replaced, not ignored.
  ASSERT_TRUE(ext.insert_static(kPeerIp, kPeerMac2));
  EXPECT_EQ(ext.lookup(at_ms(1002), kPeerIp), kPeerMac2);
  ext.remove(kPeerIp);
  EXPECT_FALSE(ext.lookup(at_ms(1003), kPeerIp).has_value());
}

TEST_F(ExternalArpFixture, ArpRequestsForOurAddressAreLeftToTheKernel) {
  auto f = test::arp_frame(MacAddr::broadcast(), {ArpOp::Request, kPeerMac, kPeerIp, MacAddr{}, kOurIp});
  auto e = parse_ethernet(Bytes(f.data(), f.size()));
  ASSERT_TRUE(e.has_value());
  ext.on_arp(at_ms(0), e->payload);
  EXPECT_EQ(sink.size(), 0u);
  EXPECT_FALSE(ext.state_of(kPeerIp).has_value());
}

TEST_F(ExternalArpFixture, UnansweredKernelResolutionFailsAndDropsQueue) {
  MutBytes b = ext.enqueue_begin(at_ms(0), kPeerIp);
  ASSERT_FALSE(b.empty());
  ext.enqueue_commit(60);
  for (int t = 1000; t <= 3000; t += 1000) ext.poll(at_ms(t));
  EXPECT_EQ(resolver.asked.size(), 3u);
  EXPECT_EQ(c.arp_resolve_failed, 1u);
  EXPECT_FALSE(ext.state_of(kPeerIp).has_value());
  EXPECT_EQ(ext.free_buffers(), 64u);
}

namespace {
struct RecordingFailures : ArpFailureObserver {
  std::vector<std::vector<uint8_t>> frames;
  void on_unresolved(Instant, Bytes f) override { frames.emplace_back(f.begin(), f.end()); }
};
}  // namespace

TEST_F(ArpFixture, FailedResolutionReportsEveryQueuedFrame) {
  RecordingFailures failures;
  arp.set_failure_observer(&failures);
  ASSERT_TRUE(queue_frame(at_ms(0), kPeerIp, 1));
  ASSERT_TRUE(queue_frame(at_ms(1), kPeerIp, 2));
  for (int t = 1000; t <= 3000; t += 1000) arp.poll(at_ms(t));
  ASSERT_EQ(failures.frames.size(), 2u);
  EXPECT_EQ(failures.frames[0][14], 1);  // in the order they were queued
  EXPECT_EQ(failures.frames[1][14], 2);
  EXPECT_EQ(arp.free_buffers(), 64u);
}
