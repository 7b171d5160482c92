package dataplane_test

import (
	"net/netip"
	"testing"

	"github.com/bpfvpn/bpfvpn/control/dataplane"
	"github.com/bpfvpn/bpfvpn/loader"
	"github.com/bpfvpn/bpfvpn/maps"
)

// TestNetnsPairWriterNoLoss: an established UDP flow through the attached
// data plane loses no exchange while policy changes in its own zone pair
// (a policy inserted first and removed again, so every policy's bit moves)
// are written pair by pair and generations switch under it.
func TestNetnsPairWriterNoLoss(t *testing.T) {
	l := newLab(t)
	l.attach(t, labSpec())
	var m *maps.Set
	inNS(t, l.rt, func() {
		var err error
		m, err = maps.OpenPinned(loader.InstanceDir(l.instance))
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Cleanup(m.Close)
	cc := l.udpEcho(t)
	if err := echoOK(cc); err != nil {
		t.Fatalf("first exchange: %v", err)
	}
	with := labSpec()
	with.Policies = append([]dataplane.Policy{{Name: "extra", FromZone: "trust", ToZone: "untrust",
		Destination: []netip.Prefix{pfx("192.0.2.0/24")}, Action: dataplane.Deny}}, with.Policies...)
	w := &dataplane.PairWriter{}
	done := make(chan error, 1)
	go func() {
		for i := 0; i < 20; i++ {
			spec := labSpec()
			if i%2 == 0 {
				spec = with
			}
			var err error
			inNS(t, l.rt, func() { _, _, err = w.Write(m, spec) })
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	exchanges := 0
	for finished := false; !finished; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("write: %v", err)
			}
			finished = true
		default:
		}
		if err := echoOK(cc); err != nil {
			t.Fatalf("exchange %d during the writes: %v", exchanges, err)
		}
		exchanges++
	}
	t.Logf("%d UDP exchanges during 20 generation switches, none lost", exchanges)
}
