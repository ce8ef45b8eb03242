#include "stack/stack.hpp"

#include "stack/wire/ethernet.hpp"

namespace xs {

namespace {

IpConfig ip_config(const StackConfig& c) {
  IpConfig ic;
  ic.mac = c.mac;
  ic.addr = c.addr;
  ic.gateway = c.gateway;
  ic.mtu = c.mtu;
  return ic;
}

UdpConfig udp_config(const TcpConfig& t) {
  UdpConfig u;
  u.ephemeral_low = t.ephemeral_low;
  u.ephemeral_high = t.ephemeral_high;
  u.rmem_max = t.core_rmem_max;
  u.wmem_max = t.core_wmem_max;
  u.default_ttl = t.default_ttl;
  u.rx_frames = t.rx_frames;
  return u;
}

}  // namespace

Stack::Stack(const StackConfig& cfg, Random& rng, FrameSink& sink)
    : cfg_(cfg),
      arp_(cfg.mac, cfg.addr.addr, sink, counters_, cfg.arp),
      ip_(ip_config(cfg), sink, arp_, rng, counters_),
      tcp_(cfg.tcp, ip_, rng, counters_),
      udp_(ip_, rng, counters_, udp_config(cfg.tcp)) {
  ip_.set_transports(&tcp_, &udp_);
}

void Stack::receive_frame(Instant now, Bytes frame) {
  ++counters_.eth_rx_frames;
  auto eth = parse_ethernet(frame);
  if (!eth) {
    if (eth.error() == WireError::Truncated) ++counters_.eth_rx_drop_short;
    else ++counters_.eth_rx_drop_ethertype;  // 802.3 length field, not Ethernet II
    return;
  }
  const MacAddr dst = eth->hdr.dst;
  // Our unicast address or broadcast; we join no multicast groups.
  if (dst != cfg_.mac && !dst.is_broadcast()) {
    ++counters_.eth_rx_drop_not_for_us;
    return;
  }
  switch (eth->hdr.ethertype) {
    case ethertype::kArp:
      arp_.on_arp(now, eth->payload);
      return;
    case ethertype::kIpv4:
      ip_.on_ipv4(now, eth->payload, dst.is_broadcast());
      return;
    default:
      ++counters_.eth_rx_drop_ethertype;
      return;
  }
}

void Stack::poll(Instant now) {
  arp_.poll(now);
  ip_.poll(now);
  tcp_.poll(now);
}

Instant Stack::poll_at() const {
  return min(min(arp_.poll_at(), ip_.poll_at()), tcp_.poll_at());
}

void Stack::set_frame_lender(FrameLender* lender) {
  tcp_.set_frame_lender(lender);
  udp_.set_frame_lender(lender);
}

}  // namespace xs
