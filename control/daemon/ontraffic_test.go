package daemon

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/bpfvpn/bpfvpn/control/lab"
	"github.com/bpfvpn/bpfvpn/ike"
	"github.com/bpfvpn/bpfvpn/ike/ikev1"
	"github.com/bpfvpn/bpfvpn/ike/ikev2"
)

// TestIKEComponentOnTrafficTakesOverStalledPeer reproduces what a peer
// that re-read its configuration mid-negotiation leaves behind: SRX1
// answered its first message and waits for the next, which never comes. Traffic
// routed into SRX1's on-traffic tunnel must bring the tunnel up after
// ResponderStall, not after NegotiationTimeout or the engine's half-open
// expiry.
func TestIKEComponentOnTrafficTakesOverStalledPeer(t *testing.T) {
	old := ResponderStall
	ResponderStall = time.Second
	t.Cleanup(func() { ResponderStall = old })
	for _, version := range []string{"", "v2-only"} {
		t.Run("version="+version, func(t *testing.T) { testOnTrafficStalledPeer(t, version) })
	}
}

func testOnTrafficStalledPeer(t *testing.T, version string) {
	ns := ikeNamespace(t)
	ctx := context.Background()
	opts := lab.ConfigOptions{IKEVersion: version}
	cfg1 := labConfig(t, lab.SRX1, opts, "set security ipsec vpn VPN-to-Host2 establish-tunnels on-traffic\n")
	cfg2 := labConfig(t, lab.SRX2, opts, "set security ipsec vpn VPN-to-Host1 establish-tunnels on-traffic\n")
	srx1, srx2 := newTestGateway(t, ns, "srx1"), newTestGateway(t, ns, "srx2")
	if err := srx1.c.Apply(ctx, cfg1); err != nil {
		t.Fatal(err)
	}
	if err := srx2.c.Apply(ctx, cfg2); err != nil {
		t.Fatal(err)
	}

	// The first message of SRX2's configuration (Main Mode or
	// IKE_SA_INIT), sent from another port of SRX2's address by an engine
	// that then goes away.
	tunnels, err := translate(cfg2)
	if err != nil || len(tunnels) != 1 {
		t.Fatalf("SRX2 tunnels %v: %v", tunnels, err)
	}
	first := firstMessage(t, tunnels[0])
	err = lab.Do(ns, func() error {
		conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP("172.16.23.1")})
		if err != nil {
			return err
		}
		defer conn.Close()
		_, err = conn.WriteToUDP(first, &net.UDPAddr{IP: net.ParseIP("172.16.13.1"), Port: 500})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "SRX1 answering the stalled Main Mode", 10*time.Second, func() bool {
		for _, s := range srx1.c.IKESAs() {
			if s.Role == "Responder" && s.RemoteAddress.Addr() == netip.MustParseAddr("172.16.23.1") {
				return true
			}
		}
		return false
	})

	// Host1's packets keep being routed into st0.0.
	start := time.Now()
	waitFor(t, "the tunnel up on traffic", 20*time.Second, func() bool {
		srx1.c.TrafficStart(0)
		_, ok := matched(srx1.kern, srx2.kern, 0)
		return ok
	})
	t.Logf("tunnel up %v after the first packet (ResponderStall %v)", time.Since(start).Round(time.Millisecond), ResponderStall)
}

// firstMessage returns the first datagram an engine for tunnel tu sends
// when it initiates.
func firstMessage(t *testing.T, tu *Tunnel) []byte {
	t.Helper()
	var mu sync.Mutex
	var first []byte
	send := ike.SenderFunc(func(d ike.Datagram) error {
		mu.Lock()
		defer mu.Unlock()
		if first == nil {
			first = append([]byte(nil), d.Data...)
		}
		return nil
	})
	log := slog.New(slog.NewTextHandler(testWriter{t, "gone"}, nil))
	switch {
	case tu.V1 != nil:
		e, err := ikev1.New([]ikev1.Peer{*tu.V1}, send, nil, ikev1.Options{Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Initiate(time.Now(), tu.Gateway); err != nil {
			t.Fatal(err)
		}
	case tu.V2 != nil:
		e, err := ikev2.New(ikev2.Config{Sender: send, Log: log})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.AddConnection(*tu.V2); err != nil {
			t.Fatal(err)
		}
		if err := e.Initiate(time.Now(), tu.VPN); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if first == nil {
		t.Fatal("the initiating engine sent nothing")
	}
	return first
}
