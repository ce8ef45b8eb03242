// The AF_XDP device (xdp/) against the kernel, over a veth pair joining two
// network namespaces that each test creates and deletes:
//
//   namespace A (the test process, after setns)     namespace B (kernel only)
//   va 198.18.0.1/24  + dedicated 198.18.0.3  <-->  vb 198.18.0.2/24 (tx csum off)
//       XDP program + AF_XDP sockets
//
// Needs root. With CI=true a test that cannot run fails; elsewhere it skips.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "stack/base/bytes.hpp"
#include "stack/wire/checksum.hpp"
#include "xdp/frame_pool.hpp"
#include "xdp/xdp_device.hpp"
#include "xdp/xdp_program.hpp"
#include "tests/veth/netns_pair.hpp"

namespace xs {
namespace {

using vethtest::in_ci;
using vethtest::sh;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr Ipv4Addr kIpA = Ipv4Addr::from_octets(198, 18, 0, 1);
constexpr Ipv4Addr kIpB = Ipv4Addr::from_octets(198, 18, 0, 2);
constexpr Ipv4Addr kIpDedicated = Ipv4Addr::from_octets(198, 18, 0, 3);

// ---------------------------------------------------------------- frame pool (no root)

TEST(XdpFramePool, TakeMoveAndInvariant) {
  FramePool p(8, 2048);
  EXPECT_EQ(p.check_invariant(), "");
  auto a = p.take(FramePool::State::kFill);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(*a, 0u);
  EXPECT_EQ(p.count(FramePool::State::kFill), 1u);
  // The kernel returns an RX descriptor pointing 256 bytes into the chunk.
  EXPECT_TRUE(p.move(*a + 256, FramePool::State::kFill, FramePool::State::kRx));
  EXPECT_TRUE(p.move(*a + 256, FramePool::State::kRx, FramePool::State::kFree));
  EXPECT_EQ(p.free_count(), 8u);
  EXPECT_EQ(p.check_invariant(), "");
}

TEST(XdpFramePool, RejectsDoubleFreeWrongStateAndOutsideAddresses) {
  FramePool p(4, 4096);
  auto a = p.take(FramePool::State::kTxInFlight);
  ASSERT_TRUE(a.has_value());
  EXPECT_FALSE(p.move(*a, FramePool::State::kFill, FramePool::State::kFree));  // wrong state
  EXPECT_TRUE(p.move(*a, FramePool::State::kTxInFlight, FramePool::State::kFree));
  EXPECT_FALSE(p.move(*a, FramePool::State::kTxInFlight, FramePool::State::kFree));  // twice
  EXPECT_FALSE(p.move(*a, FramePool::State::kFree, FramePool::State::kFree));
  EXPECT_FALSE(p.move(4 * 4096, FramePool::State::kFill, FramePool::State::kFree));  // outside
  EXPECT_EQ(p.check_invariant(), "");
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(p.take(FramePool::State::kFill).has_value());
  EXPECT_FALSE(p.take(FramePool::State::kFill).has_value());
  EXPECT_EQ(p.check_invariant(), "");
}

TEST(XdpProgramObject, EmbeddedObjectIsBpfElf) {
  const Bytes obj = XdpProgram::embedded_object();
  ASSERT_GT(obj.size(), 64u);
  EXPECT_EQ(obj[0], 0x7f);
  EXPECT_EQ(obj[1], 'E');
  EXPECT_EQ(obj[2], 'L');
  EXPECT_EQ(obj[3], 'F');
  EXPECT_EQ(obj[18] | obj[19] << 8, 247);  // e_machine (little endian) = EM_BPF
}

// ---------------------------------------------------------------- the veth lab fixture

class XdpVeth : public vethtest::NetnsPair {
 protected:
  void SetUp() override {
    const std::string q = std::to_string(queues());
    // The kernel peer must put full checksums on the wire (AFXDP-NOTES).
    set_up_pair("", "numtxqueues " + q + " numrxqueues " + q, {"ip netns exec {b} ethtool -K vb tx off"});
  }

  virtual uint32_t queues() const { return 1; }

  XdpDeviceConfig device_config() const {
    XdpDeviceConfig c;
    c.ifname = "va";
    c.queues = queues();
    c.frame_count = 1024;
    c.rx_ring = 512;
    c.tx_ring = 512;
    c.fill_ring = 512;
    c.comp_ring = 512;
    return c;
  }

  std::unique_ptr<XdpDevice> open_device(const XdpDeviceConfig& c) {
    auto d = XdpDevice::open(c);
    EXPECT_TRUE(d.has_value()) << (d ? "" : d.error());
    return d ? std::move(*d) : nullptr;
  }

  // A kernel UDP socket bound to addr:port in namespace B (or A).
  int udp_socket(bool in_b, Ipv4Addr addr, uint16_t port) {
    if (in_b) {
      EXPECT_EQ(setns(fd_b_, CLONE_NEWNET), 0);
    }
    const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (in_b) {
      EXPECT_EQ(setns(fd_a_, CLONE_NEWNET), 0);
    }
    EXPECT_GE(fd, 0);
    sockaddr_in sa = make_sa(addr, port);
    EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0) << strerror(errno);
    sockets_.push_back(fd);
    return fd;
  }

  static sockaddr_in make_sa(Ipv4Addr addr, uint16_t port) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(addr.v);
    return sa;
  }

