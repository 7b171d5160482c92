package daemon

import (
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/bpfvpn/bpfvpn/control/kernel"
	"github.com/bpfvpn/bpfvpn/ike"
	"github.com/bpfvpn/bpfvpn/ike/iketest"
	"github.com/bpfvpn/bpfvpn/ike/ikev1"
)

// fakeCounters is a saStatistics whose SAs the test sets.
type fakeCounters struct {
	mu    sync.Mutex
	sas   []kernel.SAStats
	err   error
	reads int
	// onRead runs before each reading (with the lock held).
	onRead func(sas []kernel.SAStats)
}

func (f *fakeCounters) SAStatistics() ([]kernel.SAStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if f.onRead != nil {
		f.onRead(f.sas)
	}
	return append([]kernel.SAStats(nil), f.sas...), f.err
}

func (f *fakeCounters) set(i int, packets uint64) {
	f.mu.Lock()
	f.sas[i].Packets = packets
	f.mu.Unlock()
}

var (
	liveLocal  = netip.MustParseAddr("172.16.13.1")
	liveRemote = netip.MustParseAddr("172.16.23.1")
)

func inboundSA(unit int, spi uint32, packets uint64) kernel.SAStats {
	return kernel.SAStats{Unit: unit, SPI: spi, Src: liveRemote, Dst: liveLocal, Direction: "inbound", SACounters: kernel.SACounters{Packets: packets}}
}

func TestLivenessProbe(t *testing.T) {
	f := &fakeCounters{sas: []kernel.SAStats{
		inboundSA(3, 0x100, 10),
		{Unit: 3, SPI: 0x200, Src: liveLocal, Dst: liveRemote, Direction: "outbound", SACounters: kernel.SACounters{Packets: 10}},
		inboundSA(4, 0x300, 10), // another tunnel
		{Unit: 3, SPI: 0x400, Src: netip.MustParseAddr("172.16.33.1"), Dst: liveLocal, Direction: "inbound", SACounters: kernel.SACounters{Packets: 10}}, // another peer on a multipoint st0.3
	}}
	dpd := ikev1.DPD{Mode: ikev1.DPDOptimized, Interval: 10 * time.Second, Threshold: 5}
	p := newLivenessProbe(f, 3, liveLocal, liveRemote, dpd)
	if p == nil {
		t.Fatal("no probe")
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// The first reading is due at once; SAs that received packets count.
	if at, ok := p.earlier(time.Time{}, false); !ok || !at.IsZero() {
		t.Fatalf("first reading not due at once: %v %v", at, ok)
	}
	if !p.poll(t0) {
		t.Fatal("the first reading did not report the inbound SA's packets")
	}
	step := func(d time.Duration, want bool, what string) {
		t.Helper()
		t0 = t0.Add(d)
		if got := p.poll(t0); got != want {
			t.Fatalf("%s: poll = %v, want %v", what, got, want)
		}
	}
	step(10*time.Second, false, "no change")
	f.set(0, 11)
	step(5*time.Second, false, "before the interval")
	if n := f.reads; n != 2 {
		t.Fatalf("%d readings, want one per interval (2)", n)
	}
	step(5*time.Second, true, "inbound counter grew")
	step(10*time.Second, false, "unchanged since")
	f.set(1, 99) // outbound
	f.set(2, 99) // other unit
	f.set(3, 99) // other peer
	step(10*time.Second, false, "outbound, other tunnels' or other peers' counters grew")
	// A rekey: the new inbound SA carries the traffic, the old one is gone.
	f.mu.Lock()
	f.sas[0] = inboundSA(3, 0x101, 4)
	f.mu.Unlock()
	step(10*time.Second, true, "new inbound SA with packets")
	// clear security ipsec statistics: counts drop, nothing arrived.
	f.set(0, 0)
	step(10*time.Second, false, "counters cleared")
	f.set(0, 1)
	step(10*time.Second, true, "after the clear")
	// A failed reading reports nothing (DPD then probes).
	f.mu.Lock()
	f.err = errors.New("netlink: boom")
	f.sas[0].Packets = 50
	f.mu.Unlock()
	step(10*time.Second, false, "failed reading")
	if at, ok := p.earlier(t0.Add(time.Hour), true); !ok || !at.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("next reading at %v, want %v", at, t0.Add(10*time.Second))
	}
	if at, _ := p.earlier(t0.Add(time.Second), true); !at.Equal(t0.Add(time.Second)) {
		t.Fatalf("an earlier engine timer lost: %v", at)
	}
}

