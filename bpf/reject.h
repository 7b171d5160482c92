/* reject: answer a denied flow with a TCP RST (TCP) or an ICMP / ICMPv6
 * "administratively prohibited" unreachable (everything else), built in
 * place and sent back out the ingress interface. The answer's source is the
 * original destination. */
#ifndef BPFVPN_REJECT_H
#define BPFVPN_REJECT_H

#include "ctx.h"
#include "csum.h"
#include "parse.h"

static __always_inline int swap_macs(void *data, void *data_end, __u32 l3)
{
	if (l3 < sizeof(struct ethhdr))
		return 0;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return -1;
	__u8 tmp[6];
	__builtin_memcpy(tmp, eth->h_dest, 6);
	__builtin_memcpy(eth->h_dest, eth->h_source, 6);
	__builtin_memcpy(eth->h_source, tmp, 6);
	return 0;
}

/* l3_header writes a fresh IPv4 / IPv6 header at ip for an answer of
 * payload bytes with protocol proto from p's destination to p's source. */
static __always_inline int l3_header(void *ip, void *data_end, struct pkt *p, __u8 proto, __u16 payload)
{
	if (p->family == AF_INET) {
		struct iphdr *h = ip;
		if ((void *)(h + 1) > data_end)
			return -1;
		h->version = 4;
		h->ihl = 5;
		h->tos = 0;
		h->tot_len = bpf_htons(20 + payload);
		h->id = 0;
		h->frag_off = bpf_htons(0x4000);
		h->ttl = 64;
		h->protocol = proto;
		h->check = 0;
		h->saddr = p->daddr[0];
		h->daddr = p->saddr[0];
		__u64 c = 0;
		CSUM_WORDS(c, h, 10);
		h->check = ~csum_fold(c);
		return 0;
	}
	struct ipv6hdr *h = ip;
	if ((void *)(h + 1) > data_end)
		return -1;
	*(__u32 *)h = bpf_htonl(0x60000000);
	h->payload_len = bpf_htons(payload);
	h->nexthdr = proto;
	h->hop_limit = 64;
	__builtin_memcpy(&h->saddr, p->daddr, 16);
	__builtin_memcpy(&h->daddr, p->saddr, 16);
	return 0;
}

/* pseudo_sum: the L4 pseudo-header sum of the answer (addresses swapped). */
static __always_inline __u64 pseudo_sum(struct pkt *p, __u8 proto, __u16 len)
{
	__u64 c = 0;
	if (p->family == AF_INET) {
		c += p->saddr[0] & 0xffff;
		c += p->saddr[0] >> 16;
		c += p->daddr[0] & 0xffff;
		c += p->daddr[0] >> 16;
	} else {
#pragma unroll
		for (int i = 0; i < 4; i++) {
			c += p->saddr[i] & 0xffff;
			c += p->saddr[i] >> 16;
			c += p->daddr[i] & 0xffff;
			c += p->daddr[i] >> 16;
		}
	}
	c += bpf_htons(proto);
	c += bpf_htons(len);
	return c;
}

/* The builders take the L2 header length l3 as a compile-time constant
 * (see reject_dispatch): packet offsets derived from a variable length lose
 * their bounds in the 6.1 verifier. */
static __always_inline int reject_tcp(void *ctx, int xdp, struct pkt *p, const __u32 l3)
{
	void *data, *data_end;
	load_ptrs(ctx, xdp, &data, &data_end);
	__u32 iphl = p->family == AF_INET ? 20 : 40;
	if ((p->l4_off & OFF_MASK) != l3 + iphl)
		return -1;
	struct tcphdr *th = data + l3 + iphl;
	if ((void *)(th + 1) > data_end)
		return -1;
	__u32 seq = bpf_ntohl(th->seq);
	__u32 ack = bpf_ntohl(th->ack_seq);
	__u32 paylen = p->l3_len - iphl - p->doff;
	__u8 fl = p->tcp_flags;
	if (fl & TCPF_RST)
		return -1; /* never answer a reset */

	if (set_len(ctx, xdp, l3 + iphl + 20))
		return -1;
	load_ptrs(ctx, xdp, &data, &data_end);
	if (swap_macs(data, data_end, l3))
		return -1;
	if (l3_header(data + l3, data_end, p, IPPROTO_TCP, 20))
		return -1;
	th = data + l3 + iphl;
	if ((void *)(th + 1) > data_end)
		return -1;
	__u16 sp = th->source;
	th->source = th->dest;
	th->dest = sp;
	__u8 flags;
	if (fl & TCPF_ACK) {
		th->seq = bpf_htonl(ack);
		th->ack_seq = 0;
		flags = TCPF_RST;
	} else {
		__u32 a = seq + paylen + ((fl & TCPF_SYN) ? 1 : 0) + ((fl & TCPF_FIN) ? 1 : 0);
		th->seq = 0;
		th->ack_seq = bpf_htonl(a);
		flags = TCPF_RST | TCPF_ACK;
	}
	((__u8 *)th)[12] = 0x50;
	((__u8 *)th)[13] = flags;
	th->window = 0;
	th->urg_ptr = 0;
	th->check = 0;
	__u64 c = pseudo_sum(p, IPPROTO_TCP, 20);
	CSUM_WORDS(c, th, 10);
	th->check = ~csum_fold(c);
	return 0;
}

