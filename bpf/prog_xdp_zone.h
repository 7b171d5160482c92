/* XDP on every zone interface: from-zone by (ifindex, VLAN). */
#ifndef BPFVPN_PROG_XDP_ZONE_H
#define BPFVPN_PROG_XDP_ZONE_H

#include "flow.h"
#include "fastpath.h"

/* xdp_full judges a packet the flow cache did not serve. It is a separate
 * function so that the verifier walks it once, whichever way xdp_fast
 * gave up. */
static __noinline int xdp_full(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct scratch *sc = get_scratch();
	if (!sc)
		return XDP_PASS;
	struct pkt *p = &sc->p;
	__builtin_memset(p, 0, sizeof(*p));

	count(CNT_PKTS);
	int r = parse_eth(data, data_end, p);
	if (r == PARSE_NON_IP) {
		count(CNT_PASS_NON_IP);
		return XDP_PASS;
	}
	if (r == PARSE_FRAG_SHORT) {
		count(CNT_DROP_FRAG_SHORT);
		return XDP_DROP;
	}
	if (r != PARSE_OK) {
		count(CNT_DROP_MALFORMED);
		return XDP_DROP;
	}
	struct iface_info *in = iface_of(ctx->ingress_ifindex, p->vlan, &sc->in_if);
	if (!in || !in->zone) {
		count(CNT_DROP_NO_ZONE);
		return XDP_DROP;
	}
	__u32 rif = 0;
	switch (flow(ctx, 1, p, in, &rif, sc)) {
	case V_PASS:
		return XDP_PASS;
	case V_TX:
		return XDP_TX;
	case V_REDIRECT:
		return bpf_redirect(rif, 0);
	}
	return XDP_DROP;
}

SEC("xdp")
int xdp_zone(struct xdp_md *ctx)
{
	int fast = xdp_fast(ctx);
	if (fast != FAST_NONE)
		return fast;
	return xdp_full(ctx);
}

#endif
