package maps

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
)

// FlowCacheWindowJiffies is FC_WINDOW_JIFFIES of bpf/maps.h: a fill
// serves hits for 25 jiffies (250 ms at HZ 100, 25 ms at HZ 1000).
const FlowCacheWindowJiffies = 25

// FlowCacheWindow is FC_WINDOW_NS of bpf/maps.h: the longest a flow-cache
// fill serves hits, and the grace the data plane adds to idle timeouts.
const FlowCacheWindow = 250_000_000

// InvalidateFlowCache makes every CPU's flow-cache entry stale: the next
// packet of each cached flow goes through the full path (session lookup,
// expiry, policy generation, route). Call it after deleting or rewriting
// sessions and after reprogramming the tables; it also (re)enables the
// cache with an insert bound of a quarter of the session table and the
// standard fill window. The new
// epoch is a fresh random value, so two writers that race never leave the
// old value in place.
func (s *Set) InvalidateFlowCache() error {
	var cur FlowCtl
	if err := s.FlowCacheCtl.Lookup(uint32(0), &cur); err != nil {
		return fmt.Errorf("read flow cache state: %w", err)
	}
	next := cur
	for next.Epoch == cur.Epoch {
		next.Epoch = rand.Uint64()
	}
	next.InsertLimit = uint64(s.Sessions.MaxEntries() / 4)
	next.WindowJiffies = FlowCacheWindowJiffies
	if err := s.FlowCacheCtl.Update(uint32(0), &next, 0); err != nil {
		return fmt.Errorf("write flow cache epoch: %w", err)
	}
	return nil
}

// FlowPending are session counts served from the flow cache and not yet
// added to the session entry; LastNs is the latest fill of those entries
// (the hits came up to FlowCacheWindow later).
type FlowPending struct {
	Packets, Bytes [2]uint64
	LastNs         uint64
}

// flowKey is the session key of a cache entry's directed IPv4 tuple (as
// fc_key_of builds it in bpf/flowcache.h).
func flowKey(e *FlowEntry) SessKey {
	var p [4]byte
	binary.NativeEndian.PutUint32(p[:], e.Ports)
	sp, dp := binary.BigEndian.Uint16(p[0:2]), binary.BigEndian.Uint16(p[2:4])
	var sb, db [4]byte
	binary.NativeEndian.PutUint32(sb[:], e.Saddr)
	binary.NativeEndian.PutUint32(db[:], e.Daddr)
	sh, dh := binary.BigEndian.Uint32(sb[:]), binary.BigEndian.Uint32(db[:])
	k := SessKey{Proto: e.Proto, Family: AFInet}
	if sh < dh || (sh == dh && sp < dp) {
		k.A[0], k.B[0], k.Pa, k.Pb = e.Saddr, e.Daddr, sp, dp
	} else {
		k.A[0], k.B[0], k.Pa, k.Pb = e.Daddr, e.Saddr, dp, sp
	}
	return k
}

// PendingFlowCounts sums, per session key, the hits that every CPU's flow
// cache holds for it. A read that races with a flush may count a batch
// twice or not at all for that one read.
func (s *Set) PendingFlowCounts() (map[SessKey]FlowPending, error) {
	out := map[SessKey]FlowPending{}
	var slot uint32
	var per []FlowEntry
	it := s.FlowCache.Iterate()
	for it.Next(&slot, &per) {
		for i := range per {
			e := &per[i]
			if e.Pkts == 0 || e.Ifindex == 0 {
				continue
			}
			k := flowKey(e)
			p := out[k]
			d := 0
			if e.Dir != 0 {
				d = 1
			}
			p.Packets[d] += e.Pkts
			p.Bytes[d] += e.Bytes
			p.LastNs = max(p.LastNs, e.FillNs)
			out[k] = p
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("iterate flow cache: %w", err)
	}
	return out, nil
}
