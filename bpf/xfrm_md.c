// SPDX-License-Identifier: GPL-2.0
/* The shared collect_md XFRM interface of multipoint st0 units (kernels
 * >= 6.2): tc egress on that interface picks the SA set (if_id) of a packet
 * by its next hop. A separate object: its kfunc does not exist on 6.1, where
 * it is not loaded and the control plane falls back to one XFRM interface
 * per tunnel. */
#include "common.h"

/* bpf_xfrm_info mirrors the kernel's argument of bpf_skb_set_xfrm_info. */
struct bpf_xfrm_info {
	__u32 if_id;
	int link;
};

extern int bpf_skb_set_xfrm_info(struct __sk_buff *skb_ctx, const struct bpf_xfrm_info *from) __ksym;

/* nexthop_key: a next hop on the multipoint unit (AF_INET / AF_INET6,
 * address in network order, IPv4 in addr[0]). */
struct nexthop_key {
	__u32 family;
	__u32 addr[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct nexthop_key);
	__type(value, __u32); /* if_id of the tunnel's SAs and policies */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xfrm_nexthops SEC(".maps");

/* tc_xfrm_md_egress: the next hop is the gateway of the route the packet
 * takes out of this interface, or its destination for an on-link route. A
 * packet whose next hop has no tunnel is dropped. */
SEC("tc")
int tc_xfrm_md_egress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct bpf_fib_lookup fp = {};
	struct nexthop_key k = {};
	fp.ifindex = skb->ifindex;
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data;
		if ((void *)(ip + 1) > data_end)
			return TC_ACT_SHOT;
		fp.family = AF_INET;
		fp.ipv4_src = ip->saddr;
		fp.ipv4_dst = ip->daddr;
		fp.tot_len = bpf_ntohs(ip->tot_len);
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data;
		if ((void *)(ip6 + 1) > data_end)
			return TC_ACT_SHOT;
		fp.family = AF_INET6;
		__builtin_memcpy(fp.ipv6_src, &ip6->saddr, 16);
		__builtin_memcpy(fp.ipv6_dst, &ip6->daddr, 16);
		fp.tot_len = 40 + bpf_ntohs(ip6->payload_len);
	} else {
		return TC_ACT_SHOT;
	}
	int rc = bpf_fib_lookup(skb, &fp, sizeof(fp), BPF_FIB_LOOKUP_OUTPUT);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		return TC_ACT_SHOT;
	k.family = fp.family;
	if (fp.family == AF_INET)
		k.addr[0] = fp.ipv4_dst;
	else
		__builtin_memcpy(k.addr, fp.ipv6_dst, 16);
	__u32 *ifid = bpf_map_lookup_elem(&xfrm_nexthops, &k);
	if (!ifid)
		return TC_ACT_SHOT;
	struct bpf_xfrm_info info = { .if_id = *ifid };
	if (bpf_skb_set_xfrm_info(skb, &info))
		return TC_ACT_SHOT;
	/* TC_ACT_UNSPEC (-1, TCX_NEXT for tcx): the data plane's own
	 * egress program (counters, on-traffic demand, MSS) runs after this
	 * one. */
	return TC_ACT_UNSPEC;
}

char LICENSE[] SEC("license") = "GPL";
