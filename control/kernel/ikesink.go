package kernel

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/bpfvpn/bpfvpn/ike"
)

// SAInstaller is the part of a Reconciler an IKESink drives (tests use a
// fake).
type SAInstaller interface {
	InstallChildSA(ctx context.Context, c ChildSA) ([]Change, error)
	InstallInbound(ctx context.Context, c ChildSA) ([]Change, error)
	RetireChildSA(ctx context.Context, old ChildSA, grace time.Duration) ([]Change, error)
	RemoveTunnel(ctx context.Context, unit int) ([]Change, error)
	RemovePeerTunnel(ctx context.Context, unit, peer int) ([]Change, error)
	InstalledSAs() ([]InstalledSA, error)
}

var _ SAInstaller = (*Reconciler)(nil)

// SPIPublisher tells the data plane which inbound ESP SPIs are installed, so
// that its SPI filter admits them; ifID is the if_id of the tunnel's SAs.
type SPIPublisher interface {
	AddInboundSPI(spi, ifID uint32) error
	RemoveInboundSPI(spi uint32) error
}

// Defaults of IKESink's timings.
const (
	// DefaultGrace is how long an old inbound SA keeps accepting packets
	// after its pair was replaced, for packets the peer sent before it
	// switched.
	DefaultGrace = 5 * time.Second
	// DefaultSwitchDelay is the longest a new pair that replaces a working
	// one carries only inbound traffic: the peer installs its side up to one
	// exchange later (the IKEv2 initiator, the IKEv1 Quick Mode responder),
	// and until then only the old pair reaches it. The old pair's deletion
	// ends the wait early (the peer has switched by then).
	DefaultSwitchDelay = 2 * time.Second
)

// IKESink installs what the IKE engines negotiate: it implements ike.SASink
// on an SAInstaller (a Reconciler). One sink may serve any number of
// engines and tunnels; a CHILD SA's tunnel (st0 unit, multipoint peer) comes
// from its if_id (FromIKE).
//
// Invariants:
//   - a rekey is make-before-break: the new inbound SA is installed (and
//     published to the data plane) before anything else; the new outbound SA
//     follows when the old pair is deleted or after SwitchDelay; the old
//     inbound SA (and its SPI in the data plane) stays for Grace after that;
//   - a pair that arrives while the kernel holds SAs of the tunnel this sink
//     did not negotiate (an earlier daemon's: adoption after a restart, or a
//     pair the peer renegotiated) is handled like a rekey of those SAs, which
//     are retired once the new pair carries outbound traffic;
//   - the deletion of a tunnel's last pair removes the tunnel (SAs,
//     policies, routes) and calls OnDown.
type IKESink struct {
	ike.NopSink
	R SAInstaller
	// SPIs, if set, receives the inbound SPIs of installed SAs.
	SPIs SPIPublisher
	// Grace defaults to DefaultGrace, SwitchDelay to DefaultSwitchDelay.
	Grace       time.Duration
	SwitchDelay time.Duration
	Log         *slog.Logger
	// OnUp is called when a pair of the tunnel is installed, OnDown when
	// its last pair went. They run with the calling engine's lock held and
	// must not call into the engine.
	OnUp, OnDown func(unit, peer int)

	mu      sync.Mutex
	adopted map[tunnelKey]bool
	// pending are new pairs whose outbound SA waits, by tunnel and the
	// inbound SPI of the pair they replace (0 when that pair is not known
	// to the engine: left by an earlier daemon or an earlier IKE SA).
	pending map[pendingKey]*pendingOut
}

type tunnelKey struct{ unit, peer int }

type pendingKey struct {
	t     tunnelKey
	oldIn uint32
}

// pendingOut is a new pair installed inbound only.
type pendingOut struct {
	sa    ChildSA // with keys until the outbound SA is installed
	timer *time.Timer
	// adopt retires the SAs the engine does not know once the switch is
	// done.
	adopt bool
	// retire are pairs deleted while this one waited: they keep carrying
	// outbound traffic until the switch and are retired then.
	retire []ChildSA
}

