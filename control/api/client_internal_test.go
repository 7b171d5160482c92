package api

import (
	"net"
	"os"
	"syscall"
	"testing"
)

func TestDialErrorMessages(t *testing.T) {
	const path = "/run/bpfvpn/bpfvpn.sock"
	op := func(errno syscall.Errno) error {
		return &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", errno)}
	}
	cases := map[syscall.Errno]string{
		syscall.ENOENT:       "bpfvpn daemon is not running (no socket at /run/bpfvpn/bpfvpn.sock)",
		syscall.ECONNREFUSED: "bpfvpn daemon is not running (stale socket at /run/bpfvpn/bpfvpn.sock)",
		syscall.EACCES:       "permission denied: /run/bpfvpn/bpfvpn.sock (bpfvpn commands need root)",
		syscall.EPERM:        "permission denied: /run/bpfvpn/bpfvpn.sock (bpfvpn commands need root)",
		syscall.ENOTSOCK:     "connect to bpfvpn daemon at /run/bpfvpn/bpfvpn.sock: dial unix: connect: socket operation on non-socket",
	}
	for errno, want := range cases {
		if got := dialError(path, op(errno)).Error(); got != want {
			t.Errorf("%v: %q, want %q", errno, got, want)
		}
	}
}
