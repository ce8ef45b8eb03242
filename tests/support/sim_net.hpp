// Two complete stacks (198.18.0.1 and 198.18.0.2 on 198.18.0.0/24) joined by
// a simulated link, plus small event-driven applications that run on them.
// Used by the sim tests, the demo and the benchmark.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "stack/base/events.hpp"
#include "stack/stack.hpp"
#include "stack/tcp/tcp_socket.hpp"
#include "tests/support/sim.hpp"

namespace xs::test {

inline constexpr Ipv4Addr kSimA = Ipv4Addr::from_octets(198, 18, 0, 1);
inline constexpr Ipv4Addr kSimB = Ipv4Addr::from_octets(198, 18, 0, 2);

struct SimHost {
  SimHost(const StackConfig& cfg, uint64_t seed, FrameSink& sink) : rng(seed), stack(cfg, rng, sink) {}
  SeededRandom rng;
  Stack stack;
};

class SimNet {
 public:
  SimNet(const LinkConfig& a_to_b, const LinkConfig& b_to_a, uint64_t seed, const TcpConfig& tcp = {});
  explicit SimNet(const LinkConfig& both, uint64_t seed = 1, const TcpConfig& tcp = {})
      : SimNet(both, both, seed, tcp) {}

  Simulator sim;
  SimLink link;
  std::unique_ptr<SimHost> a;
  std::unique_ptr<SimHost> b;
};

// Deterministic payload: byte i of stream `id` (so the receiver can check
// every byte without storing what was sent).
uint8_t stream_byte(uint64_t id, uint64_t i);
void fill_stream(uint64_t id, uint64_t offset, MutBytes out);

// FNV-1a 64, for printing a digest of what was transferred.
struct Fnv64 {
  uint64_t h = 0xcbf29ce484222325ull;
  void add(Bytes b) {
    for (uint8_t c : b) { h ^= c; h *= 0x100000001b3ull; }
  }
};

// One TCP connection's application: writes `to_send` bytes of stream
// `send_id`, reads and verifies stream `recv_id`, then shuts down writing
// and closes once the peer's FIN arrived.
class AppRunner;

class StreamApp final : public SocketObserver {
 public:
  StreamApp(TcpSocket* s, uint64_t send_id, uint64_t to_send, uint64_t recv_id, size_t chunk = 65536);
  ~StreamApp() override;
  // Does whatever the socket allows now. Returns true if it did something.
  bool step(Instant now);
  bool wants_step() const { return dirty_; }
  void on_socket_event(void*) override;

  TcpSocket* socket() const { return s_; }
  bool done() const { return closed_; }
  uint64_t sent() const { return sent_; }
  uint64_t received() const { return received_; }
  bool corrupt() const { return corrupt_; }
  bool peer_finished() const { return eof_; }
  uint64_t sent_digest() const { return sent_hash_.h; }
  uint64_t recv_digest() const { return recv_hash_.h; }
  std::optional<SockError> error() const { return error_; }
  // Keep the socket open after both directions finished (so tcp_info can be read).
  bool hold_open = false;
  bool close_now(Instant now);

 private:
  friend class AppRunner;
  AppRunner* runner_ = nullptr;
  TcpSocket* s_;
  uint64_t send_id_, to_send_, recv_id_;
  uint64_t sent_ = 0, received_ = 0;
  bool shut_ = false, eof_ = false, closed_ = false, corrupt_ = false, dirty_ = true;
  std::optional<SockError> error_;
  Fnv64 sent_hash_, recv_hash_;
  std::vector<uint8_t> buf_;
  std::vector<uint8_t> out_;  // generated, not yet accepted data: [out_off_, out_len_)
  size_t out_off_ = 0, out_len_ = 0;
};

// Runs a set of StreamApps as one pollable of the simulator.
class AppRunner {
 public:
  explicit AppRunner(Simulator& sim);
  void add(StreamApp* app);
  void remove(StreamApp* app);
  void mark(StreamApp* app) { ready_.push_back(app); }

 private:
  std::vector<StreamApp*> ready_, running_;
  Simulator& sim_;
};

}  // namespace xs::test
