package ikev1

import (
	"bytes"
	"crypto/hmac"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/bpfvpn/bpfvpn/ike"
	"github.com/bpfvpn/bpfvpn/ike/ikev1/isakmp"
	"github.com/bpfvpn/bpfvpn/ike/suite"
)

type qState uint8

const (
	qm1Sent qState = iota // initiator, waiting for QM2
	qm2Sent               // responder, waiting for QM3
	qmDone                // finished; kept to answer retransmissions
)

// quickEx is one Quick Mode exchange.
type quickEx struct {
	p1    *phase1
	mid   uint32
	role  ike.Role
	state qState
	iv    []byte

	proxyIdx       int
	local, remote  *isakmp.ID // client identities from this end's view; nil when not sent
	spiIn, spiOut  uint32
	ni, nr         []byte
	pfs            suite.DHGroup
	ke             suite.KeyExchange
	gqm            suite.Key
	attrs          phase2Attrs
	lifetime       time.Duration
	lifeKB         uint64
	rekeyOf        *child
	lastRecv       [32]byte
	replyTo        [32]byte // digest of the message rt.data answers
	rt             retransmitter
	cleanupT       *timer
	installPending *ike.ChildSA // responder: installed when QM3 arrives
	// iFailed marks an initiator exchange that ends without an SA.
	iFailed bool
	// raced is the message ID of the peer's exchange for the same proxy
	// ID that this one won against (left unanswered).
	raced uint32
}

func (q *quickEx) stop() {
	q.rt.stop()
	q.p1.e.cancel(q.cleanupT)
	if q.ke != nil {
		q.ke.Wipe()
	}
	q.gqm.Wipe()
	if q.installPending != nil {
		q.installPending.Wipe()
		q.installPending = nil
	}
	if q.state != qmDone {
		if c, ok := q.p1.e.spis[q.spiIn]; ok && c == nil {
			delete(q.p1.e.spis, q.spiIn)
		}
	}
	if q.rekeyOf != nil && q.state != qmDone {
		q.rekeyOf.rekeying = false
	}
}

// quickBusy reports a Quick Mode that will bring up a CHILD SA for proxy
// ID idx of ps: one under way in either role over any phase-1 SA with the
// peer (rekeys aside), or one waiting for a phase-1 SA.
func (e *Engine) quickBusy(ps *peerState, idx int) bool {
	for _, p := range e.phase1sOf(ps) {
		if p.state == p1Deleted {
			continue
		}
		for _, q := range p.quick {
			if q.proxyIdx == idx && q.state != qmDone && q.rekeyOf == nil {
				return true
			}
		}
		for _, i := range p.queued {
			if i == idx {
				return true
			}
		}
	}
	return false
}

// ownQuick is this end's Quick Mode for proxy ID idx of ps that waits for
// its second message, over any phase-1 SA with the peer.
func (e *Engine) ownQuick(ps *peerState, idx int) *quickEx {
	for _, p := range e.phase1sOf(ps) {
		if p.state != p1Established {
			continue
		}
		for _, q := range p.quick {
			if q.role == ike.Initiator && q.state == qm1Sent && q.proxyIdx == idx {
				return q
			}
		}
	}
	return nil
}

func (p *phase1) queueQuick(idx int) { p.queued = append(p.queued, idx) }

func (p *phase1) newMID() uint32 {
	for {
		m := p.e.randomUint32()
		if m == 0 || p.quick[m] != nil || p.infoMIDs[m] {
			continue
		}
		return m
	}
}

// encap is the encapsulation mode to propose or accept under the current
// NAT state.
func (p *phase1) encapMode() uint16 {
	if p.behindNAT() {
		return p.natt.EncapTunnel()
	}
	return isakmp.EncapTunnel
}

