/* Shared between the XDP program (xstack_redirect.bpf.c) and user space
 * (xdp_program.cpp): the flow-map key, the special slot value and the stats
 * indices. Plain C with fixed-width kernel types so both compilers agree on
 * the layout. */
#ifndef XSTACK_REDIRECT_H
#define XSTACK_REDIRECT_H

#include <linux/types.h>

/* Key of the `flows` hash map. dst_ip and dst_port are in network byte order,
 * exactly as they appear in the packet, so the program copies them without
 * swapping. The padding is always zero (user space memsets the key). */
struct xs_flow_key {
	__u8 proto; /* IPPROTO_TCP / IPPROTO_UDP / IPPROTO_ICMP / XS_PROTO_ARP */
	__u8 pad[3];
	__u32 dst_ip;
	__u16 dst_port; /* 0 for ICMP and ARP; 0 also means "any port" */
	__u16 pad2;
};

/* Pseudo protocol for ARP packets whose target IP is a dedicated address. */
#define XS_PROTO_ARP 0xFE

/* A flow whose value is XS_SLOT_RX_QUEUE goes to the socket in the XSKMAP slot
 * equal to the frame's RX queue: an XSK only receives frames from the queue it
 * is bound to, so with one socket per queue (slot i bound to queue i) this is
 * the only value that works for every queue. */
#define XS_SLOT_RX_QUEUE 0xFFFFFFFFu

#define XS_MAX_SOCKETS 64
#define XS_MAX_FLOWS 4096

/* Per-CPU counters in the `stats` array. */
enum xs_stat {
	XS_STAT_REDIRECT = 0, /* flow hit, bpf_redirect_map called */
	XS_STAT_PASS = 1,     /* no flow: handed to the kernel */
	XS_STAT_SHORT = 2,    /* truncated header: handed to the kernel */
	XS_STAT_COUNT = 3,
};

#endif
