package dataplane

import (
	"fmt"
	stdmaps "maps"
	"net/netip"
	"slices"

	"github.com/bpfvpn/bpfvpn/maps"
)

// PairWriter writes the policy tables of a configuration into the inactive
// generation zone pair by zone pair, rewriting only the pairs whose
// policies differ from what that generation already holds, and then
// switches generation with one write of the config map. Sessions are
// re-checked against the new generation by the programs on their next
// packet, as after Apply.
//
// It remembers, per generation, the policies, map keys and policy rows it
// wrote for each pair. A generation it did not write itself (dataplane.Apply
// or Attach wrote it; call Forget then) is unknown and is rewritten whole
// the first time. Write writes only the policy tables; Apply also the
// zones, interfaces and local addresses, as dataplane.Apply does.
type PairWriter struct {
	gens [2]map[pairID]*pairState
	// rows[g] is the policy-row array last written into generation g (nil
	// when unknown); index[g] its policy index.
	rows  [2][]maps.Policy
	index [2]map[string]uint32
	// spare is a rows array no generation is described by, for reuse.
	spare []maps.Policy
	// layout places each pair's rows; it changes only when a pair outgrows
	// its region, so that a change in one pair rewrites only its rows.
	layout map[pairID]region
	// genLayout[g] is the layout generation g was last written with.
	genLayout [2]map[pairID]region
}

// region is a pair's place in the policy-row array: base and room.
type region struct{ base, room uint32 }

type pairID struct{ from, to uint16 }

// pairState is what one zone pair's tables hold in one generation.
type pairState struct {
	policies []Policy
	addr4    []maps.Addr4Key
	addr6    []maps.Addr6Key
	apps     []maps.AppKey
	sets     []uint32
	rows     []maps.Policy // policy rows, at the pair's base
	keys     []string      // "from/to/name" of each policy (PolicyIndex keys)
	vals     pairVals      // values to write with the keys (until written)
}

// pairSetBase numbers the policy sets of one zone pair in one generation:
// gen(1) 1(1) from(6) to(6) n(17). Apply numbers its sets from gen<<30 + 1
// with bit 29 clear, so the two never collide.
func pairSetBase(gen uint32, p pairID) uint32 {
	return setIDBase(gen) | 1<<29 | uint32(p.from&63)<<23 | uint32(p.to&63)<<17
}

const maxPairSets = 1<<17 - 1

// Forget marks both generations unknown (after dataplane.Apply or Attach
// wrote one).
func (w *PairWriter) Forget() {
	w.gens = [2]map[pairID]*pairState{}
	w.rows = [2][]maps.Policy{}
	w.index = [2]map[string]uint32{}
	w.genLayout = [2]map[pairID]region{}
}

// PairWriteStats says what a Write did.
type PairWriteStats struct {
	Gen          uint32
	Whole        bool // the generation was unknown and written whole
	PairsWritten int
	PairsKept    int
}

// Write programs spec's policies into the inactive generation of m and
// switches to it; zones, interfaces and local addresses must not have
// changed since they were last written (Apply writes them too). It returns the policy index (as Compiled.PolicyIndex).
// On an error the active generation is untouched.
func (w *PairWriter) Write(m *maps.Set, spec *Spec) (map[string]uint32, PairWriteStats, error) {
	cur, err := m.ReadConfig()
	if err != nil {
		return nil, PairWriteStats{}, err
	}
	zones, err := ExistingZones(m)
	if err != nil {
		return nil, PairWriteStats{}, err
	}
	slot, gen := nextGeneration(cur.Gen)
	index, st, err := w.fill(m, spec, slot, zones)
	st.Gen = gen
	if err != nil {
		return nil, st, err
	}
	cur.Gen = gen
	if err := m.WriteConfig(cur); err != nil {
		return nil, st, fmt.Errorf("switch to policy generation %d: %w", gen, err)
	}
	return index, st, m.InvalidateFlowCache()
}

// Apply is dataplane.Apply with the policy tables written by w: zones,
// interfaces and local addresses are updated in place, the policies of the
// changed zone pairs go into the inactive generation, and one write of the
// config map (with the new tcp-mss, timeouts, default policy) switches to
// it. On a compile error nothing is written.
func (w *PairWriter) Apply(m *maps.Set, spec *Spec, resolve Resolver) (map[string]uint32, PairWriteStats, error) {
	if resolve == nil {
		resolve = NetlinkResolver
	}
	cur, err := m.ReadConfig()
	if err != nil {
		return nil, PairWriteStats{}, err
	}
	existing, err := ExistingZones(m)
	if err != nil {
		return nil, PairWriteStats{}, err
	}
	slot, gen := nextGeneration(cur.Gen)
	// Everything but the policies, compiled as Apply does.
	tables := *spec
	tables.Policies = nil
	c, err := Compile(&tables, gen, existing, resolve)
	if err != nil {
		return nil, PairWriteStats{}, err
	}
	// The policies are checked before anything is written.
	if err := checkPolicyCounts(spec, c.ZoneIDs); err != nil {
		return nil, PairWriteStats{}, err
	}
	if err := writeTables(m, c); err != nil {
		return nil, PairWriteStats{}, err
	}
	index, st, err := w.fill(m, spec, slot, c.ZoneIDs)
	st.Gen = gen
	if err != nil {
		return nil, st, err
	}
	if err := m.WriteConfig(c.Config); err != nil {
		return nil, st, fmt.Errorf("switch to policy generation %d: %w", gen, err)
	}
	// cached verdicts were taken under the old tables and generation
	return index, st, m.InvalidateFlowCache()
}