// startQuick negotiates a CHILD SA for proxy ID idx as initiator, as a
// rekey of old when old is not nil.
func (p *phase1) startQuick(now time.Time, idx int, old *child) {
	cfg := &p.peer.cfg
	px := cfg.proxyIDs()[idx]
	q := &quickEx{p1: p, mid: p.newMID(), role: ike.Initiator, proxyIdx: idx, rekeyOf: old, pfs: cfg.PFS}
	q.rt.e, q.rt.stats = p.e, &p.stats
	q.spiIn = p.e.newSPI()
	p.e.spis[q.spiIn] = nil
	q.ni = make([]byte, nonceLen)
	p.e.random(q.ni)
	q.local = isakmp.PrefixID(px.local(), px.Protocol, px.LocalPort)
	q.remote = isakmp.PrefixID(px.remote(), px.Protocol, px.RemotePort)
	rest := []isakmp.Payload{espSA(cfg.ESP, q.spiIn, p.encapMode(), q.pfs), isakmp.Nonce(q.ni)}
	if q.pfs != suite.DHNone {
		ke, err := p.e.newKE(q.pfs)
		if err != nil {
			p.log.Error("PFS key exchange", "err", err)
			delete(p.e.spis, q.spiIn)
			return
		}
		q.ke = ke
		rest = append(rest, isakmp.KE(ke.PublicValue()))
	}
	rest = append(rest, q.local, q.remote)
	restB := isakmp.AppendChain(nil, rest)
	h := p.keys.prf.Compute(p.keys.skeyidA, midBytes(q.mid), restB)
	msg := p.encryptQuick(q, isakmp.PayloadSA, h, restB, messageIV(p.hash, p.phase1IV, q.mid))
	if old != nil {
		old.rekeying = true
		old.needsRekey = false
	}
	p.quick[q.mid] = q
	p.log.Info("initiating Quick Mode", "proxy-local", q.local.String(), "proxy-remote", q.remote.String(), "rekey", old != nil, "pfs", q.pfs)
	q.state = qm1Sent
	q.rt.start(now, p.local, p.remote, msg, true, func(now time.Time) {
		p.log.Warn("Quick Mode timed out: no answer from peer", "mid", q.mid)
		p.peer.fail("phase 2: no answer from peer")
		q.iFailed = true
		q.finish(now)
		delete(p.quick, q.mid)
	})
}

// encryptQuick builds HDR*, HASH, rest and advances q.iv.
func (p *phase1) encryptQuick(q *quickEx, next isakmp.PayloadType, hash, rest []byte, iv []byte) []byte {
	plain := isakmp.AppendPayload(nil, next, isakmp.Hash(hash))
	plain = append(plain, rest...)
	ct, nextIV := encryptCBC(p.block, iv, plain)
	q.iv = nextIV
	hd := p.header(isakmp.ExchangeQuick, isakmp.FlagEncryption, q.mid)
	hd.NextPayload = isakmp.PayloadHash
	b := hd.Append(make([]byte, 0, isakmp.HeaderLen+len(ct)))
	b = append(b, ct...)
	isakmp.SetLength(b)
	return b
}

// finish retires an exchange: it stays around to answer retransmissions
// for one retransmission period, then goes.
func (q *quickEx) finish(now time.Time) {
	q.rt.stop()
	if q.state != qmDone {
		if c, ok := q.p1.e.spis[q.spiIn]; ok && c == nil {
			delete(q.p1.e.spis, q.spiIn)
		}
		if q.rekeyOf != nil {
			q.rekeyOf.rekeying = false
		}
		if q.role == ike.Initiator && q.installPending == nil && q.iFailed {
			q.p1.retryLater(now)
		}
	}
	q.state = qmDone
	q.p1.e.cancel(q.cleanupT)
	q.cleanupT = q.p1.e.at(now.Add(q.p1.halfOpenTimeout()), func(time.Time) {
		q.stop()
		if q.p1.quick[q.mid] == q {
			delete(q.p1.quick, q.mid)
		}
	})
}

