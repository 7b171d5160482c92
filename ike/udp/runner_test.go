package udp

import (
	"bytes"
	"context"
	"net"
	"net/netip"
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