// TestLivenessProbeOff: no probe without a counter source, without DPD, or
// with always-send; a nil probe is inert.
func TestLivenessProbeOff(t *testing.T) {
	on := ikev1.DPD{Mode: ikev1.DPDProbeIdle, Interval: 10 * time.Second}
	for name, p := range map[string]*livenessProbe{
		"no counters": newLivenessProbe(newFakeKernel(), 1, liveLocal, liveRemote, on),
		"dpd off":     newLivenessProbe(&fakeCounters{}, 1, liveLocal, liveRemote, ikev1.DPD{}),
		"always-send": newLivenessProbe(&fakeCounters{}, 1, liveLocal, liveRemote, ikev1.DPD{Mode: ikev1.DPDAlwaysSend, Interval: time.Second}),
	} {
		if p != nil {
			t.Errorf("%s: probe created", name)
		}
		if p.poll(time.Now()) {
			t.Errorf("%s: nil probe reported ESP", name)
		}
		if at, ok := p.earlier(time.Unix(5, 0), true); !ok || at != time.Unix(5, 0) {
			t.Errorf("%s: nil probe changed the timer", name)
		}
	}
}

// TestLivenessProbesShareReadings: tunnels polling together read the
// kernel once.
func TestLivenessProbesShareReadings(t *testing.T) {
	f := &fakeCounters{sas: []kernel.SAStats{inboundSA(1, 0x100, 1), inboundSA(2, 0x200, 1)}}
	dpd := ikev1.DPD{Interval: 10 * time.Second}
	a := newLivenessProbe(f, 1, liveLocal, liveRemote, dpd)
	b := newLivenessProbe(f, 2, liveLocal, liveRemote, dpd)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a.poll(now)
	b.poll(now.Add(statsMaxAge / 2))
	if f.reads != 1 {
		t.Fatalf("%d readings for two tunnels polling together", f.reads)
	}
	a.poll(now.Add(10 * time.Second))
	if f.reads != 2 {
		t.Fatalf("%d readings, want a fresh one per interval", f.reads)
	}
}

// TestV1EngineESPKeepsDPDQuiet runs the gateway's IKEv1 engine wrapper
// against a peer engine: while the tunnel's inbound ESP counter grows, the
// engine sends no R-U-THERE (optimized DPD); when ESP stops, it probes.
func TestV1EngineESPKeepsDPDQuiet(t *testing.T) {
	net := iketest.NewNetwork(7)
	mk := func(name string, local, remote netip.Addr, dpd ikev1.DPD) *ikev1.Engine {
		p := ikev1.Peer{Name: name, Local: local, Remote: remote, PSK: []byte("liveness test key"),
			IKE: []ikev1.Phase1Proposal{ikev1.DefaultPhase1}, ESP: []ikev1.Phase2Proposal{ikev1.DefaultPhase2}, DPD: dpd}
		e, err := ikev1.New([]ikev1.Peer{p}, net, nil, ikev1.Options{Logger: livenessLog(t, name)})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	dpd := ikev1.DPD{Mode: ikev1.DPDOptimized, Interval: 10 * time.Second, Threshold: 3, Action: ikev1.DPDClear}
	ea := mk("A", liveLocal, liveRemote, dpd)
	eb := mk("B", liveRemote, liveLocal, ikev1.DPD{}) // B never probes
	f := &fakeCounters{sas: []kernel.SAStats{inboundSA(1, 0x100, 0)}}
	growing := true
	f.onRead = func(sas []kernel.SAStats) {
		if growing {
			sas[0].Packets += 100
		}
	}
	a := v1Engine{Engine: ea, gateway: "A", live: newLivenessProbe(f, 1, liveLocal, liveRemote, dpd)}
	net.Attach(liveLocal, a)
	net.Attach(liveRemote, eb)
	probes := 0
	net.Drop = func(d ike.Datagram) bool {
		// Informational exchanges from A: with B silent, only R-U-THERE.
		if d.Local.Addr() == liveLocal && len(d.Data) > 18 && d.Data[18] == 5 {
			probes++
		}
		return false
	}
	if err := a.Initiate(net.Now()); err != nil {
		t.Fatal(err)
	}
	if !net.RunUntil(func() bool { return len(ea.ChildSAs(net.Now())) == 1 }, time.Second, time.Minute) {
		t.Fatal("tunnel not established")
	}
	net.RunUntil(func() bool { return false }, time.Second, 3*time.Minute)
	if probes != 0 {
		t.Fatalf("%d R-U-THERE sent while ESP arrived from the peer", probes)
	}
	growing = false
	if !net.RunUntil(func() bool { return probes > 0 }, time.Second, 30*time.Second) {
		t.Fatal("no R-U-THERE once ESP stopped arriving")
	}
	if len(ea.IKESAs(net.Now())) != 1 {
		t.Fatal("phase-1 SA lost while the peer answers")
	}
}

func livenessLog(t *testing.T, name string) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t, name}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
