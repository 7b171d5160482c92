package ikev2

import (
	"fmt"
	"testing"

	"github.com/bpfvpn/bpfvpn/ike/suite"
)

type ikeSuite struct {
	encr  suite.Encr
	integ suite.IntegID
}

var (
	ikeCiphers = []ikeSuite{
		{suite.Encr{ID: suite.EncrAESCBC, KeyBits: 128}, suite.IntegHMACSHA196},
		{suite.Encr{ID: suite.EncrAESCBC, KeyBits: 256}, suite.IntegHMACSHA2256128},
		{suite.Encr{ID: suite.EncrAESCBC, KeyBits: 256}, suite.IntegHMACSHA2384192},
		{suite.Encr{ID: suite.EncrAESCBC, KeyBits: 128}, suite.IntegHMACSHA2512256},
		{suite.Encr{ID: suite.EncrAESGCM16, KeyBits: 128}, suite.IntegNone},
		{suite.Encr{ID: suite.EncrAESGCM16, KeyBits: 256}, suite.IntegNone},
		{suite.Encr{ID: suite.EncrChaCha20Poly1305}, suite.IntegNone},
		{suite.Encr{ID: suite.Encr3DES}, suite.IntegHMACSHA2256128},
	}
	prfs      = []suite.PRFID{suite.PRFHMACSHA1, suite.PRFHMACSHA2256, suite.PRFHMACSHA2384, suite.PRFHMACSHA2512}
	groups    = []suite.DHGroup{suite.MODP1024, suite.MODP1536, suite.MODP2048, suite.MODP3072, suite.MODP4096, suite.ECP256, suite.ECP384, suite.ECP521, suite.Curve25519}
	espSuites = []ChildProposal{
		{Encryption: []suite.Encr{{ID: suite.EncrAESCBC, KeyBits: 128}}, Integrity: []suite.IntegID{suite.IntegHMACSHA196}},
		{Encryption: []suite.Encr{{ID: suite.EncrAESCBC, KeyBits: 256}}, Integrity: []suite.IntegID{suite.IntegHMACSHA2256128}},
		{Encryption: []suite.Encr{{ID: suite.EncrAESCBC, KeyBits: 256}}, Integrity: []suite.IntegID{suite.IntegHMACSHA2384192}},
		{Encryption: []suite.Encr{{ID: suite.EncrAESCBC, KeyBits: 256}}, Integrity: []suite.IntegID{suite.IntegHMACSHA2512256}},
		{Encryption: []suite.Encr{{ID: suite.EncrAESGCM16, KeyBits: 128}}},
		{Encryption: []suite.Encr{{ID: suite.EncrAESGCM16, KeyBits: 256}}},
		{Encryption: []suite.Encr{{ID: suite.EncrChaCha20Poly1305}}},
		{Encryption: []suite.Encr{{ID: suite.Encr3DES}}, Integrity: []suite.IntegID{suite.IntegHMACSHA196}},
	}
)

// TestSuiteMatrix establishes an IKE SA and CHILD SA for every IKE cipher
// against every DH group, rotating PRFs and ESP suites, in both roles.
func TestSuiteMatrix(t *testing.T) {
	n := 0
	for gi, g := range groups {
		for ci, c := range ikeCiphers {
			prf := prfs[(gi+ci)%len(prfs)]
			esp := espSuites[(gi*3+ci)%len(espSuites)]
			for _, bInitiates := range []bool{false, true} {
				n++
				name := fmt.Sprintf("%v/%v/%v/%v/esp=%v/%v/binit=%v", c.encr, c.integ, prf, g, esp.Encryption[0], esp.Integrity, bInitiates)
				t.Run(name, func(t *testing.T) {
					prop := IKEProposal{Encryption: []suite.Encr{c.encr}, PRF: []suite.PRFID{prf}, DH: []suite.DHGroup{g}}
					if c.integ != suite.IntegNone {
						prop.Integrity = []suite.IntegID{c.integ}
					}
					p := newPair(t, func(a, b *Connection) {
						for _, x := range []*Connection{a, b} {
							x.IKEProposals = []IKEProposal{prop}
							x.ChildProposals = []ChildProposal{esp}
							x.AllowWeak = true
						}
					}, nil)
					init, name := p.a, "vpnA"
					if bInitiates {
						init, name = p.b, "vpnB"
					}
					if err := init.Initiate(p.now(), name); err != nil {
						t.Fatal(err)
					}
					p.run("establish", func() bool {
						return len(p.sinkA.Installed()) == 1 && len(p.sinkB.Installed()) == 1
					}, timeLimit)
					checkChildrenMatch(t, p.sinkA, p.sinkB, 1)
					for _, sa := range p.sinkA.Installed() {
						if (sa.Integrity == nil) != esp.Encryption[0].AEAD() {
							t.Fatalf("integrity %v for %v", sa.Integrity, esp.Encryption[0])
						}
					}
				})
			}
		}
	}
	if n < 100 {
		t.Fatalf("only %d combinations", n)
	}
}

// TestESPSuiteMatrix negotiates every ESP suite with every PFS setting
// through a CHILD SA rekey (CREATE_CHILD_SA with KE), in both roles.
func TestESPSuiteMatrix(t *testing.T) {
	pfsGroups := []suite.DHGroup{suite.DHNone, suite.MODP2048, suite.ECP256, suite.Curve25519}
	for _, esp := range espSuites {
		for _, g := range pfsGroups {
			for _, bRekeys := range []bool{false, true} {
				name := fmt.Sprintf("%v/%v/pfs=%v/brekeys=%v", esp.Encryption[0], esp.Integrity, g, bRekeys)
				t.Run(name, func(t *testing.T) {
					prop := esp
					if g != suite.DHNone {
						prop.DH = []suite.DHGroup{g}
					}
					p := newPair(t, func(a, b *Connection) {
						a.ChildProposals, b.ChildProposals = []ChildProposal{prop}, []ChildProposal{prop}
						a.AllowWeak, b.AllowWeak = true, true
					}, nil)
					p.establish()
					e, n := p.a, "vpnA"
					if bRekeys {
						e, n = p.b, "vpnB"
					}
					if err := e.RekeyChild(p.now(), n); err != nil {
						t.Fatal(err)
					}
					p.run("rekeyed", func() bool {
						return p.sinkA.Count("rekeyed") == 1 && p.sinkB.Count("rekeyed") == 1 && p.quiet() && len(p.sinkA.Installed()) == 1
					}, timeLimit)
					checkChildrenMatch(t, p.sinkA, p.sinkB, 1)
					for _, sa := range p.sinkA.Installed() {
						if sa.PFSGroup != g {
							t.Fatalf("PFS group %v, want %v", sa.PFSGroup, g)
						}
					}
				})
			}
		}
	}
}
