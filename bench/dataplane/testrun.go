package main

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// testRunAttr is the BPF_PROG_TEST_RUN part of union bpf_attr.
type testRunAttr struct {
	progFD      uint32
	retval      uint32
	dataSizeIn  uint32
	dataSizeOut uint32
	dataIn      uint64
	dataOut     uint64
	repeat      uint32
	duration    uint32
	ctxSizeIn   uint32
	ctxSizeOut  uint32
	ctxIn       uint64
	ctxOut      uint64
	flags       uint32
	cpu         uint32
	batchSize   uint32
	_           uint32
}

// testRun runs prog fd on data with an xdp_md context repeat times and
// returns the verdict and the kernel's mean duration per run in ns
// (cilium/ebpf's Benchmark takes no context, and the context names the
// ingress interface).
func testRun(fd int, data []byte, ctx *xdpMD, repeat uint32) (uint32, uint32, error) {
	out := make([]byte, len(data)+512)
	a := testRunAttr{
		progFD:      uint32(fd),
		dataSizeIn:  uint32(len(data)),
		dataSizeOut: uint32(len(out)),
		dataIn:      uint64(uintptr(unsafe.Pointer(&data[0]))),
		dataOut:     uint64(uintptr(unsafe.Pointer(&out[0]))),
		repeat:      repeat,
		ctxSizeIn:   uint32(unsafe.Sizeof(*ctx)),
		ctxIn:       uint64(uintptr(unsafe.Pointer(ctx))),
	}
	for {
		_, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_TEST_RUN, uintptr(unsafe.Pointer(&a)), unsafe.Sizeof(a))
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return 0, 0, fmt.Errorf("BPF_PROG_TEST_RUN: %w", errno)
		}
		return a.retval, a.duration, nil
	}
}
