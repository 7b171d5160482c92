package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/bpfvpn/bpfvpn/control/config"
	"github.com/bpfvpn/bpfvpn/control/kernel"
	"github.com/bpfvpn/bpfvpn/ike"
	"github.com/bpfvpn/bpfvpn/ike/ikev1"
	"github.com/bpfvpn/bpfvpn/ike/ikev2"
	"github.com/bpfvpn/bpfvpn/ike/udp"
)

// Back-off of tunnels that keep failing to come up (establish-tunnels
// immediately): from RetryMin, doubling, up to RetryMax.
const (
	RetryMin = 2 * time.Second
	RetryMax = 60 * time.Second
	// trafficPoll is how often a down on-traffic tunnel's st0 counters are
	// read for a packet routed into it.
	trafficPoll = time.Second
	// startJitter spreads the first negotiation of immediately tunnels.
	startJitter = 300 * time.Millisecond
	// superviseMax bounds how long a mux goes without supervising its
	// tunnels, so that a tunnel that went down is seen within it.
	superviseMax = 5 * time.Second
	// listenerTick is the polling tick of a listener's runner.
	listenerTick = time.Second
)

// Supervision deadlines of a tunnel that is not up. Variables so that tests
// of the whole negotiation can shorten them.
var (
	// NegotiationTimeout is how long a negotiation (an IKE SA being set up,
	// or a CHILD SA requested on an established one) may take before the
	// supervision abandons it (deletes its IKE SAs) and retries with
	// back-off. It is longer than an engine takes to give up on an
	// unanswered request (IKEv2: six retransmissions, about 63 s), so it
	// only ends negotiations that would neither complete nor fail (seen
	// after collisions), and a slow but live one (a peer installing
	// thousands of SAs) is left to finish.
	NegotiationTimeout = 75 * time.Second
	// ChildGrace is how long an established IKE SA may go without an
	// installed CHILD SA (its own exchange, or one the peer runs on it)
	// before the supervision requests one.
	ChildGrace = 5 * time.Second
	// ResponderDelay is how long the end with the higher address lets the
	// other initiate first.
	ResponderDelay = 3 * time.Second
	// ResponderStall is how long traffic routed into a down on-traffic
	// tunnel waits on a negotiation the peer started before starting its
	// own. A peer that restarted or changed its configuration mid-exchange
	// leaves such a negotiation that would otherwise hold the tunnel down
	// until NegotiationTimeout; a live one finishes well within it, and
	// should it not, the engines resolve two simultaneous negotiations.
	ResponderStall = 5 * time.Second
	// MaxNegotiations bounds how many IKE SAs the supervision keeps in
	// negotiation at once (initiated, not yet established); further
	// immediately tunnels wait for a slot. Starting a thousand at once made
	// the peer's answers come later than the retransmission limits, and
	// every failed attempt was started again: the daemons never settled.
	MaxNegotiations int64 = 64
)

// slotWait is how often a tunnel waiting for a negotiation slot looks again.
const slotWait = 250 * time.Millisecond

// engine is one tunnel's IKE engine, IKEv1 or IKEv2, behind one interface.
type engine interface {
	ike.Engine
	Initiate(now time.Time) error
	Terminate(now time.Time)
	IKESAs(now time.Time) []ike.IKESAStatus
	ChildSAs(now time.Time) []ike.ChildSAStatus
	LastError() error
	// Rekey starts a rekey of every installed CHILD SA, as a kernel soft
	// expire would.
	Rekey(now time.Time) error
	// Expired reports the kernel's soft (rekey) or hard (delete) byte
	// limit of the pair with inbound SPI spiIn.
	Expired(now time.Time, spiIn uint32, hard bool)
	// CreateChild negotiates a CHILD SA on the established IKE SA.
	CreateChild(now time.Time) error
}

type v1Engine struct {
	*ikev1.Engine
	gateway string
	live    *livenessProbe // ESP from the peer for DPD (liveness.go); nil: none
}

func (e v1Engine) NextTimer() (time.Time, bool) { return e.live.earlier(e.Engine.NextTimer()) }
func (e v1Engine) Tick(now time.Time) {
	if e.live.poll(now) {
		e.Engine.PeerAlive(now, e.gateway)
	}
	e.Engine.Tick(now)
}

func (e v1Engine) Initiate(now time.Time) error { return e.Engine.Initiate(now, e.gateway) }
func (e v1Engine) Terminate(now time.Time)      { _ = e.Engine.Terminate(now, e.gateway) }
func (e v1Engine) LastError() error             { return nil }

