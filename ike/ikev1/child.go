package ikev1

import (
	"time"

	"github.com/bpfvpn/bpfvpn/ike"
	"github.com/bpfvpn/bpfvpn/ike/ikev1/isakmp"
)

// child is an installed CHILD SA pair. In IKEv1 it outlives the phase-1 SA
// that negotiated it.
type child struct {
	sa          ike.ChildSA
	peer        *peerState
	proxyIdx    int
	initiator   bool
	established time.Time
	// seq places the installation in the engine's event order.
	seq      uint64
	lifetime time.Duration
	softT    *timer
	hardT    *timer
	delT     *timer
	// replaced: a newer SA for the same proxy ID exists.
	replaced bool
	// rekeying: a Quick Mode for the replacement is under way;
	// needsRekey: the rekey waits for a phase-1 SA.
	rekeying   bool
	needsRekey bool
}

func (ps *peerState) childList() []*child {
	out := make([]*child, 0, len(ps.children))
	for _, c := range ps.children {
		out = append(out, c)
	}
	return out
}

// hasChildFor reports a live (not replaced) CHILD SA for proxy ID idx.
func (ps *peerState) hasChildFor(idx int) bool {
	for _, c := range ps.children {
		if c.proxyIdx == idx && !c.replaced {
			return true
		}
	}
	return false
}

// currentChild is the live CHILD SA for proxy ID idx with the remote
// address and selectors of sa: a new SA with the same ones replaces it (a
// gateway without a remote address serves several peers).
func (ps *peerState) currentChild(idx int, sa *ike.ChildSA) *child {
	var best *child
	for _, c := range ps.children {
		if c.proxyIdx == idx && !c.replaced && c.sa.Remote == sa.Remote && sameSelectors(&c.sa, sa) && (best == nil || c.established.After(best.established)) {
			best = c
		}
	}
	return best
}

// installChild reports a finished Quick Mode to the sink and arms the
// lifetime timers.
func (e *Engine) installChild(now time.Time, p *phase1, q *quickEx, sa ike.ChildSA) {
	ps := p.peer
	c := &child{sa: sa, peer: ps, proxyIdx: q.proxyIdx, initiator: q.role == ike.Initiator, established: now, lifetime: q.lifetime, seq: e.nextSeq()}
	old := q.rekeyOf
	if old == nil {
		old = ps.currentChild(q.proxyIdx, &sa)
	}
	e.spis[sa.SPIIn] = c
	ps.children[sa.SPIIn] = c
	ps.lastErr = nil
	var err error
	if old != nil && !old.replaced {
		old.replaced = true
		old.rekeying = false
		err = e.sink.ChildSARekeyed(old.sa.WithoutKeys(), sa)
		p.log.Info("CHILD SA rekeyed", "old-in", spiHex(old.sa.SPIIn), "in", spiHex(sa.SPIIn), "out", spiHex(sa.SPIOut))
		// Make-before-break: the old pair keeps decrypting until the
		// peer has switched, then goes. The initiator of the new pair
		// deletes it; the responder later, in case the initiator does not
		// (the old pair was not its to rekey: it never had it, or the
		// peer keeps rekeyed pairs until they expire).
		delay := e.opts.DeleteDelay
		if !c.initiator {
			delay *= 2
		}
		old.delT = e.at(now.Add(delay), func(now time.Time) {
			e.deleteChild(now, old, true, "rekeyed")
		})
	} else {
		err = e.sink.ChildSAInstalled(sa)
		p.log.Info("CHILD SA established", "in", spiHex(sa.SPIIn), "out", spiHex(sa.SPIOut), "enc", sa.Encryption.IKEName,
			"local-ts", sa.LocalTS[0].String(), "remote-ts", sa.RemoteTS[0].String(), "encap", sa.Encap != nil, "lifetime", c.lifetime)
	}
	if err != nil {
		p.log.Warn("installing CHILD SA failed; deleting it", "in", spiHex(sa.SPIIn), "err", err)
		e.deleteChild(now, c, true, "install failed")
		return
	}
	// Quick Modes of this end for the same proxy ID that are still under
	// way (both ends negotiated at once) would only add a duplicate.
	for _, o := range e.phase1sOf(ps) {
		for _, x := range o.quick {
			if x != q && x.role == ike.Initiator && x.state == qm1Sent && x.proxyIdx == q.proxyIdx {
				o.log.Debug("abandoning Quick Mode: the peer's came first", "mid", x.mid)
				x.finish(now)
			}
		}
	}
	// The initiator of a CHILD SA rekeys first; the responder later, only
	// if the initiator did not.
	margin := c.lifetime / 10
	if !c.initiator {
		margin = c.lifetime / 20
	}
	jitter := time.Duration(e.randomUint32()%1000) * margin / 4000
	c.softT = e.at(now.Add(c.lifetime-margin-jitter), func(now time.Time) { e.rekeyChild(now, c) })
	c.hardT = e.at(now.Add(c.lifetime), func(now time.Time) {
		e.deleteChild(now, c, true, "lifetime expired")
		if (ps.wantUp || ps.cfg.Immediately) && !ps.hasChildFor(c.proxyIdx) {
			e.ensureUp(now, ps)
		}
	})
}

