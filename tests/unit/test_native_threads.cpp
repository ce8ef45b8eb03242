// Several application threads on the native API at once, as Linux allows:
// different sockets in parallel, and the same socket from several threads
// (each send of a small record is atomic; receivers share one byte stream;
// accept hands each connection to exactly one thread), and a thread blocked
// in one call never stalls the others.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "tests/support/native_pair.hpp"

namespace xs {
namespace {

using namespace testing_native;
using Clock = std::chrono::steady_clock;

constexpr size_t kRecord = 64;

// A record: thread id, sequence number, then a filler derived from both.
void make_record(uint8_t* r, uint32_t thread, uint32_t seq) {
  std::memcpy(r, &thread, 4);
  std::memcpy(r + 4, &seq, 4);
  for (size_t i = 8; i < kRecord; ++i) r[i] = static_cast<uint8_t>(thread * 31 + seq * 7 + i);
}
bool check_record(const uint8_t* r, uint32_t* thread, uint32_t* seq) {
  std::memcpy(thread, r, 4);
  std::memcpy(seq, r + 4, 4);
  for (size_t i = 8; i < kRecord; ++i) {
    if (r[i] != static_cast<uint8_t>(*thread * 31 + *seq * 7 + i)) return false;
  }
  return true;
}

// Reads exactly n bytes (blocking), false on EOF or error.
bool read_n(Runtime& r, int fd, uint8_t* buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t k = r.recv(fd, buf + got, n - got, 0);
    if (k <= 0) return false;
    got += static_cast<size_t>(k);
  }
  return true;
}

TEST(NativeThreads, ConcurrentSendersOnOneSocketKeepEachRecordWhole) {
  NativePair p;
  auto [c, s] = p.connected(7101);
  constexpr uint32_t kThreads = 4, kPerThread = 500;
  std::vector<std::thread> senders;
  std::atomic<int> send_errors{0};
  for (uint32_t t = 0; t < kThreads; ++t) {
    senders.emplace_back([&, t] {
      uint8_t rec[kRecord];
      for (uint32_t i = 0; i < kPerThread; ++i) {
        make_record(rec, t, i);
        if (p.a->send(c, rec, kRecord, 0) != static_cast<ssize_t>(kRecord)) send_errors++;
      }
    });
  }
  std::vector<uint32_t> next(kThreads, 0);
  size_t bad = 0;
  uint8_t rec[kRecord];
  for (uint32_t n = 0; n < kThreads * kPerThread; ++n) {
    ASSERT_TRUE(read_n(*p.b, s, rec, kRecord)) << "record " << n;
    uint32_t t = 0, seq = 0;
    if (!check_record(rec, &t, &seq) || t >= kThreads || seq != next[t]) {
      bad++;
      continue;
    }
    next[t]++;
  }
  for (auto& th : senders) th.join();
  EXPECT_EQ(send_errors.load(), 0);
  EXPECT_EQ(bad, 0u) << "records torn, or out of order within one thread";
  for (uint32_t t = 0; t < kThreads; ++t) EXPECT_EQ(next[t], kPerThread) << "thread " << t;
}

TEST(NativeThreads, ConcurrentReceiversShareOneStreamWithoutLossOrDuplication) {
  NativePair p;
  auto [c, s] = p.connected(7102);
  constexpr size_t kTotal = 256 * 1024;
  std::atomic<size_t> received{0};
  std::mutex mu;
  std::array<uint64_t, 256> histogram{};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&] {
      uint8_t buf[1000];
      std::array<uint64_t, 256> mine{};
      for (;;) {
        ssize_t k = p.b->recv(s, buf, sizeof buf, 0);
        if (k <= 0) break;  // EOF after the sender's shutdown
        for (ssize_t i = 0; i < k; ++i) mine[buf[i]]++;
        received += static_cast<size_t>(k);
      }
      std::lock_guard<std::mutex> lk(mu);
      for (size_t i = 0; i < 256; ++i) histogram[i] += mine[i];
    });
  }
  std::vector<uint8_t> data(kTotal);
  for (size_t i = 0; i < kTotal; ++i) data[i] = static_cast<uint8_t>(i * 13 + i / 256);
  size_t off = 0;
  while (off < kTotal) {
    ssize_t k = p.a->send(c, data.data() + off, std::min<size_t>(kTotal - off, 3000), 0);
    ASSERT_GT(k, 0);
    off += static_cast<size_t>(k);
  }
  ASSERT_EQ(p.a->shutdown(c, SHUT_WR), 0);
  for (auto& th : readers) th.join();  // each sees EOF once the stream is drained
  EXPECT_EQ(received.load(), kTotal);
  std::array<uint64_t, 256> want{};
  for (uint8_t v : data) want[v]++;
  EXPECT_EQ(histogram, want) << "bytes lost or delivered twice";
}

