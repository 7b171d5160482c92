package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/bpfvpn/bpfvpn/control/kernel"
	"github.com/bpfvpn/bpfvpn/ike"
)

// saInstaller is the part of control/kernel the IKE component drives
// (*kernel.Reconciler implements it; tests use a fake).
type saInstaller interface {
	InstallChildSA(ctx context.Context, c kernel.ChildSA) ([]kernel.Change, error)
	InstallInbound(ctx context.Context, c kernel.ChildSA) ([]kernel.Change, error)
	RetireChildSA(ctx context.Context, old kernel.ChildSA, grace time.Duration) ([]kernel.Change, error)
	RemoveTunnel(ctx context.Context, unit int) ([]kernel.Change, error)
	InstalledSAs() ([]kernel.InstalledSA, error)
}

// SPIPublisher tells the data plane which inbound ESP SPIs are installed, so
// its SPI filter admits them. Optional.
type SPIPublisher interface {
	AddInboundSPI(spi uint32, unit int) error
	RemoveInboundSPI(spi uint32) error
}

// RetireGrace is how long an old inbound SA keeps accepting packets after a
// rekey or an adoption, for packets the peer sent before it switched.
const RetireGrace = 5 * time.Second

// SwitchDelay is how long a new pair that replaces a working one carries
// only inbound traffic before this end sends on it: the peer installs its
// side of the pair up to one exchange later (the IKEv2 initiator, the IKEv1
// Quick Mode responder), and until then only the old pair reaches it. The
// old pair's deletion ends the wait early (the peer has switched by then).
var SwitchDelay = 2 * time.Second

// kernelChildSA converts a negotiated CHILD SA into the kernel's form. The
// keys are copied: the engine wipes its own when the SA dies.
func kernelChildSA(unit int, sa ike.ChildSA) kernel.ChildSA {
	kc := kernel.ChildSA{
		Unit: unit, Local: sa.Local, Remote: sa.Remote, InboundSPI: sa.SPIIn, OutboundSPI: sa.SPIOut,
		Encryption: sa.Encryption.Name, ReplayWindow: sa.ReplayWindow, ESN: sa.ESN,
		Inbound:  kernel.Keys{Encryption: kernel.Key(sa.In.Encryption.Clone()), Integrity: kernel.Key(sa.In.Integrity.Clone())},
		Outbound: kernel.Keys{Encryption: kernel.Key(sa.Out.Encryption.Clone()), Integrity: kernel.Key(sa.Out.Integrity.Clone())},
		Lifetime: kernel.Lifetime{SoftSeconds: sa.Lifetime.SoftSeconds, HardSeconds: sa.Lifetime.HardSeconds,
			SoftBytes: sa.Lifetime.SoftBytes, HardBytes: sa.Lifetime.HardBytes},
	}
	if sa.Encryption.AEAD {
		kc.ICVBits = sa.Encryption.ICVBits
		kc.Inbound.Integrity, kc.Outbound.Integrity = nil, nil
	}
	if sa.Integrity != nil {
		kc.Integrity = sa.Integrity.Name
		kc.IntegrityBits = sa.Integrity.TruncBits
	}
	if sa.Encap != nil {
		kc.Encap = &kernel.UDPEncap{LocalPort: sa.Encap.LocalPort, RemotePort: sa.Encap.RemotePort}
	}
	if len(sa.LocalTS) > 0 && len(sa.LocalTS) == len(sa.RemoteTS) {
		for i := range sa.LocalTS {
			l, lok := sa.LocalTS[i].Prefix()
			r, rok := sa.RemoteTS[i].Prefix()
			if !lok || !rok {
				continue
			}
			sel := kernel.Selector{Local: l, Remote: r, Protocol: sa.LocalTS[i].Protocol}
			if !sa.LocalTS[i].AllPorts() && sa.LocalTS[i].StartPort == sa.LocalTS[i].EndPort {
				sel.LocalPort = sa.LocalTS[i].StartPort
			}
			if !sa.RemoteTS[i].AllPorts() && sa.RemoteTS[i].StartPort == sa.RemoteTS[i].EndPort {
				sel.RemotePort = sa.RemoteTS[i].StartPort
			}
			kc.Selectors = append(kc.Selectors, sel)
		}
	}
	return kc
}

// tunnelSink is the SASink of one tunnel's engine: it installs CHILD SA
// pairs into XFRM with the st0 unit's if_id, keeps make-before-break on
// rekey, removes the SAs (and withdraws the routes) when the tunnel goes
// down, and on the first install after a daemon start retires the SAs an
// earlier daemon left for this unit (adoption without duplicates).
type tunnelSink struct {
	c    *ikeComponent
	tu   *tunnel
	unit int
	vpn  string
	log  *slog.Logger

	mu sync.Mutex
	// pending are new pairs whose outbound SA waits for SwitchDelay, by the
	// inbound SPI of the pair they replace (0 when that pair is not known
	// to the engine: it was left by an earlier daemon or an earlier IKE SA).
	pending map[uint32]*pendingOut
}

