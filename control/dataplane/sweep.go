package dataplane

import (
	"errors"
	"fmt"
	mbits "math/bits"

	"github.com/cilium/ebpf"

	"github.com/bpfvpn/bpfvpn/loader"
	"github.com/bpfvpn/bpfvpn/maps"
)

// SweepSessions removes the sessions that the active policy generation no
// longer permits, as the data plane would on their next packet, so that
// listings stop showing them at once. Sessions the generation still
// permits are left for the data plane to re-stamp on their next packet (a
// rewrite from here could lose counter updates). It reads the same tables
// as the BPF policy lookup and stops, without deleting more, when the
// active generation changes under it. Call it after Apply, not
// concurrently with another Apply.
func SweepSessions(m *maps.Set) (removed int, err error) {
	cfg, err := m.ReadConfig()
	if err != nil {
		return 0, err
	}
	var stale []maps.SessKey
	var k maps.SessKey
	var v maps.SessVal
	it := m.Sessions.Iterate()
	for it.Next(&k, &v) {
		if v.Gen == cfg.Gen || v.Flags&uint8(loader.BpfvpnSessFlagsSF_SELF) != 0 {
			continue
		}
		ok, err := permits(m, cfg, k, v)
		if err != nil {
			return 0, fmt.Errorf("re-check session: %w", err)
		}
		if !ok {
			stale = append(stale, k)
		}
	}
	if err := it.Err(); err != nil {
		return 0, fmt.Errorf("iterate sessions: %w", err)
	}
	now, err := m.ReadConfig()
	if err != nil {
		return 0, err
	}
	if now.Gen != cfg.Gen {
		return 0, fmt.Errorf("sweep sessions: generation changed from %d to %d during the sweep", cfg.Gen, now.Gen)
	}
	for i := range stale {
		if err := m.Sessions.Delete(&stale[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return removed, fmt.Errorf("delete session: %w", err)
		}
		removed++
	}
	if removed > 0 {
		if err := m.InvalidateFlowCache(); err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// permits mirrors policy_lookup() in bpf/policy.h for a session, oriented
// initiator → responder.
func permits(m *maps.Set, cfg maps.Config, k maps.SessKey, v maps.SessVal) (bool, error) {
	dflt := cfg.Flags&maps.CfgDefaultPermit != 0
	gen := cfg.Gen
	var zp maps.ZonePair
	if err := m.ZonePairs.Lookup(ZonePairIndex(gen, v.FromZone, v.ToZone), &zp); err != nil {
		return false, fmt.Errorf("zone pair: %w", err)
	}
	if zp.Present == 0 || zp.Count == 0 {
		return dflt, nil
	}
	src, dst := k.A, k.B
	if v.Flags&uint8(loader.BpfvpnSessFlagsSF_INIT_IS_A) == 0 {
		src, dst = k.B, k.A
	}
	set := func(trie *ebpf.Map, key any) (*maps.PolicySet, error) {
		var lv maps.LPMVal
		if err := trie.Lookup(key, &lv); err != nil {
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				return nil, nil
			}
			return nil, err
		}
		if lv.Set == 0 {
			return nil, nil
		}
		ps := new(maps.PolicySet)
		if err := m.PolicySets.Lookup(lv.Set, ps); err != nil {
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				return nil, nil
			}
			return nil, err
		}
		return ps, nil
	}
	var s, d *maps.PolicySet
	var err error
	if k.Family == maps.AFInet {
		a := maps.WordsAddr(k.Family, src).As4()
		if s, err = set(m.Addr4, &maps.Addr4Key{Prefixlen: 64, Scope: lpmScope(gen, dirSrc, v.FromZone, v.ToZone), Addr: a}); err != nil || s == nil {
			return dflt, err
		}
		a = maps.WordsAddr(k.Family, dst).As4()
		d, err = set(m.Addr4, &maps.Addr4Key{Prefixlen: 64, Scope: lpmScope(gen, dirDst, v.FromZone, v.ToZone), Addr: a})
	} else {
		a := maps.WordsAddr(k.Family, src).As16()
		if s, err = set(m.Addr6, &maps.Addr6Key{Prefixlen: 160, Scope: lpmScope(gen, dirSrc, v.FromZone, v.ToZone), Addr: a}); err != nil || s == nil {
			return dflt, err
		}
		a = maps.WordsAddr(k.Family, dst).As16()
		d, err = set(m.Addr6, &maps.Addr6Key{Prefixlen: 160, Scope: lpmScope(gen, dirDst, v.FromZone, v.ToZone), Addr: a})
	}
	if err != nil || d == nil {
		return dflt, err
	}
	a, err := set(m.Apps, &maps.AppKey{Prefixlen: 56, Scope: lpmScope(gen, dirApp, v.FromZone, v.ToZone), Proto: k.Proto,
		Port: [2]uint8{uint8(v.AppPort >> 8), uint8(v.AppPort)}})
	if err != nil || a == nil {
		return dflt, err
	}
	nwords := (int(zp.Count) + 63) / 64
	for w := 0; w < nwords && w < len(s.W); w++ {
		bits := s.W[w] & d.W[w] & a.W[w]
		if bits == 0 {
			continue
		}
		bit := w*64 + mbits.TrailingZeros64(bits)
		g := (gen&1)*maps.MaxPolicies + ((zp.Base + uint32(bit)) & (maps.MaxPolicies - 1))
		var pol maps.Policy
		if err := m.Policies.Lookup(g, &pol); err != nil {
			return dflt, nil
		}
		return pol.Action == maps.ActPermit, nil
	}
	return dflt, nil
}
