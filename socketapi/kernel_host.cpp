#include "socketapi/kernel_host.hpp"

#include <cstdio>

#include "socketapi/log.hpp"

namespace xs {

Expected<std::unique_ptr<KernelHost>, std::string> KernelHost::open(int ifindex, Ipv4Addr addr) {
  auto w = KernelNetWatcher::open(ifindex);
  if (!w) return unexpected(w.error());
  return std::unique_ptr<KernelHost>(new KernelHost(std::move(*w), addr));
}

void KernelHost::request(Ipv4Addr ip) {
  auto r = watcher_->resolve(ip);
  if (!r) {
    XS_LOG(Warn, "asking the kernel to resolve %s failed: %s", ip.to_string().c_str(), r.error().c_str());
  } else if (*r) {
    known_now_.push_back({ip, **r, NeighKind::Valid});
  }
}

void KernelHost::sync(ArpCache& arp) {
  auto apply = [&arp](const KernelNeighbour& n) {
    // The kernel's answer is authoritative: a valid entry replaces ours (and
    // releases frames waiting for it); a failed or deleted one is forgotten,
    // so the next packet asks again.
    if (n.kind == NeighKind::Valid) {
      arp.insert_static(n.ip, n.mac);
    } else if (arp.state_of(n.ip) != ArpCache::State::Incomplete) {
      // An entry still being resolved is left to the cache's own retries:
      // when they run out it reports the waiting packets unreachable.
      arp.remove(n.ip);
    }
  };
  for (const KernelNeighbour& n : known_now_) apply(n);
  known_now_.clear();
  if (!seeded_) {
    for (const KernelNeighbour& n : watcher_->initial_neighbours()) apply(n);
    seeded_ = true;
  }
  watcher_->process(apply);
}

std::optional<Ipv4Addr> KernelHost::default_gateway() const {
  std::optional<Ipv4Addr> best;
  uint32_t best_metric = 0;
  for (const KernelRoute& r : watcher_->routes()) {
    if (r.dst.prefix_len != 0 || !r.gateway) continue;
    if (!best || r.metric < best_metric) {
      best = r.gateway;
      best_metric = r.metric;
    }
  }
  // A default route through another interface is not ours to use.
  if (best && !watcher_->next_hop(*best)) return std::nullopt;
  return best;
}

}  // namespace xs
