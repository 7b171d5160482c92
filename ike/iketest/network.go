// Package iketest is the test harness shared by the IKE engines: an
// in-memory network with a fake clock that can lose, reorder, duplicate and
// NAT-rewrite datagrams, and a recording SASink.
package iketest

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/bpfvpn/bpfvpn/ike"
)

// Network connects engines by address. It is deterministic for a given seed.
// Sends only enqueue; Step delivers, so engines never re-enter each other.
type Network struct {
	mu      sync.Mutex
	now     time.Time
	nodes   map[netip.Addr]ike.Engine
	queue   []ike.Datagram
	rng     *rand.Rand
	sent    int
	dropped int

	// Drop, when set, decides per datagram whether it is lost.
	Drop func(d ike.Datagram) bool
	// LossRate drops that fraction of datagrams at random.
	LossRate float64
	// Reorder delivers queued datagrams in random order.
	Reorder bool
	// Rewrite may change addresses in flight (NAT simulation); it returns
	// false to drop.
	Rewrite func(d *ike.Datagram) bool
	// Tap sees every datagram that is delivered.
	Tap func(d ike.Datagram)
}

// NewNetwork starts the fake clock at a fixed instant.
func NewNetwork(seed uint64) *Network {
	return &Network{
		now:   time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		nodes: map[netip.Addr]ike.Engine{},
		rng:   rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}
}

// Now is the fake clock.
func (n *Network) Now() time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.now
}

// Attach makes eng receive every datagram addressed to addr (any port).
func (n *Network) Attach(addr netip.Addr, eng ike.Engine) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.nodes[addr] = eng
}

// Detach disconnects addr: datagrams to it are lost (a dead peer).
func (n *Network) Detach(addr netip.Addr) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.nodes, addr)
}

// Send implements ike.Sender.
func (n *Network) Send(d ike.Datagram) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	d.Data = append([]byte(nil), d.Data...)
	n.queue = append(n.queue, d)
	n.sent++
	return nil
}

// Inject queues a datagram as if it came from the wire.
func (n *Network) Inject(d ike.Datagram) { _ = n.Send(d) }

// Counts returns datagrams sent and dropped so far.
func (n *Network) Counts() (sent, dropped int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.sent, n.dropped
}

// Step delivers every datagram queued now (not those sent in response) and
// reports how many it handled.
func (n *Network) Step() int {
	n.mu.Lock()
	q := n.queue
	n.queue = nil
	if n.Reorder {
		n.rng.Shuffle(len(q), func(i, j int) { q[i], q[j] = q[j], q[i] })
	}
	now := n.now
	n.mu.Unlock()
	for _, d := range q {
		// Hooks run without the lock: they may use the Network.
		lost := n.Drop != nil && n.Drop(d)
		if !lost && n.Rewrite != nil {
			lost = !n.Rewrite(&d)
		}
		n.mu.Lock()
		if !lost && n.LossRate > 0 && n.rng.Float64() < n.LossRate {
			lost = true
		}
		eng := n.nodes[d.Remote.Addr()]
		if lost || eng == nil {
			n.dropped++
		}
		tap := n.Tap
		n.mu.Unlock()
		if lost || eng == nil {
			continue
		}
		if tap != nil {
			tap(d)
		}
		// The receiver sees the datagram from its own point of view.
		eng.HandleDatagram(now, ike.Datagram{Local: d.Remote, Remote: d.Local, Data: d.Data})
	}
	return len(q)
}

// Advance moves the clock forward by d and ticks every engine.
func (n *Network) Advance(d time.Duration) {
	n.mu.Lock()
	n.now = n.now.Add(d)
	now := n.now
	engines := n.engines()
	n.mu.Unlock()
	for _, e := range engines {
		e.Tick(now)
	}
}

func (n *Network) engines() []ike.Engine {
	out := make([]ike.Engine, 0, len(n.nodes))
	for _, e := range n.nodes {
		out = append(out, e)
	}
	return out
}

// Settle delivers datagrams until the network is quiet, without moving the
// clock; it stops after max rounds.
func (n *Network) Settle(max int) {
	for i := 0; i < max && n.Step() > 0; i++ {
	}
}

// RunUntil alternates delivery and clock advances (jumping to the earliest
// engine timer, at most step at a time) until cond holds or the fake clock
// has advanced by limit. It reports whether cond held.
func (n *Network) RunUntil(cond func() bool, step, limit time.Duration) bool {
	n.mu.Lock()
	end := n.now.Add(limit)
	n.mu.Unlock()
	for {
		n.Settle(1000)
		if cond() {
			return true
		}
		n.mu.Lock()
		now := n.now
		next := now.Add(step)
		for _, e := range n.engines() {
			if t, ok := e.NextTimer(); ok && t.After(now) && t.Before(next) {
				next = t
			}
		}
		n.mu.Unlock()
		if next.After(end) {
			return cond()
		}
		n.Advance(next.Sub(now))
	}
}
