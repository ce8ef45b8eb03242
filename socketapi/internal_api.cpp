#include "socketapi/internal_api.hpp"

#include "stack/wire/ipv4.hpp"

namespace xs::internal {

namespace {
Instant deadline_after(Duration d) { return Engine::clock_now() + d; }

// Binds s to `port` (0: any) after the engine has claimed it (shared IP: the
// kernel reserved it and picked it when 0).
template <class Socket>
Status<SockError> claim_and_bind(Engine& e, Socket* s, uint8_t proto, uint16_t port, bool reuseaddr) {
  auto claimed = e.claim_port_locked(s, proto, port, reuseaddr);
  if (!claimed) return unexpected(claimed.error());
  auto r = s->bind({Ipv4Addr::any(), *claimed});
  if (!r) e.release_claim_locked(s);
  return r;
}
}  // namespace

Expected<TcpSocket*, SockError> tcp_listen(Engine& e, uint16_t port, int backlog) {
  std::lock_guard<std::mutex> lk(e.mutex());
  TcpSocket* s = e.stack_locked().tcp().open();
  s->set_observer(&e, s);
  s->options().reuseaddr = true;
  auto fail = [&](SockError err) -> Expected<TcpSocket*, SockError> {
    e.release_claim_locked(s);
    s->close(Engine::clock_now());
    return unexpected(err);
  };
  if (auto r = claim_and_bind(e, s, ipproto::kTcp, port, true); !r) return fail(r.error());
  if (auto r = s->listen(backlog); !r) return fail(r.error());
  return s;
}

Expected<TcpSocket*, SockError> tcp_accept(Engine& e, TcpSocket* l, Duration timeout) {
  std::unique_lock<std::mutex> lk(e.mutex());
  Expected<TcpSocket*, SockError> got = unexpected(SockError::WouldBlock);
  e.wait_locked(lk, [&] {
    got = l->accept(Engine::clock_now());
    return got.has_value() || got.error() != SockError::WouldBlock;
  }, deadline_after(timeout));
  if (got) (*got)->set_observer(&e, *got);
  else if (got.error() == SockError::WouldBlock) return unexpected(SockError::TimedOut);
  return got;
}

Expected<TcpSocket*, SockError> tcp_connect(Engine& e, Endpoint remote, Duration timeout) {
  std::unique_lock<std::mutex> lk(e.mutex());
  TcpSocket* s = e.stack_locked().tcp().open();
  s->set_observer(&e, s);
  if (e.shared_ip()) {
    // The kernel picks the local port, so it never hands it out itself.
    if (auto b = claim_and_bind(e, s, ipproto::kTcp, 0, false); !b) {
      s->close(Engine::clock_now());
      return unexpected(b.error());
    }
  }
  auto r = s->connect(Engine::clock_now(), remote);
  if (!r && r.error() != SockError::InProgress) {
    e.release_claim_locked(s);
    s->close(Engine::clock_now());
    return unexpected(r.error());
  }
  e.after_call_locked();
  bool done = e.wait_locked(lk, [&] { return s->state() != TcpState::SynSent; }, deadline_after(timeout));
  if (!done || s->state() != TcpState::Established) {
    SockError err = s->pending_error().value_or(done ? SockError::ConnectionRefused : SockError::TimedOut);
    e.release_claim_locked(s);
    s->close(Engine::clock_now());
    e.after_call_locked();
    return unexpected(err);
  }
  return s;
}

Expected<size_t, SockError> tcp_send_all(Engine& e, TcpSocket* s, Bytes data, Duration timeout) {
  std::unique_lock<std::mutex> lk(e.mutex());
  size_t sent = 0;
  Instant deadline = deadline_after(timeout);
  std::optional<SockError> err;
  while (sent < data.size()) {
    auto r = s->send(Engine::clock_now(), data.subspan(sent));
    e.after_call_locked();
    if (r) {
      sent += *r;
      continue;
    }
    if (r.error() != SockError::WouldBlock) {
      err = r.error();
      break;
    }
    if (!e.wait_locked(lk, [&] { return (s->readiness() & (ev::kOut | ev::kErr | ev::kHup)) != 0; }, deadline)) {
      err = SockError::TimedOut;
      break;
    }
  }
  if (sent == 0 && err) return unexpected(*err);
  return sent;
}

Expected<size_t, SockError> tcp_recv(Engine& e, TcpSocket* s, MutBytes out, Duration timeout) {
  std::unique_lock<std::mutex> lk(e.mutex());
  Expected<size_t, SockError> r = unexpected(SockError::WouldBlock);
  bool ok = e.wait_locked(lk, [&] {
    r = s->recv(Engine::clock_now(), out);
    return r.has_value() || r.error() != SockError::WouldBlock;
  }, deadline_after(timeout));
  e.after_call_locked();
  if (!ok) return unexpected(SockError::TimedOut);
  return r;
}

void tcp_shutdown_write(Engine& e, TcpSocket* s) {
  std::lock_guard<std::mutex> lk(e.mutex());
  (void)s->shutdown(Engine::clock_now(), false, true);
  e.after_call_locked();
}

void tcp_close(Engine& e, TcpSocket* s) {
  std::lock_guard<std::mutex> lk(e.mutex());
  e.release_claim_locked(s);
  s->close(Engine::clock_now());
  e.after_call_locked();
}

void tcp_set_keepalive(Engine& e, TcpSocket* s, Duration idle, Duration interval, uint32_t count) {
  std::lock_guard<std::mutex> lk(e.mutex());
  s->options().keep_idle = idle;
  s->options().keep_interval = interval;
  s->options().keep_count = count;
  s->set_keepalive(Engine::clock_now(), true);
  e.after_call_locked();
}

void tcp_set_nodelay(Engine& e, TcpSocket* s, bool on) {
  std::lock_guard<std::mutex> lk(e.mutex());
  s->options().nodelay = on;
}

Expected<UdpSocket*, SockError> udp_bind(Engine& e, uint16_t port) {
  std::lock_guard<std::mutex> lk(e.mutex());
  UdpSocket* s = e.stack_locked().udp().open();
  s->set_observer(&e, s);
  if (auto r = claim_and_bind(e, s, ipproto::kUdp, port, false); !r) {
    e.stack_locked().udp().close(s);
    return unexpected(r.error());
  }
  return s;
}

Expected<size_t, SockError> udp_send_to(Engine& e, UdpSocket* s, Bytes data, std::optional<Endpoint> to) {
  std::lock_guard<std::mutex> lk(e.mutex());
  auto r = s->send_to(Engine::clock_now(), data, to);
  e.after_call_locked();
  return r;
}

Expected<UdpRecv, SockError> udp_recv_from(Engine& e, UdpSocket* s, MutBytes out, Duration timeout) {
  std::unique_lock<std::mutex> lk(e.mutex());
  Expected<UdpRecv, SockError> r = unexpected(SockError::WouldBlock);
  bool ok = e.wait_locked(lk, [&] {
    r = s->recv_from(out);
    return r.has_value() || r.error() != SockError::WouldBlock;
  }, deadline_after(timeout));
  e.after_call_locked();
  if (!ok) return unexpected(SockError::TimedOut);
  return r;
}

void udp_close(Engine& e, UdpSocket* s) {
  std::lock_guard<std::mutex> lk(e.mutex());
  e.release_claim_locked(s);
  e.stack_locked().udp().close(s);
  e.after_call_locked();
}

}  // namespace xs::internal
