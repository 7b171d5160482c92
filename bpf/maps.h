/* Map definitions and the key/value structs shared with Go (bpf2go -type). */
#ifndef BPFVPN_MAPS_H
#define BPFVPN_MAPS_H

#include "common.h"

/* iface_key: (ifindex, VLAN id) of a receiving or sending interface; vlan 0 = untagged. */
struct iface_key {
	__u32 ifindex;
	__u16 vlan;
	__u16 pad;
};

enum iface_flags {
	IF_TUNNEL = 1,      /* st0.N: traffic routed here enters an IPsec tunnel */
	IF_HI_OVERRIDE = 2, /* hi_allow overrides the zone's host-inbound services */
	IF_REDIRECT = 4,    /* may be the target of XDP_REDIRECT */
	IF_L2 = 8,          /* has an Ethernet header at tc (not an L3 xfrm device) */
};

struct iface_info {
	__u16 zone;
	__u16 flags;
	__u32 l3_ifindex; /* logical interface for FIB lookups (the VLAN device for tagged keys) */
	__u64 hi_allow;   /* host-inbound bits when IF_HI_OVERRIDE */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct iface_key);
	__type(value, struct iface_info);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ifaces SEC(".maps");

/* iface_slots: the untagged entries of ifaces again, indexed by ifindex
 * (ifindex < IFACE_SLOTS), so the per-packet interface lookup is an array
 * access. An entry with l3_ifindex 0 is absent. Tagged keys and larger
 * ifindexes are only in ifaces. */
#define IFACE_SLOTS 4096

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, IFACE_SLOTS);
	__type(key, __u32);
	__type(value, struct iface_info);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} iface_slots SEC(".maps");

/* local_key: an address of the router itself (or a broadcast address it owns). */
struct local_key {
	__u32 family;
	__u32 addr[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct local_key);
	__type(value, __u32); /* ifindex */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} local_addrs SEC(".maps");

/* zone_info: per-zone host-inbound services (bit numbers in hostin.h). */
struct zone_info {
	__u64 hi_allow;
	__u8 name[32]; /* zone name: keeps zone ids stable across applies */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_ZONES);
	__type(key, __u32);
	__type(value, struct zone_info);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} zones SEC(".maps");

/* config: global settings and the active policy generation. Switching
 * generations is one write of this value. */
enum config_flags {
	CFG_DEFAULT_PERMIT = 1, /* security policies default-policy permit-all */
};

struct config {
	__u32 gen;          /* active policy generation: commits << 1 | half (gen & 1 picks the tables) */
	__u32 flags;
	__u16 mss_ipsec;    /* tcp-mss ipsec-vpn mss, 0 = off */
	__u16 mss_all;      /* tcp-mss all-tcp mss, 0 = off */
	__u32 ike_rate_pps; /* IKE packets per second per source, 0 = unlimited */
	__u32 ike_burst;
	__u32 to_tcp_init;  /* idle timeouts in seconds */
	__u32 to_tcp_est;
	__u32 to_tcp_close;
	__u32 to_udp;
	__u32 to_icmp;
	__u32 to_other;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} config_map SEC(".maps");

/* zone_pair: policies of (gen, from, to) occupy global indexes
 * [base, base+count) of the policies array; bit i of a policy bitset is
 * policy base+i. Index: gen*MAX_ZONES*MAX_ZONES + from*MAX_ZONES + to. */
struct zone_pair {
	__u32 base;
	__u16 count;
	__u16 present;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NUM_GENERATIONS * MAX_ZONES * MAX_ZONES);
	__type(key, __u32);
	__type(value, struct zone_pair);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} zone_pairs SEC(".maps");

/* LPM keys carry a 32-bit big-endian scope (gen, direction, zone pair)
 * before the address, so every zone pair and generation has its own trie
 * region; prefixlen counts the 32 scope bits. */
struct addr4_lpm_key {
	__u32 prefixlen;
	__u32 scope;
	__u8 addr[4];
};

struct addr6_lpm_key {
	__u32 prefixlen;
	__u32 scope;
	__u8 addr[16];
};

/* app_lpm_key: scope, IP protocol, port (TCP/UDP destination port, or
 * ICMP type<<8|code) in network order. */