// pendingOut is a new pair installed inbound only.
type pendingOut struct {
	sa    kernel.ChildSA // with keys until the outbound SA is installed
	timer *time.Timer
	// adopt retires the SAs of an earlier daemon once the switch is done.
	adopt bool
	// retire are pairs deleted while this one waited: they keep carrying
	// outbound traffic until the switch, then they are retired.
	retire []kernel.ChildSA
}

func (s *tunnelSink) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 10*time.Second)
}

// ChildSAInstalled installs a new pair. When another pair already carries
// the tunnel (SAs left by an earlier daemon, or the peer renegotiated while
// its old IKE SA lives on), the new pair is installed inbound first and
// takes the outbound traffic after SwitchDelay, so that the switch loses
// nothing in either direction.
func (s *tunnelSink) ChildSAInstalled(sa ike.ChildSA) error {
	ctx, cancel := s.ctx()
	defer cancel()
	kc := kernelChildSA(s.unit, sa)
	first := s.c.markAdopted(s.unit)
	// The SPI filter admits the new inbound SA before it exists: the peer
	// may send on it as soon as the kernel has it.
	s.publish(sa.SPIIn)
	if s.c.unitHasSAs(s.unit) {
		if _, err := s.c.kern.InstallInbound(ctx, kc); err != nil {
			s.log.Error("install inbound IPsec SA", "sa", kc.String(), "err", err)
			return fmt.Errorf("install inbound IPsec SA on st0.%d: %w", s.unit, err)
		}
		s.log.Info("IPsec SA pair installed inbound; outbound follows", "sa", kc.String(), "after", SwitchDelay)
		s.schedule(0, kc, first)
		s.up()
		return nil
	}
	if _, err := s.c.kern.InstallChildSA(ctx, kc); err != nil {
		s.log.Error("install IPsec SA pair", "sa", kc.String(), "err", err)
		return fmt.Errorf("install IPsec SA pair on st0.%d: %w", s.unit, err)
	}
	wipe(&kc)
	s.log.Info("IPsec SA pair installed", "sa", kc.String())
	s.up()
	return nil
}

// ChildSARekeyed installs the new pair inbound first (make-before-break);
// its outbound SA follows when the old pair is deleted or after
// SwitchDelay.
func (s *tunnelSink) ChildSARekeyed(old, sa ike.ChildSA) error {
	ctx, cancel := s.ctx()
	defer cancel()
	kc := kernelChildSA(s.unit, sa)
	s.publish(sa.SPIIn)
	if _, err := s.c.kern.InstallInbound(ctx, kc); err != nil {
		s.log.Error("install rekeyed inbound IPsec SA", "sa", kc.String(), "err", err)
		return fmt.Errorf("install rekeyed IPsec SA on st0.%d: %w", s.unit, err)
	}
	s.log.Info("IPsec SA pair rekeyed", "old-in", fmt.Sprintf("%08x", old.SPIIn), "sa", kc.String())
	s.schedule(old.SPIIn, kc, false)
	s.up()
	return nil
}

func (s *tunnelSink) schedule(oldIn uint32, kc kernel.ChildSA, adopt bool) {
	p := &pendingOut{sa: kc, adopt: adopt}
	s.mu.Lock()
	if s.pending == nil {
		s.pending = map[uint32]*pendingOut{}
	}
	if prev := s.pending[oldIn]; prev != nil {
		prev.timer.Stop()
		go s.complete(oldIn, prev)
	}
	s.pending[oldIn] = p
	p.timer = time.AfterFunc(SwitchDelay, func() { s.complete(oldIn, p) })
	s.mu.Unlock()
}

// complete installs the outbound SA of a pending pair, once.
func (s *tunnelSink) complete(oldIn uint32, p *pendingOut) {
	s.mu.Lock()
	if s.pending[oldIn] == p {
		delete(s.pending, oldIn)
	}
	kc := p.sa
	p.sa = kernel.ChildSA{}
	retire := p.retire
	p.retire = nil
	s.mu.Unlock()
	if kc.Inbound.Encryption == nil {
		return // completed or cancelled already
	}
	p.timer.Stop()
	ctx, cancel := s.ctx()
	defer cancel()
	if _, err := s.c.kern.InstallChildSA(ctx, kc); err != nil {
		s.log.Warn("install outbound IPsec SA", "sa", kc.String(), "err", err)
	} else {
		s.log.Info("outbound traffic moved to the new IPsec SA", "sa", kc.String())
	}
	wipe(&kc)
	for _, old := range retire {
		if s.c.dp != nil {
			s.c.dp.RemoveInboundSPI(old.InboundSPI)
		}
		if _, err := s.c.kern.RetireChildSA(ctx, old, RetireGrace); err != nil {
			s.log.Warn("retire IPsec SA pair", "spi-in", fmt.Sprintf("%08x", old.InboundSPI), "err", err)
		}
	}
	if p.adopt {
		s.adopt(ctx, kc)
	}
}

// cancelPending drops a pending pair that died before its switch.
func (s *tunnelSink) cancelPending(spiIn uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, p := range s.pending {
		if p.sa.InboundSPI == spiIn {
			p.timer.Stop()
			wipe(&p.sa)
			delete(s.pending, k)
		}
	}
}

