/* Packet parsing: Ethernet, up to two VLAN tags, IPv4 / IPv6 (extension
 * headers), TCP / UDP / ICMP / ICMPv6 / ESP headers, fragments. */
#ifndef BPFVPN_PARSE_H
#define BPFVPN_PARSE_H

#include "common.h"

enum frag_kind {
	FRAG_NONE = 0,
	FRAG_FIRST = 1, /* offset 0, more fragments: carries the L4 header */
	FRAG_LATER = 2, /* offset > 0: no L4 header */
};

enum parse_result {
	PARSE_OK = 0,
	PARSE_NON_IP = 1,
	PARSE_MALFORMED = 2,
	PARSE_FRAG_SHORT = 3,
};

#define OFF_MASK 0x3ff /* offsets of L3/L4 headers stay below 1 KiB */

struct pkt {
	__u32 saddr[4]; /* IPv4 in [0], network order */
	__u32 daddr[4];
	__u16 sport;    /* host order; ICMP echo: see parse_l4 */
	__u16 dport;
	__u32 spi;      /* ESP / ESP-in-UDP SPI, network order */
	__u32 frag_id;
	__u16 l3_off;   /* from the start of the packet */
	__u16 l4_off;
	__u16 l3_len;   /* IP total length (IPv6: 40 + payload length) */
	__u16 vlan;
	__u8 family;    /* AF_INET / AF_INET6 */
	__u8 proto;     /* L4 protocol after IPv6 extension headers */
	__u8 tcp_flags;
	__u8 frag;      /* enum frag_kind */
	__u8 icmp_type;
	__u8 icmp_code;
	__u8 ttl;
	__u8 nvlan;
	__u8 tos;
	__u8 doff;      /* TCP header length in bytes */
	__u8 no_reject; /* the link layer is not real (tc on XFRM): only TCP RST can be built */
	__u8 pad;
};

#define TCPF_FIN 0x01
#define TCPF_SYN 0x02
#define TCPF_RST 0x04
#define TCPF_PSH 0x08
#define TCPF_ACK 0x10

static __always_inline int is_icmp_echo(struct pkt *p)
{
	if (p->proto == IPPROTO_ICMP)
		return p->icmp_type == ICMP_ECHO || p->icmp_type == ICMP_ECHOREPLY;
	if (p->proto == IPPROTO_ICMPV6)
		return p->icmp_type == ICMPV6_ECHO_REQUEST || p->icmp_type == ICMPV6_ECHO_REPLY;
	return 0;
}

static __always_inline int is_icmp_error(struct pkt *p)
{
	if (p->proto == IPPROTO_ICMP)
		return p->icmp_type == ICMP_DEST_UNREACH || p->icmp_type == ICMP_TIME_EXCEEDED ||
		       p->icmp_type == ICMP_PARAMETERPROB;
	if (p->proto == IPPROTO_ICMPV6)
		return p->icmp_type < 128;
	return 0;
}

/* parse_l4 fills ports, flags, ICMP fields and the SPI. */
static __always_inline int parse_l4(void *data, void *data_end, struct pkt *p)
{
	void *l4 = data + (p->l4_off & OFF_MASK);

	switch (p->proto) {
	case IPPROTO_TCP: {
		struct tcphdr *th = l4;
		if ((void *)(th + 1) > data_end)
			return -1;
		p->sport = bpf_ntohs(th->source);
		p->dport = bpf_ntohs(th->dest);
		p->tcp_flags = ((__u8 *)th)[13];
		p->doff = th->doff * 4;
		if (p->doff < 20)
			return -1;
		return 0;
	}
	case IPPROTO_UDP: {
		struct udphdr *uh = l4;
		if ((void *)(uh + 1) > data_end)
			return -1;
		p->sport = bpf_ntohs(uh->source);
		p->dport = bpf_ntohs(uh->dest);
		if (p->dport == 4500 || p->sport == 4500) {
			/* ESP-in-UDP: a non-zero first word is the SPI. */
			__u32 *w = (void *)(uh + 1);
			if ((void *)(w + 1) <= data_end)
				p->spi = *w;
		}
		return 0;
	}
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6: {
		__u8 *ih = l4;
		if ((void *)(ih + 8) > data_end)
			return -1;
		p->icmp_type = ih[0];
		p->icmp_code = ih[1];
		if (is_icmp_echo(p)) {
			/* The identifier is the requester's "port": a request
			 * and its reply share a session key, a request from
			 * the other side does not. */
			__u16 id = bpf_ntohs(*(__u16 *)(ih + 4));
			if (p->icmp_type == ICMP_ECHO || p->icmp_type == ICMPV6_ECHO_REQUEST)
				p->sport = id;
			else
				p->dport = id;
		}
		return 0;
	}
	case IPPROTO_ESP: {
		__u32 *spi = l4;
		if ((void *)(spi + 1) > data_end)
			return -1;
		p->spi = *spi;
		return 0;
	}
	}
	return 0;
}

