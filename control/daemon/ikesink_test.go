package daemon

import (
	"context"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/bpfvpn/bpfvpn/control/kernel"
	"github.com/bpfvpn/bpfvpn/ike"
)

// RemovePeerTunnel completes fakeKernel (ikecomp_test.go) as a
// kernel.SAInstaller: it removes the SAs of one multipoint peer.
func (k *fakeKernel) RemovePeerTunnel(ctx context.Context, unit, peer int) ([]kernel.Change, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for spi, sa := range k.sas {
		if sa.Unit == unit && sa.Peer == peer {
			delete(k.sas, spi)
		}
	}
	k.removes = append(k.removes, unit)
	return nil, nil
}

func mustKernelSA(t *testing.T, sa ike.ChildSA) kernel.ChildSA {
	t.Helper()
	c, err := kernel.FromIKE(sa)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testChildSA(in, out uint32) ike.ChildSA {
	key := func() ike.Key { return make(ike.Key, 36) }
	return ike.ChildSA{Name: "VPN", IfID: 1, Protocol: ike.ProtoESP, Mode: ike.ModeTunnel, SPIIn: in, SPIOut: out,
		Local: netip.MustParseAddr("172.16.13.1"), Remote: netip.MustParseAddr("172.16.23.1"),
		Encryption: ike.Algorithm{Name: "rfc4106(gcm(aes))", KeyBits: 288, ICVBits: 128, AEAD: true},
		In:         ike.SAKeys{Encryption: key()}, Out: ike.SAKeys{Encryption: key()}, ReplayWindow: 64}
}

func newTestSink(t *testing.T, k *fakeKernel) *tunnelSink {
	c := newIKEComponent(slog.New(slog.DiscardHandler), k, nil)
	tu := &tunnel{t: &Tunnel{VPN: "VPN", Unit: 0, Local: netip.MustParseAddr("172.16.13.1")}}
	c.tunnels["VPN"] = tu
	s := &tunnelSink{c: c, tu: tu, unit: 0, vpn: "VPN", log: c.log}
	tu.sink = s
	return s
}

func withSwitchDelay(t *testing.T, d time.Duration) {
	old := SwitchDelay
	SwitchDelay = d
	t.Cleanup(func() { SwitchDelay = old })
}

func has(k *fakeKernel, spi uint32) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	_, ok := k.sas[spi]
	return ok
}

// A daemon that finds SAs of an earlier one installs its new pair inbound
// first, moves outbound traffic after SwitchDelay and then retires the old
// pair.
func TestSinkAdoptionSwitchesOutboundLate(t *testing.T) {
	withSwitchDelay(t, 200*time.Millisecond)
	k := newFakeKernel()
	k.InstallChildSA(t.Context(), mustKernelSA(t, testChildSA(0x1000, 0x2000))) // the earlier daemon's pair
	s := newTestSink(t, k)
	if err := s.ChildSAInstalled(testChildSA(0x3000, 0x4000)); err != nil {
		t.Fatal(err)
	}
	if !has(k, 0x3000) || has(k, 0x4000) || !has(k, 0x2000) {
		t.Fatalf("right after install: new inbound %v, new outbound %v, old outbound %v", has(k, 0x3000), has(k, 0x4000), has(k, 0x2000))
	}
	waitFor(t, "the outbound switch", 10*time.Second, func() bool { return has(k, 0x4000) })
	waitFor(t, "the old pair's retirement", 10*time.Second, func() bool { return !has(k, 0x1000) && !has(k, 0x2000) })
	if !s.tu.up.Load() {
		t.Error("tunnel not up")
	}
}

// A rekey installs the new inbound SA at once and the outbound one when
// the old pair is deleted; the old pair is retired, the routes stay.
func TestSinkRekeyMakeBeforeBreak(t *testing.T) {
	withSwitchDelay(t, time.Hour)
	k := newFakeKernel()
	s := newTestSink(t, k)
	old, next := testChildSA(0x1000, 0x2000), testChildSA(0x3000, 0x4000)
	if err := s.ChildSAInstalled(old); err != nil {
		t.Fatal(err)
	}
	if !has(k, 0x1000) || !has(k, 0x2000) {
		t.Fatal("first pair not installed both ways")
	}
	if err := s.ChildSARekeyed(old, next); err != nil {
		t.Fatal(err)
	}
	if !has(k, 0x3000) || has(k, 0x4000) {
		t.Fatal("rekey did not install the inbound SA alone")
	}
	s.ChildSADeleted(old.WithoutKeys())
	if !has(k, 0x4000) || has(k, 0x1000) || has(k, 0x2000) {
		t.Fatalf("after the old pair's delete: new out %v, old in %v, old out %v", has(k, 0x4000), has(k, 0x1000), has(k, 0x2000))
	}
	if len(k.removes) != 0 || !s.tu.up.Load() {
		t.Fatalf("tunnel taken down during a rekey: removes %v", k.removes)
	}
	s.ChildSADeleted(next.WithoutKeys())
	if len(k.removes) != 1 || s.tu.up.Load() {
		t.Fatalf("last pair deleted: removes %v up %v", k.removes, s.tu.up.Load())
	}
}

// The peer renegotiated while its old IKE SA lived on and then deleted the
// old pair (INITIAL_CONTACT) before this end could know the peer has the
// new pair: the old pair keeps carrying outbound traffic until the switch,
// so no direction is ever without an SA, and is retired after it.
func TestSinkOldPairDeletedBeforeSwitch(t *testing.T) {
	withSwitchDelay(t, 300*time.Millisecond)
	k := newFakeKernel()
	s := newTestSink(t, k)
	old, next := testChildSA(0x1000, 0x2000), testChildSA(0x3000, 0x4000)
	if err := s.ChildSAInstalled(old); err != nil {
		t.Fatal(err)
	}
	if err := s.ChildSAInstalled(next); err != nil {
		t.Fatal(err)
	}
	s.ChildSADeleted(old.WithoutKeys())
	if has(k, 0x4000) || !has(k, 0x2000) {
		t.Fatalf("right after the old pair's delete: new out %v, old out %v", has(k, 0x4000), has(k, 0x2000))
	}
	waitFor(t, "the switch", 10*time.Second, func() bool { return has(k, 0x4000) })
	waitFor(t, "the old pair's retirement", 10*time.Second, func() bool { return !has(k, 0x2000) && !has(k, 0x1000) })
	if !s.tu.up.Load() || len(k.removes) != 0 {
		t.Fatal("tunnel went down")
	}
}
