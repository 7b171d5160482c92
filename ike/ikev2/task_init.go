package ikev2

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"net/netip"

	"github.com/bpfvpn/bpfvpn/ike"
	"github.com/bpfvpn/bpfvpn/ike/suite"
)

func newInitExchange() *exchange {
	return &exchange{typ: IKE_SA_INIT, tasks: []task{&ikeInitTask{}}}
}

// ikeInitTask negotiates the IKE SA suite, exchanges KE and nonces, runs NAT
// detection and announces fragmentation and childless support.
type ikeInitTask struct {
	pub     []byte
	group   suite.DHGroup
	retries int
	chosen  Proposal
}

func (t *ikeInitTask) buildI(s *ikeSA, now time.Time, out *[]Payload) error {
	c := s.conn
	if t.group == suite.DHNone {
		t.group = c.IKEProposals[0].DH[0]
	}
	if s.ke == nil || s.ke.Group() != t.group {
		s.wipeKE()
		ke, shared, err := s.e.keyExchange(now, t.group)
		if err != nil {
			return err
		}
		s.ke, s.keShared = ke, shared
	}
	if s.ni == nil {
		s.ni = s.e.nonce()
	}
	if s.cookie != nil {
		*out = append(*out, notifyPayload(COOKIE, s.cookie))
	}
	*out = append(*out, ikeProposals(c.IKEProposals, nil), &KE{Group: uint16(t.group), Data: s.ke.PublicValue()}, &Nonce{Data: s.ni})
	*out = append(*out, natPayloads(s.spiI, 0, s.natAddr(), s.remote)...)
	if !c.NoFragmentation {
		*out = append(*out, notifyPayload(IKEV2_FRAGMENTATION_SUPPORTED, nil))
	}
	*out = append(*out, notifyPayload(CHILDLESS_IKEV2_SUPPORTED, nil))
	return nil
}

// natAddr is our address for NAT detection: the configured one when the
// transport reports a wildcard.
func (s *ikeSA) natAddr() netip.AddrPort {
	if s.local.Addr().IsValid() && !s.local.Addr().IsUnspecified() {
		return s.local
	}
	return netip.AddrPortFrom(s.conn.Local.Addr(), s.local.Port())
}

func (t *ikeInitTask) processI(s *ikeSA, now time.Time, in []Payload) error {
	if n := findNotify(in, COOKIE); n != nil {
		t.retries++
		if t.retries > 3 || len(n.Data) == 0 || len(n.Data) > 64 {
			return fatal(0, fmt.Errorf("IKE_SA_INIT: responder keeps demanding cookies"))
		}
		s.cookie = n.Data
		return errRetry
	}
	if n := findNotify(in, INVALID_KE_PAYLOAD); n != nil {
		t.retries++
		if len(n.Data) != 2 || t.retries > 3 {
			return fatal(0, &NotifyError{Type: INVALID_KE_PAYLOAD, Exchange: IKE_SA_INIT, FromPeer: true})
		}
		g := suite.DHGroup(binary.BigEndian.Uint16(n.Data))
		if !offersGroup(s.conn.IKEProposals, g) || g == t.group {
			return fatal(0, &NotifyError{Type: INVALID_KE_PAYLOAD, Exchange: IKE_SA_INIT, FromPeer: true})
		}
		s.e.log.Info("responder asks for another DH group", "connection", s.conn.Name, "group", g.String())
		t.group = g
		return errRetry
	}
	if n := firstError(in); n != nil {
		return fatal(0, &NotifyError{Type: n.NotifyType, Exchange: IKE_SA_INIT, FromPeer: true})
	}
	sa, _ := findPayload(in, PayloadSA).(*SA)
	ke, _ := findPayload(in, PayloadKE).(*KE)
	nonce, _ := findPayload(in, PayloadNonce).(*Nonce)
	if sa == nil || ke == nil || nonce == nil || s.spiR == 0 {
		return fatal(0, fmt.Errorf("IKE_SA_INIT response lacks SA, KE, nonce or SPI"))
	}
	algs, _, err := parseChosenIKE(sa, s.conn.IKEProposals)
	if err != nil {
		return fatal(0, fmt.Errorf("IKE_SA_INIT: %w", err))
	}
	if algs.DH != t.group || suite.DHGroup(ke.Group) != t.group {
		return fatal(0, fmt.Errorf("IKE_SA_INIT: responder used group %d, we sent %v", ke.Group, t.group))
	}
	s.algs, s.nr = algs, nonce.Data
	if l, r, ok := detectNAT(in, s.spiI, s.spiR, s.natAddr(), s.remote); ok {
		s.natLocal, s.natRemote = l, r
	}
	s.fragSupported = findNotify(in, IKEV2_FRAGMENTATION_SUPPORTED) != nil && !s.conn.NoFragmentation
	s.childlessPeer = findNotify(in, CHILDLESS_IKEV2_SUPPORTED) != nil
	if err := s.deriveInitialKeys(ke.Data); err != nil {
		return fatal(0, err)
	}
	// RFC 7296 §2.23: float to port 4500 once a NAT is detected.
	if (s.natLocal || s.natRemote) && s.local.Port() != s.conn.LocalNATPort {
		s.local = netip.AddrPortFrom(s.local.Addr(), s.conn.LocalNATPort)
		s.remote = netip.AddrPortFrom(s.remote.Addr(), s.conn.RemoteNATPort)
	}
	return nil
}