func (s *IKESink) grace() time.Duration {
	if s.Grace <= 0 {
		return DefaultGrace
	}
	return s.Grace
}

func (s *IKESink) switchDelay() time.Duration {
	if s.SwitchDelay <= 0 {
		return DefaultSwitchDelay
	}
	return s.SwitchDelay
}

func (s *IKESink) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

func ctxTimeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), socketTimeout)
}

func keyOf(c ChildSA) tunnelKey { return tunnelKey{c.Unit, c.Peer} }

// wipe clears the key material of c.
func wipe(c *ChildSA) {
	for _, k := range []Key{c.Inbound.Encryption, c.Inbound.Integrity, c.Outbound.Encryption, c.Outbound.Integrity} {
		clear(k)
	}
}

// ChildSAInstalled installs a new pair. When other SAs already carry the
// tunnel, the new pair is installed inbound first and takes the outbound
// traffic after SwitchDelay, so that the switch loses nothing in either
// direction; the SAs the engine did not negotiate are retired then.
func (s *IKESink) ChildSAInstalled(sa ike.ChildSA) error {
	c, err := FromIKE(sa)
	if err != nil {
		return err
	}
	ctx, cancel := ctxTimeout()
	defer cancel()
	first := s.markAdopted(keyOf(c))
	s.publish(c.InboundSPI, c)
	if s.hasSAs(c, 0) {
		if _, err := s.R.InstallInbound(ctx, c); err != nil {
			s.log().Error("install inbound IPsec SA", "sa", c.String(), "err", err)
			return fmt.Errorf("install inbound IPsec SA of %s: %w", c.name(), err)
		}
		s.log().Info("IPsec SA pair installed inbound; outbound follows", "sa", c.String(), "after", s.switchDelay())
		s.schedule(0, c, first)
		s.up(c)
		return nil
	}
	if _, err := s.R.InstallChildSA(ctx, c); err != nil {
		s.log().Error("install IPsec SA pair", "sa", c.String(), "err", err)
		return fmt.Errorf("install IPsec SA pair of %s: %w", c.name(), err)
	}
	wipe(&c)
	s.log().Info("IPsec SA pair installed", "sa", c.String())
	s.up(c)
	return nil
}

// ChildSARekeyed installs the new pair inbound only; its outbound SA
// follows when the old pair is deleted or after SwitchDelay.
func (s *IKESink) ChildSARekeyed(old, sa ike.ChildSA) error {
	c, err := FromIKE(sa)
	if err != nil {
		return err
	}
	ctx, cancel := ctxTimeout()
	defer cancel()
	s.markAdopted(keyOf(c))
	s.publish(c.InboundSPI, c)
	if _, err := s.R.InstallInbound(ctx, c); err != nil {
		s.log().Error("install rekeyed inbound IPsec SA", "sa", c.String(), "err", err)
		return fmt.Errorf("install rekeyed IPsec SA of %s: %w", c.name(), err)
	}
	s.log().Info("IPsec SA pair rekeyed", "old-in", fmt.Sprintf("%08x", old.SPIIn), "sa", c.String())
	s.schedule(old.SPIIn, c, false)
	s.up(c)
	return nil
}

func (s *IKESink) schedule(oldIn uint32, c ChildSA, adopt bool) {
	p := &pendingOut{sa: c, adopt: adopt}
	k := pendingKey{keyOf(c), oldIn}
	s.mu.Lock()
	if s.pending == nil {
		s.pending = map[pendingKey]*pendingOut{}
	}
	if prev := s.pending[k]; prev != nil {
		prev.timer.Stop()
		go s.complete(k, prev)
	}
	s.pending[k] = p
	p.timer = time.AfterFunc(s.switchDelay(), func() { s.complete(k, p) })
	s.mu.Unlock()
}