// checkPolicyCounts checks the zones and the limits of spec's policies.
func checkPolicyCounts(spec *Spec, zones map[string]uint16) error {
	_, _, err := groupPolicies(spec, zones)
	return err
}

// groupPolicies groups spec's policies by zone pair, in order, within the
// data plane's limits. A pair whose policies are contiguous in spec (one
// context per pair, as FromConfig makes them) gets a sub-slice of
// spec.Policies, not a copy.
func groupPolicies(spec *Spec, zones map[string]uint16) ([]pairID, map[pairID][]Policy, error) {
	var order []pairID
	groups := map[pairID][]Policy{}
	// Runs of one pair: [start, end) in spec.Policies.
	type run struct {
		k          pairID
		start, end int
	}
	var runs []run
	runsOf := map[pairID]int{}
	var lastFrom, lastTo string
	var last pairID
	for i, p := range spec.Policies {
		if i > 0 && p.FromZone == lastFrom && p.ToZone == lastTo {
			runs[len(runs)-1].end = i + 1
			continue
		}
		f, ok := zones[p.FromZone]
		if !ok {
			return nil, nil, fmt.Errorf("policy %s: unknown from-zone %q", p.Name, p.FromZone)
		}
		t, ok := zones[p.ToZone]
		if !ok {
			return nil, nil, fmt.Errorf("policy %s: unknown to-zone %q", p.Name, p.ToZone)
		}
		last, lastFrom, lastTo = pairID{f, t}, p.FromZone, p.ToZone
		if runsOf[last] == 0 {
			order = append(order, last)
		}
		runsOf[last]++
		runs = append(runs, run{last, i, i + 1})
	}
	for _, r := range runs {
		ps := spec.Policies[r.start:r.end:r.end]
		if runsOf[r.k] == 1 {
			groups[r.k] = ps
			continue
		}
		groups[r.k] = append(groups[r.k], ps...)
	}
	total := 0
	for _, k := range order {
		n := len(groups[k])
		if n > maps.MaxPoliciesPerZonePair {
			return nil, nil, fmt.Errorf("zone pair %d→%d has %d policies; at most %d", k.from, k.to, n, maps.MaxPoliciesPerZonePair)
		}
		total += n
	}
	if total > maps.MaxPolicies {
		return nil, nil, fmt.Errorf("%d policies in all; at most %d", total, maps.MaxPolicies)
	}
	return order, groups, nil
}

// nextGeneration returns the half of the policy tables not in use (the low
// bit of a generation) and the generation that switches to it: the bits
// above count commits, so a session stamped two commits ago never looks
// current when the same half is active again (as dataplane.Apply does).
func nextGeneration(cur uint32) (slot, gen uint32) {
	slot = 1 - (cur & 1)
	return slot, (cur>>1+1)<<1 | slot
}