// CreateChild: Initiate starts Quick Mode for every proxy identity without
// an IPsec SA when a phase-1 SA is up.
func (e v1Engine) CreateChild(now time.Time) error { return e.Engine.Initiate(now, e.gateway) }
func (e v1Engine) Expired(now time.Time, spiIn uint32, hard bool) {
	e.ChildSAExpired(now, spiIn, hard)
}
func (e v1Engine) Rekey(now time.Time) error {
	n := 0
	for _, c := range e.ChildSAs(now) {
		if !c.Rekeying {
			e.ChildSAExpired(now, c.SA.SPIIn, false)
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("rekey %s: no IPsec SA installed", e.gateway)
	}
	return nil
}

type v2Engine struct {
	*ikev2.Engine
	name string
}

func (e v2Engine) Initiate(now time.Time) error { return e.Engine.Initiate(now, e.name) }
func (e v2Engine) Terminate(now time.Time)      { e.Engine.Terminate(now, e.name) }
func (e v2Engine) LastError() error             { return e.Engine.LastError(e.name) }
func (e v2Engine) Rekey(now time.Time) error    { return e.RekeyChild(now, e.name) }
func (e v2Engine) CreateChild(now time.Time) error {
	return e.Engine.CreateChild(now, e.name)
}
func (e v2Engine) Expired(now time.Time, spiIn uint32, hard bool) {
	e.ChildExpired(now, spiIn, hard)
}

// tunnel is one VPN with its engine and supervision state.
type tunnel struct {
	t    *Tunnel
	eng  engine
	sink *tunnelSink

	// up is set while an IPsec SA pair is installed; stopped once the
	// tunnel was removed. The sink sets them without any component lock.
	up      atomic.Bool
	stopped atomic.Bool
	// slot is held while an IKE SA this tunnel's supervision initiated is
	// in negotiation (ikeComponent.negotiations counts them).
	slot atomic.Bool

	// Status for the operational views, which take no lock that an engine
	// may hold while its sink waits for the kernel: the progress and the
	// engine's last error as the supervision last saw them, and why it
	// last abandoned a negotiation ("" if it did not).
	progress atomic.Uint32
	engErr   atomic.Pointer[string]
	supErr   atomic.Pointer[string]
	// negotiations counts the IKE SAs the supervision initiated; failures
	// those that ended without the tunnel coming up.
	negotiations atomic.Uint64
	failures     atomic.Uint64

	// sup guards the supervision state below. Lock order: the component's
	// mu, then sup, then the engine's own lock.
	sup     sync.Mutex
	nextTry time.Time
	// resetBackoff is set by the sink when the tunnel came up.
	resetBackoff atomic.Bool
	backoff      time.Duration
	// delay is the back-off step of the attempt under way.
	delay    time.Duration
	attempts int
	// initiated is set while the negotiation being timed is one this
	// gateway started (its end counts in failures unless the tunnel came
	// up).
	initiated bool
	lastTx    uint64
	haveTx    bool
	nextProbe time.Time
	// deadline is when the negotiation under way is abandoned (zero: none
	// is being timed).
	deadline time.Time
	// childlessSince is when an established IKE SA without an installed
	// CHILD SA was first seen; childAsked when one was requested on it.
	childlessSince time.Time
	childAsked     time.Time
	// emptySince is when the engine was first seen holding no CHILD SA
	// while the tunnel counts as up.
	emptySince time.Time
	// respondingSince is when the supervision first saw the IKE SAs in
	// negotiation all started by the peer (zero: it does not now).
	respondingSince time.Time
}

// listener owns the UDP 500/4500 sockets of one local address and the mux
// that hands their datagrams to the tunnels' engines.
type listener struct {
	addr   netip.Addr
	runner *udp.Runner
	mux    *mux
	cancel context.CancelFunc
	done   chan struct{}
}

// ikeComponent runs one IKE engine per VPN. Engines share the sockets of
// their local address; datagrams go to the engine whose peer address and
// IKE version match. Changing a VPN restarts only its engine.
type ikeComponent struct {
	log *slog.Logger
	// kern is sas: the kernel behind a record of bpfvpn's SAs.
	kern saInstaller
	sas  *saRecord
	dp   SPIPublisher
	// listen opens the sockets of a local address (udp.Listen; tests may
	// enter a network namespace first).
	listen func(addr netip.Addr) (*udp.Runner, error)
	// txCount reads the transmit attempts of st0 unit (packets + errors +
	// drops) for on-traffic tunnels.
	txCount func(unit int) (uint64, error)
	now     func() time.Time

	// Lock order: mu, then a tunnel's sup, then its engine's own lock.
	// The engines call the sinks with their lock held, so the sinks take
	// neither mu nor sup.
	mu        sync.Mutex
	adoptMu   sync.Mutex
	tunnels   map[string]*tunnel // by VPN name
	order     []string           // VPN names in configuration order
	listeners map[netip.Addr]*listener
	adopted   map[int]bool
	closed    bool
	// negotiations is the number of tunnels holding a slot.
	negotiations atomic.Int64
	// watchExpire makes the first Apply start watchExpires; stopWatch
	// ends it.
	watchExpire bool
	stopWatch   context.CancelFunc
	// appliedCfg is the configuration of the last Apply (configurations
	// are not changed once parsed) and appliedWant its translation.
	appliedCfg  *config.Config
	appliedWant []*Tunnel
}

func newIKEComponent(log *slog.Logger, kern saInstaller, dp SPIPublisher) *ikeComponent {
	sas := newSARecord(kern)
	c := &ikeComponent{log: log.With("component", "ike"), kern: sas, sas: sas, dp: dp, now: time.Now,
		tunnels: map[string]*tunnel{}, listeners: map[netip.Addr]*listener{}, adopted: map[int]bool{}}
	c.listen = func(addr netip.Addr) (*udp.Runner, error) {
		return udp.Listen(c.log, udp.DefaultListeners(addr))
	}
	tx := &txCounts{}
	c.txCount = tx.count
	return c
}

func (c *ikeComponent) Name() string { return "ike" }

// translate turns every VPN of cfg into a Tunnel and checks what the engines
// cannot serve together.
func translate(cfg *config.Config) ([]*Tunnel, error) {
	var out []*Tunnel
	var errs []error
	type peerKey struct {
		version int
		local   netip.Addr
		remote  netip.Addr
	}
	seen := map[peerKey]string{}
	for _, v := range cfg.IPsec.VPNs {
		t, err := TunnelOf(v)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		bindTunnel(cfg, t)
		k := peerKey{t.Version, t.Local, t.Remote}
		if other, ok := seen[k]; ok {
			errs = append(errs, fmt.Errorf("vpn %s: vpn %s already negotiates with %s from %s; several VPNs to one peer are not supported yet", v.Name, other, t.Remote, t.Local))
			continue
		}
		seen[k] = v.Name
		out = append(out, t)
	}
	return out, errors.Join(errs...)
}

func (c *ikeComponent) Check(ctx context.Context, cfg *config.Config) error {
	_, err := translate(cfg)
	return err
}

func (c *ikeComponent) Apply(ctx context.Context, cfg *config.Config) error {
	// The daemon re-applies its active configuration every 30 s; its
	// translation (a fingerprint per VPN) is kept rather than redone
	// (with 1,000 VPNs it was up to a quarter of a daemon's CPU).
	c.mu.Lock()
	want := c.appliedWant
	if cfg != c.appliedCfg || want == nil {
		c.mu.Unlock()
		var err error
		if want, err = translate(cfg); err != nil {
			return err
		}
		c.mu.Lock()
	}
	defer c.mu.Unlock()
	c.appliedCfg, c.appliedWant = cfg, want
	now := c.now()
	if c.closed {
		return errors.New("ike: closed")
	}
	if c.watchExpire && c.stopWatch == nil {
		wctx, cancel := context.WithCancel(context.Background())
		c.stopWatch = cancel
		go c.watchExpires(wctx)
	}
	wantByName := map[string]*Tunnel{}
	addrs := map[netip.Addr]bool{}
	for _, t := range want {
		wantByName[t.VPN] = t
		addrs[t.Local] = true
	}
	// Sockets first: a missing local address fails the apply before any
	// running tunnel is touched.
	var opened []netip.Addr
	for a := range addrs {
		if c.listeners[a] != nil {
			continue
		}
		l, err := c.startListener(a)
		if err != nil {
			for _, o := range opened {
				c.stopListener(o)
			}
			return err
		}
		c.listeners[a] = l
		opened = append(opened, a)
	}
	// Units may change hands: the SA record lists the kernel afresh (a
	// re-apply of an unchanged configuration keeps it).
	changed := len(want) != len(c.tunnels)
	for _, t := range want {
		if tu, ok := c.tunnels[t.VPN]; !ok || tu.t.Fingerprint != t.Fingerprint {
			changed = true
		}
	}
	if changed {
		c.sas.invalidate()
	}
	// Stop tunnels that went away or changed.
	restarted := map[string]bool{}
	for name, tu := range c.tunnels {
		if w, ok := wantByName[name]; ok && w.Fingerprint == tu.t.Fingerprint {
			continue
		} else if ok {
			restarted[name] = true
		}
		c.stopTunnel(ctx, now, tu)
		delete(c.tunnels, name)
	}
	// Start new and changed ones.
	var errs []error
	c.order = c.order[:0]
	for _, t := range want {
		c.order = append(c.order, t.VPN)
		if _, ok := c.tunnels[t.VPN]; ok {
			continue
		}
		tu, err := c.startTunnel(now, t)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if restarted[t.VPN] {
			// The peer was just told to delete the old SAs; if it keeps
			// its tunnel up it initiates at once. Let it, rather than
			// colliding with it.
			tu.sup.Lock()
			tu.nextTry = tu.nextTry.Add(ResponderDelay)
			tu.sup.Unlock()
		}
		c.tunnels[t.VPN] = tu
	}
	for a, l := range c.listeners {
		if !addrs[a] {
			c.stopListener(a)
			_ = l
		}
	}
	for _, l := range c.listeners {
		l.mux.wake()
	}
	return errors.Join(errs...)
}

func (c *ikeComponent) startListener(a netip.Addr) (*listener, error) {
	r, err := c.listen(a)
	if err != nil {
		return nil, fmt.Errorf("ike: open UDP 500/4500 on %s: %w", a, err)
	}
	// The mux's NextTimer is exact and datagrams wake the runner, so its
	// polling tick only bounds the delay of timers set from outside
	// (commits, clear, rekey); with one runner per local address, 100 ms
	// polls of thousands of tunnels cost more than the negotiations.
	r.TickInterval = listenerTick
	ctx, cancel := context.WithCancel(context.Background())
	l := &listener{addr: a, runner: r, cancel: cancel, done: make(chan struct{})}
	l.mux = newMux(c)
	go func() {
		defer close(l.done)
		r.Run(ctx, l.mux)
	}()
	c.log.Info("IKE listening", "addr", a.String())
	return l, nil
}

func (c *ikeComponent) stopListener(a netip.Addr) {
	l := c.listeners[a]
	if l == nil {
		return
	}
	delete(c.listeners, a)
	l.cancel()
	<-l.done
	l.runner.Close()
}

func (c *ikeComponent) startTunnel(now time.Time, t *Tunnel) (*tunnel, error) {
	l := c.listeners[t.Local]
	log := c.log.With("vpn", t.VPN, "gateway", t.Gateway)
	tu := &tunnel{t: t}
	tu.sink = &tunnelSink{c: c, tu: tu, unit: t.Unit, vpn: t.VPN, log: log}
	switch {
	case t.V2 != nil:
		e, err := ikev2.New(ikev2.Config{Sender: l.runner, Sink: tu.sink, Log: log})
		if err != nil {
			return nil, fmt.Errorf("vpn %s: %w", t.VPN, err)
		}
		if err := e.AddConnection(*t.V2); err != nil {
			return nil, fmt.Errorf("vpn %s: %w", t.VPN, err)
		}
		tu.eng = v2Engine{e, t.VPN}
	case t.V1 != nil:
		// With SAs of an earlier daemon in the kernel, INITIAL-CONTACT
		// would make the peer delete its side of them before the new pair
		// exists, dropping traffic; without it the peer keeps them until
		// the new pair replaces them (and DPD clears the stale phase 1).
		opts := ikev1.Options{Logger: log, NoInitialContact: c.unitHasSAs(t.Unit)}
		if opts.NoInitialContact {
			log.Info("adopting IPsec SAs of an earlier daemon: negotiating without INITIAL-CONTACT", "interface", fmt.Sprintf("st0.%d", t.Unit))
		}
		e, err := ikev1.New([]ikev1.Peer{*t.V1}, l.runner, tu.sink, opts)
		if err != nil {
			return nil, fmt.Errorf("vpn %s: %w", t.VPN, err)
		}
		tu.eng = v1Engine{e, t.Gateway, newLivenessProbe(c.sas.kern, t.Unit, t.Local, t.Remote, t.V1.DPD)}
	default:
		return nil, fmt.Errorf("vpn %s: no engine", t.VPN)
	}
	// The first negotiation starts from the supervision. When both ends
	// establish immediately and start together, simultaneous initiation
	// costs a round of collisions; so the end with the higher address
	// waits ResponderDelay first, and usually just answers the other.
	tu.nextTry = now.Add(time.Duration(mrand.Int64N(int64(startJitter))))
	if t.Local.Compare(t.Remote) > 0 {
		tu.nextTry = tu.nextTry.Add(ResponderDelay)
	}
	l.mux.add(tu)
	log.Info("IKE session started", "version", t.Version, "establish", establishName(t.Immediate), "interface", fmt.Sprintf("st0.%d", t.Unit))
	return tu, nil
}

func establishName(immediate bool) string {
	if immediate {
		return "immediately"
	}
	return "on-traffic"
}

// stopTunnel deletes the tunnel's SAs (telling the peer) and removes it.
func (c *ikeComponent) stopTunnel(ctx context.Context, now time.Time, tu *tunnel) {
	tu.stopped.Store(true)
	c.releaseSlot(tu)
	tu.eng.Terminate(now)
	if l := c.listeners[tu.t.Local]; l != nil {
		l.mux.remove(tu)
	}
	if err := tu.sink.remove(ctx); err != nil {
		c.log.Warn("remove tunnel", "vpn", tu.t.VPN, "err", err)
	}
	c.log.Info("IKE session stopped", "vpn", tu.t.VPN)
}

// initiate starts negotiation and schedules the next retry.
func (c *ikeComponent) initiate(now time.Time, tu *tunnel) {
	tu.sup.Lock()
	defer tu.sup.Unlock()
	c.initiateLocked(now, tu)
}

// initiateLocked starts a new IKE SA (with its CHILD SA). A negotiation
// that fails in the engine leaves the tunnel idle until nextTry; one that
// neither completes nor fails is abandoned at deadline.
func (c *ikeComponent) initiateLocked(now time.Time, tu *tunnel) {
	if tu.resetBackoff.Swap(false) {
		tu.backoff = 0
	}
	tu.attempts++
	tu.negotiations.Add(1)
	tu.initiated = true
	tu.delay = c.nextBackoff(tu)
	tu.nextTry = now.Add(tu.delay)
	tu.deadline = now.Add(NegotiationTimeout)
	tu.childlessSince, tu.childAsked = time.Time{}, time.Time{}
	if err := tu.eng.Initiate(now); err != nil {
		c.log.Warn("initiate", "vpn", tu.t.VPN, "err", err)
	}
}

// takeSlot reserves a negotiation slot for tu (true if it holds one).
func (c *ikeComponent) takeSlot(tu *tunnel) bool {
	if tu.slot.Load() {
		return true
	}
	for {
		n := c.negotiations.Load()
		if n >= MaxNegotiations {
			return false
		}
		if c.negotiations.CompareAndSwap(n, n+1) {
			tu.slot.Store(true)
			return true
		}
	}
}

// releaseSlot frees tu's negotiation slot, if it holds one.
func (c *ikeComponent) releaseSlot(tu *tunnel) {
	if tu.slot.CompareAndSwap(true, false) {
		c.negotiations.Add(-1)
	}
}

// nextBackoff returns the delay before the next attempt and doubles the
// back-off (RetryMin … RetryMax).
func (c *ikeComponent) nextBackoff(tu *tunnel) time.Duration {
	if tu.backoff == 0 {
		tu.backoff = RetryMin
	}
	d := tu.backoff
	tu.backoff = min(2*tu.backoff, RetryMax)
	return d
}

// abandonLocked gives up on a negotiation that did not finish by its
// deadline: it deletes the tunnel's IKE SAs (none carries an installed
// CHILD SA) and schedules a new attempt after the back-off. The delay is
// jittered, and the end with the higher address adds ResponderDelay, so two
// ends that keep colliding drift apart and one of them ends up responding.
func (c *ikeComponent) abandonLocked(now time.Time, tu *tunnel, why string) {
	if tu.resetBackoff.Swap(false) {
		tu.backoff, tu.delay = 0, 0
	}
	d := tu.delay
	if d == 0 {
		d = c.nextBackoff(tu)
	}
	tu.delay = 0
	d += time.Duration(mrand.Int64N(int64(d)/2 + 1))
	if tu.t.Local.Compare(tu.t.Remote) > 0 {
		d += ResponderDelay
	}
	tu.supErr.Store(&why)
	c.endAttemptLocked(tu)
	c.log.Warn("negotiation abandoned; retrying", "vpn", tu.t.VPN, "reason", why, "retry-in", d.Round(time.Millisecond))
	tu.eng.Terminate(now)
	c.releaseSlot(tu)
	tu.progress.Store(uint32(progressIdle))
	tu.nextTry = now.Add(d)
	tu.deadline, tu.childlessSince, tu.childAsked = time.Time{}, time.Time{}, time.Time{}
}

// endAttemptLocked ends the negotiation being timed while the tunnel is
// down: abandoned at its deadline, or gone from the engine (failed). One
// this gateway started counts as a failure; one that brought the tunnel up
// was cleared by then.
func (c *ikeComponent) endAttemptLocked(tu *tunnel) {
	if !tu.deadline.IsZero() && tu.initiated {
		tu.failures.Add(1)
	}
	tu.deadline, tu.initiated = time.Time{}, false
}

// progress is how far a tunnel that is not up got, from its IKE SAs.
type progress uint8

const (
	progressIdle        progress = iota // no IKE SA, or only ones going away
	progressIKE                         // an IKE SA being negotiated
	progressEstablished                 // an IKE SA up (its CHILD SA pending or missing)
)

func ikeProgress(sas []ike.IKESAStatus) progress {
	p := progressIdle
	for _, s := range sas {
		switch s.State {
		case ike.StateEstablished, ike.StateRekeying:
			return progressEstablished
		case ike.StateConnecting:
			p = progressIKE
		}
	}
	return p
}

// supervise keeps immediately tunnels up and starts on-traffic tunnels when
// a packet was routed into their st0. A tunnel that is not up is, by its IKE
// SAs:
//   - idle: (immediately) a new IKE SA is initiated once the back-off
//     allows;
//   - negotiating an IKE SA: left alone until NegotiationTimeout, then
//     abandoned and retried with back-off;
//   - holding an established IKE SA without an installed CHILD SA (a
//     collision or a deleted CHILD SA): after ChildGrace a CHILD SA is
//     requested on it, and abandoned like an IKE SA if none is installed
//     by the deadline.
//
// It returns when it next wants to run.
func (c *ikeComponent) supervise(now time.Time, tunnels []*tunnel) time.Time {
	var next time.Time
	for _, tu := range tunnels {
		if t := c.superviseOne(now, tu); !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	return next
}

// superviseOne supervises tu and returns when it next needs attention
// (zero: no sooner than superviseMax).
func (c *ikeComponent) superviseOne(now time.Time, tu *tunnel) time.Time {
	tu.sup.Lock()
	defer tu.sup.Unlock()
	if tu.stopped.Load() {
		return time.Time{}
	}
	defer func() {
		if err := tu.eng.LastError(); err != nil {
			s := err.Error()
			tu.engErr.Store(&s)
		} else {
			tu.engErr.Store(nil)
		}
	}()
	if tu.up.Load() {
		c.releaseSlot(tu)
		tu.deadline, tu.childlessSince, tu.childAsked = time.Time{}, time.Time{}, time.Time{}
		tu.initiated = false
		tu.supErr.Store(nil)
		tu.progress.Store(uint32(progressEstablished))
		if c.staleUpLocked(now, tu) {
			return tu.emptySince.Add(ChildGrace)
		}
		if tu.up.Load() {
			return time.Time{}
		}
	}
	if tu.resetBackoff.Swap(false) {
		tu.backoff, tu.haveTx = 0, false
	}
	if tu.t.Immediate {
		return c.superviseImmediate(now, tu)
	}
	// on-traffic
	var next time.Time
	sas := tu.eng.IKESAs(now)
	p := ikeProgress(sas)
	tu.progress.Store(uint32(p))
	c.stalledResponderLocked(now, tu, sas)
	if p != progressIdle {
		next = c.timeNegotiation(now, tu, p, false)
	} else {
		c.endAttemptLocked(tu)
	}
	if now.Before(tu.nextProbe) {
		return minTime(next, tu.nextProbe)
	}
	tu.nextProbe = now.Add(trafficPoll)
	next = minTime(next, tu.nextProbe)
	n, err := c.txCount(tu.t.Unit)
	if err != nil {
		return next
	}
	if tu.haveTx && n > tu.lastTx {
		c.trafficLocked(now, tu, sas, "st0 counters")
	}
	tu.lastTx, tu.haveTx = n, true
	return next
}

// staleUpLocked checks a tunnel that counts as up against its engine. The
// sink keeps a tunnel up when a deleted pair leaves another installed one,
// and that one may be an old inbound SA in its retirement grace (colliding
// negotiations create and delete several pairs). A tunnel whose engine holds
// no CHILD SA for ChildGrace is down: its SAs are removed (withdrawing its
// routes) and it is supervised as down. It reports whether the check is
// still waiting out the grace.
func (c *ikeComponent) staleUpLocked(now time.Time, tu *tunnel) bool {
	if len(tu.eng.ChildSAs(now)) > 0 {
		tu.emptySince = time.Time{}
		return false
	}
	if tu.emptySince.IsZero() {
		tu.emptySince = now
	}
	if now.Before(tu.emptySince.Add(ChildGrace)) {
		return true
	}
	tu.emptySince = time.Time{}
	c.log.Warn("tunnel counted up without an IPsec SA in its engine: taking it down", "vpn", tu.t.VPN)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.kern.RemoveTunnel(ctx, tu.t.Unit); err != nil {
		c.log.Warn("remove tunnel", "vpn", tu.t.VPN, "err", err)
	}
	tu.up.Store(false)
	tu.resetBackoff.Store(true)
	return false
}

// superviseImmediate supervises an establish-tunnels immediately tunnel
// that is not up and returns when it next needs attention.
func (c *ikeComponent) superviseImmediate(now time.Time, tu *tunnel) time.Time {
	p := ikeProgress(tu.eng.IKESAs(now))
	tu.progress.Store(uint32(p))
	if p != progressIdle {
		return c.timeNegotiation(now, tu, p, true)
	}
	// Idle: the last attempt failed in the engine (or was abandoned).
	c.endAttemptLocked(tu)
	c.releaseSlot(tu)
	tu.childlessSince, tu.childAsked = time.Time{}, time.Time{}
	if now.Before(tu.nextTry) {
		return tu.nextTry
	}
	if !c.takeSlot(tu) {
		return now.Add(slotWait)
	}
	c.initiateLocked(now, tu)
	return minTime(tu.nextTry, tu.deadline)
}

// timeNegotiation times a negotiation in progress p of a tunnel that is not
// up; askChild lets it request a missing CHILD SA. It returns when it next
// needs attention.
func (c *ikeComponent) timeNegotiation(now time.Time, tu *tunnel, p progress, askChild bool) time.Time {
	if p == progressIKE {
		tu.childlessSince, tu.childAsked = time.Time{}, time.Time{}
		if tu.deadline.IsZero() {
			// Started by the peer, or left from an earlier attempt.
			tu.deadline = now.Add(NegotiationTimeout)
		}
		if !now.Before(tu.deadline) {
			c.abandonLocked(now, tu, fmt.Sprintf("IKE SA not established within %v", NegotiationTimeout))
			return tu.nextTry
		}
		return tu.deadline
	}
	// An IKE SA is up but no CHILD SA is installed.
	c.releaseSlot(tu)
	if tu.childlessSince.IsZero() {
		tu.childlessSince = now
		tu.deadline = time.Time{}
	}
	if !tu.childAsked.IsZero() {
		if !now.Before(tu.deadline) {
			c.abandonLocked(now, tu, fmt.Sprintf("no CHILD SA installed within %v of requesting one", NegotiationTimeout))
			return tu.nextTry
		}
		return tu.deadline
	}
	if grace := tu.childlessSince.Add(ChildGrace); now.Before(grace) {
		return grace
	}
	if !askChild {
		return time.Time{}
	}
	c.requestChildLocked(now, tu)
	return tu.deadline
}

// requestChildLocked asks the engine for a CHILD SA on the established IKE
// SA, timed by NegotiationTimeout.
func (c *ikeComponent) requestChildLocked(now time.Time, tu *tunnel) {
	c.log.Info("IKE SA up without an IPsec SA: requesting one", "vpn", tu.t.VPN)
	tu.childAsked = now
	tu.deadline = now.Add(NegotiationTimeout)
	if err := tu.eng.CreateChild(now); err != nil {
		c.log.Warn("request CHILD SA", "vpn", tu.t.VPN, "err", err)
	}
}

// trafficLocked starts what a down on-traffic tunnel with IKE SAs sas
// lacks after a packet was routed into it; trigger says how that was seen.
// Its own negotiation under way is left to finish, and so is one the peer
// started until it stalls for ResponderStall (then ours starts once the
// back-off allows).
func (c *ikeComponent) trafficLocked(now time.Time, tu *tunnel, sas []ike.IKESAStatus, trigger string) {
	switch p := ikeProgress(sas); {
	case p == progressIdle:
		c.log.Info("traffic routed into a down tunnel: negotiating", "vpn", tu.t.VPN, "trigger", trigger)
		c.initiateLocked(now, tu)
	case p == progressIKE && c.stalledResponderLocked(now, tu, sas) && !now.Before(tu.nextTry):
		c.log.Info("traffic routed into a down tunnel whose peer-started negotiation stalled: negotiating",
			"vpn", tu.t.VPN, "trigger", trigger, "stalled-for", now.Sub(tu.respondingSince).Round(time.Millisecond))
		c.initiateLocked(now, tu)
	case p == progressEstablished && tu.childAsked.IsZero():
		c.requestChildLocked(now, tu)
	}
}

// stalledResponderLocked tracks how long every IKE SA of tu in negotiation
// (sas) has been one the peer started, and reports whether that has lasted
// ResponderStall.
func (c *ikeComponent) stalledResponderLocked(now time.Time, tu *tunnel, sas []ike.IKESAStatus) bool {
	if !onlyPeerNegotiating(sas) {
		tu.respondingSince = time.Time{}
		return false
	}
	if tu.respondingSince.IsZero() {
		tu.respondingSince = now
	}
	return !now.Before(tu.respondingSince.Add(ResponderStall))
}

// onlyPeerNegotiating reports whether sas holds IKE SAs in negotiation and
// the peer started all of them.
func onlyPeerNegotiating(sas []ike.IKESAStatus) bool {
	peer := false
	for _, s := range sas {
		if s.State != ike.StateConnecting {
			continue
		}
		if s.Role != ike.Responder {
			return false
		}
		peer = true
	}
	return peer
}

func minTime(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// Rekey rekeys the IPsec SAs of vpn ("" = every VPN) now.
func (c *ikeComponent) Rekey(ctx context.Context, vpn string) error {
	now := c.now()
	found := false
	var errs []error
	for _, tu := range c.snapshotTunnels() {
		if vpn != "" && tu.t.VPN != vpn {
			continue
		}
		found = true
		if err := tu.eng.Rekey(now); err != nil {
			errs = append(errs, err)
		}
	}
	if !found {
		return fmt.Errorf("rekey: no VPN %q", vpn)
	}
	return errors.Join(errs...)
}

// TrafficStart starts negotiation of the on-traffic tunnel bound to unit
// (the data plane's ring-buffer event calls it).
func (c *ikeComponent) TrafficStart(unit int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for _, tu := range c.tunnels {
		if tu.t.Unit == unit && !tu.up.Load() && !tu.stopped.Load() {
			tu.sup.Lock()
			c.trafficLocked(now, tu, tu.eng.IKESAs(now), "data plane event")
			tu.sup.Unlock()
		}
	}
}

// otherChildren reports whether the tunnel has an installed inbound SA
// besides spiIn (then a newer pair carries it). It runs in the engine's
// sink, where the engine's own state is locked, so it asks the SA record.
func (c *ikeComponent) otherChildren(tu *tunnel, spiIn uint32) bool {
	_, other, err := c.sas.unitSAs(tu.t.Unit, tu.t.Local, spiIn)
	return err == nil && other
}

// unitHasSAs reports whether the kernel holds SAs of unit (left by an
// earlier daemon when this one starts, or another pair of the tunnel).
func (c *ikeComponent) unitHasSAs(unit int) bool {
	has, _, err := c.sas.unitSAs(unit, netip.Addr{}, 0)
	return err == nil && has
}

func (c *ikeComponent) markAdopted(unit int) bool {
	c.adoptMu.Lock()
	defer c.adoptMu.Unlock()
	if c.adopted[unit] {
		return false
	}
	c.adopted[unit] = true
	return true
}

// Close stops the engines and sockets without deleting any SA: the kernel
// keeps carrying traffic and the next daemon adopts the tunnels.
func (c *ikeComponent) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.stopWatch != nil {
		c.stopWatch()
	}
	for a := range c.listeners {
		c.stopListener(a)
	}
	return nil
}

// snapshotTunnels returns the tunnels in configuration order.
func (c *ikeComponent) snapshotTunnels() []*tunnel {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*tunnel, 0, len(c.order))
	for _, name := range c.order {
		if tu := c.tunnels[name]; tu != nil {
			out = append(out, tu)
		}
	}
	return out
}

// mux is the ike.Engine a listener's runner drives: it dispatches datagrams
// by peer address and IKE version and runs the engines' timers and the
// supervision.
type mux struct {
	c       *ikeComponent
	mu      sync.Mutex
	tunnels []*tunnel
	superAt time.Time
	// gen counts add and wake: a supervision pass that started before one
	// does not push superAt into the future (that lost the wake-up of a
	// tunnel started by a commit for up to RetryMax).
	gen uint64
}

func newMux(c *ikeComponent) *mux { return &mux{c: c} }

func (m *mux) add(tu *tunnel) {
	m.mu.Lock()
	m.tunnels = append(m.tunnels, tu)
	m.superAt = time.Time{}
	m.gen++
	m.mu.Unlock()
}

func (m *mux) remove(tu *tunnel) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, x := range m.tunnels {
		if x == tu {
			m.tunnels = append(m.tunnels[:i], m.tunnels[i+1:]...)
			return
		}
	}
}

