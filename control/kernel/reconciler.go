package kernel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// socketTimeout bounds every netlink request.
const socketTimeout = 10 * time.Second

// Options configure a Reconciler.
type Options struct {
	// NetNS is the network namespace to manage; netns.None() (or the zero
	// Options with NetNSSet false) means the caller's namespace.
	NetNS    netns.NsHandle
	NetNSSet bool
	// Logger receives one line per change; nil discards.
	Logger *slog.Logger
}

// Reconciler owns bpfvpn's kernel objects in one network namespace. Its
// methods are safe for concurrent use.
type Reconciler struct {
	mu  sync.Mutex
	ns  netns.NsHandle // dup of Options.NetNS, or None
	h   *netlink.Handle
	log *slog.Logger

	routeSock map[int]*nl.SocketHandle // raw rtnetlink requests (IFA_PROTO)
	xfrmSock  map[int]*nl.SocketHandle // raw XFRM requests (replay-esn)

	desired     State
	haveDesired bool
	up          map[int]bool // tunnel state per unit; absent = not known yet
	sas         map[int]*unitSAs
	retire      map[saID]*retirement
	xfrm        xfrmModel
	xfrmDumps   int // observeXfrm calls, for tests
	baselines   map[saID]SACounters
	statBase    XfrmStat
	closed      bool
}

// New opens netlink sockets in the target namespace.
func New(opts Options) (*Reconciler, error) {
	ns := netns.None()
	if opts.NetNSSet && opts.NetNS.IsOpen() {
		fd, err := unix.Dup(int(opts.NetNS))
		if err != nil {
			return nil, fmt.Errorf("kernel reconciler: duplicate namespace handle: %w", err)
		}
		unix.CloseOnExec(fd)
		ns = netns.NsHandle(fd)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Reconciler{ns: ns, log: log, up: map[int]bool{}, sas: map[int]*unitSAs{},
		retire: map[saID]*retirement{}, baselines: map[saID]SACounters{}}
	var err error
	r.h, err = netlink.NewHandleAt(ns, unix.NETLINK_ROUTE, unix.NETLINK_XFRM)
	if err != nil {
		r.closeNS()
		return nil, fmt.Errorf("kernel reconciler: netlink handle: %w", err)
	}
	rs, err := nl.GetNetlinkSocketAt(ns, netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		r.h.Close()
		r.closeNS()
		return nil, fmt.Errorf("kernel reconciler: rtnetlink socket: %w", err)
	}
	xs, err := nl.GetNetlinkSocketAt(ns, netns.None(), unix.NETLINK_XFRM)
	if err != nil {
		rs.Close()
		r.h.Close()
		r.closeNS()
		return nil, fmt.Errorf("kernel reconciler: xfrm netlink socket: %w", err)
	}
	r.routeSock = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: {Socket: rs}}
	r.xfrmSock = map[int]*nl.SocketHandle{unix.NETLINK_XFRM: {Socket: xs}}
	// A lost netlink reply must become an error, not a hung daemon.
	tv := unix.NsecToTimeval(socketTimeout.Nanoseconds())
	err = r.h.SetSocketTimeout(socketTimeout)
	for _, s := range []*nl.NetlinkSocket{rs, xs} {
		err = errors.Join(err, s.SetSendTimeout(&tv), s.SetReceiveTimeout(&tv))
	}
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("kernel reconciler: socket timeouts: %w", err)
	}
	return r, nil
}

func (r *Reconciler) closeNS() {
	if r.ns.IsOpen() {
		r.ns.Close()
	}
}

// Close releases the sockets. Kernel objects stay: a later Reconciler adopts
// them. Pending retirements of old inbound SAs are cancelled (the SAs stay
// until a later reconciler or their lifetime removes them).
func (r *Reconciler) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	for _, rt := range r.retire {
		rt.timer.Stop()
	}
	r.h.Close()
	r.routeSock[unix.NETLINK_ROUTE].Close()
	r.xfrmSock[unix.NETLINK_XFRM].Close()
	r.closeNS()
	return nil
}

