// Command gateway measures the latency of a one-policy commit, as a
// whole-file commit (`bpfvpn commit FILE`) and as a delta (`bpfvpn load set`),
// in one run:
//
//   - control plane: the reference SRX1 configuration and the same grown to
//     -policies trust→untrust policies, committed through the daemon's real
//     commit path with no-op components (no kernel or data-plane writes);
//   - real data plane (root): a gateway in network namespaces with the eBPF
//     data plane attached, -dp-policies policies over 12 zone pairs of five
//     zones (dpLayout; the data plane holds at most 131,072 policies, 10,240
//     per pair), and an established UDP flow through the gateway during
//     every commit; every datagram sent while a commit ran is accounted for.
//
// Every commit adds or removes one policy. Latency is until the commit
// answers (the configuration is active; a load set is then also in the
// configuration file, synced); "durable" is until it is also in the commit
// store (and a compaction of the file has finished).
//
//	go run ./bench/gateway [-policies 100000] [-dp-policies 100000] [-runs 11]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"time"

	"github.com/bpfvpn/bpfvpn/control/config"
	"github.com/bpfvpn/bpfvpn/control/daemon"
	"github.com/bpfvpn/bpfvpn/control/lab"
)

var verbose = flag.Bool("v", false, "print every commit's latency, apply time and the Go GC count to stderr")

var cpuProfile = flag.String("cpuprofile", "", "write a CPU profile of the delta commits of the large control-plane configuration (and of the data-plane child) to `FILE`")

// profileNext is set while the configuration to profile is measured.
var profileNext bool

type nop struct{}

func (nop) Name() string                                { return "nop" }
func (nop) Check(context.Context, *config.Config) error { return nil }
func (nop) Apply(context.Context, *config.Config) error { return nil }
func (nop) Close() error                                { return nil }

// policies are n trust→untrust policies as in the earlier runs.
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

// extraPolicy is the one policy the commits add (first in its pair) and
// remove.
func extraPolicy(from, to, first string) string {
	p := fmt.Sprintf("set security policies from-zone %s to-zone %s policy EXTRA ", from, to)
	s := p + "match source-address any\n" + p + "match destination-address any\n" + p + "match application junos-ssh\n" + p + "then deny\n"
	if first != "" {
		s += fmt.Sprintf("insert security policies from-zone %s to-zone %s policy EXTRA before policy %s\n", from, to, first)
	}
	return s
}

