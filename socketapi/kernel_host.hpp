// The HostKernel of a real shared-IP engine: neighbours and routes from
// rtnetlink (KernelNetWatcher), ports held by kernel sockets (PortReservations).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "socketapi/host_kernel.hpp"
#include "socketapi/kernel_net.hpp"
#include "socketapi/port_reservation.hpp"

namespace xs {

class KernelHost final : public HostKernel {
 public:
  // `addr` is the kernel's own address on interface `ifindex`.
  static Expected<std::unique_ptr<KernelHost>, std::string> open(int ifindex, Ipv4Addr addr);

  void request(Ipv4Addr ip) override;
  int fd() const override { return watcher_->fd(); }
  void sync(ArpCache& arp) override;
  bool wants_sync() const override { return !known_now_.empty(); }
  std::optional<Ipv4Addr> default_gateway() const override;
  Expected<uint16_t, int> reserve(uint8_t proto, uint16_t port, bool reuseaddr) override {
    return ports_.reserve(proto, addr_, port, reuseaddr);
  }
  void release(uint8_t proto, uint16_t port) override { ports_.release(proto, port); }

  PortReservations& ports() { return ports_; }

 private:
  KernelHost(std::unique_ptr<KernelNetWatcher> w, Ipv4Addr addr) : watcher_(std::move(w)), addr_(addr) {}

  std::unique_ptr<KernelNetWatcher> watcher_;
  PortReservations ports_;
  Ipv4Addr addr_;
  bool seeded_ = false;
  std::vector<KernelNeighbour> known_now_;  // answers request() got at once
};

}  // namespace xs
