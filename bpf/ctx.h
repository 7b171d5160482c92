/* Access to packet data of an XDP or tc context. The xdp argument is a
 * compile-time constant of each hook, so the other branch disappears. */
#ifndef BPFVPN_CTX_H
#define BPFVPN_CTX_H

#include "common.h"

static __always_inline void load_ptrs(void *ctx, int xdp, void **data, void **data_end)
{
	if (xdp) {
		struct xdp_md *x = ctx;
		*data = (void *)(long)x->data;
		*data_end = (void *)(long)x->data_end;
	} else {
		struct __sk_buff *s = ctx;
		*data = (void *)(long)s->data;
		*data_end = (void *)(long)s->data_end;
	}
}

static __always_inline __u32 ctx_len(void *ctx, int xdp)
{
	if (xdp)
		return bpf_xdp_get_buff_len(ctx);
	return ((struct __sk_buff *)ctx)->len;
}

/* set_len truncates the packet to want bytes. */
static __always_inline int set_len(void *ctx, int xdp, __u32 want)
{
	__u32 cur = ctx_len(ctx, xdp);
	if (xdp)
		return bpf_xdp_adjust_tail(ctx, (int)want - (int)cur) ? -1 : 0;
	if (bpf_skb_change_tail(ctx, want, 0))
		return -1;
	return bpf_skb_pull_data(ctx, want) ? -1 : 0;
}

/* grow_head adds n bytes in front of the packet. */
static __always_inline int grow_head(void *ctx, int xdp, __u32 n)
{
	if (xdp)
		return bpf_xdp_adjust_head(ctx, -(int)n) ? -1 : 0;
	if (bpf_skb_change_head(ctx, n, 0))
		return -1;
	return bpf_skb_pull_data(ctx, ((struct __sk_buff *)ctx)->len) ? -1 : 0;
}

#endif