// Reconcile makes the kernel match desired and returns the changes it made.
// On error, the changes that succeeded are returned with it; a later call
// retries the rest.
func (r *Reconciler) Reconcile(ctx context.Context, desired State) ([]Change, error) {
	if err := desired.Validate(); err != nil {
		return nil, fmt.Errorf("reconcile: invalid desired state: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errors.New("reconcile: reconciler closed")
	}
	r.desired, r.haveDesired = desired, true
	return r.reconcileLocked(ctx)
}

// Plan returns the changes Reconcile would make for desired, without making
// them.
func (r *Reconciler) Plan(desired State) ([]Change, error) {
	if err := desired.Validate(); err != nil {
		return nil, fmt.Errorf("plan: invalid desired state: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	obs, err := r.observe()
	if err != nil {
		return nil, err
	}
	return plan(desired, r.upMap(desired, obs), obs), nil
}

// SetTunnelUp records that unit's tunnel went up or down and withdraws or
// restores the routes into it. InstallChildSA and RemoveTunnel call it
// implicitly; DPD or a failed negotiation may call it directly.
func (r *Reconciler) SetTunnelUp(ctx context.Context, unit int, up bool) ([]Change, error) {
	if err := checkUnit(unit); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errors.New("set tunnel state: reconciler closed")
	}
	r.up[unit] = up
	return r.reconcileRoutesOfLocked(ctx, unit)
}

// reconcileRoutesOfLocked applies the route changes that unit's tunnel state
// implies, reading only links and routes (not the whole kernel state): it
// runs on every tunnel up/down and must stay cheap with thousands of units.
func (r *Reconciler) reconcileRoutesOfLocked(ctx context.Context, unit int) ([]Change, error) {
	if !r.haveDesired {
		return nil, nil
	}
	// The unit's interfaces follow its tunnels: up before routes go in,
	// down after they are withdrawn.
	var ups, downs []Change
	for _, t := range r.desired.Tunnels {
		if t.Unit != unit {
			continue
		}
		peers := []int{0}
		for _, p := range t.Peers {
			peers = append(peers, p.ID)
		}
		for _, peer := range peers {
			name := LinkName(unit)
			if peer != 0 {
				name = PeerLinkName(unit, peer)
			}
			l, err := r.h.LinkByName(name)
			if err != nil {
				continue // not created yet: Reconcile makes it
			}
			x, ok := l.(*netlink.Xfrmi)
			if !ok || x.Ifid != tunnelIfID(unit, peer) {
				continue
			}
			isUp, want := l.Attrs().Flags&net.FlagUp != 0, linkWantUp(t, peer, r.up)
			switch {
			case want && !isUp:
				ups = append(ups, Change{Op: OpSetUp, Link: name, Unit: unit, Peer: peer})
			case !want && isUp:
				downs = append(downs, Change{Op: OpSetDown, Link: name, Unit: unit, Peer: peer})
			}
		}
	}
	changes := ups
	if r.desired.hasWithdrawableRoutes(unit) {
		obs, err := r.observeRoutes()
		if err != nil {
			return nil, err
		}
		up := make(map[int]bool, len(r.up))
		for k, v := range r.up {
			up[k] = v
		}
		changes = append(changes, sortChanges(planRoutes(r.desired, up, obs, nil))...)
	}
	return r.apply(ctx, append(changes, downs...))
}

// TunnelUp reports the tunnel state Reconcile uses for unit.
func (r *Reconciler) TunnelUp(unit int) bool { return r.PeerUp(unit, 0) }

// PeerUp reports the tunnel state of peer of multipoint unit (0: the unit's
// own tunnel).
func (r *Reconciler) PeerUp(unit, peer int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.up[upKey(unit, peer)]
}

// SetPeerUp is SetTunnelUp for peer of multipoint unit.
func (r *Reconciler) SetPeerUp(ctx context.Context, unit, peer int, up bool) ([]Change, error) {
	if err := checkUnit(unit); err != nil {
		return nil, err
	}
	if peer < 0 || peer > MaxPeer {
		return nil, fmt.Errorf("peer %d out of range 0-%d", peer, MaxPeer)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errors.New("set tunnel state: reconciler closed")
	}
	r.up[upKey(unit, peer)] = up
	return r.reconcileRoutesOfLocked(ctx, unit)
}

func (r *Reconciler) reconcileLocked(ctx context.Context) ([]Change, error) {
	obs, err := r.observe()
	if err != nil {
		return nil, err
	}
	changes := plan(r.desired, r.upMap(r.desired, obs), obs)
	return r.apply(ctx, changes)
}

// upMap returns the tunnel states, learning the ones not known yet from the
// kernel: a unit with an installed SA pair is up (adoption after restart).
func (r *Reconciler) upMap(desired State, obs *observed) map[int]bool {
	pairs := obs.unitsWithSAPair()
	for _, t := range desired.Tunnels {
		keys := []int{upKey(t.Unit, 0)}
		for _, p := range t.Peers {
			keys = append(keys, upKey(t.Unit, p.ID))
		}
		for _, k := range keys {
			if _, known := r.up[k]; !known {
				r.up[k] = pairs[k]
			}
		}
	}
	m := make(map[int]bool, len(r.up))
	for k, v := range r.up {
		m[k] = v
	}
	return m
}
