package topology

import (
	"context"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/bpfvpn/bpfvpn/control/daemon/labrun"
	"github.com/bpfvpn/bpfvpn/control/kernel"
	"github.com/bpfvpn/bpfvpn/control/lab"
	"github.com/bpfvpn/bpfvpn/vm"
)

// ScaleEnv sets the number of extra tunnels of TestVMScaleTunnels (default
// 200; vmrun passes it with -env).
const ScaleEnv = "BPFVPN_SCALE_TUNNELS"

func scaleCount(t *testing.T) int {
	n := 200
	if s := os.Getenv(ScaleEnv); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > MaxScaleTunnels {
			t.Fatalf("%s=%q: want 1..%d", ScaleEnv, s, MaxScaleTunnels)
		}
		n = v
	}
	return n
}

// upScaleLab brings up the IKEv2 lab without the data plane (the
// reference tunnel up) and prepares its Internet node for the scale tests'
// scaleCount(t) tunnels, which it returns.
func upScaleLab(t *testing.T, ctx context.Context) (*labrun.Run, int) {
	t.Helper()
	n := scaleCount(t)
	r := newLab(t, lab.ConfigOptions{IKEVersion: "v2-only"}, false)
	if err := r.Up(ctx, false); err != nil {
		t.Fatalf("lab up: %v", err)
	}
	if n > LinkScaleTunnels {
		addInternetRoutes(t, r)
	}
	raiseNeighbourLimits(t, n)
	return r, n
}

// upCount returns how many of gw's tunnels are up, of how many.
func upCount(ctx context.Context, r *labrun.Run, gw string) (up, total int, err error) {
	qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := r.Status(qctx, gw)
	if err != nil {
		return 0, 0, err
	}
	for _, tu := range st.Tunnels {
		if tu.Up {
			up++
		}
	}
	return up, len(st.Tunnels), nil
}

