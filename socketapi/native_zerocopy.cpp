// The zero-copy calls of the native API (xs_zc_*, docs/zerocopy.md):
// receive by borrowing bytes in place in the socket's receive queue, send by
// writing into reserved send-buffer space. The stack keeps the bytes where
// they are (TcpSocket/UdpSocket zc_*); this file adds what every socket call
// has: the descriptor lookup, blocking with SO_RCVTIMEO/SO_SNDTIMEO, EINTR,
// SIGPIPE and errno.
//
// Views point into stack memory that the engine keeps using under the engine
// mutex while the application reads or writes them without it. That is safe
// because the stack never touches lent or reserved bytes: lent bytes sit
// before the receive ring's free space and the ring does not move while any
// are lent; reserved bytes are beyond the send queue, where only
// zc_commit/send (both refused or replaced while a reservation is open) write.
#include <array>
#include <span>

#include "socketapi/native_internal.hpp"

namespace xs::native {

namespace {

void raise_sigpipe() { pthread_kill(pthread_self(), SIGPIPE); }

xs_zc_iov view_of(const uint8_t* p, size_t len) {
  xs_zc_iov v{};
  v.base = const_cast<uint8_t*>(p);  // lent for reading; the C struct has one pointer type
  v.len = len;
  return v;
}

}  // namespace

int Runtime::zc_recv(int fd, xs_zc_iov* out, int max, int flags) {
  std::unique_lock<std::mutex> lk(e_.mutex());
  XS_SOCK_OR_FAIL(o, fd);
  if (out == nullptr || max <= 0) return fail(EINVAL);
  if (flags & ~MSG_DONTWAIT) return fail(EINVAL);  // no PEEK/TRUNC/WAITALL/OOB on loans
  const bool nb = o->nonblock || (flags & MSG_DONTWAIT);
  const Instant deadline = deadline_after(nb, o->rcvtimeo);
  bool polled = false;

  if (o->udp) {
    // Stack-side views, then copied out field by field; at most this many
    // per call keeps the array on the stack (no allocation per call).
    constexpr size_t kBatch = 64;
    std::array<UdpSocket::View, kBatch> views;
    const size_t want = std::min<size_t>(static_cast<size_t>(max), kBatch);
    for (;;) {
      auto r = o->udp->zc_borrow(std::span(views.data(), want));
      if (r) {
        for (size_t i = 0; i < *r; ++i) {
          out[i] = view_of(views[i].payload.data(), views[i].payload.size());
          out[i].from = sockaddr_of(views[i].from);
        }
        return static_cast<int>(*r);
      }
      if (r.error() != SockError::WouldBlock) return fail(to_errno(r.error()));
      if (nb) {
        if (!polled && (polled = e_.poll_before_eagain_locked())) continue;  // spin/busy-poll
        return fail(EAGAIN);
      }
      WaitStatus ws = wait_locked(lk, [&] {
        return o->closed || o->udp->rx_datagrams() > 0 || o->udp->pending_error().has_value();
      }, deadline);
      if (o->closed) return fail(EBADF);
      if (ws == WaitStatus::Interrupted) return fail(EINTR);
      if (ws != WaitStatus::Ready) return fail(EAGAIN);
    }
  }

  // TCP. SO_RCVLOWAT as recv applies it: wait until that much is readable
  // (or end of stream, an error, the timeout), then lend what there is.
  const size_t lowat = static_cast<size_t>(std::max(o->tcp->options().rcvlowat, 1u));
  // One view per frame the bytes stayed in (XS_ZC_RX_FRAMES), else one or
  // two of the ring; at most this many per call keeps the array on the stack.
  constexpr size_t kMaxSpans = 64;
  std::array<Bytes, kMaxSpans> spans;
  const size_t want_spans = std::min<size_t>(static_cast<size_t>(max), kMaxSpans);
  bool timed_out = false;
  for (;;) {
    TcpSocket* t = o->tcp;
    const size_t avail = t->bytes_readable();
    if (avail == 0 || avail >= lowat || nb || timed_out ||
        (t->readiness() & (ev::kErr | ev::kHup | ev::kRdHup)) != 0) {
      auto r = t->zc_borrow(SIZE_MAX, std::span(spans.data(), want_spans));
      if (r) {
        for (size_t i = 0; i < *r; ++i) out[i] = view_of(spans[i].data(), spans[i].size());
        return static_cast<int>(*r);  // 0: end of stream
      }
      if (r.error() != SockError::WouldBlock) return fail(to_errno(r.error()));
      if (nb && !polled && (polled = e_.poll_before_eagain_locked())) continue;  // spin/busy-poll
      if (nb || timed_out) return fail(EAGAIN);
    }
    WaitStatus ws = wait_locked(lk, [&] {
      return o->closed || o->tcp->bytes_readable() >= lowat ||
             (o->tcp->readiness() & (ev::kErr | ev::kHup | ev::kRdHup)) != 0;
    }, deadline);
    if (o->closed) return fail(EBADF);
    if (ws == WaitStatus::Interrupted) return fail(EINTR);
    if (ws != WaitStatus::Ready) timed_out = true;  // one more look: lend what arrived
  }
}

int Runtime::zc_release(int fd, size_t count) {
  std::unique_lock<std::mutex> lk(e_.mutex());
  XS_SOCK_OR_FAIL(o, fd);
  if (o->udp) {
    if (auto r = o->udp->zc_release(count); !r) return fail(to_errno(r.error()));
    return 0;
  }
  if (auto r = o->tcp->zc_release(Engine::clock_now(), count); !r) return fail(to_errno(r.error()));
  e_.after_call_locked();  // the window update leaves now
  return 0;
}

ssize_t Runtime::zc_send_reserve(int fd, size_t len, xs_zc_iov* out, int* n, int flags) {
  std::unique_lock<std::mutex> lk(e_.mutex());
  XS_SOCK_OR_FAIL(o, fd);
  if (o->udp) return fail(EOPNOTSUPP);
  if (out == nullptr || n == nullptr || len == 0) return fail(EINVAL);
  if (flags & ~(MSG_DONTWAIT | MSG_NOSIGNAL)) return fail(EINVAL);
  const bool nb = o->nonblock || (flags & MSG_DONTWAIT);
  const Instant deadline = deadline_after(nb, o->sndtimeo);
  SockError err = SockError::WouldBlock;
  for (;;) {
    auto r = o->tcp->zc_reserve(len);
    if (r) {
      int k = 0;
      ssize_t total = 0;
      for (MutBytes s : *r) {
        if (s.empty()) continue;
        out[k++] = view_of(s.data(), s.size());
        total += static_cast<ssize_t>(s.size());
      }
      *n = k;
      return total;
    }
    if (r.error() != SockError::WouldBlock || nb) {
      err = r.error();
      break;
    }
    WaitStatus ws = wait_locked(lk, [&] {
      return o->closed || (o->tcp->readiness() & (ev::kOut | ev::kErr | ev::kHup)) != 0;
    }, deadline);
    if (o->closed) return fail(EBADF);
    if (ws == WaitStatus::Interrupted) return fail(EINTR);
    if (ws != WaitStatus::Ready) return fail(EAGAIN);
  }
  if (err == SockError::BrokenPipe && !(flags & MSG_NOSIGNAL)) {
    lk.unlock();
    raise_sigpipe();
  }
  return fail(to_errno(err));
}

ssize_t Runtime::zc_send_commit(int fd, size_t len, int flags) {
  std::unique_lock<std::mutex> lk(e_.mutex());
  XS_SOCK_OR_FAIL(o, fd);
  if (o->udp) return fail(EOPNOTSUPP);
  if (flags & ~(MSG_MORE | MSG_NOSIGNAL | MSG_DONTWAIT)) return fail(EINVAL);
  auto r = o->tcp->zc_commit(Engine::clock_now(), len, (flags & MSG_MORE) != 0);
  e_.after_call_locked();  // the segments leave before the call returns, as for send
  if (r) return static_cast<ssize_t>(*r);
  if (r.error() == SockError::BrokenPipe && !(flags & MSG_NOSIGNAL)) {
    lk.unlock();
    raise_sigpipe();
  }
  return fail(to_errno(r.error()));
}

}  // namespace xs::native
