package ikev1

import (
	"errors"
	"fmt"
	"time"
)

// The gateway drives IKEv1 and IKEv2 engines through the same verbs
// (AddConnection/RemoveConnection there, AddPeer/RemovePeer here; Initiate,
// Terminate, RekeyChild, ChildExpired, LastError, IKESAs, ChildSAs,
// HalfOpen on both).

// AddPeer adds a gateway, or replaces the one with the same name. SAs that
// exist keep their negotiated settings until they are rekeyed.
func (e *Engine) AddPeer(p Peer) error {
	if err := p.Validate(); err != nil {
		return err
	}
	for _, w := range p.Warnings() {
		e.log.Warn("weak algorithm configured", "gateway", p.Name, "warning", w)
	}
	p.PSK = append([]byte(nil), p.PSK...)
	e.mu.Lock()
	defer e.mu.Unlock()
	if ps := e.peer(p.Name); ps != nil {
		ps.cfg = p
		return nil
	}
	e.peers = append(e.peers, &peerState{cfg: p, children: map[uint32]*child{}})
	return nil
}

// RemovePeer deletes every SA of the gateway (telling the peer) and
// forgets it.
func (e *Engine) RemovePeer(now time.Time, name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.runTimers(now)
	ps := e.peer(name)
	if ps == nil {
		return
	}
	e.terminate(now, ps)
	for i, p := range e.peers {
		if p == ps {
			e.peers = append(e.peers[:i], e.peers[i+1:]...)
			break
		}
	}
	clear(ps.cfg.PSK)
}

// Terminate deletes every SA of the gateway (telling the peer) and stops
// keeping it up.
func (e *Engine) Terminate(now time.Time, name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.runTimers(now)
	ps := e.peer(name)
	if ps == nil {
		return fmt.Errorf("terminate %s: no such IKEv1 gateway", name)
	}
	e.terminate(now, ps)
	return nil
}

func (e *Engine) terminate(now time.Time, ps *peerState) {
	ps.wantUp = false
	for _, c := range ps.childList() {
		e.deleteChild(now, c, true, reasonTerminated)
	}
	for _, p := range e.phase1sOf(ps) {
		p.delete(now, true, reasonTerminated)
	}
}

// RekeyChild starts a make-before-break rekey of every CHILD SA of the
// gateway now.
func (e *Engine) RekeyChild(now time.Time, name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.runTimers(now)
	ps := e.peer(name)
	if ps == nil {
		return fmt.Errorf("rekey %s: no such IKEv1 gateway", name)
	}
	n := 0
	for _, c := range ps.childList() {
		if !c.replaced && !c.rekeying {
			e.cancel(c.softT)
			e.rekeyChild(now, c)
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("rekey %s: no CHILD SA", name)
	}
	return nil
}

// LastError is the last negotiation failure of the gateway, nil once an SA
// was established after it.
func (e *Engine) LastError(name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ps := e.peer(name); ps != nil {
		return ps.lastErr
	}
	return nil
}

// HalfOpen is the number of phase-1 SAs still negotiating.
func (e *Engine) HalfOpen() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.nHalfOpen
}

// fail records why a negotiation of ps failed.
func (ps *peerState) fail(reason string) {
	ps.lastErr = errors.New(reason)
}
