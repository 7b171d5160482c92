package ikev2

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/bpfvpn/bpfvpn/ike"
	"github.com/bpfvpn/bpfvpn/ike/suite"
)

// ikeRekeyTask rekeys the IKE SA with CREATE_CHILD_SA (RFC 7296 §2.18): a new
// IKE SA with fresh SPIs, nonces and KE inherits the CHILD SAs; the old one
// is deleted by the side that initiated the surviving rekey.
type ikeRekeyTask struct {
	ns       *ikeSA
	ni, nr   []byte
	ke       suite.KeyExchange
	group    suite.DHGroup
	retries  int
	chosen   Proposal
	peerKE   []byte
	errNote  *Notify
	chosenKE []byte
}

func (s *ikeSA) startIKERekey(now time.Time) {
	if s.state != ike.StateEstablished || s.replacedBy != nil || s.rekeying != nil {
		return
	}
	t := &ikeRekeyTask{}
	s.rekeying = t
	s.state = ike.StateRekeying
	s.enqueue(now, &exchange{typ: CREATE_CHILD_SA, tasks: []task{t}})
}

// successor creates the SA object that will replace s.
func (s *ikeSA) successor(now time.Time, initiator bool) *ikeSA {
	ns := s.e.newSA(now, s.conn, initiator)
	ns.local, ns.remote = s.local, s.remote
	ns.natLocal, ns.natRemote = s.natLocal, s.natRemote
	ns.fragSupported, ns.childlessPeer, ns.peerID = s.fragSupported, s.childlessPeer, s.peerID
	return ns
}

func (t *ikeRekeyTask) buildI(s *ikeSA, now time.Time, out *[]Payload) error {
	if s.rekeying != t || s.replacedBy != nil || s.dead {
		return errSkip
	}
	if t.ns == nil {
		t.ns = s.successor(now, true)
		t.ns.spiI = s.e.newIKESPI()
		s.e.sas[t.ns.spiI] = t.ns
	}
	if t.group == suite.DHNone {
		t.group = s.algs.DH
	}
	if err := renewKE(&t.ke, t.group); err != nil {
		return err
	}
	t.ni = s.e.nonce()
	*out = append(*out, ikeProposals(s.conn.IKEProposals, binary.BigEndian.AppendUint64(nil, t.ns.spiI)),
		&Nonce{Data: t.ni}, &KE{Group: uint16(t.group), Data: t.ke.PublicValue()})
	return nil
}

func (t *ikeRekeyTask) abort(s *ikeSA) {
	if t.ns != nil && s.e.sas[t.ns.localSPI()] == t.ns {
		delete(s.e.sas, t.ns.localSPI())
	}
	dropKE(&t.ke)
	if s.rekeying == t {
		s.rekeying = nil
		if s.state == ike.StateRekeying {
			s.state = ike.StateEstablished
		}
	}
}

func (t *ikeRekeyTask) processI(s *ikeSA, now time.Time, in []Payload) error {
	if n := findNotify(in, INVALID_KE_PAYLOAD); n != nil && len(n.Data) == 2 && t.retries < 2 {
		g := suite.DHGroup(binary.BigEndian.Uint16(n.Data))
		if offersGroup(s.conn.IKEProposals, g) && g != t.group {
			t.retries++
			t.group = g
			return errRetry
		}
	}
	if n := firstError(in); n != nil {
		t.abort(s)
		if n.NotifyType == TEMPORARY_FAILURE {
			s.rekeyAt = now.Add(10 * time.Second)
		}
		return &NotifyError{Type: n.NotifyType, Exchange: CREATE_CHILD_SA, FromPeer: true}
	}
	sa, _ := findPayload(in, PayloadSA).(*SA)
	nonce, _ := findPayload(in, PayloadNonce).(*Nonce)
	ke, _ := findPayload(in, PayloadKE).(*KE)
	if sa == nil || nonce == nil || ke == nil {
		t.abort(s)
		return fmt.Errorf("IKE rekey response lacks SA, nonce or KE")
	}
	algs, spi, err := parseChosenIKE(sa, s.conn.IKEProposals)
	if err != nil || len(spi) != 8 || algs.DH != t.group || suite.DHGroup(ke.Group) != t.group {
		t.abort(s)
		return fmt.Errorf("IKE rekey: bad response proposal: %v", err)
	}
	t.nr, t.peerKE = nonce.Data, ke.Data
	t.ns.spiR = binary.BigEndian.Uint64(spi)
	if err := t.deriveNew(s, algs); err != nil {
		t.abort(s)
		return err
	}
	s.rekeying = nil
	s.ourNewIKE, s.ourIKENonces = t.ns, [2][]byte{t.ni, t.nr}
	s.resolveIKERekey(now)
	return nil
}

func (t *ikeRekeyTask) deriveNew(s *ikeSA, algs ikeAlgs) error {
	zz, err := t.ke.SharedSecret(t.peerKE)
	if err != nil {
		return fmt.Errorf("IKE rekey: %w", err)
	}
	t.ke.Wipe()
	t.ke = nil
	seed, err := rekeySKEYSEED(algs, s.keys.prf, s.keys.d, zz, t.ni, t.nr)
	zz.Wipe()
	if err != nil {
		return err
	}
	ns := t.ns
	keys, err := deriveIKEKeys(algs, seed, t.ni, t.nr, ns.spiI, ns.spiR)
	seed.Wipe()
	if err != nil {
		return err
	}
	ns.algs, ns.keys = algs, keys
	ns.prot = newProtector(keys, algs, ns.initiator, s.e.random)
	return nil
}

