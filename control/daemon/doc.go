// Package daemon is the bpfvpn gateway: it loads the configuration, applies
// it to every part of the gateway (kernel interfaces, addresses and routes;
// the eBPF data plane; one IKE session per VPN) and keeps it applied, answers
// operational commands and commits over the control socket, and exports
// metrics.
//
// A configuration is applied by Components in a fixed order (kernel, data
// plane, IKE). A commit is all-or-nothing: every component first checks the
// new configuration without changing anything; then each applies it in
// order, and if one fails, every component that already applied it (and the
// failed one) is given the previous configuration again, in reverse order.
//
// Restart safety: stopping the daemon leaves kernel objects, pinned BPF
// programs and maps, and installed SAs in place; a new daemon adopts them.
package daemon
