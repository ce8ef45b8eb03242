// A deterministic discrete-event network simulator for tests and the demo
// (STYLE.md 11, after smoltcp's tests/netsim.rs): stacks exchange Ethernet
// frames over SimLinks with bandwidth, delay, jitter, loss, duplication and
// reordering, on simulated time. Same seed, same run, to the microsecond.
//
// Two ways to drive it:
//  * by hand:   sim.advance_to(t); link.deliver_due(sim.now());
//               stack.poll(sim.now()); t = min(link.next_event(), stack.poll_at());
//  * automatic: sim.add_pollable({...}); sim.run_until(limit, done);
//    each step runs due events, delivers due frames on every link, then polls
//    every pollable, and jumps to the earliest next thing any of them wants.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "stack/base/bytes.hpp"
#include "stack/base/random.hpp"
#include "stack/base/time.hpp"
#include "stack/net/frame_sink.hpp"

namespace xs {

class SimLink;

// Something polled like an engine polls a stack. `poll_at` may be empty: the
// pollable is then polled only in steps caused by something else.
struct Pollable {
  std::function<void(Instant)> poll;
  std::function<Instant()> poll_at;
};

class Simulator {
 public:
  explicit Simulator(uint64_t seed = 1);
  ~Simulator();
  Simulator(const Simulator&) = delete;
  Simulator& operator=(const Simulator&) = delete;

  Instant now() const { return now_; }
  uint64_t seed() const { return seed_; }
  // Randomness for a test's own choices (payloads, start times), from seed().
  // Links draw from streams of their own, so using this does not change them.
  Random& rng() { return rng_; }

  // Runs `fn` at instant t (or now(), if t is in the past). Events at the same
  // instant run in the order they were scheduled. Allocates: for test scripts,
  // not for per-frame work (links have their own non-allocating queue).
  void at(Instant t, std::function<void()> fn);
  void after(Duration d, std::function<void()> fn) { at(now_ + d, std::move(fn)); }

  void add_pollable(Pollable p);

  // ---- driving by hand ----
  // Earliest instant something is due: a scheduled event, a frame delivery on
  // any link, a pollable's poll_at(). kNever if nothing is.
  Instant next_event() const;
  // Moves the clock forward to t (never backward) without running anything.
  // SimLink::End::tx_commit() stamps frames with now(), so a hand-written loop
  // must advance the clock before it polls.
  void advance_to(Instant t);
  // Runs everything due at now(): events, then frame deliveries on every link
  // (in link creation order), then polls every pollable.
  void step();

  // ---- driving automatically ----
  // Steps (once at now(), then at each next_event()) until done() is true,
  // checked before every step, or until the next step would be after `limit`;
  // the clock then stands at `limit`. Returns true if done() became true. With
  // no predicate it runs to `limit` and returns true.
  // Throws std::runtime_error when a run makes no progress in time (more than
  // a million steps at one instant): a stack whose poll_at() stays in the past.
  bool run_until(Instant limit, const std::function<bool()>& done = {});
  void run_for(Duration d) { run_until(now_ + d); }
  // Runs until idle() or `limit`; returns true if it became idle.
  bool run_until_idle(Instant limit);
  // No scheduled events, no frame in flight on any link, and every pollable's
  // poll_at() is kNever (or absent).
  bool idle() const;

  uint64_t steps() const { return steps_; }

 private:
  friend class SimLink;
  struct Event {
    Instant t;
    uint64_t seq;
    std::function<void()> fn;
  };
  static bool later(const Event& x, const Event& y);
  void attach(SimLink* link);
  void detach(SimLink* link);
  uint64_t next_stream_seed();