// rekeyChild starts the replacement of c (make-before-break).
func (e *Engine) rekeyChild(now time.Time, c *child) {
	c.softT = nil
	if c.replaced || c.rekeying || e.spis[c.sa.SPIIn] != c {
		return
	}
	p, up := e.bestPhase1(c.peer)
	if up {
		p.startQuick(now, c.proxyIdx, c)
		return
	}
	c.needsRekey = true
	if p == nil && c.peer.cfg.Remote.IsValid() {
		e.startMain(now, c.peer, nil)
	}
}

// ChildSAExpired is ChildExpired (the name the gateway adopted first).
func (e *Engine) ChildSAExpired(now time.Time, spiIn uint32, hard bool) {
	e.ChildExpired(now, spiIn, hard)
}

// ChildExpired tells the engine that the kernel reported the soft
// (hard == false) or hard byte limit of the CHILD SA with inbound spi.
func (e *Engine) ChildExpired(now time.Time, spiIn uint32, hard bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.runTimers(now)
	c := e.spis[spiIn]
	if c == nil {
		return
	}
	if hard {
		e.deleteChild(now, c, true, "byte limit reached")
		if (c.peer.wantUp || c.peer.cfg.Immediately) && !c.peer.hasChildFor(c.proxyIdx) {
			e.ensureUp(now, c.peer)
		}
		return
	}
	e.cancel(c.softT)
	e.rekeyChild(now, c)
}

// phase1For is the established phase-1 SA to tell the peer about c over:
// the one that negotiated c while it is up (strongSwan looks a deleted
// CHILD SA up under the phase-1 SA the delete arrives on), else the best.
func (e *Engine) phase1For(c *child) *phase1 {
	for _, p := range e.phase1sOf(c.peer) {
		if p.index == c.sa.IKESA && p.state == p1Established {
			return p
		}
	}
	if p, up := e.bestPhase1(c.peer); up {
		return p
	}
	return nil
}

// deleteChild removes c; notify sends a delete payload for its inbound SPI.
func (e *Engine) deleteChild(now time.Time, c *child, notify bool, reason string) {
	if e.spis[c.sa.SPIIn] != c {
		return
	}
	e.cancel(c.softT)
	e.cancel(c.hardT)
	e.cancel(c.delT)
	if notify {
		if p := e.phase1For(c); p != nil {
			p.sendInformational(now, []isakmp.Payload{&isakmp.Delete{DOI: isakmp.DOIIPsec, Protocol: isakmp.ProtoESP,
				SPISize: 4, SPIs: [][]byte{spiBytes(c.sa.SPIIn)}}})
		}
	}
	delete(e.spis, c.sa.SPIIn)
	delete(c.peer.children, c.sa.SPIIn)
	e.log.Info("CHILD SA deleted", "gateway", c.peer.cfg.Name, "in", spiHex(c.sa.SPIIn), "out", spiHex(c.sa.SPIOut), "reason", reason)
	e.sink.ChildSADeleted(c.sa.WithoutKeys())
	c.sa.Wipe()
}

func spiHex(s uint32) string {
	const hexd = "0123456789abcdef"
	b := make([]byte, 8)
	for i := 7; i >= 0; i-- {
		b[i] = hexd[s&0xf]
		s >>= 4
	}
	return string(b)
}

// ChildSAs returns the status of every CHILD SA.
func (e *Engine) ChildSAs(now time.Time) []ike.ChildSAStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []ike.ChildSAStatus
	for _, ps := range e.peers {
		for _, c := range ps.children {
			st := ike.ChildSAStatus{SA: c.sa.WithoutKeys(), IKESA: c.sa.IKESA, Established: c.established, Rekeying: c.rekeying}
			if left := c.established.Add(c.lifetime).Sub(now); left > 0 {
				st.RemainingSeconds = uint64(left / time.Second)
			}
			out = append(out, st)
		}
	}
	return out
}

// IKESAs returns the status of every phase-1 SA.
func (e *Engine) IKESAs(now time.Time) []ike.IKESAStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []ike.IKESAStatus
	for _, ps := range e.peers {
		for _, p := range e.phase1sOf(ps) {
			out = append(out, p.status(now))
		}
	}
	return out
}

func sameSelectors(a, b *ike.ChildSA) bool {
	if len(a.LocalTS) != len(b.LocalTS) || len(a.RemoteTS) != len(b.RemoteTS) {
		return false
	}
	for i := range a.LocalTS {
		if a.LocalTS[i] != b.LocalTS[i] {
			return false
		}
	}
	for i := range a.RemoteTS {
		if a.RemoteTS[i] != b.RemoteTS[i] {
			return false
		}
	}
	return true
}
