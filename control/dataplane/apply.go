package dataplane

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cilium/ebpf"

	"github.com/bpfvpn/bpfvpn/maps"
)

// Compiled is a Spec turned into map contents (policy tables for one
// generation).
type Compiled struct {
	Gen      uint32
	ZoneIDs  map[string]uint16
	Zones    map[uint32]maps.ZoneInfo
	Ifaces   map[maps.IfaceKey]maps.IfaceInfo
	Locals   map[maps.LocalKey]uint32
	Config   maps.Config
	policies *policyContents
	// AttachIndexes are the ifindexes that need the XDP program (zone
	// interfaces; VLAN devices map to their parent), TunnelIndexes the ones
	// that need the tc programs.
	AttachIndexes []uint32
	TunnelIndexes []uint32
	// PolicyIndex maps "from/to/name" to the global index of the policy in
	// this generation (for hit counters).
	PolicyIndex map[string]uint32
}

func secs(d, def time.Duration) uint32 {
	if d <= 0 {
		d = def
	}
	return uint32((d + time.Second - 1) / time.Second)
}

// Compile checks spec and computes the map contents for generation gen
// (its low bit selects the half of the policy tables, see Apply).
// existingZones (name → id, from the zones map) keeps zone ids stable.
func Compile(spec *Spec, gen uint32, existingZones map[string]uint16, resolve Resolver) (*Compiled, error) {
	c := &Compiled{Gen: gen, ZoneIDs: map[string]uint16{}, Zones: map[uint32]maps.ZoneInfo{},
		Ifaces: map[maps.IfaceKey]maps.IfaceInfo{}, Locals: map[maps.LocalKey]uint32{},
		PolicyIndex: map[string]uint32{}}
	used := map[uint16]bool{}
	for _, z := range spec.Zones {
		if id, ok := existingZones[z.Name]; ok {
			c.ZoneIDs[z.Name] = id
			used[id] = true
		}
	}
	next := uint16(1)
	for _, z := range spec.Zones {
		if z.Name == "" || len(z.Name) > 31 {
			return nil, fmt.Errorf("zone name %q: must have 1 to 31 characters", z.Name)
		}
		if _, dup := c.Zones[uint32(c.ZoneIDs[z.Name])]; dup && c.ZoneIDs[z.Name] != 0 {
			return nil, fmt.Errorf("zone %s defined twice", z.Name)
		}
		if _, ok := c.ZoneIDs[z.Name]; !ok {
			for used[next] {
				next++
			}
			if next >= maps.MaxZones {
				return nil, fmt.Errorf("too many zones: at most %d", maps.MaxZones-1)
			}
			c.ZoneIDs[z.Name] = next
			used[next] = true
		}
		mask, err := z.HostInbound.Mask()
		if err != nil {
			return nil, fmt.Errorf("zone %s: %w", z.Name, err)
		}
		zi := maps.ZoneInfo{HiAllow: mask}
		copy(zi.Name[:], z.Name)
		c.Zones[uint32(c.ZoneIDs[z.Name])] = zi
	}

	attach := map[uint32]bool{}
	for _, ifc := range spec.Interfaces {
		zid, ok := c.ZoneIDs[ifc.Zone]
		if !ok {
			return nil, fmt.Errorf("interface %s: unknown zone %q", ifc.Name, ifc.Zone)
		}
		l, err := resolve(ifc.Name)
		if err != nil {
			return nil, err
		}
		if ifc.VLAN != 0 {
			if l.VLAN != 0 || l.Xfrm {
				return nil, fmt.Errorf("interface %s: vlan-id needs an Ethernet parent device", ifc.Name)
			}
			l.Parent, l.VLAN = l.Index, ifc.VLAN
			if sub, err := resolve(fmt.Sprintf("%s.%d", ifc.Name, ifc.VLAN)); err == nil {
				l.Index = sub.Index
				l.Addrs = append(l.Addrs, sub.Addrs...)
			}
		}
		info := maps.IfaceInfo{Zone: zid, L3Ifindex: l.Index}
		if ifc.Tunnel || l.Xfrm {
			info.Flags |= maps.IfTunnel
		}
		if l.L2 {
			info.Flags |= maps.IfL2
		}
		if ifc.Redirect {
			info.Flags |= maps.IfRedirect
		}
		if ifc.HostInbound != nil {
			m, err := ifc.HostInbound.Mask()
			if err != nil {
				return nil, fmt.Errorf("interface %s: %w", ifc.Name, err)
			}
			info.Flags |= maps.IfHIOverride
			info.HiAllow = m
		}
		k := maps.IfaceKey{Ifindex: l.Index}
		if l.VLAN != 0 {
			k = maps.IfaceKey{Ifindex: l.Parent, Vlan: l.VLAN}
		}
		if _, dup := c.Ifaces[k]; dup {
			return nil, fmt.Errorf("interface %s (vlan %d) listed twice", ifc.Name, l.VLAN)
		}
		c.Ifaces[k] = info
		switch {
		case info.Flags&maps.IfTunnel != 0:
			c.TunnelIndexes = append(c.TunnelIndexes, l.Index)
		case l.VLAN != 0:
			// tagged frames arrive on the parent, where XDP runs; the
			// VLAN device is the egress the FIB names
			if l.Index != l.Parent {
				c.Ifaces[maps.IfaceKey{Ifindex: l.Index}] = info
			}
			attach[l.Parent] = true
		default:
			attach[l.Index] = true
		}
		for _, a := range l.Addrs {
			c.Locals[maps.LocalKeyOf(a)] = l.Index
		}
	}
	for ix := range attach {
		c.AttachIndexes = append(c.AttachIndexes, ix)
	}
	for _, a := range spec.LocalAddrs {
		c.Locals[maps.LocalKeyOf(a)] = 0
	}

	pc, err := compilePolicies(gen, c.ZoneIDs, spec.Policies)
	if err != nil {
		return nil, err
	}
	c.policies = pc
	for idx, p := range pc.policies {
		c.PolicyIndex[fmt.Sprintf("%s/%s/%s", zoneName(c.ZoneIDs, p.FromZone), zoneName(c.ZoneIDs, p.ToZone), cstr(p.Name[:]))] = idx
	}

	if spec.TCPMSS.IPsecVPN != 0 && spec.TCPMSS.IPsecVPN < 64 || spec.TCPMSS.AllTCP != 0 && spec.TCPMSS.AllTCP < 64 {
		return nil, fmt.Errorf("tcp-mss must be 64 to 65535")
	}
	cfg := maps.Config{Gen: gen, MssIpsec: spec.TCPMSS.IPsecVPN, MssAll: spec.TCPMSS.AllTCP}
	if spec.DefaultPermit {
		cfg.Flags |= maps.CfgDefaultPermit
	}
	if !spec.IKELimit.Disabled {
		cfg.IkeRatePps, cfg.IkeBurst = spec.IKELimit.PerSecond, spec.IKELimit.Burst
		if cfg.IkeRatePps == 0 {
			cfg.IkeRatePps = DefaultIKERate
		}
		if cfg.IkeBurst == 0 {
			cfg.IkeBurst = DefaultIKEBurst
		}
	}
	t, d := spec.Timeouts, DefaultTimeouts
	cfg.ToTcpInit = secs(t.TCPInitial, d.TCPInitial)
	cfg.ToTcpEst = secs(t.TCPEstablished, d.TCPEstablished)
	cfg.ToTcpClose = secs(t.TCPClosing, d.TCPClosing)
	cfg.ToUdp = secs(t.UDP, d.UDP)
	cfg.ToIcmp = secs(t.ICMP, d.ICMP)
	cfg.ToOther = secs(t.Other, d.Other)
	c.Config = cfg
	return c, nil
}

