package loader

// The bpf2go line below is part of the sources digest (sources.go): changing
// the flags or the exported types makes the committed objects stale.

//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -target bpfel -no-global-types -go-package loader -output-stem bpfvpn -type iface_key -type iface_info -type iface_flags -type local_key -type zone_info -type config -type config_flags -type zone_pair -type addr4_lpm_key -type addr6_lpm_key -type app_lpm_key -type lpm_val -type policy_set -type policy -type policy_action -type sess_key -type sess_val -type sess_flags -type tcp_state -type frag_key -type frag_val -type zone_stats -type counter_id -type hi_bit -type tunnel_state -type tunnel_event -type fc_entry -type fc_state Bpfvpn ../bpf/bpfvpn.c -- -O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -target bpfel -no-global-types -go-package loader -output-stem xfrmmd -type nexthop_key XfrmMD ../bpf/xfrm_md.c -- -O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu
//go:generate go run ./internal/gensum
