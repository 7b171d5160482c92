package dataplane

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sort"

	"github.com/bpfvpn/bpfvpn/maps"
)

// Scope directions of LPM keys (bpf/policy.h enum scope_dir).
const (
	dirSrc = 0
	dirDst = 1
	dirApp = 2
)

// lpmScope mirrors lpm_scope() in bpf/policy.h: gen(1) dir(2) from(6) to(6),
// stored big-endian in the key.
func lpmScope(gen, dir uint32, from, to uint16) uint32 {
	v := (gen&1)<<14 | (dir&3)<<12 | uint32(from&63)<<6 | uint32(to&63)
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return binary.NativeEndian.Uint32(b[:])
}

// ZonePairIndex mirrors zp_index() in bpf/policy.h.
func ZonePairIndex(gen uint32, from, to uint16) uint32 {
	return (gen&1)<<12 | uint32(from&63)<<6 | uint32(to&63)
}

// bitset is a policy bitset under construction.
type bitset [maps.PolicyWords]uint64

func (b *bitset) set(i int) { b[i/64] |= 1 << (i % 64) }
func (b *bitset) or(o *bitset) {
	for i := range b {
		b[i] |= o[i]
	}
}
func (b *bitset) value() maps.PolicySet {
	var v maps.PolicySet
	v.W = *b
	for i, w := range b {
		if w != 0 {
			v.Summary[i/64] |= 1 << (i % 64)
		}
	}
	return v
}

// prefixSets collects, per prefix, the policies naming it, then closes each
// prefix's set over the prefixes that contain it: an LPM hit on the longest
// prefix then yields every policy matching the address.
type prefixSets map[netip.Prefix]*bitset

func (ps prefixSets) add(p netip.Prefix, pol int) {
	p = p.Masked()
	b := ps[p]
	if b == nil {
		b = &bitset{}
		ps[p] = b
	}
	b.set(pol)
}

func (ps prefixSets) closed() map[netip.Prefix]*bitset {
	out := make(map[netip.Prefix]*bitset, len(ps))
	for p, b := range ps {
		c := *b
		for l := p.Bits() - 1; l >= 0; l-- {
			anc, _ := p.Addr().Prefix(l)
			if ab, ok := ps[anc]; ok {
				c.or(ab)
			}
		}
		out[p] = &c
	}
	return out
}

// appKey is a prefix of the 24-bit string proto(8) port(16).
type appKey struct {
	bits uint32 // left-aligned in the low 24 bits
	len  int
}

type appSets map[appKey]*bitset

// policyRow is the policies-map row of p, the i-th policy of its zone pair.
func policyRow(p Policy, i int, from, to uint16) maps.Policy {
	var flags uint8
	if p.Count {
		flags |= 1
	}
	if p.Log {
		flags |= 2
	}
	pv := maps.Policy{Action: uint8(p.Action), Flags: flags, Id: uint32(i), FromZone: from, ToZone: to}
	copy(pv.Name[:len(pv.Name)-1], p.Name)
	return pv
}

// indexPolicy sets bit i (p's position in its zone pair) in the source,
// destination and application sets p matches; no list means any.
func indexPolicy(p Policy, i int, src, dst prefixSets, app appSets) error {
	for _, side := range []struct {
		ps   prefixSets
		list []netip.Prefix
	}{{src, p.Source}, {dst, p.Destination}} {
		if side.list == nil {
			side.ps.add(netip.PrefixFrom(netip.IPv4Unspecified(), 0), i)
			side.ps.add(netip.PrefixFrom(netip.IPv6Unspecified(), 0), i)
			continue
		}
		for _, pfx := range side.list {
			if !pfx.IsValid() {
				return fmt.Errorf("policy %s: invalid prefix", p.Name)
			}
			side.ps.add(netip.PrefixFrom(pfx.Addr().Unmap(), pfx.Bits()-boolInt(pfx.Addr().Is4In6())*96), i)
		}
	}
	if p.Apps == nil {
		app.add(appKey{0, 0}, i)
	}
	for _, t := range p.Apps {
		ks, err := t.keys()
		if err != nil {
			return fmt.Errorf("policy %s: application: %w", p.Name, err)
		}
		for _, ak := range ks {
			app.add(ak, i)
		}
	}
	return nil
}

func (as appSets) add(k appKey, pol int) {
	k.bits &= appMask(k.len)
	b := as[k]
	if b == nil {
		b = &bitset{}
		as[k] = b
	}
	b.set(pol)
}

func appMask(l int) uint32 {
	if l == 0 {
		return 0
	}
	return (uint32(0xffffff) << (24 - l)) & 0xffffff
}

func (as appSets) closed() map[appKey]*bitset {
	out := make(map[appKey]*bitset, len(as))
	for k, b := range as {
		c := *b
		for l := k.len - 1; l >= 0; l-- {
			if ab, ok := as[appKey{k.bits & appMask(l), l}]; ok {
				c.or(ab)
			}
		}
		out[k] = &c
	}
	return out
}

// rangePrefixes splits [lo, hi] into aligned 16-bit prefixes (value, len).
func rangePrefixes(lo, hi uint32) [][2]uint32 {
	var out [][2]uint32
	for lo <= hi {
		size := uint32(1)
		l := 16
		for l > 0 && lo%(size*2) == 0 && lo+size*2-1 <= hi {
			size *= 2
			l--
		}
		out = append(out, [2]uint32{lo, uint32(l)})
		lo += size
		if lo == 0 {
			break
		}
	}
	return out
}