  static void send_udp(int fd, Ipv4Addr dst, uint16_t port, const std::string& payload) {
    sockaddr_in sa = make_sa(dst, port);
    ASSERT_EQ(sendto(fd, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)),
              ssize_t(payload.size()))
        << strerror(errno);
  }

  // Waits up to `timeout` for a datagram on a kernel socket; "" on timeout.
  static std::string recv_udp(int fd, std::chrono::milliseconds timeout = 2000ms) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, int(timeout.count())) <= 0) return {};
    char buf[4096];
    const ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    return n > 0 ? std::string(buf, size_t(n)) : std::string();
  }

  // Polls the device until `done()` or the deadline; each frame goes to on_frame.
  template <class F, class Done>
  static void pump(XdpDevice& dev, F&& on_frame, Done&& done, std::chrono::milliseconds timeout = 2000ms) {
    const auto deadline = Clock::now() + timeout;
    std::vector<pollfd> pfds;
    for (int fd : dev.fds()) pfds.push_back(pollfd{fd, POLLIN, 0});
    while (!done() && Clock::now() < deadline) {
      if (dev.poll_rx(on_frame, 64) == 0) poll(pfds.data(), nfds_t(pfds.size()), 10);
    }
  }

  MacAddr mac_of_vb() {
    EXPECT_EQ(setns(fd_b_, CLONE_NEWNET), 0);
    const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq ifr{};
    strcpy(ifr.ifr_name, "vb");
    MacAddr m;
    if (ioctl(fd, SIOCGIFHWADDR, &ifr) == 0) memcpy(m.b.data(), ifr.ifr_hwaddr.sa_data, 6);
    close(fd);
    EXPECT_EQ(setns(fd_a_, CLONE_NEWNET), 0);
    return m;
  }

};

// ---------------------------------------------------------------- frame helpers

struct UdpView {
  bool ok = false;
  Ipv4Addr src, dst;
  uint16_t sport = 0, dport = 0;
  std::string payload;
  bool csum_ok = false;
};

// Parses Ethernet + IPv4 (no options expected from the kernel) + UDP.
UdpView parse_udp(Bytes f) {
  UdpView v;
  if (f.size() < 14 + 20 + 8 || load_be16(f.data() + 12) != 0x0800) return v;
  const uint8_t* ip = f.data() + 14;
  const size_t ihl = size_t(ip[0] & 0xf) * 4;
  if ((ip[0] >> 4) != 4 || ip[9] != 17 || f.size() < 14 + ihl + 8) return v;
  const uint8_t* udp = ip + ihl;
  const uint16_t ulen = load_be16(udp + 4);
  if (ulen < 8 || 14 + ihl + ulen > f.size()) return v;
  v.src = Ipv4Addr{load_be32(ip + 12)};
  v.dst = Ipv4Addr{load_be32(ip + 16)};
  v.sport = load_be16(udp);
  v.dport = load_be16(udp + 2);
  v.payload.assign(reinterpret_cast<const char*>(udp + 8), ulen - 8);
  v.csum_ok = load_be16(udp + 6) == 0 || csum_verify(Bytes(udp, ulen), pseudo_header_sum(v.src, v.dst, 17, ulen));
  v.ok = true;
  return v;
}

// Writes Ethernet + IPv4 + UDP (with checksums) into buf; returns the length.
size_t build_udp(MutBytes buf, MacAddr src_mac, MacAddr dst_mac, Ipv4Addr src, Ipv4Addr dst, uint16_t sport,
                 uint16_t dport, const std::string& payload) {
  const size_t ulen = 8 + payload.size();
  const size_t total = 14 + 20 + ulen;
  if (buf.size() < total) return 0;
  uint8_t* p = buf.data();
  memcpy(p, dst_mac.b.data(), 6);
  memcpy(p + 6, src_mac.b.data(), 6);
  store_be16(p + 12, 0x0800);
  uint8_t* ip = p + 14;
  memset(ip, 0, 20);
  ip[0] = 0x45;
  store_be16(ip + 2, uint16_t(20 + ulen));
  store_be16(ip + 6, 0x4000);  // DF
  ip[8] = 64;
  ip[9] = 17;
  store_be32(ip + 12, src.v);
  store_be32(ip + 16, dst.v);
  store_be16(ip + 10, internet_checksum(Bytes(ip, 20)));
  uint8_t* udp = ip + 20;
  store_be16(udp, sport);
  store_be16(udp + 2, dport);
  store_be16(udp + 4, uint16_t(ulen));
  store_be16(udp + 6, 0);
  memcpy(udp + 8, payload.data(), payload.size());
  uint16_t c = csum_fold(csum_partial(Bytes(udp, ulen), pseudo_header_sum(src, dst, 17, uint16_t(ulen))));
  store_be16(udp + 6, c == 0 ? 0xffff : c);
  return total;
}

bool send_frame(XdpDevice& dev, MacAddr dst_mac, Ipv4Addr src, Ipv4Addr dst, uint16_t sport, uint16_t dport,
                const std::string& payload) {
  MutBytes buf = dev.tx_acquire();
  if (buf.empty()) return false;
  const size_t n = build_udp(buf, dev.mac(), dst_mac, src, dst, sport, dport, payload);
  dev.tx_commit(n);
  return n != 0;
}

// ---------------------------------------------------------------- (a) (b) steering

