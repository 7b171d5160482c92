package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/bpfvpn/bpfvpn/control/config"
	"github.com/bpfvpn/bpfvpn/control/dataplane"
	"github.com/bpfvpn/bpfvpn/control/kernel"
	"github.com/bpfvpn/bpfvpn/control/ops"
	"github.com/bpfvpn/bpfvpn/control/ops/sessionview"
	"github.com/bpfvpn/bpfvpn/loader"
	"github.com/bpfvpn/bpfvpn/maps"
)

// dataplaneComponent attaches the eBPF data plane to every zone interface
// with the same code as `bpfvpn attach` (pins under
// /sys/fs/bpf/bpfvpn/<instance>, maps updated in place on a new
// configuration), keeps the inbound-SPI filter in step with the installed
// SAs, and reads hit counts and counters for the views.
type dataplaneComponent struct {
	log      *slog.Logger
	instance string
	kern     saInstaller

	// collectMD: multipoint units use a collect_md xfrm interface steered
	// by md (kernels 6.2+).
	collectMD bool
	md        *xfrmMD
	// onDemand starts the tunnel whose SAs carry an if_id (on-traffic
	// events, ontraffic.go).
	onDemand func(ifid uint32)

	mu       sync.Mutex
	attached map[string]bool // Linux interfaces with our hooks
	ifindex  map[string]int  // their index when attached
	// on-traffic: marked interfaces by ifindex, tunnel states by if_id,
	// and the event reader's stop.
	marks      map[uint32]*demandMark
	tunnelUp   map[uint32]bool
	demandStop context.CancelFunc
	set        *maps.Set // the pinned maps, once attached
	index      map[string]uint32
	delta      dpDelta           // policy-only commits (dpdelta.go)
	units      map[string]string // Linux device → unit name, for the session views
}

func newDataplaneComponent(log *slog.Logger, instance string, kern saInstaller) (*dataplaneComponent, error) {
	if instance == "" {
		var err error
		if instance, err = loader.DefaultInstance(); err != nil {
			return nil, fmt.Errorf("data plane instance: %w", err)
		}
	}
	if err := loader.ValidInstance(instance); err != nil {
		return nil, err
	}
	c := &dataplaneComponent{log: log.With("component", "dataplane"), instance: instance, kern: kern,
		attached: map[string]bool{}, ifindex: map[string]int{}}
	c.md = &xfrmMD{log: c.log, dir: filepath.Join(loader.InstanceDir(instance), "xfrm_md")}
	if err := collectMDSupport(); err != nil {
		c.log.Info("multipoint st0 units use one xfrm interface per VPN", "reason", err)
	} else {
		c.collectMD = true
	}
	return c, nil
}

func (c *dataplaneComponent) Name() string { return "dataplane" }

func (c *dataplaneComponent) Check(ctx context.Context, cfg *config.Config) error {
	_, _, err := dataplane.FromConfig(cfg)
	return err
}

