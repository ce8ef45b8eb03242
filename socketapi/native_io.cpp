#include "socketapi/native_internal.hpp"

#include <net/if.h>
#include <time.h>

namespace xs::native {

namespace {

size_t iov_total(const iovec* iov, size_t n) {
  size_t t = 0;
  for (size_t i = 0; i < n; ++i) t += iov[i].iov_len;
  return t;
}

void scatter(const uint8_t* src, size_t n, const iovec* iov, size_t iovcnt) {
  for (size_t i = 0; i < iovcnt && n > 0; ++i) {
    size_t k = std::min(n, iov[i].iov_len);
    std::memcpy(iov[i].iov_base, src, k);
    src += k;
    n -= k;
  }
}

void raise_sigpipe() { pthread_kill(pthread_self(), SIGPIPE); }

// A stack Instant (CLOCK_MONOTONIC) as CLOCK_REALTIME microseconds, for
// SO_TIMESTAMP*: the offset between the two clocks is taken now, so a
// realtime clock step moves earlier stamps too (Linux stamps in realtime).
int64_t realtime_us(Instant t) {
  timespec m, r;
  clock_gettime(CLOCK_MONOTONIC, &m);
  clock_gettime(CLOCK_REALTIME, &r);
  return t.us + (int64_t(r.tv_sec) - m.tv_sec) * 1000000 + (int64_t(r.tv_nsec) - m.tv_nsec) / 1000;
}

// udp_recvmsg's cmsgs, in Linux's order: sock_recv_cmsgs (timestamps), then
// ip_cmsg_recv_offset (PKTINFO, TTL, TOS, ORIGDSTADDR: flag bit order).
void put_udp_cmsgs(const RecvCmsgFlags& f, const UdpRxMeta& m, int ifindex, CmsgWriter& w) {
  put_timestamp(w, f, realtime_us(m.arrival));
  if (f.pktinfo) {
    in_pktinfo pi{};
    if (m.pktinfo) {  // prepared when queued (ipv4_pktinfo_prepare), else 0s
      pi.ipi_ifindex = ifindex;
      pi.ipi_spec_dst.s_addr = htonl(m.spec_dst.v);
    }
    pi.ipi_addr.s_addr = htonl(m.dst.v);
    w.put(SOL_IP, IP_PKTINFO, &pi, sizeof pi);
  }
  if (f.ttl) {
    const int v = m.ttl;
    w.put(SOL_IP, IP_TTL, &v, sizeof v);
  }
  if (f.tos) w.put(SOL_IP, IP_TOS, &m.tos, 1);
  if (f.origdst) {
    const sockaddr_in sin = sockaddr_of({m.dst, m.dst_port});
    w.put(SOL_IP, IP_ORIGDSTADDR, &sin, sizeof sin);
  }
}

// A UDP sendmsg's control data as per-datagram overrides; 0 or an errno.
int udp_overrides(const msghdr& msg, int our_ifindex, UdpSocket::TxOverrides* ov) {
  SendCmsg c;
  if (int e = parse_udp_send_cmsgs(msg, geteuid() == 0, &c)) return e;
  if (c.pktinfo) {
    const int ifi = c.pktinfo->ipi_ifindex;
    if (ifi != 0 && ifi != our_ifindex) {
      // The route lookup's oif (ip_route_output_key_hash): ENODEV when no
      // such interface exists. Linux would send through another existing
      // interface; the stack has only its own (docs/compat.md).
      char name[IF_NAMESIZE];
      return if_indextoname(unsigned(ifi), name) == nullptr ? ENODEV : ENETUNREACH;
    }
    ov->src = Ipv4Addr{ntohl(c.pktinfo->ipi_spec_dst.s_addr)};
  }
  if (c.ttl) ov->ttl = uint8_t(*c.ttl);
  if (c.tos) ov->tos = uint8_t(*c.tos);
  return 0;
}

}  // namespace

// ---- data transfer -------------------------------------------------------------

ssize_t Runtime::do_send(int fd, const iovec* iov, size_t iovcnt, int flags, const sockaddr* to, socklen_t tolen,
                         const msghdr* ctl) {
  std::unique_lock<std::mutex> lk(e_.mutex());
  XS_SOCK_OR_FAIL(o, fd);
  bool nb = o->nonblock || (flags & MSG_DONTWAIT);
  size_t total = iov_total(iov, iovcnt);
  if (o->udp) {
    if (flags & MSG_OOB) return fail(EOPNOTSUPP);  // udp_sendmsg
    std::optional<Endpoint> dst;
    sa_family_t to_family = AF_UNSPEC;
    if (to != nullptr && tolen >= sizeof to_family) std::memcpy(&to_family, to, sizeof to_family);
    if (to != nullptr && o->inet6 && tolen < sizeof to_family) return fail(EINVAL);
    // udpv6_sendmsg: AF_UNSPEC is no address at all (the connected peer).
    if (to != nullptr && !(o->inet6 && to_family == AF_UNSPEC)) {
      AddrResult a = addr_in(*o, to, tolen, AddrUse::SendTo);
      if (a.err != 0) return fail(a.err);
      dst = a.ep;
    }
    if (o->shut_wr) return fail(EPIPE);
    // udp_sendmsg parses cmsgs after the address, and not at all while a
    // MSG_MORE datagram is pending (it only appends).
    UdpSocket::TxOverrides ov;
    if (ctl != nullptr && ctl->msg_controllen > 0 && !o->corked) {
      if (!dst && !o->udp->remote()) return fail(EDESTADDRREQ);
      if (int e = udp_overrides(*ctl, e_.device_locked().ifindex(), &ov)) return fail(e);
    }
    std::vector<uint8_t> gathered;
    Bytes data;
    if (iovcnt == 1) {
      data = Bytes(static_cast<const uint8_t*>(iov[0].iov_base), iov[0].iov_len);
    } else {
      gathered.reserve(total);
      for (size_t i = 0; i < iovcnt; ++i) {
        auto* p = static_cast<const uint8_t*>(iov[i].iov_base);
        gathered.insert(gathered.end(), p, p + iov[i].iov_len);
      }
      data = Bytes(gathered.data(), gathered.size());
    }
    int err = 0;
    if ((flags & MSG_MORE) || o->corked) {
      // MSG_MORE: one datagram from several calls, to the first call's
      // destination (Linux udp_sendmsg with up->pending).
      if (!o->corked) {
        if (!dst && !o->udp->remote()) return fail(EDESTADDRREQ);
        o->corked = true;
        o->cork_dst = dst;
        o->cork_ov = ov;
      }
      o->cork_buf.insert(o->cork_buf.end(), data.begin(), data.end());
      if (o->cork_buf.size() > 65507) {
        o->cork_buf.clear();
        o->corked = false;
        return fail(EMSGSIZE);
      }
      if (flags & MSG_MORE) return static_cast<ssize_t>(total);
      std::vector<uint8_t> dgram = std::move(o->cork_buf);
      o->cork_buf.clear();
      o->corked = false;
      if (!autobind_locked(*o, &err)) return fail(err);
      auto r = o->udp->send_to(Engine::clock_now(), Bytes(dgram.data(), dgram.size()), o->cork_dst, &o->cork_ov);
      e_.after_call_locked();
      if (!r) return fail(to_errno(r.error()));
      return static_cast<ssize_t>(total);
    }
    if (!autobind_locked(*o, &err)) return fail(err);
    auto r = o->udp->send_to(Engine::clock_now(), data, dst, &ov);
    e_.after_call_locked();
    if (!r) return fail(to_errno(r.error()));
    return static_cast<ssize_t>(*r);
  }
  // TCP: the destination is ignored (Linux, without Fast Open).
  TcpSocket* t = o->tcp;
  // tcp_sendmsg_locked checks SOL_SOCKET cmsgs once connected (EINVAL).
  if (ctl != nullptr && ctl->msg_controllen > 0 &&
      (t->state() == TcpState::Established || t->state() == TcpState::CloseWait)) {
    if (int e = check_tcp_send_cmsgs(*ctl, geteuid() == 0)) return fail(e);
  }
  bool more = (flags & MSG_MORE) != 0;
  // MSG_OOB: the call's last byte is urgent (TcpSocket::send marks SND.UP on
  // each chunk of the last buffer, as Linux marks at each push point).
  const bool oob = (flags & MSG_OOB) != 0;
  std::optional<SockError> err;
  bool interrupted = false;
  size_t sent = 0;
  bool polled = false;  // spin/busy-poll: the rings were polled before EAGAIN
  WaitDeadline deadline(nb, o->sndtimeo);
  if (total == 0) {
    auto r = t->send(Engine::clock_now(), Bytes{}, more);
    e_.after_call_locked();
    if (!r) err = r.error();
  }
  // Linux charges send memory per skb: a small blocking write either fits
  // whole or waits before copying anything, so small writes from several
  // threads on one socket never interleave. Do the same up to kAtomicSend.
  constexpr size_t kAtomicSend = 4096;
  if (!nb && total > 0 && total <= kAtomicSend) {
    auto room = [&] {
      size_t q = t->bytes_unacked_or_unsent(), b = t->sndbuf();
      return q < b ? b - q : 0;
    };
    if (room() < total && t->state() == TcpState::Established) {
      WaitStatus ws = wait_locked(lk, [&] {
        return o->closed || room() >= total || t->state() != TcpState::Established ||
               (t->readiness() & (ev::kErr | ev::kHup)) != 0;
      }, deadline);
      if (o->closed) return fail(EBADF);
      if (ws == WaitStatus::Interrupted) return fail(EINTR);
      // Timed out (SO_SNDTIMEO): the loop below sends what fits, as Linux.
    }
  }
  for (size_t i = 0; i < iovcnt && !err && !interrupted; ++i) {
    auto* base = static_cast<const uint8_t*>(iov[i].iov_base);
    size_t off = 0;
    while (off < iov[i].iov_len) {
      bool last = i + 1 == iovcnt || iov_total(iov + i + 1, iovcnt - i - 1) == 0;
      auto r = o->tcp->send(Engine::clock_now(), Bytes(base + off, iov[i].iov_len - off), more || !last, oob && last);
      e_.after_call_locked();
      if (r) {
        off += *r;
        sent += *r;
        continue;
      }
      if (r.error() != SockError::WouldBlock || nb) {
        if (r.error() == SockError::WouldBlock && !polled && (polled = e_.poll_before_eagain_locked())) continue;
        err = r.error();
        break;
      }
      WaitStatus ws = wait_locked(lk, [&] {
        return o->closed || (o->tcp->readiness() & (ev::kOut | ev::kErr | ev::kHup)) != 0;
      }, deadline);
      if (o->closed) {
        err = SockError::InvalidArgument;  // reported as EBADF below
        break;
      }
      if (ws == WaitStatus::Interrupted) {
        interrupted = true;
        break;
      }
      if (ws != WaitStatus::Ready) {
        err = SockError::WouldBlock;
        break;
      }
    }
  }
  if (sent > 0) return static_cast<ssize_t>(sent);
  if (interrupted) return fail(EINTR);
  if (!err) return 0;
  if (o->closed) return fail(EBADF);
  if (*err == SockError::BrokenPipe && !(flags & MSG_NOSIGNAL)) {
    lk.unlock();
    raise_sigpipe();
  }
  return fail(to_errno(*err));
}

ssize_t Runtime::do_recv(int fd, const iovec* iov, size_t iovcnt, int flags, sockaddr* from, socklen_t* fromlen,
                         int* msg_flags, CmsgWriter* cmsgs) {
  std::unique_lock<std::mutex> lk(e_.mutex());
  XS_SOCK_OR_FAIL(o, fd);
  if (msg_flags) *msg_flags = 0;
  bool nb = o->nonblock || (flags & MSG_DONTWAIT);
  bool peek = (flags & MSG_PEEK) != 0;
  bool trunc = (flags & MSG_TRUNC) != 0;
  bool polled = false;  // spin/busy-poll: the rings were polled before EAGAIN
  if (flags & MSG_ERRQUEUE) return fail(EAGAIN);  // no error queue
  size_t total = iov_total(iov, iovcnt);
  WaitDeadline deadline(nb, o->rcvtimeo);
  std::vector<uint8_t> tmp;
  uint8_t* buf = nullptr;
  if (iovcnt == 1) buf = static_cast<uint8_t*>(iov[0].iov_base);
  if (o->udp) {
    // udp_recvmsg never looks at MSG_OOB: Linux receives as without it.
    if (iovcnt != 1) {
      tmp.resize(total);
      buf = tmp.data();
    }
    Expected<UdpRecv, SockError> r = unexpected(SockError::WouldBlock);
    // SO_PEEK_OFF: a peek starts there and moves it on; a read moves it back.
    const size_t poff = peek && o->peek_off > 0 ? static_cast<size_t>(o->peek_off) : 0;
    for (;;) {
      r = o->udp->recv_from(MutBytes(buf, total), peek, poff);
      if (r || r.error() != SockError::WouldBlock) break;
      // SHUT_RD on UDP marks the socket readable (datagram_poll) yet recv
      // still waits for a datagram, as on Linux.
      if (nb) {
        if (!polled && (polled = e_.poll_before_eagain_locked())) continue;
        return fail(EAGAIN);
      }
      WaitStatus ws = wait_locked(lk, [&] {
        return o->closed || o->udp->rx_datagrams() > 0 || o->udp->pending_error().has_value();
      }, deadline);
      if (o->closed) return fail(EBADF);
      if (ws == WaitStatus::Interrupted) return fail(EINTR);
      if (ws != WaitStatus::Ready) return fail(EAGAIN);
    }
    if (!r) return fail(to_errno(r.error()));
    if (o->peek_off >= 0) {
      o->peek_off = peek ? o->peek_off + static_cast<int>(r->copied)
                         : std::max(0, o->peek_off - static_cast<int>(r->datagram_len));
    }
    if (!tmp.empty()) scatter(tmp.data(), r->copied, iov, iovcnt);
    if (int e = put_addr(r->from, from, fromlen, o->inet6)) return fail(e);
    if (msg_flags && r->datagram_len > r->copied) *msg_flags |= MSG_TRUNC;
    if (cmsgs != nullptr) put_udp_cmsgs(o->cm, r->meta, e_.device_locked().ifindex(), *cmsgs);
    return static_cast<ssize_t>(trunc ? r->datagram_len : r->copied);
  }
  if (flags & MSG_OOB) {
    // Linux tcp_recv_urg: the one urgent byte, never waiting; MSG_TRUNC
    // reports it without copying, an empty buffer gets MSG_TRUNC and 0.
    auto r = o->tcp->recv_urgent(peek);
    if (!r) return fail(to_errno(r.error()));
    if (!*r) return 0;  // end of stream before the urgent byte arrived
    if (msg_flags) *msg_flags |= MSG_OOB | (total == 0 ? MSG_TRUNC : 0);
    if (total == 0) return 0;
    if (!trunc) {
      const uint8_t c = **r;
      scatter(&c, 1, iov, iovcnt);
    }
    return 1;
  }
  if (total == 0) {
    if (o->tcp->state() == TcpState::Listen) return fail(ENOTCONN);
    return 0;
  }
  // MSG_TRUNC on TCP discards instead of copying (Linux); scratch in chunks.
  size_t scratch_len = 0;
  if (trunc) {
    scratch_len = std::min<size_t>(total, 1 << 20);
    tmp.resize(scratch_len);
  } else if (iovcnt != 1) {
    tmp.resize(total);
    buf = tmp.data();
  }
  bool waitall = (flags & MSG_WAITALL) && !peek;
  size_t lowat = static_cast<size_t>(std::max(o->tcp->options().rcvlowat, 1u));
  size_t target = waitall ? total : std::min(lowat, total);
  size_t copied = 0;
  std::optional<SockError> err;
  for (;;) {
    if (copied > 0 && o->tcp->pending_error()) break;
    // Linux tcp_recvmsg: a read never crosses the urgent mark, even under
    // MSG_WAITALL or SO_RCVLOWAT.
    if (copied > 0 && o->tcp->at_urgent_mark()) break;
    MutBytes out = trunc ? MutBytes(tmp.data(), std::min(scratch_len, total - copied))
                         : MutBytes(buf + copied, total - copied);
    const size_t poff = peek && o->peek_off > 0 ? static_cast<size_t>(o->peek_off) + copied : 0;
    auto r = o->tcp->recv(Engine::clock_now(), out, peek, poff);
    if (r) {
      if (*r == 0) break;  // end of stream
      copied += *r;
      e_.after_call_locked();
      if (peek || copied >= target) break;
      continue;
    }
    if (r.error() != SockError::WouldBlock) {
      if (copied == 0) err = r.error();
      break;
    }
    if (nb) {
      if (copied == 0 && !polled && (polled = e_.poll_before_eagain_locked())) continue;
      if (copied == 0) err = SockError::WouldBlock;
      break;
    }
    const size_t want_past = peek && o->peek_off > 0 ? static_cast<size_t>(o->peek_off) + copied : 0;
    WaitStatus ws = wait_locked(lk, [&] {
      return o->closed || (o->tcp->has_normal_data() && o->tcp->bytes_readable() > want_past) ||
             (o->tcp->readiness() & (ev::kErr | ev::kHup | ev::kRdHup)) != 0;
    }, deadline);
    if (o->closed) return fail(EBADF);
    if (ws == WaitStatus::Interrupted && copied == 0) return fail(EINTR);
    if (ws != WaitStatus::Ready) {
      if (copied == 0) err = SockError::WouldBlock;
      break;
    }
  }
  if (err) return fail(to_errno(*err));
  if (o->peek_off >= 0 && copied > 0) {
    o->peek_off = peek ? o->peek_off + static_cast<int>(copied) : std::max(0, o->peek_off - static_cast<int>(copied));
  }
  if (!trunc && !tmp.empty()) scatter(tmp.data(), copied, iov, iovcnt);
  if (from != nullptr && fromlen != nullptr) *fromlen = 0;  // TCP reports no address
  // tcp_recv_timestamp: the stamp of the last segment read. The stack keeps
  // one time per connection, when in-order data last arrived (docs/compat.md).
  if (cmsgs != nullptr && copied > 0) put_timestamp(*cmsgs, o->cm, realtime_us(o->tcp->last_data_received()));
  return static_cast<ssize_t>(copied);
}

ssize_t Runtime::send(int fd, const void* buf, size_t len, int flags) {
  iovec v{const_cast<void*>(buf), len};
  return do_send(fd, &v, 1, flags, nullptr, 0);
}

ssize_t Runtime::sendto(int fd, const void* buf, size_t len, int flags, const sockaddr* to, socklen_t tolen) {
  iovec v{const_cast<void*>(buf), len};
  return do_send(fd, &v, 1, flags, to, tolen);
}

ssize_t Runtime::recv(int fd, void* buf, size_t len, int flags) {
  iovec v{buf, len};
  return do_recv(fd, &v, 1, flags, nullptr, nullptr, nullptr);
}

ssize_t Runtime::recvfrom(int fd, void* buf, size_t len, int flags, sockaddr* from, socklen_t* fromlen) {
  if (from != nullptr && fromlen != nullptr && static_cast<int>(*fromlen) < 0) return fail(EINVAL);
  iovec v{buf, len};
  return do_recv(fd, &v, 1, flags, from, fromlen, nullptr);
}

ssize_t Runtime::sendmsg(int fd, const msghdr* msg, int flags) {
  if (msg == nullptr) return fail(EFAULT);
  if (msg->msg_iovlen > IOV_MAX) return fail(EMSGSIZE);
  // ____sys_sendmsg copies the control data in before the protocol sees it.
  if (msg->msg_controllen > INT_MAX) return fail(ENOBUFS);
  if (msg->msg_controllen > 0 && msg->msg_control == nullptr) return fail(EFAULT);
  return do_send(fd, msg->msg_iov, msg->msg_iovlen, flags, static_cast<const sockaddr*>(msg->msg_name),
                 msg->msg_name ? msg->msg_namelen : 0, msg);
}

ssize_t Runtime::recvmsg(int fd, msghdr* msg, int flags) {
  if (msg == nullptr) return fail(EFAULT);
  if (msg->msg_iovlen > IOV_MAX) return fail(EMSGSIZE);
  socklen_t nl = msg->msg_namelen;
  int mf = 0;
  CmsgWriter w(msg->msg_control, msg->msg_controllen);
  ssize_t n = do_recv(fd, msg->msg_iov, msg->msg_iovlen, flags, static_cast<sockaddr*>(msg->msg_name),
                      msg->msg_name ? &nl : nullptr, &mf, &w);
  if (n < 0) return n;
  msg->msg_namelen = msg->msg_name ? nl : 0;
  msg->msg_controllen = w.used();  // put_cmsg: the bytes the cmsgs took
  msg->msg_flags = mf | (w.truncated() ? MSG_CTRUNC : 0);
  return n;
}

int Runtime::sendmmsg(int fd, mmsghdr* msgs, unsigned int n, int flags) {
  if (n > UIO_MAXIOV) n = UIO_MAXIOV;
  unsigned int i = 0;
  for (; i < n; ++i) {
    ssize_t r = sendmsg(fd, &msgs[i].msg_hdr, flags);
    if (r < 0) return i > 0 ? static_cast<int>(i) : -1;
    msgs[i].msg_len = static_cast<unsigned>(r);
  }
  return static_cast<int>(i);
}

int Runtime::recvmmsg(int fd, mmsghdr* msgs, unsigned int n, int flags, timespec* timeout) {
  // Linux checks the timeout only after each datagram (the first may block
  // for ever); so does this.
  Instant deadline = kNever;
  if (timeout != nullptr) {
    if (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1000000000) return fail(EINVAL);
    deadline = Engine::clock_now() + Duration{int64_t(timeout->tv_sec) * 1000000 + timeout->tv_nsec / 1000};
  }
  if (n > UIO_MAXIOV) n = UIO_MAXIOV;
  unsigned int i = 0;
  for (; i < n; ++i) {
    int f = flags & ~MSG_WAITFORONE;
    if (i > 0 && (flags & MSG_WAITFORONE)) f |= MSG_DONTWAIT;
    ssize_t r = recvmsg(fd, &msgs[i].msg_hdr, f);
    if (r < 0) return i > 0 ? static_cast<int>(i) : -1;
    msgs[i].msg_len = static_cast<unsigned>(r);
    if (timeout != nullptr && Engine::clock_now() >= deadline) return static_cast<int>(i + 1);
  }
  return static_cast<int>(i);
}

ssize_t Runtime::read(int fd, void* buf, size_t len) {
  {
    std::lock_guard<std::mutex> lk(e_.mutex());
    auto o = lookup_locked(fd);
    if (!o) return fail(EBADF);
    if (o->kind == Obj::Kind::Epoll) return fail(EINVAL);
  }
  return recv(fd, buf, len, 0);
}

ssize_t Runtime::write(int fd, const void* buf, size_t len) {
  {
    std::lock_guard<std::mutex> lk(e_.mutex());
    auto o = lookup_locked(fd);
    if (!o) return fail(EBADF);
    if (o->kind == Obj::Kind::Epoll) return fail(EINVAL);
  }
  return send(fd, buf, len, 0);
}

ssize_t Runtime::readv(int fd, const iovec* iov, int iovcnt) {
  if (iovcnt < 0 || iovcnt > IOV_MAX) return fail(EINVAL);
  {
    std::lock_guard<std::mutex> lk(e_.mutex());
    auto o = lookup_locked(fd);
    if (!o) return fail(EBADF);
    if (o->kind == Obj::Kind::Epoll) return fail(EINVAL);
  }
  return do_recv(fd, iov, static_cast<size_t>(iovcnt), 0, nullptr, nullptr, nullptr);
}

ssize_t Runtime::writev(int fd, const iovec* iov, int iovcnt) {
  if (iovcnt < 0 || iovcnt > IOV_MAX) return fail(EINVAL);
  {
    std::lock_guard<std::mutex> lk(e_.mutex());
    auto o = lookup_locked(fd);
    if (!o) return fail(EBADF);
    if (o->kind == Obj::Kind::Epoll) return fail(EINVAL);
  }
  return do_send(fd, iov, static_cast<size_t>(iovcnt), 0, nullptr, 0);
}

}  // namespace xs::native
