#include "stack/udp/udp_socket.hpp"

#include <algorithm>
#include <cstring>

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
    : layer_(layer), rcvbuf_(layer.cfg_.rmem_default), sndbuf_(layer.cfg_.wmem_default) {}

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
  // ip4_datagram_connect: a broadcast peer needs SO_BROADCAST.
  if (ip.is_broadcast(remote.addr) && !broadcast_) return unexpected(SockError::AccessDenied);
  if (!bind_addr_locked_) local_.addr = *src;
  remote_ = remote;
  return {};
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

Expected<size_t, SockError> UdpSocket::send_to(Instant now, Bytes payload, std::optional<Endpoint> dst) {
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
  if (ip.is_broadcast(to.addr) && !broadcast_) return unexpected(SockError::AccessDenied);
  const Ipv4Addr src = local_.addr.is_unspecified() || ip.is_broadcast(local_.addr) || local_.addr.is_multicast()
                           ? *route_src
                           : local_.addr;

  // sock_alloc_send_skb reports (and clears) a pending asynchronous error.
  if (auto e = take_error()) return unexpected(*e);

  const size_t l4_len = kUdpHeaderLen + payload.size();
  IpTxParams p;
  p.src = src;
  p.dst = to.addr;
  p.protocol = ipproto::kUdp;
  p.tos = tos_;
  // IP_MULTICAST_TTL defaults to 1; unicast and broadcast use IP_TTL.
  p.ttl = to.addr.is_multicast() ? 1 : ttl();
  // IP_PMTUDISC_WANT (Linux's default for UDP): DF on datagrams that fit the
  // path MTU; larger ones are fragmented locally without DF.
  p.dont_frag = kIpv4MinHeaderLen + l4_len <= ip.path_mtu(to.addr);
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

void UdpSocket::ring_write(size_t pos, const uint8_t* src, size_t n) {
  if (n == 0) return;
  const size_t size = ring_.size();
  pos %= size;
  const size_t first = std::min(n, size - pos);
  if (first > 0) std::memcpy(ring_.data() + pos, src, first);
  if (n > first) std::memcpy(ring_.data(), src + first, n - first);
}

void UdpSocket::ring_read(size_t pos, uint8_t* dst, size_t n) const {
  if (n == 0) return;
  const size_t size = ring_.size();
  pos %= size;
  const size_t first = std::min(n, size - pos);
  if (first > 0) std::memcpy(dst, ring_.data() + pos, first);
  if (n > first) std::memcpy(dst + first, ring_.data(), n - first);
}

void UdpSocket::ensure_ring() {
  // Large enough for rcvbuf's worth of records (each is charged at least its
  // stored size) and always for one maximal datagram, which is accepted
  // into an empty queue whatever rcvbuf says.
  const size_t want = std::max<size_t>(rcvbuf_, kRecHdr + UdpLayer::kMaxPayload);
  if (ring_.size() >= want) return;
  std::vector<uint8_t> bigger(want);
  ring_read(head_, bigger.data(), used_);  // linearise; a no-op when empty
  ring_ = std::move(bigger);
  head_ = 0;
}

bool UdpSocket::enqueue(Bytes payload, Endpoint from) {
  const size_t charge = payload.size() + layer_.cfg_.datagram_overhead;
  // Like __udp_enqueue_schedule_skb, the queue is bounded by rcvbuf; an
  // empty queue takes any one datagram (Linux admits a datagram while the
  // memory in use is <= rcvbuf, so one always fits). Unlike Linux we never
  // exceed rcvbuf otherwise, which keeps the ring's size fixed.
  if (count_ > 0 && charged_ + charge > rcvbuf_) return false;
  if (ring_.empty()) ensure_ring();
  uint8_t hdr[kRecHdr] = {};
  const uint32_t len = uint32_t(payload.size());
  std::memcpy(hdr, &len, 4);
  std::memcpy(hdr + 4, &from.addr.v, 4);
  std::memcpy(hdr + 8, &from.port, 2);
  const size_t tail = head_ + used_;
  ring_write(tail, hdr, kRecHdr);
  if (!payload.empty()) ring_write(tail + kRecHdr, payload.data(), payload.size());
  used_ += kRecHdr + payload.size();
  ++count_;
  charged_ += charge;
  payload_bytes_ += payload.size();
  // sk_data_ready: every datagram is a new event for edge-triggered waiters.
  notify();
  return true;
}

Expected<UdpRecv, SockError> UdpSocket::recv_from(MutBytes out, bool peek) {
  // __skb_try_recv_datagram reports a pending error before looking at the queue.
  if (auto e = take_error()) return unexpected(*e);
  if (count_ == 0) return unexpected(SockError::WouldBlock);
  uint8_t hdr[kRecHdr];
  ring_read(head_, hdr, kRecHdr);
  uint32_t len;
  UdpRecv r;
  std::memcpy(&len, hdr, 4);
  std::memcpy(&r.from.addr.v, hdr + 4, 4);
  std::memcpy(&r.from.port, hdr + 8, 2);
  r.datagram_len = len;
  r.copied = std::min<size_t>(len, out.size());
  if (r.copied > 0) ring_read(head_ + kRecHdr, out.data(), r.copied);
  if (!peek) {
    head_ = (head_ + kRecHdr + len) % ring_.size();
    used_ -= kRecHdr + len;
    --count_;
    charged_ -= len + layer_.cfg_.datagram_overhead;
    payload_bytes_ -= len;
    if (count_ == 0) head_ = 0;
  }
  return r;
}

size_t UdpSocket::bytes_readable() const {
  if (count_ == 0) return 0;
  uint32_t len;
  uint8_t hdr[4];
  ring_read(head_, hdr, 4);
  std::memcpy(&len, hdr, 4);
  return len;
}

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
