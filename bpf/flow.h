/* The shared decision of every hook: host-inbound, sessions, policies,
 * MSS, reject, forwarding. */
#ifndef BPFVPN_FLOW_H
#define BPFVPN_FLOW_H

#include "ctx.h"
#include "parse.h"
#include "counters.h"
#include "hostin.h"
#include "policy.h"
#include "session.h"
#include "mss.h"
#include "reject.h"
#include "frag.h"
#include "fwd.h"
#include "flowcache.h"

/* scratch: per-CPU room for the large temporaries of one packet (the BPF
 * stack is 512 bytes). */
struct scratch {
	struct pkt p;
	struct pkt inner;
	struct bpf_fib_lookup fp;
	struct sess_val nv;
	struct match_in m;
	struct sess_key key;
	struct iface_info in_if; /* iface_of copies: the receiving or sending interface */
	struct iface_info eg_if; /* and the egress the FIB named */
	struct fc_miss fcm;      /* xdp_fast's hand-over (see fc_handover) */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch_map SEC(".maps");

static __always_inline struct scratch *get_scratch(void)
{
	__u32 k = 0;
	return bpf_map_lookup_elem(&scratch_map, &k);
}

/* fill_slot is fc_fill out of line: the verifier walks it once per kind
 * of call instead of once per path that reaches a fill. zones packs the
 * rx zone (low 16 bits) and the tx zone. */
static __noinline int fill_slot(struct scratch *sc, __u32 dir, __u32 zones, __u64 now, __u32 redirect)
{
	fc_fill(&sc->fcm, &sc->key, dir, zones & 0xffff, zones >> 16, now, redirect ? &sc->fp : NULL);
	return 0;
}

static __always_inline struct config *get_config(void)
{
	__u32 k = 0;
	return bpf_map_lookup_elem(&config_map, &k);
}

/* iface_of copies the entry of (ifindex, vlan) into *out and returns out,
 * or NULL when the interface is unknown. Untagged small ifindexes come from
 * the iface_slots array, the rest from the ifaces hash; the copy gives both
 * paths one pointer type, so the verifier's states still merge. */
static __always_inline struct iface_info *iface_of(__u32 ifindex, __u16 vlan, struct iface_info *out)
{
	struct iface_info *v;
	if (!vlan && ifindex < IFACE_SLOTS) {
		__u32 i = ifindex;
		v = bpf_map_lookup_elem(&iface_slots, &i);
		if (!v || !v->l3_ifindex)
			return NULL;
	} else {
		struct iface_key k = { .ifindex = ifindex, .vlan = vlan };
		v = bpf_map_lookup_elem(&ifaces, &k);
		if (!v)
			return NULL;
	}
	*out = *v;
	return out;
}

static __always_inline void mss_apply(void *ctx, int xdp, struct pkt *p, struct config *cfg, int tunnel)
{
	if (p->proto != IPPROTO_TCP || !(p->tcp_flags & TCPF_SYN) || p->frag)
		return;
	__u16 mss = 0;
	if (tunnel && cfg->mss_ipsec)
		mss = cfg->mss_ipsec;
	if (cfg->mss_all && (!mss || cfg->mss_all < mss))
		mss = cfg->mss_all;
	if (!mss)
		return;
	void *data, *data_end;
	load_ptrs(ctx, xdp, &data, &data_end);
	mss_clamp(ctx, xdp, data, data_end, p, mss);
}

/* forward picks XDP_REDIRECT for a resolved route between redirect-capable
 * non-tunnel interfaces, XDP_PASS otherwise. */
static __always_inline int forward(void *ctx, int xdp, struct pkt *p, struct iface_info *in,
				   struct bpf_fib_lookup *fp, int rk, __u32 *rif, struct scratch *sc)
{
	if (!xdp || rk != ROUTE_FWD || !(in->flags & IF_REDIRECT))
		return V_PASS;
	struct iface_info *eg = iface_of(fp->ifindex, 0, &sc->eg_if);
	if (!eg || !(eg->flags & IF_REDIRECT) || (eg->flags & IF_TUNNEL))
		return V_PASS;
	if (xdp_forward(ctx, p, fp))
		return V_PASS;
	*rif = fp->ifindex;
	count(CNT_REDIRECT);
	return V_REDIRECT;
}

static __always_inline int do_reject(void *ctx, int xdp, struct pkt *p)
{
	/* Behind a rebuilt MAC header (tc on XFRM) only the in-place TCP RST
	 * works: bpf_redirect to the L3 device strips up to the network
	 * header, which a grown ICMP answer would move. */
	if (p->no_reject && p->proto != IPPROTO_TCP) {
		count(CNT_DROP_REJECT);
		return V_DROP;
	}
	if (p->proto == IPPROTO_TCP) {
		if (reject_dispatch(ctx, xdp, p, 1) == 0) {
			count(CNT_REJECT_TCP);
			return V_TX;
		}
	} else if (reject_dispatch(ctx, xdp, p, 0) == 0) {
		count(CNT_REJECT_ICMP);
		return V_TX;
	}
	count(CNT_DROP_REJECT);
	return V_DROP;
}

/* icmp_error_transit passes an ICMP error only when the packet it quotes
 * belongs to a session. */
static __always_inline int icmp_error_transit(void *data, void *data_end, struct pkt *p,
					      struct scratch *sc)
{
	struct pkt *in = &sc->inner;
	__builtin_memset(in, 0, sizeof(*in));
	in->l3_off = (p->l4_off + 8) & OFF_MASK;
	int r = p->family == AF_INET ? parse_ipv4(data, data_end, in) : parse_ipv6(data, data_end, in);
	if (r == PARSE_OK) {
		int a;
		sess_key_of(in, &sc->key, &a);
		if (bpf_map_lookup_elem(&sessions, &sc->key)) {
			count(CNT_SESSION_HIT);
			return V_PASS;
		}
	}
	count(CNT_DROP_ICMP_ERROR);
	return V_DROP;
}

/* transit handles a packet not addressed to the router. */
static __always_inline int transit(void *ctx, int xdp, struct pkt *p, struct iface_info *in,
				   struct config *cfg, __u64 now, __u32 *rif, struct scratch *sc)
{
	void *data, *data_end;
	struct bpf_fib_lookup *fp = &sc->fp;
	int src_is_a, rk;
	struct sess_key key;

