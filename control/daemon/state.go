package daemon

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/bpfvpn/bpfvpn/control/config"
	"github.com/bpfvpn/bpfvpn/control/ops"
)

// TunnelStatus is the state of one configured VPN.
type TunnelStatus struct {
	VPN       string `json:"vpn"`
	Interface string `json:"interface"` // st0.N
	Gateway   string `json:"gateway"`
	Version   int    `json:"ike-version"`
	// Establish is "immediately" or "on-traffic".
	Establish string `json:"establish-tunnels"`
	// Up is true while an IPsec SA pair is installed.
	Up bool `json:"up"`
	// State says what the tunnel is doing ("up", "connecting", "waiting
	// for traffic", "retrying in 4s", "no IKE engine", …).
	State     string `json:"state"`
	LastError string `json:"last-error,omitempty"`
}

// TunnelSource is what the IKE component tells the operational views.
type TunnelSource interface {
	Tunnels() []TunnelStatus
	IKESAs() []ops.IKESA
	IPsecSAs() []ops.IPsecSA
	// ClearIKE tears down IKE SA index (0 = all); tunnels with
	// establish-tunnels immediately are negotiated again.
	ClearIKE(ctx context.Context, index uint32) error
}

// IPsecCounters is what the kernel component tells the operational views:
// per-SA and global IPsec counters.
type IPsecCounters interface {
	// IPsecStatistics sums the counters of the SAs of unit (-1 = all).
	IPsecStatistics(unit int) (ops.IPsecStatistics, error)
	// ClearIPsecStatistics zeroes them (unit -1 = all).
	ClearIPsecStatistics(unit int) error
	// SACounters returns per-SA byte and packet counters by SPI.
	SACounters() (map[uint32]SACounter, error)
}

// SACounter holds the kernel counters of one directional SA.
type SACounter struct {
	Unit      int
	Direction string
	Bytes     uint64
	Packets   uint64
	Errors    map[string]uint64
}

// DataplaneView is what the data plane tells the operational views.
type DataplaneView interface {
	// PolicyHits returns hit counts by "from/to/name".
	PolicyHits() (map[string]uint64, error)
	Sessions() (ops.FlowSessions, error)
	SessionSummary() (ops.FlowSessionSummary, error)
	Drops() (map[string]uint64, error)
}

// State is the daemon's live state: the active configuration and the views
// of the components. It implements ops.Provider (the show and clear
// commands) and metrics.Source.
type State struct {
	d *Daemon

	mu        sync.Mutex
	cfg       *config.Config
	tunnels   TunnelSource
	counters  IPsecCounters
	dataplane DataplaneView
	links     LinkReader
}

func newState(d *Daemon) *State { return &State{d: d, links: netlinkReader{}} }

func (s *State) setConfig(cfg *config.Config) {
	s.mu.Lock()
	s.cfg = cfg
	s.mu.Unlock()
}

// SetTunnelSource, SetIPsecCounters and SetDataplaneView connect the
// components' views (nil disconnects).
func (s *State) SetTunnelSource(t TunnelSource) { s.mu.Lock(); s.tunnels = t; s.mu.Unlock() }

func (s *State) SetIPsecCounters(c IPsecCounters) { s.mu.Lock(); s.counters = c; s.mu.Unlock() }

func (s *State) SetDataplaneView(v DataplaneView) { s.mu.Lock(); s.dataplane = v; s.mu.Unlock() }

func (s *State) snapshot() (*config.Config, TunnelSource, IPsecCounters, DataplaneView, LinkReader) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg, s.tunnels, s.counters, s.dataplane, s.links
}

var _ ops.Provider = (*State)(nil)

// Tunnels returns the state of every configured VPN, in configuration order.
func (s *State) Tunnels() []TunnelStatus {
	cfg, ts, _, _, _ := s.snapshot()
	if ts != nil {
		return ts.Tunnels()
	}
	var out []TunnelStatus
	if cfg == nil {
		return out
	}
	for _, v := range cfg.IPsec.VPNs {
		out = append(out, configTunnel(v, "no IKE engine"))
	}
	return out
}

func configTunnel(v *config.VPN, state string) TunnelStatus {
	t := TunnelStatus{VPN: v.Name, Interface: v.BindInterface, Gateway: v.GatewayName, State: state, Establish: "on-traffic"}
	if v.EstablishImmediately {
		t.Establish = "immediately"
	}
	if v.Gateway != nil {
		t.Version = v.Gateway.Version
	}
	return t
}