func (e *Engine) handleQuick(now time.Time, d ike.Datagram, m isakmp.Message) {
	h := m.Header
	p := e.byCookies[pairOf(h.InitiatorCookie, h.ResponderCookie)]
	if p != nil && p.state == p1MM5Sent && h.MessageID != 0 && len(p.early) < maxEarly {
		// The peer finished Main Mode as responder and began Quick Mode at
		// once; its first message overtook the last of Main Mode. It is
		// handled (and authenticated) once the SA is up.
		p.early = append(p.early, ike.Datagram{Local: d.Local, Remote: d.Remote, Data: append([]byte(nil), d.Data...)})
		return
	}
	if p == nil || p.state != p1Established || h.MessageID == 0 {
		e.log.Debug("dropped Quick Mode message for unknown or unfinished SA", "from", d.Remote)
		return
	}
	p.countIn(d)
	dg := digest(d.Data)
	q := p.quick[h.MessageID]
	if q != nil && dg == q.replyTo {
		q.rt.resend()
		return
	}
	if q != nil && dg == q.lastRecv {
		return
	}
	var err error
	switch {
	case q == nil:
		err = p.respondQM1(now, d, m, dg)
	case q.role == ike.Initiator && q.state == qm1Sent:
		err = q.initiatorQM2(now, m, dg)
	case q.role == ike.Responder && q.state == qm2Sent:
		err = q.responderQM3(now, m)
	default:
		return
	}
	if err != nil {
		p.log.Warn("Quick Mode message rejected", "mid", h.MessageID, "err", err)
		return
	}
	p.heard(now, d)
	if q != nil {
		q.lastRecv = dg
	}
}

// maxEarly bounds the Quick Mode messages kept for a phase-1 SA that is
// not up yet.
const maxEarly = 2

// handleEarly handles the Quick Mode messages that arrived before p was up.
func (p *phase1) handleEarly(now time.Time) {
	early := p.early
	p.early = nil
	for _, d := range early {
		if m, err := isakmp.Parse(d.Data); err == nil && p.state == p1Established {
			p.e.handleQuick(now, d, m)
		}
	}
}

// heard records proof of liveness from the peer and follows a NAT
// mapping change.
func (p *phase1) heard(now time.Time, d ike.Datagram) {
	p.lastHeard = now
	p.confirmed = true
	p.dpd.outstanding = 0
	if p.behindNAT() && d.Remote != p.remote && d.Local.Port() == p.local.Port() {
		p.log.Info("peer address changed (NAT mapping)", "old", p.remote, "new", d.Remote)
		p.remote = d.Remote
	}
}

// verifyQuickHash checks the HASH payload that must come first.
func (p *phase1) verifyFirstHash(ps []isakmp.RawPayload, want []byte) error {
	if len(ps) == 0 || ps[0].Type != isakmp.PayloadHash {
		return errors.New("first payload is not HASH")
	}
	if !hmac.Equal(ps[0].Body, want) {
		return errors.New("HASH mismatch")
	}
	return nil
}

func clientIDs(ps []isakmp.RawPayload) (idi, idr *isakmp.ID, err error) {
	ids := isakmp.FindAll(ps, isakmp.PayloadID)
	switch len(ids) {
	case 0:
		return nil, nil, nil
	case 2:
	default:
		return nil, nil, fmt.Errorf("%d ID payloads", len(ids))
	}
	var out [2]*isakmp.ID
	for i, r := range ids {
		id, err := isakmp.ParseID(r.Body)
		if err != nil {
			return nil, nil, err
		}
		if _, err := id.Prefix(); err != nil {
			return nil, nil, fmt.Errorf("client identity: %w", err)
		}
		out[i] = &isakmp.ID{IDType: id.IDType, Protocol: id.Protocol, Port: id.Port, Data: append([]byte(nil), id.Data...)}
	}
	return out[0], out[1], nil
}