	if (is_icmp_error(p)) {
		if (is_local(p))
			return host_inbound(p, in, cfg, now);
		load_ptrs(ctx, xdp, &data, &data_end);
		return icmp_error_transit(data, data_end, p, sc);
	}

	sess_key_of(p, &key, &src_is_a);
	struct sess_val *s = bpf_map_lookup_elem(&sessions, &key);
	if (xdp) {
		if (fc_handover(&sc->fcm, p, ((struct xdp_md *)ctx)->ingress_ifindex))
			fc_take(&sc->fcm, s);
		else
			sc->fcm.ok = 0;
	}
	if (s && sess_expired(cfg, s, p->proto, now)) {
		bpf_map_delete_elem(&sessions, &key);
		count(CNT_SESSION_EXPIRED);
		s = NULL;
	}
	if (s) {
		int dir = (src_is_a == !!(s->flags & SF_INIT_IS_A)) ? DIR_ORIG : DIR_REPLY;
		if (s->gen != cfg->gen && !(s->flags & SF_SELF)) {
			struct match_in *m = &sc->m;
			m->proto = key.proto;
			m->family = key.family;
			m->from = s->from_zone;
			m->to = s->to_zone;
			m->app_port = s->app_port;
			if (s->flags & SF_INIT_IS_A) {
				__builtin_memcpy(m->saddr, key.a, 16);
				__builtin_memcpy(m->daddr, key.b, 16);
			} else {
				__builtin_memcpy(m->saddr, key.b, 16);
				__builtin_memcpy(m->daddr, key.a, 16);
			}
			__u32 idx;
			count(CNT_SESSION_RECHECK);
			if (policy_lookup(cfg, cfg->gen, m, &idx) != ACT_PERMIT) {
				bpf_map_delete_elem(&sessions, &key);
				fc_invalidate_all(); /* other CPUs may cache it */
				count(CNT_DROP_SESSION_CLOSED);
				return V_DROP;
			}
			s->gen = cfg->gen;
			s->policy = idx;
		}
		count(CNT_SESSION_HIT);
		if (p->proto == IPPROTO_TCP)
			tcp_track(s, p->tcp_flags, dir);
		sess_account(s, dir, now, p->l3_len);
		int tunnel = s->flags & SF_TUNNEL;
		__u16 out_zone = dir == DIR_ORIG ? s->to_zone : s->from_zone;
		struct zone_stats *zs = zone_stats_of(out_zone);
		if (zs)
			zs->tx_pkts++;
		/* A slot is filled only from a settled session: TCP state
		 * changes (SYN, FIN, RST) stay off the cache. Such a packet
		 * needs no MSS clamp, so its branch leaves mss_apply out and
		 * the verifier does not walk the fills once per MSS state. */
		if (xdp && sc->fcm.ok && sc->fcm.fill && (p->proto != IPPROTO_TCP || s->tcp_state == TS_ESTABLISHED)) {
			__u32 zones = in->zone | ((__u32)out_zone << 16);
			if (!(in->flags & IF_REDIRECT) || tunnel) {
				fill_slot(sc, dir, zones, now, 0);
				return V_PASS;
			}
			rk = route(ctx, p, in->l3_ifindex, fp);
			int v = forward(ctx, xdp, p, in, fp, rk, rif, sc);
			if (v == V_REDIRECT)
				fill_slot(sc, dir, zones, now, 1);
			return v;
		}
		mss_apply(ctx, xdp, p, cfg, tunnel);
		if (!xdp || !(in->flags & IF_REDIRECT) || tunnel)
			return V_PASS;
		rk = route(ctx, p, in->l3_ifindex, fp);
		return forward(ctx, xdp, p, in, fp, rk, rif, sc);
	}

