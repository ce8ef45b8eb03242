#include "stack/tcp/tcp_layer.hpp"

#include <algorithm>
#include <cstring>

#include "stack/tcp/tcp_layer_impl.hpp"
#include "stack/wire/icmp.hpp"

namespace xs {

// ---- TcpLayer: thin forwarding shell -------------------------------------

TcpLayer::TcpLayer(const TcpConfig& cfg, IpOutput& ip, Random& rng, StackCounters& counters)
    : impl_(std::make_unique<TcpLayerImpl>(cfg, ip, rng, counters)) {}
TcpLayer::~TcpLayer() = default;
TcpSocket* TcpLayer::open() { return impl_->open(); }
void TcpLayer::on_segment(Instant now, const Ipv4Packet& ip, const TcpRepr& seg) {
  impl_->on_segment(now, ip, seg);
}
void TcpLayer::on_icmp_error(Instant now, uint8_t type, uint8_t code, uint16_t mtu,
                             const Ipv4Repr& qip, Bytes ql4) {
  impl_->on_icmp_error(now, type, code, mtu, qip, ql4);
}
void TcpLayer::poll(Instant now) { impl_->poll(now); }
Instant TcpLayer::poll_at() const { return impl_->poll_at(); }
const TcpConfig& TcpLayer::config() const { return impl_->cfg(); }
size_t TcpLayer::socket_count() const { return impl_->socket_count(); }
void TcpLayer::set_frame_lender(FrameLender* lender) { impl_->set_frame_lender(lender); }
size_t TcpLayer::closing_count() const { return impl_->closing_count(); }
void TcpLayer::visit_sockets(void (*fn)(void*, const TcpSocket&), void* ctx, size_t max) const {
  for (const TcpSocket* s : impl_->sockets()) {
    if (max-- == 0) return;
    fn(ctx, *s);
  }
}

// ---- construction ----------------------------------------------------------

TcpLayerImpl::TcpLayerImpl(const TcpConfig& cfg, IpOutput& ip, Random& rng, StackCounters& counters)
    : cfg_(cfg),
      ip_(ip),
      rng_(rng),
      counters_(counters),
      isn_(rng),
      cookies_(rng),
      ports_(cfg.ephemeral_low, cfg.ephemeral_high, rng),
      buckets_(1024),
      conns_(ConnTable::bucket_traits(buckets_.data(), buckets_.size())) {}

TcpLayerImpl::~TcpLayerImpl() {
  timers_.clear();
  conns_.clear();
  for (TcpSocket* s : all_) {
    s->syn_q_.clear();
    s->accept_q_.clear();
  }
  for (TcpSocket* s : all_) delete s;
}

TcpSocket* TcpLayerImpl::open() {
  auto* s = new TcpSocket(*this);
  all_.insert(s);
  return s;
}

// ---- tables ----------------------------------------------------------------

void TcpLayerImpl::grow_table() {
  // Per connection, never per segment: keep the load factor <= 1.
  std::vector<ConnTable::bucket_type> bigger(buckets_.size() * 2);
  conns_.rehash(ConnTable::bucket_traits(bigger.data(), bigger.size()));
  buckets_.swap(bigger);
}

void TcpLayerImpl::insert_connection(TcpSocket* s) {
  if (conns_.size() + 1 > buckets_.size()) grow_table();
  conns_.insert(*s);
}

void TcpLayerImpl::remove_connection(TcpSocket* s) {
  if (s->table_hook_.is_linked()) conns_.erase(conns_.iterator_to(*s));
}

TcpSocket* TcpLayerImpl::find_connection(const FourTuple& t) {
  auto it = conns_.find(t);
  return it == conns_.end() ? nullptr : &*it;
}

TcpSocket* TcpLayerImpl::find_listener(Ipv4Addr dst, uint16_t port, const FourTuple& t) {
  auto it = listeners_.find(port);
  if (it == listeners_.end()) return nullptr;
  // A listener bound to the exact address wins over a wildcard one. Among
  // SO_REUSEPORT listeners the 4-tuple hash picks one, so a flow sticks to a listener.
  TcpSocket* exact[64];
  TcpSocket* wild[64];
  size_t ne = 0, nw = 0;
  for (TcpSocket* l : it->second) {
    if (l->local_.addr == dst && ne < 64) exact[ne++] = l;
    else if (l->local_.addr.is_unspecified() && nw < 64) wild[nw++] = l;
  }
  size_t h = FourTupleHash{}(t);
  if (ne) return exact[h % ne];
  if (nw) return wild[h % nw];
  return nullptr;
}

void TcpLayerImpl::destroy(TcpSocket* s) {
  if (s->state_ == TcpState::TimeWait) count_time_wait(false);
  remove_connection(s);
  unbind(s);
  stop_listening(s);
  if (s->timer_hook_.is_linked()) timers_.erase(timers_.iterator_to(*s));
  all_.erase(s);
  delete s;
}

void TcpLayerImpl::defer_destroy(TcpSocket* s) {
  if (std::find(to_destroy_.begin(), to_destroy_.end(), s) == to_destroy_.end()) to_destroy_.push_back(s);
}

void TcpLayerImpl::flush_destroyed() {
  while (!to_destroy_.empty()) {
    TcpSocket* s = to_destroy_.back();
    to_destroy_.pop_back();
    destroy(s);
  }
}

void TcpLayerImpl::reschedule(TcpSocket* s) {
  Instant d = s->next_deadline();
  if (s->timer_hook_.is_linked()) {
    // Lazy: a deadline that moved later is found stale when it pops (STYLE 8).
    if (d >= s->timer_key_) return;
    timers_.erase(timers_.iterator_to(*s));
  }
  if (d == kNever) return;
  s->timer_key_ = d;
  timers_.insert(*s);
}

// ---- bind / listen ------------------------------------------------------------

static bool addr_overlap(Ipv4Addr a, Ipv4Addr b) {
  return a.is_unspecified() || b.is_unspecified() || a == b;
}

// Linux inet_bind_conflict, simplified: two sockets may share a port if both
// set SO_REUSEPORT, or both set SO_REUSEADDR and the existing one is not listening.
static bool bind_conflict(const TcpSocket& a, const TcpSocket& b) {
  if (!addr_overlap(a.local().addr, b.local().addr)) return false;
  if (a.options().reuseport && b.options().reuseport) return false;
  if (a.options().reuseaddr && b.options().reuseaddr && b.state() != TcpState::Listen) return false;
  return true;
}

Status<SockError> TcpLayerImpl::bind(TcpSocket* s, Endpoint ep) {
  if (s->bound_) return unexpected(SockError::InvalidArgument);
  if (!ep.addr.is_unspecified() && !ip_.is_local(ep.addr)) return unexpected(SockError::AddressNotAvailable);
  s->local_ = ep;
  if (ep.port == 0) {
    auto taken = [&](uint16_t port) {
      auto it = binds_.find(port);
      if (it == binds_.end()) return false;
      for (TcpSocket* o : it->second) if (bind_conflict(*s, *o) || !s->options().reuseaddr) return true;
      return false;
    };
    auto port = ports_.pick(ep.addr, Endpoint{}, taken);
    if (!port) { s->local_ = {}; return unexpected(SockError::AddressInUse); }
    s->local_.port = *port;
  } else if (auto it = binds_.find(ep.port); it != binds_.end()) {
    for (TcpSocket* o : it->second) {
      if (bind_conflict(*s, *o)) { s->local_ = {}; return unexpected(SockError::AddressInUse); }
    }
  }
  add_bind(s);
  s->bound_ = true;
  s->bind_explicit_ = true;
  return {};
}

bool TcpLayerImpl::port_in_use_for(Ipv4Addr local, uint16_t port, Endpoint remote) const {
  // Linux __inet_hash_connect: an ephemeral port may be shared by connections
  // to different peers, but never with a socket bound to it explicitly.
  if (auto it = binds_.find(port); it != binds_.end()) {
    for (TcpSocket* o : it->second) {
      if (o->bind_explicit_ && addr_overlap(o->local_.addr, local)) return true;
      if (o->local_.addr == local && o->remote_ == remote) return true;
    }
  }
  return false;
}

Status<SockError> TcpLayerImpl::bind_for_connect(TcpSocket* s, Endpoint remote) {
  Ipv4Addr local = s->local_.addr;
  // ip_route_connect: the route is looked up whether or not bind() chose the
  // source address; without one the connect fails at once (ENETUNREACH).
  auto src = ip_.source_for(remote.addr);
  if (!src) return unexpected(SockError::NetUnreachable);
  if (local.is_unspecified()) local = *src;
  if (s->bound_) {
    if (find_connection({Endpoint{local, s->local_.port}, remote}))
      return unexpected(SockError::AddressNotAvailable);
    s->local_.addr = local;
    return {};
  }
  auto port = ports_.pick(local, remote, [&](uint16_t p) { return port_in_use_for(local, p, remote); });
  if (!port) return unexpected(SockError::AddressNotAvailable);
  s->local_ = {local, *port};
  add_bind(s);
  s->bound_ = true;
  return {};
}

void TcpLayerImpl::add_bind(TcpSocket* s) {
  auto& v = binds_[s->local_.port];
  s->bind_index_ = v.size();
  v.push_back(s);
}

void TcpLayerImpl::unbind(TcpSocket* s) {
  if (!s->bound_) return;
  auto it = binds_.find(s->local_.port);
  if (it != binds_.end()) {
    // O(1): a server port holds every accepted connection, and one of them
    // closes per request under Connection: close. The chain's order is not
    // used (conflict checks look at every member).
    auto& v = it->second;
    const size_t i = s->bind_index_;
    if (i < v.size() && v[i] == s) {
      v[i] = v.back();
      v[i]->bind_index_ = i;
      v.pop_back();
    }
    if (v.empty()) binds_.erase(it);
  }
  s->bound_ = false;
}

Status<SockError> TcpLayerImpl::start_listening(TcpSocket* s) {
  // Two listeners on one port need SO_REUSEPORT on both (reuseaddr is not enough).
  auto& v = listeners_[s->local_.port];
  for (TcpSocket* o : v) {
    if (o != s && addr_overlap(o->local_.addr, s->local_.addr) &&
        !(o->options().reuseport && s->options().reuseport))
      return unexpected(SockError::AddressInUse);
  }
  if (std::find(v.begin(), v.end(), s) == v.end()) v.push_back(s);
  return {};
}

void TcpLayerImpl::stop_listening(TcpSocket* s) {
  auto it = listeners_.find(s->local_.port);
  if (it == listeners_.end()) return;
  auto& v = it->second;
  v.erase(std::remove(v.begin(), v.end(), s), v.end());
  if (v.empty()) listeners_.erase(it);
}

// ---- output ------------------------------------------------------------------

bool TcpLayerImpl::output(Instant now, Ipv4Addr src, Ipv4Addr dst, const TcpRepr& hdr,
                          const std::array<Bytes, 2>& payload, uint8_t tos, uint8_t ttl, bool df) {
  const size_t plen = payload[0].size() + payload[1].size();
  const size_t hlen = kTcpMinHeaderLen + tcp_options_len(hdr.opts);
  IpTxParams p{src, dst, ipproto::kTcp, ttl ? ttl : cfg_.default_ttl, tos, df};
  MutBytes buf = ip_.begin(now, p, hlen + plen);
  if (buf.empty()) return false;
  if (!payload[0].empty()) std::memcpy(buf.data() + hlen, payload[0].data(), payload[0].size());
  if (!payload[1].empty())
    std::memcpy(buf.data() + hlen + payload[0].size(), payload[1].data(), payload[1].size());
  emit_tcp(hdr, src, dst, buf, plen);
  ip_.commit();
  counters_.tcp_out_segs++;
  return true;
}

void TcpLayerImpl::send_reset_reply(Instant now, Ipv4Addr src, Ipv4Addr dst, const TcpRepr& seg) {
  // RFC 9293 3.10.7.1: never answer a RST; if the segment had an ACK the RST
  // takes its sequence number from it, otherwise it acknowledges the segment.
  if (seg.has(tcpflag::kRst)) return;
  TcpRepr r;
  r.src_port = seg.dst_port;
  r.dst_port = seg.src_port;
  if (seg.has(tcpflag::kAck)) {
    r.seq = seg.ack;
    r.flags = tcpflag::kRst;
  } else {
    r.seq = Seq(0);
    r.ack = seg.seq + seg.seg_len();
    r.flags = tcpflag::kRst | tcpflag::kAck;
  }
  if (output(now, src, dst, r, {}, 0, 0)) counters_.tcp_out_rsts++;
}

bool TcpLayerImpl::challenge_ack_allowed(Instant now) {
  int64_t sec = now.us / 1000000;
  if (sec != challenge_second_) {
    challenge_second_ = sec;
    challenge_count_ = 0;
  }
  if (challenge_count_ >= cfg_.challenge_ack_limit) {
    counters_.tcp_challenge_acks_limited++;
    return false;
  }
  challenge_count_++;
  counters_.tcp_challenge_acks++;
  return true;
}

// ---- input -------------------------------------------------------------------

void TcpLayerImpl::on_segment(Instant now, const Ipv4Packet& ip, const TcpRepr& seg) {
  counters_.tcp_in_segs++;
  const FourTuple t{{ip.hdr.dst, seg.dst_port}, {ip.hdr.src, seg.src_port}};
  if (TcpSocket* s = find_connection(t)) {
    // RFC 6191: a SYN may reopen a connection in TIME_WAIT when its timestamp
    // or its sequence number shows it is a new incarnation. As Linux
    // (tcp_timewait_state_process): either suffices unless PAWS rejects the
    // timestamp, so a SYN in the same millisecond with a higher ISN reopens too.
    if (s->state_ == TcpState::TimeWait && seg.has(tcpflag::kSyn) && !seg.has(tcpflag::kAck) &&
        !seg.has(tcpflag::kRst)) {
      const bool both_ts = s->ts_ok_ && seg.opts.ts.has_value();
      const int32_t ts_ahead = both_ts ? static_cast<int32_t>(seg.opts.ts->val - s->ts_recent_) : 0;
      const bool paws_reject = ts_ahead < 0;  // RFC 7323 5.3 R1, as check_paws
      bool newer = !paws_reject && (seg.seq > s->rcv_nxt_ || ts_ahead > 0);
      TcpSocket* l = find_listener(ip.hdr.dst, seg.dst_port, t);
      if (newer && l) {
        Seq isn = s->snd_nxt_ + 65535 + 2;  // Linux tcp_timewait_state_process
        counters_.tcp_time_wait_recycled++;
        // The old incarnation ends as its TIME_WAIT timer would end it: freed
        // if the program has closed it, else left Closed until the program's
        // close() (Linux: the program's socket is in CLOSE, and only the
        // separate TIME_WAIT mini-socket is recycled). A socket a descriptor
        // still names is never freed here.
        s->reset_connection(now, SockError::ConnectionReset);
        s->error_.reset();
        if (s->user_closed_) {
          to_destroy_.erase(std::remove(to_destroy_.begin(), to_destroy_.end(), s), to_destroy_.end());
          destroy(s);
        }
        on_syn_for_listener(now, l, ip, seg, isn);
        flush_destroyed();
        return;
      }
    }
    s->on_segment(now, seg);
    if (s->state_ != TcpState::Closed) s->flush_ack(now);
    reschedule(s);
    flush_destroyed();
    return;
  }
  if (TcpSocket* l = find_listener(ip.hdr.dst, seg.dst_port, t)) {
    on_listen_segment(now, l, ip, seg);
    flush_destroyed();
    return;
  }
  send_reset_reply(now, ip.hdr.dst, ip.hdr.src, seg);
}

void TcpLayerImpl::on_listen_segment(Instant now, TcpSocket* l, const Ipv4Packet& ip, const TcpRepr& seg) {
  // RFC 9293 3.10.7.2 (LISTEN): first check for RST, second for ACK, third for SYN.
  if (seg.has(tcpflag::kRst)) return;
  if (seg.has(tcpflag::kAck)) {
    if (cfg_.syncookies && !seg.has(tcpflag::kSyn)) {
      on_cookie_ack(now, l, ip, seg);
      return;
    }
    send_reset_reply(now, ip.hdr.dst, ip.hdr.src, seg);
    return;
  }
  if (seg.has(tcpflag::kSyn)) on_syn_for_listener(now, l, ip, seg, std::nullopt);
}

void TcpLayerImpl::on_syn_for_listener(Instant now, TcpSocket* l, const Ipv4Packet& ip,
                                       const TcpRepr& seg, std::optional<Seq> isn_override) {
  // Linux tcp_conn_request: a full accept queue drops the SYN (the client
  // retries); a full SYN queue answers with a SYN cookie instead of state.
  if (l->accept_q_.size() > static_cast<size_t>(l->backlog_)) {
    counters_.tcp_listen_overflows++;
    counters_.tcp_listen_drops++;
    return;
  }
  if (l->syn_q_len_ >= static_cast<size_t>(std::max(l->backlog_, 1))) {
    if (!cfg_.syncookies) {
      counters_.tcp_listen_drops++;
      return;
    }
    CookieTuple ct{ip.hdr.src, ip.hdr.dst, seg.src_port, seg.dst_port};
    uint16_t peer_mss = seg.opts.mss.value_or(536);
    uint16_t mss_used = 0;
    uint32_t cookie = cookies_.make(now, ct, seg.seq, peer_mss, &mss_used);
    TcpRepr r;
    r.src_port = seg.dst_port;
    r.dst_port = seg.src_port;
    r.seq = Seq(cookie);
    r.ack = seg.seq + 1;
    r.flags = tcpflag::kSyn | tcpflag::kAck;
    r.window = static_cast<uint16_t>(std::min<uint32_t>(65535, l->rcvbuf_ / 2));
    r.opts.mss = static_cast<uint16_t>(std::min<uint32_t>(ip_.path_mtu(ip.hdr.src) - 40, 65495));
    // Without timestamps there is nowhere to keep wscale/SACK, so a cookie
    // connection goes without them (as on Linux).
    if (seg.opts.ts && cfg_.timestamps) {
      std::optional<uint8_t> ws;
      if (seg.opts.wscale && cfg_.window_scaling) ws = std::min<uint8_t>(*seg.opts.wscale, kMaxWindowScale);
      bool sack = seg.opts.sack_permitted && cfg_.sack;
      uint32_t tsval = SynCookies::encode_ts(uint32_t(now.us / 1000) + isn_.ts_offset(ip.hdr.dst, ip.hdr.src), ws, sack);
      r.opts.ts = TcpTimestamps{tsval, seg.opts.ts->val};
      r.opts.sack_permitted = sack;
      if (ws) r.opts.wscale = TcpSocket::wscale_for(cfg_.rmem_max);
    }
    counters_.tcp_syncookies_sent++;
    l->cookie_sent_at_ = now;
    output(now, ip.hdr.dst, ip.hdr.src, r, {}, l->opt_.tos, l->opt_.ttl, l->ip_df());
    return;
  }
  TcpSocket* c = make_child(l, ip, seg);
  l->syn_q_.push_back(*c);
  l->syn_q_len_++;
  counters_.tcp_passive_opens++;
  c->on_passive_syn(now, seg, isn_override);
  reschedule(c);
}

TcpSocket* TcpLayerImpl::make_child(TcpSocket* l, const Ipv4Packet& ip, const TcpRepr& seg) {
  // A passive connection: inherits the listener's options and shares its port.
  TcpSocket* c = open();
  c->inherit_from(*l);
  c->local_ = {ip.hdr.dst, seg.dst_port};
  c->remote_ = {ip.hdr.src, seg.src_port};
  c->listener_ = l;
  add_bind(c);
  c->bound_ = true;
  insert_connection(c);
  return c;
}

void TcpLayerImpl::on_cookie_ack(Instant now, TcpSocket* l, const Ipv4Packet& ip, const TcpRepr& seg) {
  // Only ACKs that could answer a cookie we sent recently are checked; any
  // other ACK to a listener gets a RST (RFC 9293 3.10.7.2).
  bool recent = l->cookie_sent_at_ != kNever && now - l->cookie_sent_at_ < seconds(128);
  std::optional<uint16_t> mss;
  if (recent) {
    CookieTuple ct{ip.hdr.src, ip.hdr.dst, seg.src_port, seg.dst_port};
    mss = cookies_.check(now, ct, seg.seq - 1, seg.ack.raw() - 1);
    if (!mss) counters_.tcp_syncookies_failed++;
  }
  if (!mss) {
    send_reset_reply(now, ip.hdr.dst, ip.hdr.src, seg);
    return;
  }
  if (l->accept_q_.size() > static_cast<size_t>(l->backlog_)) {
    counters_.tcp_listen_overflows++;
    counters_.tcp_listen_drops++;
    return;
  }
  counters_.tcp_syncookies_recv++;
  std::optional<CookieTsOptions> tso;
  if (seg.opts.ts && cfg_.timestamps) {
    tso = SynCookies::decode_ts(seg.opts.ts->ecr, cfg_.sack, cfg_.window_scaling);
    if (!tso) {  // the cookie claims an option we have turned off: forged (Linux)
      counters_.tcp_syncookies_failed++;
      send_reset_reply(now, ip.hdr.dst, ip.hdr.src, seg);
      return;
    }
  }
  TcpSocket* c = make_child(l, ip, seg);
  counters_.tcp_passive_opens++;
  c->on_cookie_ack(now, seg, *mss, tso);
  reschedule(c);
}

void TcpLayerImpl::on_icmp_error(Instant now, uint8_t type, uint8_t code, uint16_t mtu,
                                 const Ipv4Repr& qip, Bytes ql4) {
  if (ql4.size() < 8) return;
  uint16_t sport = load_be16(ql4.data());
  uint16_t dport = load_be16(ql4.data() + 2);
  Seq seq(load_be32(ql4.data() + 4));
  TcpSocket* s = find_connection({{qip.src, sport}, {qip.dst, dport}});
  if (!s) return;
  s->on_icmp_error(now, type, code, mtu, seq);
  reschedule(s);
  flush_destroyed();
}

// ---- timers ------------------------------------------------------------------

void TcpLayerImpl::poll(Instant now) {
  // Sockets released by user calls (close from an observer callback, say) are
  // freed here, outside any iteration over them.
  flush_destroyed();
  while (!timers_.empty() && timers_.begin()->timer_key_ <= now) {
    TcpSocket& s = *timers_.begin();
    timers_.erase(timers_.begin());
    s.timer_key_ = kNever;
    s.on_timers(now);
    if (std::find(to_destroy_.begin(), to_destroy_.end(), &s) == to_destroy_.end()) reschedule(&s);
    flush_destroyed();
  }
}

Instant TcpLayerImpl::poll_at() const {
  if (!to_destroy_.empty()) return Instant{};
  return timers_.empty() ? kNever : timers_.begin()->timer_key_;
}

}  // namespace xs
