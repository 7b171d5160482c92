/* tc egress on zone interfaces: connections the router itself opens get a
 * session, so their return traffic passes the host-inbound filter at XDP
 * (as junos-host traffic does on the vendor's device). */
#ifndef BPFVPN_PROG_TC_ZONE_H
#define BPFVPN_PROG_TC_ZONE_H

#include "prog_tc_st0.h"

static __always_inline int is_local_src(struct pkt *p)
{
	struct local_key k = { .family = p->family };
	__builtin_memcpy(k.addr, p->saddr, 16);
	return bpf_map_lookup_elem(&local_addrs, &k) != NULL;
}

SEC("tc")
int tc_zone_egress(struct __sk_buff *skb)
{
	struct scratch *sc = get_scratch();
	if (!sc)
		return TC_ACT_OK;
	struct pkt *p = &sc->p;
	__builtin_memset(p, 0, sizeof(*p));

	__u16 vlan = skb->vlan_present ? (skb->vlan_tci & 0x0fff) : 0;
	struct iface_info *out = iface_of(skb->ifindex, vlan, &sc->in_if);
	if (!out)
		out = iface_of(skb->ifindex, 0, &sc->in_if);
	if (!out || !out->zone)
		return TC_ACT_OK;
	if (tc_parse(skb, out, p) != PARSE_OK || p->frag == FRAG_LATER)
		return TC_ACT_OK;
	if (is_multicast(p) || !is_local_src(p))
		return TC_ACT_OK; /* forwarded traffic was judged at ingress */
	/* ESP and IKE keep their own admission (known SPIs, ike service and
	 * rate limit): a session must not open them to the peer. */
	if (p->proto == IPPROTO_ESP)
		return TC_ACT_OK;
	if (p->proto == IPPROTO_UDP && (PORT_EITHER(p, 500) || PORT_EITHER(p, 4500)))
		return TC_ACT_OK;
	/* Of ICMP only the router's own echo requests open a session: its
	 * answers (echo replies, errors) must not admit later traffic. */
	if ((p->proto == IPPROTO_ICMP && p->icmp_type != ICMP_ECHO) ||
	    (p->proto == IPPROTO_ICMPV6 && p->icmp_type != ICMPV6_ECHO_REQUEST))
		return TC_ACT_OK;
	struct config *cfg = get_config();
	if (!cfg)
		return TC_ACT_OK;
	__u64 now = bpf_ktime_get_coarse_ns();
	int src_is_a;
	sess_key_of(p, &sc->key, &src_is_a);
	struct sess_val *s = bpf_map_lookup_elem(&sessions, &sc->key);
	if (s) {
		int dir = (src_is_a == !!(s->flags & SF_INIT_IS_A)) ? DIR_ORIG : DIR_REPLY;
		if (p->proto == IPPROTO_TCP)
			tcp_track(s, p->tcp_flags, dir);
		sess_account(s, dir, now, p->l3_len);
		return TC_ACT_OK;
	}
	struct sess_val *nv = &sc->nv;
	__builtin_memset(nv, 0, sizeof(*nv));
	nv->last_ns = now;
	nv->gen = cfg->gen;
	nv->policy = POLICY_DEFAULT;
	nv->to_zone = out->zone;
	nv->app_port = app_port_of(p);
	if (p->proto == IPPROTO_TCP)
		nv->tcp_state = (p->tcp_flags & TCPF_SYN) ? TS_SYN_SENT : TS_ESTABLISHED;
	nv->flags = SF_SELF | (src_is_a ? SF_INIT_IS_A : 0);
	nv->created_s = now / 1000000000ULL;
	nv->pkts[0] = 1;
	nv->bytes[0] = p->l3_len;
	if (bpf_map_update_elem(&sessions, &sc->key, nv, BPF_NOEXIST) == 0)
		sess_created();
	count(CNT_SESSION_SELF);
	return TC_ACT_OK;
}

#endif