func deleteExtra(from, to string) string {
	return fmt.Sprintf("delete security policies from-zone %s to-zone %s policy EXTRA\n", from, to)
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func maxDur(d []time.Duration) time.Duration {
	m := time.Duration(0)
	for _, x := range d {
		m = max(m, x)
	}
	return m
}

// series are the measured commits of one kind.
type series struct {
	latency, durable, apply []time.Duration
	incremental             int
	changes                 int
}

func (s *series) add(start time.Time, res daemon.CommitResult, d *daemon.Daemon) {
	s.latency = append(s.latency, time.Since(start))
	if *verbose {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Fprintf(os.Stderr, "commit %d: latency %v apply %v incremental %v gc %d heap %d MB\n", len(s.latency), s.latency[len(s.latency)-1].Round(100*time.Microsecond), res.Duration.Round(100*time.Microsecond), res.Incremental, ms.NumGC, ms.HeapAlloc>>20)
	}
	d.WaitPersisted()
	s.durable = append(s.durable, time.Since(start))
	s.apply = append(s.apply, res.Duration)
	if res.Incremental {
		s.incremental++
	}
	s.changes = len(res.Changes)
}

func (s *series) row(name, kind string) string {
	return fmt.Sprintf("| %s | %s | %d | %.1f ms | %.1f ms | %.1f ms | %.1f ms | %d/%d | %d |", name, kind, len(s.latency),
		ms(median(s.latency)), ms(maxDur(s.latency)), ms(median(s.apply)), ms(median(s.durable)), s.incremental, len(s.latency), s.changes)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// commitPair measures runs whole-file commits and runs delta commits, each
// adding or removing EXTRA (from→to, inserted before first). around is
// called around each commit (traffic accounting).
func commitPair(ctx context.Context, d *daemon.Daemon, base, from, to, first string, runs int, around func(func())) (whole, delta series, err error) {
	with := base + extraPolicy(from, to, first)
	for i := 0; i < runs; i++ {
		text := base
		if i%2 == 0 {
			text = with
		}
		var res daemon.CommitResult
		var cerr error
		start := time.Now()
		around(func() {
			start = time.Now()
			res, cerr = d.Commit(ctx, daemon.CommitRequest{Name: "bench.conf", Text: text}, false)
		})
		if cerr != nil {
			return whole, delta, fmt.Errorf("whole-file commit %d: %w", i, cerr)
		}
		whole.add(start, res, d)
	}
	// The active configuration is base when runs is even, with EXTRA when odd.
	has := runs%2 == 1
	if *cpuProfile != "" && profileNext {
		profileNext = false
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return whole, delta, err
		}
		defer f.Close()
		if bf, err := os.Create(*cpuProfile + ".allocs-base"); err == nil {
			pprof.Lookup("allocs").WriteTo(bf, 0)
			bf.Close()
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
		defer func() {
			// Allocations until after the deltas (FILE.allocs-base: until
			// before them), beside the CPU profile.
			if mf, err := os.Create(*cpuProfile + ".allocs"); err == nil {
				pprof.Lookup("allocs").WriteTo(mf, 0)
				mf.Close()
			}
		}()
	}
	for i := 0; i < runs; i++ {
		text := extraPolicy(from, to, first)
		if has {
			text = deleteExtra(from, to)
		}
		var res daemon.CommitResult
		var cerr error
		start := time.Now()
		around(func() {
			start = time.Now()
			res, cerr = d.Commit(ctx, daemon.CommitRequest{Name: "-", Text: text, Load: daemon.LoadSet}, false)
		})
		if cerr != nil {
			return whole, delta, fmt.Errorf("delta commit %d: %w", i, cerr)
		}
		delta.add(start, res, d)
		has = !has
	}
	return whole, delta, nil
}

func controlPlane(base, name string, runs int) ([]string, error) {
	dir, err := os.MkdirTemp("", "bpfvpn-bench-commit-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	d, stop, err := startDaemon(dir, base, []daemon.Component{nop{}, nop{}}, "")
	if err != nil {
		return nil, err
	}
	defer stop()
	// Parse+validate and diff of the whole file alone, for the breakdown.
	var parse, diff []time.Duration
	prev, _ := config.ParseBytes("base", []byte(base))
	next := base + extraPolicy("trust", "untrust", "")
	for i := 0; i < 3; i++ {
		t0 := time.Now()
		cfg, diags := config.ParseBytes("next", []byte(next))
		parse = append(parse, time.Since(t0))
		if cfg == nil {
			return nil, diags.Err()
		}
		t0 = time.Now()
		daemon.Diff(prev, cfg)
		diff = append(diff, time.Since(t0))
	}
	whole, delta, err := commitPair(context.Background(), d, base, "trust", "untrust", "", runs, func(f func()) { f() })
	if err != nil {
		return nil, err
	}
	return []string{
		whole.row(name, "whole file"),
		delta.row(name, "load set"),
		fmt.Sprintf("<!-- %s: whole-file parse+validate %.1f ms, diff %.1f ms (medians of 3) -->", name, ms(median(parse)), ms(median(diff))),
	}, nil
}

func main() {
	n := flag.Int("policies", 100000, "security policies of the large control-plane configuration")
	dpn := flag.Int("dp-policies", 100000, "security policies of the real data-plane configuration (12 zone pairs, dpLayout)")
	runs := flag.Int("runs", 11, "commits of each kind per configuration (the median is reported)")
	withDP := flag.Bool("dataplane", true, "also measure with the real data plane (root)")
	withCP := flag.Bool("control", true, "measure the control-plane configurations")
	role := flag.String("role", "", "internal: gw runs the data-plane part inside the gateway namespace")
	flag.Parse()
	if *role == "gw" {
		if err := gatewayChild(*dpn, *runs); err != nil {
			fmt.Fprintln(os.Stderr, "data plane:", err)
			os.Exit(1)
		}
		return
	}
	ref, err := lab.Config(lab.SRX1, lab.ConfigOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("| configuration | commit | n | latency median | latency max | apply median | durable median | incremental | changes |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, c := range []struct{ name, text string }{
		{"reference SRX1 (3 policies), no-op components", ref},
		{fmt.Sprintf("SRX1 + %d policies, no-op components", *n), ref + policies(*n, "P")},
	} {
		if !*withCP {
			break
		}
		profileNext = c.text != ref
		rows, err := controlPlane(c.text, c.name, *runs)
		if err != nil {
			fmt.Fprintln(os.Stderr, c.name+":", err)
			os.Exit(1)
		}
		for _, r := range rows {
			fmt.Println(r)
		}
	}
	if *withDP {
		if os.Geteuid() != 0 {
			fmt.Println("(real data plane skipped: needs root)")
			return
		}
		if err := runGatewayNamespaces(*dpn, *runs); err != nil {
			fmt.Fprintln(os.Stderr, "data plane:", err)
			os.Exit(1)
		}
	}
}
