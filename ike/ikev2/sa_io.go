package ikev2

import (
	"errors"
	"fmt"
	"time"

	"github.com/bpfvpn/bpfvpn/ike"
)

// enqueue adds an exchange to run when the window is free.
func (s *ikeSA) enqueue(now time.Time, ex *exchange) {
	s.queue = append(s.queue, ex)
	s.startNext(now)
}

// startNext sends queued exchanges while the peer's window allows.
func (s *ikeSA) startNext(now time.Time) {
	for len(s.queue) > 0 && !s.dead && s.mayStart(s.queue[0]) {
		ex := s.queue[0]
		s.queue[0] = nil // the backing array must not keep finished exchanges
		s.queue = s.queue[1:]
		var payloads []Payload
		var err error
		for _, t := range ex.tasks {
			if err = t.buildI(s, now, &payloads); err != nil {
				break
			}
		}
		if errors.Is(err, errSkip) {
			continue
		}
		if err != nil {
			s.e.fail(s.conn, fmt.Errorf("build %v: %w", ex.typ, err))
			s.destroy(now, err.Error())
			return
		}
		msgID := s.nextMsgID
		s.nextMsgID++
		h := s.header(ex.typ, msgID, false)
		packets, err := s.pack(h, payloads)
		if err != nil {
			s.e.fail(s.conn, err)
			s.destroy(now, err.Error())
			return
		}
		if ex.typ == IKE_SA_INIT {
			s.initReq = packets[0]
		}
		r := &request{ex: ex, msgID: msgID, packets: packets, maxTries: s.e.cfg.RetransmitTries, timeout: s.e.cfg.RetransmitTimeout}
		if ex.dpd && s.conn.DPDInterval > 0 {
			r.maxTries, r.timeout = s.conn.DPDThreshold, s.conn.DPDInterval
		}
		r.tries = 1
		r.retryAt = now.Add(r.timeout)
		s.pending = append(s.pending, r)
		s.transmit(now, packets)
	}
}

// errSkip drops an exchange that became pointless before it was sent.
var errSkip = errors.New("exchange no longer needed")