// IKESecurityAssociations implements ops.Provider.
func (s *State) IKESecurityAssociations(ctx context.Context, index uint32) (ops.IKESAs, error) {
	_, ts, _, _, _ := s.snapshot()
	var v ops.IKESAs
	if ts == nil {
		return v, nil
	}
	for _, sa := range ts.IKESAs() {
		if index == ops.AllIndexes || sa.Index == index {
			v.SAs = append(v.SAs, sa)
		}
	}
	return v, nil
}

// IPsecSecurityAssociations implements ops.Provider.
func (s *State) IPsecSecurityAssociations(ctx context.Context, index uint32) (ops.IPsecSAs, error) {
	_, ts, _, _, _ := s.snapshot()
	var v ops.IPsecSAs
	if ts == nil {
		return v, nil
	}
	for _, sa := range ts.IPsecSAs() {
		if index == ops.AllIndexes || sa.ID == index {
			v.SAs = append(v.SAs, sa)
		}
	}
	return v, nil
}

// TunnelID is the IPsec SA id shown for st0 unit n, as the vendor numbers
// them (131073 for st0.0).
func TunnelID(unit int) uint32 { return 131073 + uint32(unit) }

// unitOfIndex maps an IPsec SA id back to its st0 unit (-1 for all).
func unitOfIndex(index uint32) (int, error) {
	if index == ops.AllIndexes {
		return -1, nil
	}
	if index < 131073 || index > 131073+15999 {
		return 0, fmt.Errorf("no IPsec SA with index %d", index)
	}
	return int(index - 131073), nil
}

// IPsecStatistics implements ops.Provider.
func (s *State) IPsecStatistics(ctx context.Context, index uint32) (ops.IPsecStatistics, error) {
	_, _, c, _, _ := s.snapshot()
	unit, err := unitOfIndex(index)
	if err != nil {
		return ops.IPsecStatistics{}, err
	}
	if c == nil {
		return ops.IPsecStatistics{}, nil
	}
	return c.IPsecStatistics(unit)
}

// ClearIPsecStatistics implements ops.Provider.
func (s *State) ClearIPsecStatistics(ctx context.Context, index uint32) error {
	_, _, c, _, _ := s.snapshot()
	unit, err := unitOfIndex(index)
	if err != nil {
		return err
	}
	if c == nil {
		return nil
	}
	return c.ClearIPsecStatistics(unit)
}

// ClearIKESecurityAssociations implements ops.Provider.
func (s *State) ClearIKESecurityAssociations(ctx context.Context, index uint32) error {
	_, ts, _, _, _ := s.snapshot()
	if ts == nil {
		return nil
	}
	return ts.ClearIKE(ctx, index)
}

func policyKey(from, to, name string) string { return from + "/" + to + "/" + name }

// Policies implements ops.Provider: the configured policies in evaluation
// order with the data plane's hit counts.
func (s *State) Policies(ctx context.Context) (ops.Policies, error) {
	cfg, _, _, dp, _ := s.snapshot()
	var v ops.Policies
	if cfg == nil {
		return v, nil
	}
	var hits map[string]uint64
	if dp != nil {
		h, err := dp.PolicyHits()
		if err != nil {
			return v, fmt.Errorf("policy hit counts: %w", err)
		}
		hits = h
	}
	v.DefaultPolicy = "deny-all"
	if cfg.Policies.Default == config.ActionPermit {
		v.DefaultPolicy = "permit-all"
	}
	index := uint32(4) // the vendor numbers user policies from 4
	for _, pc := range cfg.Policies.Contexts {
		for i, p := range pc.Policies {
			v.Policies = append(v.Policies, ops.Policy{
				Name: p.Name, FromZone: pc.From, ToZone: pc.To, Index: index, Sequence: uint32(i + 1), Enabled: true,
				SourceAddresses: p.SourceAddresses, DestinationAddresses: p.DestinationAddresses,
				Applications: p.Applications, Action: p.Action.String(), Log: p.LogInit || p.LogClose, Count: p.Count,
				Hits: hits[policyKey(pc.From, pc.To, p.Name)],
			})
			index++
		}
	}
	return v, nil
}

// FlowSessions implements ops.Provider.
func (s *State) FlowSessions(ctx context.Context) (ops.FlowSessions, error) {
	_, _, _, dp, _ := s.snapshot()
	if dp == nil {
		return ops.FlowSessions{}, nil
	}
	return dp.Sessions()
}

