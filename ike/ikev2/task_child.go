package ikev2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/bpfvpn/bpfvpn/ike"
	"github.com/bpfvpn/bpfvpn/ike/suite"
)

// childCreateTask negotiates one CHILD SA: in IKE_AUTH (initial, no KE) or
// in CREATE_CHILD_SA (with nonces and, for PFS, a KE).
type childCreateTask struct {
	initial bool
	pfs     bool
	old     *child // set when rekeying

	ch       *child
	ni, nr   []byte
	ke       suite.KeyExchange
	group    suite.DHGroup
	retries  int
	skipped  bool
	peerTSi  []ike.TrafficSelector
	peerTSr  []ike.TrafficSelector
	chosen   Proposal
	peerKE   []byte
	errNote  *Notify
	localTS  []ike.TrafficSelector
	remoteTS []ike.TrafficSelector
}

func (t *childCreateTask) exchange() ExchangeType {
	if t.initial {
		return IKE_AUTH
	}
	return CREATE_CHILD_SA
}

func (t *childCreateTask) buildI(s *ikeSA, now time.Time, out *[]Payload) error {
	c := s.conn
	if t.initial && (c.Childless || len(c.ChildProposals) == 0) {
		if !s.childlessPeer {
			return fmt.Errorf("childless IKE SA requested but the peer does not support RFC 6023")
		}
		t.skipped = true
		return nil
	}
	if t.old != nil && (t.old.state != childRekeying || s.findChild(t.old) < 0) {
		return errSkip
	}
	if t.ch == nil {
		t.ch = &child{}
		t.ch.sa.SPIIn = s.e.newChildSPI(t.ch)
	}
	t.localTS, t.remoteTS = c.LocalTS, c.RemoteTS
	if t.old != nil {
		t.localTS, t.remoteTS = t.old.sa.LocalTS, t.old.sa.RemoteTS
	}
	*out = append(*out, childProposals(c.ChildProposals, t.ch.sa.SPIIn, !t.initial))
	if !t.initial {
		t.ni = s.e.nonce()
		*out = append(*out, &Nonce{Data: t.ni})
		if t.group == suite.DHNone && len(c.ChildProposals[0].DH) > 0 {
			t.group = c.ChildProposals[0].DH[0]
		}
		if t.group != suite.DHNone {
			if err := renewKE(&t.ke, t.group); err != nil {
				return err
			}
			*out = append(*out, &KE{Group: uint16(t.group), Data: t.ke.PublicValue()})
		}
	}
	*out = append(*out, tsPayload(false, t.localTS), tsPayload(true, t.remoteTS))
	return nil
}

func (t *childCreateTask) release(s *ikeSA) {
	if t.ch != nil && s.e.childSPIs[t.ch.sa.SPIIn] == t.ch {
		delete(s.e.childSPIs, t.ch.sa.SPIIn)
	}
	dropKE(&t.ke)
}

