#include "tests/support/sim_net.hpp"

#include <algorithm>

namespace xs::test {

SimNet::SimNet(const LinkConfig& a_to_b, const LinkConfig& b_to_a, uint64_t seed, const TcpConfig& tcp)
    : sim(seed), link(sim, a_to_b, b_to_a) {
  StackConfig ca;
  ca.mac = MacAddr{{0x02, 0, 0, 0, 0, 1}};
  ca.addr = Ipv4Cidr{kSimA, 24};
  ca.mtu = static_cast<uint16_t>(a_to_b.mtu);
  ca.tcp = tcp;
  StackConfig cb = ca;
  cb.mac = MacAddr{{0x02, 0, 0, 0, 0, 2}};
  cb.addr = Ipv4Cidr{kSimB, 24};
  cb.mtu = static_cast<uint16_t>(b_to_a.mtu);
  a = std::make_unique<SimHost>(ca, seed * 2 + 1, link.a());
  b = std::make_unique<SimHost>(cb, seed * 2 + 2, link.b());
  link.a().set_receiver([this](Instant t, Bytes f) { a->stack.receive_frame(t, f); });
  link.b().set_receiver([this](Instant t, Bytes f) { b->stack.receive_frame(t, f); });
  sim.add_pollable({[this](Instant t) { a->stack.poll(t); }, [this] { return a->stack.poll_at(); }});
  sim.add_pollable({[this](Instant t) { b->stack.poll(t); }, [this] { return b->stack.poll_at(); }});
}

uint8_t stream_byte(uint64_t id, uint64_t i) {
  uint64_t x = (i >> 3) * 0x9e3779b97f4a7c15ull ^ (id + 1) * 0xd1b54a32d192ed03ull;
  x ^= x >> 31;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 29;
  return static_cast<uint8_t>(x >> (8 * (i & 7)));
}

void fill_stream(uint64_t id, uint64_t offset, MutBytes out) {
  for (size_t k = 0; k < out.size(); ++k) out[k] = stream_byte(id, offset + k);
}

StreamApp::StreamApp(TcpSocket* s, uint64_t send_id, uint64_t to_send, uint64_t recv_id, size_t chunk)
    : s_(s), send_id_(send_id), to_send_(to_send), recv_id_(recv_id), buf_(chunk), out_(chunk) {
  s_->set_observer(this, nullptr);
}

void StreamApp::on_socket_event(void*) {
  if (dirty_ || closed_) return;
  dirty_ = true;
  if (runner_) runner_->mark(this);
}

StreamApp::~StreamApp() {
  if (runner_) runner_->remove(this);
  if (!closed_ && s_) s_->set_observer(nullptr, nullptr);
}

bool StreamApp::close_now(Instant now) {
  if (closed_) return false;
  s_->close(now);
  closed_ = true;
  return true;
}

bool StreamApp::step(Instant now) {
  dirty_ = false;
  if (closed_) return false;
  bool did = false;
  // Write while the socket takes data.
  while (sent_ < to_send_) {
    if (out_off_ == out_len_) {
      // Generate the next chunk once; it is offered until the socket takes it.
      out_len_ = static_cast<size_t>(std::min<uint64_t>(out_.size(), to_send_ - sent_));
      out_off_ = 0;
      fill_stream(send_id_, sent_, MutBytes(out_.data(), out_len_));
    }
    size_t n = out_len_ - out_off_;
    auto r = s_->send(now, Bytes(out_.data() + out_off_, n));
    if (!r) {
      if (r.error() != SockError::WouldBlock) error_ = r.error();
      break;
    }
    sent_hash_.add(Bytes(out_.data() + out_off_, *r));
    sent_ += *r;
    out_off_ += *r;
    did = true;
    if (*r < n) break;
  }
  if (sent_ == to_send_ && !shut_ && !error_) {
    (void)s_->shutdown(now, false, true);
    shut_ = true;
    did = true;
  }
  // Read everything available and check it byte by byte.
  for (;;) {
    auto r = s_->recv(now, MutBytes(buf_.data(), buf_.size()));
    if (!r) {
      if (r.error() != SockError::WouldBlock) error_ = r.error();
      break;
    }
    if (*r == 0) {
      eof_ = true;
      break;
    }
    for (size_t k = 0; k < *r; ++k) {
      if (buf_[k] != stream_byte(recv_id_, received_ + k)) corrupt_ = true;
    }
    recv_hash_.add(Bytes(buf_.data(), *r));
    received_ += *r;
    did = true;
  }
  if (((eof_ && shut_) || error_) && !hold_open) {
    s_->close(now);
    closed_ = true;
    did = true;
  }
  return did;
}

AppRunner::AppRunner(Simulator& sim) : sim_(sim) {
  // Only apps whose socket reported an event run (like an epoll loop).
  sim_.add_pollable({[this](Instant now) {
                       running_.swap(ready_);
                       for (StreamApp* a : running_) {
                         if (a && a->wants_step()) a->step(now);
                       }
                       running_.clear();
                     },
                     [this] { return ready_.empty() ? kNever : sim_.now(); }});
}

void AppRunner::add(StreamApp* app) {
  app->runner_ = this;
  if (app->dirty_) ready_.push_back(app);
}

void AppRunner::remove(StreamApp* app) {
  for (auto& p : ready_) if (p == app) p = nullptr;
  for (auto& p : running_) if (p == app) p = nullptr;
  app->runner_ = nullptr;
}

}  // namespace xs::test