func offersGroup(ps []IKEProposal, g suite.DHGroup) bool {
	for _, p := range ps {
		if slices.Contains(p.DH, g) {
			return true
		}
	}
	return false
}

// wipeKE drops our DH value, wiping it unless it is the engine's reused one.
func (s *ikeSA) wipeKE() {
	if s.ke != nil && !s.keShared {
		s.ke.Wipe()
	}
	s.ke, s.keShared = nil, false
}

func (s *ikeSA) deriveInitialKeys(peerKE []byte) error {
	zz, err := s.ke.SharedSecret(peerKE)
	if err != nil {
		return fmt.Errorf("IKE_SA_INIT: %w", err)
	}
	s.wipeKE()
	seed, err := initialSKEYSEED(s.algs, s.ni, s.nr, zz)
	zz.Wipe()
	if err != nil {
		return err
	}
	keys, err := deriveIKEKeys(s.algs, seed, s.ni, s.nr, s.spiI, s.spiR)
	seed.Wipe()
	if err != nil {
		return err
	}
	s.keys = keys
	s.prot = newProtector(keys, s.algs, s.initiator, s.e.random)
	return nil
}

// The responder side of IKE_SA_INIT runs from handleInitRequest, before an
// SA exists; these satisfy the task interface.
func (t *ikeInitTask) processR(s *ikeSA, now time.Time, in []Payload) error {
	ke := findPayload(in, PayloadKE).(*KE)
	s.ni = findPayload(in, PayloadNonce).(*Nonce).Data
	s.nr = s.e.nonce()
	k, shared, err := s.e.keyExchange(now, s.algs.DH)
	if err != nil {
		return err
	}
	s.ke, s.keShared = k, shared
	pub := k.PublicValue()
	if err := s.deriveInitialKeys(ke.Data); err != nil {
		return err
	}
	s.ke = nil
	t.pub = pub
	if l, r, ok := detectNAT(in, s.spiI, 0, s.natAddr(), s.remote); ok {
		s.natLocal, s.natRemote = l, r
	}
	s.fragSupported = findNotify(in, IKEV2_FRAGMENTATION_SUPPORTED) != nil && !s.conn.NoFragmentation
	s.childlessPeer = findNotify(in, CHILDLESS_IKEV2_SUPPORTED) != nil
	return nil
}

func (t *ikeInitTask) buildR(s *ikeSA, now time.Time, out *[]Payload) error {
	*out = append(*out, &SA{Proposals: []Proposal{t.chosen}}, &KE{Group: uint16(s.algs.DH), Data: t.pub}, &Nonce{Data: s.nr})
	*out = append(*out, natPayloads(s.spiI, s.spiR, s.natAddr(), s.remote)...)
	if s.fragSupported {
		*out = append(*out, notifyPayload(IKEV2_FRAGMENTATION_SUPPORTED, nil))
	}
	if s.childlessPeer {
		*out = append(*out, notifyPayload(CHILDLESS_IKEV2_SUPPORTED, nil))
	}
	return nil
}

