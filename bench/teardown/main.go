// Command teardown measures how long control/kernel's Reconciler takes to
// remove N tunnels one by one (RemoveTunnel, what the daemon does for each
// tunnel a commit drops or a peer deletes), each tunnel an st0 unit with an
// AES-GCM SA pair and six policies, in throw-away network namespaces.
//
// Two ways, same run, same N, each on its own namespace built the same way:
//
//   - one Reconciler removes every tunnel (the daemon's case);
//   - a new Reconciler removes each tunnel: it knows nothing, so it lists
//     the kernel's XFRM states and policies for every removal, which is
//     what every removal cost before the Reconciler kept a model of its
//     XFRM objects.
//
// As the reference, a commit's kernel part: one Reconcile of a state
// without the tunnels, which deletes their st0 units, addresses, SAs and
// policies in one plan.
//
// It needs xfrm interfaces and ESP, so run it in the VM:
//
//	go build -o bench/out/teardown ./bench/teardown
//	go run ./vm/cmd/vmrun -kernel 6.12 -- bench/out/teardown -tunnels 1000
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/bpfvpn/bpfvpn/bench/internal/vethns"
	"github.com/bpfvpn/bpfvpn/control/kernel"
	"github.com/vishvananda/netns"
)

func main() {
	n := flag.Int("tunnels", 1000, "st0 units with an SA pair each")
	flag.Parse()
	if err := run(*n); err != nil {
		fmt.Fprintln(os.Stderr, "teardown:", err)
		os.Exit(1)
	}
}

func run(n int) error {
	shared, err := removeAll(n, false)
	if err != nil {
		return fmt.Errorf("one reconciler: %w", err)
	}
	fresh, err := removeAll(n, true)
	if err != nil {
		return fmt.Errorf("a reconciler per removal: %w", err)
	}
	commit, err := reconcileEmpty(n)
	if err != nil {
		return fmt.Errorf("reconcile without the tunnels: %w", err)
	}
	fmt.Printf("| tunnels | one Reconciler removes all | a new Reconciler per removal | ratio one/new | Reconcile without the tunnels |\n")
	fmt.Printf("|---|---|---|---|---|\n")
	fmt.Printf("| %d | %s | %s | %.3f | %s |\n", n, ms(shared), ms(fresh), float64(shared)/float64(fresh), ms(commit))
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// removeAll builds n tunnels in a new namespace and times their removal.
func removeAll(n int, reconcilerEach bool) (time.Duration, error) {
	ctx := context.Background()
	ns, err := builtNamespace(ctx, n)
	if err != nil {
		return 0, err
	}
	defer ns.Close()
	// The removing Reconciler starts knowing nothing, as a daemon's does
	// after a restart; the building one is closed.
	var r *kernel.Reconciler
	defer func() {
		if r != nil {
			r.Close()
		}
	}()
	t0 := time.Now()
	for i := range n {
		if r == nil || reconcilerEach {
			if r != nil {
				r.Close()
			}
			if r, err = kernel.New(kernel.Options{NetNS: ns, NetNSSet: true}); err != nil {
				return 0, err
			}
		}
		if _, err := r.RemoveTunnel(ctx, i); err != nil {
			return 0, fmt.Errorf("remove st0.%d: %w", i, err)
		}
	}
	d := time.Since(t0)
	sas, err := r.InstalledSAs()
	if err != nil {
		return 0, err
	}
	if len(sas) != 0 {
		return 0, fmt.Errorf("%d SAs left after removing every tunnel", len(sas))
	}
	return d, nil
}

// reconcileEmpty builds n tunnels in a new namespace and times one
// Reconcile of a state without them by a new Reconciler.
func reconcileEmpty(n int) (time.Duration, error) {
	ctx := context.Background()
	ns, err := builtNamespace(ctx, n)
	if err != nil {
		return 0, err
	}
	defer ns.Close()
	r, err := kernel.New(kernel.Options{NetNS: ns, NetNSSet: true})
	if err != nil {
		return 0, err
	}
	defer r.Close()
	t0 := time.Now()
	if _, err := r.Reconcile(ctx, kernel.State{}); err != nil {
		return 0, err
	}
	d := time.Since(t0)
	if units, err := r.Units(); err != nil || len(units) != 0 {
		return 0, fmt.Errorf("%d st0 units left (%v)", len(units), err)
	}
	return d, nil
}

func build(ctx context.Context, ns netns.NsHandle, n int) error {
	r, err := kernel.New(kernel.Options{NetNS: ns, NetNSSet: true})
	if err != nil {
		return err
	}
	defer r.Close()
	var st kernel.State
	for i := range n {
		st.Tunnels = append(st.Tunnels, kernel.Tunnel{Unit: i, Underlay: "veth0", IPv4: unitAddr(i), RoutesWhenDown: true})
	}
	if _, err := r.Reconcile(ctx, st); err != nil {
		return err
	}
	key := make([]byte, 36)
	_, _ = rand.Read(key)
	for i := range n {
		c := kernel.ChildSA{Unit: i, Local: netip.MustParseAddr("10.0.0.1"), Remote: netip.MustParseAddr("10.0.0.2"),
			InboundSPI: uint32(0x10000 + 2*i), OutboundSPI: uint32(0x10001 + 2*i), Encryption: "rfc4106(gcm(aes))",
			Inbound: kernel.Keys{Encryption: key}, Outbound: kernel.Keys{Encryption: key}, ReplayWindow: 64}
		if _, err := r.InstallChildSA(ctx, c); err != nil {
			return fmt.Errorf("install st0.%d: %w", i, err)
		}
	}
	return nil
}

// builtNamespace returns a new namespace (vethns) holding n tunnels.
func builtNamespace(ctx context.Context, n int) (netns.NsHandle, error) {
	ns, err := vethns.New()
	if err != nil {
		return ns, err
	}
	if err := build(ctx, ns, n); err != nil {
		ns.Close()
		return ns, err
	}
	return ns, nil
}

func unitAddr(i int) netip.Prefix {
	v := uint32(172)<<24 | uint32(16)<<16 | uint32(4*i+1)
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), 30)
}
