// Package maps gives typed Go views of the data plane's BPF maps. Keys and
// values are the structs bpf2go generated from bpf/maps.h.
package maps

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/bpfvpn/bpfvpn/loader"
)

// Limits mirrored from bpf/common.h (TestLimitsMatchBPF checks them).
const (
	MaxZones       = 64
	MaxPolicies    = 131072
	PolicyWords    = 160
	SummaryWords   = 3
	NumGenerations = 2
	// MaxPoliciesPerZonePair is the number of bits of a policy bitset.
	MaxPoliciesPerZonePair = PolicyWords * 64
)

// Key and value types of the maps (generated from C).
type (
	IfaceKey    = loader.BpfvpnIfaceKey
	IfaceInfo   = loader.BpfvpnIfaceInfo
	LocalKey    = loader.BpfvpnLocalKey
	ZoneInfo    = loader.BpfvpnZoneInfo
	Config      = loader.BpfvpnConfig
	ZonePair    = loader.BpfvpnZonePair
	Addr4Key    = loader.BpfvpnAddr4LpmKey
	Addr6Key    = loader.BpfvpnAddr6LpmKey
	AppKey      = loader.BpfvpnAppLpmKey
	LPMVal      = loader.BpfvpnLpmVal
	PolicySet   = loader.BpfvpnPolicySet
	Policy      = loader.BpfvpnPolicy
	SessKey     = loader.BpfvpnSessKey
	SessVal     = loader.BpfvpnSessVal
	ZoneStats   = loader.BpfvpnZoneStats
	FlowEntry   = loader.BpfvpnFcEntry
	FlowCtl     = loader.BpfvpnFcState
	FragKey     = loader.BpfvpnFragKey
	CounterID   = loader.BpfvpnCounterId
	HostInbound = loader.BpfvpnHiBit
	TunnelState = loader.BpfvpnTunnelState
	TunnelEvent = loader.BpfvpnTunnelEvent
)

// Interface flags (enum iface_flags).
const (
	IfTunnel     = uint16(loader.BpfvpnIfaceFlagsIF_TUNNEL)
	IfHIOverride = uint16(loader.BpfvpnIfaceFlagsIF_HI_OVERRIDE)
	IfRedirect   = uint16(loader.BpfvpnIfaceFlagsIF_REDIRECT)
	IfL2         = uint16(loader.BpfvpnIfaceFlagsIF_L2)
)

// Policy actions (enum policy_action).
const (
	ActDeny   = uint8(loader.BpfvpnPolicyActionACT_DENY)
	ActPermit = uint8(loader.BpfvpnPolicyActionACT_PERMIT)
	ActReject = uint8(loader.BpfvpnPolicyActionACT_REJECT)
)

// CfgDefaultPermit is config.flags' default-policy permit-all bit.
const CfgDefaultPermit = uint32(loader.BpfvpnConfigFlagsCFG_DEFAULT_PERMIT)

// Set holds every map of one data-plane instance.
type Set struct {
	Ifaces       *ebpf.Map
	IfaceSlots   *ebpf.Map
	Tunnels      *ebpf.Map
	TunnelEvents *ebpf.Map
	LocalAddrs   *ebpf.Map
	Zones        *ebpf.Map
	Config       *ebpf.Map
	ZonePairs    *ebpf.Map
	Addr4        *ebpf.Map
	Addr6        *ebpf.Map
	Apps         *ebpf.Map
	PolicySets   *ebpf.Map
	Policies     *ebpf.Map
	Sessions     *ebpf.Map
	Frags        *ebpf.Map
	ESPSPIs      *ebpf.Map
	IKELimit     *ebpf.Map
	ZoneCounters *ebpf.Map
	PolicyHits   *ebpf.Map
	Counters     *ebpf.Map
	FlowCache    *ebpf.Map
	FlowCacheCtl *ebpf.Map
}

// FromObjects views the maps of loaded objects.
func FromObjects(o *loader.Objects) *Set {
	return &Set{
		Ifaces: o.Ifaces, IfaceSlots: o.IfaceSlots, Tunnels: o.Tunnels, TunnelEvents: o.TunnelEvents, LocalAddrs: o.LocalAddrs, Zones: o.Zones, Config: o.ConfigMap,
		ZonePairs: o.ZonePairs, Addr4: o.Addr4, Addr6: o.Addr6, Apps: o.Apps,
		PolicySets: o.PolicySets, Policies: o.Policies, Sessions: o.Sessions, Frags: o.Frags,
		ESPSPIs: o.EspSpis, IKELimit: o.IkeLimit, ZoneCounters: o.ZoneCounters,
		PolicyHits: o.PolicyHits, Counters: o.Counters, FlowCache: o.FlowCache, FlowCacheCtl: o.FlowCacheCtl,
	}
}