TEST_F(XdpVeth, UdpToInstalledFlowArrivesThroughXsk) {
  auto dev = open_device(device_config());
  ASSERT_TRUE(dev);
  EXPECT_NE(dev->program().prog_id(), 0u);
  EXPECT_EQ(*XdpProgram::attached_prog_id(ifindex_), dev->program().prog_id());
  EXPECT_EQ(dev->mtu(), 1500u);
  EXPECT_EQ(dev->max_frame_len(), 1514u);
  ASSERT_TRUE(dev->add_flow(FlowProto::kUdp, kIpA, 9000));

  const int b = udp_socket(true, kIpB, 40000);
  send_udp(b, kIpA, 9000, "hello through the XSK");

  std::vector<UdpView> got;
  pump(*dev, [&](Bytes f) {
    UdpView v = parse_udp(f);
    if (v.ok && v.dport == 9000) got.push_back(v);
  }, [&] { return !got.empty(); });
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, "hello through the XSK");
  EXPECT_EQ(got[0].src, kIpB);
  EXPECT_EQ(got[0].sport, 40000);
  EXPECT_TRUE(got[0].csum_ok) << "kernel peer should send full checksums (tx off)";
  const auto c = dev->counters();
  EXPECT_GE(c.xsk.rx_frames, 1u);
  EXPECT_GE(c.program.redirected, 1u);
  EXPECT_GE(c.program.passed, 1u);  // at least the ARP exchange went to the kernel
  EXPECT_EQ(c.xsk.bad_descs, 0u);
  EXPECT_EQ(dev->check_invariant(), "");
}

TEST_F(XdpVeth, OtherPortsStillReachTheKernel) {
  auto dev = open_device(device_config());
  ASSERT_TRUE(dev);
  ASSERT_TRUE(dev->add_flow(FlowProto::kUdp, kIpA, 9000));
  const int a = udp_socket(false, kIpA, 9001);
  const int b = udp_socket(true, kIpB, 40001);
  send_udp(b, kIpA, 9001, "to the kernel");
  EXPECT_EQ(recv_udp(a), "to the kernel");

  // Removing the flow gives port 9000 back to the kernel too.
  const int a9000 = udp_socket(false, kIpA, 9000);
  ASSERT_TRUE(dev->remove_flow(FlowProto::kUdp, kIpA, 9000));
  send_udp(b, kIpA, 9000, "flow removed");
  EXPECT_EQ(recv_udp(a9000), "flow removed");
  int xsk_frames = 0;
  pump(*dev, [&](Bytes) { ++xsk_frames; }, [] { return false; }, 100ms);
  EXPECT_EQ(xsk_frames, 0);
}

// ---------------------------------------------------------------- (c) TX

TEST_F(XdpVeth, FrameSentThroughXskReachesKernelSocket) {
  auto dev = open_device(device_config());
  ASSERT_TRUE(dev);
  const MacAddr vb = mac_of_vb();
  const int b = udp_socket(true, kIpB, 9100);
  ASSERT_TRUE(send_frame(*dev, vb, kIpA, kIpB, 9000, 9100, "hand-built frame"));
  dev->flush_tx();
  EXPECT_EQ(recv_udp(b), "hand-built frame");
  const auto c = dev->counters();
  EXPECT_EQ(c.xsk.tx_frames, 1u);
  EXPECT_GE(c.xsk.kicks, 1u);
  EXPECT_EQ(c.kernel.tx_invalid_descs, 0u);
  // On veth the completion is ready when sendto returns.
  EXPECT_EQ(dev->socket(0).frames().count(FramePool::State::kTxInFlight), 0u);
  EXPECT_EQ(dev->check_invariant(), "");
}

// A dedicated address the kernel does not have: the stack answers ARP itself.
TEST_F(XdpVeth, DedicatedAddressGetsArpIcmpAndUdp) {
  auto dev = open_device(device_config());
  ASSERT_TRUE(dev);
  ASSERT_TRUE(dev->add_flow(FlowProto::kArp, kIpDedicated, 0));
  ASSERT_TRUE(dev->add_flow(FlowProto::kIcmp, kIpDedicated, 0));
  ASSERT_TRUE(dev->add_flow(FlowProto::kUdp, kIpDedicated, 0));  // every port

  const int b = udp_socket(true, kIpB, 40002);
  send_udp(b, kIpDedicated, 7000, "to the dedicated address");

  bool answered = false;
  std::string udp_payload;
  auto on_frame = [&](Bytes f) {
    if (f.size() >= 42 && load_be16(f.data() + 12) == 0x0806) {
      const uint8_t* arp = f.data() + 14;
      if (load_be16(arp + 6) != 1 || load_be32(arp + 24) != kIpDedicated.v) return;
      // ARP reply: we are 198.18.0.3 at va's MAC.
      MutBytes out = dev->tx_acquire();
      ASSERT_GE(out.size(), 42u);
      uint8_t* p = out.data();
      memcpy(p, f.data() + 6, 6);
      memcpy(p + 6, dev->mac().b.data(), 6);
      store_be16(p + 12, 0x0806);
      uint8_t* r = p + 14;
      memcpy(r, arp, 6);  // htype, ptype, hlen, plen
      store_be16(r + 6, 2);
      memcpy(r + 8, dev->mac().b.data(), 6);
      store_be32(r + 14, kIpDedicated.v);
      memcpy(r + 18, arp + 8, 10);  // sender MAC + IP become target
      dev->tx_commit(42);
      dev->flush_tx();
      answered = true;
      return;
    }
    UdpView v = parse_udp(f);
    if (v.ok && v.dst == kIpDedicated) udp_payload = v.payload;
  };
  pump(*dev, on_frame, [&] { return !udp_payload.empty(); }, 3000ms);
  EXPECT_TRUE(answered) << "no ARP request for 198.18.0.3 reached the XSK";
  EXPECT_EQ(udp_payload, "to the dedicated address");

  // ICMP echo to the dedicated address (B's kernel now knows its MAC).
  EXPECT_EQ(setns(fd_b_, CLONE_NEWNET), 0);
  const int raw = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
  EXPECT_EQ(setns(fd_a_, CLONE_NEWNET), 0);
  ASSERT_GE(raw, 0);
  sockets_.push_back(raw);
  uint8_t echo[16] = {8, 0, 0, 0, 0x12, 0x34, 0, 1, 'x', 's', 't', 'a', 'c', 'k', '!', '!'};
  store_be16(echo + 2, internet_checksum(Bytes(echo, sizeof(echo))));
  sockaddr_in sa = make_sa(kIpDedicated, 0);
  ASSERT_EQ(sendto(raw, echo, sizeof(echo), 0, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), ssize_t(sizeof(echo)));
  bool got_echo = false;
  pump(*dev, [&](Bytes f) {
    if (f.size() >= 14 + 20 + 8 && load_be16(f.data() + 12) == 0x0800 && f[14 + 9] == 1 && f[14 + 20] == 8) {
      got_echo = true;
    }
  }, [&] { return got_echo; });
  EXPECT_TRUE(got_echo);
  EXPECT_EQ(dev->check_invariant(), "");
}