func (t *childCreateTask) processI(s *ikeSA, now time.Time, in []Payload) error {
	if t.skipped {
		return nil
	}
	if n := findNotify(in, INVALID_KE_PAYLOAD); n != nil && !t.initial && len(n.Data) == 2 && t.retries < 2 {
		g := suite.DHGroup(binary.BigEndian.Uint16(n.Data))
		for _, p := range s.conn.ChildProposals {
			for _, pg := range p.DH {
				if pg == g && g != t.group {
					t.retries++
					t.group = g
					return errRetry
				}
			}
		}
	}
	if n := firstError(in); n != nil {
		t.release(s)
		return &NotifyError{Type: n.NotifyType, Exchange: t.exchange(), FromPeer: true}
	}
	sa, _ := findPayload(in, PayloadSA).(*SA)
	tsi, _ := findPayload(in, PayloadTSi).(*TS)
	tsr, _ := findPayload(in, PayloadTSr).(*TS)
	if sa == nil || tsi == nil || tsr == nil {
		t.release(s)
		if t.initial && sa == nil {
			return fmt.Errorf("IKE_AUTH response without CHILD SA")
		}
		return fmt.Errorf("%v response lacks SA or TS", t.exchange())
	}
	algs, spiOut, err := parseChosenChild(sa, s.conn.ChildProposals, !t.initial, t.group)
	if err != nil {
		t.release(s)
		return err
	}
	if !t.initial {
		nonce, _ := findPayload(in, PayloadNonce).(*Nonce)
		if nonce == nil {
			t.release(s)
			return fmt.Errorf("CREATE_CHILD_SA response without nonce")
		}
		t.nr = nonce.Data
		if algs.DH != t.group {
			t.release(s)
			return fmt.Errorf("CREATE_CHILD_SA: responder chose PFS group %v, we sent %v", algs.DH, t.group)
		}
		if t.group != suite.DHNone {
			ke, _ := findPayload(in, PayloadKE).(*KE)
			if ke == nil || suite.DHGroup(ke.Group) != t.group {
				t.release(s)
				return fmt.Errorf("CREATE_CHILD_SA response without matching KE")
			}
			t.peerKE = ke.Data
		}
	}
	local, remote := selectorsOf(tsi), selectorsOf(tsr)
	if !within(local, t.localTS) || !within(remote, t.remoteTS) {
		t.release(s)
		return &NotifyError{Type: TS_UNACCEPTABLE, Exchange: t.exchange()}
	}
	ni, nr := s.ni, s.nr
	if !t.initial {
		ni, nr = t.ni, t.nr
	}
	if err := s.completeChild(now, t, algs, spiOut, true, ni, nr, local, remote); err != nil {
		t.release(s)
		return err
	}
	return nil
}

func (t *childCreateTask) processR(s *ikeSA, now time.Time, in []Payload) error {
	sa, _ := findPayload(in, PayloadSA).(*SA)
	if t.initial && sa == nil {
		t.skipped = true // childless IKE SA (RFC 6023)
		return nil
	}
	fail := func(n NotifyType, data []byte) error {
		t.errNote = notifyPayload(n, data)
		return nil
	}
	if sa == nil || len(s.conn.ChildProposals) == 0 {
		return fail(NO_PROPOSAL_CHOSEN, nil)
	}
	var keGroup suite.DHGroup
	if !t.initial {
		nonce, _ := findPayload(in, PayloadNonce).(*Nonce)
		if nonce == nil {
			return fail(INVALID_SYNTAX, nil)
		}
		t.ni = nonce.Data
		if ke, _ := findPayload(in, PayloadKE).(*KE); ke != nil {
			keGroup, t.peerKE = suite.DHGroup(ke.Group), ke.Data
		}
	}
	algs, chosen, ok := selectChild(sa, s.conn.ChildProposals, !t.initial, keGroup)
	if !ok {
		s.e.log.Info("no acceptable ESP proposal", "connection", s.conn.Name)
		return fail(NO_PROPOSAL_CHOSEN, nil)
	}
	if !t.initial && algs.DH != keGroup {
		return fail(INVALID_KE_PAYLOAD, binary.BigEndian.AppendUint16(nil, uint16(algs.DH)))
	}
	tsi, _ := findPayload(in, PayloadTSi).(*TS)
	tsr, _ := findPayload(in, PayloadTSr).(*TS)
	if tsi == nil || tsr == nil {
		return fail(TS_UNACCEPTABLE, nil)
	}
	remoteTS, localTS := s.conn.RemoteTS, s.conn.LocalTS
	if t.old != nil {
		remoteTS, localTS = t.old.sa.RemoteTS, t.old.sa.LocalTS
	}
	t.peerTSi = narrow(selectorsOf(tsi), remoteTS)
	t.peerTSr = narrow(selectorsOf(tsr), localTS)
	if len(t.peerTSi) == 0 || len(t.peerTSr) == 0 {
		s.e.log.Info("traffic selectors unacceptable", "connection", s.conn.Name)
		return fail(TS_UNACCEPTABLE, nil)
	}
	t.group = algs.DH
	t.chosen = chosen
	t.ch = &child{algs: algs}
	t.ch.sa.SPIIn = s.e.newChildSPI(t.ch)
	return nil
}

