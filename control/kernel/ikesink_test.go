package kernel

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/bpfvpn/bpfvpn/ike"
)

// fakeInstaller is an SAInstaller that keeps SAs in a map.
type fakeInstaller struct {
	mu      sync.Mutex
	sas     map[uint32]InstalledSA
	removed []tunnelKey
}

func newFakeInstaller() *fakeInstaller { return &fakeInstaller{sas: map[uint32]InstalledSA{}} }

func (f *fakeInstaller) add(c ChildSA, out bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sas[c.InboundSPI] = InstalledSA{Unit: c.Unit, Peer: c.Peer, SPI: c.InboundSPI, Src: c.Remote, Dst: c.Local, Direction: "inbound"}
	if out {
		f.sas[c.OutboundSPI] = InstalledSA{Unit: c.Unit, Peer: c.Peer, SPI: c.OutboundSPI, Src: c.Local, Dst: c.Remote, Direction: "outbound"}
	}
}

func (f *fakeInstaller) InstallChildSA(ctx context.Context, c ChildSA) ([]Change, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	f.add(c, true)
	return nil, nil
}

func (f *fakeInstaller) InstallInbound(ctx context.Context, c ChildSA) ([]Change, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	f.add(c, false)
	return nil, nil
}

func (f *fakeInstaller) RetireChildSA(ctx context.Context, old ChildSA, grace time.Duration) ([]Change, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.sas, old.OutboundSPI)
	time.AfterFunc(grace, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.sas, old.InboundSPI)
	})
	return nil, nil
}

func (f *fakeInstaller) remove(unit, peer int, all bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for spi, sa := range f.sas {
		if sa.Unit == unit && (all || sa.Peer == peer) {
			delete(f.sas, spi)
		}
	}
	f.removed = append(f.removed, tunnelKey{unit, peer})
}

func (f *fakeInstaller) RemoveTunnel(ctx context.Context, unit int) ([]Change, error) {
	f.remove(unit, 0, true)
	return nil, nil
}

func (f *fakeInstaller) RemovePeerTunnel(ctx context.Context, unit, peer int) ([]Change, error) {
	f.remove(unit, peer, false)
	return nil, nil
}

func (f *fakeInstaller) InstalledSAs() ([]InstalledSA, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []InstalledSA
	for _, sa := range f.sas {
		out = append(out, sa)
	}
	return out, nil
}

func (f *fakeInstaller) has(spi uint32) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.sas[spi]
	return ok
}

// fakeSPIs records the data plane's SPI filter.
type fakeSPIs struct {
	mu   sync.Mutex
	spis map[uint32]uint32 // SPI -> if_id
}

func (p *fakeSPIs) AddInboundSPI(spi, ifID uint32) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.spis[spi] = ifID
	return nil
}

func (p *fakeSPIs) RemoveInboundSPI(spi uint32) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.spis, spi)
	return nil
}

func (p *fakeSPIs) get(spi uint32) (uint32, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	id, ok := p.spis[spi]
	return id, ok
}

