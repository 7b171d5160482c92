package topology

import (
	"context"
	"net"
	"os"
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

// waitTunnels waits until both gateways report want tunnels, all up.
func waitTunnels(t *testing.T, r *labrun.Run, want int, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	last := ""
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
				continue
			}
			parts = append(parts, gw+" "+strconv.Itoa(up)+"/"+strconv.Itoa(total))
			done = done && up == want && total == want
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
			t.Fatalf("want %d tunnels up on both gateways after %v: %s", want, timeout, last)
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
// initiating every tunnel at once (establish-tunnels immediately on both).
// It fails in some runs: when colliding negotiations end with a CHILD SA
// deleted under a still established IKE SA, the daemon marks the tunnel
// down and never negotiates a new CHILD SA (control/daemon/ikecomp.go
// supervise: negotiating() counts an Established IKE SA as negotiating), so
// some tunnels stay down for good (seen on 6.12: 132 of 201 up after
// 4m20s, both daemons silent). It runs with BPFVPN_TOPO_COLLIDE=1.
func TestVMScaleTunnelsBothInitiate(t *testing.T) {
	if os.Getenv("BPFVPN_TOPO_COLLIDE") != "1" {
		t.Skip("flaky until the daemon re-negotiates a CHILD SA deleted under an established IKE SA (ikecomp.go supervise/negotiating); BPFVPN_TOPO_COLLIDE=1 runs it")
	}
	scaleTunnels(t, "immediately")
}

func scaleTunnels(t *testing.T, srx2Establish string) {
	vm.RequireKernelIPsec(t)
	n := scaleCount(t)
	r := newLab(t, lab.ConfigOptions{IKEVersion: "v2-only"}, false)
	ctx := context.Background()
	if err := r.Up(ctx, false); err != nil {
		t.Fatalf("lab up: %v", err)
	}
	if n > LinkScaleTunnels {
		addInternetRoutes(t, r)
	}
	s0, p0 := xfrmCounts(t, r, lab.SRX1)
	t.Logf("reference tunnel: srx1 holds %d XFRM states, %d policies", s0, p0)
	if s0 < 2 || p0 < 3 {
		t.Fatalf("srx1 holds %d XFRM states and %d policies for the reference tunnel, want a pair and its policies", s0, p0)
	}
	pids := r.Running()
	rss0 := map[string]int{}
	for gw, pid := range pids {
		rss0[gw] = rssKiB(pid)
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
	waitTunnels(t, r, n+1, time.Duration(60+n)*time.Second)
	allUp := time.Since(start)
	var mem []string
	for _, gw := range labrun.Gateways {
		mem = append(mem, gw+" "+strconv.Itoa(rssKiB(pids[gw]))+" KiB (was "+strconv.Itoa(rss0[gw])+" KiB with 1 tunnel)")
	}
	t.Logf("SCALE tunnels=%d commit-both=%.2fs all-up=%.2fs rss: %s", n, committed.Seconds(), allUp.Seconds(), strings.Join(mem, ", "))

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
		commit(t, r, lab.SRX1, base[lab.SRX1])
		commit(t, r, lab.SRX2, base[lab.SRX2])
		waitTunnels(t, r, 1, 60*time.Second)
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