func (t *childCreateTask) buildR(s *ikeSA, now time.Time, out *[]Payload) error {
	if t.skipped {
		return nil
	}
	if t.errNote != nil {
		*out = append(*out, t.errNote)
		s.e.fail(s.conn, &NotifyError{Type: t.errNote.NotifyType, Exchange: t.exchange()})
		return nil
	}
	spiOut := binary.BigEndian.Uint32(t.chosen.SPI)
	chosen := t.chosen
	chosen.SPI = binary.BigEndian.AppendUint32(nil, t.ch.sa.SPIIn)
	*out = append(*out, &SA{Proposals: []Proposal{chosen}})
	ni, nr := s.ni, s.nr
	if !t.initial {
		t.nr = s.e.nonce()
		ni, nr = t.ni, t.nr
		*out = append(*out, &Nonce{Data: t.nr})
		if t.group != suite.DHNone {
			ke, err := suite.NewKeyExchange(t.group)
			if err != nil {
				return err
			}
			t.ke = ke
			*out = append(*out, &KE{Group: uint16(t.group), Data: ke.PublicValue()})
		}
	}
	*out = append(*out, tsPayload(false, t.peerTSi), tsPayload(true, t.peerTSr))
	// From our side, the initiator's TSi is the remote network.
	if err := s.completeChild(now, t, t.ch.algs, spiOut, false, ni, nr, t.peerTSr, t.peerTSi); err != nil {
		t.release(s)
		// The response already promises the SA: tell the peer it is gone.
		s.e.log.Warn("CHILD SA setup failed", "connection", s.conn.Name, "err", err)
		return nil
	}
	return nil
}

// completeChild derives the keys of a negotiated CHILD SA and installs it
// (or reports it as the rekeyed successor of t.old).
func (s *ikeSA) completeChild(now time.Time, t *childCreateTask, algs childAlgs, spiOut uint32, weInitiated bool, ni, nr []byte, local, remote []ike.TrafficSelector) error {
	var zz suite.Key
	if t.ke != nil {
		var err error
		if zz, err = t.ke.SharedSecret(t.peerKE); err != nil {
			return fmt.Errorf("PFS: %w", err)
		}
		t.ke.Wipe()
		t.ke = nil
	}
	eI2R, aI2R, eR2I, aR2I, err := childKeys(s.keys.prf, s.keys.d, algs, zz, ni, nr)
	zz.Wipe()
	if err != nil {
		return err
	}
	c := t.ch
	c.algs = algs
	c.sa.Name, c.sa.ReqID, c.sa.IfID = s.conn.Name, s.conn.ReqID, s.conn.IfID
	c.sa.IKEVersion, c.sa.IKESA = 2, s.index
	c.sa.Protocol, c.sa.Mode = ike.ProtoESP, ike.ModeTunnel
	c.sa.SPIOut = spiOut
	s.fillChildAddrs(c)
	c.sa.Encryption = ike.Algorithm{Name: algs.Encr.XFRMName(), KeyBits: algs.Encr.KeyLen() * 8, ICVBits: algs.Encr.ICVLen() * 8, AEAD: algs.Encr.AEAD(), IKEName: algs.Encr.String()}
	c.sa.Integrity = nil
	if algs.Integ != suite.IntegNone {
		in, _ := algs.Integ.Integ()
		c.sa.Integrity = &ike.Algorithm{Name: in.XFRMName(), KeyBits: in.KeyLen() * 8, TruncBits: in.TruncBits(), IKEName: algs.Integ.String()}
	}
	if weInitiated {
		c.sa.Out, c.sa.In = ike.SAKeys{Encryption: eI2R, Integrity: aI2R}, ike.SAKeys{Encryption: eR2I, Integrity: aR2I}
	} else {
		c.sa.In, c.sa.Out = ike.SAKeys{Encryption: eI2R, Integrity: aI2R}, ike.SAKeys{Encryption: eR2I, Integrity: aR2I}
	}
	c.sa.PFSGroup = algs.DH
	c.sa.LocalTS, c.sa.RemoteTS = local, remote
	c.sa.ESN = algs.ESN
	c.sa.ReplayWindow = s.conn.ReplayWindow
	life := s.conn.ChildLifetime
	c.sa.Lifetime = ike.Lifetime{HardSeconds: uint64(life / time.Second), SoftSeconds: uint64((life - s.conn.margin(life)) / time.Second)}
	if kb := s.conn.ChildLifetimeKB; kb > 0 {
		c.sa.Lifetime.HardBytes = kb * 1024
		c.sa.Lifetime.SoftBytes = kb * 1024 * 9 / 10
	}
	c.established = now
	c.expireAt = now.Add(life)
	c.rekeyAt = now.Add(s.e.jitter(life-s.conn.margin(life), s.conn.RekeyJitter*float64(s.conn.margin(life))/float64(life)))
	c.state = childInstalled
	if t.old != nil {
		err = s.e.cfg.Sink.ChildSARekeyed(t.old.sa.WithoutKeys(), c.sa)
	} else {
		err = s.e.cfg.Sink.ChildSAInstalled(c.sa)
	}
	s.children = append(s.children, c)
	if err != nil {
		s.e.log.Warn("CHILD SA install failed", "connection", s.conn.Name, "spi_in", fmt.Sprintf("%08x", c.sa.SPIIn), "err", err)
		s.deleteChildLocally(now, c, "install failed")
		s.queueDeleteChild(now, c)
		return nil
	}
	c.installed = true
	s.e.log.Info("CHILD SA installed", "connection", s.conn.Name, "spi_in", fmt.Sprintf("%08x", c.sa.SPIIn),
		"spi_out", fmt.Sprintf("%08x", c.sa.SPIOut), "enc", c.sa.Encryption.IKEName, "rekey", t.old != nil)
	return nil
}

