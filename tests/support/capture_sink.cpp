#include "tests/support/capture_sink.hpp"

#include <algorithm>
#include <cstdlib>

namespace xs::test {

MutBytes CaptureSink::tx_acquire() {
  if (refuse > 0) {
    --refuse;
    return {};
  }
  acquired_ = true;
  // Poison so a test notices bytes the stack forgot to write.
  std::fill(buf_.begin(), buf_.end(), uint8_t(0xa5));
  return {buf_.data(), buf_.size()};
}

void CaptureSink::tx_commit(size_t len) {
  if (!acquired_ || len > buf_.size()) std::abort();  // a stack bug: commit without acquire
  acquired_ = false;
  frames.emplace_back(buf_.begin(), buf_.begin() + std::ptrdiff_t(len));
}

std::vector<std::vector<uint8_t>> CaptureSink::take() {
  std::vector<std::vector<uint8_t>> out;
  out.swap(frames);
  return out;
}

std::optional<EthernetFrame> CaptureSink::eth(size_t i) const {
  if (frames.empty()) return std::nullopt;
  const auto& f = at(i);
  auto e = parse_ethernet(Bytes(f.data(), f.size()));
  if (!e) return std::nullopt;
  return *e;
}

std::optional<ArpRepr> CaptureSink::arp(size_t i) const {
  auto e = eth(i);
  if (!e || e->hdr.ethertype != ethertype::kArp) return std::nullopt;
  auto a = parse_arp(e->payload);
  if (!a) return std::nullopt;
  return *a;
}

std::optional<Ipv4Packet> CaptureSink::ipv4(size_t i) const {
  auto e = eth(i);
  if (!e || e->hdr.ethertype != ethertype::kIpv4) return std::nullopt;
  auto p = parse_ipv4(e->payload);
  if (!p) return std::nullopt;
  return *p;
}

std::optional<IcmpRepr> CaptureSink::icmp(size_t i) const {
  auto p = ipv4(i);
  if (!p || p->hdr.protocol != ipproto::kIcmp) return std::nullopt;
  auto m = parse_icmp(p->payload);
  if (!m) return std::nullopt;
  return *m;
}

std::optional<UdpRepr> CaptureSink::udp(size_t i) const {
  auto p = ipv4(i);
  if (!p || p->hdr.protocol != ipproto::kUdp || p->hdr.is_fragment()) return std::nullopt;
  auto u = parse_udp(p->payload, p->hdr.src, p->hdr.dst);
  if (!u) return std::nullopt;
  return *u;
}

std::vector<uint8_t> arp_frame(MacAddr eth_dst, const ArpRepr& a) {
  std::vector<uint8_t> f(kEthHeaderLen + kArpLen);
  emit_ethernet({eth_dst, a.sender_mac, ethertype::kArp}, f);
  emit_arp(a, MutBytes(f).subspan(kEthHeaderLen));
  return f;
}

std::vector<uint8_t> ipv4_frame(MacAddr dst, MacAddr src, Ipv4Repr ip, Bytes l4) {
  std::vector<uint8_t> f(kEthHeaderLen + kIpv4MinHeaderLen + l4.size());
  emit_ethernet({dst, src, ethertype::kIpv4}, f);
  ip.payload_len = uint16_t(l4.size());
  emit_ipv4(ip, MutBytes(f).subspan(kEthHeaderLen));
  std::copy(l4.begin(), l4.end(), f.begin() + kEthHeaderLen + kIpv4MinHeaderLen);
  return f;
}

std::vector<uint8_t> udp_datagram(Ipv4Addr src, uint16_t sport, Ipv4Addr dst, uint16_t dport, Bytes payload) {
  std::vector<uint8_t> d(kUdpHeaderLen + payload.size());
  std::copy(payload.begin(), payload.end(), d.begin() + kUdpHeaderLen);
  emit_udp(sport, dport, src, dst, d);
  return d;
}

std::vector<uint8_t> icmp_message(uint8_t type, uint8_t code, uint32_t rest, Bytes payload) {
  std::vector<uint8_t> m(kIcmpHeaderLen + payload.size());
  emit_icmp({type, code, rest, payload}, m);
  return m;
}

}  // namespace xs::test