func zoneName(ids map[string]uint16, id uint16) string {
	for n, i := range ids {
		if i == id {
			return n
		}
	}
	return fmt.Sprint(id)
}

func cstr(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// ExistingZones reads zone name → id from the zones map.
func ExistingZones(m *maps.Set) (map[string]uint16, error) {
	out := map[string]uint16{}
	for id := uint32(1); id < maps.MaxZones; id++ {
		var zi maps.ZoneInfo
		if err := m.Zones.Lookup(id, &zi); err != nil {
			return nil, fmt.Errorf("read zone %d: %w", id, err)
		}
		if n := cstr(zi.Name[:]); n != "" {
			out[n] = uint16(id)
		}
	}
	return out, nil
}

// Apply compiles spec and programs it into m in place: interface, zone and
// local-address tables are updated entry by entry; the policy tables are
// written into the inactive generation, which one write of the config map
// then activates. Existing sessions are re-checked against the new
// generation by the programs on their next packet (the flow cache is
// invalidated, so cached flows are re-checked too). On a compile error
// nothing is written.
func Apply(m *maps.Set, spec *Spec, resolve Resolver) (*Compiled, error) {
	if resolve == nil {
		resolve = NetlinkResolver
	}
	cur, err := m.ReadConfig()
	if err != nil {
		return nil, err
	}
	existing, err := ExistingZones(m)
	if err != nil {
		return nil, err
	}
	slot, gen := nextGeneration(cur.Gen)
	c, err := Compile(spec, gen, existing, resolve)
	if err != nil {
		return nil, err
	}
	if err := writeTables(m, c); err != nil {
		return nil, err
	}
	if err := clearGeneration(m, slot); err != nil {
		return nil, err
	}
	if err := writePolicies(m, gen, c.policies); err != nil {
		return nil, err
	}
	if err := m.WriteConfig(c.Config); err != nil {
		return nil, fmt.Errorf("switch to policy generation %d: %w", gen, err)
	}
	// cached verdicts were taken under the old tables and generation
	if err := m.InvalidateFlowCache(); err != nil {
		return nil, err
	}
	return c, nil
}

func writeTables(m *maps.Set, c *Compiled) error {
	// zones: an array; unused ids are zeroed
	var zk []uint32
	var zv []maps.ZoneInfo
	for id := uint32(1); id < maps.MaxZones; id++ {
		zk = append(zk, id)
		zv = append(zv, c.Zones[id])
	}
	if err := maps.PutBatch(m.Zones, zk, zv); err != nil {
		return fmt.Errorf("write zones: %w", err)
	}
	if err := syncHash(m.Ifaces, c.Ifaces); err != nil {
		return fmt.Errorf("write interfaces: %w", err)
	}
	if err := writeIfaceSlots(m.IfaceSlots, c.Ifaces); err != nil {
		return fmt.Errorf("write interface slots: %w", err)
	}
	if err := syncHash(m.LocalAddrs, c.Locals); err != nil {
		return fmt.Errorf("write local addresses: %w", err)
	}
	return nil
}

// writeIfaceSlots mirrors the untagged interfaces with a small ifindex into
// the iface_slots array (the data plane's fast interface lookup); every
// other slot is zeroed (absent).
func writeIfaceSlots(m *ebpf.Map, ifaces map[maps.IfaceKey]maps.IfaceInfo) error {
	n := m.MaxEntries()
	keys := make([]uint32, n)
	vals := make([]maps.IfaceInfo, n)
	for i := range keys {
		keys[i] = uint32(i)
	}
	for k, v := range ifaces {
		if k.Vlan == 0 && k.Ifindex < n {
			if v.L3Ifindex == 0 {
				return fmt.Errorf("interface %d has no L3 ifindex", k.Ifindex)
			}
			vals[k.Ifindex] = v
		}
	}
	return maps.PutBatch(m, keys, vals)
}

// syncHash makes a hash map hold exactly want: stale keys are deleted,
// wanted entries written (entries other CPUs read stay valid throughout).
func syncHash[K comparable, V any](m *ebpf.Map, want map[K]V) error {
	have, err := maps.Keys[K](m)
	if err != nil {
		return err
	}
	var stale []K
	for _, k := range have {
		if _, ok := want[k]; !ok {
			stale = append(stale, k)
		}
	}
	keys := make([]K, 0, len(want))
	vals := make([]V, 0, len(want))
	for k, v := range want {
		keys = append(keys, k)
		vals = append(vals, v)
	}
	if err := maps.PutBatch(m, keys, vals); err != nil {
		return err
	}
	return maps.DeleteKeys(m, stale)
}

// scopeGen extracts the generation bit of an LPM key scope.
func scopeGen(scope uint32) uint32 {
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], scope)
	return (binary.BigEndian.Uint32(b[:]) >> 14) & 1
}