func within(cfg netip.Prefix, id *isakmp.ID, proto uint8, port uint16) bool {
	p, err := id.Prefix()
	if err != nil || p.Addr().Is4() != cfg.Addr().Is4() {
		return false
	}
	if proto != 0 && id.Protocol != proto || port != 0 && id.Port != port {
		return false
	}
	return cfg.Bits() <= p.Bits() && cfg.Contains(p.Addr())
}

func (p *phase1) respondQM1(now time.Time, d ike.Datagram, m isakmp.Message, dg [32]byte) error {
	mid := m.Header.MessageID
	ps, after, next, err := p.decrypt(m, messageIV(p.hash, p.phase1IV, mid))
	if err != nil {
		return err
	}
	if err := p.verifyFirstHash(ps, p.keys.prf.Compute(p.keys.skeyidA, midBytes(mid), after)); err != nil {
		return err
	}
	cfg := &p.peer.cfg
	sa, err := findSA(ps)
	if err != nil {
		return err
	}
	rn, err := quickNonce(ps)
	if err != nil {
		return err
	}
	idi, idr, err := clientIDs(ps)
	if err != nil {
		return err
	}
	q := &quickEx{p1: p, mid: mid, role: ike.Responder, ni: append([]byte(nil), rn...)}
	q.rt.e, q.rt.stats = p.e, &p.stats
	// Proxy identities: the initiator's IDci is our remote side.
	q.remote, q.local = idi, idr
	remoteSel, localSel := idi, idr
	if idi == nil {
		remoteSel = isakmp.AddrID(p.remote.Addr())
		localSel = isakmp.AddrID(p.local.Addr())
	}
	q.proxyIdx = -1
	for i, x := range cfg.proxyIDs() {
		if within(x.remote(), remoteSel, x.Protocol, x.RemotePort) && within(x.local(), localSel, x.Protocol, x.LocalPort) {
			q.proxyIdx = i
			break
		}
	}
	if q.proxyIdx < 0 {
		p.log.Warn("Quick Mode refused: proxy ID mismatch", "proxy-local", localSel.String(), "proxy-remote", remoteSel.String())
		p.peer.fail(fmt.Sprintf("phase 2: proxy ID mismatch (peer proposed local %s, remote %s)", localSel, remoteSel))
		p.sendNotify(now, isakmp.ProtoESP, nil, isakmp.NotifyInvalidIDInformation)
		return nil
	}
	// Both ends negotiate this proxy ID at once: the exchange whose
	// initiator nonce is higher goes on, the other is abandoned by its
	// initiator, so that one pair results (both ends decide alike). A
	// peer that does not abandon its exchange gets an answer to its
	// retransmission once ours is done. When ours runs over an SA the
	// peer may not hold, both go on (installChild abandons the slower).
	if own := p.e.ownQuick(p.peer, q.proxyIdx); own != nil && (own.p1 == p || own.p1.confirmed) {
		if bytes.Compare(own.ni, q.ni) > 0 {
			p.log.Debug("simultaneous Quick Mode: ours goes on, the peer's is left unanswered", "ours", own.mid, "peer", mid)
			if own.raced == mid {
				// The peer retransmits: ours may have been lost.
				own.rt.resend()
			}
			own.raced = mid
			return nil
		}
		p.log.Debug("simultaneous Quick Mode: answering the peer's, abandoning ours", "ours", own.mid, "peer", mid)
		own.finish(now)
	}
	// Choose the first offered proposal we accept.
	var chosen *isakmp.Proposal
	var chosenT isakmp.Transform
	var ours Phase2Proposal
	seen := map[uint8]int{}
	for _, pr := range sa.Proposals {
		seen[pr.Number]++
	}
outer:
	for _, pr := range sa.Proposals {
		if pr.Protocol != isakmp.ProtoESP || len(pr.SPI) != 4 || seen[pr.Number] != 1 {
			continue
		}
		for _, t := range pr.Transforms {
			a, err := parseESPTransform(t)
			if err != nil || !tunnelMode(a.encap) {
				continue
			}
			if a.encap != isakmp.EncapTunnel && !p.behindNAT() {
				continue
			}
			if cfg.PFS != suite.DHNone && a.group != cfg.PFS {
				continue
			}
			if a.group != suite.DHNone && (!a.group.Supported() || a.group == suite.Curve25519) {
				continue
			}
			for _, x := range cfg.ESP {
				if a.matches(x) {
					chosen, chosenT, ours, q.attrs = &pr, t, x, a
					break outer
				}
			}
		}
	}
	if chosen == nil {
		p.log.Warn("Quick Mode refused: no acceptable ESP proposal", "offered", describeESP(sa))
		p.peer.fail("phase 2: no acceptable proposal among " + describeESP(sa))
		p.sendNotify(now, isakmp.ProtoESP, nil, isakmp.NotifyNoProposalChosen)
		return nil
	}
	q.spiOut = uint32(chosen.SPI[0])<<24 | uint32(chosen.SPI[1])<<16 | uint32(chosen.SPI[2])<<8 | uint32(chosen.SPI[3])
	q.pfs = q.attrs.group
	var gxi []byte
	if q.pfs != suite.DHNone {
		k, ok := isakmp.Find(ps, isakmp.PayloadKE)
		if !ok || len(k.Body) != q.pfs.PublicValueLen() {
			return errors.New("PFS proposal without a valid KE payload")
		}
		gxi = k.Body
	}
	// Lifetimes: the shorter wins; tell the initiator when ours is shorter.
	ourLife := orDur(ours.Lifetime, DefaultIPsecLifetime)
	q.lifetime = ourLife
	var lifeAttrs []isakmp.Attribute
	if q.attrs.lifeSecs > 0 && q.attrs.lifeSecs < ourLife {
		q.lifetime = q.attrs.lifeSecs
	} else if q.attrs.lifeSecs == 0 || q.attrs.lifeSecs > ourLife {
		lifeAttrs = append(lifeAttrs, isakmp.BasicAttr(isakmp.AttrSALifeType, isakmp.LifeSeconds),
			isakmp.UintAttr(isakmp.AttrSALifeDuration, uint32(ourLife/time.Second)))
	}
	q.lifeKB = q.attrs.lifeKB
	if ours.LifeKilobytes > 0 && (q.lifeKB == 0 || q.lifeKB > ours.LifeKilobytes) {
		q.lifeKB = ours.LifeKilobytes
		lifeAttrs = append(lifeAttrs, isakmp.BasicAttr(isakmp.AttrSALifeType, isakmp.LifeKilobytes),
			isakmp.UintAttr(isakmp.AttrSALifeDuration, uint32(min(ours.LifeKilobytes, 1<<32-1))))
	}
	q.spiIn = p.e.newSPI()
	p.e.spis[q.spiIn] = nil
	q.nr = make([]byte, nonceLen)
	p.e.random(q.nr)
	echo := &isakmp.SA{DOI: sa.DOI, Situation: sa.Situation, Proposals: []isakmp.Proposal{{
		Number: chosen.Number, Protocol: isakmp.ProtoESP, SPI: spiBytes(q.spiIn), Transforms: []isakmp.Transform{chosenT}}}}
	rest := []isakmp.Payload{echo, isakmp.Nonce(q.nr)}
	if q.pfs != suite.DHNone {
		ke, err := p.e.newKE(q.pfs)
		if err != nil {
			delete(p.e.spis, q.spiIn)
			return err
		}
		q.gqm, err = ke.SharedSecret(gxi)
		rest = append(rest, isakmp.KE(ke.PublicValue()))
		ke.Wipe()
		if err != nil {
			delete(p.e.spis, q.spiIn)
			return fmt.Errorf("PFS: %w", err)
		}
	}
	if idi != nil {
		rest = append(rest, idi, idr)
	}
	if lifeAttrs != nil {
		rest = append(rest, &isakmp.Notify{DOI: isakmp.DOIIPsec, Protocol: isakmp.ProtoESP, SPI: spiBytes(q.spiIn),
			NotifyType: isakmp.NotifyResponderLifetime, Data: isakmp.AppendAttributes(nil, lifeAttrs)})
	}
	restB := isakmp.AppendChain(nil, rest)
	h := p.keys.prf.Compute(p.keys.skeyidA, midBytes(mid), q.ni, restB)
	q.iv = next
	msg := p.encryptQuick(q, isakmp.PayloadSA, h, restB, q.iv)
	sa2, err := q.childSA()
	if err != nil {
		delete(p.e.spis, q.spiIn)
		return err
	}
	q.installPending = &sa2
	q.gqm.Wipe()
	q.lastRecv = dg
	q.replyTo = dg
	q.state = qm2Sent
	p.quick[mid] = q
	q.rt.start(now, p.local, p.remote, msg, true, func(now time.Time) {
		p.log.Warn("Quick Mode timed out waiting for the third message", "mid", mid)
		// The initiator installed the pair when it sent the third
		// message: tell it the pair does not exist here, and negotiate
		// again if this end keeps the tunnel up.
		p.sendInformational(now, []isakmp.Payload{&isakmp.Delete{DOI: isakmp.DOIIPsec, Protocol: isakmp.ProtoESP,
			SPISize: 4, SPIs: [][]byte{spiBytes(q.spiIn)}}})
		q.finish(now)
		p.retryLater(now)
	})
	return nil
}