func (t *ikeRekeyTask) processR(s *ikeSA, now time.Time, in []Payload) error {
	if s.replacedBy != nil || (s.state != ike.StateEstablished && s.state != ike.StateRekeying) {
		t.errNote = notifyPayload(TEMPORARY_FAILURE, nil)
		return nil
	}
	sa, _ := findPayload(in, PayloadSA).(*SA)
	nonce, _ := findPayload(in, PayloadNonce).(*Nonce)
	ke, _ := findPayload(in, PayloadKE).(*KE)
	if sa == nil || nonce == nil || ke == nil {
		t.errNote = notifyPayload(INVALID_SYNTAX, nil)
		return nil
	}
	algs, chosen, ok := selectIKE(sa, s.conn.IKEProposals, suite.DHGroup(ke.Group))
	if !ok || len(chosen.SPI) != 8 {
		t.errNote = notifyPayload(NO_PROPOSAL_CHOSEN, nil)
		return nil
	}
	if algs.DH != suite.DHGroup(ke.Group) {
		t.errNote = notifyPayload(INVALID_KE_PAYLOAD, binary.BigEndian.AppendUint16(nil, uint16(algs.DH)))
		return nil
	}
	k, err := suite.NewKeyExchange(algs.DH)
	if err != nil {
		return err
	}
	t.ke, t.peerKE, t.ni, t.nr = k, ke.Data, nonce.Data, s.e.nonce()
	t.ns = s.successor(now, false)
	t.ns.spiI, t.ns.spiR = binary.BigEndian.Uint64(chosen.SPI), s.e.newIKESPI()
	t.chosen = chosen
	t.chosen.SPI = binary.BigEndian.AppendUint64(nil, t.ns.spiR)
	pub := k.PublicValue()
	if err := t.deriveNew(s, algs); err != nil {
		t.errNote = notifyPayload(INVALID_SYNTAX, nil)
		return nil
	}
	t.chosenKE = pub
	return nil
}

func (t *ikeRekeyTask) buildR(s *ikeSA, now time.Time, out *[]Payload) error {
	if t.errNote != nil {
		*out = append(*out, t.errNote)
		return nil
	}
	*out = append(*out, &SA{Proposals: []Proposal{t.chosen}}, &Nonce{Data: t.nr}, &KE{Group: uint16(t.ns.algs.DH), Data: t.chosenKE})
	return nil
}

// afterResponse activates the peer's new IKE SA once our answer is out.
func (t *ikeRekeyTask) afterResponse(s *ikeSA, now time.Time) {
	if t.errNote != nil || t.ns == nil {
		return
	}
	s.e.sas[t.ns.spiR] = t.ns
	s.peerNewIKE, s.peerIKENonces = t.ns, [2][]byte{t.ni, t.nr}
	if s.rekeying != nil {
		// Simultaneous rekey: decided when our own exchange completes.
		s.activate(now, t.ns, false)
		return
	}
	s.activate(now, t.ns, true)
	s.replacedBy = t.ns
	s.deleteAt = now.Add(2 * s.e.cfg.RetransmitMax) // the peer deletes the old SA
	s.rekeyAt, s.dpdAt = time.Time{}, time.Time{}
}

// activate makes ns an established IKE SA; with moveChildren it takes over
// s's CHILD SAs.
func (s *ikeSA) activate(now time.Time, ns *ikeSA, moveChildren bool) {
	if ns.state != ike.StateEstablished {
		ns.state = ike.StateEstablished
		ns.established = now
		ns.armIKELifetime(now)
		if ns.conn.DPDInterval > 0 {
			ns.dpdAt = now.Add(ns.conn.DPDInterval)
		}
		if ns.natLocal {
			ns.keepaliveAt = now.Add(ns.conn.KeepaliveInterval)
		}
		ns.lastRecv = now
		s.e.log.Info("IKE SA rekeyed", "connection", s.conn.Name, "old", s.index, "new", ns.index, "suite", ns.algs.String())
		s.e.cfg.Sink.IKESAChanged(ns.status(now))
	}
	if moveChildren {
		for _, c := range s.children {
			c.sa.IKESA = ns.index
		}
		ns.children = append(ns.children, s.children...)
		s.children = nil
	}
	s.e.schedule(ns)
}

// resolveIKERekey finishes our IKE rekey, applying the simultaneous-rekey
// rule of RFC 7296 §2.8.1 when the peer rekeyed too.
func (s *ikeSA) resolveIKERekey(now time.Time) {
	ours, peers := s.ourNewIKE, s.peerNewIKE
	if ours == nil {
		return
	}
	s.e.sas[ours.spiI] = ours
	if peers == nil || peers.dead {
		s.activate(now, ours, true)
		s.replacedBy = ours
		s.queueDeleteIKE(now)
		return
	}
	if bytesLess(lowest(s.ourIKENonces), lowest(s.peerIKENonces)) {
		// Ours is redundant: the peer's SA survives and the peer deletes s.
		s.e.log.Info("IKE SA rekey collision: ours is redundant", "connection", s.conn.Name)
		s.activate(now, ours, false)
		s.activate(now, peers, true)
		s.replacedBy = peers
		s.deleteAt = now.Add(2 * s.e.cfg.RetransmitMax)
		s.rekeyAt, s.dpdAt = time.Time{}, time.Time{}
		if s.state == ike.StateRekeying {
			s.state = ike.StateEstablished
		}
		ours.queueDeleteIKE(now)
		return
	}
	s.e.log.Info("IKE SA rekey collision: ours survives", "connection", s.conn.Name)
	s.activate(now, ours, true)
	s.replacedBy = ours
	s.queueDeleteIKE(now)
}

func bytesLess(a, b []byte) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return len(a) < len(b)
}

var _ = errors.Is
