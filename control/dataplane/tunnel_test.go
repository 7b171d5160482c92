package dataplane_test

import (
	"context"
	"testing"
	"time"

	"github.com/bpfvpn/bpfvpn/control/dataplane"
	tp "github.com/bpfvpn/bpfvpn/control/dataplane/testpkt"
	"github.com/bpfvpn/bpfvpn/loader"
	"github.com/bpfvpn/bpfvpn/maps"
)

// TestProgTunnelDemand: traffic sent into a down on-traffic st0 raises one
// ring-buffer event per rate window, none while the tunnel is up or for an
// st0 without on-traffic state.
func TestProgTunnelDemand(t *testing.T) {
	f := newProgFixture(t)
	f.apply(t, baseSpec())
	st0 := f.idx["st0x"]
	t.Cleanup(func() { dataplane.RemoveTunnelState(f.m, st0) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, err := dataplane.TunnelDemands(ctx, f.m)
	if err != nil {
		t.Fatal(err)
	}
	pkt := tcp("10.1.0.2", "10.3.0.9", 5000, 443, tp.SYN)
	copy(pkt.DstMAC[:], f.mac["st0x"])
	send := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			if ret, _ := f.runTC(t, f.objs.TcSt0Egress, "st0x", pkt.Bytes()); ret != tcOK {
				t.Fatalf("tc_st0_egress returned %d, want TC_ACT_OK", ret)
			}
		}
	}
	demands := func() uint64 { return f.counter(t, loader.BpfvpnCounterIdCNT_TUNNEL_DEMAND) }
	want := func(what string) {
		t.Helper()
		select {
		case d := <-events:
			if d.Ifindex != st0 || d.Unit != 7 || d.Proto != tp.TCP || d.Src != addr("10.1.0.2") || d.Dst != addr("10.3.0.9") || d.DPort != 443 {
				t.Errorf("%s: event %+v, want st0x unit 7 10.1.0.2 → 10.3.0.9:443/tcp", what, d)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no event within 10 s", what)
		}
	}

	before := demands()
	send(3)
	if d := demands() - before; d != 0 {
		t.Fatalf("st0 without on-traffic state raised %d events", d)
	}

	if err := dataplane.SetTunnelState(f.m, st0, 7, false, time.Hour); err != nil {
		t.Fatal(err)
	}
	send(5)
	if d := demands() - before; d != 1 {
		t.Fatalf("5 packets into a down tunnel in one window raised %d events, want 1", d)
	}
	want("first packet into the down tunnel")

	// the window has passed: age the stamp instead of waiting an hour
	var st maps.TunnelState
	if err := f.m.Tunnels.Lookup(st0, &st); err != nil || st.LastEventNs == 0 {
		t.Fatalf("tunnel state %+v, %v: no event stamp", st, err)
	}
	st.LastEventNs = 1
	if err := f.m.Tunnels.Put(st0, st); err != nil {
		t.Fatal(err)
	}
	send(3)
	if d := demands() - before; d != 2 {
		t.Fatalf("after the window: %d events in all, want 2", d)
	}
	want("first packet of the next window")

	if err := dataplane.SetTunnelState(f.m, st0, 7, true, time.Hour); err != nil {
		t.Fatal(err)
	}
	var up maps.TunnelState // an aged stamp: only the up flag keeps it quiet
	if err := f.m.Tunnels.Lookup(st0, &up); err != nil || up.Up != 1 {
		t.Fatalf("tunnel state %+v, %v: want up", up, err)
	}
	up.LastEventNs = 1
	if err := f.m.Tunnels.Put(st0, up); err != nil {
		t.Fatal(err)
	}
	send(3)
	if d := demands() - before; d != 2 {
		t.Fatalf("tunnel up: %d events in all, want still 2", d)
	}
	if d := f.counter(t, loader.BpfvpnCounterIdCNT_TUNNEL_DEMAND_LOST); d != 0 {
		t.Errorf("%d events lost", d)
	}
	cancel()
	for range events { // closed once the context ends
	}
}