func describeESP(sa *isakmp.SA) string {
	s := ""
	for _, pr := range sa.Proposals {
		for _, t := range pr.Transforms {
			if s != "" {
				s += ", "
			}
			a, err := parseESPTransform(t)
			if err != nil {
				s += "(" + err.Error() + ")"
				continue
			}
			s += fmt.Sprintf("%v/encap-%d/pfs-%d", a.prop, a.encap, a.group)
		}
	}
	return s
}

func (q *quickEx) initiatorQM2(now time.Time, m isakmp.Message, dg [32]byte) error {
	p := q.p1
	ps, after, next, err := p.decrypt(m, q.iv)
	if err != nil {
		return err
	}
	if len(ps) == 0 || ps[0].Type != isakmp.PayloadHash {
		return errors.New("first payload is not HASH")
	}
	rn, err := quickNonce(ps)
	if err != nil {
		return err
	}
	if err := p.verifyFirstHash(ps, p.keys.prf.Compute(p.keys.skeyidA, midBytes(q.mid), q.ni, after)); err != nil {
		return err
	}
	q.nr = append([]byte(nil), rn...)
	sa, err := findSA(ps)
	if err != nil {
		return err
	}
	if len(sa.Proposals) != 1 || len(sa.Proposals[0].Transforms) != 1 || sa.Proposals[0].Protocol != isakmp.ProtoESP || len(sa.Proposals[0].SPI) != 4 {
		return errors.New("responder's SA is not one ESP proposal with one transform")
	}
	a, err := parseESPTransform(sa.Proposals[0].Transforms[0])
	if err != nil {
		return err
	}
	var ours *Phase2Proposal
	for i, x := range p.peer.cfg.ESP {
		if a.matches(x) {
			ours = &p.peer.cfg.ESP[i]
			break
		}
	}
	if ours == nil || a.group != q.pfs {
		return fmt.Errorf("responder chose %v with PFS %v, which was not offered", a.prop, a.group)
	}
	q.attrs = a
	spi := sa.Proposals[0].SPI
	q.spiOut = uint32(spi[0])<<24 | uint32(spi[1])<<16 | uint32(spi[2])<<8 | uint32(spi[3])
	idi, idr, err := clientIDs(ps)
	if err != nil {
		return err
	}
	if idi != nil && (idi.String() != q.local.String() || idr.String() != q.remote.String()) {
		return fmt.Errorf("responder changed the proxy IDs to %s/%s", idi, idr)
	}
	q.lifetime = orDur(ours.Lifetime, DefaultIPsecLifetime)
	q.lifeKB = ours.LifeKilobytes
	for _, n := range isakmp.FindAll(ps, isakmp.PayloadNotify) {
		nn, err := isakmp.ParseNotify(n.Body)
		if err != nil || nn.NotifyType != isakmp.NotifyResponderLifetime {
			continue
		}
		q.applyResponderLifetime(nn.Data)
	}
	if q.pfs != suite.DHNone {
		k, ok := isakmp.Find(ps, isakmp.PayloadKE)
		if !ok {
			return errors.New("PFS without KE payload")
		}
		q.gqm, err = q.ke.SharedSecret(k.Body)
		q.ke.Wipe()
		q.ke = nil
		if err != nil {
			return fmt.Errorf("PFS: %w", err)
		}
	}
	q.iv = next
	h := p.keys.prf.Compute(p.keys.skeyidA, []byte{0}, midBytes(q.mid), q.ni, q.nr)
	msg := p.encryptQuick(q, isakmp.PayloadNone, h, nil, q.iv)
	child, err := q.childSA()
	q.gqm.Wipe()
	if err != nil {
		return err
	}
	q.replyTo = dg
	q.rt.start(now, p.local, p.remote, msg, false, nil)
	q.finish(now)
	p.e.installChild(now, p, q, child)
	return nil
}