// Named lists the maps with their pin names (the names in bpf/maps.h).
func (s *Set) Named() map[string]*ebpf.Map {
	return map[string]*ebpf.Map{
		"ifaces": s.Ifaces, "iface_slots": s.IfaceSlots, "tunnels": s.Tunnels, "tunnel_events": s.TunnelEvents, "local_addrs": s.LocalAddrs, "zones": s.Zones, "config_map": s.Config,
		"zone_pairs": s.ZonePairs, "addr4": s.Addr4, "addr6": s.Addr6, "apps": s.Apps,
		"policy_sets": s.PolicySets, "policies": s.Policies, "sessions": s.Sessions, "frags": s.Frags,
		"esp_spis": s.ESPSPIs, "ike_limit": s.IKELimit, "zone_counters": s.ZoneCounters,
		"policy_hits": s.PolicyHits, "counters": s.Counters, "flow_cache": s.FlowCache, "flow_cache_ctl": s.FlowCacheCtl,
	}
}

// OpenPinned opens the maps pinned in dir.
func OpenPinned(dir string) (*Set, error) {
	s := &Set{}
	ptrs := map[string]**ebpf.Map{
		"ifaces": &s.Ifaces, "iface_slots": &s.IfaceSlots, "tunnels": &s.Tunnels, "tunnel_events": &s.TunnelEvents, "local_addrs": &s.LocalAddrs, "zones": &s.Zones, "config_map": &s.Config,
		"zone_pairs": &s.ZonePairs, "addr4": &s.Addr4, "addr6": &s.Addr6, "apps": &s.Apps,
		"policy_sets": &s.PolicySets, "policies": &s.Policies, "sessions": &s.Sessions, "frags": &s.Frags,
		"esp_spis": &s.ESPSPIs, "ike_limit": &s.IKELimit, "zone_counters": &s.ZoneCounters,
		"policy_hits": &s.PolicyHits, "counters": &s.Counters, "flow_cache": &s.FlowCache, "flow_cache_ctl": &s.FlowCacheCtl,
	}
	for name, p := range ptrs {
		m, err := ebpf.LoadPinnedMap(dir+"/"+name, nil)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("open pinned map %s/%s: %w", dir, name, err)
		}
		*p = m
	}
	return s, nil
}

// Close closes the file descriptors of the maps (pins stay).
func (s *Set) Close() {
	for _, m := range s.Named() {
		if m != nil {
			m.Close()
		}
	}
}

// ReadConfig returns the global configuration and active generation.
func (s *Set) ReadConfig() (Config, error) {
	var c Config
	if err := s.Config.Lookup(uint32(0), &c); err != nil {
		return c, fmt.Errorf("read config map: %w", err)
	}
	return c, nil
}

// WriteConfig replaces the global configuration in one write; a changed
// Gen switches the policy generation for every following packet.
func (s *Set) WriteConfig(c Config) error {
	if err := s.Config.Put(uint32(0), c); err != nil {
		return fmt.Errorf("write config map: %w", err)
	}
	return nil
}

// putBatch writes keys/values with one batch call when the map type
// supports it, one update per entry otherwise.
func putBatch[K, V any](m *ebpf.Map, keys []K, vals []V) error {
	if len(keys) == 0 {
		return nil
	}
	if m.Type() != ebpf.LPMTrie {
		_, err := m.BatchUpdate(keys, vals, nil)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ebpf.ErrNotSupported) {
			return fmt.Errorf("batch update %s: %w", m, err)
		}
	}
	for i := range keys {
		if err := m.Put(keys[i], vals[i]); err != nil {
			return fmt.Errorf("update %s: %w", m, err)
		}
	}
	return nil
}

// PutBatch is putBatch for callers outside the package.
func PutBatch[K, V any](m *ebpf.Map, keys []K, vals []V) error { return putBatch(m, keys, vals) }

// DeleteKeys deletes keys, ignoring keys already absent.
func DeleteKeys[K any](m *ebpf.Map, keys []K) error {
	for i := range keys {
		if err := m.Delete(keys[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("delete from %s: %w", m, err)
		}
	}
	return nil
}

// Keys lists the keys of a hash or trie map.
func Keys[K any](m *ebpf.Map) ([]K, error) {
	var out []K
	var k K
	var v []byte
	it := m.Iterate()
	for it.Next(&k, &v) {
		out = append(out, k)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("iterate %s: %w", m, err)
	}
	return out, nil
}