func wipe(kc *kernel.ChildSA) {
	for _, k := range []kernel.Key{kc.Inbound.Encryption, kc.Inbound.Integrity, kc.Outbound.Encryption, kc.Outbound.Integrity} {
		clear(k)
	}
}

func (s *tunnelSink) ChildSADeleted(sa ike.ChildSA) {
	ctx, cancel := s.ctx()
	defer cancel()
	// The deletion of the pair a rekey replaces means the peer has
	// switched: move outbound traffic to the new pair before the old one
	// goes. A pair deleted while another one waits for its switch after
	// replacing SAs the engine did not know (the peer renegotiated, this
	// end restarted; key 0) says nothing about the peer: it keeps carrying
	// outbound traffic until that switch and is retired then.
	s.mu.Lock()
	p := s.pending[sa.SPIIn]
	if q := s.pending[0]; p == nil && q != nil && q.sa.InboundSPI != sa.SPIIn && q.sa.Inbound.Encryption != nil {
		q.retire = append(q.retire, kernelChildSA(s.unit, sa.WithoutKeys()))
		s.mu.Unlock()
		s.log.Info("IPsec SA pair deleted; retired once the new pair carries outbound traffic", "spi-in", fmt.Sprintf("%08x", sa.SPIIn))
		return
	}
	s.mu.Unlock()
	if p != nil {
		s.complete(sa.SPIIn, p)
	}
	s.cancelPending(sa.SPIIn)
	if s.c.dp != nil {
		if err := s.c.dp.RemoveInboundSPI(sa.SPIIn); err != nil {
			s.log.Warn("withdraw inbound SPI from the data plane", "spi", fmt.Sprintf("%08x", sa.SPIIn), "err", err)
		}
	}
	if s.c.otherChildren(s.tu, sa.SPIIn) {
		// A newer pair carries the tunnel: retire this one, keep routes.
		if _, err := s.c.kern.RetireChildSA(ctx, kernelChildSA(s.unit, sa.WithoutKeys()), RetireGrace); err != nil {
			s.log.Warn("retire IPsec SA pair", "spi-in", fmt.Sprintf("%08x", sa.SPIIn), "err", err)
		}
		return
	}
	if _, err := s.c.kern.RemoveTunnel(ctx, s.unit); err != nil {
		s.log.Warn("remove tunnel", "unit", s.unit, "err", err)
	}
	s.log.Info("tunnel down: IPsec SAs removed, routes withdrawn", "interface", fmt.Sprintf("st0.%d", s.unit))
	s.tu.up.Store(false)
	s.tu.resetBackoff.Store(true)
}

func (s *tunnelSink) IKESAChanged(st ike.IKESAStatus) {
	s.log.Info("IKE SA", "index", st.Index, "state", st.State.String(), "remote", st.Remote.String(), "reason", st.Reason)
}

func (s *tunnelSink) publish(spi uint32) {
	if s.c.dp == nil {
		return
	}
	if err := s.c.dp.AddInboundSPI(spi, s.unit); err != nil {
		s.log.Warn("publish inbound SPI to the data plane", "spi", fmt.Sprintf("%08x", spi), "err", err)
	}
}

// adopt retires the SAs of the unit other than cur that this process did
// not negotiate: they were left by an earlier daemon and carried traffic
// until cur took over.
func (s *tunnelSink) adopt(ctx context.Context, cur kernel.ChildSA) {
	installed, err := s.c.kern.InstalledSAs()
	if err != nil {
		s.log.Warn("list SAs to adopt", "err", err)
		return
	}
	var ins, outs []kernel.InstalledSA
	for _, sa := range installed {
		if sa.Unit != s.unit || sa.SPI == cur.InboundSPI || sa.SPI == cur.OutboundSPI {
			continue
		}
		if sa.Dst == cur.Local.Unmap() {
			ins = append(ins, sa)
		} else {
			outs = append(outs, sa)
		}
	}
	for i := 0; i < max(len(ins), len(outs)); i++ {
		old := kernel.ChildSA{Unit: s.unit, Local: cur.Local, Remote: cur.Remote}
		if i < len(ins) {
			old.InboundSPI = ins[i].SPI
		}
		if i < len(outs) {
			old.OutboundSPI = outs[i].SPI
			old.Remote = outs[i].Dst
		}
		if _, err := s.c.kern.RetireChildSA(ctx, old, RetireGrace); err != nil {
			s.log.Warn("retire SAs of an earlier daemon", "err", err)
			continue
		}
		s.log.Info("retired IPsec SAs left by an earlier daemon", "interface", fmt.Sprintf("st0.%d", s.unit),
			"spi-in", fmt.Sprintf("%08x", old.InboundSPI), "spi-out", fmt.Sprintf("%08x", old.OutboundSPI))
	}
}

var _ ike.SASink = (*tunnelSink)(nil)

func (s *tunnelSink) up() {
	s.tu.up.Store(true)
	s.tu.resetBackoff.Store(true)
}