func (q *quickEx) applyResponderLifetime(data []byte) {
	attrs, err := isakmp.ParseAttributes(data)
	if err != nil {
		return
	}
	var life saLife
	for _, a := range attrs {
		v, err := a.Uint()
		if err != nil {
			return
		}
		life.take(phase2Life, a, v)
	}
	if life.secs > 0 && life.secs < q.lifetime {
		q.lifetime = life.secs
	}
	if life.kb > 0 && (q.lifeKB == 0 || life.kb < q.lifeKB) {
		q.lifeKB = life.kb
	}
	q.p1.log.Info("peer sent RESPONDER-LIFETIME", "lifetime", q.lifetime, "kilobytes", q.lifeKB)
}

func (q *quickEx) responderQM3(now time.Time, m isakmp.Message) error {
	p := q.p1
	ps, _, _, err := p.decrypt(m, q.iv)
	if err != nil {
		return err
	}
	if err := p.verifyFirstHash(ps, p.keys.prf.Compute(p.keys.skeyidA, []byte{0}, midBytes(q.mid), q.ni, q.nr)); err != nil {
		return err
	}
	child := *q.installPending
	q.installPending = nil
	q.finish(now)
	p.e.installChild(now, p, q, child)
	return nil
}

// childSA assembles the SA pair from the exchange.
func (q *quickEx) childSA() (ike.ChildSA, error) {
	p := q.p1
	cfg := &p.peer.cfg
	enc := q.attrs.prop.Encryption
	sa := ike.ChildSA{
		Name: cfg.VPNName, ReqID: cfg.ReqID, IfID: cfg.IfID, IKEVersion: 1, IKESA: p.index,
		Protocol: ike.ProtoESP, Mode: ike.ModeTunnel, SPIIn: q.spiIn, SPIOut: q.spiOut,
		Local: p.local.Addr(), Remote: p.remote.Addr(), LocalPort: p.local.Port(), RemotePort: p.remote.Port(),
		Encryption: ike.Algorithm{Name: enc.XFRMName(), KeyBits: enc.KeyLen() * 8, AEAD: enc.AEAD(), IKEName: enc.String()},
		PFSGroup:   q.pfs, ReplayWindow: 64,
	}
	if sa.Name == "" {
		sa.Name = cfg.Name
	}
	if enc.AEAD() {
		sa.Encryption.ICVBits = enc.ICVLen() * 8
	}
	if q.attrs.encap != isakmp.EncapTunnel {
		sa.Encap = &ike.UDPEncap{LocalPort: p.local.Port(), RemotePort: p.remote.Port(), LocalBehindNAT: p.localNAT, RemoteBehindNAT: p.peerNAT}
	}
	n := enc.KeyLen()
	var integ suite.Integ
	if q.attrs.prop.Integrity != suite.IntegNone {
		var err error
		integ, err = q.attrs.prop.Integrity.Integ()
		if err != nil {
			return sa, err
		}
		sa.Integrity = &ike.Algorithm{Name: integ.XFRMName(), KeyBits: integ.KeyLen() * 8, TruncBits: integ.TruncBits(), IKEName: q.attrs.prop.Integrity.String()}
		n += integ.KeyLen()
	}
	var ni, nr = q.ni, q.nr
	for _, dir := range []struct {
		spi  uint32
		keys *ike.SAKeys
	}{{q.spiIn, &sa.In}, {q.spiOut, &sa.Out}} {
		km := keymat(p.keys.prf, p.keys.skeyidD, q.gqm, uint8(isakmp.ProtoESP), dir.spi, ni, nr, n)
		dir.keys.Encryption = suite.Key(append([]byte(nil), km[:enc.KeyLen()]...))
		if sa.Integrity != nil {
			dir.keys.Integrity = suite.Key(append([]byte(nil), km[enc.KeyLen():]...))
		}
		km.Wipe()
	}
	lsel, rsel := q.local, q.remote
	if lsel == nil {
		lsel, rsel = isakmp.AddrID(p.local.Addr()), isakmp.AddrID(p.remote.Addr())
	}
	sa.LocalTS = []ike.TrafficSelector{selectorOf(lsel)}
	sa.RemoteTS = []ike.TrafficSelector{selectorOf(rsel)}
	secs := uint64(q.lifetime / time.Second)
	sa.Lifetime = ike.Lifetime{HardSeconds: secs, SoftSeconds: secs - secs/10}
	if q.lifeKB > 0 {
		sa.Lifetime.HardBytes = q.lifeKB * 1024
		sa.Lifetime.SoftBytes = sa.Lifetime.HardBytes - sa.Lifetime.HardBytes/10
	}
	return sa, nil
}