// clearGeneration removes every policy entry of the inactive generation gen.
func clearGeneration(m *maps.Set, gen uint32) error {
	a4, err := maps.Keys[maps.Addr4Key](m.Addr4)
	if err != nil {
		return err
	}
	var d4 []maps.Addr4Key
	for _, k := range a4 {
		if scopeGen(k.Scope) == gen {
			d4 = append(d4, k)
		}
	}
	if err := maps.DeleteKeys(m.Addr4, d4); err != nil {
		return err
	}
	a6, err := maps.Keys[maps.Addr6Key](m.Addr6)
	if err != nil {
		return err
	}
	var d6 []maps.Addr6Key
	for _, k := range a6 {
		if scopeGen(k.Scope) == gen {
			d6 = append(d6, k)
		}
	}
	if err := maps.DeleteKeys(m.Addr6, d6); err != nil {
		return err
	}
	ap, err := maps.Keys[maps.AppKey](m.Apps)
	if err != nil {
		return err
	}
	var da []maps.AppKey
	for _, k := range ap {
		if scopeGen(k.Scope) == gen {
			da = append(da, k)
		}
	}
	if err := maps.DeleteKeys(m.Apps, da); err != nil {
		return err
	}
	sets, err := maps.Keys[uint32](m.PolicySets)
	if err != nil {
		return err
	}
	var ds []uint32
	for _, id := range sets {
		if SetGeneration(id) == gen {
			ds = append(ds, id)
		}
	}
	return maps.DeleteKeys(m.PolicySets, ds)
}

