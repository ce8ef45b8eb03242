// Stack-wide TCP settings, defaulting to what Linux does (the sysctl named beside each).
#pragma once
#include <cstdint>

#include "stack/base/time.hpp"

namespace xs {

struct TcpConfig {
  Duration time_wait = seconds(60);       // TCP_TIMEWAIT_LEN (2*MSL)
  uint32_t max_tw_buckets = 262144;       // tcp_max_tw_buckets: beyond, a connection closes without TIME_WAIT
  Duration fin_wait2_timeout = seconds(60);  // tcp_fin_timeout, orphaned FIN_WAIT_2
  Duration rto_initial = seconds(1);      // RFC 6298 2.1
  Duration rto_min = millis(200);         // TCP_RTO_MIN
  Duration rto_max = seconds(120);        // TCP_RTO_MAX
  Duration delack_min = millis(40);       // TCP_DELACK_MIN; delayed ACK timer <= 40 ms
  Duration cork_limit = millis(200);      // TCP_CORK holds data at most this long
  Duration keepalive_idle = seconds(7200);  // tcp_keepalive_time
  Duration keepalive_interval = seconds(75);  // tcp_keepalive_intvl
  uint32_t keepalive_probes = 9;          // tcp_keepalive_probes
  uint32_t syn_retries = 6;               // tcp_syn_retries
  uint32_t synack_retries = 5;            // tcp_synack_retries
  uint32_t retries2 = 15;                 // tcp_retries2
  uint32_t orphan_retries = 8;            // tcp_orphan_retries (0 means 8)
  uint32_t somaxconn = 4096;              // net.core.somaxconn
  uint32_t max_syn_backlog = 1024;        // tcp_max_syn_backlog
  bool syncookies = true;                 // tcp_syncookies = 1: used only when the SYN queue overflows
  bool timestamps = true;                 // tcp_timestamps
  bool sack = true;                       // tcp_sack
  bool window_scaling = true;             // tcp_window_scaling
  bool moderate_rcvbuf = true;            // tcp_moderate_rcvbuf
  uint32_t rmem_min = 4096, rmem_default = 131072, rmem_max = 6291456;  // tcp_rmem
  // New TCP and UDP sockets start with XS_ZC_RX_FRAMES on (XSTACK_ZC_RX_FRAMES=1).
  bool rx_frames = false;
  uint32_t wmem_min = 4096, wmem_default = 16384, wmem_max = 4194304;   // tcp_wmem
  uint32_t core_rmem_max = 212992, core_wmem_max = 212992;  // net.core.[rw]mem_max caps SO_*BUF
  uint32_t challenge_ack_limit = 1000;    // tcp_challenge_ack_limit (per second)
  uint16_t ephemeral_low = 32768, ephemeral_high = 60999;  // ip_local_port_range
  uint8_t default_ttl = 64;               // ip_default_ttl
  bool default_cubic = true;              // tcp_congestion_control = cubic
};

}  // namespace xs
