package udp

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/bpfvpn/bpfvpn/ike"
)

type recorder struct {
	mu   sync.Mutex
	got  []ike.Datagram
	cond chan struct{}
}

func (r *recorder) HandleDatagram(now time.Time, d ike.Datagram) {
	r.mu.Lock()
	r.got = append(r.got, d)
	r.mu.Unlock()
	r.cond <- struct{}{}
}
func (r *recorder) Tick(time.Time)               {}
func (r *recorder) NextTimer() (time.Time, bool) { return time.Time{}, false }

func TestNonESPMarker(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	r, err := Listen(nil, []Listener{{Addr: netip.AddrPortFrom(lo, 0)}, {Addr: netip.AddrPortFrom(lo, 0), NATT: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rec := &recorder{cond: make(chan struct{}, 8)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx, rec) }()
	defer func() { cancel(); <-done }()

	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	plain, natt := r.LocalAddrs()[0], r.LocalAddrs()[1]
	// Port "500": delivered as is. Port "4500": marker stripped; ESP and
	// keepalives are not IKE.
	peer.WriteToUDPAddrPort([]byte("ike-plain"), plain)
	peer.WriteToUDPAddrPort([]byte{0xff}, natt)
	peer.WriteToUDPAddrPort([]byte{0, 0, 0, 1, 9, 9}, natt)
	peer.WriteToUDPAddrPort(append([]byte{0, 0, 0, 0}, "ike-natt"...), natt)
	for i := 0; i < 2; i++ {
		select {
		case <-rec.cond:
		case <-time.After(5 * time.Second):
			t.Fatal("datagram not delivered")
		}
	}
	rec.mu.Lock()
	byLocal := map[netip.AddrPort]string{}
	for _, d := range rec.got {
		byLocal[d.Local] = string(d.Data)
	}
	rec.mu.Unlock()
	if byLocal[plain] != "ike-plain" || byLocal[natt] != "ike-natt" {
		t.Fatalf("got %q", byLocal)
	}

	// Sending from the NAT-T socket adds the marker, except for keepalives.
	pa := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	if err := r.Send(ike.Datagram{Local: natt, Remote: pa, Data: []byte("resp")}); err != nil {
		t.Fatal(err)
	}
	if err := r.Send(ike.Datagram{Local: natt, Remote: pa, Data: []byte{0xff}}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := peer.ReadFromUDPAddrPort(buf)
	if err != nil || !bytes.Equal(buf[:n], append([]byte{0, 0, 0, 0}, "resp"...)) {
		t.Fatalf("got %x %v", buf[:n], err)
	}
	n, _, err = peer.ReadFromUDPAddrPort(buf)
	if err != nil || !bytes.Equal(buf[:n], []byte{0xff}) {
		t.Fatalf("keepalive got %x %v", buf[:n], err)
	}
}

type counter struct {
	mu sync.Mutex
	n  int
}

func (c *counter) HandleDatagram(time.Time, ike.Datagram) { c.mu.Lock(); c.n++; c.mu.Unlock() }
func (c *counter) Tick(time.Time)                         {}
func (c *counter) NextTimer() (time.Time, bool)           { return time.Time{}, false }
func (c *counter) count() int                             { c.mu.Lock(); defer c.mu.Unlock(); return c.n }

// A burst of requests sent before the engine reads any of them (a flood of
// IKE_SA_INITs) must fit the socket's queue: a drop costs the peer a whole
// retransmission timeout.
func TestReceiveBufferHoldsBurst(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SO_RCVBUFFORCE needs root (net.core.rmem_max caps SO_RCVBUF)")
	}
	lo := netip.MustParseAddr("127.0.0.1")
	r, err := Listen(nil, []Listener{{Addr: netip.AddrPortFrom(lo, 0)}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	const burst = 2000
	msg := make([]byte, 400)
	for i := 0; i < burst; i++ {
		if _, err := peer.WriteToUDPAddrPort(msg, r.LocalAddrs()[0]); err != nil {
			t.Fatal(err)
		}
	}
	c := &counter{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx, c) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for c.count() < burst && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := c.count(); got != burst {
		t.Fatalf("received %d of %d datagrams of a burst", got, burst)
	}
}
