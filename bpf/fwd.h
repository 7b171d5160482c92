/* Route lookup (to-zone) and XDP_REDIRECT forwarding. */
#ifndef BPFVPN_FWD_H
#define BPFVPN_FWD_H

#include "ctx.h"
#include "csum.h"
#include "parse.h"


enum route_kind {
	ROUTE_FWD = 0,   /* forwarded out params.ifindex, neighbour resolved */
	ROUTE_NONEIGH,   /* forwarded out params.ifindex, neighbour unknown */
	ROUTE_LOCAL,     /* to the router itself (or forwarding disabled) */
	ROUTE_OTHER,     /* blackhole, unreachable, …: left to the stack */
};

static __always_inline int route(void *ctx, struct pkt *p, __u32 in_ifindex,
				 struct bpf_fib_lookup *fp)
{
	__builtin_memset(fp, 0, sizeof(*fp));
	fp->ifindex = in_ifindex;
	fp->l4_protocol = p->proto;
	fp->sport = bpf_htons(p->sport);
	fp->dport = bpf_htons(p->dport);
	fp->tot_len = p->l3_len;
	if (p->family == AF_INET) {
		fp->family = AF_INET;
		fp->tos = p->tos;
		fp->ipv4_src = p->saddr[0];
		fp->ipv4_dst = p->daddr[0];
	} else {
		fp->family = AF_INET6;
		__builtin_memcpy(fp->ipv6_src, p->saddr, 16);
		__builtin_memcpy(fp->ipv6_dst, p->daddr, 16);
	}
	int rc = bpf_fib_lookup(ctx, fp, sizeof(*fp), 0);
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED) {
		/* Learn the egress interface for the policy; the stack sends
		 * the "fragmentation needed" answer. */
		fp->tot_len = 0;
		fp->ifindex = in_ifindex;
		rc = bpf_fib_lookup(ctx, fp, sizeof(*fp), 0);
		if (rc == BPF_FIB_LKUP_RET_SUCCESS)
			rc = BPF_FIB_LKUP_RET_NO_NEIGH;
	}
	switch (rc) {
	case BPF_FIB_LKUP_RET_SUCCESS:
		return ROUTE_FWD;
	case BPF_FIB_LKUP_RET_NO_NEIGH:
		return ROUTE_NONEIGH;
	case BPF_FIB_LKUP_RET_NOT_FWDED:
	case BPF_FIB_LKUP_RET_FWD_DISABLED:
		return ROUTE_LOCAL;
	}
	return ROUTE_OTHER;
}

/* xdp_forward rewrites MACs and the TTL for a resolved route; returns -1
 * when the stack must handle the packet (TTL expiring, VLAN tags). */
static __always_inline int xdp_forward(void *ctx, struct pkt *p, struct bpf_fib_lookup *fp)
{
	if (p->nvlan || p->ttl <= 1)
		return -1;
	void *data, *data_end;
	load_ptrs(ctx, 1, &data, &data_end);
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return -1;
	if (p->family == AF_INET) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > data_end)
			return -1;
		__u16 old = *(__u16 *)&ip->ttl;
		ip->ttl--;
		csum_replace16(&ip->check, old, *(__u16 *)&ip->ttl);
	} else {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > data_end)
			return -1;
		ip6->hop_limit--;
	}
	__builtin_memcpy(eth->h_dest, fp->dmac, 6);
	__builtin_memcpy(eth->h_source, fp->smac, 6);
	return 0;
}

#endif
