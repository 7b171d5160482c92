package dataplane_test

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/bpfvpn/bpfvpn/loader"
)

var probeSeq int

// probeUDP sends one numbered datagram on c and reports whether its echo
// came back within wait (late echoes of earlier probes are skipped).
func probeUDP(c net.Conn, wait time.Duration) bool {
	probeSeq++
	want := fmt.Sprintf("probe-%d", probeSeq)
	c.SetDeadline(time.Now().Add(wait))
	if _, err := c.Write([]byte(want)); err != nil {
		return false
	}
	b := make([]byte, 32)
	for {
		n, err := c.Read(b)
		if err != nil {
			return false
		}
		if string(b[:n]) == want {
			return true
		}
	}
}

// TestNetnsRouteChange: a UDP flow forwarded with XDP_REDIRECT from the
// flow cache follows a route change on the router: a blackhole route for
// the server stops it, removing the route brings it back, although every
// probe uses the same 5-tuple (the same cached session and route).
func TestNetnsRouteChange(t *testing.T) {
	l := newLab(t)
	l.attach(t, labSpec())
	cc := l.udpEcho(t)
	var err error
	for i := 0; i < 3; i++ {
		if !probeUDP(cc, netTimeout) {
			t.Fatalf("probe %d through the router lost", i)
		}
	}
	if l.counter(t, loader.BpfvpnCounterIdCNT_FLOW_CACHE_HIT) == 0 {
		t.Fatal("no probe was served from the flow cache")
	}

	_, dst, _ := net.ParseCIDR("10.10.2.2/32")
	blackhole := &netlink.Route{Dst: dst, Type: unix.RTN_BLACKHOLE}
	inNS(t, l.rt, func() { err = netlink.RouteAdd(blackhole) })
	if err != nil {
		t.Fatal(err)
	}
	// The cache may carry the flow on its old route for one fill window
	// (at most 250 ms); wait for the first lost probe with a deadline.
	deadline := time.Now().Add(10 * time.Second)
	for probeUDP(cc, 200*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("probes still answered 10 s after a blackhole route for the server")
		}
	}
	for i := 0; i < 3; i++ {
		if probeUDP(cc, 200*time.Millisecond) {
			t.Fatalf("probe %d answered through a blackhole route", i)
		}
	}

	inNS(t, l.rt, func() { err = netlink.RouteDel(blackhole) })
	if err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for !probeUDP(cc, 200*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("probes not answered 10 s after the blackhole route was removed")
		}
	}
	redirects := l.counter(t, loader.BpfvpnCounterIdCNT_REDIRECT)
	if !probeUDP(cc, netTimeout) {
		t.Fatal("probe lost after the route came back")
	}
	if l.counter(t, loader.BpfvpnCounterIdCNT_REDIRECT) <= redirects {
		t.Error("the flow is no longer forwarded with XDP_REDIRECT after the route came back")
	}
}