#define QUOTE4 28 /* IPv4 header + 8 bytes */
#define QUOTE6 48 /* IPv6 header + 8 bytes */

static __always_inline int reject_icmp(void *ctx, int xdp, struct pkt *p, const __u32 l3)
{
	if (is_icmp_error(p))
		return -1; /* never answer an error with an error */
	__u32 quote = p->family == AF_INET ? QUOTE4 : QUOTE6;
	__u32 hdr = quote; /* new IP header + 8 bytes of ICMP: same sizes */
	if (p->l3_len < quote)
		return -1;
	if (set_len(ctx, xdp, l3 + quote))
		return -1;
	if (grow_head(ctx, xdp, hdr))
		return -1;
	void *data, *data_end;
	load_ptrs(ctx, xdp, &data, &data_end);
	/* move the L2 header (at most Ethernet + two tags) to the new front */
	if (data + hdr + l3 > data_end)
		return -1;
#pragma unroll
	for (int i = 0; i < 22; i++) {
		if (i < l3)
			((__u8 *)data)[i] = ((__u8 *)data)[hdr + i];
	}
	if (swap_macs(data, data_end, l3))
		return -1;
	if (l3_header(data + l3, data_end, p, p->family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6,
		      8 + quote))
		return -1;
	__u8 *ic = data + l3 + (p->family == AF_INET ? 20 : 40);
	if (p->family == AF_INET) {
		if ((void *)(ic + 8 + QUOTE4) > data_end)
			return -1;
		ic[0] = ICMP_DEST_UNREACH;
		ic[1] = 13; /* communication administratively prohibited */
		*(__u16 *)(ic + 2) = 0;
		*(__u32 *)(ic + 4) = 0;
		__u64 c = 0;
		CSUM_WORDS(c, ic, (8 + QUOTE4) / 2);
		*(__u16 *)(ic + 2) = ~csum_fold(c);
	} else {
		if ((void *)(ic + 8 + QUOTE6) > data_end)
			return -1;
		ic[0] = ICMPV6_DEST_UNREACH;
		ic[1] = ICMPV6_ADM_PROHIBITED;
		*(__u16 *)(ic + 2) = 0;
		*(__u32 *)(ic + 4) = 0;
		__u64 c = pseudo_sum(p, IPPROTO_ICMPV6, 8 + QUOTE6);
		CSUM_WORDS(c, ic, (8 + QUOTE6) / 2);
		*(__u16 *)(ic + 2) = ~csum_fold(c);
	}
	return 0;
}

/* reject_dispatch builds the answer with a constant L2 length. */
static __always_inline int reject_dispatch(void *ctx, int xdp, struct pkt *p, int tcp)
{
	switch (p->l3_off) {
	case 0:
		if (xdp)
			return -1;
		return tcp ? reject_tcp(ctx, xdp, p, 0) : reject_icmp(ctx, xdp, p, 0);
	case 14:
		return tcp ? reject_tcp(ctx, xdp, p, 14) : reject_icmp(ctx, xdp, p, 14);
	case 18:
		return tcp ? reject_tcp(ctx, xdp, p, 18) : reject_icmp(ctx, xdp, p, 18);
	case 22:
		return tcp ? reject_tcp(ctx, xdp, p, 22) : reject_icmp(ctx, xdp, p, 22);
	}
	return -1;
}

#endif