// handleInitRequest answers an IKE_SA_INIT request: cached answer for a
// retransmission, stateless COOKIE / NO_PROPOSAL_CHOSEN / INVALID_KE_PAYLOAD
// answers, or a new half-open SA.
//
// The Diffie-Hellman work runs without the engine lock, so several receive
// goroutines can answer IKE_SA_INIT requests in parallel; the new SA is
// reachable only through initSeen (not ready) until it is complete.
func (e *Engine) handleInitRequest(now time.Time, d ike.Datagram, m *Message) {
	if m.SPIr != 0 || m.MessageID != 0 || m.SPIi == 0 {
		return
	}
	e.mu.Lock()
	s, t := e.admitInit(now, d, m)
	e.mu.Unlock()
	if s == nil {
		return
	}
	err := t.processR(s, now, m.Payloads)
	var resp []byte
	if err == nil {
		var out []Payload
		_ = t.buildR(s, now, &out)
		resp = (&Message{Header: s.header(IKE_SA_INIT, 0, true), Payloads: out}).Encode()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil || e.initSeen[s.seenKey] != s {
		if err != nil {
			e.log.Info("IKE_SA_INIT rejected", "remote", d.Remote, "err", err)
		}
		if e.initSeen[s.seenKey] == s {
			delete(e.initSeen, s.seenKey)
		}
		s.keys.wipe()
		return
	}
	s.initReq, s.initResp = d.Data, resp
	s.initReqSum = sha256.Sum256(d.Data)
	s.peerMsgID = 1
	e.sas[s.spiR] = s
	e.halfOpen++
	s.halfOpenAt = now.Add(e.cfg.HalfOpenTimeout)
	s.ready = true
	s.transmitTo(now, d, [][]byte{resp})
	e.schedule(s)
}

// admitInit runs the cheap checks of an IKE_SA_INIT request under the
// engine lock. It returns the half-open SA to complete, or nil when the
// request was answered (retransmission, COOKIE, errors) or dropped.
func (e *Engine) admitInit(now time.Time, d ike.Datagram, m *Message) (*ikeSA, *ikeInitTask) {
	key := initKey{m.SPIi, d.Remote}
	if s := e.initSeen[key]; s != nil {
		if s.ready && s.initReqSum == sha256.Sum256(d.Data) && s.initResp != nil {
			s.transmitTo(now, d, [][]byte{s.initResp})
		}
		return nil, nil
	}
	sa, _ := m.Find(PayloadSA).(*SA)
	ke, _ := m.Find(PayloadKE).(*KE)
	nonce, _ := m.Find(PayloadNonce).(*Nonce)
	reply := func(n *Notify) {
		h := Header{SPIi: m.SPIi, Exchange: IKE_SA_INIT, Flags: FlagResponse}
		out := &Message{Header: h, Payloads: []Payload{n}}
		_ = e.cfg.Sender.Send(ike.Datagram{Local: d.Local, Remote: d.Remote, Data: out.Encode()})
	}
	if sa == nil || ke == nil || nonce == nil {
		reply(notifyPayload(INVALID_SYNTAX, nil))
		return nil, nil
	}
	if e.cfg.CookieThreshold >= 0 && e.halfOpen >= e.cfg.CookieThreshold {
		e.rotateCookieSecret(now)
		got, _ := m.Payloads[0].(*Notify)
		if got == nil || got.NotifyType != COOKIE || !e.validCookie(got.Data, nonce.Data, d.Remote, m.SPIi) {
			reply(notifyPayload(COOKIE, e.cookieFor(&e.cookieSecret, e.cookieVersion, nonce.Data, d.Remote, m.SPIi)))
			return nil, nil
		}
	}
	var (
		conn   *Connection
		algs   ikeAlgs
		chosen Proposal
	)
	for _, c := range e.conns {
		if c.Remote.Addr().IsValid() && !c.Remote.Addr().IsUnspecified() && c.Remote.Addr() != d.Remote.Addr() {
			continue
		}
		if a, p, ok := selectIKE(sa, c.IKEProposals, suite.DHGroup(ke.Group)); ok {
			conn, algs, chosen = c, a, p
			break
		}
	}
	if conn == nil {
		e.log.Info("no acceptable IKE proposal", "remote", d.Remote)
		reply(notifyPayload(NO_PROPOSAL_CHOSEN, nil))
		return nil, nil
	}
	if algs.DH != suite.DHGroup(ke.Group) {
		reply(notifyPayload(INVALID_KE_PAYLOAD, binary.BigEndian.AppendUint16(nil, uint16(algs.DH))))
		return nil, nil
	}
	if len(ke.Data) != algs.DH.PublicValueLen() {
		reply(notifyPayload(INVALID_SYNTAX, nil))
		return nil, nil
	}
	s := e.newSA(now, conn, false)
	s.spiI, s.spiR = m.SPIi, e.newIKESPI()
	s.local, s.remote = d.Local, d.Remote
	s.algs = algs
	e.initSeen[key] = s
	s.seenKey = key
	return s, &ikeInitTask{chosen: chosen}
}
