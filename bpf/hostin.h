/* host-inbound-traffic: which packets addressed to the router itself pass. */
#ifndef BPFVPN_HOSTIN_H
#define BPFVPN_HOSTIN_H

#include "parse.h"
#include "counters.h"

/* Bits of the host-inbound masks (zone_info.hi_allow, iface_info.hi_allow);
 * maps/hostinbound.go names them. system-services: */
enum hi_bit {
	HI_IKE = 0,        /* UDP 500, 4500 */
	HI_PING = 1,       /* ICMP / ICMPv6 echo request */
	HI_SSH = 2,        /* TCP 22 */
	HI_HTTPS = 3,      /* TCP 443 */
	HI_HTTP = 4,       /* TCP 80 */
	HI_TELNET = 5,     /* TCP 23 */
	HI_DNS = 6,        /* UDP/TCP 53 */
	HI_NTP = 7,        /* UDP 123 */
	HI_SNMP = 8,       /* UDP 161 */
	HI_TRACEROUTE = 9, /* UDP 33434-33523 */
	HI_DHCP = 10,      /* UDP 67, 68 */
	HI_DHCPV6 = 11,    /* UDP 546, 547 */
	HI_NETCONF = 12,   /* TCP 830 */
	HI_TFTP = 13,      /* UDP 69 */
	HI_FTP = 14,       /* TCP 21 */
	HI_SYSLOG = 15,    /* UDP 514 */
	/* protocols: */
	HI_BGP = 32,       /* TCP 179 either side */
	HI_OSPF = 33,      /* IP protocol 89 over IPv4 */
	HI_OSPF3 = 34,     /* IP protocol 89 over IPv6 */
	HI_BFD = 35,       /* UDP 3784, 3785, 4784 */
	HI_RIP = 36,       /* UDP 520 */
	HI_RIPNG = 37,     /* UDP 521 */
	HI_VRRP = 38,      /* IP protocol 112 */
	HI_PIM = 39,       /* IP protocol 103 */
	HI_LDP = 40,       /* TCP/UDP 646 */
	HI_RSVP = 41,      /* IP protocol 46 */
	HI_IGMP = 42,      /* IP protocol 2 */
	HI_NONE = 63,      /* matches no service */
};

#define PORT_EITHER(p, x) ((p)->dport == (x) || (p)->sport == (x))

/* hi_classify names the service a host-bound packet belongs to. */
static __always_inline int hi_classify(struct pkt *p)
{
	switch (p->proto) {
	case IPPROTO_TCP:
		switch (p->dport) {
		case 22: return HI_SSH;
		case 443: return HI_HTTPS;
		case 80: return HI_HTTP;
		case 23: return HI_TELNET;
		case 53: return HI_DNS;
		case 830: return HI_NETCONF;
		case 21: return HI_FTP;
		case 646: return HI_LDP;
		}
		if (PORT_EITHER(p, 179))
			return HI_BGP;
		return HI_NONE;
	case IPPROTO_UDP:
		switch (p->dport) {
		case 500:
		case 4500: return HI_IKE;
		case 53: return HI_DNS;
		case 123: return HI_NTP;
		case 161: return HI_SNMP;
		case 67:
		case 68: return HI_DHCP;
		case 546:
		case 547: return HI_DHCPV6;
		case 69: return HI_TFTP;
		case 514: return HI_SYSLOG;
		case 3784:
		case 3785:
		case 4784: return HI_BFD;
		case 520: return HI_RIP;
		case 521: return HI_RIPNG;
		case 646: return HI_LDP;
		}
		if (p->dport >= 33434 && p->dport <= 33523)
			return HI_TRACEROUTE;
		return HI_NONE;
	case IPPROTO_ICMP:
		return p->icmp_type == ICMP_ECHO ? HI_PING : HI_NONE;
	case IPPROTO_ICMPV6:
		return p->icmp_type == ICMPV6_ECHO_REQUEST ? HI_PING : HI_NONE;
	case 89:
		return p->family == AF_INET ? HI_OSPF : HI_OSPF3;
	case 112: return HI_VRRP;
	case 103: return HI_PIM;
	case 46: return HI_RSVP;
	case 2: return HI_IGMP;
	}
	return HI_NONE;
}