// ---------------------------------------------------------------- (d) accounting

TEST_F(XdpVeth, FrameAccountingHoldsOverManyRxTxCycles) {
  auto dev = open_device(device_config());
  ASSERT_TRUE(dev);
  ASSERT_TRUE(dev->add_flow(FlowProto::kUdp, kIpA, 9000));
  const MacAddr vb = mac_of_vb();
  const int b_tx = udp_socket(true, kIpB, 40003);
  const int b_rx = udp_socket(true, kIpB, 9100);
  int rcvbuf = 4 << 20;
  setsockopt(b_rx, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf));

  constexpr int kRounds = 30;
  constexpr int kPerRound = 100;  // below veth's 256-entry ring: no drops expected
  int rx_total = 0;
  int kernel_rx_total = 0;
  for (int round = 0; round < kRounds; ++round) {
    for (int i = 0; i < kPerRound; ++i) send_udp(b_tx, kIpA, 9000, "rx " + std::to_string(round) + "/" + std::to_string(i));
    int rx_round = 0;
    pump(*dev, [&](Bytes f) {
      UdpView v = parse_udp(f);
      if (v.ok && v.dport == 9000) ++rx_round;
      ASSERT_EQ(dev->socket(0).frames().check_invariant(), "");  // a frame is held (kRx) right now
    }, [&] { return rx_round >= kPerRound; });
    rx_total += rx_round;
    for (int i = 0; i < kPerRound; ++i) {
      ASSERT_TRUE(send_frame(*dev, vb, kIpA, kIpB, 9000, 9100, "tx " + std::to_string(i))) << "round " << round;
      if (i % 37 == 0) dev->flush_tx();  // some commits go out early, most in the flush below
    }
    dev->flush_tx();
    ASSERT_EQ(dev->check_invariant(), "") << "round " << round;
    while (!recv_udp(b_rx, 200ms).empty()) {
      if (++kernel_rx_total % kPerRound == 0) break;
    }
  }
  EXPECT_EQ(rx_total, kRounds * kPerRound);
  EXPECT_EQ(kernel_rx_total, kRounds * kPerRound);
  const auto c = dev->counters();
  EXPECT_EQ(c.xsk.tx_frames, uint64_t(kRounds * kPerRound));
  EXPECT_EQ(c.xsk.bad_descs, 0u);
  EXPECT_EQ(c.xsk.kick_errors, 0u);
  EXPECT_EQ(c.kernel.rx_invalid_descs, 0u);
  EXPECT_EQ(c.kernel.tx_invalid_descs, 0u);
  EXPECT_EQ(c.kernel.rx_dropped, 0u);
  const FramePool& pool = dev->socket(0).frames();
  EXPECT_EQ(pool.count(FramePool::State::kTxInFlight), 0u);
  EXPECT_EQ(pool.count(FramePool::State::kFill) + pool.free_count(), pool.frame_count());
  EXPECT_EQ(dev->check_invariant(), "");
}

// A TX burst larger than one sendto's 32-descriptor budget goes out in one flush.
TEST_F(XdpVeth, FlushSendsABurstBeyondOneKick) {
  auto dev = open_device(device_config());
  ASSERT_TRUE(dev);
  const MacAddr vb = mac_of_vb();
  const int b_rx = udp_socket(true, kIpB, 9100);
  int rcvbuf = 4 << 20;
  setsockopt(b_rx, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf));
  constexpr int kBurst = 200;
  for (int i = 0; i < kBurst; ++i) ASSERT_TRUE(send_frame(*dev, vb, kIpA, kIpB, 9000, 9100, "b" + std::to_string(i)));
  EXPECT_EQ(dev->socket(0).flush(), 0u);
  int got = 0;
  while (!recv_udp(b_rx, 300ms).empty()) ++got;
  EXPECT_EQ(got, kBurst);
  EXPECT_GE(dev->counters().xsk.kicks, uint64_t(kBurst / 32));
  EXPECT_EQ(dev->check_invariant(), "");
}

