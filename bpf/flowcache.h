/* The per-CPU flow cache of session hits (flow_cache and flow_cache_ctl in
 * maps.h): slot hashing, the hand-over from a cache miss to the full path,
 * flushing of pending hit counts into sessions, and fills. */
#ifndef BPFVPN_FLOWCACHE_H
#define BPFVPN_FLOWCACHE_H

#include "session.h"

/* fc_miss: what xdp_fast leaves in the scratch area for the full path when
 * the packet had the cacheable shape but was not served from the cache.
 * epoch and inserts are read before the full path's session lookup, so an
 * entry filled from a session that userspace deletes meanwhile carries the
 * old epoch and never serves. */
struct fc_miss {
	__u64 epoch;
	__u64 inserts;
	__u32 slot;
	__u32 ifindex;
	__u32 saddr;
	__u32 daddr;
	__u32 ports;
	__u8 proto;
	__u8 ok;   /* written by xdp_fast (possibly for an earlier packet) */
	__u8 fill; /* its TCP flags allow a fill (no SYN, FIN, RST) */
	__u8 pad;
};

/* fc_handover validates the scratch hand-over for the parsed packet p
 * received on ifindex: xdp_fast writes it only for packets of the
 * cacheable shape, so a packet of another shape may find one left by an
 * earlier packet. It is used only when it describes this packet's tuple and
 * shape; its epoch and insert count were then read before this packet's
 * session lookup (or earlier, which only makes a fill stale sooner). */
static __always_inline int fc_handover(struct fc_miss *m, struct pkt *p, __u32 ifindex)
{
	__u32 ports = bpf_htons(p->sport) | ((__u32)bpf_htons(p->dport) << 16);
	if (!m->ok || p->family != AF_INET || p->nvlan || p->frag || p->l4_off - p->l3_off != 20 ||
	    (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP))
		return 0;
	if (m->saddr != p->saddr[0] || m->daddr != p->daddr[0] || m->ports != ports || m->proto != p->proto ||
	    m->ifindex != ifindex)
		return 0;
	if (p->proto == IPPROTO_TCP && (p->tcp_flags & (TCPF_SYN | TCPF_FIN | TCPF_RST)))
		m->fill = 0;
	return 1;
}

static __always_inline struct fc_state *fc_state_get(void)
{
	__u32 k = 0;
	return bpf_map_lookup_elem(&flow_cache_ctl, &k);
}

static __always_inline __u32 fc_slot(__u32 saddr, __u32 daddr, __u32 ports, __u8 proto)
{
	__u32 h = saddr * 0x9e3779b1u;
	h = (h ^ daddr) * 0x85ebca6bu;
	h = (h ^ ports ^ proto) * 0xc2b2ae35u;
	return (h ^ (h >> 15)) & (FC_SLOTS - 1);
}

/* sess_created counts a session insert for the cache's LRU bound. */
static __always_inline void sess_created(void)
{
	struct fc_state *st = fc_state_get();
	if (st)
		__sync_fetch_and_add(&st->inserts, 1);
}

/* fc_invalidate_all makes every cached entry of every CPU stale. */
static __always_inline void fc_invalidate_all(void)
{
	struct fc_state *st = fc_state_get();
	if (st)
		__sync_fetch_and_add(&st->epoch, 1);
}

static __always_inline int fc_same(struct fc_entry *e, struct fc_miss *m)
{
	return e->saddr == m->saddr && e->daddr == m->daddr && e->ports == m->ports &&
	       e->ifindex == m->ifindex && e->proto == m->proto;
}

/* fc_add moves the pending hits of e into its session s. */
static __always_inline void fc_add(struct sess_val *s, struct fc_entry *e)
{
	if (e->dir == DIR_REPLY) {
		s->pkts[1] += e->pkts;
		s->bytes[1] += e->bytes;
	} else {
		s->pkts[0] += e->pkts;
		s->bytes[0] += e->bytes;
	}
	/* every pending hit came at or after the fill; sess_expired's grace
	 * covers the rest of the window */
	if (e->fill_ns > s->last_ns)
		s->last_ns = e->fill_ns;
	e->pkts = 0;
	e->bytes = 0;
}

