package daemon

import (
	"net/netip"
	"sync"
	"time"

	"github.com/bpfvpn/bpfvpn/control/kernel"
	"github.com/bpfvpn/bpfvpn/ike/ikev1"
)

// saStatistics reads the kernel's counters of the SAs bpfvpn owns
// (*kernel.Reconciler implements it).
type saStatistics interface {
	SAStatistics() ([]kernel.SAStats, error)
}

// The gateway's kernel component is the counter source (newLivenessProbe
// finds it by a type assertion on the IKE component's saInstaller).
var _ interface {
	saStatistics
	saInstaller
} = (*kernel.Reconciler)(nil)

// statsMaxAge is how long one reading of the SA counters serves every
// tunnel that polls: tunnels whose polls fall together share one netlink
// dump.
const statsMaxAge = time.Second

// statsCache shares readings of one counter source between tunnels.
type statsCache struct {
	src  saStatistics
	mu   sync.Mutex
	at   time.Time
	snap []kernel.SAStats
	err  error
}

func (c *statsCache) read(now time.Time) ([]kernel.SAStats, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at.IsZero() || now.Sub(c.at) >= statsMaxAge || now.Before(c.at) {
		c.snap, c.err = c.src.SAStatistics()
		c.at = now
	}
	return c.snap, c.err
}

var (
	cachesMu sync.Mutex
	caches   = map[saStatistics]*statsCache{}
)

// cacheOf returns the shared cache of src.
func cacheOf(src saStatistics) *statsCache {
	cachesMu.Lock()
	defer cachesMu.Unlock()
	c := caches[src]
	if c == nil {
		c = &statsCache{src: src}
		caches[src] = c
	}
	return c
}

// livenessProbe tells an IKEv1 engine's dead peer detection that ESP
// arrived from the peer: once per DPD interval it reads the packet
// counters of the tunnel's inbound SAs and reports whether any grew since
// the last reading. Optimized and probe-idle DPD then send R-U-THERE only
// when nothing at all came from the peer for an interval (a report is at
// most one interval old when the engine checks, so steady ESP keeps DPD
// quiet whatever the phase of the two timers). A nil probe reports
// nothing.
type livenessProbe struct {
	stats  *statsCache
	unit   int
	local  netip.Addr
	remote netip.Addr
	every  time.Duration

	mu   sync.Mutex
	next time.Time
	// last is the inbound packet count by SPI at the last reading.
	last map[uint32]uint64
}

// newLivenessProbe watches the inbound SAs of st0.unit from remote (local
// is the tunnel's local address; a multipoint unit carries SAs of other
// peers too) for a gateway with dpd. It returns nil when
// there is nothing to do: no counter source (kern does not read SA
// counters), DPD off, or always-send (which ignores liveness).
func newLivenessProbe(kern any, unit int, local, remote netip.Addr, dpd ikev1.DPD) *livenessProbe {
	src, ok := kern.(saStatistics)
	if !ok || dpd.Interval <= 0 || dpd.Mode == ikev1.DPDAlwaysSend {
		return nil
	}
	return &livenessProbe{stats: cacheOf(src), unit: unit, local: local.Unmap(), remote: remote.Unmap(), every: dpd.Interval}
}

// earlier folds the probe's next reading into an engine's next timer
// (the mux ticks an engine only when its NextTimer is due).
func (p *livenessProbe) earlier(at time.Time, ok bool) (time.Time, bool) {
	if p == nil {
		return at, ok
	}
	p.mu.Lock()
	next := p.next
	p.mu.Unlock()
	if !ok || next.Before(at) {
		return next, true
	}
	return at, ok
}

// poll reads the counters when a reading is due and reports whether
// inbound ESP arrived since the last reading.
func (p *livenessProbe) poll(now time.Time) bool {
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if now.Before(p.next) {
		return false
	}
	p.next = now.Add(p.every)
	sas, err := p.stats.read(now)
	if err != nil {
		// Nothing is learnt: DPD probes as if no ESP had arrived.
		return false
	}
	cur := map[uint32]uint64{}
	for _, s := range sas {
		if s.Unit != p.unit || !(s.Direction == "inbound" || s.Direction == "" && s.Dst == p.local) ||
			p.remote.IsValid() && s.Src != p.remote {
			continue
		}
		cur[s.SPI] = s.Packets
	}
	grew := false
	for spi, n := range cur {
		// An SA new since the last reading (or at the first one) counts
		// what it received since it was installed; a count below the
		// last one was cleared (clear security ipsec statistics).
		if n > p.last[spi] {
			grew = true
		}
	}
	p.last = cur
	return grew
}