// fillChildAddrs copies the IKE SA's addresses and NAT-T state into c.
func (s *ikeSA) fillChildAddrs(c *child) {
	c.sa.Local, c.sa.Remote = s.local.Addr().Unmap(), s.remote.Addr().Unmap()
	if la := s.natAddr().Addr(); la.IsValid() {
		c.sa.Local = la.Unmap()
	}
	c.sa.LocalPort, c.sa.RemotePort = s.local.Port(), s.remote.Port()
	c.sa.Encap = nil
	if s.natLocal || s.natRemote {
		c.sa.Encap = &ike.UDPEncap{LocalPort: s.local.Port(), RemotePort: s.remote.Port(), LocalBehindNAT: s.natLocal, RemoteBehindNAT: s.natRemote}
	}
}

func (s *ikeSA) findChild(c *child) int {
	for i, x := range s.children {
		if x == c {
			return i
		}
	}
	return -1
}

func (s *ikeSA) childByOutSPI(spi uint32) *child {
	for _, c := range s.children {
		if c.sa.SPIOut == spi {
			return c
		}
	}
	return nil
}

// deleteChildLocally removes c from the SA and the sink, wiping its keys.
func (s *ikeSA) deleteChildLocally(now time.Time, c *child, reason string) {
	if i := s.findChild(c); i >= 0 {
		s.children = append(s.children[:i], s.children[i+1:]...)
	}
	s.e.log.Info("CHILD SA deleted", "connection", s.conn.Name, "spi_in", fmt.Sprintf("%08x", c.sa.SPIIn), "reason", reason)
	s.e.removeChild(c)
}

// childRekeyTask rekeys a CHILD SA (RFC 7296 §2.8) with make-before-break:
// the new SA is installed first, the old one deleted afterwards.
type childRekeyTask struct {
	childCreateTask
}

func (s *ikeSA) startChildRekey(now time.Time, c *child) {
	if c.state != childInstalled {
		return
	}
	c.state = childRekeying
	t := &childRekeyTask{childCreateTask{old: c, pfs: true}}
	c.rekey = t
	s.enqueue(now, &exchange{typ: CREATE_CHILD_SA, tasks: []task{t}})
}

