package dataplane_test

import (
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/bpfvpn/bpfvpn/control/dataplane"
	tp "github.com/bpfvpn/bpfvpn/control/dataplane/testpkt"
	"github.com/bpfvpn/bpfvpn/loader"
	"github.com/bpfvpn/bpfvpn/maps"
)

// onOneCPU runs fn on a goroutine locked to one OS thread that is bound to
// one CPU: BPF_PROG_TEST_RUN executes on the calling CPU, and the flow
// cache is per CPU.
func onOneCPU(t *testing.T, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		t.Fatal(err)
	}
	var one unix.CPUSet
	for c := 0; c < 1024; c++ {
		if old.IsSet(c) {
			one.Set(c)
			break
		}
	}
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		t.Fatal(err)
	}
	defer unix.SchedSetaffinity(0, &old)
	fn()
}

// holdFlowCache makes fills serve until ageFlowCache (or the next Apply):
// the tests do not depend on how fast the machine runs them.
func (f *progFixture) holdFlowCache(t *testing.T) {
	t.Helper()
	var ctl maps.FlowCtl
	if err := f.m.FlowCacheCtl.Lookup(uint32(0), &ctl); err != nil {
		t.Fatal(err)
	}
	if ctl.WindowJiffies != maps.FlowCacheWindowJiffies {
		t.Errorf("fill window %d jiffies, want %d", ctl.WindowJiffies, maps.FlowCacheWindowJiffies)
	}
	ctl.WindowJiffies = 1 << 40
	if err := f.m.FlowCacheCtl.Update(uint32(0), &ctl, 0); err != nil {
		t.Fatal(err)
	}
}