// fill writes spec's policies into the half gen of the policy tables (not
// in use; 0 or 1) and returns their index.
func (w *PairWriter) fill(m *maps.Set, spec *Spec, gen uint32, zones map[string]uint16) (map[string]uint32, PairWriteStats, error) {
	st := PairWriteStats{Gen: gen}
	order, groups, err := groupPolicies(spec, zones)
	if err != nil {
		return nil, st, err
	}
	total := len(spec.Policies)
	old := w.gens[gen]
	oldRows, index, oldLayout := w.rows[gen], w.index[gen], w.genLayout[gen]
	// Unknown until this write completes.
	w.gens[gen], w.rows[gen], w.index[gen] = nil, nil, nil
	if old == nil {
		st.Whole = true
		if err := clearGeneration(m, gen); err != nil {
			return nil, st, fmt.Errorf("clear policy generation %d: %w", gen, err)
		}
		old = map[pairID]*pairState{}
		oldRows, index = nil, nil
	}
	layout := w.place(order, groups)
	if index == nil {
		index = make(map[string]uint32, total)
	}
	offset := (gen & 1) * maps.MaxPolicies
	next := make(map[pairID]*pairState, len(order))
	for _, k := range order {
		ps := groups[k]
		o := old[k]
		if o != nil && samePolicies(o.policies, ps) {
			next[k] = o
			st.PairsKept++
			continue
		}
		ns, err := compilePair(gen, k, ps)
		if err != nil {
			return nil, st, err
		}
		if o != nil {
			if err := deletePair(m, o); err != nil {
				return nil, st, err
			}
		}
		if err := writePair(m, ns); err != nil {
			return nil, st, err
		}
		next[k] = ns
		st.PairsWritten++
	}
	for k, o := range old {
		if _, ok := next[k]; !ok {
			if err := deletePair(m, o); err != nil {
				return nil, st, err
			}
		}
	}
	// The pair-local bit numbering of the sets does not depend on where a
	// pair's rows are; the zone-pair array (small) is written whole, the
	// policy rows only where they differ from what this generation holds.
	zk := make([]uint32, 0, maps.MaxZones*maps.MaxZones)
	zv := make([]maps.ZonePair, maps.MaxZones*maps.MaxZones)
	for i := uint32(0); i < maps.MaxZones*maps.MaxZones; i++ {
		zk = append(zk, (gen&1)<<12|i)
	}
	// The rows array of the generation before last is reused (it is no
	// longer compared against).
	rows := w.spare
	w.spare = nil
	if len(rows) != maps.MaxPolicies {
		rows = make([]maps.Policy, maps.MaxPolicies)
	} else {
		clear(rows)
	}
	for _, k := range order {
		s, r := next[k], layout[k]
		zv[ZonePairIndex(0, k.from, k.to)] = maps.ZonePair{Base: r.base, Count: uint16(len(s.rows)), Present: 1}
		copy(rows[r.base:], s.rows)
		if o := old[k]; o != s || oldRows == nil || oldLayout[k] != r {
			if o != nil {
				for _, key := range o.keys {
					delete(index, key)
				}
			}
			for i, key := range s.keys {
				index[key] = offset + r.base + uint32(i)
			}
		}
	}
	for k, o := range old {
		if _, ok := next[k]; !ok {
			for _, key := range o.keys {
				delete(index, key)
			}
		}
	}
	var pk []uint32
	var pv []maps.Policy
	for i := range rows {
		if oldRows == nil || rows[i] != oldRows[i] {
			pk = append(pk, offset+uint32(i))
			pv = append(pv, rows[i])
		}
	}
	if err := maps.PutBatch(m.ZonePairs, zk, zv); err != nil {
		return nil, st, fmt.Errorf("write zone pairs: %w", err)
	}
	if err := maps.PutBatch(m.Policies, pk, pv); err != nil {
		return nil, st, fmt.Errorf("write policies: %w", err)
	}
	w.gens[gen], w.rows[gen], w.index[gen] = next, rows, index
	w.spare = oldRows
	w.genLayout[gen] = stdmaps.Clone(layout)
	// A copy: the caller reads it while the next Write edits this one.
	return stdmaps.Clone(index), st, nil
}

// place returns the regions of the pairs in order: the current layout when
// every pair still fits its region, else a new one with room to grow.
func (w *PairWriter) place(order []pairID, groups map[pairID][]Policy) map[pairID]region {
	fits := w.layout != nil
	var end uint32
	for _, r := range w.layout {
		end = max(end, r.base+r.room)
	}
	for _, k := range order {
		if !fits {
			break
		}
		r, ok := w.layout[k]
		n := uint32(len(groups[k]))
		switch {
		case ok && n <= r.room:
		case !ok && end+n <= maps.MaxPolicies:
			// A new pair goes after the others, with no room to spare
			// until the next relayout.
			w.layout[k] = region{end, n}
			end += n
		default:
			fits = false
		}
	}
	if fits {
		return w.layout
	}
	total := 0
	for _, k := range order {
		total += len(groups[k])
	}
	spare := uint32(maps.MaxPolicies-total) / uint32(max(len(order), 1))
	layout := make(map[pairID]region, len(order))
	var base uint32
	for _, k := range order {
		n := uint32(len(groups[k]))
		room := n + min(spare, n/8+16)
		layout[k] = region{base, room}
		base += room
	}
	w.layout = layout
	return layout
}

func samePolicies(a, b []Policy) bool {
	return slices.EqualFunc(a, b, func(x, y Policy) bool {
		if x.origin != nil && x.origin == y.origin && x.FromZone == y.FromZone && x.ToZone == y.ToZone {
			return true
		}
		return x.Name == y.Name && x.FromZone == y.FromZone && x.ToZone == y.ToZone && x.Action == y.Action &&
			x.Count == y.Count && x.Log == y.Log && samePrefixes(x.Source, y.Source) &&
			samePrefixes(x.Destination, y.Destination) && (x.Apps == nil) == (y.Apps == nil) && slices.Equal(x.Apps, y.Apps)
	})
}

