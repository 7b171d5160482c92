package daemon

import (
	"context"
	"log/slog"
	"sync"

	"github.com/bpfvpn/bpfvpn/control/kernel"
	"github.com/bpfvpn/bpfvpn/ike"
)

// saInstaller is the part of control/kernel the IKE component drives
// (*kernel.Reconciler implements it; tests use a fake).
type saInstaller = kernel.SAInstaller

// SPIPublisher tells the data plane which inbound ESP SPIs are installed, so
// its SPI filter admits them. Optional.
type SPIPublisher = kernel.SPIPublisher

// RetireGrace is how long an old inbound SA keeps accepting packets after a
// rekey or an adoption, for packets the peer sent before it switched.
var RetireGrace = kernel.DefaultGrace

// SwitchDelay is how long a new pair that replaces a working one carries
// only inbound traffic before this end sends on it (kernel.IKESink).
var SwitchDelay = kernel.DefaultSwitchDelay

// tunnelSink is the SASink of one tunnel's engine: control/kernel's IKESink
// (installation into XFRM with the tunnel's if_id, make-before-break,
// adoption of an earlier daemon's SAs, inbound SPIs published to the data
// plane) with the tunnel's supervision state as its up/down hooks.
type tunnelSink struct {
	c    *ikeComponent
	tu   *tunnel
	unit int
	vpn  string
	log  *slog.Logger

	once sync.Once
	k    *kernel.IKESink
}

func (s *tunnelSink) sink() *kernel.IKESink {
	s.once.Do(func() {
		s.k = &kernel.IKESink{R: s.c.kern, Grace: RetireGrace, SwitchDelay: SwitchDelay, Log: s.log,
			OnUp: func(unit, peer int) {
				s.up()
				s.dataplaneUp(unit, peer, true)
			},
			OnDown: func(unit, peer int) {
				s.tu.up.Store(false)
				s.tu.resetBackoff.Store(true)
				s.dataplaneUp(unit, peer, false)
			}}
		if s.c.dp != nil {
			s.k.SPIs = s.c.dp
		}
	})
	return s.k
}

func (s *tunnelSink) ChildSAInstalled(sa ike.ChildSA) error { return s.sink().ChildSAInstalled(sa) }

func (s *tunnelSink) ChildSARekeyed(old, sa ike.ChildSA) error {
	return s.sink().ChildSARekeyed(old, sa)
}

func (s *tunnelSink) ChildSADeleted(sa ike.ChildSA) { s.sink().ChildSADeleted(sa) }

func (s *tunnelSink) IKESAChanged(st ike.IKESAStatus) {
	s.log.Info("IKE SA", "index", st.Index, "state", st.State.String(), "remote", st.Remote.String(), "reason", st.Reason)
}

// remove takes the tunnel down in the kernel: on a multipoint unit only
// this VPN's peer tunnel.
func (s *tunnelSink) remove(ctx context.Context) error {
	unit, peer := s.unit, 0
	if u, p, ok := kernel.TunnelOfIfID(tunnelIfID(s.tu.t)); ok {
		unit, peer = u, p
	}
	return s.sink().RemoveTunnel(ctx, unit, peer)
}

// dataplaneUp tells the data plane whether the tunnel is up, so that it
// raises on-traffic events only for down tunnels.
func (s *tunnelSink) dataplaneUp(unit, peer int, up bool) {
	if ts, ok := s.c.dp.(tunnelUpSetter); ok {
		ts.SetTunnelUp(kernel.TunnelIfID(unit, peer), up)
	}
}

func (s *tunnelSink) up() {
	s.tu.up.Store(true)
	s.tu.resetBackoff.Store(true)
}

var _ ike.SASink = (*tunnelSink)(nil)
