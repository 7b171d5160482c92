/* Shared includes, limits and verdicts of the bpfvpn programs. */
#ifndef BPFVPN_COMMON_H
#define BPFVPN_COMMON_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

#define ETH_P_8021Q_ 0x8100

/* ICMP / ICMPv6 types (linux/icmp.h pulls in libc headers). */
#define ICMP_ECHOREPLY 0
#define ICMP_DEST_UNREACH 3
#define ICMP_ECHO 8
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12
#define ICMPV6_DEST_UNREACH 1
#define ICMPV6_ADM_PROHIBITED 1
#define ICMPV6_ECHO_REQUEST 128
#define ICMPV6_ECHO_REPLY 129
#define ETH_P_8021AD_ 0x88A8

/* Limits shared with the Go side (maps/limits.go mirrors them). */
#define MAX_ZONES 64            /* zone ids 1..63; 0 = no zone */
#define MAX_POLICIES 131072     /* policies per generation, all zone pairs; a power of two (mask) */
#define POLICY_WORDS 160        /* 64-bit words of a policy bitset: 10240 policies per zone pair */
#define SUMMARY_WORDS 3         /* one summary bit per bitset word */
#define NUM_GENERATIONS 2

/* BOUND forces var into [0, max) in a way the verifier sees and the
 * compiler cannot reorder or copy around (var must be a 64-bit lvalue). */
#define BOUND(var, max) \
	asm volatile("if %[v] < %[m] goto +1; %[v] = 0;" : [v] "+r"(var) : [m] "i"(max))

/* Verdict of the shared flow logic; each hook maps it to its return codes. */
enum verdict {
	V_PASS = 0,
	V_DROP = 1,
	V_TX = 2,       /* packet rewritten into an answer, send back out the ingress */
	V_REDIRECT = 3, /* forward to fwd_ifindex (MACs rewritten) */
};

/* Policy actions. */
enum policy_action {
	ACT_DENY = 0,
	ACT_PERMIT = 1,
	ACT_REJECT = 2,
};

#endif