TEST_F(XdpVeth, KernelStatsAndBusyPollOptions) {
  auto cfg = device_config();
  cfg.busy_poll = true;
  auto dev = open_device(cfg);
  ASSERT_TRUE(dev);
  EXPECT_TRUE(dev->socket(0).busy_poll());
  auto st = dev->socket(0).kernel_stats();
  ASSERT_TRUE(st.has_value()) << st.error();
  EXPECT_EQ(st->rx_invalid_descs, 0u);
  ASSERT_TRUE(dev->add_flow(FlowProto::kUdp, kIpA, 9000));
  const int b = udp_socket(true, kIpB, 40004);
  // An empty ring: each poll busy-polls the driver once.
  for (int i = 0; i < 3; ++i) dev->poll_rx([](Bytes) {}, 64);
  EXPECT_EQ(dev->socket(0).counters().busy_polls, 3u);
  send_udp(b, kIpA, 9000, "busy");
  int n = 0;
  EXPECT_EQ(dev->socket(0).counters().busy_poll_off, 0u);
  pump(*dev, [&](Bytes f) { n += parse_udp(f).dport == 9000; }, [&] { return n > 0; });
  EXPECT_EQ(n, 1);
  // veth registers its XDP RX queue without a NAPI id, so the kernel cannot
  // busy-poll the socket: after the first frame the socket stops calling
  // recvfrom() on an empty ring and spins on the ring alone.
  EXPECT_EQ(dev->socket(0).counters().busy_poll_off, 1u);
  EXPECT_FALSE(dev->socket(0).busy_poll());
  const uint64_t polls = dev->socket(0).counters().busy_polls;
  for (int i = 0; i < 100; ++i) dev->poll_rx([](Bytes) {}, 64);
  EXPECT_EQ(dev->socket(0).counters().busy_polls, polls);
  // Asking again starts over: busy polls until the next frame shows the same.
  EXPECT_TRUE(dev->socket(0).set_busy_poll(true));
  EXPECT_EQ(dev->socket(0).counters().busy_poll_off, 0u);
  dev->poll_rx([](Bytes) {}, 64);
  EXPECT_EQ(dev->socket(0).counters().busy_polls, polls + 1);
  send_udp(b, kIpA, 9000, "busy again");
  n = 0;
  pump(*dev, [&](Bytes f) { n += parse_udp(f).dport == 9000; }, [&] { return n > 0; });
  EXPECT_EQ(dev->socket(0).counters().busy_poll_off, 1u);
  EXPECT_TRUE(dev->socket(0).set_busy_poll(false));
}

TEST_F(XdpVeth, MtuMustFitTheFrameSize) {
  ASSERT_EQ(sh("ip link set dev va mtu 3000"), 0);
  auto cfg = device_config();
  auto small = XdpDevice::open(cfg);
  ASSERT_FALSE(small.has_value());
  EXPECT_NE(small.error().find("MTU 3000"), std::string::npos) << small.error();
  // Nothing is left attached by the failed open.
  EXPECT_EQ(*XdpProgram::attached_prog_id(ifindex_), 0u);
  cfg.frame_size = 4096;
  auto big = XdpDevice::open(cfg);
  ASSERT_TRUE(big.has_value()) << big.error();
  EXPECT_EQ((*big)->max_frame_len(), 3014u);
}

// ---------------------------------------------------------------- (e) lifetime of the program

TEST_F(XdpVeth, ProgramGoneAfterDeviceDestroyed) {
  auto dev = open_device(device_config());
  ASSERT_TRUE(dev);
  EXPECT_NE(*XdpProgram::attached_prog_id(ifindex_), 0u);
  dev.reset();
  EXPECT_EQ(*XdpProgram::attached_prog_id(ifindex_), 0u);
  std::string out;
  sh("ip link show dev va", &out);
  EXPECT_EQ(out.find("xdp"), std::string::npos) << out;
}

TEST_F(XdpVeth, ProgramGoneAfterOwnerIsKilled) {
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // The child inherits namespace A. Attach, report, wait to be killed.
    close(pipefd[0]);
    auto dev = XdpDevice::open(device_config());
    const char ok = dev ? 'y' : 'n';
    if (write(pipefd[1], &ok, 1) != 1) _exit(2);
    for (;;) pause();
  }
  close(pipefd[1]);
  char ok = 0;
  const ssize_t r = read(pipefd[0], &ok, 1);
  close(pipefd[0]);
  const uint32_t id = *XdpProgram::attached_prog_id(ifindex_);
  kill(pid, SIGKILL);  // before any assertion: the child must never outlive the test
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_EQ(r, 1);
  EXPECT_EQ(ok, 'y');
  EXPECT_NE(id, 0u);
  const auto deadline = Clock::now() + 1s;
  uint32_t now_id = id;
  while (Clock::now() < deadline) {
    now_id = *XdpProgram::attached_prog_id(ifindex_);
    if (now_id == 0) break;
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(now_id, 0u) << "the bpf_link should go with the killed process";
}

