package ikev2

import (
	"bytes"
	"encoding/hex"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bpfvpn/bpfvpn/ike"
	"github.com/bpfvpn/bpfvpn/ike/iketest"
)

func TestLossyReorderedNetwork(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		p := newPair(t, nil, nil)
		p.reseed(seed)
		p.net.LossRate = 0.3
		p.net.Reorder = true
		p.a.Initiate(p.now(), "vpnA")
		p.run("established despite loss", func() bool {
			return len(p.sinkA.Installed()) == 1 && len(p.sinkB.Installed()) == 1 && p.quiet()
		}, 10*time.Minute)
		p.a.RekeyChild(p.now(), "vpnA")
		p.run("rekeyed despite loss", func() bool {
			return p.sinkA.Count("rekeyed") == 1 && p.sinkB.Count("rekeyed") == 1 && p.quiet() &&
				len(p.sinkA.Installed()) == 1 && len(p.sinkB.Installed()) == 1
		}, 10*time.Minute)
		checkChildrenMatch(t, p.sinkA, p.sinkB, 1)
		if _, dropped := p.net.Counts(); dropped == 0 {
			t.Fatalf("seed %d: nothing was dropped", seed)
		}
	}
}

// TestDuplicateRequestGetsCachedResponse delivers every request twice: the
// responder answers the copy with the same bytes and creates nothing new.
func TestDuplicateRequestGetsCachedResponse(t *testing.T) {
	p := newPair(t, nil, nil)
	var mu sync.Mutex
	responses := map[string][][]byte{}
	p.net.Tap = func(d ike.Datagram) {
		m, err := Decode(d.Data)
		if err != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		key := m.Exchange.String() + "/" + string(rune('0'+m.MessageID))
		if m.IsResponse() {
			responses[key] = append(responses[key], d.Data)
		} else if d.Remote.Addr() == addrB {
			p.net.Inject(ike.Datagram{Local: d.Remote, Remote: d.Local, Data: d.Data}.Swap())
		}
	}
	p.establish()
	p.a.RekeyChild(p.now(), "vpnA")
	p.run("rekeyed", func() bool { return p.sinkA.Count("rekeyed") == 1 && p.quiet() }, time.Minute)
	p.net.Settle(10)
	checkChildrenMatch(t, p.sinkA, p.sinkB, 1)
	if p.sinkB.Count("installed") != 1 || p.sinkB.Count("rekeyed") != 1 {
		t.Fatalf("duplicates created SAs: installed %d rekeyed %d", p.sinkB.Count("installed"), p.sinkB.Count("rekeyed"))
	}
	mu.Lock()
	defer mu.Unlock()
	for k, rs := range responses {
		if len(rs) < 2 {
			t.Fatalf("%s: duplicate not answered", k)
		}
		for _, r := range rs[1:] {
			if !bytes.Equal(r, rs[0]) {
				t.Fatalf("%s: retransmitted response differs", k)
			}
		}
	}
}

func TestRetransmitBackoffAndGiveUp(t *testing.T) {
	p := newPair(t, nil, nil)
	p.net.Detach(addrB)
	var sends []time.Time
	p.net.Drop = func(d ike.Datagram) bool {
		sends = append(sends, p.net.Now())
		return true
	}
	p.a.Initiate(p.now(), "vpnA")
	p.run("give up", func() bool { return p.a.LastError("vpnA") != nil }, 10*time.Minute)
	if len(sends) != 6 {
		t.Fatalf("%d transmissions, want 6", len(sends))
	}
	for i := 2; i < len(sends); i++ {
		if sends[i].Sub(sends[i-1]) <= sends[i-1].Sub(sends[i-2]) {
			t.Fatalf("no exponential back-off: %v", sends)
		}
	}
}

func TestDPDTimeout(t *testing.T) {
	for _, action := range []DPDAction{DPDClear, DPDRestart} {
		p := newPair(t, func(a, b *Connection) {
			a.DPDInterval, a.DPDThreshold, a.DPDAction = 10*time.Second, 3, action
		}, nil)
		p.establish()
		// Liveness checks flow while the peer is there.
		var probes int
		p.net.Tap = func(d ike.Datagram) {
			if m, err := Decode(d.Data); err == nil && m.Exchange == INFORMATIONAL && !m.IsResponse() {
				probes++
			}
		}
		p.net.RunUntil(func() bool { return false }, time.Second, time.Minute)
		if probes < 4 || established(p.a, p.now()) != 1 {
			t.Fatalf("%d probes in a minute with a 10 s interval", probes)
		}
		p.net.Detach(addrB)
		p.run("peer declared dead", func() bool { return p.a.LastError("vpnA") != nil }, 2*time.Minute)
		if len(p.sinkA.Installed()) != 0 {
			t.Fatal("children survive a dead peer")
		}
		sas := p.a.IKESAs(p.now())
		switch action {
		case DPDClear:
			if len(sas) != 0 {
				t.Fatalf("clear: %d SAs left", len(sas))
			}
		case DPDRestart:
			if len(sas) != 1 || sas[0].State != ike.StateConnecting {
				t.Fatalf("restart: %+v", sas)
			}
			p.net.Attach(addrB, p.b)
			p.run("re-established", func() bool { return len(p.sinkA.Installed()) == 1 }, 5*time.Minute)
		}
	}
}

