/* Internet checksum helpers (RFC 1071, incremental update per RFC 1624). */
#ifndef BPFVPN_CSUM_H
#define BPFVPN_CSUM_H

#include "common.h"

static __always_inline __u16 csum_fold(__u64 c)
{
	c = (c & 0xffffffff) + (c >> 32);
	c = (c & 0xffff) + (c >> 16);
	c = (c & 0xffff) + (c >> 16);
	c = (c & 0xffff) + (c >> 16);
	return (__u16)c;
}

/* csum_replace16 updates the checksum at *sum for a 16-bit word changing
 * from old to new. All three are raw memory-order values of an even-aligned
 * word. */
static __always_inline void csum_replace16(__u16 *sum, __u16 old, __u16 new)
{
	__u64 c = (__u16)~*sum;
	c += (__u16)~old;
	c += new;
	*sum = ~csum_fold(c);
}

static __always_inline __u16 bswap16(__u16 v)
{
	return (v >> 8) | (v << 8);
}

/* sum of n 16-bit words starting at p (n constant, p checked by caller). */
#define CSUM_WORDS(acc, p, n)                                      \
	do {                                                       \
		const __u16 *_w = (const __u16 *)(p);              \
		_Pragma("unroll") for (int _i = 0; _i < (n); _i++) \
			(acc) += _w[_i];                           \
	} while (0)

#endif