// A program attached via netlink (as by an older, crashed xstack) stays; the
// next open detects it and replaces it with a link.
TEST_F(XdpVeth, StaleNetlinkProgramIsReplaced) {
  const Bytes obj = XdpProgram::embedded_object();
  bpf_object* o = bpf_object__open_mem(obj.data(), obj.size(), nullptr);
  ASSERT_NE(o, nullptr);
  ASSERT_EQ(bpf_object__load(o), 0);
  bpf_program* prog = bpf_object__find_program_by_name(o, XdpProgram::kProgramName);
  ASSERT_NE(prog, nullptr);
  ASSERT_EQ(bpf_xdp_attach(ifindex_, bpf_program__fd(prog), XDP_FLAGS_DRV_MODE, nullptr), 0);
  bpf_object__close(o);  // the program stays attached without any fd
  const uint32_t stale = *XdpProgram::attached_prog_id(ifindex_);
  ASSERT_NE(stale, 0u);

  auto dev = open_device(device_config());
  ASSERT_TRUE(dev);
  EXPECT_EQ(dev->program().replaced_prog_id(), stale);
  EXPECT_NE(dev->program().prog_id(), stale);
  EXPECT_EQ(*XdpProgram::attached_prog_id(ifindex_), dev->program().prog_id());
  dev.reset();
  EXPECT_EQ(*XdpProgram::attached_prog_id(ifindex_), 0u);
}

// Same in generic (SKB) mode, which cannot coexist with a native program.
TEST_F(XdpVeth, StaleGenericModeProgramIsReplaced) {
  const Bytes obj = XdpProgram::embedded_object();
  bpf_object* o = bpf_object__open_mem(obj.data(), obj.size(), nullptr);
  ASSERT_NE(o, nullptr);
  ASSERT_EQ(bpf_object__load(o), 0);
  bpf_program* prog = bpf_object__find_program_by_name(o, XdpProgram::kProgramName);
  ASSERT_EQ(bpf_xdp_attach(ifindex_, bpf_program__fd(prog), XDP_FLAGS_SKB_MODE, nullptr), 0);
  bpf_object__close(o);
  std::string out;
  sh("ip link show dev va", &out);
  EXPECT_NE(out.find("xdpgeneric"), std::string::npos) << out;
  auto dev = open_device(device_config());
  ASSERT_TRUE(dev);
  EXPECT_NE(dev->program().replaced_prog_id(), 0u);
  sh("ip link show dev va", &out);
  EXPECT_EQ(out.find("xdpgeneric"), std::string::npos) << out;
}

// Someone else's program is not ours to remove unless asked.
TEST_F(XdpVeth, ForeignProgramIsRefusedUnlessReplacing) {
  // r0 = XDP_PASS; exit
  const bpf_insn insns[] = {
      {BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, XDP_PASS},
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
  };
  const int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "foreign_pass", "GPL", insns, 2, nullptr);
  ASSERT_GE(fd, 0) << strerror(errno);
  ASSERT_EQ(bpf_xdp_attach(ifindex_, fd, XDP_FLAGS_DRV_MODE, nullptr), 0);
  close(fd);
  auto cfg = device_config();
  auto refused = XdpDevice::open(cfg);
  ASSERT_FALSE(refused.has_value());
  EXPECT_NE(refused.error().find("foreign_pass"), std::string::npos) << refused.error();
  cfg.replace_foreign_program = true;
  auto dev = open_device(cfg);
  ASSERT_TRUE(dev);
  EXPECT_EQ(dev->program().replaced_prog_name(), "foreign_pass");
}

// A program owned by a live link (another running xstack) is never taken over.
TEST_F(XdpVeth, LiveOwnerIsNotDisplaced) {
  auto first = open_device(device_config());
  ASSERT_TRUE(first);
  auto second = XdpProgram::attach(ifindex_);
  ASSERT_FALSE(second.has_value());
  EXPECT_NE(second.error().find("live bpf_link"), std::string::npos) << second.error();
  EXPECT_EQ(*XdpProgram::attached_prog_id(ifindex_), first->program().prog_id());
}

// ---------------------------------------------------------------- (f) lending frames (zero-copy receive)

// Where a held UDP payload lives, what it must still say, and its handle.
struct HeldPayload {
  Bytes bytes;
  std::string expect;
  uint64_t handle = 0;
};

// The payload of a UDP frame to port 9000 as a span into the frame; empty
// when the frame is something else.
Bytes udp_payload_span(Bytes f) {
  UdpView v = parse_udp(f);
  if (!v.ok || v.dport != 9000) return {};
  return f.subspan(f.size() - v.payload.size(), v.payload.size());
}

// The UMEM chunk (2048-byte frame) a pointer lies in: the UMEM is mmapped,
// so chunk boundaries in memory match those in UMEM offsets.
uintptr_t chunk_ptr(const uint8_t* p) { return reinterpret_cast<uintptr_t>(p) & ~uintptr_t(2047); }