func samePrefixes(a, b []netip.Prefix) bool {
	return (a == nil) == (b == nil) && slices.Equal(a, b)
}

// compilePair computes one zone pair's map contents for generation gen, as
// compilePolicies does for every pair, with the pair's own set numbering.
func compilePair(gen uint32, k pairID, ps []Policy) (*pairState, error) {
	// A copy: ps may be a window on a whole spec, which it would keep alive.
	s := &pairState{policies: slices.Clone(ps), rows: make([]maps.Policy, len(ps)), keys: make([]string, len(ps))}
	src, dst, app := prefixSets{}, prefixSets{}, appSets{}
	for i, p := range ps {
		s.rows[i] = policyRow(p, i, k.from, k.to)
		s.keys[i] = p.FromZone + "/" + p.ToZone + "/" + p.Name
		if err := indexPolicy(p, i, src, dst, app); err != nil {
			return nil, err
		}
	}
	setIDs := map[maps.PolicySet]uint32{}
	var setVals []maps.PolicySet
	base := pairSetBase(gen, k)
	intern := func(b *bitset) (uint32, error) {
		v := b.value()
		if id, ok := setIDs[v]; ok {
			return id, nil
		}
		if len(setVals) >= maxPairSets {
			return 0, fmt.Errorf("zone pair %d→%d needs more than %d policy sets", k.from, k.to, maxPairSets)
		}
		setVals = append(setVals, v)
		id := base + uint32(len(setVals))
		setIDs[v] = id
		s.sets = append(s.sets, id)
		return id, nil
	}
	var a4v, a6v, apv []maps.LPMVal
	for _, side := range []struct {
		dir uint32
		ps  prefixSets
	}{{dirSrc, src}, {dirDst, dst}} {
		scope := lpmScope(gen, side.dir, k.from, k.to)
		for pfx, b := range side.ps.closed() {
			id, err := intern(b)
			if err != nil {
				return nil, err
			}
			if pfx.Addr().Is4() {
				s.addr4 = append(s.addr4, maps.Addr4Key{Prefixlen: 32 + uint32(pfx.Bits()), Scope: scope, Addr: pfx.Addr().As4()})
				a4v = append(a4v, maps.LPMVal{Set: id})
			} else {
				s.addr6 = append(s.addr6, maps.Addr6Key{Prefixlen: 32 + uint32(pfx.Bits()), Scope: scope, Addr: pfx.Addr().As16()})
				a6v = append(a6v, maps.LPMVal{Set: id})
			}
		}
	}
	scope := lpmScope(gen, dirApp, k.from, k.to)
	for ak, b := range app.closed() {
		id, err := intern(b)
		if err != nil {
			return nil, err
		}
		s.apps = append(s.apps, maps.AppKey{Prefixlen: 32 + uint32(ak.len), Scope: scope,
			Proto: uint8(ak.bits >> 16), Port: [2]uint8{uint8(ak.bits >> 8), uint8(ak.bits)}})
		apv = append(apv, maps.LPMVal{Set: id})
	}
	s.vals = pairVals{sets: setVals, addr4: a4v, addr6: a6v, apps: apv}
	return s, nil
}

// pairVals are the values written with a pairState's keys (dropped after
// the write).
type pairVals struct {
	sets               []maps.PolicySet
	addr4, addr6, apps []maps.LPMVal
}

// writePair writes a compiled pair's sets before the LPM entries that name
// them.
func writePair(m *maps.Set, s *pairState) error {
	v := s.vals
	s.vals = pairVals{}
	if err := maps.PutBatch(m.PolicySets, s.sets, v.sets); err != nil {
		return fmt.Errorf("write policy sets: %w", err)
	}
	if err := maps.PutBatch(m.Addr4, s.addr4, v.addr4); err != nil {
		return fmt.Errorf("write IPv4 address tries: %w", err)
	}
	if err := maps.PutBatch(m.Addr6, s.addr6, v.addr6); err != nil {
		return fmt.Errorf("write IPv6 address tries: %w", err)
	}
	if err := maps.PutBatch(m.Apps, s.apps, v.apps); err != nil {
		return fmt.Errorf("write application tries: %w", err)
	}
	return nil
}

// deletePair removes what s wrote (in the inactive generation).
func deletePair(m *maps.Set, s *pairState) error {
	if err := maps.DeleteKeys(m.Addr4, s.addr4); err != nil {
		return err
	}
	if err := maps.DeleteKeys(m.Addr6, s.addr6); err != nil {
		return err
	}
	if err := maps.DeleteKeys(m.Apps, s.apps); err != nil {
		return err
	}
	return maps.DeleteKeys(m.PolicySets, s.sets)
}
