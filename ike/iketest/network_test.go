package iketest

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/bpfvpn/bpfvpn/ike"
)

// echo answers every datagram once and counts ticks.
type echo struct {
	mu    sync.Mutex
	net   *Network
	got   int
	ticks int
	timer time.Time
}

func (e *echo) HandleDatagram(now time.Time, d ike.Datagram) {
	e.mu.Lock()
	e.got++
	e.mu.Unlock()
	if string(d.Data) == "ping" {
		e.net.Send(ike.Datagram{Local: d.Local, Remote: d.Remote, Data: []byte("pong")})
	}
}
func (e *echo) Tick(now time.Time) { e.mu.Lock(); e.ticks++; e.mu.Unlock() }
func (e *echo) NextTimer() (time.Time, bool) {
	return e.timer, !e.timer.IsZero()
}

func TestNetworkDeliversAndAdvances(t *testing.T) {
	n := NewNetwork(1)
	a, b := &echo{net: n}, &echo{net: n}
	aa, ba := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	n.Attach(aa, a)
	n.Attach(ba, b)
	n.Send(ike.Datagram{Local: netip.AddrPortFrom(aa, 500), Remote: netip.AddrPortFrom(ba, 500), Data: []byte("ping")})
	n.Settle(10)
	if a.got != 1 || b.got != 1 {
		t.Fatalf("a=%d b=%d", a.got, b.got)
	}
	start := n.Now()
	b.timer = start.Add(3 * time.Second)
	if !n.RunUntil(func() bool { return b.ticks > 0 }, time.Minute, time.Hour) {
		t.Fatal("timer never fired")
	}
	if n.Now().Sub(start) != 3*time.Second {
		t.Fatalf("clock jumped to %v", n.Now().Sub(start))
	}
	n.Drop = func(ike.Datagram) bool { return true }
	n.Send(ike.Datagram{Local: netip.AddrPortFrom(aa, 500), Remote: netip.AddrPortFrom(ba, 500), Data: []byte("ping")})
	n.Settle(10)
	if _, dropped := n.Counts(); dropped != 1 || b.got != 1 {
		t.Fatalf("drop failed")
	}
}
