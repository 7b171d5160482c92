/* IP fragments. The first fragment (offset 0) carries the L4 header and is
 * judged like any packet; its verdict is remembered per datagram
 * (addresses, protocol, IP id). Later fragments follow that verdict and are
 * left to the stack (XDP_PASS / TC_ACT_OK): the stack forwards them or
 * reassembles them for local delivery. A later fragment whose first
 * fragment was not seen or not permitted is dropped. */
#ifndef BPFVPN_FRAG_H
#define BPFVPN_FRAG_H

#include "parse.h"
#include "counters.h"

#define FRAG_TIMEOUT_NS (30ULL * 1000000000ULL)

static __always_inline void frag_key_of(struct pkt *p, struct frag_key *k)
{
	__builtin_memcpy(k->saddr, p->saddr, 16);
	__builtin_memcpy(k->daddr, p->daddr, 16);
	k->id = p->frag_id;
	k->proto = p->proto;
	k->family = p->family;
	k->pad = 0;
}

static __always_inline void frag_record(struct pkt *p, int verdict, __u64 now)
{
	if (p->frag != FRAG_FIRST || (verdict != V_PASS && verdict != V_REDIRECT))
		return;
	struct frag_key k;
	frag_key_of(p, &k);
	struct frag_val v = { .last_ns = now, .verdict = V_PASS };
	bpf_map_update_elem(&frags, &k, &v, BPF_ANY);
}

static __always_inline int frag_follow(struct pkt *p, __u64 now)
{
	struct frag_key k;
	frag_key_of(p, &k);
	struct frag_val *v = bpf_map_lookup_elem(&frags, &k);
	if (!v || now - v->last_ns > FRAG_TIMEOUT_NS) {
		count(CNT_DROP_FRAG_UNKNOWN);
		return V_DROP;
	}
	count(CNT_FRAG_FOLLOWED);
	return V_PASS;
}

#endif