  uint64_t seed_;
  SeededRandom rng_;
  Instant now_{};
  uint64_t event_seq_ = 0;
  uint64_t streams_ = 0;
  uint64_t steps_ = 0;
  std::vector<Event> events_;  // min-heap by (t, seq)
  std::vector<SimLink*> links_;
  std::vector<Pollable> pollables_;
};

struct LinkConfig {
  uint64_t bandwidth_bps = 0;  // 0 = infinite: no serialization delay, no queue
  Duration delay;              // propagation delay
  Duration jitter;             // extra delay, uniform in [0, jitter]
  double loss = 0;             // probability a frame is lost on the wire
  double duplicate = 0;        // probability a frame arrives twice
  double reorder = 0;          // probability a frame is delayed by reorder_extra
  Duration reorder_extra = millis(1);
  size_t mtu = 1500;                       // frames above mtu + 14 are dropped
  size_t queue_limit_bytes = size_t{1} << 20;  // drop-tail queue before the wire
  size_t max_frames_in_flight = 1 << 16;   // pool limit; tx_acquire() then fails
};

// Per-direction counters.
struct LinkStats {
  uint64_t frames_sent = 0;  // committed by the sender, whatever happened next
  uint64_t bytes_sent = 0;
  uint64_t bytes_on_wire = 0;  // serialized: sent minus MTU and queue drops (lost ones included)
  uint64_t frames_delivered = 0;  // handed to the receiver, duplicates included
  uint64_t bytes_delivered = 0;
  uint64_t frames_lost = 0;        // random loss on the wire
  uint64_t frames_duplicated = 0;  // extra copies made
  uint64_t frames_reordered = 0;   // frames given reorder_extra
  uint64_t frames_dropped_queue = 0;
  uint64_t frames_dropped_mtu = 0;
  uint64_t tx_no_buffer = 0;  // tx_acquire() found the pool exhausted
};

// A point-to-point Ethernet link between ends A and B. Each direction:
//  1. drop frames above mtu + 14 (what a switch port does);
//  2. drop-tail queue: a frame is dropped if the bytes still waiting to be
//     serialized (a fluid measure, the frame on the wire included) plus its
//     own exceed queue_limit_bytes;
//  3. serialization at bandwidth_bps, back to back: a frame starts when the
//     previous one has finished (timing kept in ns; frame bytes only, no
//     preamble or FCS);
//  4. loss, after serialization: a lost frame still used the wire;
//  5. arrival = end of serialization (rounded up to us) + delay + jitter
//     (+ reorder_extra for reordered frames); a duplicate is a second copy
//     with its own jitter and reordering.
// Frames live in a pool of fixed-size buffers that grows in chunks up to
// max_frames_in_flight and is never shrunk, and a per-direction min-heap of
// deliveries over pool indices: no allocation per frame in steady state.
// The Simulator must outlive its links.
class SimLink {
 public:
  // Called at delivery with the simulator's now() and the frame. The bytes are
  // valid only during the call (the buffer then returns to the pool). The
  // receiver may transmit on any link, including this one.
  using Receiver = std::function<void(Instant, Bytes)>;

  class Direction;

  class End final : public FrameSink {
   public:
    // Where frames arriving at this end go. Frames delivered while no
    // receiver is set are counted as delivered and discarded.
    void set_receiver(Receiver r);

    // A buffer longer than mtu + 14 (the next multiple of 2 KiB), so a stack
    // with a larger MTU than the link's can write an oversize frame, which the
    // link drops and counts. Empty when max_frames_in_flight are in use.
    // Calling it again before tx_commit() returns the same buffer.
    MutBytes tx_acquire() override;
    // Sends the frame at sim.now(). len 0 abandons the buffer.
    void tx_commit(size_t len) override;
    size_t max_frame_len() const override;

    // Counters of the direction this end sends on.
    const LinkStats& tx_stats() const;

   private:
    friend class SimLink;
    End() = default;
    Direction* tx_ = nullptr;
    Direction* rx_ = nullptr;
  };

  SimLink(Simulator& sim, const LinkConfig& cfg);
  SimLink(Simulator& sim, const LinkConfig& a_to_b, const LinkConfig& b_to_a);
  ~SimLink();
  SimLink(const SimLink&) = delete;
  SimLink& operator=(const SimLink&) = delete;

  End& a() { return a_; }
  End& b() { return b_; }

  // Earliest pending delivery in either direction, kNever if none.
  Instant next_event() const;
  // Delivers every frame due at or before `now`, in (time, send order) order,
  // A->B before B->A.
  void deliver_due(Instant now);
  // No frame in flight in either direction.
  bool idle() const;

  const LinkStats& stats_ab() const;
  const LinkStats& stats_ba() const;

  // Pool accounting, both directions: after a run has drained, every buffer is
  // free again.
  size_t buffers_total() const;
  size_t buffers_free() const;
  size_t frames_in_flight() const;

 private:
  Simulator& sim_;
  std::unique_ptr<Direction> ab_;
  std::unique_ptr<Direction> ba_;
  End a_;
  End b_;
};

}  // namespace xs