func TestCookieUnderLoad(t *testing.T) {
	p := newPair(t, nil, func(a, b *Config) { b.CookieThreshold = 1 })
	// A spoofed IKE_SA_INIT from elsewhere leaves a half-open SA on B.
	var first []byte
	p.net.Drop = func(d ike.Datagram) bool {
		if first == nil {
			first = append([]byte(nil), d.Data...)
			return true
		}
		return false
	}
	p.a.Initiate(p.now(), "vpnA")
	p.net.Step()
	bogus := append([]byte(nil), first...)
	bogus[0] ^= 0xff // another initiator SPI
	p.b.HandleDatagram(p.now(), ike.Datagram{Local: netip.AddrPortFrom(addrB, 500), Remote: netip.AddrPortFrom(addrA, 600), Data: bogus})
	if p.b.HalfOpen() < 1 {
		t.Fatalf("half-open %d", p.b.HalfOpen())
	}
	var cookies, initReqs int
	p.net.Tap = func(d ike.Datagram) {
		m, err := Decode(d.Data)
		if err != nil || m.Exchange != IKE_SA_INIT {
			return
		}
		if m.IsResponse() && findNotify(m.Payloads, COOKIE) != nil {
			cookies++
		}
		if !m.IsResponse() {
			initReqs++
		}
	}
	p.run("established through cookie", func() bool { return len(p.sinkA.Installed()) == 1 && len(p.sinkB.Installed()) == 1 }, time.Minute)
	if cookies == 0 || initReqs < 2 {
		t.Fatalf("cookie exchange not seen: %d cookies, %d requests", cookies, initReqs)
	}
	// The spoofed half-open SA times out.
	p.net.RunUntil(func() bool { return p.b.HalfOpen() == 0 }, time.Second, time.Minute)
	if p.b.HalfOpen() != 0 {
		t.Fatal("half-open SA never expired")
	}
}

// TestNATTraversal puts A behind a NAPT: NAT detection, the float to 4500,
// UDP encapsulation parameters on both sides and keepalives.
func TestNATTraversal(t *testing.T) {
	public := netip.MustParseAddr("203.0.113.5")
	p := newPair(t, func(a, b *Connection) {
		b.Remote = netip.AddrPortFrom(netip.IPv4Unspecified(), 500) // any peer
	}, nil)
	mapping := map[uint16]uint16{500: 40000, 4500: 40001}
	back := map[uint16]uint16{40000: 500, 40001: 4500}
	p.net.Rewrite = func(d *ike.Datagram) bool {
		if d.Local.Addr() == addrA {
			d.Local = netip.AddrPortFrom(public, mapping[d.Local.Port()])
		}
		if d.Remote.Addr() == public {
			d.Remote = netip.AddrPortFrom(addrA, back[d.Remote.Port()])
		}
		return true
	}
	var keepalives int
	p.net.Tap = func(d ike.Datagram) {
		if len(d.Data) == 1 && d.Data[0] == 0xff {
			keepalives++
		}
	}
	p.establish()
	for _, sa := range p.sinkA.Installed() {
		if sa.Encap == nil || sa.Encap.LocalPort != 4500 || sa.Encap.RemotePort != 4500 || !sa.Encap.LocalBehindNAT || sa.Encap.RemoteBehindNAT {
			t.Fatalf("A encap %+v", sa.Encap)
		}
	}
	for _, sa := range p.sinkB.Installed() {
		if sa.Encap == nil || sa.Encap.LocalPort != 4500 || sa.Encap.RemotePort != 40001 || !sa.Encap.RemoteBehindNAT || sa.Remote != public {
			t.Fatalf("B encap %+v remote %v", sa.Encap, sa.Remote)
		}
	}
	p.net.RunUntil(func() bool { return false }, time.Second, time.Minute)
	if keepalives < 2 {
		t.Fatalf("%d keepalives in a minute", keepalives)
	}
	// Rekeys keep working through the NAT.
	p.b.RekeyChild(p.now(), "vpnB")
	p.run("rekeyed", func() bool { return p.sinkA.Count("rekeyed") == 1 && p.quiet() }, time.Minute)
	checkChildrenMatch(t, p.sinkA, p.sinkB, 1)
}