TEST_F(XdpVeth, LentFramesStayIntactWhileTrafficFlowsAndComeBack) {
  auto cfg = device_config();
  cfg.lend_limit = 8;
  auto dev = open_device(cfg);
  ASSERT_TRUE(dev);
  XskSocket& sock = dev->socket(0);
  EXPECT_EQ(sock.lend_limit(), 8u);
  ASSERT_TRUE(dev->add_flow(FlowProto::kUdp, kIpA, 9000));
  const int b = udp_socket(true, kIpB, 40010);
  EXPECT_FALSE(dev->hold(Bytes()).has_value());  // no poll running

  // Round 1: hold every datagram's payload; the first 8 are lent, the rest refused.
  constexpr int kFirst = 20;
  for (int i = 0; i < kFirst; ++i) send_udp(b, kIpA, 9000, "held payload " + std::to_string(i));
  std::vector<HeldPayload> held;
  int seen = 0, refused = 0;
  std::string inside_invariant;
  pump(*dev, [&](Bytes f) {
    // Accounting holds inside the callback too: this frame is kRx, held ones kLent.
    if (std::string why = dev->check_invariant(); !why.empty() && inside_invariant.empty()) inside_invariant = why;
    Bytes pl = udp_payload_span(f);
    if (pl.empty()) return;
    ++seen;
    const std::string text(reinterpret_cast<const char*>(pl.data()), pl.size());
    const auto h = dev->hold(pl);
    if (!h) {
      ++refused;
      return;
    }
    // Holding the same frame twice is refused: one holder per frame.
    EXPECT_FALSE(dev->hold(pl).has_value());
    held.push_back(HeldPayload{pl, text, *h});
    if (std::string why = dev->check_invariant(); !why.empty() && inside_invariant.empty()) inside_invariant = why;
  }, [&] { return seen >= kFirst; });
  ASSERT_EQ(seen, kFirst);
  EXPECT_EQ(inside_invariant, "");
  ASSERT_EQ(held.size(), 8u);
  EXPECT_EQ(refused, kFirst - 8);
  auto c = dev->counters();
  EXPECT_EQ(c.xsk.lent, 8u);
  EXPECT_EQ(c.xsk.lend_refused, uint64_t(kFirst - 8));
  EXPECT_EQ(sock.frames().count(FramePool::State::kLent), 8u);
  EXPECT_EQ(sock.frames().count(FramePool::State::kRx), 0u);
  EXPECT_EQ(dev->check_invariant(), "");
  std::set<uintptr_t> held_chunks;
  for (const HeldPayload& h : held) {
    EXPECT_EQ(h.handle >> 48, 0u);  // queue 0
    EXPECT_EQ(sock.frames().state_of(h.handle & 0xffffffffffffull), FramePool::State::kLent);
    held_chunks.insert(chunk_ptr(h.bytes.data()));
  }
  EXPECT_EQ(held_chunks.size(), 8u);
  // Outside the callback the last frame can no longer be held.
  EXPECT_FALSE(dev->hold(held.back().bytes).has_value());

  // Round 2: more traffic than the UMEM has frames, so every unlent frame is
  // recycled through the fill ring several times; the lent ones never are.
  constexpr int kRounds = 24, kPerRound = 100;  // below veth's 256-entry ring
  int redelivered_lent = 0;
  for (int r = 0; r < kRounds; ++r) {
    for (int i = 0; i < kPerRound; ++i) send_udp(b, kIpA, 9000, "filler " + std::to_string(r) + "/" + std::to_string(i));
    int got_round = 0;
    pump(*dev, [&](Bytes f) {
      if (held_chunks.count(chunk_ptr(f.data())) != 0) ++redelivered_lent;
      if (!udp_payload_span(f).empty()) ++got_round;
    }, [&] { return got_round >= kPerRound; });
    ASSERT_EQ(got_round, kPerRound) << "round " << r << ": traffic stopped while frames are lent";
    ASSERT_EQ(dev->check_invariant(), "") << "round " << r;
  }
  static_assert(kRounds * kPerRound > 2 * 1024, "every unlent frame must be recycled");
  EXPECT_EQ(redelivered_lent, 0) << "a lent frame went back to the kernel";
  for (const HeldPayload& h : held) {
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(h.bytes.data()), h.bytes.size()), h.expect);
  }
  c = dev->counters();
  EXPECT_EQ(c.xsk.lent, 8u);
  EXPECT_EQ(c.xsk.bad_descs, 0u);
  EXPECT_EQ(c.kernel.rx_dropped, 0u);

  // Release: the frames are free again and go back into circulation.
  for (const HeldPayload& h : held) dev->release(h.handle);
  c = dev->counters();
  EXPECT_EQ(c.xsk.lent, 0u);
  EXPECT_EQ(c.xsk.lend_bad_release, 0u);
  EXPECT_EQ(sock.frames().count(FramePool::State::kLent), 0u);
  EXPECT_EQ(dev->check_invariant(), "");
  // Releasing twice, or a handle naming no queue, is counted and harmless.
  dev->release(held[0].handle);
  dev->release((uint64_t(7) << 48) | (held[1].handle & 0xffffffffffffull));
  c = dev->counters();
  EXPECT_EQ(c.xsk.lend_bad_release, 2u);
  EXPECT_EQ(c.xsk.lent, 0u);
  EXPECT_EQ(dev->check_invariant(), "");

  // Released frames are ordinary free frames: on the free list or, once a
  // refill took them, on the fill ring again.
  for (const HeldPayload& h : held) {
    const FramePool::State st = sock.frames().state_of(h.handle & 0xffffffffffffull);
    EXPECT_TRUE(st == FramePool::State::kFree || st == FramePool::State::kFill) << FramePool::state_name(st);
  }

  // With room again, holds succeed up to the limit again.
  for (int i = 0; i < kPerRound; ++i) send_udp(b, kIpA, 9000, "after " + std::to_string(i));
  int after = 0;
  std::vector<uint64_t> again;
  pump(*dev, [&](Bytes f) {
    Bytes pl = udp_payload_span(f);
    if (pl.empty()) return;
    ++after;
    if (auto h = dev->hold(pl)) again.push_back(*h);
  }, [&] { return after >= kPerRound; });
  EXPECT_EQ(after, kPerRound);
  EXPECT_EQ(again.size(), 8u);
  EXPECT_EQ(dev->counters().xsk.lend_refused, uint64_t(kFirst - 8 + kPerRound - 8));
  for (uint64_t h : again) dev->release(h);
  EXPECT_EQ(dev->counters().xsk.lent, 0u);
  const FramePool& pool = sock.frames();
  EXPECT_EQ(pool.count(FramePool::State::kFill) + pool.free_count(), pool.frame_count());
  EXPECT_EQ(dev->check_invariant(), "");
}

