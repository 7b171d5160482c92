package ikev2

import (
	"bytes"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/bpfvpn/bpfvpn/ike"
	"github.com/bpfvpn/bpfvpn/ike/iketest"
	"github.com/bpfvpn/bpfvpn/ike/suite"
)

var (
	addrA = netip.MustParseAddr("192.0.2.1")
	addrB = netip.MustParseAddr("198.51.100.2")
)

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("IKE_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// pair is two engines on an in-memory network.
type pair struct {
	t     testing.TB
	net   *iketest.Network
	a, b  *Engine
	sinkA *iketest.Sink
	sinkB *iketest.Sink
	connA Connection
	connB Connection
}

// reseed moves both engines of p to a fresh in-memory network whose loss
// and reordering draw from seed.
func (p *pair) reseed(seed uint64) {
	p.net = iketest.NewNetwork(seed)
	p.net.Attach(addrA, p.a)
	p.net.Attach(addrB, p.b)
	p.a.cfg.Sender, p.b.cfg.Sender = p.net, p.net
}

func defaultIKE() []IKEProposal {
	return []IKEProposal{{Encryption: []suite.Encr{{ID: suite.EncrAESGCM16, KeyBits: 256}}, PRF: []suite.PRFID{suite.PRFHMACSHA2384}, DH: []suite.DHGroup{suite.ECP384}}}
}

func defaultChild() []ChildProposal {
	return []ChildProposal{{Encryption: []suite.Encr{{ID: suite.EncrAESGCM16, KeyBits: 256}}}}
}

func baseConn(name string, local, remote netip.Addr) Connection {
	return Connection{
		Name: name, Gateway: "gw-" + name, ReqID: 7, IfID: 42,
		Local: netip.AddrPortFrom(local, 500), Remote: netip.AddrPortFrom(remote, 500),
		PSK:            []byte("correct horse battery staple"),
		IKEProposals:   defaultIKE(),
		ChildProposals: defaultChild(),
	}
}

func newPair(t testing.TB, mutate func(a, b *Connection), cfgMut func(a, b *Config)) *pair {
	t.Helper()
	p := &pair{t: t, net: iketest.NewNetwork(1), sinkA: iketest.NewSink(), sinkB: iketest.NewSink()}
	p.connA, p.connB = baseConn("vpnA", addrA, addrB), baseConn("vpnB", addrB, addrA)
	if mutate != nil {
		mutate(&p.connA, &p.connB)
	}
	ca := Config{Sender: p.net, Sink: p.sinkA, Log: testLogger(t)}
	cb := Config{Sender: p.net, Sink: p.sinkB, Log: testLogger(t)}
	if cfgMut != nil {
		cfgMut(&ca, &cb)
	}
	var err error
	if p.a, err = New(ca); err != nil {
		t.Fatal(err)
	}
	if p.b, err = New(cb); err != nil {
		t.Fatal(err)
	}
	if err := p.a.AddConnection(p.connA); err != nil {
		t.Fatal(err)
	}
	if err := p.b.AddConnection(p.connB); err != nil {
		t.Fatal(err)
	}
	p.net.Attach(addrA, p.a)
	p.net.Attach(addrB, p.b)
	return p
}

func (p *pair) now() time.Time { return p.net.Now() }

// run advances the fake clock until cond holds (at most limit of fake time).
func (p *pair) run(what string, cond func() bool, limit time.Duration) {
	p.t.Helper()
	if !p.net.RunUntil(cond, time.Second, limit) {
		p.t.Fatalf("%s: condition not reached within %v of fake time (A: %v, B: %v)", what, limit, p.a.LastError("vpnA"), p.b.LastError("vpnB"))
	}
}

func established(e *Engine, now time.Time) int {
	n := 0
	for _, s := range e.IKESAs(now) {
		if s.State == ike.StateEstablished {
			n++
		}
	}
	return n
}

// checkChildrenMatch verifies that every installed SA of one side has its
// mirror on the other: same SPIs swapped, same keys swapped.
func checkChildrenMatch(t testing.TB, a, b *iketest.Sink, want int) {
	t.Helper()
	ia, ib := a.Installed(), b.Installed()
	if len(ia) != want || len(ib) != want {
		t.Fatalf("installed: A %d, B %d, want %d", len(ia), len(ib), want)
	}
	for spi, sa := range ia {
		peer, ok := ib[sa.SPIOut]
		if !ok {
			t.Fatalf("A's SA in=%08x out=%08x has no peer on B", spi, sa.SPIOut)
		}
		if peer.SPIOut != spi {
			t.Fatalf("SPI mismatch: A in=%08x, B out=%08x", spi, peer.SPIOut)
		}
		if !bytes.Equal(sa.In.Encryption, peer.Out.Encryption) || !bytes.Equal(sa.Out.Encryption, peer.In.Encryption) ||
			!bytes.Equal(sa.In.Integrity, peer.Out.Integrity) || !bytes.Equal(sa.Out.Integrity, peer.In.Integrity) {
			t.Fatalf("keys of A in=%08x do not mirror B", spi)
		}
		if bytes.Equal(sa.In.Encryption, sa.Out.Encryption) {
			t.Fatalf("same key in both directions")
		}
		if sa.Encryption != peer.Encryption || len(sa.In.Encryption)*8 != sa.Encryption.KeyBits {
			t.Fatalf("algorithms differ: %+v vs %+v", sa.Encryption, peer.Encryption)
		}
	}
}

func (p *pair) establish() {
	p.t.Helper()
	if err := p.a.Initiate(p.now(), "vpnA"); err != nil {
		p.t.Fatal(err)
	}
	p.run("establish", func() bool {
		return established(p.a, p.now()) == 1 && established(p.b, p.now()) == 1 && len(p.sinkA.Installed()) == 1 && len(p.sinkB.Installed()) == 1
	}, time.Minute)
	checkChildrenMatch(p.t, p.sinkA, p.sinkB, 1)
}

const timeLimit = time.Minute

func TestEstablishPSK(t *testing.T) {
	p := newPair(t, nil, nil)
	p.establish()
	sa := p.sinkA.Installed()
	for _, c := range sa {
		if c.Name != "vpnA" || c.ReqID != 7 || c.IfID != 42 || c.Encryption.Name != "rfc4106(gcm(aes))" || c.Encryption.KeyBits != 288 || c.Integrity != nil {
			t.Fatalf("child description: %+v", c)
		}
		if len(c.LocalTS) != 2 || len(c.RemoteTS) != 2 || c.Local != addrA || c.Remote != addrB || c.Encap != nil {
			t.Fatalf("selectors/addresses: %+v", c)
		}
		if c.Lifetime.HardSeconds != 3600 || c.Lifetime.SoftSeconds >= 3600 {
			t.Fatalf("lifetime: %+v", c.Lifetime)
		}
	}
	st := p.a.IKESAs(p.now())[0]
	if st.Role != ike.Initiator || st.RemoteID != addrB.String() || st.Encryption != "AES-GCM-16-256" || st.DHGroup != "ECP-384" {
		t.Fatalf("status %+v", st)
	}
	if p.b.IKESAs(p.now())[0].Role != ike.Responder {
		t.Fatal("B not responder")
	}
	if p.b.HalfOpen() != 0 {
		t.Fatalf("half-open %d after establishment", p.b.HalfOpen())
	}
}