func sinkSA(ifID, in, out uint32, remote string) ike.ChildSA {
	key := func() ike.Key { return make(ike.Key, 36) }
	return ike.ChildSA{Name: "VPN", IfID: ifID, Protocol: ike.ProtoESP, Mode: ike.ModeTunnel, SPIIn: in, SPIOut: out,
		Local: netip.MustParseAddr("172.16.13.1"), Remote: netip.MustParseAddr(remote),
		Encryption: ike.Algorithm{Name: "rfc4106(gcm(aes))", KeyBits: 288, ICVBits: 128, AEAD: true},
		In:         ike.SAKeys{Encryption: key()}, Out: ike.SAKeys{Encryption: key()}, ReplayWindow: 64}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Two VPNs on one multipoint unit are two tunnels: their SAs carry their
// peers' if_ids, their SPIs are published with them, and one peer's last
// pair going down removes only that peer's tunnel.
func TestIKESinkMultipointPeers(t *testing.T) {
	f, spis := newFakeInstaller(), &fakeSPIs{spis: map[uint32]uint32{}}
	var mu sync.Mutex
	up := map[tunnelKey]bool{}
	s := &IKESink{R: f, SPIs: spis, Grace: time.Hour,
		OnUp:   func(u, p int) { mu.Lock(); up[tunnelKey{u, p}] = true; mu.Unlock() },
		OnDown: func(u, p int) { mu.Lock(); up[tunnelKey{u, p}] = false; mu.Unlock() }}
	a := sinkSA(PeerIfID(0, 7), 0x1000, 0x2000, "172.16.23.1")
	b := sinkSA(PeerIfID(0, 9), 0x3000, 0x4000, "172.16.33.1")
	for _, sa := range []ike.ChildSA{a, b} {
		if err := s.ChildSAInstalled(sa); err != nil {
			t.Fatal(err)
		}
	}
	// The second peer's pair is not mistaken for a replacement of the
	// first's: both are installed both ways at once.
	for _, spi := range []uint32{0x1000, 0x2000, 0x3000, 0x4000} {
		if !f.has(spi) {
			t.Errorf("SPI %08x not installed", spi)
		}
	}
	if id, _ := spis.get(0x1000); id != PeerIfID(0, 7) {
		t.Errorf("SPI 1000 published with if_id %#x, want %#x", id, PeerIfID(0, 7))
	}
	if id, _ := spis.get(0x3000); id != PeerIfID(0, 9) {
		t.Errorf("SPI 3000 published with if_id %#x, want %#x", id, PeerIfID(0, 9))
	}
	s.ChildSADeleted(a.WithoutKeys())
	if f.has(0x1000) || f.has(0x2000) || !f.has(0x3000) || !f.has(0x4000) {
		t.Errorf("after peer 7's delete: %v", f.sas)
	}
	if len(f.removed) != 1 || f.removed[0] != (tunnelKey{0, 7}) {
		t.Errorf("removed tunnels %v, want peer 7 of st0.0 only", f.removed)
	}
	if _, ok := spis.get(0x1000); ok {
		t.Error("peer 7's inbound SPI still published")
	}
	mu.Lock()
	defer mu.Unlock()
	if up[tunnelKey{0, 7}] || !up[tunnelKey{0, 9}] {
		t.Errorf("tunnel states %v", up)
	}
}

// The old inbound SPI of a rekeyed pair stays in the data plane's filter as
// long as its SA stays in the kernel: packets the peer sent on it before
// switching are not dropped by XDP.
func TestIKESinkRekeyKeepsOldSPIForGrace(t *testing.T) {
	f, spis := newFakeInstaller(), &fakeSPIs{spis: map[uint32]uint32{}}
	s := &IKESink{R: f, SPIs: spis, Grace: 300 * time.Millisecond, SwitchDelay: time.Hour}
	old, next := sinkSA(IfID(0), 0x1000, 0x2000, "172.16.23.1"), sinkSA(IfID(0), 0x3000, 0x4000, "172.16.23.1")
	if err := s.ChildSAInstalled(old); err != nil {
		t.Fatal(err)
	}
	if err := s.ChildSARekeyed(old, next); err != nil {
		t.Fatal(err)
	}
	if _, ok := spis.get(0x3000); !ok || f.has(0x4000) {
		t.Fatal("rekey: new inbound SPI not published first, or outbound installed before the switch")
	}
	s.ChildSADeleted(old.WithoutKeys())
	if !f.has(0x4000) || f.has(0x2000) {
		t.Fatal("the old pair's delete did not move outbound traffic")
	}
	if _, ok := spis.get(0x1000); !ok || !f.has(0x1000) {
		t.Fatal("old inbound SA or its SPI went before the grace period")
	}
	waitUntil(t, "the old inbound SPI's withdrawal", func() bool { _, ok := spis.get(0x1000); return !ok && !f.has(0x1000) })
	if _, ok := spis.get(0x3000); !ok {
		t.Error("new inbound SPI withdrawn")
	}
}