static __always_inline int parse_ipv4(void *data, void *data_end, struct pkt *p)
{
	struct iphdr *ip = data + (p->l3_off & OFF_MASK);
	if ((void *)(ip + 1) > data_end)
		return PARSE_MALFORMED;
	if (ip->version != 4 || ip->ihl < 5)
		return PARSE_MALFORMED;
	p->family = AF_INET;
	p->saddr[0] = ip->saddr;
	p->daddr[0] = ip->daddr;
	p->proto = ip->protocol;
	p->ttl = ip->ttl;
	p->tos = ip->tos;
	p->l3_len = bpf_ntohs(ip->tot_len);
	p->l4_off = p->l3_off + ip->ihl * 4;
	__u16 fo = bpf_ntohs(ip->frag_off);
	if (fo & 0x1fff) {
		p->frag = FRAG_LATER;
		p->frag_id = ip->id;
		return PARSE_OK;
	}
	if (fo & 0x2000) {
		p->frag = FRAG_FIRST;
		p->frag_id = ip->id;
	}
	if (parse_l4(data, data_end, p) < 0)
		return p->frag == FRAG_FIRST ? PARSE_FRAG_SHORT : PARSE_MALFORMED;
	return PARSE_OK;
}

#define IPV6_MAX_EXT 6

static __always_inline int parse_ipv6(void *data, void *data_end, struct pkt *p)
{
	struct ipv6hdr *ip6 = data + (p->l3_off & OFF_MASK);
	if ((void *)(ip6 + 1) > data_end)
		return PARSE_MALFORMED;
	if (ip6->version != 6)
		return PARSE_MALFORMED;
	p->family = AF_INET6;
	__builtin_memcpy(p->saddr, &ip6->saddr, 16);
	__builtin_memcpy(p->daddr, &ip6->daddr, 16);
	p->ttl = ip6->hop_limit;
	p->tos = (ip6->priority << 4) | (ip6->flow_lbl[0] >> 4);
	p->l3_len = 40 + bpf_ntohs(ip6->payload_len);
	__u8 nh = ip6->nexthdr;
	__u32 off = (p->l3_off & OFF_MASK) + 40;

#pragma unroll
	for (int i = 0; i < IPV6_MAX_EXT; i++) {
		if (nh != IPPROTO_HOPOPTS && nh != IPPROTO_ROUTING && nh != IPPROTO_DSTOPTS &&
		    nh != IPPROTO_FRAGMENT)
			break;
		__u8 *eh = data + (off & OFF_MASK);
		if ((void *)(eh + 8) > data_end)
			return PARSE_MALFORMED;
		if (nh == IPPROTO_FRAGMENT) {
			__u16 fo = bpf_ntohs(*(__u16 *)(eh + 2));
			p->frag_id = *(__u32 *)(eh + 4);
			nh = eh[0];
			off += 8;
			if (fo & 0xfff8) {
				p->proto = nh;
				p->frag = FRAG_LATER;
				p->l4_off = off;
				return PARSE_OK;
			}
			if (fo & 1)
				p->frag = FRAG_FIRST;
			continue;
		}
		nh = eh[0];
		off += (eh[1] + 1) * 8;
	}
	p->proto = nh;
	p->l4_off = off & OFF_MASK;
	if (nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS ||
	    nh == IPPROTO_FRAGMENT)
		return PARSE_MALFORMED; /* more extension headers than we follow */
	if (parse_l4(data, data_end, p) < 0)
		return p->frag == FRAG_FIRST ? PARSE_FRAG_SHORT : PARSE_MALFORMED;
	return PARSE_OK;
}

/* parse_l3 parses from l3_off with the given ethertype (network order). */
static __always_inline int parse_l3(void *data, void *data_end, struct pkt *p, __u16 proto)
{
	if (proto == bpf_htons(ETH_P_IP))
		return parse_ipv4(data, data_end, p);
	if (proto == bpf_htons(ETH_P_IPV6))
		return parse_ipv6(data, data_end, p);
	return PARSE_NON_IP;
}

/* parse_eth parses an Ethernet frame with up to two VLAN tags; the VLAN id
 * of the innermost tag is kept. */
static __always_inline int parse_eth(void *data, void *data_end, struct pkt *p)
{
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return PARSE_MALFORMED;
	__u16 proto = eth->h_proto;
	__u32 off = sizeof(*eth);

#pragma unroll
	for (int i = 0; i < 2; i++) {
		if (proto != bpf_htons(ETH_P_8021Q_) && proto != bpf_htons(ETH_P_8021AD_))
			break;
		__u16 *tag = data + off;
		if ((void *)(tag + 2) > data_end)
			return PARSE_MALFORMED;
		p->vlan = bpf_ntohs(tag[0]) & 0x0fff;
		proto = tag[1];
		off += 4;
		p->nvlan++;
	}
	p->l3_off = off;
	return parse_l3(data, data_end, p, proto);
}

#endif
