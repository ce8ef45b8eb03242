#include "stack/net/ip_layer.hpp"

#include <algorithm>
#include <cstring>

#include "stack/tcp/tcp_layer.hpp"
#include "stack/udp/udp_layer.hpp"
#include "stack/wire/ethernet.hpp"
#include "stack/wire/icmp.hpp"
#include "stack/wire/tcp.hpp"

namespace xs {

namespace {
constexpr size_t kMaxIpPacket = 65535;

// RFC 1112 6.4: 01:00:5e followed by the low 23 bits of the group address.
MacAddr multicast_mac(Ipv4Addr a) {
  return {{0x01, 0x00, 0x5e, uint8_t((a.v >> 16) & 0x7f), uint8_t(a.v >> 8), uint8_t(a.v)}};
}
}  // namespace

IpLayer::IpLayer(const IpConfig& cfg, FrameSink& sink, ArpCache& arp, Random& rng,
                 StackCounters& counters)
    : cfg_(cfg),
      sink_(sink),
      arp_(arp),
      c_(counters),
      reasm_(counters, cfg.reassembly),
      icmp_(*this, counters, cfg.icmp),
      loop_(kEthHeaderLen + 65535),  // cut to the MTU below (the pool is allocated at first use)
      // A random starting ident makes IDs unpredictable across restarts
      // (RFC 6864 4.1 notes the ID need only be unique per src/dst/proto
      // within the reassembly timeout for fragmentable datagrams).
      next_ident_(uint16_t(rng.next_u32())),
      scratch_(kMaxIpPacket) {
  arp_.set_failure_observer(this);
  // The frame can never be larger than the device allows.
  size_t dev_mtu = sink_.max_frame_len() > kEthHeaderLen ? sink_.max_frame_len() - kEthHeaderLen : 0;
  if (cfg_.mtu > dev_mtu) cfg_.mtu = uint16_t(std::min<size_t>(dev_mtu, 65535));
  loop_ = LoopbackQueue(kEthHeaderLen + cfg_.mtu);
  cfg_.min_pmtu = std::min(cfg_.min_pmtu, cfg_.mtu);
}

void IpLayer::set_transports(TcpLayer* tcp, UdpLayer* udp) {
  tcp_ = tcp;
  udp_ = udp;
  icmp_.set_transports(tcp, udp);
}

// ---- routing -----------------------------------------------------------------

std::optional<Ipv4Addr> IpLayer::next_hop(Ipv4Addr dst) const {
  // Our own address and 127/8 never go to the wire: begin() sends them
  // through the loopback queue (is_self).
  if (dst == cfg_.addr.addr || dst.is_unspecified() || dst.is_loopback()) return std::nullopt;
  if (cfg_.addr.contains(dst)) return dst;
  return cfg_.gateway;
}

std::optional<Ipv4Addr> IpLayer::source_for(Ipv4Addr dst) const {
  if (cfg_.addr.addr.is_unspecified()) return std::nullopt;
  // The loopback queue: 127/8 is answered from 127.0.0.1 (Linux's lo), our
  // own address from itself.
  if (dst.is_loopback()) return Ipv4Addr::from_octets(127, 0, 0, 1);
  if (dst == cfg_.addr.addr) return dst;
  if (is_broadcast(dst) || dst.is_multicast() || next_hop(dst)) return cfg_.addr.addr;
  return std::nullopt;
}

uint16_t IpLayer::path_mtu(Ipv4Addr dst) const {
  uint16_t mtu = cfg_.mtu;
  if (pmtu_count_ == 0) return mtu;  // the common case: nothing learned
  for (const PmtuEntry& e : pmtu_) {
    if (e.mtu != 0 && e.dst == dst && e.expires > pmtu_now_) return std::min(mtu, e.mtu);
  }
  return mtu;
}

uint16_t IpLayer::update_pmtu(Instant now, Ipv4Addr dst, uint16_t mtu) {
  pmtu_now_ = max(pmtu_now_, now);
  const uint16_t cur = path_mtu(dst);
  // Linux __ip_rt_update_pmtu: never raise from ICMP, and clamp below at
  // min_pmtu so a forged tiny MTU cannot make us send 68-byte packets.
  mtu = std::max(mtu, cfg_.min_pmtu);
  if (mtu >= cur) return cur;
  PmtuEntry* slot = nullptr;
  for (PmtuEntry& e : pmtu_) {
    if (e.mtu != 0 && e.dst == dst) {
      slot = &e;
      break;
    }
  }
  if (slot == nullptr) {
    // A free slot, an expired one, or else the one expiring soonest.
    for (PmtuEntry& e : pmtu_) {
      if (e.mtu == 0 || e.expires <= pmtu_now_) {
        slot = &e;
        break;
      }
      if (slot == nullptr || e.expires < slot->expires) slot = &e;
    }
    if (slot->mtu == 0) ++pmtu_count_;
  }
  // RFC 1191 6.3: the estimate is aged so that an increase is eventually tried.
  *slot = {dst, mtu, now + cfg_.pmtu_expires};
  return mtu;
}

// ---- output ----------------------------------------------------------------------

MutBytes IpLayer::begin(Instant now, const IpTxParams& p, size_t l4_len) {
  pending_ = Pending::None;
  now_ = now;
  pmtu_now_ = max(pmtu_now_, now);
  const size_t total = kIpv4MinHeaderLen + l4_len;
  if (total > kMaxIpPacket) return {};

  mac_known_ = true;
  looped_ = is_self(p.dst) && !cfg_.addr.addr.is_unspecified();
  if (looped_) {
    dst_mac_ = cfg_.mac;
    hop_ = p.dst;
  } else if (is_broadcast(p.dst)) {
    dst_mac_ = MacAddr::broadcast();
    hop_ = p.dst;
  } else if (p.dst.is_multicast()) {
    dst_mac_ = multicast_mac(p.dst);
    hop_ = p.dst;
  } else {
    auto nh = next_hop(p.dst);
    if (!nh) {
      ++c_.ip_out_no_routes;
      return {};
    }
    hop_ = *nh;
    auto mac = arp_.lookup(now, hop_);
    mac_known_ = mac.has_value();
    dst_mac_ = mac.value_or(MacAddr{});
  }
  ++c_.ip_out_requests;
  p_ = p;
  l4_len_ = l4_len;

  const uint16_t mtu = path_mtu(p.dst);
  if (total > mtu) {
    // Too big with DF: the caller (TCP) sized the segment before the path MTU
    // dropped; the segment is lost and retransmitted at the new size.
    if (p.dont_frag) return {};
    frag_mtu_ = mtu;
    pending_ = Pending::Scratch;
    return {scratch_.data(), l4_len};
  }

  Pending kind = looped_ ? Pending::Loop : mac_known_ ? Pending::Sink : Pending::ArpQueue;
  frame_ = acquire_frame(now, &kind);
  if (frame_.empty()) return {};
  pending_ = kind;
  return frame_.subspan(kFrameHeaders, l4_len);
}

MutBytes IpLayer::acquire_frame(Instant now, Pending* kind) {
  if (*kind == Pending::Loop) return loop_.acquire();
  if (*kind == Pending::Sink) {
    MutBytes b = sink_.tx_acquire();
    if (b.empty()) ++c_.eth_tx_drop_no_buffer;
    return b;
  }
  return arp_.enqueue_begin(now, hop_);
}

void IpLayer::finish_frame(Pending kind, size_t len) {
  if (kind == Pending::Loop) {
    loop_.commit(len);
    return;
  }
  if (kind == Pending::Sink) {
    sink_.tx_commit(len);
    ++c_.eth_tx_frames;
  } else {
    arp_.enqueue_commit(len);  // eth_tx_frames counted when the queue is flushed
  }
}

void IpLayer::write_headers(uint8_t* frame, const Ipv4Repr& ip) {
  emit_ethernet({dst_mac_, cfg_.mac, ethertype::kIpv4}, MutBytes(frame, kEthHeaderLen));
  emit_ipv4(ip, MutBytes(frame + kEthHeaderLen, kIpv4MinHeaderLen));
}

void IpLayer::commit() {
  const Pending kind = pending_;
  pending_ = Pending::None;
  if (kind == Pending::None) return;

  Ipv4Repr r;
  r.src = p_.src;
  r.dst = p_.dst;
  r.protocol = p_.protocol;
  r.ttl = p_.ttl;
  r.tos = p_.tos;
  r.ident = next_ident_++;
  r.dont_frag = p_.dont_frag;

  if (kind != Pending::Scratch) {
    r.payload_len = uint16_t(l4_len_);
    write_headers(frame_.data(), r);
    finish_frame(kind, kFrameHeaders + l4_len_);
    return;
  }

  // RFC 791 3.2 fragmentation: every fragment but the last carries a multiple
  // of 8 data bytes; all share the ident; offsets are in 8-byte units.
  const size_t chunk = (size_t(frag_mtu_) - kIpv4MinHeaderLen) & ~size_t(7);
  for (size_t off = 0; off < l4_len_; off += chunk) {
    const size_t len = std::min(chunk, l4_len_ - off);
    Pending fk = looped_ ? Pending::Loop : mac_known_ ? Pending::Sink : Pending::ArpQueue;
    MutBytes f = acquire_frame(now_, &fk);
    // Buffers are max_frame_len() >= MTU + 14, so only "no buffer" fails here;
    // the rest of the datagram is then useless to the receiver.
    if (f.empty()) return;
    std::memcpy(f.data() + kFrameHeaders, scratch_.data() + off, len);
    r.frag_offset = uint16_t(off);
    r.more_frags = off + len < l4_len_;
    r.payload_len = uint16_t(len);
    write_headers(f.data(), r);
    finish_frame(fk, kFrameHeaders + len);
    ++c_.ip_frag_creates;
  }
}

// ---- input ------------------------------------------------------------------------

void IpLayer::on_ipv4(Instant now, Bytes packet, bool link_broadcast) { input(now, packet, link_broadcast, false); }

void IpLayer::input(Instant now, Bytes packet, bool link_broadcast, bool looped) {
  ++c_.ip_in_receives;
  pmtu_now_ = max(pmtu_now_, now);
  auto parsed = parse_ipv4(packet, /*verify_checksum=*/true);
  if (!parsed) {
    // Linux ip_rcv_core counts a checksum failure as both CsumErrors and InHdrErrors.
    if (parsed.error() == WireError::BadChecksum) ++c_.ip_in_csum_errors;
    ++c_.ip_in_hdr_errors;
    return;
  }
  Ipv4Packet pkt = *parsed;
  const Ipv4Addr src = pkt.hdr.src;
  const Ipv4Addr dst = pkt.hdr.dst;

  // Martian sources (Linux ip_route_input_slow): a group or broadcast address,
  // our own address arriving from the wire, or 0.0.0.0 except toward a
  // broadcast (DHCP-style clients).
  const bool bcast = is_broadcast(dst);
  if (!looped && (src.is_multicast() || is_broadcast(src) || src.is_loopback() || src == cfg_.addr.addr ||
                  (src.is_unspecified() && !bcast))) {
    ++c_.ip_in_addr_errors;
    return;
  }
  if (looped && is_self(dst)) {
    // Sent to ourselves (the loopback queue): ours whatever the address.
  } else if (dst == cfg_.addr.addr && !cfg_.addr.addr.is_unspecified()) {
    // RFC 1122 3.3.6: a unicast datagram in a link-layer broadcast is discarded.
    if (link_broadcast) {
      ++c_.ip_in_addr_errors;
      return;
    }
  } else if (!(bcast && pkt.hdr.protocol == ipproto::kUdp)) {
    // Not for us. Broadcasts are taken only for UDP: ICMP echo to a broadcast
    // is ignored (icmp_echo_ignore_broadcasts) and TCP never uses them.
    ++c_.ip_in_addr_errors;
    return;
  }

  if (pkt.hdr.is_fragment()) {
    auto whole = reasm_.add(now, pkt);
    if (!whole) return;
    pkt = *whole;
  }
  deliver(now, pkt, bcast, link_broadcast);
}

void IpLayer::deliver(Instant now, const Ipv4Packet& pkt, bool broadcast, bool link_broadcast) {
  switch (pkt.hdr.protocol) {
    case ipproto::kTcp: {
      if (tcp_ == nullptr) break;
      ++c_.ip_in_delivers;
      auto seg = parse_tcp(pkt.payload, pkt.hdr.src, pkt.hdr.dst, /*verify_checksum=*/true);
      if (!seg) {
        if (seg.error() == WireError::BadChecksum) ++c_.tcp_in_csum_errors;
        ++c_.tcp_in_errs;
        return;
      }
      tcp_->on_segment(now, pkt, *seg);
      return;
    }
    case ipproto::kUdp: {
      if (udp_ == nullptr) break;
      ++c_.ip_in_delivers;
      if (udp_->on_datagram(now, pkt, broadcast) == UdpInput::NoPort) {
        // RFC 1122 4.1.3.1: port unreachable for a datagram no socket wants.
        icmp_.send_error(now, icmptype::kDestUnreachable, icmpcode::kPortUnreachable, 0, pkt,
                         link_broadcast || broadcast);
      }
      return;
    }
    case ipproto::kIcmp:
      ++c_.ip_in_delivers;
      icmp_.on_icmp(now, pkt);
      return;
    default:
      break;
  }
  // RFC 1122 3.2.2.1: protocol unreachable for a transport we do not run.
  ++c_.ip_in_unknown_protos;
  icmp_.send_error(now, icmptype::kDestUnreachable, icmpcode::kProtoUnreachable, 0, pkt,
                   link_broadcast || broadcast);
}

// ---- timers ------------------------------------------------------------------------

void IpLayer::poll(Instant now) {
  pmtu_now_ = max(pmtu_now_, now);
  // Frames sent to ourselves; those their delivery sends back to us are
  // taken in the same call, at most kFrames in all (bounded work per call).
  for (size_t n = 0; n < LoopbackQueue::kFrames && !loop_.empty(); ++n) {
    const Bytes f = loop_.front();
    if (f.size() > kEthHeaderLen) input(now, f.subspan(kEthHeaderLen), false, true);
    loop_.pop();
  }
  if (pmtu_count_ != 0) {
    for (PmtuEntry& e : pmtu_) {
      if (e.mtu != 0 && e.expires <= now) {
        e = PmtuEntry{};
        --pmtu_count_;
      }
    }
  }
  // RFC 1122 3.3.2 / Linux ip_expire: time exceeded (fragment reassembly time
  // exceeded, code 1) if the first fragment had arrived.
  reasm_.poll(now, [&](const Ipv4Packet& first) {
    icmp_.send_error(now, icmptype::kTimeExceeded, 1, 0, first, false);
  });
}

Instant IpLayer::poll_at() const {
  // PMTU entries expire lazily in path_mtu(), so they need no wakeup.
  // Looped frames are due at once.
  if (!loop_.empty()) return Instant{0};
  return reasm_.poll_at();
}

void IpLayer::on_unresolved(Instant now, Bytes frame) {
  if (frame.size() <= kEthHeaderLen) return;
  icmp_.on_local_unreachable(now, frame.subspan(kEthHeaderLen));
}

}  // namespace xs
