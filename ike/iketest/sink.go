package iketest

import (
	"sync"

	"github.com/bpfvpn/bpfvpn/ike"
)

// Event is one recorded SASink call.
type Event struct {
	Kind string // "installed", "rekeyed", "deleted", "ike"
	SA   ike.ChildSA
	Old  ike.ChildSA // for "rekeyed"
	IKE  ike.IKESAStatus
}

// Sink records SASink calls and tracks the installed CHILD SAs by inbound
// SPI, like a kernel would.
type Sink struct {
	mu        sync.Mutex
	events    []Event
	installed map[uint32]ike.ChildSA
	// Fail makes ChildSAInstalled / ChildSARekeyed return this error.
	Fail error
}

func NewSink() *Sink { return &Sink{installed: map[uint32]ike.ChildSA{}} }

func clone(sa ike.ChildSA) ike.ChildSA {
	sa.In.Encryption = sa.In.Encryption.Clone()
	sa.In.Integrity = sa.In.Integrity.Clone()
	sa.Out.Encryption = sa.Out.Encryption.Clone()
	sa.Out.Integrity = sa.Out.Integrity.Clone()
	return sa
}

func (s *Sink) ChildSAInstalled(sa ike.ChildSA) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Fail != nil {
		return s.Fail
	}
	sa = clone(sa)
	s.events = append(s.events, Event{Kind: "installed", SA: sa})
	s.installed[sa.SPIIn] = sa
	return nil
}

func (s *Sink) ChildSARekeyed(old, sa ike.ChildSA) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Fail != nil {
		return s.Fail
	}
	sa = clone(sa)
	s.events = append(s.events, Event{Kind: "rekeyed", SA: sa, Old: old.WithoutKeys()})
	s.installed[sa.SPIIn] = sa
	return nil
}

func (s *Sink) ChildSADeleted(sa ike.ChildSA) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, Event{Kind: "deleted", SA: sa})
	delete(s.installed, sa.SPIIn)
}

func (s *Sink) IKESAChanged(st ike.IKESAStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, Event{Kind: "ike", IKE: st})
}

// Events returns a copy of the recorded calls.
func (s *Sink) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}

// Installed returns the CHILD SAs currently installed, by inbound SPI.
func (s *Sink) Installed() map[uint32]ike.ChildSA {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[uint32]ike.ChildSA, len(s.installed))
	for k, v := range s.installed {
		out[k] = v
	}
	return out
}

// Count returns how many events of kind were recorded.
func (s *Sink) Count(kind string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.events {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

// LastIKE returns the last IKE SA status reported, ok=false if none.
func (s *Sink) LastIKE() (ike.IKESAStatus, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.events) - 1; i >= 0; i-- {
		if s.events[i].Kind == "ike" {
			return s.events[i].IKE, true
		}
	}
	return ike.IKESAStatus{}, false
}
