package ikev2

import (
	"testing"
	"time"

	"github.com/bpfvpn/bpfvpn/ike"
	"github.com/bpfvpn/bpfvpn/ike/iketest"
	"github.com/bpfvpn/bpfvpn/ike/suite"
)

func childSPIs(s *iketest.Sink) map[uint32]bool {
	out := map[uint32]bool{}
	for spi := range s.Installed() {
		out[spi] = true
	}
	return out
}

// quiet reports whether both engines have nothing in flight.
func (p *pair) quiet() bool {
	for _, e := range []*Engine{p.a, p.b} {
		e.mu.Lock()
		for _, s := range e.sas {
			if len(s.pending) > 0 || len(s.queue) > 0 {
				e.mu.Unlock()
				return false
			}
		}
		e.mu.Unlock()
	}
	return true
}

// makeBeforeBreak checks that for every replaced SA the "rekeyed" event
// came before its "deleted" event.
func makeBeforeBreak(t *testing.T, s *iketest.Sink) {
	t.Helper()
	replaced := map[uint32]bool{}
	for _, e := range s.Events() {
		switch e.Kind {
		case "rekeyed":
			replaced[e.Old.SPIIn] = true
		case "deleted":
			if !replaced[e.SA.SPIIn] && e.SA.SPIIn != 0 {
				// Deleting a redundant SA from a collision is fine; deleting
				// one that was never replaced is not.
				found := false
				for _, x := range s.Events() {
					if x.Kind == "rekeyed" && x.SA.SPIIn == e.SA.SPIIn {
						found = true
					}
				}
				if !found {
					t.Fatalf("SA %08x deleted without a replacement", e.SA.SPIIn)
				}
			}
		}
	}
}

func TestChildRekey(t *testing.T) {
	for _, pfs := range []bool{false, true} {
		for _, bInit := range []bool{false, true} {
			t.Run(map[bool]string{false: "nopfs", true: "pfs"}[pfs]+map[bool]string{false: "-A", true: "-B"}[bInit], func(t *testing.T) {
				p := newPair(t, func(a, b *Connection) {
					if pfs {
						a.ChildProposals[0].DH = []suite.DHGroup{suite.MODP2048}
						b.ChildProposals[0].DH = []suite.DHGroup{suite.MODP2048}
					}
				}, nil)
				p.establish()
				before := childSPIs(p.sinkA)
				e, name := p.a, "vpnA"
				if bInit {
					e, name = p.b, "vpnB"
				}
				if err := e.RekeyChild(p.now(), name); err != nil {
					t.Fatal(err)
				}
				p.run("rekeyed", func() bool {
					return p.sinkA.Count("rekeyed") == 1 && p.sinkB.Count("rekeyed") == 1 && p.quiet() &&
						len(p.sinkA.Installed()) == 1 && len(p.sinkB.Installed()) == 1
				}, time.Minute)
				checkChildrenMatch(t, p.sinkA, p.sinkB, 1)
				for spi := range childSPIs(p.sinkA) {
					if before[spi] {
						t.Fatal("old SA still installed")
					}
				}
				makeBeforeBreak(t, p.sinkA)
				makeBeforeBreak(t, p.sinkB)
				if pfs {
					for _, sa := range p.sinkA.Installed() {
						if sa.PFSGroup != suite.MODP2048 {
							t.Fatalf("rekeyed SA without PFS: %v", sa.PFSGroup)
						}
					}
				}
			})
		}
	}
}

func TestIKERekeyKeepsChildren(t *testing.T) {
	p := newPair(t, nil, nil)
	p.establish()
	old := p.a.IKESAs(p.now())[0]
	spis := childSPIs(p.sinkA)
	if err := p.b.RekeyIKE(p.now(), "vpnB"); err != nil {
		t.Fatal(err)
	}
	p.run("IKE rekeyed", func() bool {
		sa, sb := p.a.IKESAs(p.now()), p.b.IKESAs(p.now())
		return len(sa) == 1 && len(sb) == 1 && sa[0].SPIi != old.SPIi && sa[0].State == ike.StateEstablished && sb[0].State == ike.StateEstablished && p.quiet()
	}, time.Minute)
	sa, sb := p.a.IKESAs(p.now())[0], p.b.IKESAs(p.now())[0]
	if sa.SPIi != sb.SPIi || sa.SPIr != sb.SPIr || sa.ChildSAs != 1 || sb.ChildSAs != 1 {
		t.Fatalf("after rekey A %+v B %+v", sa, sb)
	}
	if p.sinkA.Count("deleted") != 0 || len(childSPIs(p.sinkA)) != 1 || !spis[firstKey(childSPIs(p.sinkA))] {
		t.Fatal("children disturbed by the IKE rekey")
	}
	// The new IKE SA works: rekey the child over it.
	if err := p.a.RekeyChild(p.now(), "vpnA"); err != nil {
		t.Fatal(err)
	}
	p.run("child rekeyed on new IKE SA", func() bool { return p.sinkA.Count("rekeyed") == 1 && p.quiet() && len(p.sinkB.Installed()) == 1 }, time.Minute)
	checkChildrenMatch(t, p.sinkA, p.sinkB, 1)
}

