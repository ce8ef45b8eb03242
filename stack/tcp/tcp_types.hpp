// TCP connection states (RFC 9293 3.3.2), the 4-tuple, and the per-connection
// figures behind Linux's struct tcp_info.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>

#include "stack/base/addr.hpp"

namespace xs {

enum class TcpState : uint8_t {
  Closed, Listen, SynSent, SynReceived, Established,
  FinWait1, FinWait2, CloseWait, Closing, LastAck, TimeWait,
};

const char* to_string(TcpState s);

// Linux's numbering of the same states (include/net/tcp_states.h), for tcp_info.
uint8_t linux_state_number(TcpState s);

struct FourTuple {
  Endpoint local;
  Endpoint remote;
  bool operator==(const FourTuple&) const = default;
};

struct FourTupleHash {
  size_t operator()(const FourTuple& t) const {
    uint64_t a = uint64_t(t.local.addr.v) << 32 | t.remote.addr.v;
    uint64_t b = uint64_t(t.local.port) << 16 | t.remote.port;
    uint64_t h = a * 0x9e3779b97f4a7c15ull ^ (b + 0x632be59bd9b4e019ull) * 0xc2b2ae3d27d4eb4full;
    return static_cast<size_t>(h ^ (h >> 29));
  }
};

// Everything struct tcp_info reports (Linux include/uapi/linux/tcp.h), in the
// units Linux uses there (microseconds, milliseconds for last_*, segments).
struct TcpInfo {
  uint8_t state = 0, ca_state = 0, retransmits = 0, probes = 0, backoff = 0, options = 0;
  uint8_t snd_wscale = 0, rcv_wscale = 0;
  uint32_t rto_us = 0, ato_us = 0, snd_mss = 0, rcv_mss = 0;
  uint32_t unacked = 0, sacked = 0, lost = 0, retrans = 0;
  uint32_t last_data_sent_ms = 0, last_ack_sent_ms = 0, last_data_recv_ms = 0, last_ack_recv_ms = 0;
  uint32_t pmtu = 0, rcv_ssthresh = 0, rtt_us = 0, rttvar_us = 0, snd_ssthresh = 0, snd_cwnd = 0;
  uint32_t advmss = 0, reordering = 3, rcv_rtt_us = 0, rcv_space = 0, total_retrans = 0;
  uint64_t bytes_acked = 0, bytes_received = 0;
  uint32_t segs_out = 0, segs_in = 0, notsent_bytes = 0, min_rtt_us = 0;
  uint32_t data_segs_in = 0, data_segs_out = 0;
  uint64_t delivery_rate = 0, bytes_sent = 0, bytes_retrans = 0;
  uint32_t dsack_dups = 0, reord_seen = 0, rcv_ooopack = 0, snd_wnd = 0, rcv_wnd = 0;
  // Not in tcp_info but shown by xstack-stat.
  uint32_t snd_queue_bytes = 0, rcv_queue_bytes = 0;
};

// tcp_info.options bits (TCPI_OPT_*).
namespace tcpi_opt {
inline constexpr uint8_t kTimestamps = 1;
inline constexpr uint8_t kSack = 2;
inline constexpr uint8_t kWscale = 4;
}  // namespace tcpi_opt

}  // namespace xs
