#include "stack/udp/udp_socket.hpp"

#include <algorithm>
#include <cstring>

#include "stack/net/frame_lender.hpp"
#include "stack/net/ip_layer.hpp"
#include "stack/udp/udp_layer.hpp"
#include "stack/wire/udp.hpp"

namespace xs {

namespace {
// include/net/sock.h: SOCK_MIN_RCVBUF = 2048 + sizeof(struct sk_buff),
// SOCK_MIN_SNDBUF = 2 * SOCK_MIN_RCVBUF (x86-64 values).
constexpr uint32_t kMinRcvbuf = 2304;
constexpr uint32_t kMinSndbuf = 4608;
}  // namespace

UdpSocket::UdpSocket(UdpLayer& layer)
    : layer_(layer), rcvbuf_(layer.cfg_.rmem_default), sndbuf_(layer.cfg_.wmem_default),
      zc_frames_(layer.cfg_.rx_frames) {}

UdpSocket::~UdpSocket() {
  // UdpLayer::close and ~UdpLayer both end here: every stored record, lent
  // or readable, gives its frame back (once: the records go with the socket).
  size_t p = head_;
  for (size_t i = 0, n = stored(); i < n && frames_held_ > 0; ++i) {
    const Rec r = rec_at(p);
    if (r.in_frame) release_frame(r);
    p = after(r);
  }
}

// ---- binding -----------------------------------------------------------------

Status<SockError> UdpSocket::bind(Endpoint local) {
  // Linux __inet_bind: a socket is bound once (autobind counts).
  if (local_.port != 0) return unexpected(SockError::InvalidArgument);
  IpLayer& ip = layer_.ip_;
  // Our address, the wildcard, or a broadcast/multicast address (to receive
  // those); anything else needs ip_nonlocal_bind.
  if (!local.addr.is_unspecified() && !ip.is_local(local.addr) && !ip.is_broadcast(local.addr) &&
      !local.addr.is_multicast()) {
    return unexpected(SockError::AddressNotAvailable);
  }
  uint16_t port = local.port;
  if (port == 0) {
    auto picked = layer_.pick_port(this, local.addr, std::nullopt);
    if (!picked) return unexpected(SockError::AddressInUse);  // Linux: EADDRINUSE when the range is exhausted
    port = *picked;
  } else if (layer_.conflicts(this, local.addr, port)) {
    return unexpected(SockError::AddressInUse);
  }
  local_ = {local.addr, port};
  bind_addr_locked_ = !local.addr.is_unspecified();
  bind_port_locked_ = local.port != 0;
  layer_.hash(this);
  return {};
}

bool UdpSocket::autobind(std::optional<Endpoint> remote) {
  if (local_.port != 0) return true;
  auto picked = layer_.pick_port(this, local_.addr, remote);
  if (!picked) return false;
  local_.port = *picked;
  layer_.hash(this);
  return true;
}

Status<SockError> UdpSocket::connect(Endpoint remote) {
  IpLayer& ip = layer_.ip_;
  // inet_dgram_connect autobinds before the protocol connect; a failed
  // connect leaves the socket bound, as on Linux.
  if (!autobind(remote)) return unexpected(SockError::WouldBlock);  // Linux: EAGAIN
  auto src = ip.source_for(remote.addr);
  if (!src) return unexpected(SockError::NetUnreachable);
  if (!has_route_for_group(remote.addr, nullptr)) return unexpected(SockError::NetUnreachable);
  // ip4_datagram_connect: a broadcast peer needs SO_BROADCAST, checked here
  // once; sends then use the connected route (udp_sendmsg does not re-check).
  if (ip.is_broadcast(remote.addr) && !broadcast_) return unexpected(SockError::AccessDenied);
  if (!bind_addr_locked_) local_.addr = *src;
  remote_ = remote;
  return {};
}

bool UdpSocket::has_route_for_group(Ipv4Addr dst, const TxOverrides* ov) const {
  // ip_route_output_key_hash: limited broadcast and multicast leave through
  // the device of a given source address (bind(), IP_PKTINFO); without one
  // they need a route like any other destination (fib_lookup: here only the
  // default gateway covers them), else ENETUNREACH before the EACCES check.
  if (!dst.is_broadcast() && !dst.is_multicast()) return true;
  const IpLayer& ip = layer_.ip_;
  const bool named_src = (!local_.addr.is_unspecified() && ip.is_local(local_.addr)) ||
                         (ov != nullptr && ov->src && !ov->src->is_unspecified());
  return named_src || ip.next_hop(dst).has_value();
}

void UdpSocket::disconnect() {
  remote_.reset();
  if (!bind_addr_locked_) local_.addr = Ipv4Addr::any();
  if (!bind_port_locked_ && local_.port != 0) {
    layer_.unhash(this);
    local_.port = 0;
  }
}

// ---- sending ------------------------------------------------------------------

Expected<size_t, SockError> UdpSocket::send_to(Instant now, Bytes payload, std::optional<Endpoint> dst,
                                               const TxOverrides* ov) {
  IpLayer& ip = layer_.ip_;
  StackCounters& c = layer_.c_;
  // inet_send_prepare autobinds before udp_sendmsg looks at anything. The
  // port will serve every destination, so it is drawn at random.
  if (!autobind(std::nullopt)) return unexpected(SockError::WouldBlock);
  if (payload.size() > UdpLayer::kMaxPayload) return unexpected(SockError::MessageTooLong);

  Endpoint to;
  if (dst) {
    if (dst->port == 0) return unexpected(SockError::InvalidArgument);  // udp_sendmsg
    to = *dst;
  } else if (remote_) {
    to = *remote_;
  } else {
    return unexpected(SockError::DestAddrRequired);
  }

  auto route_src = ip.source_for(to.addr);
  if (!route_src) return unexpected(SockError::NetUnreachable);
  // udp_sendmsg: without a msg_name the connected route is used as it is
  // (connect() checked it); with one, a fresh route lookup checks it again.
  const bool fresh_route = dst.has_value();
  if (fresh_route && !has_route_for_group(to.addr, ov)) return unexpected(SockError::NetUnreachable);
  if (fresh_route && ip.is_broadcast(to.addr) && !broadcast_) return unexpected(SockError::AccessDenied);
  Ipv4Addr src = local_.addr.is_unspecified() || ip.is_broadcast(local_.addr) || local_.addr.is_multicast()
                     ? *route_src
                     : local_.addr;
  if (ov != nullptr && ov->src) {
    // IP_PKTINFO's ipi_spec_dst replaces the bound address (udp_sendmsg:
    // saddr = ipc.addr), 0 leaving the choice to the route. The route lookup
    // (ip_route_output_key_hash) refuses a multicast, broadcast source with
    // EINVAL and one that is not ours with ENETUNREACH.
    const Ipv4Addr want = *ov->src;
    if (want.is_unspecified()) {
      src = *route_src;
    } else {
      if (want.is_multicast() || want.is_broadcast()) return unexpected(SockError::InvalidArgument);
      if (!ip.is_local(want)) return unexpected(SockError::NetUnreachable);
      src = want;
    }
  }

  // sock_alloc_send_skb reports (and clears) a pending asynchronous error.
  if (auto e = take_error()) return unexpected(*e);

  const size_t l4_len = kUdpHeaderLen + payload.size();
  IpTxParams p;
  p.src = src;
  p.dst = to.addr;
  p.protocol = ipproto::kUdp;
  p.tos = ov != nullptr && ov->tos ? *ov->tos : tos_;
  // IP_MULTICAST_TTL defaults to 1; unicast and broadcast use IP_TTL (an
  // IP_TTL cmsg overrides both: ip_setup_cork takes ipc->ttl first).
  p.ttl = ov != nullptr && ov->ttl ? *ov->ttl : to.addr.is_multicast() ? 1 : ttl();
  // IP_MTU_DISCOVER (__ip_append_data, __ip_make_skb): DO, PROBE and
  // INTERFACE refuse what does not fit (EMSGSIZE), against the path MTU (DO)
  // or the interface's (the others); DF on DO and PROBE, and under WANT (the
  // default) on datagrams that fit the path MTU, larger ones being
  // fragmented locally without DF; DONT and OMIT never set DF.
  {
    enum : uint8_t { kWant = 1, kDo = 2, kProbe = 3, kOmit = 5 };
    const size_t ip_len = kIpv4MinHeaderLen + l4_len;
    const uint16_t path = ip.path_mtu(to.addr);
    const uint16_t mtu = pmtudisc_ >= kProbe ? ip.device_mtu() : path;
    if (pmtudisc_ >= kDo && pmtudisc_ != kOmit && ip_len > mtu) return unexpected(SockError::MessageTooLong);
    p.dont_frag = pmtudisc_ == kDo || pmtudisc_ == kProbe || (pmtudisc_ == kWant && ip_len <= path);
  }
  MutBytes out = ip.begin(now, p, l4_len);
  if (out.empty()) {
    // No TX buffer or ARP queue space: the datagram is lost, which UDP
    // permits; Linux likewise returns success unless IP_RECVERR is set.
    ++c.udp_sndbuf_errors;
    return payload.size();
  }
  if (!payload.empty()) std::memcpy(out.data() + kUdpHeaderLen, payload.data(), payload.size());
  emit_udp(local_.port, to.port, src, to.addr, out);
  ip.commit();
  ++c.udp_out_datagrams;
  return payload.size();
}

// ---- receiving ------------------------------------------------------------------

UdpSocket::Rec UdpSocket::rec_at(size_t pos) const {
  // The writer wrapped here: without room for a header (implicit), or with
  // a wrap mark where the next header would be.
  if (ring_.size() - pos < kRecHdr) pos = 0;
  uint32_t len;
  std::memcpy(&len, ring_.data() + pos, 4);
  if (len == kWrapMark) {
    pos = 0;
    std::memcpy(&len, ring_.data(), 4);
  }
  const bool in_frame = (ring_[pos + 22] & kFlagFrame) != 0;
  Rec r{pos, len, in_frame ? uint32_t(kFrameBody) : len, in_frame, {}};
  std::memcpy(&r.from.addr.v, ring_.data() + pos + 4, 4);
  std::memcpy(&r.from.port, ring_.data() + pos + 8, 2);
  return r;
}

const uint8_t* UdpSocket::payload_at(const Rec& r) const {
  const uint8_t* body = ring_.data() + r.pos + kRecHdr;
  if (!r.in_frame) return body;
  const uint8_t* p;
  std::memcpy(&p, body, sizeof p);
  return p;
}

std::optional<uint64_t> UdpSocket::hold_frame(Bytes payload) {
  FrameLender* l = layer_.frame_lender();
  if (l == nullptr) return std::nullopt;
  // All of a socket's frames come back through the lender that held them.
  if (frames_held_ > 0 && l != held_by_) return std::nullopt;
  auto h = l->hold(payload);
  if (h) {
    held_by_ = l;
    ++frames_held_;
  }
  return h;
}

void UdpSocket::release_frame(const Rec& r) {
  uint64_t h;
  std::memcpy(&h, ring_.data() + r.pos + kRecHdr + 8, 8);
  held_by_->release(h);
  if (--frames_held_ == 0) held_by_ = nullptr;
}

UdpRxMeta UdpSocket::meta_at(const Rec& r) const {
  const uint8_t* h = ring_.data() + r.pos;
  UdpRxMeta m;
  std::memcpy(&m.dst_port, h + 10, 2);
  std::memcpy(&m.dst.v, h + 12, 4);
  std::memcpy(&m.spec_dst.v, h + 16, 4);
  m.ttl = h[20];
  m.tos = h[21];
  m.pktinfo = (h[22] & kFlagPktinfo) != 0;
  std::memcpy(&m.arrival.us, h + 24, 8);
  return m;
}

std::optional<size_t> UdpSocket::place(size_t n) const {
  const size_t size = ring_.size();
  if (stored() == 0) return n <= size ? std::optional<size_t>(0) : std::nullopt;
  if (tail_ > head_) {  // stored records [head_, tail_) do not wrap
    if (size - tail_ >= n) return tail_;
    if (n < head_) return size_t{0};  // strictly: tail_ == head_ would read as empty
    return std::nullopt;
  }
  if (tail_ + n < head_) return tail_;  // wrapped: [tail_, head_) is free
  return std::nullopt;
}

size_t UdpSocket::ring_target() const {
  // rcvbuf's worth of records plus one maximal record: records do not wrap,
  // so up to one record's worth at the end of the ring may be unusable.
  // Every record is charged at least its stored size (datagram_overhead >=
  // kRecHdr), so an admitted datagram always finds a place; place() still
  // checks, and a datagram without one is dropped like one over rcvbuf.
  return size_t(rcvbuf_) + kRecHdr + UdpLayer::kMaxPayload + 1;
}

void UdpSocket::ensure_ring() {
  const size_t want = ring_target();
  if (ring_.size() >= want) return;
  // Growing moves the records; lent ones must stay put. Grown at the next
  // enqueue or release after the last lent datagram is released.
  if (lent_ > 0) return;
  std::vector<uint8_t> bigger(want);
  size_t q = 0, p = head_;
  for (size_t i = 0; i < stored(); ++i) {  // linearise, record by record
    const Rec r = rec_at(p);
    // A frame-backed record moves its body; the frame stays where it is.
    std::memcpy(bigger.data() + q, ring_.data() + r.pos, kRecHdr + r.body);
    q += kRecHdr + r.body;
    p = after(r);
  }
  ring_ = std::move(bigger);
  head_ = read_ = 0;
  tail_ = q;
}

bool UdpSocket::enqueue(Bytes payload, Endpoint from, const UdpRxMeta& meta) {
  const size_t charge = payload.size() + layer_.cfg_.datagram_overhead;
  // Like __udp_enqueue_schedule_skb, the queue is bounded by rcvbuf; an
  // empty queue takes any one datagram (Linux admits a datagram while the
  // memory in use is <= rcvbuf, so one always fits). Unlike Linux we never
  // exceed rcvbuf otherwise, which keeps the ring's size fixed. Lent
  // datagrams (zero-copy receive) are still queued and count.
  if (stored() > 0 && charged_ + charge > rcvbuf_) return false;
  ensure_ring();
  // Whether the datagram is admitted does not depend on zc_frames: it must
  // have room as a copied record. A frame-backed record is smaller, and
  // place() finds room for it whenever it does for a larger one.
  if (!place(kRecHdr + payload.size())) return false;
  // An empty datagram has nothing worth keeping a frame for.
  std::optional<uint64_t> handle;
  if (zc_frames_ && !payload.empty()) handle = hold_frame(payload);
  const size_t n = kRecHdr + (handle ? kFrameBody : payload.size());
  const auto pos = place(n);
  if (!pos) {  // unreachable (see above); never keep a frame for nothing
    if (handle) {
      held_by_->release(*handle);
      if (--frames_held_ == 0) held_by_ = nullptr;
    }
    return false;
  }
  // Wrapping: mark the end of the ring unused (rec_at skips it).
  if (stored() > 0 && *pos != tail_ && ring_.size() - tail_ >= kRecHdr) {
    std::memcpy(ring_.data() + tail_, &kWrapMark, 4);
  }
  uint8_t* rec = ring_.data() + *pos;
  const uint32_t len = uint32_t(payload.size());
  std::memset(rec, 0, kRecHdr);
  std::memcpy(rec, &len, 4);
  std::memcpy(rec + 4, &from.addr.v, 4);
  std::memcpy(rec + 8, &from.port, 2);
  std::memcpy(rec + 10, &meta.dst_port, 2);
  std::memcpy(rec + 12, &meta.dst.v, 4);
  std::memcpy(rec + 16, &meta.spec_dst.v, 4);
  rec[20] = meta.ttl;
  rec[21] = meta.tos;
  rec[22] = uint8_t((meta.pktinfo ? kFlagPktinfo : 0) | (handle ? kFlagFrame : 0));
  std::memcpy(rec + 24, &meta.arrival.us, 8);
  if (handle) {
    static_assert(sizeof(const uint8_t*) <= 8);
    const uint8_t* p = payload.data();
    std::memcpy(rec + kRecHdr, &p, sizeof p);
    std::memcpy(rec + kRecHdr + 8, &*handle, 8);
  } else if (!payload.empty()) {
    std::memcpy(rec + kRecHdr, payload.data(), payload.size());
  }
  if (stored() == 0) head_ = *pos;
  if (count_ == 0) read_ = *pos;
  tail_ = *pos + n;
  ++count_;
  charged_ += charge;
  payload_bytes_ += payload.size();
  // sk_data_ready: every datagram is a new event for edge-triggered waiters.
  notify();
  return true;
}

Expected<UdpRecv, SockError> UdpSocket::recv_from(MutBytes out, bool peek, size_t peek_off) {
  // __skb_try_recv_datagram reports a pending error before looking at the queue.
  if (auto e = take_error()) return unexpected(*e);
  if (count_ == 0) return unexpected(SockError::WouldBlock);
  // The queue frees records from its front, where lent ones sit: a
  // consuming read waits until they are released (MSG_PEEK may look).
  if (lent_ > 0 && !peek) return unexpected(SockError::Busy);
  Rec rec = rec_at(read_);
  // SO_PEEK_OFF (__skb_try_recv_from_queue): a peek starts `peek_off` bytes
  // into the queue, passing over whole datagrams it covers.
  size_t off = peek ? peek_off : 0;
  for (size_t i = 1; off > 0 && off >= rec.len; ++i) {
    if (i >= count_) return unexpected(SockError::WouldBlock);
    off -= rec.len;
    rec = rec_at(rec_at(after(rec)).pos);
  }
  UdpRecv r;
  r.from = rec.from;
  r.datagram_len = rec.len - off;
  r.meta = meta_at(rec);
  r.copied = std::min<size_t>(rec.len - off, out.size());
  if (r.copied > 0) std::memcpy(out.data(), payload_at(rec) + off, r.copied);
  if (!peek) {  // the whole datagram goes, truncated or not
    --count_;
    payload_bytes_ -= rec.len;
    drop_front();  // nothing is lent: head_ == read_
    read_ = head_;
  }
  return r;
}

void UdpSocket::drop_front() {
  const Rec rec = rec_at(head_);
  if (rec.in_frame) release_frame(rec);
  charged_ -= rec.len + layer_.cfg_.datagram_overhead;
  if (stored() == 0) {
    head_ = read_ = tail_ = 0;
  } else {
    head_ = rec_at(after(rec)).pos;
  }
}

Expected<size_t, SockError> UdpSocket::zc_borrow(std::span<View> out) {
  if (auto e = take_error()) return unexpected(*e);
  if (count_ == 0) return unexpected(SockError::WouldBlock);
  size_t k = 0;
  while (k < out.size() && count_ > 0) {
    const Rec rec = rec_at(read_);
    out[k++] = View{Bytes(payload_at(rec), rec.len), rec.from};
    --count_;
    ++lent_;
    payload_bytes_ -= rec.len;
    read_ = after(rec);
    if (count_ > 0) read_ = rec_at(read_).pos;
  }
  return k;
}

Status<SockError> UdpSocket::zc_release(size_t n) {
  if (n > lent_) return unexpected(SockError::InvalidArgument);
  for (size_t i = 0; i < n; ++i) {
    --lent_;
    drop_front();
  }
  if (lent_ == 0 && !ring_.empty()) ensure_ring();  // a growth deferred by the loans
  return {};
}

size_t UdpSocket::bytes_readable() const { return count_ == 0 ? 0 : rec_at(read_).len; }

// ---- errors and readiness -----------------------------------------------------------

std::optional<SockError> UdpSocket::take_error() {
  auto e = error_;
  error_.reset();
  return e;
}

void UdpSocket::set_error(SockError e) {
  error_ = e;
  notify();  // sk_error_report
}

uint32_t UdpSocket::readiness() const {
  // datagram_poll: readable with a queued datagram, always writable (datagrams
  // leave at once), EPOLLERR while an error is pending.
  uint32_t m = ev::kOut | ev::kWrNorm;
  if (count_ > 0) m |= ev::kIn | ev::kRdNorm;
  if (error_) m |= ev::kErr;
  return m;
}

// ---- options ------------------------------------------------------------------------

void UdpSocket::set_rcvbuf(uint32_t bytes) {
  // sock_setsockopt SO_RCVBUF: min(val, rmem_max) * 2, at least SOCK_MIN_RCVBUF.
  const uint64_t v = std::min<uint64_t>(bytes, layer_.cfg_.rmem_max) * 2;
  rcvbuf_ = uint32_t(std::max<uint64_t>(v, kMinRcvbuf));
  if (!ring_.empty()) ensure_ring();  // grow now; never shrink under queued data
}

void UdpSocket::set_sndbuf(uint32_t bytes) {
  const uint64_t v = std::min<uint64_t>(bytes, layer_.cfg_.wmem_max) * 2;
  sndbuf_ = uint32_t(std::max<uint64_t>(v, kMinSndbuf));
}

Status<SockError> UdpSocket::set_ttl(int ttl) {
  if (ttl != -1 && (ttl < 1 || ttl > 255)) return unexpected(SockError::InvalidArgument);
  ttl_ = ttl;
  return {};
}

uint8_t UdpSocket::ttl() const { return ttl_ == -1 ? layer_.cfg_.default_ttl : uint8_t(ttl_); }

}  // namespace xs
