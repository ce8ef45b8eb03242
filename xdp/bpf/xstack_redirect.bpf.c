// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* xstack's XDP program: steer the frames the userspace stack owns to its
 * AF_XDP sockets and give everything else to the kernel.
 *
 * A frame is ours when (proto, dst IP, dst port) is in `flows`:
 *   TCP/UDP  (proto, dst, dport), then (proto, dst, 0) = every port of dst;
 *            IPv4 fragments after the first carry no ports: (proto, dst, 0).
 *   ICMP     (IPPROTO_ICMP, dst, 0)
 *   ARP      (XS_PROTO_ARP, target IP, 0): for an address only the stack has.
 * The value is an XSKMAP slot (or XS_SLOT_RX_QUEUE). A hit returns
 * bpf_redirect_map(&xsks, slot, XDP_PASS): an empty slot falls back to the
 * kernel. Everything else returns XDP_PASS, so ARP, ICMP, ssh and other ports
 * keep working for the kernel's own addresses. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "xstack_redirect.h"

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, XS_MAX_SOCKETS);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XS_MAX_FLOWS);
	__type(key, struct xs_flow_key);
	__type(value, __u32);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XS_STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

struct vlan_hdr_ {
	__be16 tci;
	__be16 encap_proto;
};

/* Ethernet/IPv4 ARP: 8-byte header, then sha(6) spa(4) tha(6) tpa(4). */
struct arp_ipv4_ {
	__be16 htype;
	__be16 ptype;
	__u8 hlen;
	__u8 plen;
	__be16 oper;
	__u8 sha[6];
	__u8 spa[4];
	__u8 tha[6];
	__u8 tpa[4];
} __attribute__((packed));

static __always_inline int count(__u32 idx, int verdict)
{
	__u64 *c = bpf_map_lookup_elem(&stats, &idx);
	if (c)
		*c += 1;
	return verdict;
}

static __always_inline int steer(struct xdp_md *ctx, struct xs_flow_key *key, int try_any_port)
{
	__u32 *slot = bpf_map_lookup_elem(&flows, key);
	if (!slot && try_any_port && key->dst_port != 0) {
		key->dst_port = 0;
		slot = bpf_map_lookup_elem(&flows, key);
	}
	if (!slot)
		return count(XS_STAT_PASS, XDP_PASS);
	__u32 s = *slot;
	if (s == XS_SLOT_RX_QUEUE)
		s = ctx->rx_queue_index;
	count(XS_STAT_REDIRECT, 0);
	return bpf_redirect_map(&xsks, s, XDP_PASS);
}

SEC("xdp")
int xs_redirect(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct xs_flow_key key;
	__builtin_memset(&key, 0, sizeof(key));

	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return count(XS_STAT_SHORT, XDP_PASS);
	__be16 h_proto = eth->h_proto;
	void *l3 = eth + 1;

	/* One VLAN tag (802.1Q or 802.1ad) is skipped. */
	if (h_proto == bpf_htons(ETH_P_8021Q) || h_proto == bpf_htons(ETH_P_8021AD)) {
		struct vlan_hdr_ *vh = l3;
		if ((void *)(vh + 1) > data_end)
			return count(XS_STAT_SHORT, XDP_PASS);
		h_proto = vh->encap_proto;
		l3 = vh + 1;
	}

	if (h_proto == bpf_htons(ETH_P_ARP)) {
		struct arp_ipv4_ *arp = l3;
		if ((void *)(arp + 1) > data_end)
			return count(XS_STAT_SHORT, XDP_PASS);
		if (arp->htype != bpf_htons(1) || arp->ptype != bpf_htons(ETH_P_IP) ||
		    arp->hlen != 6 || arp->plen != 4)
			return count(XS_STAT_PASS, XDP_PASS);
		key.proto = XS_PROTO_ARP;
		__builtin_memcpy(&key.dst_ip, arp->tpa, 4);
		return steer(ctx, &key, 0);
	}
	if (h_proto != bpf_htons(ETH_P_IP))
		return count(XS_STAT_PASS, XDP_PASS);

	struct iphdr *ip = l3;
	if ((void *)(ip + 1) > data_end)
		return count(XS_STAT_SHORT, XDP_PASS);
	__u32 ihl = ip->ihl * 4;
	if (ip->version != 4 || ihl < sizeof(*ip))
		return count(XS_STAT_PASS, XDP_PASS);
	key.proto = ip->protocol;
	key.dst_ip = ip->daddr;

	if (ip->protocol == IPPROTO_ICMP)
		return steer(ctx, &key, 0);
	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		return count(XS_STAT_PASS, XDP_PASS);

	/* A fragment other than the first has no transport header: only an
	 * every-port flow for the address can claim it. The stack reassembles. */
	if (ip->frag_off & bpf_htons(0x1FFF))
		return steer(ctx, &key, 0);

	/* TCP and UDP both start with source port, destination port. */
	__u16 *ports = (void *)ip + ihl;
	if ((void *)(ports + 2) > data_end)
		return count(XS_STAT_SHORT, XDP_PASS);
	key.dst_port = ports[1];
	return steer(ctx, &key, 1);
}

char _license[] SEC("license") = "Dual BSD/GPL";