/* fc_key_of builds the session key of an entry's directed IPv4 tuple. */
static __always_inline void fc_key_of(struct fc_entry *e, struct sess_key *k)
{
	__builtin_memset(k, 0, sizeof(*k));
	__u16 sp = bpf_ntohs(e->ports & 0xffff), dp = bpf_ntohs(e->ports >> 16);
	__u32 sh = bpf_ntohl(e->saddr), dh = bpf_ntohl(e->daddr);
	k->proto = e->proto;
	k->family = AF_INET;
	if (sh < dh || (sh == dh && sp < dp)) {
		k->a[0] = e->saddr;
		k->b[0] = e->daddr;
		k->pa = sp;
		k->pb = dp;
	} else {
		k->a[0] = e->daddr;
		k->b[0] = e->saddr;
		k->pa = dp;
		k->pb = sp;
	}
}

/* fc_flush adds the pending hits of e to its session, if it still exists. */
static __always_inline void fc_flush(struct fc_entry *e, struct sess_key *kbuf)
{
	if (!e->pkts)
		return;
	fc_key_of(e, kbuf);
	struct sess_val *s = bpf_map_lookup_elem(&sessions, kbuf);
	if (s) {
		fc_add(s, e);
		return;
	}
	e->pkts = 0;
	e->bytes = 0;
}

/* fc_slot_of returns the slot xdp_fast examined for this packet. */
static __always_inline struct fc_entry *fc_slot_of(struct fc_miss *m)
{
	__u32 k = m->slot & (FC_SLOTS - 1);
	return bpf_map_lookup_elem(&flow_cache, &k);
}

/* fc_take retires this direction's slot before the full path judges the
 * packet: its pending hits go to the session s (before the expiry check
 * reads last_ns) and the slot stops serving until a new fill. */
static __always_inline void fc_take(struct fc_miss *m, struct sess_val *s)
{
	if (!m->ok)
		return;
	struct fc_entry *e = fc_slot_of(m);
	if (!e || !e->ifindex || !fc_same(e, m))
		return;
	if (s)
		fc_add(s, e);
	e->pkts = 0;
	e->bytes = 0;
	e->live = 0;
}

/* fc_fill makes the packet's slot serve its direction (dir) of the session
 * whose key the full path looked up, when xdp_fast handed the packet over
 * (m->ok) and its TCP flags and state allow it (m->fill); fp is the
 * resolved route of a redirect. The previous occupant's pending hits go to
 * its session. */
static __always_inline void fc_fill(struct fc_miss *m, struct sess_key *kbuf, int dir, __u16 rx_zone,
				    __u16 tx_zone, __u64 now, struct bpf_fib_lookup *fp)
{
	if (!m->ok || !m->fill)
		return;
	struct fc_entry *e = fc_slot_of(m);
	if (!e)
		return;
	if (e->pkts && !fc_same(e, m))
		fc_flush(e, kbuf);
	e->saddr = m->saddr;
	e->daddr = m->daddr;
	e->ports = m->ports;
	e->ifindex = m->ifindex;
	e->proto = m->proto;
	e->dir = dir;
	e->rx_zone = rx_zone;
	e->tx_zone = tx_zone;
	e->epoch = m->epoch;
	e->inserts = m->inserts;
	e->fill_ns = now;
	e->fill_jiffies = bpf_jiffies64();
	e->pkts = 0;
	e->bytes = 0;
	if (fp) {
		e->redirect = 1;
		e->out_ifindex = fp->ifindex;
		__builtin_memcpy(e->dmac, fp->dmac, 6);
		__builtin_memcpy(e->smac, fp->smac, 6);
	} else {
		e->redirect = 0;
		e->out_ifindex = 0;
	}
	e->live = 1;
}

#endif
