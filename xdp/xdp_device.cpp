#include "xdp/xdp_device.hpp"

#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace xs {

namespace {

// A lent frame's handle: queue in the top 16 bits, UMEM address below
// (UMEMs are far below 2^48 bytes).
constexpr unsigned kHandleQueueShift = 48;
constexpr uint64_t kHandleAddrMask = (uint64_t(1) << kHandleQueueShift) - 1;

struct LinkInfo {
  MacAddr mac;
  uint32_t mtu = 0;
};

Expected<LinkInfo, std::string> query_link(const std::string& ifname) {
  if (ifname.size() >= IFNAMSIZ) return unexpected("xdp device: interface name too long: " + ifname);
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return unexpected(std::string("xdp device: socket: ") + strerror(errno));
  LinkInfo out;
  ifreq ifr{};
  memcpy(ifr.ifr_name, ifname.c_str(), ifname.size() + 1);
  if (ioctl(fd, SIOCGIFHWADDR, &ifr) != 0) {
    const int e = errno;
    close(fd);
    return unexpected("xdp device: SIOCGIFHWADDR " + ifname + ": " + strerror(e));
  }
  memcpy(out.mac.b.data(), ifr.ifr_hwaddr.sa_data, 6);
  if (ioctl(fd, SIOCGIFMTU, &ifr) != 0) {
    const int e = errno;
    close(fd);
    return unexpected("xdp device: SIOCGIFMTU " + ifname + ": " + strerror(e));
  }
  out.mtu = uint32_t(ifr.ifr_mtu);
  close(fd);
  return out;
}

}  // namespace

Expected<std::unique_ptr<XdpDevice>, std::string> XdpDevice::open(const XdpDeviceConfig& cfg) {
  if (cfg.queues == 0 || cfg.queues > kMaxXskSlots) {
    return unexpected(std::string("xdp device: queues must be 1..") + std::to_string(kMaxXskSlots));
  }
  std::unique_ptr<XdpDevice> d(new XdpDevice());
  d->cfg_ = cfg;
  d->ifindex_ = int(if_nametoindex(cfg.ifname.c_str()));
  if (d->ifindex_ == 0) return unexpected("xdp device: no interface " + cfg.ifname + ": " + strerror(errno));
  auto link = query_link(cfg.ifname);
  if (!link) return unexpected(link.error());
  d->mac_ = link->mac;
  d->mtu_ = link->mtu;
  // The kernel drops a received frame longer than the chunk minus its headroom.
  if (d->mtu_ + 14 > cfg.frame_size - XskSocket::kRxHeadroom) {
    return unexpected("xdp device: MTU " + std::to_string(d->mtu_) + " of " + cfg.ifname +
                      " does not fit frame_size " + std::to_string(cfg.frame_size) +
                      " (frames up to frame_size - 256 bytes; use 4096 or lower the MTU)");
  }

  auto prog = XdpProgram::attach(d->ifindex_, XdpProgramOptions{cfg.replace_foreign_program});
  if (!prog) return unexpected(prog.error());
  d->program_ = std::move(*prog);

  for (uint32_t q = 0; q < cfg.queues; ++q) {
    XskConfig xc;
    xc.ifname = cfg.ifname;
    xc.queue_id = q;
    xc.frame_size = cfg.frame_size;
    xc.frame_count = cfg.frame_count;
    xc.rx_size = cfg.rx_ring;
    xc.tx_size = cfg.tx_ring;
    xc.fill_size = cfg.fill_ring;
    xc.comp_size = cfg.comp_ring;
    xc.force_copy = cfg.force_copy;
    xc.busy_poll = cfg.busy_poll;
    xc.busy_poll_usecs = cfg.busy_poll_usecs;
    xc.busy_poll_budget = cfg.busy_poll_budget;
    xc.max_frame_len = d->mtu_ + 14;
    xc.lend_limit = cfg.lend_limit;
    auto s = XskSocket::create(xc);
    if (!s) return unexpected(s.error());
    if (auto st = d->program_->set_socket(q, (*s)->fd()); !st) return unexpected(st.error());
    d->sockets_.push_back(std::move(*s));
  }
  return d;
}

XdpDevice::~XdpDevice() {
  // Program first: no frame is redirected to a socket being closed.
  program_.reset();
  sockets_.clear();
}

int XdpDevice::poll_rx(RxHandler on_frame, int max) {
  int total = 0;
  const size_t n = sockets_.size();
  for (size_t i = 0; i < n && total < max; ++i) {
    const size_t q = (rr_ + i) % n;
    XskSocket& s = *sockets_[q];
    s.drain_completions();
    rx_queue_ = q;
    total += s.poll_rx(on_frame, max - total);
    rx_queue_ = kNoQueue;
  }
  rr_ = (rr_ + 1) % n;
  return total;
}

std::optional<uint64_t> XdpDevice::hold(Bytes bytes) {
  if (rx_queue_ == kNoQueue) return std::nullopt;
  const std::optional<uint64_t> addr = sockets_[rx_queue_]->hold_current(bytes);
  if (!addr) return std::nullopt;
  return (uint64_t(rx_queue_) << kHandleQueueShift) | *addr;
}

void XdpDevice::release(uint64_t handle) {
  const uint64_t q = handle >> kHandleQueueShift;
  if (q >= sockets_.size()) {
    ++bad_releases_;
    return;
  }
  sockets_[q]->release_lent(handle & kHandleAddrMask);
}

bool XdpDevice::tx_pending() const {
  for (const auto& s : sockets_) {
    if (s->tx_pending() > 0) return true;
  }
  return false;
}

void XdpDevice::flush_tx() {
  for (auto& s : sockets_) {
    if (s->tx_pending() > 0) {
      s->flush();
    } else {
      s->drain_completions();
    }
  }
}

std::vector<int> XdpDevice::fds() const {
  std::vector<int> out;
  out.reserve(sockets_.size());
  for (const auto& s : sockets_) out.push_back(s->fd());
  return out;
}

Status<std::string> XdpDevice::add_flow(FlowProto proto, Ipv4Addr dst, uint16_t port) {
  return program_->add_flow(proto, dst, port, kSlotRxQueue);
}

Status<std::string> XdpDevice::remove_flow(FlowProto proto, Ipv4Addr dst, uint16_t port) {
  return program_->remove_flow(proto, dst, port);
}

MutBytes XdpDevice::tx_acquire() { return sockets_[tx_queue_]->tx_acquire(); }
void XdpDevice::tx_commit(size_t len) { sockets_[tx_queue_]->tx_commit(len); }
size_t XdpDevice::max_frame_len() const { return sockets_[tx_queue_]->max_frame_len(); }
void XdpDevice::set_tx_queue(uint32_t q) { tx_queue_ = q < sockets_.size() ? q : 0; }

XdpDeviceCounters XdpDevice::counters() const {
  XdpDeviceCounters c;
  for (const auto& s : sockets_) {
    c.xsk += s->counters();
    if (auto k = s->kernel_stats()) c.kernel += *k;
  }
  c.xsk.lend_bad_release += bad_releases_;
  c.program = program_->stats();
  return c;
}

std::string XdpDevice::check_invariant() const {
  for (size_t q = 0; q < sockets_.size(); ++q) {
    if (std::string why = sockets_[q]->check_invariant(); !why.empty()) {
      return "queue " + std::to_string(q) + ": " + why;
    }
  }
  return {};
}

}  // namespace xs
