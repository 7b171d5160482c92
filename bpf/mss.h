/* TCP MSS clamping of SYN and SYN-ACK segments. The option walk is bounded
 * (40 option bytes at most) and accepts any layout of NOP, EOL, timestamps,
 * SACK and window-scale options. */
#ifndef BPFVPN_MSS_H
#define BPFVPN_MSS_H

#include "parse.h"
#include "csum.h"
#include "counters.h"

#define TCP_OPT_EOL 0
#define TCP_OPT_NOP 1
#define TCP_OPT_MSS 2
#define TCP_MAX_OPT 40

/* mss_find returns the offset of the MSS option's kind byte from the start
 * of the packet, or -1. The walk visits option bytes by constant position i
 * and keeps the start of the next option in next: the verifier sees constant
 * packet offsets and few distinct states per position. */
static __always_inline int mss_find(void *data, void *data_end, struct pkt *p)
{
	__u32 l4 = p->l4_off & OFF_MASK;
	__u32 optlen = (p->doff - 20) & 0x3f;
	__u8 *opts = data + l4 + 20;
	__u32 next = 0;

	for (__u32 i = 0; i < TCP_MAX_OPT; i++) {
		if (i >= optlen)
			break;
		if (i != next)
			continue;
		if ((void *)(opts + i + 1) > data_end)
			return -1;
		__u8 kind = opts[i];
		if (kind == TCP_OPT_EOL)
			return -1;
		if (kind == TCP_OPT_NOP) {
			next = i + 1;
			continue;
		}
		if ((void *)(opts + i + 2) > data_end)
			return -1;
		__u8 len = opts[i + 1];
		if (len < 2)
			return -1;
		if (kind == TCP_OPT_MSS) {
			if (len != 4 || i + 4 > optlen)
				return -1;
			if ((void *)(opts + i + 4) > data_end)
				return -1;
			return l4 + 20 + i;
		}
		next = i + len;
	}
	return -1;
}

/* tcp_csum_partial reports whether a TCP checksum field holds only the
 * folded pseudo-header sum: the state of a CHECKSUM_PARTIAL skb (a veth peer
 * with tx checksum offload hands XDP such frames), whose checksum the stack
 * or the device completes later over the segment as it then is. A complete
 * checksum equals that value once in 65536 segments. */
static __always_inline int tcp_csum_partial(struct pkt *p, __u16 check)
{
	__u64 c = 0;
	int words = p->family == AF_INET ? 1 : 4;
#pragma unroll
	for (int i = 0; i < 4; i++) {
		if (i < words) {
			c += (p->saddr[i] & 0xffff) + (p->saddr[i] >> 16);
			c += (p->daddr[i] & 0xffff) + (p->daddr[i] >> 16);
		}
	}
	__u16 l4len = p->l3_len - (p->l4_off - p->l3_off);
	c += bpf_htons(IPPROTO_TCP);
	c += bpf_htons(l4len);
	return check == csum_fold(c);
}

/* mss_clamp lowers the MSS option to mss (never raises it). xdp selects the
 * checksum method: XDP updates a complete checksum in place and leaves a
 * partial one (tcp_csum_partial) alone, as the later completion covers the
 * new option; tc uses bpf_l4_csum_replace, which makes the same
 * distinction from the skb's state. Returns 1 when the segment was
 * changed. Packet pointers are invalid afterwards. */
static __always_inline int mss_clamp(void *ctx, int xdp, void *data, void *data_end, struct pkt *p,
				     __u16 mss)
{
	int off = mss_find(data, data_end, p);
	if (off < 0)
		return 0;
	__u8 *opt = data + (off & OFF_MASK);
	if ((void *)(opt + 4) > data_end)
		return 0;
	__u16 cur = ((__u16)opt[2] << 8) | opt[3];
	if (cur <= mss)
		return 0;

	__u32 l4 = p->l4_off & OFF_MASK;
	struct tcphdr *th = data + l4;
	if ((void *)(th + 1) > data_end)
		return 0;
	/* Raw memory-order words; an option at an odd offset straddles two
	 * checksum words, which equals the byte-swapped value. */
	__u16 oldw = *(__u16 *)(opt + 2);
	opt[2] = mss >> 8;
	opt[3] = mss & 0xff;
	__u16 neww = *(__u16 *)(opt + 2);
	if ((off - l4) & 1) {
		oldw = bswap16(oldw);
		neww = bswap16(neww);
	}
	if (xdp) {
		if (!tcp_csum_partial(p, th->check))
			csum_replace16(&th->check, oldw, neww);
	} else {
		bpf_l4_csum_replace(ctx, l4 + __builtin_offsetof(struct tcphdr, check), oldw, neww, 2);
	}
	count(CNT_MSS_CLAMPED);
	return 1;
}

#endif