func TestFragmentation(t *testing.T) {
	var many []ike.TrafficSelector
	for i := 0; i < 60; i++ {
		many = append(many, ike.PrefixSelector(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 16)))
	}
	p := newPair(t, func(a, b *Connection) {
		a.LocalTS, b.RemoteTS = many, many
	}, func(a, b *Config) { a.FragmentSize, b.FragmentSize = 400, 400 })
	var frags int
	p.net.Tap = func(d ike.Datagram) {
		if m, err := Decode(d.Data); err == nil && m.NextPayload == PayloadSKF {
			frags++
		}
		if len(d.Data) > 400 {
			if m, _ := Decode(d.Data); m != nil && m.Exchange != IKE_SA_INIT {
				t.Errorf("protected datagram of %d bytes above the fragment size", len(d.Data))
			}
		}
	}
	p.establish()
	if frags < 4 {
		t.Fatalf("%d fragments seen", frags)
	}
	for _, sa := range p.sinkA.Installed() {
		if len(sa.LocalTS) != 60 {
			t.Fatalf("%d local selectors", len(sa.LocalTS))
		}
	}
}

// keepSink keeps the engine's own key slices to check they are wiped.
type keepSink struct {
	ike.NopSink
	mu   sync.Mutex
	keys [][]byte
}

func (k *keepSink) ChildSAInstalled(sa ike.ChildSA) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.keys = append(k.keys, sa.In.Encryption, sa.Out.Encryption)
	return nil
}

func TestKeysWipedWhenSADies(t *testing.T) {
	ks := &keepSink{}
	p := newPair(t, nil, func(a, b *Config) { a.Sink = ks })
	p.a.Initiate(p.now(), "vpnA")
	p.run("up", func() bool { return established(p.a, p.now()) == 1 && len(ks.keys) == 2 }, time.Minute)
	p.a.mu.Lock()
	var ikeKeys [][]byte
	for _, s := range p.a.sas {
		ikeKeys = append(ikeKeys, s.keys.d, s.keys.ei, s.keys.er, s.keys.pi)
	}
	p.a.mu.Unlock()
	for _, k := range append(ks.keys, ikeKeys...) {
		if bytes.Equal(k, make([]byte, len(k))) {
			t.Fatal("key already zero")
		}
	}
	p.a.Terminate(p.now(), "vpnA")
	p.run("down", func() bool { return len(p.a.IKESAs(p.now())) == 0 }, time.Minute)
	for _, k := range append(ks.keys, ikeKeys...) {
		if !bytes.Equal(k, make([]byte, len(k))) {
			t.Fatal("key not wiped after the SA died")
		}
	}
}

func TestNoSecretsInLogs(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sink := iketest.NewSink()
	p := newPair(t, nil, func(a, b *Config) { a.Log, b.Log = log, log; a.Sink = sink })
	p.sinkA = sink
	p.establish()
	p.a.RekeyChild(p.now(), "vpnA")
	p.a.RekeyIKE(p.now(), "vpnA")
	p.run("rekeyed", func() bool { return p.quiet() && p.sinkA.Count("rekeyed") == 1 }, time.Minute)
	p.a.Terminate(p.now(), "vpnA")
	p.run("down", func() bool { return len(p.a.IKESAs(p.now())) == 0 }, time.Minute)
	out := buf.String()
	if !strings.Contains(out, "CHILD SA installed") {
		t.Fatal("log capture failed")
	}
	secrets := []string{string(p.connA.PSK), hex.EncodeToString(p.connA.PSK)}
	for _, e := range sink.Events() {
		for _, k := range [][]byte{e.SA.In.Encryption, e.SA.Out.Encryption} {
			if len(k) > 0 {
				secrets = append(secrets, hex.EncodeToString(k), string(k))
			}
		}
	}
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Fatalf("secret found in logs")
		}
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}
func (b *syncBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.buf.String() }

// TestCookieSecretRotation: a cookie stays valid for one rotation of the
// secret and is refused after two.
func TestCookieSecretRotation(t *testing.T) {
	e, err := New(Config{Sender: iketest.NewNetwork(1), Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ni, remote := make([]byte, 32), netip.MustParseAddrPort("192.0.2.9:500")
	e.rotateCookieSecret(now)
	c := e.cookieFor(&e.cookieSecret, e.cookieVersion, ni, remote, 7)
	if !e.validCookie(c, ni, remote, 7) || e.validCookie(c, ni, remote, 8) {
		t.Fatal("fresh cookie check wrong")
	}
	e.rotateCookieSecret(now.Add(cookieRotation))
	if !e.validCookie(c, ni, remote, 7) {
		t.Fatal("cookie refused after one rotation")
	}
	e.rotateCookieSecret(now.Add(2 * cookieRotation))
	if e.validCookie(c, ni, remote, 7) {
		t.Fatal("cookie accepted after two rotations")
	}
}