// complete installs the outbound SA of a pending pair, once, then retires
// what it replaces.
func (s *IKESink) complete(k pendingKey, p *pendingOut) {
	s.mu.Lock()
	if s.pending[k] == p {
		delete(s.pending, k)
	}
	c := p.sa
	p.sa = ChildSA{}
	retire := p.retire
	p.retire = nil
	s.mu.Unlock()
	if c.Inbound.Encryption == nil {
		return // completed or cancelled already
	}
	p.timer.Stop()
	ctx, cancel := ctxTimeout()
	defer cancel()
	if _, err := s.R.InstallChildSA(ctx, c); err != nil {
		s.log().Warn("install outbound IPsec SA", "sa", c.String(), "err", err)
	} else {
		s.log().Info("outbound traffic moved to the new IPsec SA", "sa", c.String())
	}
	wipe(&c)
	for _, old := range retire {
		s.retire(ctx, old)
	}
	if p.adopt {
		s.adopt(ctx, c)
	}
}

// cancelPending drops a pending pair that died before its switch.
func (s *IKESink) cancelPending(t tunnelKey, spiIn uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, p := range s.pending {
		if k.t == t && p.sa.InboundSPI == spiIn {
			p.timer.Stop()
			wipe(&p.sa)
			p.sa = ChildSA{}
			delete(s.pending, k)
		}
	}
}

// retire deletes old's outbound SA now and its inbound SA, and the inbound
// SPI in the data plane, after Grace.
func (s *IKESink) retire(ctx context.Context, old ChildSA) {
	if _, err := s.R.RetireChildSA(ctx, old, s.grace()); err != nil {
		s.log().Warn("retire IPsec SA pair", "spi-in", fmt.Sprintf("%08x", old.InboundSPI), "err", err)
	}
	if s.SPIs != nil && old.InboundSPI != 0 {
		spi := old.InboundSPI
		time.AfterFunc(s.grace(), func() {
			if err := s.SPIs.RemoveInboundSPI(spi); err != nil {
				s.log().Warn("withdraw inbound SPI from the data plane", "spi", fmt.Sprintf("%08x", spi), "err", err)
			}
		})
	}
}

// ChildSADeleted switches outbound traffic to the pair that replaces sa (the
// peer has switched by now), then retires sa; when it was the tunnel's last
// pair, the tunnel goes down.
func (s *IKESink) ChildSADeleted(sa ike.ChildSA) {
	c, err := FromIKE(sa.WithoutKeys())
	if err != nil {
		s.log().Warn("IPsec SA pair deleted", "sa", sa.String(), "err", err)
		return
	}
	ctx, cancel := ctxTimeout()
	defer cancel()
	t := keyOf(c)
	// A pair deleted while another one waits for its switch after
	// replacing SAs the engine did not know (key 0) says nothing about the
	// peer: it keeps carrying outbound traffic until that switch and is
	// retired then.
	s.mu.Lock()
	p := s.pending[pendingKey{t, c.InboundSPI}]
	if q := s.pending[pendingKey{t, 0}]; p == nil && q != nil && q.sa.InboundSPI != c.InboundSPI && q.sa.Inbound.Encryption != nil {
		q.retire = append(q.retire, c)
		s.mu.Unlock()
		s.log().Info("IPsec SA pair deleted; retired once the new pair carries outbound traffic", "spi-in", fmt.Sprintf("%08x", c.InboundSPI))
		return
	}
	s.mu.Unlock()
	if p != nil {
		s.complete(pendingKey{t, c.InboundSPI}, p)
	}
	s.cancelPending(t, c.InboundSPI)
	if s.hasSAs(c, c.InboundSPI) {
		// A newer pair carries the tunnel: retire this one, keep routes.
		s.retire(ctx, c)
		return
	}
	if s.SPIs != nil {
		if err := s.SPIs.RemoveInboundSPI(c.InboundSPI); err != nil {
			s.log().Warn("withdraw inbound SPI from the data plane", "spi", fmt.Sprintf("%08x", c.InboundSPI), "err", err)
		}
	}
	if err := s.RemoveTunnel(ctx, c.Unit, c.Peer); err != nil {
		s.log().Warn("remove tunnel", "interface", c.name(), "err", err)
	}
	s.log().Info("tunnel down: IPsec SAs removed, routes withdrawn", "interface", c.name())
	if s.OnDown != nil {
		s.OnDown(c.Unit, c.Peer)
	}
}

