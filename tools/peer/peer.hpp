// xstack-peer internals: options, the two socket back ends (xstack engine and
// kernel), and the workloads written once against them.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "socketapi/engine.hpp"
#include "stack/base/addr.hpp"

namespace xs::peer {

struct Options {
  std::string mode;  // serve, tcp-echo-client, udp-echo-client, idle, pingpong
  std::string ifname;
  std::optional<Ipv4Cidr> addr;
  std::optional<Ipv4Addr> gateway;
  PollMode poll = PollMode::Interrupt;
  uint32_t queues = 1;
  bool shared_ip = false;
  bool kernel = false;       // kernel sockets instead of xstack
  bool kernel_spin = false;  // kernel sockets, non-blocking receive in a loop
  uint16_t tcp_port = 0, udp_port = 0;
  std::optional<Endpoint> connect;
  uint64_t bytes = 0;
  uint64_t count = 1000;
  uint32_t size = 64;
  double seconds = 0;  // 0: until SIGTERM (serve) / the workload ends
  // Keepalive idle, interval (seconds) and count; idle 0 = off.
  uint32_t ka_idle = 0, ka_interval = 0, ka_count = 0;
};

bool parse_options(int argc, char** argv, Options* o, std::string* err);
int run(const Options& o);

// The deterministic byte stream the echo workloads send and check.
inline uint8_t pattern_byte(uint64_t offset) {
  uint64_t x = offset * 0x9e3779b97f4a7c15ull;
  return static_cast<uint8_t>((x >> 56) ^ (offset >> 10));
}

}  // namespace xs::peer