// waitAllUp waits until gw has exactly want tunnels, all up.
func waitAllUp(t *testing.T, ctx context.Context, r *labrun.Run, gw string, want int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		up, total, err := upCount(ctx, r, gw)
		if err == nil && up == want && total == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d tunnels up (%v)", gw, up, total, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitTunnels waits until both gateways report want tunnels, all up.
func waitTunnels(t *testing.T, r *labrun.Run, want int, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	last := ""
	dumped := map[string]bool{}
	for {
		done := true
		var parts []string
		for _, gw := range labrun.Gateways {
			up, total, err := upCount(context.Background(), r, gw)
			if err != nil {
				// A daemon busy negotiating may answer late: report and
				// keep waiting until the deadline.
				parts = append(parts, gw+" status: "+err.Error())
				done = false
				if !dumped[gw] {
					dumped[gw] = true
					logGoroutines(t, gw, r.Running()[gw], 400)
				}
				continue
			}
			parts = append(parts, gw+" "+strconv.Itoa(up)+"/"+strconv.Itoa(total))
			done = done && up == want && total == want
		}
		if os.Getenv(ProfileEnv) == "1" && !dumped["at90"] && time.Since(start) > 90*time.Second {
			dumped["at90"] = true
			for _, gw := range labrun.Gateways {
				logGoroutines(t, gw, r.Running()[gw], 300)
			}
		}
		if s := strings.Join(parts, ", "); s != last {
			t.Logf("[%5.1fs] tunnels up: %s", time.Since(start).Seconds(), s)
			last = s
		}
		if done {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			for _, gw := range labrun.Gateways {
				qctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				st, err := r.Status(qctx, gw)
				cancel()
				if err != nil {
					continue
				}
				down := 0
				for _, tu := range st.Tunnels {
					if !tu.Up && down < 10 {
						t.Logf("%s: %s (%s) %s %s", gw, tu.VPN, tu.Interface, tu.State, tu.LastError)
						down++
					}
				}
			}
			var mem []string
			for gw, pid := range r.Running() {
				mem = append(mem, fmt.Sprintf("%s %d KiB, %.1fs CPU", gw, rssKiB(pid), cpuSeconds(pid)))
			}
			sort.Strings(mem)
			t.Fatalf("want %d tunnels up on both gateways after %v: %s (daemons: %s)", want, timeout, last, strings.Join(mem, ", "))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// rssKiB returns the resident set of pid in KiB.
func rssKiB(pid int) int {
	data, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			v, _ := strconv.Atoi(f[1])
			return v
		}
	}
	return 0
}

// cpuSeconds returns the user+system CPU time pid has used.
func cpuSeconds(pid int) float64 {
	data, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	// Fields after the command name (which may hold spaces) start at ")".
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// raiseNeighbourLimits lets the Internet node hold a neighbour entry per
// WAN address: the kernel's ARP table limits (gc_thresh1-3: 128/512/1024)
// count entries of every namespace together, and n tunnels give Internet
// 2n neighbours on its two links. The VM is the test's own; the old values
// come back at the end.
func raiseNeighbourLimits(t *testing.T, n int) {
	t.Helper()
	for i, v := range []int{n, 4 * n, 8 * n} {
		path := "/proc/sys/net/ipv4/neigh/default/gc_thresh" + strconv.Itoa(i+1)
		old, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("neighbour limits: %v", err)
		}
		if cur, _ := strconv.Atoi(strings.TrimSpace(string(old))); cur >= v {
			continue
		}
		if err := os.WriteFile(path, []byte(strconv.Itoa(v)), 0); err != nil {
			t.Fatalf("neighbour limits: %v", err)
		}
		t.Cleanup(func() { os.WriteFile(path, old, 0) })
	}
}

// st0Links returns the st0 units present in gw's namespace.
func st0Links(t *testing.T, r *labrun.Run, gw string) []string {
	t.Helper()
	h, err := r.Lab().Handle(gw)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range links {
		if _, ok := kernel.UnitOfLink(l.Attrs().Name); ok {
			out = append(out, l.Attrs().Name)
		}
	}
	return out
}

// xfrmCounts returns the numbers of XFRM states and policies in gw's namespace.
func xfrmCounts(t *testing.T, r *labrun.Run, gw string) (states, policies int) {
	t.Helper()
	ns, err := netns.GetFromName(r.Lab().Namespace(gw))
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	// All netlink families: lab.Handle speaks NETLINK_ROUTE only.
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	s, err := h.XfrmStateList(netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	p, err := h.XfrmPolicyList(netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	return len(s), len(p)
}

// TestVMScaleTunnels commits n extra VPNs (200 by default, BPFVPN_SCALE_TUNNELS)
// between the lab's two daemons, waits for all of them, sends one echo
// through each from SRX1 to SRX2's st0 address, then commits the reference
// configuration again and checks that every extra tunnel is gone (units,
// SAs, policies) while the reference tunnel still carries traffic.
//
// SRX1 initiates every extra tunnel and SRX2 only responds (on-traffic):
// see TestVMScaleTunnelsBothInitiate for both sides initiating at once.
func TestVMScaleTunnels(t *testing.T) { scaleTunnels(t, "on-traffic") }

// TestVMScaleTunnelsBothInitiate is TestVMScaleTunnels with both gateways
// initiating every tunnel at once (establish-tunnels immediately on both), so
// that negotiations collide; the daemons' supervision must still bring every
// tunnel up (control/daemon supervise: CHILD SAs requested on established
// IKE SAs, stalled negotiations abandoned and retried).
func TestVMScaleTunnelsBothInitiate(t *testing.T) { scaleTunnels(t, "immediately") }

func scaleTunnels(t *testing.T, srx2Establish string) {
	vm.RequireKernelIPsec(t)
	testStart := time.Now()
	ctx := context.Background()
	r, n := upScaleLab(t, ctx)
	s0, p0 := xfrmCounts(t, r, lab.SRX1)
	t.Logf("reference tunnel: srx1 holds %d XFRM states, %d policies", s0, p0)
	if s0 < 2 || p0 < 3 {
		t.Fatalf("srx1 holds %d XFRM states and %d policies for the reference tunnel, want a pair and its policies", s0, p0)
	}
	pids := r.Running()
	rss0 := map[string]int{}
	cpu0 := map[string]float64{}
	for gw, pid := range pids {
		rss0[gw] = rssKiB(pid)
		cpu0[gw] = cpuSeconds(pid)
	}

	configs := map[string]string{}
	for _, gw := range labrun.Gateways {
		establish := "immediately"
		if gw == lab.SRX2 {
			establish = srx2Establish
		}
		text, err := ScaleConfig(gw, n, lab.ConfigOptions{IKEVersion: "v2-only"}, establish)
		if err != nil {
			t.Fatal(err)
		}
		configs[gw] = text
	}
	start := time.Now()
	// SRX2 first: SRX1's initiations then find their responders ready.
	commit(t, r, lab.SRX2, configs[lab.SRX2])
	commit(t, r, lab.SRX1, configs[lab.SRX1])
	committed := time.Since(start)
	if os.Getenv(ProfileEnv) == "1" {
		var wg sync.WaitGroup
		for _, gw := range labrun.Gateways {
			wg.Add(1)
			go func() { defer wg.Done(); logCPUProfile(t, gw, pids[gw]) }()
		}
		defer wg.Wait()
	}
	limit := time.Duration(60+n) * time.Second
	if srx2Establish == "immediately" {
		// Colliding negotiations that end stuck are given up and retried
		// (daemon.NegotiationTimeout, or an engine's own give-up after
		// about a minute): allow one such round more. (200 tunnels took
		// 121 s and 172 s on a loaded build machine.)
		limit += 90 * time.Second
	}
	if n > 200 {
		// Beyond make test's scale, end the wait (with what came up) within
		// the test binary's 10 minutes.
		limit = min(limit, 8*time.Minute-time.Since(testStart))
	}
	waitTunnels(t, r, n+1, limit)
	allUp := time.Since(start)
	if os.Getenv(ProfileEnv) == "1" {
		for _, gw := range labrun.Gateways {
			logHeapProfile(t, gw, pids[gw])
		}
	}
	var mem, cpu []string
	for _, gw := range labrun.Gateways {
		mem = append(mem, gw+" "+strconv.Itoa(rssKiB(pids[gw]))+" KiB (was "+strconv.Itoa(rss0[gw])+" KiB with 1 tunnel)")
		cpu = append(cpu, fmt.Sprintf("%s %.1fs", gw, cpuSeconds(pids[gw])-cpu0[gw]))
	}
	t.Logf("SCALE tunnels=%d srx2=%s commit-both=%.2fs all-up=%.2fs rss: %s; cpu since commit: %s", n, srx2Establish,
		committed.Seconds(), allUp.Seconds(), strings.Join(mem, ", "), strings.Join(cpu, ", "))

	t.Run("ping-each", func(t *testing.T) {
		ns, err := netns.GetFromName(r.Lab().Namespace(lab.SRX1))
		if err != nil {
			t.Fatal(err)
		}
		defer ns.Close()
		var mu sync.Mutex
		var failed []int
		sem := make(chan struct{}, 8)
		var wg sync.WaitGroup
		for i := 1; i <= n; i++ {
			wg.Add(1)
			sem <- struct{}{}
			go func(i int) {
				defer wg.Done()
				defer func() { <-sem }()
				_, dst := ScaleAddrs(i)
				for attempt := 0; attempt < 3; attempt++ {
					st, err := lab.Ping(ns, dst, 1, 100*time.Millisecond, 3*time.Second)
					if err == nil && st.Received == 1 {
						return
					}
				}
				mu.Lock()
				failed = append(failed, i)
				mu.Unlock()
			}(i)
		}
		wg.Wait()
		if len(failed) > 0 {
			t.Errorf("no echo reply through %d of %d tunnels (st0 units %v)", len(failed), n, failed)
		}
	})

	t.Run("commit-without", func(t *testing.T) {
		base := map[string]string{}
		for _, gw := range labrun.Gateways {
			text, err := ScaleConfig(gw, 0, lab.ConfigOptions{IKEVersion: "v2-only"}, "immediately")
			if err != nil {
				t.Fatal(err)
			}
			base[gw] = text
		}
		// Profiles in consecutive windows until every tunnel is gone
		// (go tool pprof merges them).
		var prof sync.WaitGroup
		gone := make(chan struct{})
		if os.Getenv(ProfileEnv) == "1" {
			for _, gw := range labrun.Gateways {
				prof.Add(1)
				go func() {
					defer prof.Done()
					for i := 0; ; i++ {
						select {
						case <-gone:
							return
						default:
						}
						logCPUProfile(t, fmt.Sprintf("%s-teardown-%d", gw, i), pids[gw])
					}
				}()
			}
		}
		start := time.Now()
		commit(t, r, lab.SRX1, base[lab.SRX1])
		srx1 := time.Since(start)
		commit(t, r, lab.SRX2, base[lab.SRX2])
		srx2 := time.Since(start) - srx1
		waitTunnels(t, r, 1, 60*time.Second)
		allGone := time.Since(start)
		close(gone)
		prof.Wait()
		t.Logf("SCALE teardown tunnels=%d commit-srx1=%.2fs commit-srx2=%.2fs all-gone=%.2fs", n,
			srx1.Seconds(), srx2.Seconds(), allGone.Seconds())
		for _, gw := range labrun.Gateways {
			if l := st0Links(t, r, gw); len(l) != 1 || l[0] != kernel.LinkName(0) {
				t.Errorf("%s: st0 units left after removing the tunnels: %v", gw, l)
			}
			// Only the reference pair may stay (DPD/IKE may briefly hold
			// no extra state; the kernel may not keep removed ones).
			deadline := time.Now().Add(30 * time.Second)
			for {
				s, p := xfrmCounts(t, r, gw)
				if s <= s0 && p <= p0 {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("%s: %d XFRM states, %d policies left (reference tunnel alone: %d, %d)", gw, s, p, s0, p0)
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
		if err := r.Ping(ctx, 3); err != nil {
			t.Errorf("reference tunnel after removing the others: %v", err)
		}
	})
}

// addInternetRoutes adds ScaleInternetRoutes on the Internet node.
func addInternetRoutes(t *testing.T, r *labrun.Run) {
	t.Helper()
	h, err := r.Lab().Handle(lab.Internet)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for p, dev := range ScaleInternetRoutes {
		l, err := h.LinkByName(dev)
		if err != nil {
			t.Fatal(err)
		}
		dst := &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}
		if err := h.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: dst, Scope: netlink.SCOPE_LINK}); err != nil {
			t.Fatalf("internet route %s dev %s: %v", p, dev, err)
		}
	}
}
