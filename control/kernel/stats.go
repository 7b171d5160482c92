package kernel

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// SACounters are the kernel's counters of one SA.
type SACounters struct {
	Bytes             uint64 // encrypted (outbound) or decrypted (inbound) bytes
	Packets           uint64
	ReplayErrors      uint64 // packets dropped by the replay check
	ReplayWindowDrops uint64 // packets outside the replay window
	IntegrityFailures uint64 // ICV check failures (authentication)
}

// SAStats are the counters of one installed SA owned by bpfvpn.
type SAStats struct {
	Unit      int
	Peer      int // multipoint peer, 0 for the unit's own tunnel
	SPI       uint32
	Src, Dst  netip.Addr
	Direction string // "inbound", "outbound" or ""
	AddTime   uint64 // seconds since the epoch when the SA was installed
	SACounters
}

// SAStatistics returns the counters of every SA bpfvpn owns, relative to the
// last ClearStatistics.
func (r *Reconciler) SAStatistics() ([]SAStats, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	states, err := r.h.XfrmStateList(netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list xfrm states: %w", err)
	}
	_, pols, err := r.observeXfrm()
	if err != nil {
		return nil, err
	}
	var out []SAStats
	for _, s := range states {
		o, ok := ownedSA(s)
		if !ok {
			continue
		}
		c := SACounters{
			Bytes: s.Statistics.Bytes, Packets: s.Statistics.Packets,
			ReplayErrors: uint64(s.Statistics.Replay), ReplayWindowDrops: uint64(s.Statistics.ReplayWindow),
			IntegrityFailures: uint64(s.Statistics.Failed),
		}
		out = append(out, SAStats{
			Unit: o.Unit, Peer: o.Peer, SPI: o.SPI, Src: o.Src, Dst: o.Dst, Direction: r.direction(o, pols),
			AddTime: s.Statistics.AddTime, SACounters: c.sub(r.baselines[saID{o.Dst, o.SPI}]),
		})
	}
	return out, nil
}

func (c SACounters) sub(b SACounters) SACounters {
	return SACounters{
		Bytes: subSat(c.Bytes, b.Bytes), Packets: subSat(c.Packets, b.Packets),
		ReplayErrors: subSat(c.ReplayErrors, b.ReplayErrors), ReplayWindowDrops: subSat(c.ReplayWindowDrops, b.ReplayWindowDrops),
		IntegrityFailures: subSat(c.IntegrityFailures, b.IntegrityFailures),
	}
}

// ClearStatistics remembers the current counters as the new zero: of the SAs
// of unit, or of every SA and the xfrm_stat counters when unit is -1
// (`clear security ipsec statistics [index N]`). The kernel's counters are
// not touched.
func (r *Reconciler) ClearStatistics(unit int) error {
	states, err := r.h.XfrmStateList(netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("clear statistics: list xfrm states: %w", err)
	}
	var xs XfrmStat
	if unit < 0 {
		raw, err := r.rawXfrmStat()
		if err != nil {
			return fmt.Errorf("clear statistics: %w", err)
		}
		xs = raw
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	live := map[saID]bool{}
	for _, s := range states {
		u, ok := unitOfXfrm(s.Ifid, s.Reqid)
		if !ok {
			continue
		}
		dst, _ := netip.AddrFromSlice(s.Dst)
		id := saID{dst.Unmap(), uint32(s.Spi)}
		live[id] = true
		if unit >= 0 && u != unit {
			continue
		}
		r.baselines[id] = SACounters{
			Bytes: s.Statistics.Bytes, Packets: s.Statistics.Packets,
			ReplayErrors: uint64(s.Statistics.Replay), ReplayWindowDrops: uint64(s.Statistics.ReplayWindow),
			IntegrityFailures: uint64(s.Statistics.Failed),
		}
	}
	for id := range r.baselines {
		if !live[id] {
			delete(r.baselines, id) // the SA is gone
		}
	}
	if unit < 0 {
		r.statBase = xs
	}
	return nil
}
