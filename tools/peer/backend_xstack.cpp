// xstack-peer's xstack back end: an Engine on an AF_XDP device, used through
// the internal blocking API (socketapi/internal_api.hpp).
#include <cstdio>

#include "socketapi/internal_api.hpp"
#include "socketapi/kernel_host.hpp"
#include "socketapi/xdp_packet_device.hpp"
#include "tools/peer/backend.hpp"

namespace xs::peer {
namespace {

long report(const char* what, SockError e) {
  std::fprintf(stderr, "xstack-peer: %s: %s\n", what, to_string(e));
  return kError;
}

class XsConn final : public Conn {
 public:
  XsConn(Engine& e, TcpSocket* s) : e_(e), s_(s) { internal::tcp_set_nodelay(e_, s_, true); }
  ~XsConn() override { internal::tcp_close(e_, s_); }
  long send_all(Bytes data) override {
    auto r = internal::tcp_send_all(e_, s_, data, seconds(120));
    if (!r) return report("send", r.error());
    return static_cast<long>(*r);
  }
  long recv(MutBytes out, Duration timeout) override {
    auto r = internal::tcp_recv(e_, s_, out, timeout);
    if (!r) return r.error() == SockError::TimedOut ? kTimeout : report("recv", r.error());
    return static_cast<long>(*r);
  }
  void shutdown_write() override { internal::tcp_shutdown_write(e_, s_); }
  void set_keepalive(uint32_t idle_s, uint32_t interval_s, uint32_t count) override {
    internal::tcp_set_keepalive(e_, s_, seconds(idle_s), seconds(interval_s), count);
  }

 private:
  Engine& e_;
  TcpSocket* s_;
};

class XsListener final : public Listener {
 public:
  XsListener(Engine& e, TcpSocket* s) : e_(e), s_(s) {}
  ~XsListener() override { internal::tcp_close(e_, s_); }
  std::unique_ptr<Conn> accept(Duration timeout) override {
    auto r = internal::tcp_accept(e_, s_, timeout);
    if (!r) {
      if (r.error() != SockError::TimedOut) report("accept", r.error());
      return nullptr;
    }
    return std::make_unique<XsConn>(e_, *r);
  }

 private:
  Engine& e_;
  TcpSocket* s_;
};

class XsDatagram final : public Datagram {
 public:
  XsDatagram(Engine& e, UdpSocket* s) : e_(e), s_(s) {}
  ~XsDatagram() override { internal::udp_close(e_, s_); }
  long send_to(Bytes data, Endpoint to) override {
    auto r = internal::udp_send_to(e_, s_, data, to);
    if (!r) return report("sendto", r.error());
    return static_cast<long>(*r);
  }
  long recv_from(MutBytes out, Endpoint* from, Duration timeout) override {
    auto r = internal::udp_recv_from(e_, s_, out, timeout);
    if (!r) return r.error() == SockError::TimedOut ? kTimeout : report("recvfrom", r.error());
    *from = r->from;
    return static_cast<long>(r->copied);
  }

 private:
  Engine& e_;
  UdpSocket* s_;
};

class XsBackend final : public Backend {
 public:
  explicit XsBackend(std::unique_ptr<Engine> e) : e_(std::move(e)) {}
  ~XsBackend() override { e_->stop(); }
  std::unique_ptr<Listener> listen(uint16_t port) override {
    auto r = internal::tcp_listen(*e_, port, 128);
    if (!r) {
      report("listen", r.error());
      return nullptr;
    }
    return std::make_unique<XsListener>(*e_, *r);
  }
  std::unique_ptr<Conn> connect(Endpoint to, Duration timeout) override {
    auto r = internal::tcp_connect(*e_, to, timeout);
    if (!r) {
      report("connect", r.error());
      return nullptr;
    }
    return std::make_unique<XsConn>(*e_, *r);
  }
  std::unique_ptr<Datagram> udp_bind(uint16_t port) override {
    auto r = internal::udp_bind(*e_, port);
    if (!r) {
      report("udp bind", r.error());
      return nullptr;
    }
    return std::make_unique<XsDatagram>(*e_, *r);
  }
  void print_stats() override {
    std::lock_guard<std::mutex> lk(e_->mutex());
    const StackCounters& c = e_->stack_locked().counters();
    DeviceCounters d = e_->device_locked().counters();
    std::fprintf(stderr,
                 "xstack-peer stats: tcp out %llu retrans %llu in %llu; dev rx %llu tx %llu kicks %llu "
                 "rx_dropped %llu rx_ring_full %llu fill_empty %llu\n",
                 (unsigned long long)c.tcp_out_segs, (unsigned long long)c.tcp_retrans_segs,
                 (unsigned long long)c.tcp_in_segs, (unsigned long long)d.rx_frames,
                 (unsigned long long)d.tx_frames, (unsigned long long)d.tx_kicks,
                 (unsigned long long)d.rx_dropped, (unsigned long long)d.rx_ring_full,
                 (unsigned long long)d.rx_fill_empty);
  }

 private:
  std::unique_ptr<Engine> e_;
};

}  // namespace

std::unique_ptr<Backend> make_xstack_backend(const Options& o) {
  XdpDeviceConfig dc;
  dc.ifname = o.ifname;
  dc.queues = o.queues;
  dc.busy_poll = o.poll == PollMode::BusyPoll;
  dc.replace_foreign_program = true;  // the lab is ours: a program left by a crash is stale
  auto dev = XdpPacketDevice::open(dc);
  if (!dev) {
    std::fprintf(stderr, "xstack-peer: cannot open %s: %s\n", o.ifname.c_str(), dev.error().c_str());
    return nullptr;
  }
  EngineConfig ec;
  ec.addr = *o.addr;
  ec.gateway = o.gateway;
  ec.poll_mode = o.poll;
  ec.dedicated_ip = !o.shared_ip;
  std::unique_ptr<HostKernel> host;
  if (o.shared_ip) {
    auto h = KernelHost::open((*dev)->xdp().ifindex(), o.addr->addr);
    if (!h) {
      std::fprintf(stderr, "xstack-peer: rtnetlink: %s\n", h.error().c_str());
      return nullptr;
    }
    host = std::move(*h);
  }
  auto engine = std::make_unique<Engine>(ec, std::move(*dev), std::move(host));
  engine->start();
  return std::make_unique<XsBackend>(std::move(engine));
}

}  // namespace xs::peer