// RemoveTunnel removes the SAs, policies and routes of one tunnel: a unit's
// own (peer 0) or one peer's of a multipoint unit.
func (s *IKESink) RemoveTunnel(ctx context.Context, unit, peer int) error {
	s.mu.Lock()
	for k, p := range s.pending {
		if k.t == (tunnelKey{unit, peer}) {
			p.timer.Stop()
			wipe(&p.sa)
			p.sa = ChildSA{}
			delete(s.pending, k)
		}
	}
	s.mu.Unlock()
	var err error
	if peer == 0 {
		_, err = s.R.RemoveTunnel(ctx, unit)
	} else {
		_, err = s.R.RemovePeerTunnel(ctx, unit, peer)
	}
	return err
}

// hasSAs reports whether the kernel holds an SA of c's tunnel other than
// c's own and, when except is not 0, other than the inbound SA except.
func (s *IKESink) hasSAs(c ChildSA, except uint32) bool {
	installed, err := s.R.InstalledSAs()
	if err != nil {
		return false
	}
	local := c.Local.Unmap()
	for _, sa := range installed {
		if sa.Unit != c.Unit || sa.Peer != c.Peer || sa.SPI == c.InboundSPI && sa.Dst == local {
			continue
		}
		if except != 0 {
			// Only another inbound SA proves another pair.
			if sa.SPI == except || sa.Dst != local || sa.Direction == "outbound" {
				continue
			}
		}
		return true
	}
	return false
}

func (s *IKESink) markAdopted(t tunnelKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.adopted[t] {
		return false
	}
	if s.adopted == nil {
		s.adopted = map[tunnelKey]bool{}
	}
	s.adopted[t] = true
	return true
}

func (s *IKESink) publish(spi uint32, c ChildSA) {
	if s.SPIs == nil {
		return
	}
	if err := s.SPIs.AddInboundSPI(spi, tunnelIfID(c.Unit, c.Peer)); err != nil {
		s.log().Warn("publish inbound SPI to the data plane", "spi", fmt.Sprintf("%08x", spi), "err", err)
	}
}

func (s *IKESink) up(c ChildSA) {
	if s.OnUp != nil {
		s.OnUp(c.Unit, c.Peer)
	}
}

// adopt retires the SAs of cur's tunnel other than cur that this sink did
// not negotiate: an earlier daemon left them and they carried traffic until
// cur took over.
func (s *IKESink) adopt(ctx context.Context, cur ChildSA) {
	installed, err := s.R.InstalledSAs()
	if err != nil {
		s.log().Warn("list SAs to adopt", "err", err)
		return
	}
	var ins, outs []InstalledSA
	for _, sa := range installed {
		if sa.Unit != cur.Unit || sa.Peer != cur.Peer || sa.SPI == cur.InboundSPI || sa.SPI == cur.OutboundSPI {
			continue
		}
		if sa.Dst == cur.Local.Unmap() {
			ins = append(ins, sa)
		} else {
			outs = append(outs, sa)
		}
	}
	for i := 0; i < max(len(ins), len(outs)); i++ {
		old := ChildSA{Unit: cur.Unit, Peer: cur.Peer, Local: cur.Local, Remote: cur.Remote}
		if i < len(ins) {
			old.InboundSPI = ins[i].SPI
		}
		if i < len(outs) {
			old.OutboundSPI = outs[i].SPI
			old.Remote = outs[i].Dst
		}
		s.retire(ctx, old)
		s.log().Info("retired IPsec SAs left by an earlier daemon", "interface", cur.name(),
			"spi-in", fmt.Sprintf("%08x", old.InboundSPI), "spi-out", fmt.Sprintf("%08x", old.OutboundSPI))
	}
}

var _ ike.SASink = (*IKESink)(nil)