func (t *childRekeyTask) buildI(s *ikeSA, now time.Time, out *[]Payload) error {
	old := t.old
	if old.state != childRekeying || s.findChild(old) < 0 {
		return errSkip
	}
	*out = append(*out, &Notify{Protocol: ProtoESP, SPI: binary.BigEndian.AppendUint32(nil, old.sa.SPIIn), NotifyType: REKEY_SA})
	return t.childCreateTask.buildI(s, now, out)
}

func (t *childRekeyTask) processI(s *ikeSA, now time.Time, in []Payload) error {
	old := t.old
	err := t.childCreateTask.processI(s, now, in)
	if errors.Is(err, errRetry) {
		return err
	}
	old.rekey = nil
	if err != nil {
		if s.findChild(old) >= 0 && old.state == childRekeying {
			old.state = childInstalled
			var ne *NotifyError
			if errors.As(err, &ne) && ne.Type == CHILD_SA_NOT_FOUND {
				s.deleteChildLocally(now, old, "peer does not know it")
				return err
			}
			old.rekeyAt = now.Add(10 * time.Second) // try again later
		}
		return err
	}
	old.ourNew = t.ch
	old.ourNonces = [2][]byte{t.ni, t.nr}
	s.resolveChildRekey(now, old)
	return nil
}

func (t *childRekeyTask) processR(s *ikeSA, now time.Time, in []Payload) error {
	n := findNotify(in, REKEY_SA)
	if n == nil || n.Protocol != ProtoESP || len(n.SPI) != 4 {
		t.errNote = notifyPayload(INVALID_SYNTAX, nil)
		return nil
	}
	old := s.childByOutSPI(binary.BigEndian.Uint32(n.SPI))
	if old == nil || old.state == childDeleting {
		t.errNote = &Notify{Protocol: ProtoESP, SPI: n.SPI, NotifyType: CHILD_SA_NOT_FOUND}
		return nil
	}
	t.old = old
	return t.childCreateTask.processR(s, now, in)
}

func (t *childRekeyTask) buildR(s *ikeSA, now time.Time, out *[]Payload) error {
	if t.errNote != nil {
		*out = append(*out, t.errNote)
		return nil
	}
	if err := t.childCreateTask.buildR(s, now, out); err != nil {
		return err
	}
	old := t.old
	if t.errNote != nil || t.ch == nil || !t.ch.installed {
		return nil
	}
	old.peerNew = t.ch
	old.peerNonce = [2][]byte{t.ni, t.nr}
	if old.state == childInstalled {
		old.state = childReplaced // the peer will delete it
		old.rekeyAt = time.Time{}
		return nil
	}
	s.resolveChildRekey(now, old)
	return nil
}

func lowest(n [2][]byte) []byte {
	if bytes.Compare(n[0], n[1]) < 0 {
		return n[0]
	}
	return n[1]
}

// resolveChildRekey finishes our rekey of old. Without a collision we delete
// old. With one (both sides rekeyed old, RFC 7296 §2.8.1), the new SA created
// with the lowest of the four nonces is redundant and deleted by the side
// that created it; the other side deletes old.
func (s *ikeSA) resolveChildRekey(now time.Time, old *child) {
	if old.ourNew == nil {
		return
	}
	if old.peerNew == nil {
		if old.state == childRekeying {
			old.state = childReplaced
			old.rekeyAt = time.Time{}
			s.queueDeleteChild(now, old)
		}
		return
	}
	if old.state == childDeleting {
		return // already resolved
	}
	old.state = childReplaced
	old.rekeyAt = time.Time{}
	if bytes.Compare(lowest(old.ourNonces), lowest(old.peerNonce)) < 0 {
		s.e.log.Info("CHILD SA rekey collision: ours is redundant", "connection", s.conn.Name, "spi_in", fmt.Sprintf("%08x", old.ourNew.sa.SPIIn))
		s.queueDeleteChild(now, old.ourNew)
		return
	}
	s.e.log.Info("CHILD SA rekey collision: ours survives", "connection", s.conn.Name)
	s.queueDeleteChild(now, old)
}