TEST(NativeThreads, TwoThreadsAcceptingShareTheConnections) {
  NativePair p;
  int l = p.listen_b(7103, SOCK_NONBLOCK);  // the loser of a race gets EAGAIN, not a wait
  constexpr int kConns = 12;
  std::mutex mu;
  std::vector<uint16_t> peer_ports;
  std::atomic<int> accepted{0};
  auto acceptor = [&] {
    while (accepted.load() < kConns) {
      sockaddr_in from{};
      socklen_t fl = sizeof from;
      pollfd pf{l, POLLIN, 0};
      if (p.b->poll(&pf, 1, 100) <= 0) continue;
      int fd = p.b->accept4(l, reinterpret_cast<sockaddr*>(&from), &fl, 0);
      if (fd < 0) continue;  // the other thread took it: EAGAIN
      accepted++;
      std::lock_guard<std::mutex> lk(mu);
      peer_ports.push_back(ntohs(from.sin_port));
    }
  };
  std::thread t1(acceptor), t2(acceptor);
  std::vector<int> clients;
  for (int i = 0; i < kConns; ++i) {
    int fd = p.a->socket(AF_INET, SOCK_STREAM, 0);
    auto to = sin_of(kB, 7103);
    ASSERT_EQ(p.a->connect(fd, sa(to), sizeof to), 0) << strerror(errno);
    clients.push_back(fd);
  }
  t1.join();
  t2.join();
  EXPECT_EQ(accepted.load(), kConns);
  std::sort(peer_ports.begin(), peer_ports.end());
  EXPECT_EQ(std::adjacent_find(peer_ports.begin(), peer_ports.end()), peer_ports.end())
      << "a connection accepted twice";
  EXPECT_EQ(peer_ports.size(), static_cast<size_t>(kConns));
}

TEST(NativeThreads, ABlockedCallDoesNotStallOtherThreads) {
  NativePair p;
  auto [c1, s1] = p.connected(7104);
  auto [c2, s2] = p.connected(7105);
  std::atomic<bool> blocked_returned{false};
  std::thread blocked([&] {
    char b[8];
    ssize_t k = p.b->recv(s1, b, sizeof b, 0);  // nothing arrives until the end
    blocked_returned = k == 4;
  });
  // Meanwhile, a full request/response exchange on another connection.
  auto t0 = Clock::now();
  char buf[32];
  for (int i = 0; i < 200; ++i) {
    ASSERT_EQ(p.a->send(c2, "ping", 4, 0), 4);
    ASSERT_TRUE(read_n(*p.b, s2, reinterpret_cast<uint8_t*>(buf), 4));
    ASSERT_EQ(p.b->send(s2, "pong", 4, 0), 4);
    ASSERT_TRUE(read_n(*p.a, c2, reinterpret_cast<uint8_t*>(buf), 4));
  }
  auto elapsed = Clock::now() - t0;
  EXPECT_LT(elapsed, std::chrono::seconds(5)) << "the exchange waited for the blocked thread";
  EXPECT_FALSE(blocked_returned.load());
  ASSERT_EQ(p.a->send(c1, "done", 4, 0), 4);
  blocked.join();
  EXPECT_TRUE(blocked_returned.load());
}

TEST(NativeThreads, ThreadsOnDifferentSocketsInParallel) {
  NativePair p;
  constexpr int kPairs = 4;
  std::vector<std::pair<int, int>> conns;
  for (int i = 0; i < kPairs; ++i) conns.push_back(p.connected(static_cast<uint16_t>(7110 + i)));
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kPairs; ++i) {
    threads.emplace_back([&, i] {
      auto [c, s] = conns[i];
      uint8_t rec[kRecord], got[kRecord];
      for (uint32_t n = 0; n < 300; ++n) {
        make_record(rec, static_cast<uint32_t>(i), n);
        if (p.a->send(c, rec, kRecord, 0) != static_cast<ssize_t>(kRecord)) return;
        if (!read_n(*p.b, s, got, kRecord) || std::memcmp(rec, got, kRecord) != 0) return;
        if (p.b->send(s, got, kRecord, 0) != static_cast<ssize_t>(kRecord)) return;
        if (!read_n(*p.a, c, got, kRecord) || std::memcmp(rec, got, kRecord) != 0) return;
      }
      ok++;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kPairs);
}

}  // namespace
}  // namespace xs
