/* Sessions: one LRU entry per flow serves both directions. */
#ifndef BPFVPN_SESSION_H
#define BPFVPN_SESSION_H

#include "parse.h"
#include "counters.h"

#define DIR_ORIG 0
#define DIR_REPLY 1

/* endpoint_less reports whether (x, px) sorts before (y, py). */
static __always_inline int endpoint_less(const __u32 *x, __u16 px, const __u32 *y, __u16 py)
{
#pragma unroll
	for (int i = 0; i < 4; i++) {
		if (x[i] != y[i])
			return bpf_ntohl(x[i]) < bpf_ntohl(y[i]);
	}
	return px < py;
}

/* sess_key_of builds the canonical key; *src_is_a tells whether the packet's
 * source is endpoint a. */
static __always_inline void sess_key_of(struct pkt *p, struct sess_key *k, int *src_is_a)
{
	k->proto = p->proto;
	k->family = p->family;
	k->pad = 0;
	if (endpoint_less(p->saddr, p->sport, p->daddr, p->dport)) {
		__builtin_memcpy(k->a, p->saddr, 16);
		__builtin_memcpy(k->b, p->daddr, 16);
		k->pa = p->sport;
		k->pb = p->dport;
		*src_is_a = 1;
	} else {
		__builtin_memcpy(k->a, p->daddr, 16);
		__builtin_memcpy(k->b, p->saddr, 16);
		k->pa = p->dport;
		k->pb = p->sport;
		*src_is_a = 0;
	}
}

static __always_inline __u32 sess_timeout(struct config *cfg, struct sess_val *s, __u8 proto)
{
	switch (proto) {
	case IPPROTO_TCP:
		if (s->tcp_state == TS_ESTABLISHED)
			return cfg->to_tcp_est;
		if (s->tcp_state == TS_CLOSING)
			return cfg->to_tcp_close;
		return cfg->to_tcp_init;
	case IPPROTO_UDP:
		return cfg->to_udp;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		return cfg->to_icmp;
	}
	return cfg->to_other;
}

/* sess_expired allows FC_WINDOW_NS beyond the timeout: hits served from
 * another CPU's flow cache reach last_ns up to that much later. */
static __always_inline int sess_expired(struct config *cfg, struct sess_val *s, __u8 proto, __u64 now)
{
	__u64 to = (__u64)sess_timeout(cfg, s, proto) * 1000000000ULL + FC_WINDOW_NS;
	return now > s->last_ns && now - s->last_ns > to;
}

/* tcp_track advances the TCP state for a packet in direction dir. */
static __always_inline void tcp_track(struct sess_val *s, __u8 flags, int dir)
{
	if (flags & TCPF_RST) {
		s->tcp_state = TS_CLOSING;
		return;
	}
	if (flags & TCPF_FIN) {
		s->tcp_state = TS_CLOSING;
		return;
	}
	switch (s->tcp_state) {
	case TS_SYN_SENT:
		if (dir == DIR_REPLY && (flags & (TCPF_SYN | TCPF_ACK)) == (TCPF_SYN | TCPF_ACK))
			s->tcp_state = TS_SYN_RECV;
		break;
	case TS_SYN_RECV:
		if (dir == DIR_ORIG && (flags & (TCPF_SYN | TCPF_ACK)) == TCPF_ACK)
			s->tcp_state = TS_ESTABLISHED;
		break;
	}
}

/* sess_account indexes with constants: a computed index into the value
 * loses its bounds in the 6.1 verifier. */
static __always_inline void sess_account(struct sess_val *s, int dir, __u64 now, __u32 len)
{
	s->last_ns = now;
	if (dir == DIR_REPLY) {
		s->pkts[1] += 1;
		s->bytes[1] += len;
	} else {
		s->pkts[0] += 1;
		s->bytes[0] += len;
	}
}

#endif
