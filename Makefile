# bpfvpn build and test entry points. `make test` is the one test command.
GO      ?= go
BIN     ?= bin/bpfvpn
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: all build generate vet unit vmtest test demo e2e interop clean \
	bench bench-vmboot bench-config bench-dataplane bench-ike bench-ikev1 bench-reconcile \
	bench-gateway interop-ikev1 bench-esp bench-teardown

all: build

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/bpfvpn

# Regenerates the bpf2go bindings in loader/ from bpf/*.c (needs clang).
generate:
	$(GO) generate ./loader/...

vet:
	$(GO) vet ./...

# Unit, BPF_PROG_TEST_RUN and network-namespace tests on the running kernel
# (the BPF and namespace tests need root and skip with a reason otherwise).
unit:
	$(GO) test -count=1 ./...

# Tests named TestVM… inside qemu on Debian's 6.1 and 6.12 kernels, both
# kernels booted at once (each TCG guest keeps one host core busy; on this
# 2-core machine that halves the tier: 6.3 min against 13.2 min one after the
# other). VMTEST_FLAGS=-parallel=1 boots them one at a time.
VMTEST_FLAGS ?= -parallel=2
vmtest:
	$(GO) run ./vm/cmd/vmrun -kernel all $(VMTEST_FLAGS) -tests ./...

test: vet unit vmtest

# The two-site lab of the reference: both gateways as bpfvpn daemons, the
# tunnel, a ping Host1 → Host2 and the verification commands, then cleanup.
# Runs inside the VM when this kernel cannot create an xfrm interface or has
# no ESP (as on the build machine), directly otherwise.
DEMO_KERNEL ?= 6.12
demo: build
	@if unshare -n ip link add st0probe type xfrm if_id 1 2>/dev/null && test -d /sys/module/esp4; then \
		./$(BIN) lab up --down; \
	else \
		echo "this kernel lacks ESP or xfrm interfaces: running the lab in a $(DEMO_KERNEL) VM"; \
		$(GO) run ./vm/cmd/vmrun -kernel $(DEMO_KERNEL) -- ./$(BIN) lab up --down; \
	fi

# End-to-end tests of the gateway (the two-site lab with IKEv1 and IKEv2,
# commits, kill -9 restart) on both VM kernels; part of `make test` (vmtest).
e2e:
	$(GO) run ./vm/cmd/vmrun -kernel all -tests ./control/daemon/...

# Every benchmark; each writes the rows it measures into bench/RESULTS.md
# or prints them with the command that made them.
bench: bench-vmboot bench-config bench-dataplane bench-ike bench-ikev1 bench-reconcile bench-gateway bench-esp

# Parse + validate of 100,000 policies and 200,000 address-book entries
# against a read+split baseline (results: bench/RESULTS.md, config section).
bench-config:
	$(GO) build -o bin/configparse ./bench/configparse
	./bin/configparse -runs 5

# ESP forwarding overhead: TCP throughput Host1 → Host2 through the lab's
# tunnel with bpfvpn's programs attached vs detached, alternating, in one VM
# run (results: bench/RESULTS.md, gateway lab section).
ESP_KERNEL ?= 6.12
ESP_ROUNDS ?= 10
ESP_SECONDS ?= 3
bench-esp:
	$(GO) build -o bin/espbench ./bench/esp
	$(GO) run ./vm/cmd/vmrun -kernel $(ESP_KERNEL) -- ./bin/espbench -rounds $(ESP_ROUNDS) -seconds $(ESP_SECONDS)

# IKE interoperability with strongSwan charon (root; charon runs in a private
# network namespace with kernel-libipsec, so CHILD SAs work without kernel ESP).
interop:
	$(GO) test -count=1 -v -run '^TestInterop' ./ike/interop/ ./ike/ikev1/
	$(GO) run ./vm/cmd/vmrun -kernel all -run '^TestVMInterop' -tests ./ike/...