	/* Sessions only exist for transit flows, so the local-address test
	 * waits for a session miss. */
	if (is_local(p))
		return host_inbound(p, in, cfg, now);
	rk = route(ctx, p, in->l3_ifindex, fp);
	if (rk == ROUTE_LOCAL)
		return host_inbound(p, in, cfg, now);
	if (rk == ROUTE_OTHER) {
		count(CNT_PASS_FIB_OTHER);
		return V_PASS;
	}
	if (p->proto == IPPROTO_TCP && (p->tcp_flags & (TCPF_SYN | TCPF_ACK | TCPF_RST)) != TCPF_SYN) {
		count(CNT_DROP_TCP_NO_SYN);
		return V_DROP;
	}
	struct iface_info *eg = iface_of(fp->ifindex, 0, &sc->eg_if);
	if (!eg || !eg->zone) {
		count(CNT_DROP_NO_TO_ZONE);
		return V_DROP;
	}

	__u16 app_port = app_port_of(p);
	struct match_in *m = &sc->m;
	m->proto = p->proto;
	m->family = p->family;
	m->from = in->zone;
	m->to = eg->zone;
	m->app_port = app_port;
	__builtin_memcpy(m->saddr, p->saddr, 16);
	__builtin_memcpy(m->daddr, p->daddr, 16);
	__u32 idx;
	int act = policy_lookup(cfg, cfg->gen, m, &idx);
	if (act == ACT_DENY) {
		count(CNT_DROP_POLICY);
		return V_DROP;
	}
	if (act == ACT_REJECT) {
		count(CNT_DROP_POLICY);
		return do_reject(ctx, xdp, p);
	}

	int tunnel = (in->flags & IF_TUNNEL) || (eg->flags & IF_TUNNEL);
	struct sess_val *nv = &sc->nv;
	__builtin_memset(nv, 0, sizeof(*nv));
	nv->last_ns = now;
	nv->gen = cfg->gen;
	nv->policy = idx;
	nv->from_zone = in->zone;
	nv->to_zone = eg->zone;
	nv->app_port = app_port;
	nv->tcp_state = p->proto == IPPROTO_TCP ? TS_SYN_SENT : TS_NONE;
	nv->flags = (src_is_a ? SF_INIT_IS_A : 0) | (tunnel ? SF_TUNNEL : 0);
	nv->created_s = now / 1000000000ULL;
	nv->pkts[0] = 1;
	nv->bytes[0] = p->l3_len;
	if (bpf_map_update_elem(&sessions, &key, nv, BPF_NOEXIST) == 0)
		sess_created();
	count(CNT_SESSION_NEW);
	struct zone_stats *zs = zone_stats_of(eg->zone);
	if (zs)
		zs->tx_pkts++;
	mss_apply(ctx, xdp, p, cfg, tunnel);
	if (tunnel)
		return V_PASS;
	return forward(ctx, xdp, p, in, fp, rk, rif, sc);
}

/* flow judges a parsed IP packet received on interface in. */
static __always_inline int flow(void *ctx, int xdp, struct pkt *p, struct iface_info *in, __u32 *rif,
				struct scratch *sc)
{
	struct config *cfg = get_config();
	if (!cfg)
		return V_PASS; /* not programmed yet */
	__u64 now = bpf_ktime_get_coarse_ns(); /* CLOCK_MONOTONIC_COARSE: timeouts need no finer clock */
	struct zone_stats *zs = zone_stats_of(in->zone);
	if (zs) {
		zs->rx_pkts++;
		zs->rx_bytes += p->l3_len;
	}

	int v;
	if (p->frag == FRAG_LATER) {
		v = frag_follow(p, now);
	} else if (is_nd(p) || is_multicast(p)) {
		v = host_inbound(p, in, cfg, now);
	} else {
		v = transit(ctx, xdp, p, in, cfg, now, rif, sc);
	}
	frag_record(p, v, now);
	if (v == V_DROP && zs)
		zs->drops++;
	return v;
}

#endif
