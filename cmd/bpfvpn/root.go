package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// exitError carries a process exit code through cobra's error return.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// withExitCode wraps err so that execute returns code instead of 1.
func withExitCode(code int, err error) error { return &exitError{code: code, err: err} }

// commandRegistrars add the command groups to the root command. Each command
// group lives in its own file and registers itself from init.
var commandRegistrars []func(root *cobra.Command)

func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "bpfvpn",
		Short: "Route-based IPsec VPN gateway for Linux with eBPF and the SRX configuration language",
		Long: `bpfvpn turns a Linux router into a route-based IPsec VPN gateway.
It reads Juniper SRX style configuration, negotiates IKEv1/IKEv2, programs
kernel XFRM (st0.N xfrm interfaces, SAs, policies, routes) and enforces zones
and stateful security policies with eBPF programs (XDP and tc).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	for _, register := range commandRegistrars {
		register(root)
	}
	return root
}

// execute runs the CLI with args and returns the process exit code.
func execute(args []string, stdout, stderr io.Writer) int {
	root := newRootCommand(stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintf(stderr, "bpfvpn: %v\n", ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(stderr, "bpfvpn: %v\n", err)
	return 1
}