# IKEv2 responder benchmark: bpfvpn vs strongSwan charon, same generator
# (root). Ends with one VERDICT line per key-exchange group for the issue-5
# targets (>= 2x charon; >= 5,000 IKE SAs/s with X25519).
bench-ike:
	$(GO) run ./bench/ike -out bench/ike/last-run.md

# IKEv1 interoperability with strongSwan charon on the host (root): Main Mode,
# Quick Mode keys compared with charon's, full CHILD SAs through kernel-libipsec.
interop-ikev1:
	$(GO) test -count=1 -v -run '^(TestInterop|TestVMInterop)' ./ike/ikev1/

# IKEv1 Main Mode + Quick Mode setups/s: bpfvpn's responder vs charon, same
# generator, same run (root; results: bench/RESULTS.md, IKEv1 section).
bench-ikev1:
	$(GO) run ./bench/ikev1 -suite all -n 3000 -c 32 -out bench/ikev1/last-run.md

clean:
	rm -rf bin

# VM boot-to-command time (median of 5) for both kernels vs. the host.
bench-vmboot:
	$(GO) run ./bench/vmboot -n 5 -kernel all

# Data-plane benchmarks (root): BPF_PROG_TEST_RUN per-packet cost, SYN flood
# of the session table, forwarding pps against nftables. Rows go to bench/RESULTS.md.
bench-dataplane:
	$(GO) run ./bench/dataplane -what prog,hit,flood,fwd

# Kernel reconciliation benchmark on the running kernel (control/kernel).
bench-reconcile:
	$(GO) run ./bench/reconcile -routes 10000 -runs 5

# Removing TEARDOWN_TUNNELS tunnels one by one (control/kernel RemoveTunnel) in
# the VM: one Reconciler against a new one per removal (a dump each), and a
# commit's one Reconcile without them. Results: bench/RESULTS.md, topology
# section ("Removing tunnels").
TEARDOWN_TUNNELS ?= 1000
bench-teardown:
	$(GO) build -o bench/out/teardown ./bench/teardown
	$(GO) run ./vm/cmd/vmrun -kernel 6.12 -timeout 20m -- bench/out/teardown -tunnels $(TEARDOWN_TUNNELS)

# Commit latency of a one-policy change, reference SRX1 vs 100,000 policies
# (control/daemon; results: bench/RESULTS.md, gateway section).
bench-gateway:
	$(GO) run ./bench/gateway -policies 100000 -dp-policies 100000 -runs 11

# Issue 8 end to end (control/topology): BGP over st0 with BIRD, primary/backup
# VPNs, hub and spoke, 200 tunnels between two daemons; part of vmtest.
topology:
	$(GO) run ./vm/cmd/vmrun -kernel all -tests ./control/topology/...

# Tunnel scale: time to all-up and daemon memory (RSS) for TOPO_TUNNELS tunnels
# between two daemons in the VM, then the same tunnels with strongSwan's charon
# (kernel-netlink, if_id-bound xfrm interfaces) in the SRX2 role; two boots of
# the same kernel, one test binary each (a binary gets 10 minutes).
# Results: bench/RESULTS.md, topology section.
TOPO_TUNNELS ?= 1000
bench-topology:
	$(GO) run ./vm/cmd/vmrun -kernel 6.12 -mem 4G -env BPFVPN_SCALE_TUNNELS=$(TOPO_TUNNELS) \
		-run 'TestVMScaleTunnels$$' -tests ./control/topology/... | grep -E 'SCALE|--- |PASS|FAIL'
	$(GO) run ./vm/cmd/vmrun -kernel 6.12 -mem 4G -env BPFVPN_SCALE_TUNNELS=$(TOPO_TUNNELS) -env BPFVPN_SCALE_SWAN=1 \
		-run 'TestVMScaleStrongSwanPeer' -tests ./control/topology/... | grep -E 'SCALE|--- |PASS|FAIL'

