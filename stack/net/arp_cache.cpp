#include "stack/net/arp_cache.hpp"

#include <algorithm>
#include <cstring>

#include "stack/wire/ethernet.hpp"

namespace xs {

namespace {
size_t pow2_at_least(size_t n) {
  size_t p = 1;
  while (p < n) p <<= 1;
  return p;
}
}  // namespace

ArpCache::ArpCache(MacAddr mac, Ipv4Addr ip, FrameSink& sink, StackCounters& counters,
                   const ArpConfig& cfg)
    : mac_(mac), ip_(ip), sink_(sink), c_(counters), cfg_(cfg) {
  cfg_.max_entries = std::clamp<size_t>(cfg_.max_entries, 1, 32767);
  cfg_.pool_buffers = std::min<size_t>(cfg_.pool_buffers, 255);  // indices are uint8_t
  cfg_.max_queue_per_entry = std::clamp<size_t>(cfg_.max_queue_per_entry, 1, kMaxQueue);
  entries_.resize(cfg_.max_entries);
  free_entries_.reserve(cfg_.max_entries);
  for (size_t i = cfg_.max_entries; i-- > 0;) free_entries_.push_back(int32_t(i));
  index_.assign(pow2_at_least(cfg_.max_entries * 2), kNone);
  index_mask_ = index_.size() - 1;
  frame_len_ = sink_.max_frame_len();
  pool_.resize(cfg_.pool_buffers * frame_len_);
  buf_len_.resize(cfg_.pool_buffers);
  free_bufs_.reserve(cfg_.pool_buffers);
  for (size_t i = cfg_.pool_buffers; i-- > 0;) free_bufs_.push_back(uint8_t(i));
}

// ---- index -----------------------------------------------------------------

size_t ArpCache::slot_of(Ipv4Addr ip) const {
  // Fibonacci hashing; next hops are attacker-influenced only through ARP
  // requests we answer, and the table is bounded, so no keyed hash is needed.
  return size_t((uint64_t(ip.v) * 0x9e3779b97f4a7c15ull) >> 32) & index_mask_;
}

int32_t ArpCache::find(Ipv4Addr ip) const {
  for (size_t s = slot_of(ip);; s = (s + 1) & index_mask_) {
    int32_t i = index_[s];
    if (i == kNone) return kNone;
    if (entries_[size_t(i)].ip == ip) return i;
  }
}

void ArpCache::index_insert(Ipv4Addr ip, int32_t idx) {
  size_t s = slot_of(ip);
  while (index_[s] != kNone) s = (s + 1) & index_mask_;
  index_[s] = idx;
}

void ArpCache::index_erase(Ipv4Addr ip) {
  size_t s = slot_of(ip);
  while (index_[s] != kNone && entries_[size_t(index_[s])].ip != ip) s = (s + 1) & index_mask_;
  if (index_[s] == kNone) return;
  // Backward-shift deletion keeps every probe chain unbroken without tombstones.
  size_t hole = s;
  for (size_t j = (s + 1) & index_mask_; index_[j] != kNone; j = (j + 1) & index_mask_) {
    size_t home = slot_of(entries_[size_t(index_[j])].ip);
    // Move j into the hole unless its home lies cyclically in (hole, j].
    bool home_between = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
    if (!home_between) {
      index_[hole] = index_[j];
      hole = j;
    }
  }
  index_[hole] = kNone;
}

int32_t ArpCache::create(Instant now, Ipv4Addr ip) {
  if (free_entries_.empty()) {
    // Table full: evict the least recently used STALE entry (Linux's forced
    // GC also only removes entries that are not in use or being resolved).
    int32_t victim = kNone;
    for (size_t i = 0; i < entries_.size(); ++i) {
      const Entry& e = entries_[i];
      if (e.live && e.state == State::Stale &&
          (victim == kNone || e.last_used < entries_[size_t(victim)].last_used)) {
        victim = int32_t(i);
      }
    }
    if (victim == kNone) return kNone;
    erase(victim);
  }
  int32_t idx = free_entries_.back();
  free_entries_.pop_back();
  Entry& e = entries_[size_t(idx)];
  e = Entry{};
  e.ip = ip;
  e.live = true;
  e.confirmed = now;
  e.last_used = now;
  e.next_probe = kNever;
  index_insert(ip, idx);
  ++used_;
  return idx;
}

void ArpCache::erase(int32_t idx) {
  Entry& e = entries_[size_t(idx)];
  if (!e.live) return;
  drop_queue(e);
  index_erase(e.ip);
  e.live = false;
  free_entries_.push_back(idx);
  --used_;
}

// ---- sending ---------------------------------------------------------------

void ArpCache::send_arp(ArpOp op, MacAddr eth_dst, MacAddr target_mac, Ipv4Addr target_ip) {
  MutBytes buf = sink_.tx_acquire();
  if (buf.size() < kEthHeaderLen + kArpLen) {
    ++c_.eth_tx_drop_no_buffer;
    return;
  }
  emit_ethernet({eth_dst, mac_, ethertype::kArp}, buf);
  emit_arp({op, mac_, ip_, target_mac, target_ip}, buf.subspan(kEthHeaderLen));
  sink_.tx_commit(kEthHeaderLen + kArpLen);
  ++c_.eth_tx_frames;
  if (op == ArpOp::Request) ++c_.arp_tx_requests; else ++c_.arp_tx_replies;
}

void ArpCache::send_request(Entry& e, bool unicast) {
  if (cfg_.external != nullptr) {
    ++c_.arp_tx_requests;
    cfg_.external->request(e.ip);
    return;
  }
  // RFC 1122 2.3.2.1: re-verification of a cached entry is a unicast poll to
  // the cached MAC, so it does not disturb every host on the link.
  send_arp(ArpOp::Request, unicast ? e.mac : MacAddr::broadcast(), MacAddr{}, e.ip);
}

void ArpCache::flush_queue(Entry& e) {
  while (e.q_len > 0) {
    uint8_t b = e.q[e.q_head];
    e.q_head = uint8_t((e.q_head + 1) % kMaxQueue);
    --e.q_len;
    uint8_t* src = pool_.data() + size_t(b) * frame_len_;
    size_t len = buf_len_[b];
    MutBytes out = sink_.tx_acquire();
    if (out.size() < len) {
      ++c_.eth_tx_drop_no_buffer;
    } else {
      std::memcpy(out.data(), src, len);
      std::memcpy(out.data(), e.mac.b.data(), 6);  // destination MAC, now known
      sink_.tx_commit(len);
      ++c_.eth_tx_frames;
    }
    free_bufs_.push_back(b);
  }
  e.q_head = 0;
}

void ArpCache::drop_queue(Entry& e) {
  while (e.q_len > 0) {
    free_bufs_.push_back(e.q[e.q_head]);
    e.q_head = uint8_t((e.q_head + 1) % kMaxQueue);
    --e.q_len;
  }
  e.q_head = 0;
}

void ArpCache::fail_entry(Instant now, int32_t idx) {
  Entry& e = entries_[size_t(idx)];
  // Take the frames out first: the observer may send (and enqueue) again.
  uint8_t bufs[kMaxQueue];
  uint8_t n = 0;
  while (e.q_len > 0) {
    bufs[n++] = e.q[e.q_head];
    e.q_head = uint8_t((e.q_head + 1) % kMaxQueue);
    --e.q_len;
  }
  erase(idx);
  for (uint8_t k = 0; k < n; ++k) {
    if (failure_observer_ != nullptr) {
      failure_observer_->on_unresolved(now, Bytes(pool_.data() + size_t(bufs[k]) * frame_len_, buf_len_[bufs[k]]));
    }
    free_bufs_.push_back(bufs[k]);
  }
}

// ---- output path -------------------------------------------------------------

std::optional<MacAddr> ArpCache::lookup(Instant now, Ipv4Addr next_hop) {
  int32_t idx = find(next_hop);
  if (idx == kNone) return std::nullopt;
  Entry& e = entries_[size_t(idx)];
  switch (e.state) {
    case State::Incomplete:
      return std::nullopt;
    case State::Stale:
      // Used while stale: keep sending to the cached MAC but verify it with
      // unicast requests (Linux STALE -> DELAY -> PROBE).
      e.state = State::Probe;
      e.probes = 1;
      e.next_probe = now + cfg_.retrans_time;
      note_deadline(e.next_probe);
      send_request(e, /*unicast=*/true);
      break;
    case State::Reachable:
    case State::Probe:
    case State::Permanent:
      break;
  }
  e.last_used = now;
  return e.mac;
}

MutBytes ArpCache::enqueue_begin(Instant now, Ipv4Addr next_hop) {
  // A begin without commit (the caller gave up on the packet) must not leak
  // its pool buffer.
  if (pending_buf_ != kNone) {
    free_bufs_.push_back(uint8_t(pending_buf_));
    pending_buf_ = kNone;
    pending_entry_ = kNone;
  }
  int32_t idx = find(next_hop);
  if (idx == kNone) {
    idx = create(now, next_hop);
    if (idx == kNone) {
      ++c_.arp_queue_drops;
      return {};
    }
    Entry& e = entries_[size_t(idx)];
    e.state = State::Incomplete;
    e.probes = 1;
    e.next_probe = now + cfg_.retrans_time;
    note_deadline(e.next_probe);
    send_request(e, /*unicast=*/false);
  }
  Entry& e = entries_[size_t(idx)];
  e.last_used = now;
  // Per-entry bound: the oldest queued frame gives way (Linux's
  // neigh __neigh_event_send drops the head of arp_queue on overflow).
  if (e.q_len >= cfg_.max_queue_per_entry || (free_bufs_.empty() && e.q_len > 0)) {
    free_bufs_.push_back(e.q[e.q_head]);
    e.q_head = uint8_t((e.q_head + 1) % kMaxQueue);
    --e.q_len;
    ++c_.arp_queue_drops;
  }
  if (free_bufs_.empty()) {
    // The pool is held by other neighbours' frames; this one is lost.
    ++c_.arp_queue_drops;
    return {};
  }
  uint8_t b = free_bufs_.back();
  free_bufs_.pop_back();
  pending_buf_ = b;
  pending_entry_ = idx;
  return {pool_.data() + size_t(b) * frame_len_, frame_len_};
}

void ArpCache::enqueue_commit(size_t len) {
  if (pending_buf_ == kNone) return;
  uint8_t b = uint8_t(pending_buf_);
  Entry& e = entries_[size_t(pending_entry_)];
  pending_buf_ = kNone;
  pending_entry_ = kNone;
  buf_len_[b] = uint16_t(std::min(len, frame_len_));
  e.q[(e.q_head + e.q_len) % kMaxQueue] = b;
  ++e.q_len;
  // The entry may have resolved in between (it cannot within one call
  // sequence today, but the invariant is cheap to keep).
  if (e.state != State::Incomplete) flush_queue(e);
}

// ---- input -------------------------------------------------------------------

void ArpCache::update_from(Instant now, Entry& e, MacAddr mac, bool confirmed) {
  if (e.state == State::Permanent) return;
  bool was_incomplete = e.state == State::Incomplete;
  bool changed = e.mac != mac;
  e.mac = mac;
  if (confirmed) {
    // A reply to us proves two-way reachability.
    e.state = State::Reachable;
    e.confirmed = now;
    e.probes = 0;
    e.next_probe = kNever;
    note_deadline(now + cfg_.reachable_time);
  } else if (was_incomplete || changed) {
    // A request only shows the sender exists at this MAC (Linux neigh_event_ns
    // enters STALE): the first use re-verifies it.
    e.state = State::Stale;
    e.probes = 0;
    e.next_probe = kNever;
    note_deadline(e.last_used + cfg_.gc_stale_time);
  }
  if (was_incomplete) flush_queue(e);
}

void ArpCache::on_arp(Instant now, Bytes payload) {
  ++c_.arp_rx;
  // Shared-IP mode: ARP belongs to the kernel; a stray frame is not ours to
  // answer (two replies for one address would confuse the neighbour).
  if (cfg_.external != nullptr) return;
  auto parsed = parse_arp(payload);
  if (!parsed) {
    ++c_.arp_rx_bad;
    return;
  }
  const ArpRepr& a = *parsed;
  // Never learn nonsense: group or zero sender MACs, broadcast/multicast
  // sender addresses, or someone claiming our own address.
  bool sender_ok = !a.sender_mac.is_multicast() && !a.sender_mac.is_zero() &&
                   !a.sender_ip.is_broadcast() && !a.sender_ip.is_multicast();
  if (!sender_ok) {
    ++c_.arp_rx_bad;
    return;
  }
  bool for_us = !ip_.is_unspecified() && a.target_ip == ip_;
  bool learnable = !a.sender_ip.is_unspecified() && a.sender_ip != ip_;

  // RFC 826 "Packet Reception": update an existing entry for the sender
  // (merge), and add one if we are the target of a request. Unsolicited
  // replies do not create entries (Linux arp_accept=0).
  if (learnable) {
    int32_t idx = find(a.sender_ip);
    bool is_reply_to_us = a.op == ArpOp::Reply && for_us;
    if (idx != kNone) {
      update_from(now, entries_[size_t(idx)], a.sender_mac, is_reply_to_us);
    } else if (for_us && a.op == ArpOp::Request) {
      idx = create(now, a.sender_ip);
      if (idx != kNone) {
        Entry& e = entries_[size_t(idx)];
        e.mac = a.sender_mac;
        e.state = State::Stale;
        note_deadline(now + cfg_.gc_stale_time);
      }
    }
  }
  if (for_us && a.op == ArpOp::Request) {
    // Answer straight to the requester (an RFC 5227 probe has sender IP 0;
    // Linux answers it the same way).
    send_arp(ArpOp::Reply, a.sender_mac, a.sender_mac, a.sender_ip);
  }
}

// ---- administration -----------------------------------------------------------

bool ArpCache::insert_static(Ipv4Addr ip, MacAddr mac) {
  int32_t idx = find(ip);
  if (idx == kNone) idx = create(Instant{}, ip);
  if (idx == kNone) return false;
  Entry& e = entries_[size_t(idx)];
  bool was_incomplete = e.state == State::Incomplete;
  e.mac = mac;
  e.state = State::Permanent;
  e.next_probe = kNever;
  e.probes = 0;
  if (was_incomplete) flush_queue(e);
  return true;
}

void ArpCache::remove(Ipv4Addr ip) {
  int32_t idx = find(ip);
  if (idx != kNone) erase(idx);
}

// ---- timers ---------------------------------------------------------------------

Instant ArpCache::deadline_of(const Entry& e) const {
  switch (e.state) {
    case State::Incomplete:
    case State::Probe: return e.next_probe;
    case State::Reachable: return e.confirmed + cfg_.reachable_time;
    case State::Stale: return e.last_used + cfg_.gc_stale_time;
    case State::Permanent: return kNever;
  }
  return kNever;
}

void ArpCache::poll(Instant now) {
  // Deadlines only move later between scans (uses and confirmations push them
  // out), so a scan is needed only once the earliest recorded one is due.
  if (now < next_deadline_) return;
  // Deadlines noted while scanning (an entry created by a failure observer's
  // send) must survive the scan's own result.
  next_deadline_ = kNever;
  Instant next = kNever;
  for (size_t i = 0; i < entries_.size(); ++i) {
    Entry& e = entries_[i];
    if (!e.live) continue;
    if (deadline_of(e) <= now) {
      switch (e.state) {
        case State::Incomplete:
        case State::Probe: {
          uint8_t limit = e.state == State::Incomplete ? cfg_.mcast_probes : cfg_.ucast_probes;
          if (e.probes >= limit) {
            // RFC 1122 2.3.2.1: give up; queued packets are dropped and the
            // next send starts a fresh resolution.
            if (e.state == State::Incomplete) {
              ++c_.arp_resolve_failed;
              fail_entry(now, int32_t(i));
            } else {
              erase(int32_t(i));
            }
            continue;
          }
          ++e.probes;
          e.next_probe = now + cfg_.retrans_time;
          send_request(e, e.state == State::Probe);
          break;
        }
        case State::Reachable:
          e.state = State::Stale;
          break;
        case State::Stale:
          erase(int32_t(i));
          continue;
        case State::Permanent:
          break;
      }
    }
    next = min(next, deadline_of(e));
  }
  next_deadline_ = min(next_deadline_, next);
}

// ---- introspection ---------------------------------------------------------------

std::optional<ArpCache::State> ArpCache::state_of(Ipv4Addr ip) const {
  int32_t idx = find(ip);
  if (idx == kNone) return std::nullopt;
  return entries_[size_t(idx)].state;
}

std::optional<MacAddr> ArpCache::peek(Ipv4Addr ip) const {
  int32_t idx = find(ip);
  if (idx == kNone || entries_[size_t(idx)].state == State::Incomplete) return std::nullopt;
  return entries_[size_t(idx)].mac;
}

size_t ArpCache::queued(Ipv4Addr ip) const {
  int32_t idx = find(ip);
  return idx == kNone ? 0 : entries_[size_t(idx)].q_len;
}

}  // namespace xs
