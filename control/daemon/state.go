package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/bpfvpn/bpfvpn/control/config"
	"github.com/bpfvpn/bpfvpn/control/ops"
	"github.com/bpfvpn/bpfvpn/control/ops/configview"
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
	// Unit is the st0 unit; Remote the peer's address.
	Unit   int        `json:"unit"`
	Remote netip.Addr `json:"remote"`
	// Negotiations counts the IKE negotiations this gateway started for
	// the tunnel; Failures those that ended without an IPsec SA pair
	// (failed in the engine or abandoned at their deadline).
	Negotiations uint64 `json:"negotiations"`
	Failures     uint64 `json:"failures"`
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

// Rekeyer rekeys the IPsec SAs of a VPN on request (the IKE component).
type Rekeyer interface {
	Rekey(ctx context.Context, vpn string) error
}

// Rekey rekeys the IPsec SAs of vpn ("" = all) now.
func (s *State) Rekey(ctx context.Context, vpn string) error {
	_, ts, _, _, _ := s.snapshot()
	r, ok := ts.(Rekeyer)
	if !ok {
		return errors.New("rekey: no IKE engine")
	}
	return r.Rekey(ctx, vpn)
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
	// ClearSessions deletes the sessions f selects and returns how many
	// it deleted (also when it fails part way).
	ClearSessions(f ops.SessionFilter) (int, error)
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

// InactiveTunnels implements ops.Provider.
func (s *State) InactiveTunnels(ctx context.Context) (ops.InactiveTunnels, error) {
	_, ts, _, _, _ := s.snapshot()
	v := ops.InactiveTunnels{Tunnels: []ops.InactiveTunnel{}}
	if ts == nil {
		return v, nil
	}
	for _, t := range ts.Tunnels() {
		if t.Up {
			continue
		}
		v.Tunnels = append(v.Tunnels, ops.InactiveTunnel{ID: TunnelID(t.Unit), VPNName: t.VPN, Interface: t.Interface,
			Port: 500, Gateway: t.Remote, Negotiations: t.Negotiations, Failures: t.Failures,
			Immediate: t.Establish == establishName(true), State: t.State, DownReason: t.LastError})
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

// Policies implements ops.Provider: the configured policies in evaluation
// order with the data plane's hit counts.
func (s *State) Policies(ctx context.Context) (ops.Policies, error) {
	cfg, _, _, dp, _ := s.snapshot()
	if cfg == nil {
		return ops.Policies{}, nil
	}
	var hits map[string]uint64
	if dp != nil {
		h, err := dp.PolicyHits()
		if err != nil {
			return ops.Policies{}, fmt.Errorf("policy hit counts: %w", err)
		}
		hits = h
	}
	return configview.Policies(cfg, func(from, to, name string) uint64 { return hits[PolicyKey(from, to, name)] }), nil
}

// PolicyKey is the key of DataplaneView.PolicyHits.
func PolicyKey(from, to, name string) string { return from + "/" + to + "/" + name }

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

// ClearFlowSessions implements ops.Provider.
func (s *State) ClearFlowSessions(ctx context.Context, f ops.SessionFilter) (ops.FlowSessionsCleared, error) {
	_, _, _, dp, _ := s.snapshot()
	if dp == nil {
		return ops.FlowSessionsCleared{}, nil
	}
	n, err := dp.ClearSessions(f)
	if err != nil {
		return ops.FlowSessionsCleared{}, fmt.Errorf("after %d sessions cleared: %w", n, err)
	}
	return ops.FlowSessionsCleared{Cleared: n}, nil
}

// Zones implements ops.Provider.
func (s *State) Zones(ctx context.Context) (ops.Zones, error) {
	cfg, _, _, _, _ := s.snapshot()
	if cfg == nil {
		return ops.Zones{}, nil
	}
	return configview.Zones(cfg), nil
}

// Interfaces implements ops.Provider: the st0 units of the configuration
// with the kernel's link state and counters.
func (s *State) Interfaces(ctx context.Context, name string) (ops.Interfaces, error) {
	cfg, _, _, _, links := s.snapshot()
	if cfg == nil {
		return ops.Interfaces{}, nil
	}
	return configview.Interfaces(cfg, name, func(linuxName string) (configview.LinkState, bool) {
		l, err := links.Link(linuxName)
		if err != nil {
			return configview.LinkState{}, false
		}
		return configview.LinkState{Index: l.Index, AdminUp: l.AdminUp, LinkUp: l.LinkUp, MTU: l.MTU,
			InputPackets: l.RxPackets, OutputPackets: l.TxPackets, Multipoint: l.Multipoint}, true
	})
}

// Routes implements ops.Provider: the configured interface and static
// routes; a static route is active while the kernel holds it (routes into a
// down tunnel are withdrawn).
func (s *State) Routes(ctx context.Context) (ops.Routes, error) {
	cfg, _, _, _, links := s.snapshot()
	if cfg == nil {
		return ops.Routes{}, nil
	}
	installed := map[netip.Prefix]bool{}
	rs, err := links.Routes()
	if err != nil {
		return ops.Routes{}, err
	}
	for _, r := range rs {
		if r.Protocol == "Static" {
			installed[r.Destination] = true
		}
	}
	return configview.Routes(cfg, func(r *config.Route) (bool, int64) {
		return installed[r.Prefix.Masked()], 0
	}), nil
}