// wake makes the next NextTimer call due now (to run supervision).
func (m *mux) wake() {
	m.mu.Lock()
	m.superAt = time.Time{}
	m.gen++
	m.mu.Unlock()
}

func (m *mux) list() []*tunnel {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*tunnel(nil), m.tunnels...)
}

// ikeVersion returns the major version of an IKE header (1 or 2), 0 if the
// datagram is too short.
func ikeVersion(data []byte) int {
	if len(data) < 28 {
		return 0
	}
	return int(data[17] >> 4)
}

func (m *mux) HandleDatagram(now time.Time, d ike.Datagram) {
	v := ikeVersion(d.Data)
	for _, tu := range m.list() {
		if tu.t.Remote == d.Remote.Addr().Unmap() && tu.t.Version == v {
			tu.eng.HandleDatagram(now, d)
			return
		}
	}
	m.c.log.Debug("IKE datagram from an unknown peer dropped", "remote", d.Remote.String(), "version", v)
}

func (m *mux) Tick(now time.Time) {
	m.mu.Lock()
	ts := append([]*tunnel(nil), m.tunnels...)
	gen := m.gen
	m.mu.Unlock()
	for _, tu := range ts {
		if at, ok := tu.eng.NextTimer(); ok && !at.After(now) {
			tu.eng.Tick(now)
		}
		if tu.up.Load() {
			// Free the slot at once: other tunnels wait for it.
			m.c.releaseSlot(tu)
		}
	}
	m.mu.Lock()
	due := !m.superAt.After(now)
	m.mu.Unlock()
	if due {
		next := m.c.supervise(now, ts)
		if limit := now.Add(superviseMax); next.IsZero() || next.After(limit) {
			next = limit
		}
		m.mu.Lock()
		if m.gen == gen {
			m.superAt = next
		}
		m.mu.Unlock()
	}
}