struct app_lpm_key {
	__u32 prefixlen;
	__u32 scope;
	__u8 proto;
	__u8 port[2];
};

struct lpm_val {
	__u32 set; /* id in policy_sets; 0 = empty set */
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 262144);
	__type(key, struct addr4_lpm_key);
	__type(value, struct lpm_val);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} addr4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 262144);
	__type(key, struct addr6_lpm_key);
	__type(value, struct lpm_val);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} addr6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__type(key, struct app_lpm_key);
	__type(value, struct lpm_val);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} apps SEC(".maps");

/* policy_set: bitset of zone-pair-local policy positions. summary bit w is
 * set iff word w is non-zero, so intersections skip empty words. */
struct policy_set {
	__u64 summary[SUMMARY_WORDS];
	__u64 w[POLICY_WORDS];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 131072);
	__type(key, __u32);
	__type(value, struct policy_set);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} policy_sets SEC(".maps");

enum policy_flags {
	POL_COUNT = 1,
	POL_LOG = 2,
};

struct policy {
	__u8 action; /* enum policy_action */
	__u8 flags;
	__u16 pad;
	__u32 id;    /* position of the policy in its zone pair */
	__u8 name[32];
	__u16 from_zone;
	__u16 to_zone;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NUM_GENERATIONS * MAX_POLICIES);
	__type(key, __u32);
	__type(value, struct policy);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} policies SEC(".maps");

/* sess_key: one entry serves both directions: (a, pa) is the lower of the
 * two endpoints (address, then port). */
struct sess_key {
	__u32 a[4];
	__u32 b[4];
	__u16 pa;
	__u16 pb;
	__u8 proto;
	__u8 family;
	__u16 pad;
};

enum sess_flags {
	SF_INIT_IS_A = 1, /* the initiator is endpoint a of the key */
	SF_TUNNEL = 2,    /* one side of the session is a tunnel interface */
	SF_REDIRECT = 4,
	SF_SELF = 8,      /* opened by the router itself (tc egress on a zone interface) */
};

enum tcp_state {
	TS_NONE = 0,
	TS_SYN_SENT = 1,
	TS_SYN_RECV = 2,
	TS_ESTABLISHED = 3,
	TS_CLOSING = 4,
};

struct sess_val {
	__u64 last_ns;   /* CLOCK_MONOTONIC of the last packet */
	__u64 pkts[2];   /* [0] initiator→responder, [1] reply */
	__u64 bytes[2];
	__u32 gen;       /* policy generation the session was last checked against */
	__u32 policy;    /* global policy index (gen-relative), ~0 = default policy */
	__u16 from_zone;
	__u16 to_zone;
	__u16 app_port;  /* port used for application matching */
	__u8 tcp_state;
	__u8 flags;
	__u32 created_s; /* CLOCK_MONOTONIC seconds at creation */
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 262144);
	__type(key, struct sess_key);
	__type(value, struct sess_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sessions SEC(".maps");

/* flow_cache: a per-CPU direct-mapped cache of session hits, slot =
 * hash of the directed 5-tuple. xdp_zone fills a slot on a session hit of
 * an untagged, unfragmented IPv4 TCP (established, no SYN/FIN/RST) or UDP
 * packet without IP options, and serves later packets of that direction
 * from it without the session lookup. An entry serves hits only while
 *   - flow_cache_ctl.epoch is unchanged (userspace writes a new value after it
 *     deletes sessions or reprograms tables; BPF adds one when a policy
 *     re-check closes a session),
 *   - fewer than flow_cache_ctl.insert_limit sessions were created since the fill
 *     (an LRU table cannot have evicted the session yet),
 *   - fewer than window_jiffies (FC_WINDOW_JIFFIES) passed since the fill (the
 *     fill went through the full path: expiry check, TCP state, route
 *     lookup for redirects). jiffies64 is inlined by the JIT; a clock
 *     helper call would cost more than the rest of a hit.
 * Hits are counted in pkts/bytes and added to the session, with last_ns at
 * least fill_ns, when the slot is refilled or retired (userspace views add
 * the pending counts). */
#define FC_SLOTS 4096
#define FC_WINDOW_JIFFIES 25                  /* 250 ms at HZ 100, less at higher HZ */
#define FC_WINDOW_NS (250ULL * 1000000ULL)    /* upper bound of the window for any HZ */

struct fc_entry {
	__u32 saddr;       /* packet source, network order */
	__u32 daddr;
	__u32 ports;       /* TCP/UDP source and destination port as on the wire */
	__u32 ifindex;     /* ingress; 0 = empty */
	__u8 proto;
	__u8 live;         /* may serve hits (else only pending counts remain) */
	__u8 dir;          /* DIR_ORIG / DIR_REPLY of this direction */
	__u8 redirect;     /* forward to out_ifindex with the MACs below */
	__u16 rx_zone;     /* zone of the ingress interface */
	__u16 tx_zone;     /* zone the packet leaves to */
	__u32 out_ifindex;
	__u8 dmac[6];
	__u8 smac[6];
	__u64 epoch;       /* flow_cache_ctl.epoch at the fill */
	__u64 inserts;     /* flow_cache_ctl.inserts at the fill */
	__u64 fill_ns;     /* CLOCK_MONOTONIC (coarse) of the fill */
	__u64 fill_jiffies;
	__u64 pkts;        /* hits not yet added to the session */
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FC_SLOTS);
	__type(key, __u32);
	__type(value, struct fc_entry);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} flow_cache SEC(".maps");

