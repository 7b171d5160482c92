/* The flow-cache fast path of xdp_zone. */
#ifndef BPFVPN_FASTPATH_H
#define BPFVPN_FASTPATH_H

#include "flow.h"

#define FAST_NONE (-1)

/* xdp_fast serves an untagged, unfragmented IPv4 TCP (no SYN, FIN, RST)
 * or UDP packet without IP options from its live flow_cache slot: the
 * packet is accounted as the general path does (counters, zone
 * statistics, pending session counts) and passed, or forwarded with the
 * cached route. It returns FAST_NONE, having changed nothing but the
 * scratch hand-over (struct fc_miss, written only for packets of the
 * cacheable shape), for every other packet, which the general path then
 * judges from scratch (and may fill the slot). */
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
	__u8 proto = ip->protocol;
	__u32 ports;
	int fill = 1;
	if (proto == IPPROTO_TCP) {
		struct tcphdr *th = (void *)(ip + 1);
		if ((void *)(th + 1) > data_end)
			return FAST_NONE;
		if (((__u8 *)th)[13] & (TCPF_SYN | TCPF_FIN | TCPF_RST))
			fill = 0;
		ports = *(__u32 *)th;
	} else if (proto == IPPROTO_UDP) {
		struct udphdr *uh = (void *)(ip + 1);
		if ((void *)(uh + 1) > data_end)
			return FAST_NONE;
		ports = *(__u32 *)uh;
	} else {
		return FAST_NONE;
	}
	__u32 saddr = ip->saddr, daddr = ip->daddr, ifindex = ctx->ingress_ifindex;
	__u32 slot = fc_slot(saddr, daddr, ports, proto);
	struct fc_entry *e = bpf_map_lookup_elem(&flow_cache, &slot);
	struct fc_state *st = fc_state_get();
	if (!e || !st)
		return FAST_NONE;
	__u64 epoch = st->epoch, inserts = st->inserts;
	if (!fill || !e->live || e->saddr != saddr || e->daddr != daddr || e->ports != ports ||
	    e->ifindex != ifindex || e->proto != proto || e->epoch != epoch ||
	    inserts - e->inserts >= st->insert_limit)
		goto miss;
	if (bpf_jiffies64() - e->fill_jiffies >= st->window_jiffies)
		goto miss;
	if (e->redirect) {
		if (ip->ttl <= 1)
			goto miss;
		__u16 old = *(__u16 *)&ip->ttl;
		ip->ttl--;
		csum_replace16(&ip->check, old, *(__u16 *)&ip->ttl);
		__builtin_memcpy(eth->h_dest, e->dmac, 6);
		__builtin_memcpy(eth->h_source, e->smac, 6);
	}

	__u16 len = bpf_ntohs(ip->tot_len);
	e->pkts++;
	e->bytes += len;
	count(CNT_PKTS);
	count(CNT_SESSION_HIT);
	count(CNT_FLOW_CACHE_HIT);
	struct zone_stats *zs = zone_stats_of(e->rx_zone);
	if (zs) {
		zs->rx_pkts++;
		zs->rx_bytes += len;
	}
	zs = zone_stats_of(e->tx_zone);
	if (zs)
		zs->tx_pkts++;
	if (e->redirect) {
		count(CNT_REDIRECT);
		return bpf_redirect(e->out_ifindex, 0);
	}
	return XDP_PASS;

miss:;
	struct scratch *sc = get_scratch();
	if (!sc)
		return FAST_NONE;
	struct fc_miss *m = &sc->fcm;
	m->epoch = epoch;
	m->inserts = inserts;
	m->slot = slot;
	m->ifindex = ifindex;
	m->saddr = saddr;
	m->daddr = daddr;
	m->ports = ports;
	m->proto = proto;
	m->fill = fill;
	m->ok = 1;
	return FAST_NONE;
}

#endif