static __always_inline int is_nd(struct pkt *p)
{
	return p->proto == IPPROTO_ICMPV6 && p->icmp_type >= 133 && p->icmp_type <= 137;
}

/* ike_allow applies the per-source GCRA rate limit (rate pps, burst). */
static __always_inline int ike_allow(struct pkt *p, struct config *cfg, __u64 now)
{
	if (!cfg->ike_rate_pps)
		return 1;
	struct local_key k = { .family = p->family };
	__builtin_memcpy(k.addr, p->saddr, 16);
	__u64 interval = 1000000000ULL / cfg->ike_rate_pps;
	__u64 burst = cfg->ike_burst ? cfg->ike_burst : 1;
	__u64 *tat = bpf_map_lookup_elem(&ike_limit, &k);
	if (!tat) {
		__u64 t = now + interval;
		bpf_map_update_elem(&ike_limit, &k, &t, BPF_ANY);
		return 1;
	}
	__u64 t = *tat > now ? *tat : now;
	if (t - now >= burst * interval)
		return 0;
	*tat = t + interval;
	return 1;
}

static __always_inline int spi_known(__u32 spi)
{
	return bpf_map_lookup_elem(&esp_spis, &spi) != NULL;
}

/* host_inbound decides for a packet addressed to the router. */
static __always_inline int host_inbound(struct pkt *p, struct iface_info *ifi, struct config *cfg,
					__u64 now)
{
	if (is_nd(p)) {
		count(CNT_PASS_ND);
		return V_PASS;
	}
	if (p->proto == IPPROTO_ESP) {
		if (spi_known(p->spi)) {
			count(CNT_PASS_ESP);
			return V_PASS;
		}
		count(CNT_DROP_ESP_SPI);
		return V_DROP;
	}
	if (p->proto == IPPROTO_UDP && p->dport == 4500 && p->spi != 0 &&
	    p->l3_len > (p->l4_off - p->l3_off) + 8 + 1) {
		/* ESP-in-UDP (RFC 3948); keepalives are one 0xff byte. */
		if (spi_known(p->spi)) {
			count(CNT_PASS_ESP);
			return V_PASS;
		}
		count(CNT_DROP_ESP_SPI);
		return V_DROP;
	}
	if (is_icmp_error(p)) {
		count(CNT_PASS_ICMP_ERROR);
		return V_PASS;
	}

	__u64 allow;
	if (ifi->flags & IF_HI_OVERRIDE) {
		allow = ifi->hi_allow;
	} else {
		__u32 z = ifi->zone & (MAX_ZONES - 1);
		struct zone_info *zi = bpf_map_lookup_elem(&zones, &z);
		allow = zi ? zi->hi_allow : 0;
	}
	int bit = hi_classify(p);
	if (bit == HI_NONE || !(allow & (1ULL << (bit & 63)))) {
		count(CNT_DROP_HOST_INBOUND);
		return V_DROP;
	}
	if (bit == HI_IKE && !ike_allow(p, cfg, now)) {
		count(CNT_DROP_IKE_RATE);
		return V_DROP;
	}
	count(CNT_PASS_HOST);
	struct zone_stats *zs = zone_stats_of(ifi->zone);
	if (zs)
		zs->host_pkts++;
	return V_PASS;
}

static __always_inline int is_multicast(struct pkt *p)
{
	if (p->family == AF_INET) {
		__u32 d = bpf_ntohl(p->daddr[0]);
		return (d >> 28) == 0xe || d == 0xffffffff;
	}
	return (bpf_ntohl(p->daddr[0]) >> 24) == 0xff;
}

static __always_inline int is_local(struct pkt *p)
{
	struct local_key k = { .family = p->family };
	__builtin_memcpy(k.addr, p->daddr, 16);
	return bpf_map_lookup_elem(&local_addrs, &k) != NULL;
}

#endif