// ageFlowCache moves every filled slot of every CPU a whole window (and
// its fill time ns nanoseconds) into the past, as if time had passed.
func (f *progFixture) ageFlowCache(t *testing.T, ns uint64) {
	t.Helper()
	for slot := uint32(0); slot < f.m.FlowCache.MaxEntries(); slot++ {
		var per []maps.FlowEntry
		if err := f.m.FlowCache.Lookup(slot, &per); err != nil {
			t.Fatal(err)
		}
		changed := false
		for i := range per {
			if per[i].Ifindex != 0 {
				per[i].FillJiffies -= 1 << 41
				per[i].FillNs = max(per[i].FillNs, ns+1) - ns
				changed = true
			}
		}
		if changed {
			if err := f.m.FlowCache.Update(slot, per, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// rawSession reads a session entry as stored (without the counts the flow
// cache still holds).
func (f *progFixture) rawSession(t *testing.T, s maps.Session) maps.SessVal {
	t.Helper()
	var v maps.SessVal
	if err := f.m.Sessions.Lookup(&s.Key, &v); err != nil {
		t.Fatalf("session %s:%d: %v", s.Src, s.SPort, err)
	}
	return v
}

// cached runs pkt and reports whether the flow cache served it.
func (f *progFixture) cached(t *testing.T, c pcase) bool {
	t.Helper()
	before := f.counter(t, loader.BpfvpnCounterIdCNT_FLOW_CACHE_HIT)
	f.runCases(t, []pcase{c})
	return f.counter(t, loader.BpfvpnCounterIdCNT_FLOW_CACHE_HIT) > before
}

// establish runs a TCP handshake 10.1.0.2:sp → 10.2.0.2:dp through xdp_zone.
func (f *progFixture) establish(t *testing.T, sp, dp uint16, want uint32) {
	t.Helper()
	f.runCases(t, []pcase{
		{name: "SYN", pkt: tcp("10.1.0.2", "10.2.0.2", sp, dp, tp.SYN), want: want, cnt: loader.BpfvpnCounterIdCNT_SESSION_NEW},
		{name: "SYN-ACK", iface: "untr0", pkt: tcp("10.2.0.2", "10.1.0.2", dp, sp, tp.SYN|tp.ACK), want: want},
		{name: "ACK (establishes, fills the cache)", pkt: tcp("10.1.0.2", "10.2.0.2", sp, dp, tp.ACK), want: want},
	})
}

// TestProgFlowCache: established flows are served from the per-CPU flow
// cache with exact accounting, and every event that may change a verdict
// sends the next packet through the full path again: a session clear, a
// commit that no longer permits the flow, idle expiry, the insert bound of
// the LRU session table, FIN/RST, and the end of the fill window.
func TestProgFlowCache(t *testing.T) {
	f := newProgFixture(t)
	spec := plainSpec()
	spec.Timeouts.TCPEstablished = 2 * time.Second
	f.apply(t, spec)
	f.holdFlowCache(t)
	ack := func(sp uint16) pcase {
		return pcase{name: "ACK", pkt: tcp("10.1.0.2", "10.2.0.2", sp, 80, tp.ACK), want: xdpPass}
	}
	onOneCPU(t, func() {
		f.establish(t, 4000, 80, xdpPass)
		s0, _ := findSession(t, f, tp.TCP, "10.1.0.2", 4000)
		raw0 := f.rawSession(t, s0)
		hits := f.counter(t, loader.BpfvpnCounterIdCNT_SESSION_HIT)
		for i := 0; i < 3; i++ {
			if !f.cached(t, ack(4000)) {
				t.Fatalf("ACK %d of an established flow not served from the flow cache", i)
			}
		}
		if d := f.counter(t, loader.BpfvpnCounterIdCNT_SESSION_HIT) - hits; d != 3 {
			t.Errorf("session hits grew by %d, want 3 (cached hits count as hits)", d)
		}
		if raw := f.rawSession(t, s0); raw.Pkts[0] != raw0.Pkts[0] {
			t.Errorf("cached hits written into the session entry at once (%d → %d packets)", raw0.Pkts[0], raw.Pkts[0])
		}
		if s, _ := findSession(t, f, tp.TCP, "10.1.0.2", 4000); s.Packets[0] != s0.Packets[0]+3 {
			t.Errorf("listed session has %d packets, want %d (pending cached hits included)", s.Packets[0], s0.Packets[0]+3)
		}

		// end of the window: the full path refreshes the session and
		// takes over the pending counts
		f.ageFlowCache(t, 0)
		if f.cached(t, ack(4000)) {
			t.Error("ACK after the fill window served from the cache")
		}
		if raw := f.rawSession(t, s0); raw.Pkts[0] != raw0.Pkts[0]+4 {
			t.Errorf("session entry has %d packets after the refresh, want %d", raw.Pkts[0], raw0.Pkts[0]+4)
		}
		if !f.cached(t, ack(4000)) {
			t.Error("ACK after the refresh not served from the cache")
		}

		// idle expiry: with the session and the cache aged past the
		// timeout, the next ACK is judged by the full path and dropped
		s1, _ := findSession(t, f, tp.TCP, "10.1.0.2", 4000)
		raw := f.rawSession(t, s1)
		raw.LastNs = 1
		if err := f.m.Sessions.Update(&s1.Key, &raw, 0); err != nil {
			t.Fatal(err)
		}
		f.ageFlowCache(t, 1<<62)
		f.runCases(t, []pcase{{name: "ACK of an expired cached flow", pkt: tcp("10.1.0.2", "10.2.0.2", 4000, 80, tp.ACK), want: xdpDrop,
			cnt: loader.BpfvpnCounterIdCNT_SESSION_EXPIRED}})

		// The 2 s timeout was for the expiry check. A held fill window
		// breaks the invariant behind the idle-timeout grace (no hit
		// later than 250 ms after its fill), so the rest of the test,
		// which may run for seconds on a slow VM, uses the defaults.
		f.apply(t, plainSpec())
		f.holdFlowCache(t)

		// clear security flow session
		f.establish(t, 4001, 80, xdpPass)
		f.establish(t, 4002, 80, xdpPass)
		if !f.cached(t, ack(4001)) || !f.cached(t, ack(4002)) {
			t.Fatal("established flows not cached")
		}
		n, err := dataplane.ClearSessions(f.m, func(s maps.Session) bool { return s.SPort == 4001 })
		if err != nil || n != 1 {
			t.Fatalf("clear: %d sessions (%v), want 1", n, err)
		}
		f.runCases(t, []pcase{{name: "ACK of a cleared flow", pkt: tcp("10.1.0.2", "10.2.0.2", 4001, 80, tp.ACK), want: xdpDrop,
			cnt: loader.BpfvpnCounterIdCNT_DROP_TCP_NO_SYN}})
		if f.cached(t, ack(4002)) {
			t.Error("the first packet after a clear served from the cache")
		}
		if !f.cached(t, ack(4002)) {
			t.Error("a flow the clear kept is not cached again")
		}

		// the LRU bound: after insert_limit new sessions the cached
		// flow's session may have been evicted, so it is looked up again
		var ctl maps.FlowCtl
		if err := f.m.FlowCacheCtl.Lookup(uint32(0), &ctl); err != nil {
			t.Fatal(err)
		}
		if want := uint64(f.m.Sessions.MaxEntries() / 4); ctl.InsertLimit != want {
			t.Errorf("insert limit %d, want %d", ctl.InsertLimit, want)
		}
		ctl.InsertLimit = 2
		if err := f.m.FlowCacheCtl.Update(uint32(0), &ctl, 0); err != nil {
			t.Fatal(err)
		}
		f.runCases(t, []pcase{
			{name: "new session 1", pkt: udp("10.1.0.2", "10.2.0.2", 6001, 53), want: xdpPass, cnt: loader.BpfvpnCounterIdCNT_SESSION_NEW},
			{name: "new session 2", pkt: udp("10.1.0.2", "10.2.0.2", 6002, 53), want: xdpPass, cnt: loader.BpfvpnCounterIdCNT_SESSION_NEW},
		})
		if f.cached(t, ack(4002)) {
			t.Error("cached flow served after insert_limit session inserts")
		}
		if !f.cached(t, ack(4002)) {
			t.Error("flow not cached again after its lookup")
		}

		// FIN goes through the full path (TCP state) and retires the slot
		f.runCases(t, []pcase{{name: "FIN", pkt: tcp("10.1.0.2", "10.2.0.2", 4002, 80, tp.FIN|tp.ACK), want: xdpPass}})
		if s, _ := findSession(t, f, tp.TCP, "10.1.0.2", 4002); s.TCPState != maps.TCPClosing {
			t.Errorf("TCP state after FIN %d, want closing", s.TCPState)
		}
		if f.cached(t, ack(4002)) {
			t.Error("ACK of a closing session served from the cache")
		}

		// a commit that no longer permits the flow closes it although
		// it is cached
		f.establish(t, 4003, 80, xdpPass)
		if !f.cached(t, ack(4003)) {
			t.Fatal("flow 4003 not cached")
		}
		s := plainSpec()
		s.Policies[2].Apps = []dataplane.AppTerm{appSSH}
		f.apply(t, s)
		f.runCases(t, []pcase{{name: "cached flow denied by the new generation", pkt: tcp("10.1.0.2", "10.2.0.2", 4003, 80, tp.ACK), want: xdpDrop,
			cnt: loader.BpfvpnCounterIdCNT_DROP_SESSION_CLOSED}})
	})
}

// TestProgFlowCacheRoute: a cached redirect reuses the route lookup's
// result only within the fill window; after it, a changed neighbour or
// route takes effect. A TTL that would expire goes to the stack.
func TestProgFlowCacheRoute(t *testing.T) {
	f := newProgFixture(t)
	f.apply(t, baseSpec())
	f.holdFlowCache(t)
	newMAC := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x33}
	dmac := func(want net.HardwareAddr) func(*testing.T, *tp.Decoded) {
		return func(t *testing.T, d *tp.Decoded) {
			t.Helper()
			if net.HardwareAddr(d.DstMAC[:]).String() != want.String() || !d.ChecksumsOK {
				t.Errorf("redirected to %s (checksums ok %v), want %s", net.HardwareAddr(d.DstMAC[:]), d.ChecksumsOK, want)
			}
		}
	}
	ack := func(want uint32, check func(*testing.T, *tp.Decoded)) pcase {
		return pcase{name: "ACK", pkt: tcp("10.1.0.2", "10.2.0.2", 5000, 80, tp.ACK), want: want, check: check}
	}
	onOneCPU(t, func() {
		f.establish(t, 5000, 80, xdpRedirect)
		if !f.cached(t, ack(xdpRedirect, dmac(neighMAC))) {
			t.Fatal("redirected flow not cached")
		}
		ttl1 := ack(xdpPass, nil)
		ttl1.pkt.TTL = 1
		if f.cached(t, ttl1) {
			t.Error("TTL 1 served from the cache")
		}

		f.in(t, func() {
			if err := netlink.NeighSet(&netlink.Neigh{LinkIndex: int(f.idx["untr0"]), Family: netlink.FAMILY_V4, State: netlink.NUD_PERMANENT,
				IP: net.ParseIP("10.2.0.2"), HardwareAddr: newMAC}); err != nil {
				t.Fatal(err)
			}
		})
		f.ageFlowCache(t, 0)
		if f.cached(t, ack(xdpRedirect, dmac(newMAC))) {
			t.Error("ACK after the window served from the cache")
		}
		if !f.cached(t, ack(xdpRedirect, dmac(newMAC))) {
			t.Error("flow not cached again with the new neighbour")
		}

		// the destination now routes out of an interface in no zone:
		// the session's packets go to the stack, which follows the route
		f.in(t, func() {
			_, dst, _ := net.ParseCIDR("10.2.0.2/32")
			if err := netlink.RouteAdd(&netlink.Route{LinkIndex: int(f.idx["lan9"]), Dst: dst, Gw: net.ParseIP("192.0.2.1")}); err != nil {
				t.Fatal(err)
			}
		})
		f.ageFlowCache(t, 0)
		for i := 0; i < 2; i++ {
			if f.cached(t, ack(xdpPass, nil)) {
				t.Error("ACK after a route change served from the cache")
			}
		}
	})
}