// pack encodes a message: in the clear for IKE_SA_INIT, protected otherwise
// and fragmented when needed and allowed.
func (s *ikeSA) pack(h Header, payloads []Payload) ([][]byte, error) {
	if h.Exchange == IKE_SA_INIT {
		m := &Message{Header: h, Payloads: payloads}
		return [][]byte{m.Encode()}, nil
	}
	if s.prot == nil {
		return nil, fmt.Errorf("%v: no keys", h.Exchange)
	}
	first, inner := EncodePayloads(nil, payloads)
	size := s.prot.overhead(len(inner), false) + len(inner)
	if size <= s.e.cfg.FragmentSize || !s.fragSupported || s.conn.NoFragmentation {
		p, err := s.prot.seal(h, first, inner, false, 0, 0)
		if err != nil {
			return nil, err
		}
		return [][]byte{p}, nil
	}
	// RFC 7383 §2.5: split the inner chain into equal-sized fragments.
	room := s.e.cfg.FragmentSize - s.prot.overhead(0, true) - s.prot.encr.BlockSize()
	if room < 64 {
		room = 64
	}
	total := (len(inner) + room - 1) / room
	if total > 0xffff {
		return nil, fmt.Errorf("message needs %d fragments", total)
	}
	var out [][]byte
	for i := 0; i < total; i++ {
		chunk := inner[i*room : min((i+1)*room, len(inner))]
		f := PayloadNone
		if i == 0 {
			f = first
		}
		p, err := s.prot.seal(h, f, chunk, true, uint16(i+1), uint16(total))
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func (s *ikeSA) transmit(now time.Time, packets [][]byte) {
	for _, p := range packets {
		if err := s.e.cfg.Sender.Send(ike.Datagram{Local: s.local, Remote: s.remote, Data: p}); err != nil {
			s.e.log.Debug("IKE send failed", "remote", s.remote, "err", err)
		}
		s.stats.OutBytes += uint64(len(p))
		s.stats.OutPackets++
	}
	s.lastSend = now
	if s.natLocal && s.state == ike.StateEstablished {
		s.keepaliveAt = now.Add(s.conn.KeepaliveInterval)
	}
}

// unprotect verifies and decrypts a message; for fragments it returns
// complete=false until every fragment has arrived.
func (s *ikeSA) unprotect(raw []byte, m *Message) (payloads []Payload, complete bool, err error) {
	if len(m.Payloads) == 0 {
		return nil, false, malformed("%v without encrypted payload", m.Exchange)
	}
	enc, ok := m.Payloads[len(m.Payloads)-1].(*Encrypted)
	if !ok || s.prot == nil {
		return nil, false, malformed("%v not protected", m.Exchange)
	}
	plain, err := s.prot.open(raw, enc)
	if err != nil {
		return nil, false, err
	}
	if !enc.Fragment {
		ps, err := DecodePayloads(enc.First, plain)
		return ps, true, err
	}
	if s.conn.NoFragmentation {
		return nil, false, malformed("fragment received but fragmentation is off")
	}
	f := s.fragIn
	if f == nil || f.msgID != m.MessageID || f.response != m.IsResponse() || f.total != enc.Total {
		if enc.Total > 128 {
			return nil, false, malformed("%d fragments", enc.Total)
		}
		f = &fragments{msgID: m.MessageID, response: m.IsResponse(), total: enc.Total, parts: map[uint16][]byte{}}
		s.fragIn = f
	}
	if _, dup := f.parts[enc.Number]; !dup {
		f.parts[enc.Number] = plain
		f.size += len(plain)
		if enc.Number == 1 {
			f.first = enc.First
		}
	}
	if f.size > 4*MaxMessageLen {
		s.fragIn = nil
		return nil, false, malformed("reassembly too large")
	}
	if len(f.parts) < int(f.total) {
		return nil, false, nil
	}
	var all []byte
	for i := uint16(1); i <= f.total; i++ {
		all = append(all, f.parts[i]...)
	}
	s.fragIn = nil
	ps, err := DecodePayloads(f.first, all)
	return ps, true, err
}

// receive handles one message addressed to this SA.
func (s *ikeSA) receive(now time.Time, d ike.Datagram, m *Message) {
	s.stats.InBytes += uint64(len(d.Data))
	s.stats.InPackets++
	if m.IsResponse() {
		s.receiveResponse(now, d, m)
		return
	}
	if cached := s.cachedResponse(m.MessageID); cached != nil {
		if len(m.Payloads) == 0 {
			return
		}
		if enc, ok := m.Payloads[len(m.Payloads)-1].(*Encrypted); !ok || !enc.Fragment || enc.Number == 1 {
			s.transmitTo(now, d, cached) // retransmitted request: cached answer
		}
		return
	}
	if m.Exchange == IKE_SA_INIT || !s.acceptsRequest(m.MessageID) {
		return
	}
	payloads, complete, err := s.unprotect(d.Data, m)
	if err != nil {
		s.e.log.Debug("dropping IKE request", "remote", d.Remote, "exchange", m.Exchange, "err", err)
		return
	}
	if !complete {
		return
	}
	s.heard(now, d)
	s.respond(now, d, m, payloads)
}

// transmitTo answers on the addresses a request arrived on.
func (s *ikeSA) transmitTo(now time.Time, d ike.Datagram, packets [][]byte) {
	for _, p := range packets {
		_ = s.e.cfg.Sender.Send(ike.Datagram{Local: d.Local, Remote: d.Remote, Data: p})
		s.stats.OutBytes += uint64(len(p))
		s.stats.OutPackets++
	}
	s.lastSend = now
}

// heard notes an authenticated message from the peer: liveness, and the
// peer's current address when a NAT sits in between (RFC 7296 §2.23).
func (s *ikeSA) heard(now time.Time, d ike.Datagram) {
	s.lastRecv = now
	if s.conn.DPDInterval > 0 && s.state == ike.StateEstablished {
		s.dpdAt = now.Add(s.conn.DPDInterval)
	}
	if (s.natLocal || s.natRemote) && d.Remote != s.remote {
		s.remote = d.Remote
		s.local = d.Local
	}
}

func (s *ikeSA) receiveResponse(now time.Time, d ike.Datagram, m *Message) {
	var r *request
	for _, p := range s.pending {
		if p.msgID == m.MessageID {
			r = p
		}
	}
	if r == nil || m.Exchange != r.ex.typ {
		return
	}
	var payloads []Payload
	if m.Exchange == IKE_SA_INIT {
		payloads = m.Payloads
		s.initResp = d.Data
		if m.SPIr != 0 && findNotify(payloads, COOKIE) == nil && findNotify(payloads, INVALID_KE_PAYLOAD) == nil {
			s.spiR = m.SPIr
		}
	} else {
		var complete bool
		var err error
		payloads, complete, err = s.unprotect(d.Data, m)
		if err != nil {
			s.e.log.Debug("dropping IKE response", "remote", d.Remote, "exchange", m.Exchange, "err", err)
			return
		}
		if !complete {
			return
		}
		s.heard(now, d)
	}
	s.takePending(r.msgID)
	var err error
	for _, t := range r.ex.tasks {
		if err = t.processI(s, now, payloads); err != nil {
			break
		}
	}
	switch {
	case errors.Is(err, errRetry):
		// IKE_SA_INIT is retried with message ID 0 (RFC 7296 §2.6, §1.2);
		// any other exchange takes a new ID, as the peer answered this one.
		if r.ex.typ == IKE_SA_INIT {
			s.nextMsgID = r.msgID
		}
		s.queue = append([]*exchange{r.ex}, s.queue...)
	case err != nil:
		s.e.fail(s.conn, err)
		var f *fatalError
		if errors.As(err, &f) || s.state != ike.StateEstablished {
			var ne *NotifyError
			if r.ex.typ == IKE_AUTH && errors.As(err, &ne) && ne.Type == AUTHENTICATION_FAILED && !ne.FromPeer {
				s.tellAuthFailed(now)
			}
			s.destroy(now, err.Error())
			return
		}
	}
	if r.ex.typ == IKE_AUTH {
		s.trimAfterAuth()
	}
	if !s.dead {
		s.startNext(now)
	}
}

// trimAfterAuth frees what only IKE_SA_INIT and IKE_AUTH needed: the raw
// request and the nonces. A responder keeps its IKE_SA_INIT response (and
// the request's digest) to answer late retransmissions.
func (s *ikeSA) trimAfterAuth() {
	if s.state != ike.StateEstablished {
		return
	}
	if s.initiator {
		s.initResp = nil
	}
	s.initReq, s.cookie = nil, nil
	s.ni, s.nr = nil, nil
}

// respond runs the responder tasks for a request and sends the response.
func (s *ikeSA) respond(now time.Time, d ike.Datagram, m *Message, in []Payload) {
	tasks, err := s.responderTasks(now, m.Exchange, in)
	var out []Payload
	if err == nil {
		for _, t := range tasks {
			if err = t.processR(s, now, in); err != nil {
				break
			}
		}
	}
	var f *fatalError
	if err != nil && !errors.As(err, &f) {
		f = &fatalError{notify: INVALID_SYNTAX, err: err}
	}
	if f == nil {
		for _, t := range tasks {
			if err = t.buildR(s, now, &out); err != nil {
				if !errors.As(err, &f) {
					f = &fatalError{notify: INVALID_SYNTAX, err: err}
				}
				break
			}
		}
	}
	if f != nil {
		out = nil
		if f.notify != 0 {
			out = []Payload{notifyPayload(f.notify, nil)}
		}
	}
	h := s.header(m.Exchange, m.MessageID, true)
	packets, perr := s.pack(h, out)
	if perr != nil {
		s.e.log.Warn("cannot build IKE response", "err", perr)
		return
	}
	s.storeResponse(m.MessageID, packets)
	s.transmitTo(now, d, packets)
	if f != nil {
		s.e.fail(s.conn, f)
		s.destroy(now, f.Error())
		return
	}
	for _, t := range tasks {
		if p, ok := t.(interface{ afterResponse(*ikeSA, time.Time) }); ok {
			p.afterResponse(s, now)
		}
	}
	if m.Exchange == IKE_AUTH {
		s.trimAfterAuth()
	}
}

// onTimer runs the due timers of the SA.
func (s *ikeSA) onTimer(now time.Time) {
	if !s.halfOpenAt.IsZero() && !now.Before(s.halfOpenAt) {
		s.destroy(now, "half-open timeout")
		return
	}
	if !s.deleteAt.IsZero() && !now.Before(s.deleteAt) {
		s.destroy(now, "replaced")
		return
	}
	if !s.expireAt.IsZero() && !now.Before(s.expireAt) {
		s.destroy(now, "IKE SA lifetime expired")
		return
	}
	for _, r := range s.pending {
		if now.Before(r.retryAt) {
			continue
		}
		if r.tries >= r.maxTries {
			s.peerDead(now)
			return
		}
		r.tries++
		if !r.ex.dpd {
			r.timeout = min(2*r.timeout, s.e.cfg.RetransmitMax)
		}
		r.retryAt = now.Add(r.timeout)
		s.transmit(now, r.packets)
	}
	if !s.rekeyAt.IsZero() && !now.Before(s.rekeyAt) {
		s.rekeyAt = time.Time{}
		s.startIKERekey(now)
	}
	for _, c := range append([]*child(nil), s.children...) {
		if !c.expireAt.IsZero() && !now.Before(c.expireAt) {
			s.deleteChildLocally(now, c, "lifetime expired")
			s.queueDeleteChild(now, c)
			continue
		}
		if !c.rekeyAt.IsZero() && !now.Before(c.rekeyAt) {
			c.rekeyAt = time.Time{}
			if c.state == childInstalled {
				s.startChildRekey(now, c)
			}
		}
	}
	if !s.dpdAt.IsZero() && !now.Before(s.dpdAt) {
		s.dpdAt = time.Time{}
		if len(s.pending) == 0 && len(s.queue) == 0 {
			s.enqueue(now, &exchange{typ: INFORMATIONAL, dpd: true, tasks: []task{&dpdTask{}}})
		} else {
			s.dpdAt = now.Add(s.conn.DPDInterval)
		}
	}
	if !s.keepaliveAt.IsZero() && !now.Before(s.keepaliveAt) {
		s.keepaliveAt = now.Add(s.conn.KeepaliveInterval)
		if s.natLocal {
			_ = s.e.cfg.Sender.Send(ike.Datagram{Local: s.local, Remote: s.remote, Data: []byte{0xff}})
		}
	}
}

// peerDead handles an exhausted retransmission.
func (s *ikeSA) peerDead(now time.Time) {
	s.e.fail(s.conn, fmt.Errorf("peer %v not responding", s.remote))
	restart := s.conn.DPDAction == DPDRestart && s.state == ike.StateEstablished
	s.destroy(now, "peer not responding")
	if restart && s.conn.Remote.Addr().IsValid() && !s.conn.Remote.Addr().IsUnspecified() {
		s.e.initiate(now, s.conn)
	}
}

// destroy ends the SA locally: children are reported deleted, keys wiped.
func (s *ikeSA) destroy(now time.Time, reason string) {
	if s.dead {
		return
	}
	for _, c := range s.children {
		s.e.removeChild(c)
	}
	s.children = nil
	s.dead = true
	if s.state == ike.StateConnecting && !s.initiator && s.halfOpenAt != (time.Time{}) {
		s.e.halfOpen--
	}
	wasUp := s.state != ike.StateConnecting
	s.state = ike.StateDown
	s.reason = reason
	s.keys.wipe()
	s.wipeKE()
	delete(s.e.sas, s.localSPI())
	if !s.initiator && s.e.initSeen[s.seenKey] == s {
		delete(s.e.initSeen, s.seenKey)
	}
	if wasUp || s.initiator {
		s.e.cfg.Sink.IKESAChanged(s.status(now))
	}
	s.e.log.Info("IKE SA down", "connection", s.conn.Name, "index", s.index, "reason", reason)
}

// removeChild reports a child deleted and wipes its keys.
func (e *Engine) removeChild(c *child) {
	if e.childSPIs[c.sa.SPIIn] == c {
		delete(e.childSPIs, c.sa.SPIIn)
	}
	if c.installed {
		c.installed = false
		e.cfg.Sink.ChildSADeleted(c.sa.WithoutKeys())
	}
	c.sa.Wipe()
	c.sa.In, c.sa.Out = ike.SAKeys{}, ike.SAKeys{}
}

// tellAuthFailed sends one unanswered INFORMATIONAL with
// AUTHENTICATION_FAILED after we rejected the responder's AUTH, so it can
// drop the SA it considers established (RFC 7296 §2.21.2).
func (s *ikeSA) tellAuthFailed(now time.Time) {
	h := s.header(INFORMATIONAL, s.nextMsgID, false)
	if packets, err := s.pack(h, []Payload{notifyPayload(AUTHENTICATION_FAILED, nil)}); err == nil {
		s.transmit(now, packets)
	}
}
