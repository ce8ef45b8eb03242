// A client on host A and a server on host B exchange `bytes` in each
// direction over one connection; used by several sim tests.
#pragma once
#include <string>

#include "tests/support/sim_net.hpp"

namespace xs::test {

struct TransferResult {
  bool completed = false;
  bool corrupt = false;
  uint64_t a_received = 0, b_received = 0;
  uint64_t a_sent_digest = 0, b_recv_digest = 0, b_sent_digest = 0, a_recv_digest = 0;
  Instant finished;
  uint64_t b_received_at_measure = 0;  // bytes B had received at spec.measure_from
  uint64_t ab_bytes_at_measure = 0;    // link bytes A->B sent by then
  TcpInfo a_info, b_info;
  LinkStats ab, ba;
  StackCounters a_counters, b_counters;
  size_t a_sockets_left = 0, b_sockets_left = 0;
  std::string error;
  std::string a_debug, b_debug;  // socket state when the run ended
};

struct TransferSpec {
  LinkConfig ab, ba;
  uint64_t seed = 1;
  uint64_t a_to_b = 1 << 20;
  uint64_t b_to_a = 1 << 20;
  TcpConfig tcp;
  const char* cc = "cubic";
  Duration limit = seconds(600);
  bool wait_time_wait = true;  // run on until TIME_WAIT has expired
  Duration measure_from{0};    // steady-state window starts here (0: whole run)
};

TransferResult run_transfer(const TransferSpec& spec);

}  // namespace xs::test