func (m *mux) NextTimer() (time.Time, bool) {
	m.mu.Lock()
	next := m.superAt
	m.mu.Unlock()
	for _, tu := range m.list() {
		if at, ok := tu.eng.NextTimer(); ok && at.Before(next) {
			next = at
		}
	}
	return next, true
}

var _ ike.Engine = (*mux)(nil)

// sortedAddrs is for deterministic iteration in tests and logs.
func sortedAddrs(m map[netip.Addr]*listener) []netip.Addr {
	out := make([]netip.Addr, 0, len(m))
	for a := range m {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return out
}

// txCounts reads how many packets were routed into each st0 unit (sent,
// dropped and failed ones: without SAs the xfrm interface drops them) with
// one dump of the links, shared by every on-traffic tunnel that probes
// within trafficPoll/2 of it. (A netlink request per tunnel per poll was
// most of a responder's CPU with 1,000 on-traffic tunnels.)
type txCounts struct {
	mu     sync.Mutex
	at     time.Time
	byUnit map[int]uint64
	err    error
}

func (x *txCounts) count(unit int) (uint64, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.at.IsZero() || time.Since(x.at) >= trafficPoll/2 {
		x.byUnit, x.err = linkTxCounts()
		// From the end of the dump: a dump slower than trafficPoll/2
		// (1,000 links in the VM) must not make every waiting caller
		// dump again.
		x.at = time.Now()
	}
	if x.err != nil {
		return 0, x.err
	}
	n, ok := x.byUnit[unit]
	if !ok {
		return 0, fmt.Errorf("st0.%d: no such link", unit)
	}
	return n, nil
}

// linkTxCounts returns the transmit attempts of every st0 unit.
func linkTxCounts() (map[int]uint64, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	out := make(map[int]uint64)
	for _, l := range links {
		unit, ok := kernel.UnitOfLink(l.Attrs().Name)
		if !ok {
			continue
		}
		if st := l.Attrs().Statistics; st != nil {
			out[unit] = st.TxPackets + st.TxDropped + st.TxErrors + st.TxCarrierErrors
		}
	}
	return out, nil
}
