/* tc ingress and egress on st0.N (XFRM interfaces, no Ethernet header;
 * IF_L2 marks Ethernet devices used in tests). */
#ifndef BPFVPN_PROG_TC_ST0_H
#define BPFVPN_PROG_TC_ST0_H

#include "flow.h"

#define TC_PULL 160

static __always_inline int l3_len_matches(void *data, void *data_end, __u32 off, __u32 len, __u16 proto)
{
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data + off;
		if ((void *)(ip + 1) > data_end)
			return 0;
		return ip->version == 4 && bpf_ntohs(ip->tot_len) == len - off;
	}
	if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data + off;
		if ((void *)(ip6 + 1) > data_end)
			return 0;
		return ip6->version == 6 && bpf_ntohs(ip6->payload_len) + 40 == len - off;
	}
	return 0;
}

static __always_inline int tc_parse(struct __sk_buff *skb, struct iface_info *in, struct pkt *p)
{
	__u32 want = skb->len < TC_PULL ? skb->len : TC_PULL;
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	if (data + want > data_end) {
		if (bpf_skb_pull_data(skb, want))
			return PARSE_MALFORMED;
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
	}
	if (in->flags & IF_L2)
		return parse_eth(data, data_end, p);
	/* An XFRM interface has no link layer, but tunnel-mode decapsulation
	 * rebuilds the outer MAC header in front of the inner packet, so tc
	 * ingress may see 14 bytes before the IP header: find the header
	 * whose length field matches the packet. */
	__u16 proto = skb->protocol;
	if (l3_len_matches(data, data_end, 0, skb->len, proto)) {
		p->l3_off = 0;
	} else if (l3_len_matches(data, data_end, ETH_HLEN, skb->len, proto)) {
		p->l3_off = ETH_HLEN;
		p->no_reject = 1; /* not a real link layer: answers cannot be built */
	} else {
		return PARSE_MALFORMED;
	}
	return parse_l3(data, data_end, p, proto);
}

/* Decrypted traffic: from-zone = zone of the st0 unit. */
SEC("tc")
int tc_st0_ingress(struct __sk_buff *skb)
{
	struct scratch *sc = get_scratch();
	if (!sc)
		return TC_ACT_OK;
	struct pkt *p = &sc->p;
	__builtin_memset(p, 0, sizeof(*p));

	count(CNT_PKTS);
	struct iface_info *in = iface_of(skb->ifindex, 0, &sc->in_if);
	if (!in || !in->zone) {
		count(CNT_DROP_NO_ZONE);
		return TC_ACT_SHOT;
	}
	int r = tc_parse(skb, in, p);
	if (r == PARSE_NON_IP) {
		count(CNT_PASS_NON_IP);
		return TC_ACT_OK;
	}
	if (r == PARSE_FRAG_SHORT) {
		count(CNT_DROP_FRAG_SHORT);
		return TC_ACT_SHOT;
	}
	if (r != PARSE_OK) {
		count(CNT_DROP_MALFORMED);
		return TC_ACT_SHOT;
	}
	__u32 rif = 0;
	switch (flow(skb, 0, p, in, &rif, sc)) {
	case V_PASS:
		return TC_ACT_OK;
	case V_TX:
		return bpf_redirect(skb->ifindex, 0);
	}
	return TC_ACT_SHOT;
}

#define DEMAND_INTERVAL_DEFAULT_MS 1000

/* tunnel_demand raises an on-traffic event for a packet sent into st0
 * ifindex while its tunnel is down, at most once per interval (two CPUs
 * racing on one stamp may both raise one). p is NULL for a packet that did
 * not parse. */
static __always_inline void tunnel_demand(__u32 ifindex, struct pkt *p)
{
	__u32 k = ifindex;
	struct tunnel_state *ts = bpf_map_lookup_elem(&tunnels, &k);
	if (!ts || ts->up)
		return;
	__u64 now = bpf_ktime_get_ns();
	__u64 iv = (__u64)(ts->interval_ms ? ts->interval_ms : DEMAND_INTERVAL_DEFAULT_MS) * 1000000ULL;
	__u64 last = ts->last_event_ns;
	if (last && now - last < iv)
		return;
	ts->last_event_ns = now;
	struct tunnel_event *e = bpf_ringbuf_reserve(&tunnel_events, sizeof(*e), 0);
	if (!e) {
		count(CNT_TUNNEL_DEMAND_LOST);
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ifindex = ifindex;
	e->unit = ts->unit;
	if (p) {
		__builtin_memcpy(e->saddr, p->saddr, 16);
		__builtin_memcpy(e->daddr, p->daddr, 16);
		e->sport = p->sport;
		e->dport = p->dport;
		e->family = p->family;
		e->proto = p->proto;
	}
	bpf_ringbuf_submit(e, 0);
	count(CNT_TUNNEL_DEMAND);
}

/* Traffic entering the tunnel: counters, on-traffic tunnel demand events,
 * and MSS clamping of SYN / SYN-ACK
 * segments the router itself sends (forwarded ones were clamped at XDP). */
SEC("tc")
int tc_st0_egress(struct __sk_buff *skb)
{
	struct scratch *sc = get_scratch();
	if (!sc)
		return TC_ACT_OK;
	struct pkt *p = &sc->p;
	__builtin_memset(p, 0, sizeof(*p));

	count(CNT_TUNNEL_OUT);
	struct iface_info *in = iface_of(skb->ifindex, 0, &sc->in_if);
	if (!in)
		return TC_ACT_OK;
	struct zone_stats *zs = zone_stats_of(in->zone);
	if (zs)
		zs->tx_pkts++;
	if (tc_parse(skb, in, p) != PARSE_OK) {
		tunnel_demand(skb->ifindex, NULL);
		return TC_ACT_OK;
	}
	tunnel_demand(skb->ifindex, p);
	struct config *cfg = get_config();
	if (cfg)
		mss_apply(skb, 0, p, cfg, 1);
	return TC_ACT_OK;
}

#endif