// The device goes away with frames still lent: the UMEM is freed as a whole.
TEST_F(XdpVeth, DeviceDestroyedWithFramesLent) {
  auto dev = open_device(device_config());
  ASSERT_TRUE(dev);
  EXPECT_EQ(dev->socket(0).lend_limit(), device_config().frame_count / 4);  // the default
  ASSERT_TRUE(dev->add_flow(FlowProto::kUdp, kIpA, 9000));
  const int b = udp_socket(true, kIpB, 40011);
  for (int i = 0; i < 3; ++i) send_udp(b, kIpA, 9000, "kept " + std::to_string(i));
  int held = 0, seen = 0;
  pump(*dev, [&](Bytes f) {
    Bytes pl = udp_payload_span(f);
    if (pl.empty()) return;
    ++seen;
    held += dev->hold(pl).has_value();
  }, [&] { return seen >= 3; });
  EXPECT_EQ(held, 3);
  EXPECT_EQ(dev->counters().xsk.lent, 3u);
  EXPECT_EQ(dev->check_invariant(), "");
  dev.reset();
  EXPECT_EQ(*XdpProgram::attached_prog_id(ifindex_), 0u);
}

// ---------------------------------------------------------------- several queues

class XdpVethTwoQueues : public XdpVeth {
 protected:
  uint32_t queues() const override { return 2; }
};

TEST_F(XdpVethTwoQueues, FlowsFromManySourcePortsArriveOnBothSockets) {
  auto dev = open_device(device_config());
  ASSERT_TRUE(dev);
  ASSERT_EQ(dev->queue_count(), 2u);
  ASSERT_EQ(dev->fds().size(), 2u);
  ASSERT_TRUE(dev->add_flow(FlowProto::kUdp, kIpA, 9000));
  constexpr int kSenders = 32;
  for (int i = 0; i < kSenders; ++i) {
    const int b = udp_socket(true, kIpB, uint16_t(41000 + i));
    send_udp(b, kIpA, 9000, "q");
  }
  int got = 0;
  pump(*dev, [&](Bytes f) { got += parse_udp(f).dport == 9000; }, [&] { return got >= kSenders; });
  EXPECT_EQ(got, kSenders);
  const uint64_t q0 = dev->socket(0).counters().rx_frames;
  const uint64_t q1 = dev->socket(1).counters().rx_frames;
  RecordProperty("queue0_rx", std::to_string(q0));
  RecordProperty("queue1_rx", std::to_string(q1));
  // Which queue a flow lands on is the kernel peer's TX hash: only the total is certain.
  EXPECT_EQ(q0 + q1 >= uint64_t(kSenders), true);
  EXPECT_EQ(dev->check_invariant(), "");
}

// A handle names its queue: each frame goes back to the socket that lent it.
TEST_F(XdpVethTwoQueues, HeldFramesGoBackToTheirQueue) {
  auto dev = open_device(device_config());
  ASSERT_TRUE(dev);
  ASSERT_TRUE(dev->add_flow(FlowProto::kUdp, kIpA, 9000));
  constexpr int kSenders = 32;
  for (int i = 0; i < kSenders; ++i) {
    const int b = udp_socket(true, kIpB, uint16_t(42000 + i));
    send_udp(b, kIpA, 9000, "q" + std::to_string(i));
  }
  int got = 0;
  std::vector<uint64_t> handles;
  pump(*dev, [&](Bytes f) {
    Bytes pl = udp_payload_span(f);
    if (pl.empty()) return;
    ++got;
    if (auto h = dev->hold(pl)) handles.push_back(*h);
  }, [&] { return got >= kSenders; });
  ASSERT_EQ(got, kSenders);
  ASSERT_EQ(handles.size(), size_t(kSenders));  // far below 2 x 256 lendable
  uint64_t per_queue[2] = {0, 0};
  for (uint64_t h : handles) {
    ASSERT_LT(h >> 48, 2u);
    ++per_queue[h >> 48];
  }
  EXPECT_EQ(dev->socket(0).counters().lent, per_queue[0]);
  EXPECT_EQ(dev->socket(1).counters().lent, per_queue[1]);
  EXPECT_EQ(dev->check_invariant(), "");
  for (uint64_t h : handles) dev->release(h);
  EXPECT_EQ(dev->socket(0).counters().lent, 0u);
  EXPECT_EQ(dev->socket(1).counters().lent, 0u);
  EXPECT_EQ(dev->counters().xsk.lend_bad_release, 0u);
  EXPECT_EQ(dev->check_invariant(), "");
}

}  // namespace
}  // namespace xs
