#include "stack/net/icmp_handler.hpp"

#include <algorithm>
#include <cstring>

#include "stack/net/ip_layer.hpp"
#include "stack/tcp/tcp_layer.hpp"
#include "stack/udp/udp_layer.hpp"
#include "stack/wire/checksum.hpp"
#include "stack/wire/icmp.hpp"

namespace xs {

namespace {

// RFC 792 error types; RFC 1122 3.2.2 forbids answering any of them with an error.
bool is_icmp_error_type(uint8_t t) { return t == 3 || t == 4 || t == 5 || t == 11 || t == 12; }

// The header of a quoted packet. parse_ipv4 cannot be used: the quote is cut
// after 8 data bytes, so its total length field points past the end.
bool parse_quoted(Bytes q, Ipv4Repr* out, Bytes* l4) {
  if (q.size() < kIpv4MinHeaderLen || (q[0] >> 4) != 4) return false;
  size_t ihl = size_t(q[0] & 0x0f) * 4;
  if (ihl < kIpv4MinHeaderLen || q.size() < ihl + 8) return false;  // need the 8 transport bytes
  uint16_t total = load_be16(&q[2]);
  uint16_t frag = load_be16(&q[6]);
  out->tos = q[1];
  out->ident = load_be16(&q[4]);
  out->dont_frag = (frag & 0x4000) != 0;
  out->more_frags = (frag & 0x2000) != 0;
  out->frag_offset = uint16_t((frag & 0x1fff) * 8);
  out->ttl = q[8];
  out->protocol = q[9];
  out->src = {load_be32(&q[12])};
  out->dst = {load_be32(&q[16])};
  out->payload_len = total > ihl ? uint16_t(total - ihl) : 0;
  *l4 = q.subspan(ihl);
  return true;
}

// RFC 1191 section 5 plateau table, for routers that send fragmentation
// needed without a next-hop MTU (RFC 792 left the field zero).
uint16_t plateau_below(uint16_t total_len) {
  static constexpr uint16_t kPlateaus[] = {32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68};
  for (uint16_t p : kPlateaus) {
    if (p < total_len) return p;
  }
  return 68;
}

}  // namespace

IcmpHandler::IcmpHandler(IpLayer& ip, StackCounters& counters, const IcmpConfig& cfg)
    : ip_(ip), c_(counters), cfg_(cfg) {}

bool IcmpHandler::rate_allow(Instant now, Ipv4Addr dst) {
  // Global bucket first (Linux icmp_global_allow): msgs_per_sec tokens a
  // second, at most msgs_burst banked.
  const int64_t cap = int64_t(cfg_.msgs_burst) * 1000;
  if (!global_init_) {
    global_milli_ = cap;
    global_init_ = true;
  } else if (now > global_last_) {
    global_milli_ = std::min(cap, global_milli_ + (now - global_last_).us * cfg_.msgs_per_sec / 1000);
  }
  global_last_ = max(global_last_, now);
  if (global_milli_ < 1000) return false;

  // Then the per-host limit (Linux inet_peer_xrlim_allow): credit accrues in
  // time, is capped at burst_factor * ratelimit, and each error costs one
  // ratelimit interval. A new peer starts with full credit.
  const int64_t cost = cfg_.ratelimit.us;
  const int64_t peer_cap = int64_t(cfg_.burst_factor) * cost;
  Peer* peer = nullptr;
  Peer* victim = &peers_[0];
  for (Peer& p : peers_) {
    if (p.used && p.addr == dst) {
      peer = &p;
      break;
    }
    if (!p.used) {
      if (victim->used) victim = &p;
    } else if (victim->used && p.last < victim->last) {
      victim = &p;
    }
  }
  if (peer == nullptr) {
    // Bounded table: forget the least recently limited host.
    peer = victim;
    *peer = Peer{dst, peer_cap, now, true};
  } else if (now > peer->last) {
    peer->tokens_us = std::min(peer_cap, peer->tokens_us + (now - peer->last).us);
    peer->last = now;
  }
  if (cost > 0 && peer->tokens_us < cost) return false;
  peer->tokens_us -= cost;
  global_milli_ -= 1000;
  return true;
}

bool IcmpHandler::send_error(Instant now, uint8_t type, uint8_t code, uint32_t rest,
                             const Ipv4Packet& offending, bool link_broadcast) {
  const Ipv4Repr& h = offending.hdr;
  // RFC 1122 3.2.2: never about a non-initial fragment, a datagram to a
  // broadcast or multicast address (IP or link layer), or one whose source
  // is not a single host.
  if (h.frag_offset != 0 || link_broadcast) return false;
  if (ip_.is_broadcast(h.dst) || h.dst.is_multicast()) return false;
  if (h.src.is_unspecified() || h.src.is_broadcast() || h.src.is_multicast() ||
      h.src.is_loopback() || ip_.is_broadcast(h.src)) {
    return false;
  }
  // ... nor about an ICMP error message.
  if (h.protocol == ipproto::kIcmp &&
      (offending.payload.empty() || is_icmp_error_type(offending.payload[0]) || offending.payload[0] > 18)) {
    return false;
  }
  if (!rate_allow(now, h.src)) {
    ++c_.icmp_out_rate_limited;
    return false;
  }

  const size_t data = std::min<size_t>(8, offending.payload.size());
  const size_t len = kIcmpHeaderLen + offending.header.size() + data;
  IpTxParams p;
  p.src = ip_.addr();
  p.dst = h.src;
  p.protocol = ipproto::kIcmp;
  p.ttl = 64;
  // Linux icmp_send: IPTOS_PREC_INTERNETCONTROL with the original TOS bits.
  p.tos = uint8_t((h.tos & 0x1e) | 0xc0);
  MutBytes out = ip_.begin(now, p, len);
  if (out.empty()) return false;
  // Written by hand rather than with emit_icmp: the quote comes from two
  // spans (header and data may not be contiguous after reassembly).
  out[0] = type;
  out[1] = code;
  store_be16(&out[2], 0);
  store_be32(&out[4], rest);
  std::memcpy(&out[8], offending.header.data(), offending.header.size());
  if (data > 0) std::memcpy(&out[8 + offending.header.size()], offending.payload.data(), data);
  store_be16(&out[2], internet_checksum(Bytes(out.data(), len)));
  ip_.commit();
  ++c_.icmp_out_msgs;
  if (type == icmptype::kDestUnreachable) ++c_.icmp_out_dest_unreachs;
  return true;
}

void IcmpHandler::on_icmp(Instant now, const Ipv4Packet& pkt) {
  ++c_.icmp_in_msgs;
  auto parsed = parse_icmp(pkt.payload);
  if (!parsed) {
    if (parsed.error() == WireError::BadChecksum) ++c_.icmp_in_csum_errors;
    ++c_.icmp_in_errors;
    return;
  }
  const IcmpRepr& m = *parsed;
  switch (m.type) {
    case icmptype::kEchoRequest: {
      ++c_.icmp_in_echos;
      // RFC 1122 3.2.2.6: the reply carries the same identifier, sequence and
      // data, from the address the request was sent to.
      IpTxParams p;
      p.src = pkt.hdr.dst;
      p.dst = pkt.hdr.src;
      p.protocol = ipproto::kIcmp;
      p.ttl = 64;
      p.tos = pkt.hdr.tos;
      const size_t len = kIcmpHeaderLen + m.payload.size();
      MutBytes out = ip_.begin(now, p, len);
      if (out.empty()) return;
      emit_icmp({icmptype::kEchoReply, 0, m.rest, m.payload}, out);
      ip_.commit();
      ++c_.icmp_out_msgs;
      ++c_.icmp_out_echo_reps;
      return;
    }
    case icmptype::kDestUnreachable:
      ++c_.icmp_in_dest_unreachs;
      on_error(now, pkt, m.type, m.code, m.next_hop_mtu(), m.payload);
      return;
    case icmptype::kTimeExceeded:
      on_error(now, pkt, m.type, m.code, 0, m.payload);
      return;
    default:
      return;  // echo replies, timestamps, ...: nothing asked for them
  }
}

void IcmpHandler::on_local_unreachable(Instant now, Bytes ip_packet) {
  Ipv4Repr q;
  Bytes l4;
  if (!parse_quoted(ip_packet, &q, &l4)) return;
  if (q.protocol == ipproto::kTcp && tcp_ != nullptr) {
    tcp_->on_icmp_error(now, icmptype::kDestUnreachable, icmpcode::kHostUnreachable, 0, q, l4);
  } else if (q.protocol == ipproto::kUdp && udp_ != nullptr) {
    udp_->on_icmp_error(now, icmptype::kDestUnreachable, icmpcode::kHostUnreachable, q, l4);
  }
}

void IcmpHandler::on_error(Instant now, const Ipv4Packet&, uint8_t type, uint8_t code,
                           uint16_t mtu, Bytes quoted) {
  Ipv4Repr q;
  Bytes l4;
  if (!parse_quoted(quoted, &q, &l4)) {
    ++c_.icmp_in_errors;
    return;
  }
  if (!ip_.is_local(q.src)) return;  // not about a packet we sent
  if (type == icmptype::kDestUnreachable && code == icmpcode::kFragNeeded) {
    // RFC 1191 section 4/5: lower the path MTU toward the quoted destination.
    if (mtu == 0) mtu = plateau_below(uint16_t(q.payload_len + ((quoted[0] & 0x0f) * 4)));
    mtu = ip_.update_pmtu(now, q.dst, mtu);
  }
  if (q.protocol == ipproto::kTcp && tcp_ != nullptr) {
    tcp_->on_icmp_error(now, type, code, mtu, q, l4);
  } else if (q.protocol == ipproto::kUdp && udp_ != nullptr) {
    udp_->on_icmp_error(now, type, code, q, l4);
  }
}

}  // namespace xs