func selectorOf(id *isakmp.ID) ike.TrafficSelector {
	p, _ := id.Prefix()
	ts := ike.PrefixSelector(p)
	ts.Protocol = id.Protocol
	if id.Port != 0 {
		ts.StartPort, ts.EndPort = id.Port, id.Port
	}
	return ts
}

// retryLater negotiates the missing CHILD SAs again after a pause when the
// tunnel is to be kept up (a refused or unanswered Quick Mode).
func (p *phase1) retryLater(now time.Time) {
	ps := p.peer
	if !(ps.wantUp || ps.cfg.Immediately) {
		return
	}
	p.e.at(now.Add(5*p.e.opts.RetransmitBase), func(now time.Time) {
		if ps.wantUp || ps.cfg.Immediately {
			p.e.ensureUp(now, ps)
		}
	})
}

// findSA returns the parsed SA payload of ps.
func findSA(ps []isakmp.RawPayload) (*isakmp.SA, error) {
	rsa, ok := isakmp.Find(ps, isakmp.PayloadSA)
	if !ok {
		return nil, errors.New("no SA payload")
	}
	return isakmp.ParseSA(rsa.Body)
}

// quickNonce returns the body of the NONCE payload of a Quick Mode message
// (8 to 256 bytes, RFC 2409 §5).
func quickNonce(ps []isakmp.RawPayload) ([]byte, error) {
	n, ok := isakmp.Find(ps, isakmp.PayloadNonce)
	if !ok || len(n.Body) < 8 || len(n.Body) > 256 {
		return nil, errors.New("missing or bad NONCE")
	}
	return n.Body, nil
}
