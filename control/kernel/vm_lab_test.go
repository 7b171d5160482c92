package kernel

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/bpfvpn/bpfvpn/control/lab"
	"github.com/bpfvpn/bpfvpn/vm"
	"github.com/vishvananda/netns"
)

// TestVMLabReferenceTunnel is the reference topology end to end without IKE
// and BPF: the lab's namespaces, each gateway's kernel state compiled from
// its lab configuration (reference §3) by FromConfig and reconciled, and an
// SA pair installed on both as IKE would; Host1 then reaches Host2 through
// st0.0 and ESP across the internet node.
func TestVMLabReferenceTunnel(t *testing.T) {
	vm.RequireKernelIPsec(t)
	startVMTest(t)
	var rb [3]byte
	_, _ = rand.Read(rb[:])
	l := lab.New("ktvm" + hex.EncodeToString(rb[:]) + "-")
	l.UnaddressedGateways = true // the reconcilers apply the gateways' addresses
	t.Cleanup(func() {
		if err := l.Down(); err != nil {
			t.Error(err)
		}
	})
	if err := l.Up(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sites := map[string]*vmSite{}
	for _, gw := range []string{lab.SRX1, lab.SRX2} {
		text, err := lab.Config(gw, lab.ConfigOptions{})
		if err != nil {
			t.Fatal(err)
		}
		st, notes := FromConfig(compileConfig(t, text))
		if len(notes) != 0 {
			t.Errorf("%s: notes %q", gw, notes)
		}
		ns, err := netns.GetFromName(l.Namespace(gw))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ns.Close() })
		s := &vmSite{name: gw, ns: ns, r: newReconcilerIn(t, ns), state: st}
		s.reconcile(t)
		if ch := s.reconcile(t); len(ch) != 0 {
			t.Errorf("%s: second reconcile changed %q", gw, strs(ch))
		}
		sites[gw] = s
	}
	srx1, srx2 := sites[lab.SRX1], sites[lab.SRX2]
	srx1.wan, srx2.wan = ip("172.16.13.1"), ip("172.16.23.1")
	p1, p2 := saPair(t, srx1, srx2, gcm256)
	install(t, srx2, p2)
	install(t, srx1, p1)

	host1, err := netns.GetFromName(l.Namespace(lab.Host1))
	if err != nil {
		t.Fatal(err)
	}
	defer host1.Close()
	st, err := lab.Ping(host1, ip("10.100.22.2"), 5, 50*time.Millisecond, 5*time.Second)
	if err != nil || len(st.Lost) != 0 {
		t.Fatalf("ping Host1 -> Host2: %v (%s)", err, st)
	}
	for _, c := range []struct {
		s   *vmSite
		spi uint32
	}{{srx1, p1.OutboundSPI}, {srx1, p1.InboundSPI}, {srx2, p2.OutboundSPI}, {srx2, p2.InboundSPI}} {
		if n := saPackets(t, c.s, c.spi); n < 5 {
			t.Errorf("%s SA %08x counted %d packets, want ≥ 5", c.s.name, c.spi, n)
		}
	}
	// The tunnel goes down: the route into st0.0 is withdrawn (the VPN is
	// establish-tunnels immediately), and Host2 is unreachable.
	if _, err := srx1.r.RemoveTunnel(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := lab.Ping(host1, ip("10.100.22.2"), 2, 20*time.Millisecond, 300*time.Millisecond); err == nil {
		t.Error("Host2 answered with the tunnel down")
	}
}
