#include "tests/support/sim.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

namespace xs {

namespace {

// splitmix64 finalizer: spreads (seed, stream number) into independent seeds.
uint64_t mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Bernoulli trial with probability p, from the top 53 bits of one draw.
bool chance(Random& rng, double p) {
  if (p <= 0) return false;
  return static_cast<double>(rng.next_u64() >> 11) * 0x1.0p-53 < p;
}

constexpr size_t kEthHeaderLen = 14;
// Buffers are whole 2 KiB units (like UMEM chunks) with room past mtu + 14, so
// an oversize frame can be written and then dropped by the link.
size_t buffer_len_for(size_t mtu) { return ((mtu + kEthHeaderLen) / 2048 + 1) * 2048; }
constexpr uint32_t kChunkBuffers = 64;
constexpr uint64_t kMaxStepsPerInstant = 1'000'000;

}  // namespace

// ---- Simulator ---------------------------------------------------------------

Simulator::Simulator(uint64_t seed) : seed_(seed), rng_(mix(seed ^ 0x5349'4d55'4c41'544full)) {}

Simulator::~Simulator() = default;

bool Simulator::later(const Event& x, const Event& y) {
  return x.t != y.t ? x.t > y.t : x.seq > y.seq;
}

void Simulator::at(Instant t, std::function<void()> fn) {
  events_.push_back(Event{max(t, now_), event_seq_++, std::move(fn)});
  std::push_heap(events_.begin(), events_.end(), later);
}

void Simulator::add_pollable(Pollable p) { pollables_.push_back(std::move(p)); }

Instant Simulator::next_event() const {
  Instant next = kNever;
  if (!events_.empty()) next = events_.front().t;
  for (const SimLink* l : links_) next = min(next, l->next_event());
  for (const Pollable& p : pollables_) {
    if (p.poll_at) next = min(next, p.poll_at());
  }
  return next;
}

void Simulator::advance_to(Instant t) { now_ = max(now_, t); }

void Simulator::step() {
  ++steps_;
  // Events scheduled for now() by an event run in this same step.
  while (!events_.empty() && events_.front().t <= now_) {
    std::pop_heap(events_.begin(), events_.end(), later);
    Event e = std::move(events_.back());
    events_.pop_back();
    e.fn();
  }
  // By index: a receiver or event may create links.
  for (size_t i = 0; i < links_.size(); ++i) links_[i]->deliver_due(now_);
  for (size_t i = 0; i < pollables_.size(); ++i) {
    if (pollables_[i].poll) pollables_[i].poll(now_);
  }
}

bool Simulator::run_until(Instant limit, const std::function<bool()>& done) {
  uint64_t same_instant = 0;
  Instant next = now_;  // the first step runs at now(): pollables get a first look
  for (;;) {
    if (done && done()) return true;
    if (next > limit) {
      advance_to(limit);
      return !done;
    }
    if (next > now_) {
      same_instant = 0;
    } else if (++same_instant > kMaxStepsPerInstant) {
      throw std::runtime_error("Simulator: no progress at t=" + std::to_string(now_.us) +
                               "us (a poll_at() stays in the past?)");
    }
    advance_to(next);
    step();
    next = next_event();
  }
}

bool Simulator::run_until_idle(Instant limit) {
  return run_until(limit, [this] { return idle(); });
}

bool Simulator::idle() const {
  if (!events_.empty()) return false;
  for (const SimLink* l : links_) {
    if (!l->idle()) return false;
  }
  for (const Pollable& p : pollables_) {
    if (p.poll_at && p.poll_at() < kNever) return false;
  }
  return true;
}

void Simulator::attach(SimLink* link) { links_.push_back(link); }

void Simulator::detach(SimLink* link) { std::erase(links_, link); }

uint64_t Simulator::next_stream_seed() { return mix(seed_ + mix(++streams_)); }

// ---- SimLink::Direction ------------------------------------------------------

class SimLink::Direction {
 public:
  Direction(Simulator& sim, const LinkConfig& cfg, uint64_t seed)
      : cfg_(cfg),
        sim_(sim),
        rng_(seed),
        buf_len_(buffer_len_for(cfg.mtu)) {
    grow();
  }

  MutBytes acquire() {
    if (staged_ < 0) {
      uint32_t idx;
      if (!take(idx)) {
        ++stats_.tx_no_buffer;
        return {};
      }
      staged_ = idx;
    }
    return {data(static_cast<uint32_t>(staged_)), buf_len_};
  }

  void commit(size_t len) {
    if (staged_ < 0) throw std::logic_error("SimLink: tx_commit() without tx_acquire()");
    const auto buf = static_cast<uint32_t>(staged_);
    staged_ = -1;
    if (len == 0) return release(buf);
    if (len > buf_len_) throw std::length_error("SimLink: tx_commit() past the buffer");
    ++stats_.frames_sent;
    stats_.bytes_sent += len;
    if (len > cfg_.mtu + kEthHeaderLen) {
      ++stats_.frames_dropped_mtu;
      return release(buf);
    }

    const int64_t now_ns = sim_.now().us * 1000;
    int64_t done_ns = now_ns;  // end of serialization
    if (cfg_.bandwidth_bps != 0) {
      const int64_t backlog_ns = std::max<int64_t>(busy_until_ns_ - now_ns, 0);
      const auto backlog_bytes = static_cast<uint64_t>(
          static_cast<unsigned __int128>(backlog_ns) * cfg_.bandwidth_bps / 8'000'000'000u);
      if (backlog_bytes + len > cfg_.queue_limit_bytes) {
        ++stats_.frames_dropped_queue;
        return release(buf);
      }
      const uint64_t bits_ns = uint64_t{len} * 8'000'000'000u;
      const auto ser_ns = static_cast<int64_t>((bits_ns + cfg_.bandwidth_bps - 1) / cfg_.bandwidth_bps);
      busy_until_ns_ = std::max(busy_until_ns_, now_ns) + ser_ns;
      done_ns = busy_until_ns_;
    }
    stats_.bytes_on_wire += len;
    if (chance(rng_, cfg_.loss)) {
      ++stats_.frames_lost;
      return release(buf);
    }
    const Instant departed{(done_ns + 999) / 1000};
    schedule(departed, buf, static_cast<uint32_t>(len));
    if (chance(rng_, cfg_.duplicate)) {
      uint32_t copy;
      if (take(copy)) {  // no buffer: the network had no room to duplicate
        std::memcpy(data(copy), data(buf), len);
        ++stats_.frames_duplicated;
        schedule(departed, copy, static_cast<uint32_t>(len));
      }
    }
  }

  Instant next_event() const { return heap_.empty() ? kNever : heap_.front().at; }

  void deliver_due(Instant now) {
    while (!heap_.empty() && heap_.front().at <= now) {
      std::pop_heap(heap_.begin(), heap_.end(), later);
      const InFlight f = heap_.back();
      heap_.pop_back();
      ++stats_.frames_delivered;
      stats_.bytes_delivered += f.len;
      if (receiver_) receiver_(now, Bytes(data(f.buf), f.len));
      release(f.buf);
    }
  }

  size_t max_frame_len() const { return cfg_.mtu + kEthHeaderLen; }
  const LinkStats& stats() const { return stats_; }
  void set_receiver(Receiver r) { receiver_ = std::move(r); }
  size_t in_flight() const { return heap_.size(); }
  size_t buffers_total() const { return total_; }
  size_t buffers_free() const { return free_.size(); }

 private:
  struct InFlight {
    Instant at;
    uint64_t seq;  // send order: ties leave in FIFO order, so runs are reproducible
    uint32_t buf;
    uint32_t len;
  };
  static bool later(const InFlight& x, const InFlight& y) {
    return x.at != y.at ? x.at > y.at : x.seq > y.seq;
  }

  void schedule(Instant departed, uint32_t buf, uint32_t len) {
    Instant at = departed + cfg_.delay;
    if (cfg_.jitter.us > 0) at += micros(static_cast<int64_t>(rng_.below(uint64_t(cfg_.jitter.us) + 1)));
    if (chance(rng_, cfg_.reorder)) {
      at += cfg_.reorder_extra;
      ++stats_.frames_reordered;
    }
    // Never reallocates: capacity follows the pool size.
    heap_.push_back(InFlight{at, seq_++, buf, len});
    std::push_heap(heap_.begin(), heap_.end(), later);
  }

  bool take(uint32_t& idx) {
    if (free_.empty() && !grow()) return false;
    idx = free_.back();
    free_.pop_back();
    return true;
  }
  void release(uint32_t idx) { free_.push_back(idx); }

  // Adds a chunk of buffers; false at max_frames_in_flight. Chunks never move,
  // so spans handed out stay valid while the pool grows.
  bool grow() {
    const size_t room = cfg_.max_frames_in_flight > total_ ? cfg_.max_frames_in_flight - total_ : 0;
    const auto n = static_cast<uint32_t>(std::min<size_t>(kChunkBuffers, room));
    if (n == 0) return false;
    chunks_.push_back(std::make_unique_for_overwrite<uint8_t[]>(size_t{kChunkBuffers} * buf_len_));
    free_.reserve(total_ + n);
    heap_.reserve(total_ + n);
    for (uint32_t i = n; i > 0; --i) free_.push_back(static_cast<uint32_t>(total_ + i - 1));
    total_ += n;
    return true;
  }

  uint8_t* data(uint32_t idx) {
    return chunks_[idx / kChunkBuffers].get() + size_t{idx % kChunkBuffers} * buf_len_;
  }

  LinkConfig cfg_;
  Simulator& sim_;
  SeededRandom rng_;
  size_t buf_len_;
  LinkStats stats_;
  Receiver receiver_;
  std::vector<std::unique_ptr<uint8_t[]>> chunks_;
  std::vector<uint32_t> free_;
  std::vector<InFlight> heap_;  // min-heap by (at, seq)
  size_t total_ = 0;
  int64_t staged_ = -1;  // buffer lent by acquire(), not yet committed
  int64_t busy_until_ns_ = 0;
  uint64_t seq_ = 0;
};

// ---- SimLink -----------------------------------------------------------------

SimLink::SimLink(Simulator& sim, const LinkConfig& cfg) : SimLink(sim, cfg, cfg) {}

SimLink::SimLink(Simulator& sim, const LinkConfig& a_to_b, const LinkConfig& b_to_a)
    : sim_(sim) {
  ab_ = std::make_unique<Direction>(sim, a_to_b, sim.next_stream_seed());
  ba_ = std::make_unique<Direction>(sim, b_to_a, sim.next_stream_seed());
  a_.tx_ = ab_.get();
  a_.rx_ = ba_.get();
  b_.tx_ = ba_.get();
  b_.rx_ = ab_.get();
  sim_.attach(this);
}

SimLink::~SimLink() { sim_.detach(this); }

Instant SimLink::next_event() const { return min(ab_->next_event(), ba_->next_event()); }

void SimLink::deliver_due(Instant now) {
  ab_->deliver_due(now);
  ba_->deliver_due(now);
}

bool SimLink::idle() const { return ab_->in_flight() == 0 && ba_->in_flight() == 0; }
const LinkStats& SimLink::stats_ab() const { return ab_->stats(); }
const LinkStats& SimLink::stats_ba() const { return ba_->stats(); }
size_t SimLink::buffers_total() const { return ab_->buffers_total() + ba_->buffers_total(); }
size_t SimLink::buffers_free() const { return ab_->buffers_free() + ba_->buffers_free(); }
size_t SimLink::frames_in_flight() const { return ab_->in_flight() + ba_->in_flight(); }

void SimLink::End::set_receiver(Receiver r) { rx_->set_receiver(std::move(r)); }
MutBytes SimLink::End::tx_acquire() { return tx_->acquire(); }
void SimLink::End::tx_commit(size_t len) { tx_->commit(len); }
size_t SimLink::End::max_frame_len() const { return tx_->max_frame_len(); }
const LinkStats& SimLink::End::tx_stats() const { return tx_->stats(); }

}  // namespace xs