func (c *dataplaneComponent) Apply(ctx context.Context, cfg *config.Config) error {
	spec, warns, err := dataplane.FromConfig(cfg)
	for _, w := range warns {
		c.log.Warn("data plane", "warning", w)
	}
	if err != nil {
		return err
	}
	st, _ := KernelState(cfg)
	multipointMode(&st, c.collectMD)
	spec.Interfaces = append(spec.Interfaces, peerInterfaces(st, spec.Interfaces)...)
	c.mu.Lock()
	c.units = unitNames(cfg)
	c.mu.Unlock()
	var names []string
	seen := map[string]bool{}
	index := map[string]int{}
	var missing []error
	for _, ifc := range spec.Interfaces {
		if seen[ifc.Name] {
			continue
		}
		seen[ifc.Name] = true
		idx, err := dataplane.NetlinkResolver(ifc.Name)
		if err != nil {
			missing = append(missing, err)
			continue
		}
		index[ifc.Name] = int(idx.Index)
		names = append(names, ifc.Name)
	}
	if len(missing) > 0 {
		// Attach checks every interface of the spec; a missing one (an st0
		// the kernel could not create) leaves everything as it was.
		return fmt.Errorf("data plane not (re)attached: %w", errors.Join(missing...))
	}
	sort.Strings(names)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.md.sync(st); err != nil {
		return fmt.Errorf("multipoint next hops: %w", err)
	}
	same := c.set != nil && len(names) == len(c.attached)
	var recreated []string
	for _, n := range names {
		same = same && c.attached[n]
		if c.attached[n] && c.ifindex[n] != index[n] {
			recreated = append(recreated, n)
		}
	}
	if len(recreated) > 0 {
		// A device the kernel recreated (an st0 unit that changed mode or
		// underlay) lost its hooks; their pinned links are dead.
		if _, err := dataplane.Detach(c.instance, recreated); err != nil {
			c.log.Warn("drop the hooks of recreated interfaces", "interfaces", recreated, "err", err)
		}
		same = false
	}
	if same {
		// Same interfaces: update the maps in place (a new policy
		// generation, switched with one write) without reloading programs.
		// (dpdelta.go: only the changed zone pairs' policy tables.)
		index, _, err := c.delta.pw.Apply(c.set, spec, nil)
		if err != nil {
			return fmt.Errorf("update data plane maps: %w", err)
		}
		c.index = index
		c.publishInstalled()
		c.syncOnTrafficOrWarn(cfg, st)
		return nil
	}
	c.delta.pw.Forget() // Attach writes a generation of its own
	res, err := dataplane.Attach(dataplane.AttachOptions{Instance: c.instance, Interfaces: names, Spec: spec})
	if err != nil {
		// Part may be attached (XDP filters ESP by SPI): keep the filter
		// fed so that installed tunnels keep working; a later apply retries.
		if c.set == nil {
			if set, oerr := maps.OpenPinned(loader.InstanceDir(c.instance)); oerr == nil {
				c.set = set
			}
		}
		if c.set != nil {
			c.publishInstalled()
		}
		return fmt.Errorf("attach data plane: %w", err)
	}
	var stale []string
	for n := range c.attached {
		if !seen[n] {
			stale = append(stale, n)
		}
	}
	if len(stale) > 0 {
		if _, err := dataplane.Detach(c.instance, stale); err != nil {
			c.log.Warn("detach interfaces no longer in a zone", "interfaces", stale, "err", err)
		}
	}
	c.attached = map[string]bool{}
	for _, n := range names {
		c.attached[n] = true
	}
	c.ifindex = index
	c.index = res.Compiled.PolicyIndex
	if c.set == nil {
		set, err := maps.OpenPinned(res.Dir)
		if err != nil {
			return fmt.Errorf("open pinned maps: %w", err)
		}
		c.set = set
	}
	c.publishInstalled()
	c.syncOnTrafficOrWarn(cfg, st)
	return nil
}

// publishInstalled admits the inbound SAs the kernel holds, including those
// of an earlier daemon, in the SPI filter. Caller holds mu.
func (c *dataplaneComponent) publishInstalled() {
	installed, err := c.kern.InstalledSAs()
	if err != nil {
		c.log.Warn("list installed SAs", "err", err)
		return
	}
	for _, sa := range installed {
		if sa.Direction == "outbound" {
			continue
		}
		if err := c.set.AddSPI(sa.SPI, kernel.TunnelIfID(sa.Unit, sa.Peer)); err != nil {
			c.log.Warn("publish inbound SPI", "spi", fmt.Sprintf("%08x", sa.SPI), "err", err)
		}
	}
}

func (c *dataplaneComponent) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.set != nil {
		c.set.Close()
		c.set = nil
	}
	c.md.close()
	if c.demandStop != nil {
		c.demandStop()
		c.demandStop = nil
	}
	return nil
}

func (c *dataplaneComponent) maps() *maps.Set {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.set
}

