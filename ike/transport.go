package ike

import (
	"net/netip"
	"time"
)

// IKE UDP ports (RFC 7296 §2.23, RFC 3948).
const (
	PortIKE  = 500
	PortNATT = 4500
)

// Datagram is one IKE message with its addresses. Data never includes the
// 4-byte non-ESP marker of port 4500: transports strip and add it.
type Datagram struct {
	Local  netip.AddrPort
	Remote netip.AddrPort
	Data   []byte
}

// Sender transmits datagrams for an engine. Send must not retain d.Data
// after returning and must not call back into the engine.
type Sender interface {
	Send(d Datagram) error
}

// SenderFunc adapts a function to Sender.
type SenderFunc func(Datagram) error

func (f SenderFunc) Send(d Datagram) error { return f(d) }

// Engine is the event-driven core of an IKE implementation. Methods are safe
// for concurrent use. Time always comes from the caller, so tests drive it
// with a fake clock.
type Engine interface {
	// HandleDatagram processes one received message.
	HandleDatagram(now time.Time, d Datagram)
	// Tick runs every timer due at now (retransmissions, DPD, rekeys,
	// lifetimes, half-open expiry).
	Tick(now time.Time)
	// NextTimer is the earliest pending timer, ok=false when none.
	NextTimer() (t time.Time, ok bool)
}

// Swap returns d with Local and Remote exchanged (a reply's addresses).
func (d Datagram) Swap() Datagram { d.Local, d.Remote = d.Remote, d.Local; return d }
