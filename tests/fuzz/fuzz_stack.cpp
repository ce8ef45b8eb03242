// Feeds arbitrary frame sequences into a whole Stack (a TCP listener, an
// active TCP connection and a UDP socket exist) with time advancing between
// frames. Checksums are repaired before delivery so the fuzzer explores the
// protocol state machines instead of stopping at checksum checks.
//
// Input: repeated records [flags:1][delay_ms:1][len:2][frame:len].
//   flags bit0: address the frame to the stack (MAC and IPv4 destination)
//   flags bit1: repair checksums
//   flags bit2: the application reads / writes on its sockets after the frame
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "stack/stack.hpp"
#include "stack/tcp/tcp_socket.hpp"
#include "stack/udp/udp_socket.hpp"
#include "stack/wire/checksum.hpp"
#include "stack/wire/ethernet.hpp"
#include "stack/wire/ipv4.hpp"

namespace {

using namespace xs;

constexpr MacAddr kMac{{0x02, 0, 0, 0, 0, 2}};
constexpr Ipv4Addr kIp = Ipv4Addr::from_octets(198, 18, 0, 2);
constexpr Ipv4Addr kPeer = Ipv4Addr::from_octets(198, 18, 0, 1);

class Sink final : public FrameSink {
 public:
  MutBytes tx_acquire() override { return MutBytes(buf_.data(), buf_.size()); }
  void tx_commit(size_t len) override { sent += len; }
  size_t max_frame_len() const override { return 1514; }
  size_t sent = 0;

 private:
  std::array<uint8_t, 1514> buf_{};
};

void repair(uint8_t* f, size_t len, bool retarget) {
  if (len < kEthHeaderLen) return;
  if (retarget) std::memcpy(f, kMac.b.data(), 6);
  if (load_be16(f + 12) != ethertype::kIpv4 || len < kEthHeaderLen + kIpv4MinHeaderLen) return;
  uint8_t* ip = f + kEthHeaderLen;
  size_t room = len - kEthHeaderLen;
  size_t ihl = size_t(ip[0] & 0xf) * 4;
  if ((ip[0] >> 4) != 4 || ihl < 20 || ihl > room) return;
  if (retarget) store_be32(ip + 16, kIp.v);
  size_t total = load_be16(ip + 2);
  if (total < ihl || total > room) {
    total = room;
    store_be16(ip + 2, static_cast<uint16_t>(total));
  }
  store_be16(ip + 10, 0);
  store_be16(ip + 10, internet_checksum(Bytes(ip, ihl)));
  uint8_t proto = ip[9];
  uint8_t* l4 = ip + ihl;
  size_t l4len = total - ihl;
  Ipv4Addr src{load_be32(ip + 12)}, dst{load_be32(ip + 16)};
  if (proto == 6 && l4len >= 20) {
    store_be16(l4 + 16, 0);
    uint64_t acc = pseudo_header_sum(src, dst, 6, static_cast<uint16_t>(l4len));
    store_be16(l4 + 16, csum_fold(csum_partial(Bytes(l4, l4len), acc)));
  } else if (proto == 17 && l4len >= 8) {
    store_be16(l4 + 4, static_cast<uint16_t>(l4len));
    store_be16(l4 + 6, 0);
    uint64_t acc = pseudo_header_sum(src, dst, 17, static_cast<uint16_t>(l4len));
    uint16_t c = csum_fold(csum_partial(Bytes(l4, l4len), acc));
    store_be16(l4 + 6, c ? c : 0xffff);
  } else if (proto == 1 && l4len >= 8) {
    store_be16(l4 + 2, 0);
    store_be16(l4 + 2, internet_checksum(Bytes(l4, l4len)));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  SeededRandom rng(1);
  Sink sink;
  StackConfig cfg;
  cfg.mac = kMac;
  cfg.addr = Ipv4Cidr{kIp, 24};
  cfg.gateway = Ipv4Addr::from_octets(198, 18, 0, 254);
  Stack st(cfg, rng, sink);
  (void)st.arp().insert_static(kPeer, MacAddr{{0x02, 0, 0, 0, 0, 1}});
  Instant now{1000000};
  TcpSocket* l = st.tcp().open();
  (void)l->bind({Ipv4Addr::any(), 80});
  (void)l->listen(2);
  TcpSocket* c = st.tcp().open();
  (void)c->connect(now, {kPeer, 5000});
  UdpSocket* u = st.udp().open();
  (void)u->bind({Ipv4Addr::any(), 53});
  std::vector<TcpSocket*> accepted;
  std::vector<uint8_t> frame;
  uint8_t app[4096];
  size_t off = 0;
  while (off + 4 <= size) {
    uint8_t flags = data[off];
    now += millis(data[off + 1]);
    size_t len = load_be16(data + off + 2);
    off += 4;
    len = std::min(len, size - off);
    frame.assign(data + off, data + off + len);
    off += len;
    if (flags & 2) repair(frame.data(), frame.size(), flags & 1);
    st.receive_frame(now, Bytes(frame.data(), frame.size()));
    st.poll(now);
    if (flags & 4) {
      while (auto a = l->accept(now)) accepted.push_back(*a);
      for (TcpSocket* s : accepted) {
        (void)s->recv(now, MutBytes(app, sizeof app));
        (void)s->send(now, Bytes(app, 100));
      }
      (void)c->send(now, Bytes(app, 200));
      (void)c->recv(now, MutBytes(app, sizeof app));
      (void)u->recv_from(MutBytes(app, sizeof app), false);
    }
  }
  // Run every timer to completion: retransmissions, keepalive, TIME_WAIT.
  for (int i = 0; i < 10000 && st.poll_at() != kNever; ++i) {
    now = max(now, st.poll_at());
    st.poll(now);
  }
  for (TcpSocket* s : accepted) s->close(now);
  c->close(now);
  l->close(now);
  st.udp().close(u);
  for (int i = 0; i < 10000 && st.poll_at() != kNever; ++i) {
    now = max(now, st.poll_at());
    st.poll(now);
  }
  return 0;
}