struct fc_state {
	__u64 epoch;          /* changes whenever cached verdicts may be wrong */
	__u64 inserts;        /* sessions created (BPF, atomic) */
	__u64 insert_limit;   /* 0 = cache off */
	__u64 window_jiffies; /* FC_WINDOW_JIFFIES; only tests write more */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fc_state);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} flow_cache_ctl SEC(".maps");

/* frag_key: identifies the datagram of an IP fragment. */
struct frag_key {
	__u32 saddr[4];
	__u32 daddr[4];
	__u32 id;
	__u8 proto;
	__u8 family;
	__u16 pad;
};

struct frag_val {
	__u64 last_ns;
	__u32 verdict; /* enum verdict of the first fragment */
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct frag_key);
	__type(value, struct frag_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} frags SEC(".maps");

/* tcp_mss is part of config; esp_spis: inbound SPIs of installed SAs
 * (network order) → if_id of the SA. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} esp_spis SEC(".maps");

/* ike_limit: per-source GCRA state: theoretical arrival time in ns. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct local_key);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ike_limit SEC(".maps");

/* tunnel_state: an st0 interface (key: ifindex) whose tunnel is started by
 * traffic (establish-tunnels on-traffic). The control plane writes up, unit
 * and interval_ms (0 = 1000) and keeps up = 1 while an SA pair is
 * installed; tc_st0_egress stamps last_event_ns. Interfaces without an
 * entry raise no events. */
struct tunnel_state {
	__u32 up;
	__u32 unit;           /* st0 unit number, copied into events */
	__u32 interval_ms;    /* at most one event per interval (per CPU on races) */
	__u32 pad;
	__u64 last_event_ns;  /* CLOCK_MONOTONIC of the last event, 0 = none */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct tunnel_state);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tunnels SEC(".maps");

/* tunnel_demand: ring-buffer event "traffic routed into a down tunnel",
 * with the packet that raised it (addresses zero when it was not IP). */
struct tunnel_event {
	__u32 ifindex;
	__u32 unit;
	__u32 saddr[4];
	__u32 daddr[4];
	__u16 sport;
	__u16 dport;
	__u8 family;
	__u8 proto;
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tunnel_events SEC(".maps");

/* keeps struct tunnel_event in BTF for bpf2go (ring buffers have no value type) */
const struct tunnel_event *tunnel_event_type __attribute__((unused));

struct zone_stats {
	__u64 rx_pkts;
	__u64 rx_bytes;
	__u64 host_pkts;
	__u64 drops;
	__u64 tx_pkts; /* packets whose to-zone is this zone */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_ZONES);
	__type(key, __u32);
	__type(value, struct zone_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} zone_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NUM_GENERATIONS * MAX_POLICIES);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} policy_hits SEC(".maps");

#endif
