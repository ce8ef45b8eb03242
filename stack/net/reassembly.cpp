#include "stack/net/reassembly.hpp"

#include <algorithm>
#include <cstring>

namespace xs {

namespace {
constexpr size_t kMaxDatagram = 65535;  // RFC 791: total length is 16 bits
}

Reassembly::Reassembly(StackCounters& counters, const ReassemblyConfig& cfg)
    : c_(counters), cfg_(cfg) {
  slots_.resize(std::max<size_t>(cfg_.max_datagrams, 1));
}

void Reassembly::release_done() {
  if (done_.live) {
    done_ = Datagram{};  // frees the buffers
  }
}

void Reassembly::charge(Datagram& d) {
  // Charge what is actually held, like Linux charges skb truesize.
  size_t now_charged = d.data.capacity() + d.ranges.capacity() * sizeof(d.ranges[0]);
  mem_ = mem_ - d.charged + now_charged;
  d.charged = now_charged;
}

void Reassembly::drop(size_t i) {
  Datagram& d = slots_[i];
  if (!d.live) return;
  mem_ -= d.charged;
  d = Datagram{};
  --live_;
}

void Reassembly::recompute_deadline() {
  Instant next = kNever;
  for (const Datagram& d : slots_) {
    if (d.live) next = min(next, d.started + cfg_.timeout);
  }
  next_deadline_ = next;
}

// Evicts the oldest datagrams (other than slot `keep`) until `need` more bytes
// fit. Returns false when even that is not enough. Evicting the oldest (Linux's
// pre-4.17 ip_evictor) means a flood of never-completed fragments ages out
// instead of blocking every new datagram until the 30 s timeout.
bool Reassembly::make_room(size_t need, size_t keep) {
  while (mem_ + need > cfg_.max_bytes) {
    size_t victim = slots_.size();
    for (size_t i = 0; i < slots_.size(); ++i) {
      if (i == keep || !slots_[i].live) continue;
      if (victim == slots_.size() || slots_[i].started < slots_[victim].started) victim = i;
    }
    if (victim == slots_.size()) return false;
    ++c_.ip_reasm_fails;
    drop(victim);
  }
  return true;
}

std::optional<Ipv4Packet> Reassembly::first_fragment(const Datagram& d) const {
  if (!d.have_first) return std::nullopt;
  Ipv4Packet p;
  p.hdr = d.first_hdr;
  p.header_len = d.first_header_len;
  p.header = Bytes(d.first_header, d.first_header_len);
  p.payload = Bytes(d.data.data(), std::min<size_t>(8, d.data.size()));
  return p;
}

std::optional<Ipv4Packet> Reassembly::add(Instant now, const Ipv4Packet& frag) {
  release_done();
  ++c_.ip_reasm_reqds;
  const Ipv4Repr& h = frag.hdr;
  const uint32_t off = h.frag_offset;
  const uint32_t len = uint32_t(frag.payload.size());
  const uint32_t end = off + len;

  // Find or create the datagram (RFC 791 3.2: buffer id = src, dst, protocol, id).
  size_t slot = slots_.size();
  size_t free_slot = slots_.size();
  for (size_t i = 0; i < slots_.size(); ++i) {
    const Datagram& d = slots_[i];
    if (!d.live) {
      if (free_slot == slots_.size()) free_slot = i;
      continue;
    }
    if (d.src == h.src && d.dst == h.dst && d.protocol == h.protocol && d.ident == h.ident) {
      slot = i;
      break;
    }
  }

  auto fail = [&](size_t i) -> std::optional<Ipv4Packet> {
    ++c_.ip_reasm_fails;
    if (i < slots_.size()) drop(i);
    recompute_deadline();
    return std::nullopt;
  };

  // RFC 791: every fragment but the last carries a multiple of 8 octets, and
  // the reassembled datagram (header included) fits a 16-bit total length.
  if ((h.more_frags && (len == 0 || len % 8 != 0)) || end + frag.header_len > kMaxDatagram) {
    return fail(slot);
  }

  if (slot == slots_.size()) {
    if (free_slot == slots_.size()) {
      // At the datagram limit: the oldest one makes way.
      size_t oldest = 0;
      for (size_t i = 1; i < slots_.size(); ++i) {
        if (slots_[i].started < slots_[oldest].started) oldest = i;
      }
      ++c_.ip_reasm_fails;
      drop(oldest);
      free_slot = oldest;
    }
    slot = free_slot;
    Datagram& d = slots_[slot];
    d = Datagram{};
    d.live = true;
    d.src = h.src;
    d.dst = h.dst;
    d.protocol = h.protocol;
    d.ident = h.ident;
    d.started = now;
    ++live_;
    next_deadline_ = min(next_deadline_, now + cfg_.timeout);
  }
  Datagram& d = slots_[slot];

  // The last fragment fixes the total length; nothing may lie beyond it and
  // it may not change.
  if (!h.more_frags) {
    if (d.have_last && d.total != end) return fail(slot);
    if (!d.ranges.empty() && d.ranges.back().second > end) return fail(slot);
    d.have_last = true;
    d.total = end;
  } else if (d.have_last && end > d.total) {
    return fail(slot);
  }

  // Overlap check against the neighbouring received ranges. A fragment lying
  // wholly inside one received range with identical bytes is a duplicate
  // (retransmission or network duplication) and is ignored, as Linux does;
  // any other overlap discards the whole datagram (RFC 5722 section 4 applied
  // to IPv4, Linux ip_frag_queue): overlaps are how fragment attacks hide data.
  auto it = std::lower_bound(d.ranges.begin(), d.ranges.end(), std::make_pair(off, uint32_t(0)));
  if (len > 0) {
    auto contains = [&](const std::pair<uint32_t, uint32_t>& r) { return r.first <= off && end <= r.second; };
    auto overlaps = [&](const std::pair<uint32_t, uint32_t>& r) { return r.first < end && off < r.second; };
    const std::pair<uint32_t, uint32_t>* hit = nullptr;
    if (it != d.ranges.end() && overlaps(*it)) hit = &*it;
    if (it != d.ranges.begin() && overlaps(*(it - 1))) {
      if (hit != nullptr) return fail(slot);  // spans two ranges: a partial overlap
      hit = &*(it - 1);
    }
    if (hit != nullptr) {
      if (contains(*hit) && std::memcmp(d.data.data() + off, frag.payload.data(), len) == 0) {
        return std::nullopt;  // exact duplicate
      }
      return fail(slot);
    }
  }

  // Store the data.
  if (end > d.data.size()) {
    size_t want = d.have_last ? d.total : end;
    size_t before = d.data.capacity();
    if (want > before && !make_room(want - before, slot)) return fail(slot);
    if (d.have_last) d.data.reserve(d.total);
    d.data.resize(end);
  }
  if (len > 0) {
    std::memcpy(d.data.data() + off, frag.payload.data(), len);
    // Insert [off, end) and merge with adjacent ranges so that the list stays
    // as short as the number of holes.
    bool merge_prev = it != d.ranges.begin() && (it - 1)->second == off;
    bool merge_next = it != d.ranges.end() && it->first == end;
    if (merge_prev && merge_next) {
      (it - 1)->second = it->second;
      d.ranges.erase(it);
    } else if (merge_prev) {
      (it - 1)->second = end;
    } else if (merge_next) {
      it->first = off;
    } else {
      d.ranges.insert(it, {off, end});
    }
  }
  charge(d);
  if (mem_ > cfg_.max_bytes && !make_room(0, slot)) return fail(slot);

  if (off == 0) {
    d.have_first = true;
    d.first_hdr = h;
    d.first_header_len = std::min<size_t>(frag.header.size(), sizeof d.first_header);
    std::memcpy(d.first_header, frag.header.data(), d.first_header_len);
  }

  bool complete = d.have_last && d.have_first &&
                  ((d.total == 0 && d.ranges.empty()) ||
                   (d.ranges.size() == 1 && d.ranges[0].first == 0 && d.ranges[0].second == d.total));
  if (!complete) return std::nullopt;

  ++c_.ip_reasm_oks;
  mem_ -= d.charged;
  d.charged = 0;
  done_ = std::move(d);
  d = Datagram{};
  --live_;
  recompute_deadline();

  Ipv4Packet out;
  out.hdr = done_.first_hdr;
  out.hdr.more_frags = false;
  out.hdr.frag_offset = 0;
  out.hdr.payload_len = uint16_t(done_.total);
  out.header_len = done_.first_header_len;
  // The first fragment's header, as received (its total length and MF bit
  // describe that fragment); used only for ICMP quoting.
  out.header = Bytes(done_.first_header, done_.first_header_len);
  out.payload = Bytes(done_.data.data(), done_.total);
  return out;
}

}  // namespace xs
