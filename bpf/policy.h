/* First-match policy lookup of a zone pair.
 *
 * Each zone pair's ordered policies are bit positions 0..count-1. Three LPM
 * lookups (source address, destination address, application) each return a
 * bitset of the policies that field admits (Go stores, for every prefix, the
 * union with all covering prefixes, so the longest match is enough). The
 * first policy is the lowest bit of the intersection; summary words let the
 * scan skip 64-policy blocks that one of the sets lacks. */
#ifndef BPFVPN_POLICY_H
#define BPFVPN_POLICY_H

#include "parse.h"
#include "counters.h"

#define POLICY_DEFAULT 0xffffffff

enum scope_dir {
	DIR_SRC = 0,
	DIR_DST = 1,
	DIR_APP = 2,
};

/* scope of an LPM key: gen(1) dir(2) from(6) to(6). */
static __always_inline __u32 lpm_scope(__u32 gen, __u32 dir, __u32 from, __u32 to)
{
	return bpf_htonl(((gen & 1) << 14) | ((dir & 3) << 12) | ((from & 63) << 6) | (to & 63));
}

static __always_inline __u32 zp_index(__u32 gen, __u32 from, __u32 to)
{
	return ((gen & 1) << 12) | ((from & 63) << 6) | (to & 63);
}

static const __u8 debruijn64[64] = {
	0,  1,  48, 2,  57, 49, 28, 3,  61, 58, 50, 42, 38, 29, 17, 4,
	62, 55, 59, 36, 53, 51, 43, 22, 45, 39, 33, 30, 24, 18, 12, 5,
	63, 47, 56, 27, 60, 41, 37, 16, 54, 35, 52, 21, 44, 32, 23, 11,
	46, 26, 40, 15, 34, 20, 31, 10, 25, 14, 19, 9,  13, 8,  7,  6,
};

/* ctz64 of a non-zero word. */
static __always_inline __u32 ctz64(__u64 x)
{
	return debruijn64[((x & -x) * 0x03f79d71b4cb0a89ULL) >> 58];
}

static __always_inline struct policy_set *lookup_set(void *trie, void *key)
{
	struct lpm_val *v = bpf_map_lookup_elem(trie, key);
	if (!v || !v->set)
		return NULL;
	__u32 id = v->set;
	return bpf_map_lookup_elem(&policy_sets, &id);
}

/* first_common returns the lowest bit set in all three sets, or -1. */
static __always_inline int first_common(struct policy_set *s, struct policy_set *d,
					struct policy_set *a, __u32 count)
{
	__u32 nwords = (count + 63) / 64;
	for (__u32 k = 0; k < SUMMARY_WORDS; k++) {
		__u64 sm = s->summary[k] & d->summary[k] & a->summary[k];
		for (int j = 0; j < 64; j++) {
			if (!sm)
				break;
			__u32 b = ctz64(sm);
			sm &= sm - 1;
			__u64 wi = k * 64 + b;
			if (wi >= nwords)
				return -1;
			BOUND(wi, POLICY_WORDS);
			__u64 m = s->w[wi] & d->w[wi] & a->w[wi];
			if (m)
				return wi * 64 + ctz64(m);
		}
	}
	return -1;
}

struct match_in {
	__u32 saddr[4];
	__u32 daddr[4];
	__u16 app_port;
	__u8 proto;
	__u8 family;
	__u16 from;
	__u16 to;
};

/* policy_lookup returns the action for a new flow and sets *idx to the
 * global policy index (POLICY_DEFAULT for the default policy). */
static __always_inline int policy_lookup(struct config *cfg, __u32 gen, struct match_in *m, __u32 *idx)
{
	int dflt = (cfg->flags & CFG_DEFAULT_PERMIT) ? ACT_PERMIT : ACT_DENY;
	*idx = POLICY_DEFAULT;

	__u32 zpi = zp_index(gen, m->from, m->to);
	struct zone_pair *zp = bpf_map_lookup_elem(&zone_pairs, &zpi);
	if (!zp || !zp->present || !zp->count)
		return dflt;

	struct policy_set *s, *d, *a;
	if (m->family == AF_INET) {
		struct addr4_lpm_key k = { .prefixlen = 64, .scope = lpm_scope(gen, DIR_SRC, m->from, m->to) };
		__builtin_memcpy(k.addr, m->saddr, 4);
		s = lookup_set(&addr4, &k);
		if (!s)
			return dflt;
		k.scope = lpm_scope(gen, DIR_DST, m->from, m->to);
		__builtin_memcpy(k.addr, m->daddr, 4);
		d = lookup_set(&addr4, &k);
	} else {
		struct addr6_lpm_key k = { .prefixlen = 160, .scope = lpm_scope(gen, DIR_SRC, m->from, m->to) };
		__builtin_memcpy(k.addr, m->saddr, 16);
		s = lookup_set(&addr6, &k);
		if (!s)
			return dflt;
		k.scope = lpm_scope(gen, DIR_DST, m->from, m->to);
		__builtin_memcpy(k.addr, m->daddr, 16);
		d = lookup_set(&addr6, &k);
	}
	if (!d)
		return dflt;
	struct app_lpm_key ak = { .prefixlen = 56, .scope = lpm_scope(gen, DIR_APP, m->from, m->to),
				  .proto = m->proto };
	ak.port[0] = m->app_port >> 8;
	ak.port[1] = m->app_port & 0xff;
	a = lookup_set(&apps, &ak);
	if (!a)
		return dflt;

	int bit = first_common(s, d, a, zp->count);
	if (bit < 0)
		return dflt;
	__u32 g = (gen & 1) * MAX_POLICIES + ((zp->base + bit) & (MAX_POLICIES - 1));
	struct policy *pol = bpf_map_lookup_elem(&policies, &g);
	if (!pol)
		return dflt;
	*idx = g;
	__u64 *hits = bpf_map_lookup_elem(&policy_hits, &g);
	if (hits)
		*hits += 1;
	return pol->action;
}

/* app_port_of is the value matched against application ports. */
static __always_inline __u16 app_port_of(struct pkt *p)
{
	if (p->proto == IPPROTO_ICMP || p->proto == IPPROTO_ICMPV6)
		return ((__u16)p->icmp_type << 8) | p->icmp_code;
	if (p->proto == IPPROTO_TCP || p->proto == IPPROTO_UDP || p->proto == IPPROTO_SCTP)
		return p->dport;
	return 0;
}

#endif
