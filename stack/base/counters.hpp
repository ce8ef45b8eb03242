// Stack-wide counters in the spirit of `nstat`. Plain integers: the stack is
// single-threaded; the engine publishes snapshots.
#pragma once
#include <cstdint>

namespace xs {

#define XS_STACK_COUNTERS(X)                                                    \
  X(eth_rx_frames) X(eth_tx_frames) X(eth_rx_drop_short) X(eth_rx_drop_not_for_us) \
  X(eth_rx_drop_ethertype) X(eth_tx_drop_no_buffer)                            \
  X(arp_rx) X(arp_rx_bad) X(arp_tx_requests) X(arp_tx_replies)                 \
  X(arp_resolve_failed) X(arp_queue_drops)                                      \
  X(ip_in_receives) X(ip_in_hdr_errors) X(ip_in_csum_errors) X(ip_in_addr_errors) \
  X(ip_in_unknown_protos) X(ip_in_delivers) X(ip_out_requests) X(ip_out_no_routes) \
  X(ip_frag_creates) X(ip_reasm_reqds) X(ip_reasm_oks) X(ip_reasm_fails)        \
  X(ip_reasm_timeouts)                                                          \
  X(icmp_in_msgs) X(icmp_in_errors) X(icmp_in_csum_errors) X(icmp_in_echos)    \
  X(icmp_in_dest_unreachs) X(icmp_out_msgs) X(icmp_out_echo_reps)              \
  X(icmp_out_dest_unreachs) X(icmp_out_rate_limited)                           \
  X(udp_in_datagrams) X(udp_no_ports) X(udp_in_errors) X(udp_in_csum_errors)   \
  X(udp_rcvbuf_errors) X(udp_out_datagrams) X(udp_sndbuf_errors)               \
  X(tcp_active_opens) X(tcp_passive_opens) X(tcp_attempt_fails) X(tcp_estab_resets) \
  X(tcp_in_segs) X(tcp_out_segs) X(tcp_retrans_segs) X(tcp_in_errs) X(tcp_in_csum_errors) \
  X(tcp_out_rsts) X(tcp_in_rsts)                                                \
  X(tcp_listen_overflows) X(tcp_listen_drops) X(tcp_tw_overflows) X(tcp_syncookies_sent)           \
  X(tcp_syncookies_recv) X(tcp_syncookies_failed) X(tcp_challenge_acks)        \
  X(tcp_challenge_acks_limited) X(tcp_paws_drops) X(tcp_ofo_queue) X(tcp_ofo_drops) \
  X(tcp_rcv_window_drops) X(tcp_sack_recovery) X(tcp_reno_recovery) X(tcp_fast_retrans) \
  X(tcp_timeouts) X(tcp_loss_probes) X(tcp_dsack_recv) X(tcp_spurious_rtos)    \
  X(tcp_keepalive_probes) X(tcp_keepalive_timeouts) X(tcp_zero_window_probes)  \
  X(tcp_time_wait_recycled) X(tcp_abort_on_data) X(tcp_abort_on_close)         \
  X(tcp_abort_on_linger) X(tcp_abort_on_timeout) X(tcp_delayed_acks) X(tcp_pmtu_updates)

struct StackCounters {
#define XS_DECLARE_COUNTER(name) uint64_t name = 0;
  XS_STACK_COUNTERS(XS_DECLARE_COUNTER)
#undef XS_DECLARE_COUNTER

  // Calls f(name, value) for every counter, for printing and publishing.
  template <class F>
  void for_each(F&& f) const {
#define XS_VISIT_COUNTER(name) f(#name, name);
    XS_STACK_COUNTERS(XS_VISIT_COUNTER)
#undef XS_VISIT_COUNTER
  }
};

}  // namespace xs
