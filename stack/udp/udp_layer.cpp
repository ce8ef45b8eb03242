#include "stack/udp/udp_layer.hpp"

#include <algorithm>

#include "stack/net/ip_layer.hpp"
#include "stack/wire/icmp.hpp"
#include "stack/wire/udp.hpp"

namespace xs {

namespace {

struct IcmpErr {
  SockError err;
  bool fatal;  // a "hard" error: reported on a connected socket without IP_RECVERR
};

// Linux net/ipv4/icmp.c icmp_err_convert[], indexed by destination
// unreachable code. EHOSTDOWN and ENONET have no SockError of their own and
// map to the nearest one.
constexpr IcmpErr kUnreachErr[16] = {
    {SockError::NetUnreachable, false},   // 0 net unreachable
    {SockError::HostUnreachable, false},  // 1 host unreachable
    {SockError::ProtocolOption, true},    // 2 protocol unreachable (ENOPROTOOPT)
    {SockError::ConnectionRefused, true}, // 3 port unreachable
    {SockError::MessageTooLong, false},   // 4 fragmentation needed (handled apart)
    {SockError::NotSupported, false},     // 5 source route failed (EOPNOTSUPP)
    {SockError::NetUnreachable, true},    // 6 net unknown
    {SockError::HostUnreachable, true},   // 7 host unknown (EHOSTDOWN)
    {SockError::NetUnreachable, true},    // 8 host isolated (ENONET)
    {SockError::NetUnreachable, true},    // 9 net administratively prohibited
    {SockError::HostUnreachable, true},   // 10 host administratively prohibited
    {SockError::NetUnreachable, false},   // 11 net unreachable for TOS
    {SockError::HostUnreachable, false},  // 12 host unreachable for TOS
    {SockError::HostUnreachable, true},   // 13 communication administratively prohibited
    {SockError::HostUnreachable, true},   // 14 host precedence violation
    {SockError::HostUnreachable, true},   // 15 precedence cutoff
};

}  // namespace

UdpLayer::UdpLayer(IpLayer& ip, Random& rng, StackCounters& counters, const UdpConfig& cfg)
    : ip_(ip),
      c_(counters),
      cfg_(cfg),
      ports_(cfg.ephemeral_low, cfg.ephemeral_high, rng),
      reuseport_key_{rng.next_u64(), rng.next_u64()},
      by_port_(65536, nullptr) {}

UdpLayer::~UdpLayer() = default;

UdpSocket* UdpLayer::open() {
  sockets_.push_back(std::unique_ptr<UdpSocket>(new UdpSocket(*this)));
  return sockets_.back().get();
}

void UdpLayer::close(UdpSocket* s) {
  if (s == nullptr) return;
  unhash(s);
  auto it = std::find_if(sockets_.begin(), sockets_.end(), [&](const auto& p) { return p.get() == s; });
  if (it == sockets_.end()) return;
  std::swap(*it, sockets_.back());
  sockets_.pop_back();
}

// ---- port table ------------------------------------------------------------------

void UdpLayer::hash(UdpSocket* s) {
  if (s->hashed_) return;
  UdpSocket** pp = &by_port_[s->local_.port];
  while (*pp != nullptr) pp = &(*pp)->next_in_port_;
  *pp = s;
  s->next_in_port_ = nullptr;
  s->hashed_ = true;
}

void UdpLayer::unhash(UdpSocket* s) {
  if (!s->hashed_) return;
  for (UdpSocket** pp = &by_port_[s->local_.port]; *pp != nullptr; pp = &(*pp)->next_in_port_) {
    if (*pp == s) {
      *pp = s->next_in_port_;
      break;
    }
  }
  s->next_in_port_ = nullptr;
  s->hashed_ = false;
}

bool UdpLayer::conflicts(const UdpSocket* s, Ipv4Addr addr, uint16_t port) const {
  for (const UdpSocket* o = by_port_[port]; o != nullptr; o = o->next_in_port_) {
    if (o == s) continue;
    // The wildcard overlaps every address.
    if (!addr.is_unspecified() && !o->local_.addr.is_unspecified() && addr != o->local_.addr) continue;
    if (s->reuseaddr_ && o->reuseaddr_) continue;
    if (s->reuseport_ && o->reuseport_) continue;
    return true;
  }
  return false;
}

std::optional<uint16_t> UdpLayer::pick_port(const UdpSocket* s, Ipv4Addr addr,
                                            std::optional<Endpoint> remote) {
  return ports_.pick(addr, remote.value_or(Endpoint{}),
                     [&](uint16_t port) { return conflicts(s, addr, port); });
}

UdpSocket* UdpLayer::lookup(Ipv4Addr saddr, uint16_t sport, Ipv4Addr daddr, uint16_t dport) const {
  // Linux compute_score: 2 for the family, +4 for an exact local address,
  // +4 each for matching remote address and port; a mismatch disqualifies.
  int best = -1;
  UdpSocket* result = nullptr;
  for (UdpSocket* s = by_port_[dport]; s != nullptr; s = s->next_in_port_) {
    int score = 2;
    if (!s->local_.addr.is_unspecified()) {
      if (s->local_.addr != daddr) continue;
      score += 4;
    }
    if (s->remote_) {
      if (s->remote_->addr != saddr || s->remote_->port != sport) continue;
      score += 8;
    }
    if (score > best) {
      best = score;
      result = s;
    }
  }
  if (result == nullptr || !result->reuseport_ || result->remote_) return result;

  // SO_REUSEPORT group: unconnected reuseport sockets on the same local
  // address. A keyed hash of the 4-tuple keeps each flow on one socket
  // (reuseport_select_sock) while spreading flows across the group.
  size_t n = 0;
  for (UdpSocket* s = by_port_[dport]; s != nullptr; s = s->next_in_port_) {
    if (s->reuseport_ && !s->remote_ && s->local_.addr == result->local_.addr) ++n;
  }
  if (n <= 1) return result;
  SipHasher h(reuseport_key_);
  h.write_u32(saddr.v).write_u16(sport).write_u32(daddr.v).write_u16(dport);
  size_t k = size_t(h.finish() % n);
  for (UdpSocket* s = by_port_[dport]; s != nullptr; s = s->next_in_port_) {
    if (s->reuseport_ && !s->remote_ && s->local_.addr == result->local_.addr && k-- == 0) return s;
  }
  return result;
}

// ---- input ---------------------------------------------------------------------

UdpInput UdpLayer::on_datagram(Instant now, const Ipv4Packet& ip, bool broadcast) {
  auto d = parse_udp(ip.payload, ip.hdr.src, ip.hdr.dst, /*verify_checksum=*/true);
  if (!d) {
    // Linux counts a bad checksum as both InCsumErrors and InErrors.
    if (d.error() == WireError::BadChecksum) ++c_.udp_in_csum_errors;
    ++c_.udp_in_errors;
    return UdpInput::Dropped;
  }
  const Endpoint from{ip.hdr.src, d->src_port};
  UdpRxMeta meta;
  meta.dst = ip.hdr.dst;
  meta.dst_port = d->dst_port;
  meta.ttl = ip.hdr.ttl;
  meta.tos = ip.hdr.tos;
  meta.arrival = now;
  auto deliver = [&](UdpSocket* s) {
    // ipv4_pktinfo_prepare runs as the datagram is queued: with IP_PKTINFO
    // off then, the cmsg later reports interface 0 and spec_dst 0.
    meta.pktinfo = s->recv_pktinfo_;
    meta.spec_dst = Ipv4Addr{};
    if (meta.pktinfo) {
      // fib_compute_spec_dst: the destination itself when it is our unicast
      // address, else the source we would answer the sender from.
      if (ip_.is_local(ip.hdr.dst)) meta.spec_dst = ip.hdr.dst;
      else if (auto src = ip_.source_for(from.addr)) meta.spec_dst = *src;
    }
    // d->payload lies in the frame being delivered (or a reassembly buffer):
    // a socket with zc_frames asks frame_lender() to hold it; each socket a
    // broadcast reaches holds (and later releases) it under its own handle.
    if (s->enqueue(d->payload, from, meta)) {
      ++c_.udp_in_datagrams;
    } else {
      ++c_.udp_rcvbuf_errors;
      ++c_.udp_in_errors;
    }
  };

  if (broadcast) {
    // __udp4_lib_mcast_deliver: every socket that would accept it gets a copy;
    // sockets bound to a unicast address do not see broadcasts.
    bool any = false;
    for (UdpSocket* s = by_port_[d->dst_port]; s != nullptr; s = s->next_in_port_) {
      if (!s->local_.addr.is_unspecified() && s->local_.addr != ip.hdr.dst) continue;
      if (s->remote_ && (s->remote_->addr != from.addr || s->remote_->port != from.port)) continue;
      any = true;
      deliver(s);
    }
    if (!any) {
      ++c_.udp_no_ports;
      return UdpInput::NoPort;
    }
    return UdpInput::Delivered;
  }

  UdpSocket* s = lookup(ip.hdr.src, d->src_port, ip.hdr.dst, d->dst_port);
  if (s == nullptr) {
    ++c_.udp_no_ports;
    return UdpInput::NoPort;
  }
  deliver(s);
  return UdpInput::Delivered;
}

void UdpLayer::on_icmp_error(Instant, uint8_t type, uint8_t code, const Ipv4Repr& quoted_ip, Bytes quoted_l4) {
  if (quoted_l4.size() < kUdpHeaderLen) return;
  const uint16_t our_port = load_be16(&quoted_l4[0]);
  const uint16_t their_port = load_be16(&quoted_l4[2]);
  // Find the socket as if the datagram came back from its destination (udp_err).
  UdpSocket* s = lookup(quoted_ip.dst, their_port, quoted_ip.src, our_port);
  if (s == nullptr) return;

  IcmpErr e{SockError::HostUnreachable, false};
  if (type == icmptype::kTimeExceeded) {
    e = {SockError::HostUnreachable, false};
  } else if (type == icmptype::kDestUnreachable) {
    if (code == icmpcode::kFragNeeded) {
      // The IP layer has lowered the path MTU; with IP_PMTUDISC_WANT Linux
      // reports EMSGSIZE as a hard error.
      e = {SockError::MessageTooLong, true};
    } else if (code < 16) {
      e = kUnreachErr[code];
    }
  } else {
    return;
  }
  // Without IP_RECVERR Linux reports only hard errors, and only on connected
  // sockets: an unconnected socket cannot tell which send the error belongs to.
  if (!e.fatal || !s->remote_) return;
  s->set_error(e.err);
}

}  // namespace xs