func firstKey(m map[uint32]bool) uint32 {
	for k := range m {
		return k
	}
	return 0
}

// TestSimultaneousChildRekey starts a rekey of the same CHILD SA on both
// ends before either request is delivered (RFC 7296 §2.8.1).
func TestSimultaneousChildRekey(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		p := newPair(t, nil, nil)
		p.reseed(seed)
		p.establish()
		p.net.Reorder = seed%2 == 0
		p.a.RekeyChild(p.now(), "vpnA")
		p.b.RekeyChild(p.now(), "vpnB")
		p.run("collision resolved", func() bool {
			return p.quiet() && len(p.sinkA.Installed()) == 1 && len(p.sinkB.Installed()) == 1
		}, time.Minute)
		checkChildrenMatch(t, p.sinkA, p.sinkB, 1)
		if p.sinkA.Count("rekeyed") != 2 || p.sinkB.Count("rekeyed") != 2 {
			t.Fatalf("seed %d: expected both rekeys to complete (A %d, B %d)", seed, p.sinkA.Count("rekeyed"), p.sinkB.Count("rekeyed"))
		}
	}
}

func TestSimultaneousIKERekey(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		p := newPair(t, nil, nil)
		p.establish()
		p.net.Reorder = seed%2 == 0
		p.a.RekeyIKE(p.now(), "vpnA")
		p.b.RekeyIKE(p.now(), "vpnB")
		p.run("collision resolved", func() bool {
			sa, sb := p.a.IKESAs(p.now()), p.b.IKESAs(p.now())
			return p.quiet() && len(sa) == 1 && len(sb) == 1
		}, 2*time.Minute)
		sa, sb := p.a.IKESAs(p.now())[0], p.b.IKESAs(p.now())[0]
		if sa.SPIi != sb.SPIi || sa.SPIr != sb.SPIr || sa.State != ike.StateEstablished || sa.ChildSAs != 1 || sb.ChildSAs != 1 {
			t.Fatalf("seed %d: A %+v B %+v", seed, sa, sb)
		}
		checkChildrenMatch(t, p.sinkA, p.sinkB, 1)
		// The survivor works.
		p.a.RekeyChild(p.now(), "vpnA")
		p.run("child rekey on survivor", func() bool { return p.sinkA.Count("rekeyed") == 1 && p.quiet() }, time.Minute)
		checkChildrenMatch(t, p.sinkA, p.sinkB, 1)
	}
}

// TestRekeyByLifetime lets lifetimes run: CHILD and IKE SAs rekey before
// they expire, repeatedly, and nothing is ever left without an SA.
func TestRekeyByLifetime(t *testing.T) {
	p := newPair(t, func(a, b *Connection) {
		for _, c := range []*Connection{a, b} {
			c.ChildLifetime = 10 * time.Minute
			c.IKELifetime = 25 * time.Minute
		}
	}, nil)
	p.establish()
	firstIKE := p.a.IKESAs(p.now())[0].SPIi
	end := p.now().Add(2 * time.Hour)
	for p.now().Before(end) {
		p.net.RunUntil(func() bool { return false }, time.Second, time.Minute)
		if len(p.sinkA.Installed()) == 0 || len(p.sinkB.Installed()) == 0 {
			t.Fatalf("no CHILD SA at %v", p.now())
		}
	}
	p.run("quiet", p.quiet, time.Minute)
	checkChildrenMatch(t, p.sinkA, p.sinkB, 1)
	if n := p.sinkA.Count("rekeyed") + p.sinkB.Count("rekeyed"); n < 20 {
		t.Fatalf("only %d child rekeys in 2 h of 10-minute lifetimes", n)
	}
	if p.a.IKESAs(p.now())[0].SPIi == firstIKE {
		t.Fatal("IKE SA never rekeyed")
	}
	if p.sinkA.Count("deleted") != p.sinkA.Count("rekeyed") {
		t.Fatalf("deleted %d vs rekeyed %d", p.sinkA.Count("deleted"), p.sinkA.Count("rekeyed"))
	}
}

func TestChildExpiredByBytes(t *testing.T) {
	p := newPair(t, func(a, b *Connection) { a.ChildLifetimeKB = 1024; b.ChildLifetimeKB = 1024 }, nil)
	p.establish()
	for spi, sa := range p.sinkA.Installed() {
		if sa.Lifetime.HardBytes != 1024*1024 || sa.Lifetime.SoftBytes == 0 {
			t.Fatalf("byte lifetime %+v", sa.Lifetime)
		}
		p.a.ChildExpired(p.now(), spi, false)
	}
	p.run("rekeyed on soft byte expiry", func() bool { return p.sinkA.Count("rekeyed") == 1 && p.quiet() }, time.Minute)
	checkChildrenMatch(t, p.sinkA, p.sinkB, 1)
	for spi := range p.sinkA.Installed() {
		p.a.ChildExpired(p.now(), spi, true)
	}
	p.run("deleted on hard expiry", func() bool { return len(p.sinkB.Installed()) == 0 && p.quiet() }, time.Minute)
}