// AddInboundSPI implements SPIPublisher. Before the first attach there is
// no filter; Apply publishes the installed SAs then.
func (c *dataplaneComponent) AddInboundSPI(spi, ifID uint32) error {
	if m := c.maps(); m != nil {
		return m.AddSPI(spi, ifID)
	}
	return nil
}

// RemoveInboundSPI implements SPIPublisher.
func (c *dataplaneComponent) RemoveInboundSPI(spi uint32) error {
	if m := c.maps(); m != nil {
		return m.RemoveSPI(spi)
	}
	return nil
}

// PolicyHits implements DataplaneView.
func (c *dataplaneComponent) PolicyHits() (map[string]uint64, error) {
	c.mu.Lock()
	m, index := c.set, c.index
	c.mu.Unlock()
	out := map[string]uint64{}
	if m == nil {
		return out, nil
	}
	for key, idx := range index {
		n, err := m.ReadPolicyHits(idx)
		if err != nil {
			return nil, err
		}
		out[key] = n
	}
	return out, nil
}

// sessions reads the session table with the data plane's timeouts.
func (c *dataplaneComponent) sessions() ([]maps.Session, maps.Config, uint64, error) {
	m := c.maps()
	if m == nil {
		return nil, maps.Config{}, 0, nil
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return nil, maps.Config{}, 0, err
	}
	ss, err := m.ListSessions(uint64(ts.Nano()))
	if err != nil {
		return nil, maps.Config{}, 0, err
	}
	cfg, err := m.ReadConfig()
	if err != nil {
		return nil, maps.Config{}, 0, err
	}
	max := uint64(0)
	if sm := m.Named()["sessions"]; sm != nil {
		max = uint64(sm.MaxEntries())
	}
	return ss, cfg, max, nil
}

// Sessions implements DataplaneView (control/ops/sessionview).
func (c *dataplaneComponent) Sessions() (ops.FlowSessions, error) {
	ss, cfg, _, err := c.sessions()
	if err != nil {
		return ops.FlowSessions{}, err
	}
	c.mu.Lock()
	byIndex := map[uint32]string{}
	for key, idx := range c.index {
		byIndex[idx] = key[strings.LastIndex(key, "/")+1:]
	}
	units := c.units
	c.mu.Unlock()
	return sessionview.FlowSessions(ss, cfg, sessionview.Names{
		Policy:     func(index uint32) (string, uint32) { return byIndex[index], index },
		Interfaces: sessionInterfaces(units),
	}), nil
}

// SessionSummary implements DataplaneView.
func (c *dataplaneComponent) SessionSummary() (ops.FlowSessionSummary, error) {
	ss, cfg, max, err := c.sessions()
	if err != nil {
		return ops.FlowSessionSummary{}, err
	}
	return sessionview.Summary(ss, cfg, max), nil
}

// ClearSessions implements DataplaneView: the sessions go from the table
// and the flow cache, so their next packets are judged as new flows.
func (c *dataplaneComponent) ClearSessions(f ops.SessionFilter) (int, error) {
	m := c.maps()
	if m == nil {
		return 0, nil
	}
	c.mu.Lock()
	units := c.units
	c.mu.Unlock()
	n, err := dataplane.ClearSessions(m, sessionview.Selector(f, sessionview.Names{Interfaces: sessionInterfaces(units)}))
	c.log.Info("flow sessions cleared", "filter", f.String(), "count", n)
	return n, err
}

// Drops implements DataplaneView.
func (c *dataplaneComponent) Drops() (map[string]uint64, error) {
	m := c.maps()
	out := map[string]uint64{}
	if m == nil {
		return out, nil
	}
	cs, err := m.ReadCounters()
	if err != nil {
		return nil, err
	}
	for id, v := range cs {
		name := maps.CounterNames[id]
		if len(name) > 5 && name[:5] == "drop-" {
			out[name[5:]] = v
		}
	}
	return out, nil
}

var (
	_ SPIPublisher  = (*dataplaneComponent)(nil)
	_ DataplaneView = (*dataplaneComponent)(nil)
)
