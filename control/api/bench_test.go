package api_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bpfvpn/bpfvpn/control/api"
	"github.com/bpfvpn/bpfvpn/control/ops"
	"github.com/bpfvpn/bpfvpn/control/ops/opstest"
)

// bigPolicies returns a fake with n policies spread over 10 zone pairs, the
// size of the commit-latency benchmark's configuration.
func bigPolicies(n int) *opstest.Provider {
	p := opstest.Reference()
	pols := make([]ops.Policy, n)
	for i := range pols {
		pols[i] = ops.Policy{Name: fmt.Sprintf("policy-%06d", i), FromZone: fmt.Sprintf("zone-%d", i%10), ToZone: "vpn",
			Index: uint32(i + 4), Sequence: uint32(i/10 + 1), Enabled: true, SourceAddresses: []string{"any"},
			DestinationAddresses: []string{"any"}, Applications: []string{"junos-https"}, Action: "permit", Hits: uint64(i * 7)}
	}
	p.State.Policies = ops.Policies{DefaultPolicy: "deny-all", Policies: pols}
	return p
}

// BenchmarkHitCount100k compares rendering `show security policies
// hit-count` for 100,000 policies in process with the same command through
// the control socket (decode, dispatch, encode, transfer, decode).
func BenchmarkHitCount100k(b *testing.B) {
	p := bigPolicies(100_000)
	words := strings.Fields("show security policies hit-count")
	ctx := context.Background()
	b.Run("render", func(b *testing.B) {
		for b.Loop() {
			if _, err := ops.Run(ctx, p, words, false); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("socket", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "bench.sock")
		ln, err := api.Listen(path)
		if err != nil {
			b.Fatal(err)
		}
		sctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- api.NewServer(p, nil).Serve(sctx, ln) }()
		defer func() { cancel(); <-done }()
		c := api.NewClient(path)
		var size int
		for b.Loop() {
			out, err := c.Op(ctx, words, false)
			if err != nil {
				b.Fatal(err)
			}
			size = len(out)
		}
		b.ReportMetric(float64(size), "bytes/op-output")
	})
}
