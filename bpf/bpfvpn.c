// SPDX-License-Identifier: GPL-2.0
/* The bpfvpn data plane: one object, one program per hook, shared maps. */
#include "prog_xdp_zone.h"
#include "prog_tc_st0.h"
#include "prog_tc_zone.h"

/* btf_types carries the enums shared with Go into BTF (bpf2go -type);
 * the map is never used by a program. */
struct btf_types {
	enum iface_flags a;
	enum config_flags b;
	enum policy_action c;
	enum sess_flags d;
	enum tcp_state e;
	enum counter_id f;
	enum hi_bit g;
	enum verdict h;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct btf_types);
} btf_types SEC(".maps");

char _license[] SEC("license") = "GPL";