// writePolicies fills generation gen (which the programs do not use yet).
func writePolicies(m *maps.Set, gen uint32, pc *policyContents) error {
	var sk []uint32
	var sv []maps.PolicySet
	for k, v := range pc.sets {
		sk = append(sk, k)
		sv = append(sv, v)
	}
	if err := maps.PutBatch(m.PolicySets, sk, sv); err != nil {
		return fmt.Errorf("write policy sets: %w", err)
	}
	if err := putAll(m.Addr4, pc.addr4); err != nil {
		return fmt.Errorf("write IPv4 address tries: %w", err)
	}
	if err := putAll(m.Addr6, pc.addr6); err != nil {
		return fmt.Errorf("write IPv6 address tries: %w", err)
	}
	if err := putAll(m.Apps, pc.apps); err != nil {
		return fmt.Errorf("write application tries: %w", err)
	}
	// whole generation ranges of the arrays, so no stale entry survives
	zk := make([]uint32, 0, maps.MaxZones*maps.MaxZones)
	zv := make([]maps.ZonePair, 0, maps.MaxZones*maps.MaxZones)
	for i := uint32(0); i < maps.MaxZones*maps.MaxZones; i++ {
		k := (gen&1)<<12 | i
		zk = append(zk, k)
		zv = append(zv, pc.zonePairs[k])
	}
	if err := maps.PutBatch(m.ZonePairs, zk, zv); err != nil {
		return fmt.Errorf("write zone pairs: %w", err)
	}
	pk := make([]uint32, 0, maps.MaxPolicies)
	pv := make([]maps.Policy, 0, maps.MaxPolicies)
	for i := uint32(0); i < maps.MaxPolicies; i++ {
		k := (gen&1)*maps.MaxPolicies + i
		pk = append(pk, k)
		pv = append(pv, pc.policies[k])
	}
	if err := maps.PutBatch(m.Policies, pk, pv); err != nil {
		return fmt.Errorf("write policies: %w", err)
	}
	return nil
}

func putAll[K comparable, V any](m *ebpf.Map, entries map[K]V) error {
	keys := make([]K, 0, len(entries))
	vals := make([]V, 0, len(entries))
	for k, v := range entries {
		keys = append(keys, k)
		vals = append(vals, v)
	}
	return maps.PutBatch(m, keys, vals)
}
