/* The session-hit fast path of xdp_zone. */
#ifndef BPFVPN_FASTPATH_H
#define BPFVPN_FASTPATH_H

#include "flow.h"

#define FAST_NONE (-1)

/* xdp_fast decides an untagged, unfragmented IPv4 TCP (not SYN) or UDP
 * packet, without IP options, that hits a current session (its policy
 * generation, not idle-expired) and is received on a port that does not
 * redirect: such a packet is accounted exactly as the general path does
 * and passed. It returns FAST_NONE, having changed nothing, for every
 * other packet, which the general path then judges from scratch. */
static __always_inline int xdp_fast(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return FAST_NONE;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->version != 4 || ip->ihl != 5 ||
	    (ip->frag_off & bpf_htons(0x3fff)))
		return FAST_NONE;
	__u32 d = bpf_ntohl(ip->daddr);
	if ((d >> 28) == 0xe || d == 0xffffffff)
		return FAST_NONE;
	__u8 proto = ip->protocol;
	__u16 sport, dport;
	__u8 flags = 0;
	if (proto == IPPROTO_TCP) {
		struct tcphdr *th = (void *)(ip + 1);
		if ((void *)(th + 1) > data_end)
			return FAST_NONE;
		flags = ((__u8 *)th)[13];
		if ((flags & TCPF_SYN) || th->doff < 5)
			return FAST_NONE;
		sport = bpf_ntohs(th->source);
		dport = bpf_ntohs(th->dest);
	} else if (proto == IPPROTO_UDP) {
		struct udphdr *uh = (void *)(ip + 1);
		if ((void *)(uh + 1) > data_end)
			return FAST_NONE;
		sport = bpf_ntohs(uh->source);
		dport = bpf_ntohs(uh->dest);
	} else {
		return FAST_NONE;
	}

	__u32 ifindex = ctx->ingress_ifindex;
	if (ifindex >= IFACE_SLOTS)
		return FAST_NONE;
	struct iface_info *in = bpf_map_lookup_elem(&iface_slots, &ifindex);
	if (!in || !in->l3_ifindex || !in->zone || (in->flags & IF_REDIRECT))
		return FAST_NONE;
	struct config *cfg = get_config();
	if (!cfg)
		return FAST_NONE;

	/* the key sess_key_of builds for this packet */
	struct sess_key key = {};
	__u32 s4 = ip->saddr, d4 = ip->daddr;
	__u32 sh = bpf_ntohl(s4);
	int src_is_a = sh < d || (sh == d && sport < dport);
	key.proto = proto;
	key.family = AF_INET;
	if (src_is_a) {
		key.a[0] = s4;
		key.b[0] = d4;
		key.pa = sport;
		key.pb = dport;
	} else {
		key.a[0] = d4;
		key.b[0] = s4;
		key.pa = dport;
		key.pb = sport;
	}
	struct sess_val *s = bpf_map_lookup_elem(&sessions, &key);
	if (!s || (s->gen != cfg->gen && !(s->flags & SF_SELF)))
		return FAST_NONE;
	__u64 now = bpf_ktime_get_coarse_ns();
	if (sess_expired(cfg, s, proto, now))
		return FAST_NONE;

	__u16 len = bpf_ntohs(ip->tot_len);
	count(CNT_PKTS);
	struct zone_stats *zs = zone_stats_of(in->zone);
	if (zs) {
		zs->rx_pkts++;
		zs->rx_bytes += len;
	}
	count(CNT_SESSION_HIT);
	int dir = (src_is_a == !!(s->flags & SF_INIT_IS_A)) ? DIR_ORIG : DIR_REPLY;
	if (proto == IPPROTO_TCP)
		tcp_track(s, flags, dir);
	sess_account(s, dir, now, len);
	zs = zone_stats_of(dir == DIR_ORIG ? s->to_zone : s->from_zone);
	if (zs)
		zs->tx_pkts++;
	return XDP_PASS;
}

#endif
