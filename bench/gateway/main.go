// Command gateway measures the latency of `bpfvpn commit` for a one-policy
// change, on the reference SRX1 configuration and on the same configuration
// grown to N security policies, in one run. The commit goes through the
// daemon's real path (parse and validate, diff against the active
// configuration, check and apply by every component, store, write-back);
// the components are no-ops, so the numbers are the control plane's own
// cost without the kernel and data-plane writes.
//
//	go run ./bench/gateway [-policies 100000] [-runs 5]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/bpfvpn/bpfvpn/control/config"
	"github.com/bpfvpn/bpfvpn/control/daemon"
	"github.com/bpfvpn/bpfvpn/control/lab"
)

type nop struct{}

func (nop) Name() string                                { return "nop" }
func (nop) Check(context.Context, *config.Config) error { return nil }
func (nop) Apply(context.Context, *config.Config) error { return nil }
func (nop) Close() error                                { return nil }

func policies(n int, prefix string) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		p := fmt.Sprintf("set security policies from-zone trust to-zone untrust policy %s%d ", prefix, i)
		b.WriteString(p + "match source-address any\n")
		b.WriteString(p + "match destination-address any\n")
		b.WriteString(p + "match application junos-http\n")
		b.WriteString(p + "then permit\n")
	}
	return b.String()
}

func median(d []time.Duration) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2]
}

type result struct {
	parse, diff, commit time.Duration
	changes             int
}

func measure(base string, runs int) (result, error) {
	dir, err := os.MkdirTemp("", "bpfvpn-bench-commit-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	cfgPath := filepath.Join(dir, "bpfvpn.conf")
	if err := os.WriteFile(cfgPath, []byte(base), 0o600); err != nil {
		return result{}, err
	}
	ready := make(chan string, 1)
	d, err := daemon.New(daemon.Options{ConfigPath: cfgPath, SocketPath: filepath.Join(dir, "s.sock"),
		CommitDir: filepath.Join(dir, "commits"), Components: []daemon.Component{nop{}, nop{}}, ReconcileInterval: -1,
		Ready: func(s string) { ready <- s }})
	if err != nil {
		return result{}, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, nil) }()
	defer func() { cancel(); <-done }()
	select {
	case <-ready:
	case err := <-done:
		return result{}, err
	}
	var parse, diff, commit []time.Duration
	var res result
	prev, _ := config.ParseBytes("base", []byte(base))
	for i := 0; i < runs; i++ {
		// Alternate between the base and base + one policy: every commit
		// is a one-policy change.
		text := base
		if i%2 == 0 {
			text = base + policies(1, fmt.Sprintf("EXTRA%d-", i))
		}
		t0 := time.Now()
		cfg, diags := config.ParseBytes("next", []byte(text))
		parse = append(parse, time.Since(t0))
		if diags.HasErrors() {
			return res, diags.Err()
		}
		t0 = time.Now()
		ch := daemon.Diff(prev, cfg)
		diff = append(diff, time.Since(t0))
		res.changes = len(ch)
		t0 = time.Now()
		if _, err := d.Commit(ctx, daemon.CommitRequest{Name: "next", Text: text}, false); err != nil {
			return res, err
		}
		commit = append(commit, time.Since(t0))
		prev = cfg
	}
	return result{median(parse), median(diff), median(commit), res.changes}, nil
}

func main() {
	n := flag.Int("policies", 100000, "security policies of the large configuration")
	runs := flag.Int("runs", 5, "commits per configuration (the median is reported)")
	flag.Parse()
	ref, err := lab.Config(lab.SRX1, lab.ConfigOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	small, err := measure(ref, *runs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reference:", err)
		os.Exit(1)
	}
	large, err := measure(ref+policies(*n, "P"), *runs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "large:", err)
		os.Exit(1)
	}
	fmt.Printf("| configuration | parse+validate | diff | commit (total) | changes |\n|---|---|---|---|---|\n")
	fmt.Printf("| reference SRX1 (3 policies) | %v | %v | %v | %d |\n", small.parse, small.diff, small.commit, small.changes)
	fmt.Printf("| SRX1 + %d policies | %v | %v | %v | %d |\n", *n, large.parse, large.diff, large.commit, large.changes)
	fmt.Printf("ratio large/reference (commit): %.0f\n", float64(large.commit)/float64(small.commit))
}
