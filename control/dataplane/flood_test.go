package dataplane_test

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"

	tp "github.com/bpfvpn/bpfvpn/control/dataplane/testpkt"
	"github.com/bpfvpn/bpfvpn/loader"
	"github.com/bpfvpn/bpfvpn/maps"
)

// TestSessionFloodLRU justifies the LRU session table: a flood of SYNs
// from random sources, five times the table size, evicts idle half-open
// sessions while an established flow that keeps sending survives.
func TestSessionFloodLRU(t *testing.T) {
	f := newProgFixture(t)
	const table = 4096
	objs, err := loader.Load(loader.Options{SessionMax: table})
	if err != nil {
		t.Fatal(err)
	}
	defer objs.Close()
	f.objs, f.m = objs, maps.FromObjects(objs)
	f.apply(t, baseSpec())
	f.runCases(t, []pcase{
		{name: "legit SYN", pkt: tcp("10.1.0.2", "10.2.0.2", 5555, 80, tp.SYN), want: xdpRedirect},
		{name: "legit SYN-ACK", iface: "untr0", pkt: tcp("10.2.0.2", "10.1.0.2", 80, 5555, tp.SYN|tp.ACK), want: xdpRedirect},
	})
	legit := tcp("10.1.0.2", "10.2.0.2", 5555, 80, tp.ACK)
	copy(legit.SrcMAC[:], neighMAC1)
	copy(legit.DstMAC[:], f.mac["trust0"])
	legitBytes := legit.Bytes()
	rng := rand.New(rand.NewPCG(7, 8))
	dropped := 0
	f.in(t, func() {
		for i := 0; i < 5*table; i++ {
			p := tcp("10.1.0.2", "10.2.0.2", uint16(1024+rng.IntN(60000)), 80, tp.SYN)
			p.Src = netip.AddrFrom4([4]byte{10, 1, byte(rng.IntN(256)), byte(1 + rng.IntN(250))})
			b := p.Bytes()
			if _, err := objs.XdpZone.Run(&ebpf.RunOptions{Data: b, Context: xdpMD{DataEnd: uint32(len(b)), IngressIfindex: f.idx["trust0"]}}); err != nil {
				t.Fatal(err)
			}
			if i%500 == 499 {
				r, err := objs.XdpZone.Run(&ebpf.RunOptions{Data: legitBytes, Context: xdpMD{DataEnd: uint32(len(legitBytes)), IngressIfindex: f.idx["trust0"]}})
				if err != nil {
					t.Fatal(err)
				}
				if r != xdpRedirect {
					dropped++
				}
			}
		}
	})
	n, err := maps.CountEntries(f.m, "sessions")
	if err != nil {
		t.Fatal(err)
	}
	created := f.counter(t, loader.BpfvpnCounterIdCNT_SESSION_NEW)
	t.Logf("flood: %d sessions created, %d entries left, established flow lost %d of %d packets", created, n, dropped, 5*table/500)
	if n > table {
		t.Errorf("%d entries in a table of %d", n, table)
	}
	if created < 4*table {
		t.Errorf("only %d sessions created by the flood", created)
	}
	if dropped != 0 {
		t.Errorf("the established flow lost %d packets under the flood", dropped)
	}
}
