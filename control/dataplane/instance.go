package dataplane

import (
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/bpfvpn/bpfvpn/loader"
	"github.com/bpfvpn/bpfvpn/maps"
)

// AttachOptions say what `bpfvpn attach` does.
type AttachOptions struct {
	Instance   string   // pin directory name under /sys/fs/bpf/bpfvpn
	Interfaces []string // Linux devices to attach (zone interfaces, st0 units)
	Spec       *Spec
	SessionMax uint32
}

// AttachResult reports an attach.
type AttachResult struct {
	Dir         string
	Attachments []loader.Attachment
	Compiled    *Compiled
}

// ErrNotInSpec is returned for an interface the configuration puts in no zone.
var ErrNotInSpec = errors.New("interface is in no security zone of the configuration")

// Attach validates the spec, loads the programs (reusing pinned maps, so a
// second attach updates the tables in place), programs the maps and
// attaches to the interfaces. Nothing is attached when validation fails.
func Attach(o AttachOptions) (*AttachResult, error) {
	if err := loader.ValidInstance(o.Instance); err != nil {
		return nil, err
	}
	// validate everything before touching the kernel
	if _, err := Compile(o.Spec, 0, nil, NetlinkResolver); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	kinds := map[string]bool{} // name → tunnel
	for _, ifc := range o.Spec.Interfaces {
		l, err := NetlinkResolver(ifc.Name)
		if err != nil {
			return nil, err
		}
		kinds[ifc.Name] = ifc.Tunnel || l.Xfrm
	}
	for _, n := range o.Interfaces {
		if _, ok := kinds[n]; !ok {
			return nil, fmt.Errorf("%s: %w", n, ErrNotInSpec)
		}
	}
	if err := loader.EnsureBPFFS(); err != nil {
		return nil, err
	}
	dir := loader.InstanceDir(o.Instance)
	objs, err := loader.Load(loader.Options{PinDir: dir, SessionMax: o.SessionMax})
	if err != nil {
		return nil, err
	}
	defer objs.Close()
	c, err := Apply(maps.FromObjects(objs), o.Spec, nil)
	if err != nil {
		return nil, err
	}
	if err := loader.PinPrograms(dir, objs); err != nil {
		return nil, err
	}
	res := &AttachResult{Dir: dir, Compiled: c}
	for _, n := range o.Interfaces {
		if kinds[n] {
			a, err := loader.AttachTC(dir, objs.TcSt0Ingress, n, loader.HookTCIngress)
			if err != nil {
				return res, err
			}
			res.Attachments = append(res.Attachments, a)
			a, err = loader.AttachTC(dir, objs.TcSt0Egress, n, loader.HookTCEgress)
			if err != nil {
				return res, err
			}
			res.Attachments = append(res.Attachments, a)
			continue
		}
		a, err := loader.AttachXDP(dir, objs.XdpZone, n)
		if err != nil {
			return res, err
		}
		res.Attachments = append(res.Attachments, a)
		// sessions for the router's own connections
		if a, err = loader.AttachTC(dir, objs.TcZoneEgress, n, loader.HookTCEgress); err != nil {
			return res, err
		}
		res.Attachments = append(res.Attachments, a)
	}
	return res, nil
}

// Detach removes the hooks of the interfaces; when no attachment is left
// the instance's pins (maps, programs) are removed too. It reports how
// many hooks were removed.
func Detach(instance string, ifnames []string) (int, error) {
	if err := loader.ValidInstance(instance); err != nil {
		return 0, err
	}
	dir := loader.InstanceDir(instance)
	if _, err := os.Stat(dir); err != nil {
		return 0, fmt.Errorf("instance %s is not attached (%s missing)", instance, dir)
	}
	total := 0
	var errs []error
	for _, n := range ifnames {
		k, err := loader.Detach(dir, n)
		total += k
		if err != nil {
			errs = append(errs, err)
		}
		if k == 0 && err == nil {
			errs = append(errs, fmt.Errorf("%s: not attached in instance %s", n, instance))
		}
	}
	if left, err := loader.Attachments(dir); err == nil && len(left) == 0 {
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, fmt.Errorf("remove pins %s: %w", dir, err))
		}
	}
	return total, errors.Join(errs...)
}

// Status is what `bpfvpn status` prints.
type Status struct {
	Instance    string
	Dir         string
	Generation  uint32
	Attachments []loader.Attachment
	Maps        []MapStatus
	Counters    map[string]uint64
	Zones       map[string]maps.ZoneStats
	Policies    []PolicyStatus
}

// PolicyStatus is one policy of the active generation with its hits
// (first packets it matched; counters restart with each generation).
type PolicyStatus struct {
	From, To, Name string
	Action         string
	Hits           uint64
}

// MapStatus is one map with its id and number of entries.
type MapStatus struct {
	Name    string
	ID      uint32
	Entries int
	Max     uint32
}

// ReadStatus reads the pinned state of an instance.
func ReadStatus(instance string) (*Status, error) {
	if err := loader.ValidInstance(instance); err != nil {
		return nil, err
	}
	dir := loader.InstanceDir(instance)
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("instance %s is not attached (%s missing)", instance, dir)
	}
	st := &Status{Instance: instance, Dir: dir, Counters: map[string]uint64{}, Zones: map[string]maps.ZoneStats{}}
	var err error
	if st.Attachments, err = loader.Attachments(dir); err != nil {
		return nil, err
	}
	m, err := maps.OpenPinned(dir)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	cfg, err := m.ReadConfig()
	if err != nil {
		return nil, err
	}
	st.Generation = cfg.Gen
	named := m.Named()
	var names []string
	for n := range named {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		mp := named[n]
		ms := MapStatus{Name: n, Max: mp.MaxEntries()}
		if info, err := mp.Info(); err == nil {
			id, _ := info.ID()
			ms.ID = uint32(id)
		}
		switch n {
		case "zones", "config_map", "zone_pairs", "policies", "zone_counters", "policy_hits", "counters", "iface_slots", "flow_cache", "flow_cache_ctl":
			ms.Entries = -1 // arrays: always full
		case "tunnel_events":
			ms.Entries = -1 // a ring buffer has no entries to count
		default:
			if ms.Entries, err = maps.CountEntries(m, n); err != nil {
				return nil, err
			}
		}
		st.Maps = append(st.Maps, ms)
	}
	cs, err := m.ReadCounters()
	if err != nil {
		return nil, err
	}
	for id, v := range cs {
		st.Counters[maps.CounterNames[id]] = v
	}
	zones, err := ExistingZones(m)
	if err != nil {
		return nil, err
	}
	zoneNames := map[uint16]string{}
	for n, id := range zones {
		zoneNames[id] = n
	}
	base := (cfg.Gen & 1) * maps.MaxPolicies
	for i := uint32(0); i < maps.MaxPolicies; i++ {
		var p maps.Policy
		if err := m.Policies.Lookup(base+i, &p); err != nil {
			return nil, fmt.Errorf("read policy %d: %w", base+i, err)
		}
		if p.Name[0] == 0 {
			continue
		}
		hits, err := m.ReadPolicyHits(base + i)
		if err != nil {
			return nil, err
		}
		st.Policies = append(st.Policies, PolicyStatus{From: zoneNames[p.FromZone], To: zoneNames[p.ToZone],
			Name: cstr(p.Name[:]), Action: Action(p.Action).String(), Hits: hits})
	}
	for name, id := range zones {
		zs, err := m.ReadZoneStats(id)
		if err != nil {
			return nil, err
		}
		st.Zones[name] = zs
	}
	return st, nil
}
