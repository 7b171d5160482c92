/* Per-CPU event and drop-reason counters. */
#ifndef BPFVPN_COUNTERS_H
#define BPFVPN_COUNTERS_H

#include "maps.h"

/* counter_id indexes the counters map; names are shown by `bpfvpn status`. */
enum counter_id {
	CNT_PKTS = 0,           /* packets seen by any hook */
	CNT_PASS_NON_IP,        /* ARP, LLDP, …: not filtered */
	CNT_PASS_HOST,          /* to the router, service allowed */
	CNT_PASS_ND,            /* IPv6 neighbour discovery (always allowed) */
	CNT_PASS_ICMP_ERROR,    /* ICMP errors (PMTU, unreachable) to the router */
	CNT_PASS_ESP,           /* ESP / ESP-in-UDP to the router with a known SPI */
	CNT_SESSION_HIT,
	CNT_SESSION_NEW,
	CNT_SESSION_EXPIRED,
	CNT_SESSION_RECHECK,    /* re-checked against a new policy generation */
	CNT_REDIRECT,
	CNT_PASS_FIB_OTHER,     /* FIB blackhole/unreachable/unsupported: left to the stack */
	CNT_MSS_CLAMPED,
	CNT_FRAG_FOLLOWED,      /* non-first fragment followed its first fragment */
	CNT_REJECT_TCP,
	CNT_REJECT_ICMP,
	CNT_DROP_MALFORMED,
	CNT_DROP_NO_ZONE,       /* ingress interface/VLAN not in a zone */
	CNT_DROP_NO_TO_ZONE,    /* egress interface not in a zone */
	CNT_DROP_HOST_INBOUND,  /* to the router, service not enabled */
	CNT_DROP_ESP_SPI,       /* ESP with an unknown SPI */
	CNT_DROP_IKE_RATE,      /* IKE over the per-source rate */
	CNT_DROP_POLICY,        /* policy deny or default deny */
	CNT_DROP_REJECT,        /* reject whose answer could not be built */
	CNT_DROP_TCP_NO_SYN,    /* first packet of a TCP flow is not a SYN */
	CNT_DROP_FRAG_UNKNOWN,  /* non-first fragment without a permitted first fragment */
	CNT_DROP_FRAG_SHORT,    /* first fragment without a whole L4 header */
	CNT_DROP_SESSION_CLOSED,/* session no longer permitted by the new generation */
	CNT_DROP_ICMP_ERROR,    /* transit ICMP error without a session */
	CNT_TUNNEL_OUT,         /* packets leaving through st0 */
	CNT_SESSION_SELF,       /* sessions opened by the router itself */
	CNT_TUNNEL_DEMAND,      /* on-traffic events raised for down tunnels */
	CNT_TUNNEL_DEMAND_LOST, /* events lost: ring buffer full */
	CNT_FLOW_CACHE_HIT,     /* session hits served from the per-CPU flow cache */
	CNT_MAX,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} counters SEC(".maps");

static __always_inline void count(enum counter_id id)
{
	__u32 k = id;
	__u64 *v = bpf_map_lookup_elem(&counters, &k);
	if (v)
		*v += 1;
}

static __always_inline struct zone_stats *zone_stats_of(__u16 zone)
{
	__u32 k = zone & (MAX_ZONES - 1);
	return bpf_map_lookup_elem(&zone_counters, &k);
}

#endif
