# bpfvpn build and test entry points. `make test` is the one test command.
GO      ?= go
BIN     ?= bin/bpfvpn
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: all build generate vet unit vmtest test demo bench bench-config interop e2e clean bench-ike bench-ikev1 interop-ikev1

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

# Tests named TestVM… inside qemu on Debian's 6.1 and 6.12 kernels.
vmtest:
	$(GO) run ./vm/cmd/vmrun -kernel all -tests ./...

test: vet unit vmtest

# The two-site lab of the reference (filled by the lab issue).
demo: build
	./$(BIN) lab up

bench:
	$(GO) run ./bench/cmd/bench

# Parse + validate of 100,000 policies and 200,000 address-book entries
# against a read+split baseline (results: bench/RESULTS.md, config section).
bench-config:
	$(GO) build -o bin/configparse ./bench/configparse
	./bin/configparse -runs 5

# IKE interoperability with strongSwan charon (root; charon runs in a private
# network namespace with kernel-libipsec, so CHILD SAs work without kernel ESP).
interop:
	$(GO) test -count=1 -v -run '^(TestInterop|TestVMInterop)' ./ike/interop/

# IKEv2 responder benchmark: bpfvpn vs strongSwan charon, same generator.
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
.PHONY: bench-vmboot
bench-vmboot:
	$(GO) run ./bench/vmboot -n 5 -kernel all
