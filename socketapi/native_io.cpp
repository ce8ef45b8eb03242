#include "socketapi/native_internal.hpp"

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

}  // namespace

// ---- data transfer -------------------------------------------------------------

ssize_t Runtime::do_send(int fd, const iovec* iov, size_t iovcnt, int flags, const sockaddr* to, socklen_t tolen) {
  std::unique_lock<std::mutex> lk(e_.mutex());
  XS_SOCK_OR_FAIL(o, fd);
  if (flags & MSG_OOB) return fail(EOPNOTSUPP);
  bool nb = o->nonblock || (flags & MSG_DONTWAIT);
  size_t total = iov_total(iov, iovcnt);
  if (o->udp) {
    std::optional<Endpoint> dst;
    if (to != nullptr) {
      if (tolen < sizeof(sockaddr_in)) return fail(EINVAL);
      sockaddr_in sin;
      std::memcpy(&sin, to, sizeof sin);
      if (sin.sin_family != AF_INET && sin.sin_family != AF_UNSPEC) return fail(EAFNOSUPPORT);
      dst = endpoint_of(sin);
    }
    if (o->shut_wr) return fail(EPIPE);
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
      auto r = o->udp->send_to(Engine::clock_now(), Bytes(dgram.data(), dgram.size()), o->cork_dst);
      e_.after_call_locked();
      if (!r) return fail(to_errno(r.error()));
      return static_cast<ssize_t>(total);
    }
    if (!autobind_locked(*o, &err)) return fail(err);
    auto r = o->udp->send_to(Engine::clock_now(), data, dst);
    e_.after_call_locked();
    if (!r) return fail(to_errno(r.error()));
    return static_cast<ssize_t>(*r);
  }
  // TCP: the destination is ignored (Linux, without Fast Open).
  TcpSocket* t = o->tcp;
  bool more = (flags & MSG_MORE) != 0;
  std::optional<SockError> err;
  bool interrupted = false;
  size_t sent = 0;
  bool polled = false;  // spin/busy-poll: the rings were polled before EAGAIN
  Instant deadline = deadline_after(nb, o->sndtimeo);
  if (total == 0) {
    auto r = t->send(Engine::clock_now(), Bytes{}, more);
    e_.after_call_locked();
    if (!r) err = r.error();
  }
  for (size_t i = 0; i < iovcnt && !err && !interrupted; ++i) {
    auto* base = static_cast<const uint8_t*>(iov[i].iov_base);
    size_t off = 0;
    while (off < iov[i].iov_len) {
      bool last = i + 1 == iovcnt || iov_total(iov + i + 1, iovcnt - i - 1) == 0;
      auto r = o->tcp->send(Engine::clock_now(), Bytes(base + off, iov[i].iov_len - off), more || !last);
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
                         int* msg_flags) {
  std::unique_lock<std::mutex> lk(e_.mutex());
  XS_SOCK_OR_FAIL(o, fd);
  if (msg_flags) *msg_flags = 0;
  bool nb = o->nonblock || (flags & MSG_DONTWAIT);
  bool peek = (flags & MSG_PEEK) != 0;
  bool trunc = (flags & MSG_TRUNC) != 0;
  bool polled = false;  // spin/busy-poll: the rings were polled before EAGAIN
  if (flags & MSG_ERRQUEUE) return fail(EAGAIN);  // no error queue
  size_t total = iov_total(iov, iovcnt);
  Instant deadline = deadline_after(nb, o->rcvtimeo);
  std::vector<uint8_t> tmp;
  uint8_t* buf = nullptr;
  if (iovcnt == 1) buf = static_cast<uint8_t*>(iov[0].iov_base);
  if (o->udp) {
    if (flags & MSG_OOB) return fail(EOPNOTSUPP);
    if (iovcnt != 1) {
      tmp.resize(total);
      buf = tmp.data();
    }
    Expected<UdpRecv, SockError> r = unexpected(SockError::WouldBlock);
    for (;;) {
      r = o->udp->recv_from(MutBytes(buf, total), peek);
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
    if (!tmp.empty()) scatter(tmp.data(), r->copied, iov, iovcnt);
    if (int e = put_addr(r->from, from, fromlen)) return fail(e);
    if (msg_flags && r->datagram_len > r->copied) *msg_flags |= MSG_TRUNC;
    return static_cast<ssize_t>(trunc ? r->datagram_len : r->copied);
  }
  if (flags & MSG_OOB) return fail(EINVAL);  // no urgent data is ever kept
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
    MutBytes out = trunc ? MutBytes(tmp.data(), std::min(scratch_len, total - copied))
                         : MutBytes(buf + copied, total - copied);
    auto r = o->tcp->recv(Engine::clock_now(), out, peek);
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
    WaitStatus ws = wait_locked(lk, [&] {
      return o->closed || o->tcp->bytes_readable() > 0 ||
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
  if (!trunc && !tmp.empty()) scatter(tmp.data(), copied, iov, iovcnt);
  if (from != nullptr && fromlen != nullptr) *fromlen = 0;  // TCP reports no address
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
  return do_send(fd, msg->msg_iov, msg->msg_iovlen, flags, static_cast<const sockaddr*>(msg->msg_name),
                 msg->msg_name ? msg->msg_namelen : 0);
}

ssize_t Runtime::recvmsg(int fd, msghdr* msg, int flags) {
  if (msg == nullptr) return fail(EFAULT);
  if (msg->msg_iovlen > IOV_MAX) return fail(EMSGSIZE);
  socklen_t nl = msg->msg_namelen;
  int mf = 0;
  ssize_t n = do_recv(fd, msg->msg_iov, msg->msg_iovlen, flags, static_cast<sockaddr*>(msg->msg_name),
                      msg->msg_name ? &nl : nullptr, &mf);
  if (n < 0) return n;
  msg->msg_namelen = msg->msg_name ? nl : 0;
  msg->msg_controllen = 0;  // no ancillary data
  msg->msg_flags = mf;
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
