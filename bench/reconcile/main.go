// Command reconcile measures the kernel reconciler of control/kernel on the
// running kernel, in throw-away network namespaces: installing N static
// routes, a no-op reconcile by a fresh reconciler (what a restarted daemon
// does), a one-route change in the N-route state, and as the same-run
// reference `ip -batch` installing the same N routes.
//
//	sudo go run ./bench/reconcile -routes 10000 -runs 3
//
// With -tunnels N it instead creates N st0 units with an address and an
// ESP SA pair each (the scale case of issue 8), against the same objects
// made with `ip -batch`; that needs kernel IPsec, so run it in the VM:
//
//	go build -o bench/out/reconcile ./bench/reconcile
//	go run ./vm/cmd/vmrun -kernel 6.12 -- bench/out/reconcile -tunnels 1000
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"sort"
	"time"

	"github.com/bpfvpn/bpfvpn/bench/internal/vethns"
	"github.com/bpfvpn/bpfvpn/control/kernel"
	"github.com/bpfvpn/bpfvpn/control/lab"
	"github.com/vishvananda/netns"
)

func main() {
	routes := flag.Int("routes", 10000, "number of /24 routes (at most 16384)")
	runs := flag.Int("runs", 3, "runs; the median is reported")
	tunnels := flag.Int("tunnels", 0, "instead of routes: st0 units with an SA pair each (needs xfrm interfaces and ESP: run it in the VM)")
	flag.Parse()
	if *tunnels > 0 {
		if err := benchTunnels(*tunnels, *runs); err != nil {
			fmt.Fprintln(os.Stderr, "reconcile:", err)
			os.Exit(1)
		}
		return
	}
	if *routes < 1 || *routes > 16384 || *runs < 1 {
		fmt.Fprintln(os.Stderr, "reconcile: -routes 1..16384, -runs ≥ 1")
		os.Exit(2)
	}
	var res [4][]time.Duration
	for i := 0; i < *runs; i++ {
		r, err := once(*routes)
		if err != nil {
			fmt.Fprintln(os.Stderr, "reconcile:", err)
			os.Exit(1)
		}
		for k := range res {
			res[k] = append(res[k], r[k])
		}
	}
	m := func(d []time.Duration) time.Duration {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[len(d)/2]
	}
	install, noop, one, ip := m(res[0]), m(res[1]), m(res[2]), m(res[3])
	fmt.Printf("| routes | bpfvpn install | fresh reconciler no-op | one-route change | ip -batch install | install ratio ip/bpfvpn |\n")
	fmt.Printf("|---|---|---|---|---|---|\n")
	fmt.Printf("| %d | %s | %s | %s | %s | %.2f |\n", *routes, ms(install), ms(noop), ms(one), ms(ip), float64(ip)/float64(install))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func dst(i int) netip.Prefix {
	base := netip.MustParseAddr("100.64.0.0").As4()
	v := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(i)<<8
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), 0}), 24)
}

func once(n int) ([4]time.Duration, error) {
	var out [4]time.Duration
	ctx := context.Background()
	ns, err := vethns.New()
	if err != nil {
		return out, err
	}
	defer ns.Close()
	st := kernel.State{}
	for i := 0; i < n; i++ {
		st.Routes = append(st.Routes, kernel.Route{Dst: dst(i), Gateway: netip.MustParseAddr("10.0.0.2"), Metric: 5})
	}
	r, err := kernel.New(kernel.Options{NetNS: ns, NetNSSet: true})
	if err != nil {
		return out, err
	}
	defer r.Close()
	t0 := time.Now()
	ch, err := r.Reconcile(ctx, st)
	out[0] = time.Since(t0)
	if err != nil || len(ch) != n {
		return out, fmt.Errorf("install: %d changes, %v", len(ch), err)
	}
	r2, err := kernel.New(kernel.Options{NetNS: ns, NetNSSet: true})
	if err != nil {
		return out, err
	}
	defer r2.Close()
	t0 = time.Now()
	ch, err = r2.Reconcile(ctx, st)
	out[1] = time.Since(t0)
	if err != nil || len(ch) != 0 {
		return out, fmt.Errorf("no-op: %d changes, %v", len(ch), err)
	}
	st.Routes[n/2].Gateway = netip.MustParseAddr("10.0.0.3")
	t0 = time.Now()
	ch, err = r2.Reconcile(ctx, st)
	out[2] = time.Since(t0)
	if err != nil || len(ch) != 1 {
		return out, fmt.Errorf("one change: %d changes, %v", len(ch), err)
	}

	ns2, err := vethns.New()
	if err != nil {
		return out, err
	}
	defer ns2.Close()
	var batch bytes.Buffer
	for i := 0; i < n; i++ {
		fmt.Fprintf(&batch, "route add %s via 10.0.0.2 metric 5 proto 246\n", dst(i))
	}
	out[3], err = ipBatch(ns2, &batch)
	return out, err
}

// ipBatch runs `ip -batch` with script in ns and returns the time from its
// start to its exit.
func ipBatch(ns netns.NsHandle, script io.Reader) (time.Duration, error) {
	cmd := exec.Command("ip", "-batch", "-")
	cmd.Stdin = script
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	t0 := time.Now()
	if err := lab.Start(ns, cmd); err != nil {
		return 0, err
	}
	if err := cmd.Wait(); err != nil {
		return 0, fmt.Errorf("ip -batch: %v: %.500s", err, stderr.String())
	}
	return time.Since(t0), nil
}
