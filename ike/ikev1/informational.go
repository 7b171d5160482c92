package ikev1

import (
	"bytes"
	"encoding/binary"
	"errors"
	"time"

	"github.com/bpfvpn/bpfvpn/ike"
	"github.com/bpfvpn/bpfvpn/ike/ikev1/isakmp"
)

// sendInformational sends HDR*, HASH(1), payloads in a new exchange. It is
// not retransmitted (RFC 2408: informational exchanges are one-way).
func (p *phase1) sendInformational(now time.Time, ps []isakmp.Payload) {
	if p.state != p1Established || p.block == nil {
		return
	}
	mid := p.newMID()
	p.rememberMID(mid)
	rest := isakmp.AppendChain(nil, ps)
	h := p.keys.prf.Compute(p.keys.skeyidA, midBytes(mid), rest)
	plain := isakmp.AppendPayload(nil, isakmp.FirstType(ps), isakmp.Hash(h))
	plain = append(plain, rest...)
	ct, _ := encryptCBC(p.block, messageIV(p.hash, p.phase1IV, mid), plain)
	hd := p.header(isakmp.ExchangeInformational, isakmp.FlagEncryption, mid)
	hd.NextPayload = isakmp.PayloadHash
	b := hd.Append(make([]byte, 0, isakmp.HeaderLen+len(ct)))
	b = append(b, ct...)
	isakmp.SetLength(b)
	p.e.transmit(p.local, p.remote, b)
	p.stats.OutBytes += uint64(len(b))
	p.stats.OutPackets++
}

// sendNotify sends an error or status notification in an informational
// exchange.
func (p *phase1) sendNotify(now time.Time, proto isakmp.ProtocolID, spi []byte, t isakmp.NotifyType) {
	p.sendInformational(now, []isakmp.Payload{&isakmp.Notify{DOI: isakmp.DOIIPsec, Protocol: proto, SPI: spi, NotifyType: t}})
}

func (e *Engine) handleInformational(now time.Time, d ike.Datagram, m isakmp.Message) {
	h := m.Header
	p := e.byCookies[pairOf(h.InitiatorCookie, h.ResponderCookie)]
	if p == nil {
		if w := e.initWait[h.InitiatorCookie]; w != nil {
			p = w
		}
	}
	if p == nil {
		e.log.Debug("dropped informational message for unknown SA", "from", d.Remote)
		return
	}
	if h.Flags&isakmp.FlagEncryption == 0 {
		// Unprotected notifications can only end a negotiation that has
		// not authenticated yet.
		if p.state == p1Established {
			return
		}
		for _, rp := range isakmp.FindAll(m.Payloads, isakmp.PayloadNotify) {
			n, err := isakmp.ParseNotify(rp.Body)
			if err != nil || !n.NotifyType.IsError() {
				continue
			}
			p.log.Warn("peer refused phase-1 negotiation", "notify", n.NotifyType.String(), "from", d.Remote)
			if p.role == ike.Initiator {
				p.delete(now, false, "peer sent "+n.NotifyType.String())
			}
		}
		return
	}
	p.countIn(d)
	if p.state != p1Established || h.MessageID == 0 || p.infoMIDs[h.MessageID] {
		return
	}
	ps, after, _, err := p.decrypt(m, messageIV(p.hash, p.phase1IV, h.MessageID))
	if err != nil {
		p.log.Debug("informational message rejected", "err", err)
		return
	}
	if err := p.verifyFirstHash(ps, p.keys.prf.Compute(p.keys.skeyidA, midBytes(h.MessageID), after)); err != nil {
		p.log.Warn("informational message rejected", "err", err)
		return
	}
	p.rememberMID(h.MessageID)
	p.heard(now, d)
	for _, rp := range ps[1:] {
		switch rp.Type {
		case isakmp.PayloadNotify:
			n, err := isakmp.ParseNotify(rp.Body)
			if err != nil {
				continue
			}
			p.handleNotify(now, n)
		case isakmp.PayloadDelete:
			del, err := isakmp.ParseDelete(rp.Body)
			if err != nil {
				continue
			}
			if p.handleDelete(now, del) {
				return
			}
		}
	}
}

func (p *phase1) handleNotify(now time.Time, n *isakmp.Notify) {
	switch n.NotifyType {
	case isakmp.NotifyRUThere:
		if len(n.Data) != 4 || !bytes.Equal(n.SPI, p.cookieSPI()) {
			return
		}
		p.sendInformational(now, []isakmp.Payload{&isakmp.Notify{DOI: isakmp.DOIIPsec, Protocol: isakmp.ProtoISAKMP,
			SPI: p.cookieSPI(), NotifyType: isakmp.NotifyRUThereAck, Data: n.Data}})
	case isakmp.NotifyRUThereAck:
		if len(n.Data) == 4 && binary.BigEndian.Uint32(n.Data) == p.dpd.seq {
			p.dpd.outstanding = 0
		}
	case isakmp.NotifyInitialContact:
		p.e.initialContact(now, p)
	default:
		if n.NotifyType.IsError() {
			p.log.Warn("peer reported an error", "notify", n.NotifyType.String(), "protocol", n.Protocol)
			p.peer.fail("peer sent " + n.NotifyType.String())
			// A refused Quick Mode cannot be matched to its exchange (the
			// notify has its own message ID); end ours so they retry later.
			if n.NotifyType == isakmp.NotifyNoProposalChosen || n.NotifyType == isakmp.NotifyInvalidIDInformation {
				for _, q := range p.quick {
					if q.role == ike.Initiator && q.state == qm1Sent {
						q.iFailed = true
						q.finish(now)
					}
				}
			}
		} else {
			p.log.Debug("notification", "notify", n.NotifyType.String())
		}
	}
}

