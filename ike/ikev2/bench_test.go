package ikev2

import (
	"net/netip"
	"testing"
	"time"

	"github.com/bpfvpn/bpfvpn/ike"
	"github.com/bpfvpn/bpfvpn/ike/suite"
)

// timedEngine measures the wall time an engine spends handling datagrams.
type timedEngine struct {
	*Engine
	spent time.Duration
}

func (t *timedEngine) HandleDatagram(now time.Time, d ike.Datagram) {
	start := time.Now()
	t.Engine.HandleDatagram(now, d)
	t.spent += time.Since(start)
}

// benchmarkResponder opens b.N childless IKE SAs (IKE_SA_INIT + IKE_AUTH,
// PSK) in process and reports the responder's own time per SA: its
// single-core capacity without any socket or generator cost.
func benchmarkResponder(b *testing.B, g suite.DHGroup) {
	p := newPair(b, func(a, c *Connection) {
		for _, x := range []*Connection{a, c} {
			x.Childless = true
			x.IKEProposals = []IKEProposal{{Encryption: []suite.Encr{{ID: suite.EncrAESGCM16, KeyBits: 128}}, PRF: []suite.PRFID{suite.PRFHMACSHA2256}, DH: []suite.DHGroup{g}}}
		}
		c.Remote = netip.AddrPortFrom(netip.IPv4Unspecified(), 500)
		c.KeepOnInitialContact = true
	}, func(a, c *Config) { c.CookieThreshold = -1; a.KEReuse = time.Hour })
	tb := &timedEngine{Engine: p.b}
	p.net.Attach(addrB, tb)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p.a.Initiate(p.now(), "vpnA")
		p.net.Settle(10)
	}
	b.StopTimer()
	if n := established(p.b, p.now()); n != b.N {
		b.Fatalf("%d of %d established", n, b.N)
	}
	per := tb.spent / time.Duration(b.N)
	b.ReportMetric(float64(per.Nanoseconds()), "responder-ns/SA")
	b.ReportMetric(float64(time.Second)/float64(per), "responder-SAs/s/core")
}

func BenchmarkResponderX25519(b *testing.B)   { benchmarkResponder(b, suite.Curve25519) }
func BenchmarkResponderMODP2048(b *testing.B) { benchmarkResponder(b, suite.MODP2048) }
func BenchmarkResponderECP256(b *testing.B)   { benchmarkResponder(b, suite.ECP256) }