// FlowSessionSummary implements ops.Provider.
func (s *State) FlowSessionSummary(ctx context.Context) (ops.FlowSessionSummary, error) {
	_, _, _, dp, _ := s.snapshot()
	if dp == nil {
		return ops.FlowSessionSummary{}, nil
	}
	return dp.SessionSummary()
}

// Zones implements ops.Provider.
func (s *State) Zones(ctx context.Context) (ops.Zones, error) {
	cfg, _, _, _, _ := s.snapshot()
	var v ops.Zones
	if cfg == nil {
		return v, nil
	}
	for i, z := range cfg.Zones {
		hi := append(append([]string(nil), z.HostInbound.Services...), z.HostInbound.Protocols...)
		v.Zones = append(v.Zones, ops.Zone{Name: z.Name, ID: uint32(6 + i), Interfaces: z.Interfaces, HostInbound: hi})
	}
	return v, nil
}

// Interfaces implements ops.Provider: the st0 units of the configuration
// with the kernel's link state and counters.
func (s *State) Interfaces(ctx context.Context, name string) (ops.Interfaces, error) {
	cfg, _, _, _, links := s.snapshot()
	var v ops.Interfaces
	if cfg == nil {
		return v, nil
	}
	for _, ifc := range cfg.Interfaces {
		if !ifc.Tunnel || (name != "" && name != ifc.Name && !hasUnit(ifc, name)) {
			continue
		}
		out := ops.Interface{Name: ifc.Name, AdminUp: true, LinkUp: true, MTU: 9192}
		for _, u := range ifc.Units {
			if name != "" && name != ifc.Name && name != u.Name {
				continue
			}
			lu := ops.LogicalInterface{Name: u.Name, Zone: u.Zone, LinuxName: u.LinuxName, XFRMInterfaceID: u.IfID,
				HostInbound: append(append([]string(nil), u.HostInbound.Services...), u.HostInbound.Protocols...)}
			lu.Addresses = append(append(lu.Addresses, u.Inet...), u.Inet6...)
			if l, err := links.Link(u.LinuxName); err == nil {
				lu.Index, lu.AdminUp, lu.LinkUp, lu.MTU = l.Index, l.AdminUp, l.LinkUp, l.MTU
				lu.InputPackets, lu.OutputPackets = l.RxPackets, l.TxPackets
			}
			out.Units = append(out.Units, lu)
		}
		v.Interfaces = append(v.Interfaces, out)
	}
	return v, nil
}

func hasUnit(ifc *config.Interface, name string) bool {
	for _, u := range ifc.Units {
		if u.Name == name {
			return true
		}
	}
	return false
}

// Routes implements ops.Provider from the kernel's main table, with Linux
// device names shown as the configured unit names.
func (s *State) Routes(ctx context.Context) (ops.Routes, error) {
	cfg, _, _, _, links := s.snapshot()
	names := map[string]string{}
	prefs := map[string]uint32{}
	if cfg != nil {
		for _, ifc := range cfg.Interfaces {
			for _, u := range ifc.Units {
				names[u.LinuxName] = u.Name
			}
		}
		for _, r := range cfg.Routes {
			prefs[r.Prefix.String()] = uint32(r.Preference)
		}
	}
	rs, err := links.Routes()
	if err != nil {
		return ops.Routes{}, err
	}
	tables := map[string]*ops.RouteTable{}
	for _, r := range rs {
		tname := "inet.0"
		if r.Destination.Addr().Is6() {
			tname = "inet6.0"
		}
		t := tables[tname]
		if t == nil {
			t = &ops.RouteTable{Name: tname}
			tables[tname] = t
		}
		for i := range r.NextHops {
			if n, ok := names[r.NextHops[i].Interface]; ok {
				r.NextHops[i].Interface = n
			}
		}
		if r.Protocol == "Static" {
			if p, ok := prefs[r.Destination.String()]; ok {
				r.Preference = p
			}
		}
		t.Routes = append(t.Routes, r)
	}
	var v ops.Routes
	for _, name := range []string{"inet.0", "inet6.0"} {
		if t := tables[name]; t != nil {
			sort.SliceStable(t.Routes, func(i, j int) bool {
				a, b := t.Routes[i].Destination, t.Routes[j].Destination
				if a.Addr() != b.Addr() {
					return a.Addr().Less(b.Addr())
				}
				return a.Bits() < b.Bits()
			})
			v.Tables = append(v.Tables, *t)
		}
	}
	return v, nil
}