func (t AppTerm) keys() ([]appKey, error) {
	if t.Proto == 0 {
		return []appKey{{0, 0}}, nil
	}
	p := uint32(t.Proto) << 16
	switch t.Proto {
	case 1, 58:
		if !t.HasICMPType {
			return []appKey{{p, 8}}, nil
		}
		if !t.HasICMPCode {
			return []appKey{{p | uint32(t.ICMPType)<<8, 16}}, nil
		}
		return []appKey{{p | uint32(t.ICMPType)<<8 | uint32(t.ICMPCode), 24}}, nil
	case 6, 17, 132:
		if t.PortLow == 0 && t.PortHigh == 0 {
			return []appKey{{p, 8}}, nil
		}
		hi := t.PortHigh
		if hi == 0 {
			hi = t.PortLow
		}
		if hi < t.PortLow {
			return nil, fmt.Errorf("port range %d-%d is reversed", t.PortLow, hi)
		}
		var out []appKey
		for _, r := range rangePrefixes(uint32(t.PortLow), uint32(hi)) {
			out = append(out, appKey{p | r[0], 8 + int(r[1])})
		}
		return out, nil
	}
	return []appKey{{p, 8}}, nil
}

// zonePairTable is the compiled form of one zone pair in one generation.
type zonePairTable struct {
	from, to uint16
	base     uint32
	policies []Policy
}

// policyContents is everything of one generation's policy maps.
type policyContents struct {
	zonePairs map[uint32]maps.ZonePair
	policies  map[uint32]maps.Policy
	addr4     map[maps.Addr4Key]maps.LPMVal
	addr6     map[maps.Addr6Key]maps.LPMVal
	apps      map[maps.AppKey]maps.LPMVal
	sets      map[uint32]maps.PolicySet
}

// setID numbering: generation g uses ids (g<<30)+1 … so both generations'
// sets live side by side.
func setIDBase(gen uint32) uint32 { return (gen & 1) << 30 }

// SetGeneration reports which generation a policy set id belongs to.
func SetGeneration(id uint32) uint32 { return (id >> 30) & 1 }

func compilePolicies(gen uint32, zoneIDs map[string]uint16, pols []Policy) (*policyContents, error) {
	pc := &policyContents{
		zonePairs: map[uint32]maps.ZonePair{},
		policies:  map[uint32]maps.Policy{},
		addr4:     map[maps.Addr4Key]maps.LPMVal{},
		addr6:     map[maps.Addr6Key]maps.LPMVal{},
		apps:      map[maps.AppKey]maps.LPMVal{},
		sets:      map[uint32]maps.PolicySet{},
	}
	// group by zone pair, keeping order
	type zp struct{ from, to uint16 }
	var order []zp
	groups := map[zp][]Policy{}
	for _, p := range pols {
		f, ok := zoneIDs[p.FromZone]
		if !ok {
			return nil, fmt.Errorf("policy %s: unknown from-zone %q", p.Name, p.FromZone)
		}
		t, ok := zoneIDs[p.ToZone]
		if !ok {
			return nil, fmt.Errorf("policy %s: unknown to-zone %q", p.Name, p.ToZone)
		}
		k := zp{f, t}
		if _, seen := groups[k]; !seen {
			order = append(order, k)
		}
		groups[k] = append(groups[k], p)
	}
	setIDs := map[maps.PolicySet]uint32{}
	nextSet := setIDBase(gen) + 1
	internSet := func(b *bitset) uint32 {
		v := b.value()
		if id, ok := setIDs[v]; ok {
			return id
		}
		id := nextSet
		nextSet++
		setIDs[v] = id
		pc.sets[id] = v
		return id
	}
	var base uint32
	for _, k := range order {
		ps := groups[k]
		if len(ps) > maps.MaxPoliciesPerZonePair {
			return nil, fmt.Errorf("zone pair %d→%d has %d policies; at most %d", k.from, k.to, len(ps), maps.MaxPoliciesPerZonePair)
		}
		if int(base)+len(ps) > maps.MaxPolicies {
			return nil, fmt.Errorf("%d policies in all; at most %d", int(base)+len(ps), maps.MaxPolicies)
		}
		pc.zonePairs[ZonePairIndex(gen, k.from, k.to)] = maps.ZonePair{Base: base, Count: uint16(len(ps)), Present: 1}
		src, dst, app := prefixSets{}, prefixSets{}, appSets{}
		for i, p := range ps {
			pc.policies[(gen&1)*maps.MaxPolicies+base+uint32(i)] = policyRow(p, i, k.from, k.to)
			if err := indexPolicy(p, i, src, dst, app); err != nil {
				return nil, err
			}
		}
		for dir, ps := range map[uint32]prefixSets{dirSrc: src, dirDst: dst} {
			scope := lpmScope(gen, dir, k.from, k.to)
			for pfx, b := range ps.closed() {
				id := internSet(b)
				if pfx.Addr().Is4() {
					key := maps.Addr4Key{Prefixlen: 32 + uint32(pfx.Bits()), Scope: scope, Addr: pfx.Addr().As4()}
					pc.addr4[key] = maps.LPMVal{Set: id}
				} else {
					key := maps.Addr6Key{Prefixlen: 32 + uint32(pfx.Bits()), Scope: scope, Addr: pfx.Addr().As16()}
					pc.addr6[key] = maps.LPMVal{Set: id}
				}
			}
		}
		scope := lpmScope(gen, dirApp, k.from, k.to)
		for ak, b := range app.closed() {
			id := internSet(b)
			key := maps.AppKey{Prefixlen: 32 + uint32(ak.len), Scope: scope,
				Proto: uint8(ak.bits >> 16), Port: [2]uint8{uint8(ak.bits >> 8), uint8(ak.bits)}}
			pc.apps[key] = maps.LPMVal{Set: id}
		}
		base += uint32(len(ps))
	}
	return pc, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// sortedZoneNames returns names in a stable order.
func sortedZoneNames(m map[string]uint16) []string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}
