package lab

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// A TCPSink counts every byte of one connection and reads its MSS; closed
// before any connection, it reports the failed accept.
func TestTCPSink(t *testing.T) {
	requireRoot(t)
	ns, err := NewAnonymous()
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if err := Do(ns, func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.LinkSetUp(lo)
	}); err != nil {
		t.Fatalf("lo up: %v", err)
	}
	loopback := netip.MustParseAddr("127.0.0.1")

	s, err := StartTCPSink(ns, loopback, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := s.Dial(ns, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	const n = 300000
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(bytes.Repeat([]byte{'x'}, n)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if res := s.Wait(); res.Err != nil || res.Bytes != n || res.MSS <= 0 {
		t.Errorf("sink: %d bytes, MSS %d, %v; want %d bytes, an MSS and no error", res.Bytes, res.MSS, res.Err, n)
	}

	idle, err := StartTCPSink(ns, loopback, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	idle.Close()
	if res := idle.Wait(); res.Err == nil {
		t.Error("a sink closed before any connection reports no error")
	}
}