// handleDelete processes a delete payload; it reports whether p itself
// was deleted.
func (p *phase1) handleDelete(now time.Time, d *isakmp.Delete) bool {
	switch d.Protocol {
	case isakmp.ProtoISAKMP:
		for _, s := range d.SPIs {
			if bytes.Equal(s, p.cookieSPI()) {
				p.log.Info("peer deleted the phase-1 SA")
				p.delete(now, false, "deleted by peer")
				return true
			}
		}
	case isakmp.ProtoESP:
		if d.SPISize != 4 {
			return false
		}
		for _, s := range d.SPIs {
			spi := binary.BigEndian.Uint32(s)
			// A delete names the sender's inbound SPI (our outbound). When
			// strongSwan could not install a pair it names the initiator's
			// SPI instead, which may be our inbound one: accept both.
			var hit *child
			for _, c := range p.peer.children {
				if c.sa.SPIOut == spi {
					hit = c
				}
			}
			if hit == nil {
				hit = p.peer.children[spi]
			}
			if hit == nil {
				p.log.Debug("delete for unknown ESP SPI", "spi", spiHex(spi))
				continue
			}
			p.e.deleteChild(now, hit, false, "deleted by peer")
			ps := hit.peer
			if (ps.wantUp || ps.cfg.Immediately) && !ps.hasChildFor(hit.proxyIdx) && !hit.replaced {
				// Negotiate again, after a pause so that a peer that keeps
				// refusing cannot drive a tight loop.
				p.e.at(now.Add(p.e.opts.RetransmitBase), func(now time.Time) {
					if (ps.wantUp || ps.cfg.Immediately) && !ps.hasChildFor(hit.proxyIdx) {
						p.e.ensureUp(now, ps)
					}
				})
			}
		}
	}
	return false
}

// dpdState tracks RFC 3706 probes.
type dpdState struct {
	t           *timer
	seq         uint32
	outstanding int
}

func (p *phase1) startDPD(now time.Time) {
	cfg := p.peer.cfg.DPD
	if cfg.Interval <= 0 || !p.peerDPD {
		return
	}
	p.dpd.seq = p.e.randomUint32() >> 1
	p.dpd.t = p.e.at(now.Add(cfg.Interval), p.dpdCheck)
}

func (p *phase1) stopDPD() {
	p.e.cancel(p.dpd.t)
	p.dpd.t = nil
}

var errDead = errors.New("dead peer")

func (p *phase1) dpdCheck(now time.Time) {
	p.dpd.t = nil
	if p.state != p1Established {
		return
	}
	cfg := p.peer.cfg.DPD
	threshold := cfg.Threshold
	if threshold <= 0 {
		threshold = DefaultDPD.Threshold
	}
	if p.dpd.outstanding >= threshold {
		p.log.Warn("peer is dead: no answer to R-U-THERE", "probes", p.dpd.outstanding, "remote", p.remote)
		p.e.peerDead(now, p)
		return
	}
	idle := now.Sub(p.lastHeard) >= cfg.Interval
	if cfg.Mode == DPDAlwaysSend || idle || p.dpd.outstanding > 0 {
		p.dpd.seq++
		p.dpd.outstanding++
		p.sendInformational(now, []isakmp.Payload{&isakmp.Notify{DOI: isakmp.DOIIPsec, Protocol: isakmp.ProtoISAKMP,
			SPI: p.cookieSPI(), NotifyType: isakmp.NotifyRUThere, Data: binary.BigEndian.AppendUint32(nil, p.dpd.seq)}})
	}
	p.dpd.t = p.e.at(now.Add(cfg.Interval), p.dpdCheck)
}

// peerDead clears every SA with the peer and, with action restart,
// negotiates again.
func (e *Engine) peerDead(now time.Time, p *phase1) {
	ps := p.peer
	for _, c := range ps.childList() {
		e.deleteChild(now, c, false, errDead.Error())
	}
	for _, q := range e.phase1sOf(ps) {
		q.delete(now, false, errDead.Error())
	}
	if ps.cfg.DPD.Action == DPDRestart && ps.cfg.Remote.IsValid() && (ps.wantUp || ps.cfg.Immediately) {
		e.ensureUp(now, ps)
	}
}

// PeerAlive records proof of liveness from outside IKE (ESP arrived from
// the gateway's peer): optimized and probe-idle DPD stay quiet.
func (e *Engine) PeerAlive(now time.Time, gateway string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ps := e.peer(gateway)
	if ps == nil {
		return
	}
	for _, p := range e.phase1sOf(ps) {
		if p.state == p1Established {
			p.lastHeard = now
			p.dpd.outstanding = 0
		}
	}
}

// maxInfoMIDs bounds the remembered informational message IDs of one
// phase-1 SA (replays of older ones are at worst a repeated R-U-THERE).
const maxInfoMIDs = 4096

func (p *phase1) rememberMID(mid uint32) {
	if len(p.infoMIDs) >= maxInfoMIDs {
		clear(p.infoMIDs)
	}
	p.infoMIDs[mid] = true
}
