package ikev1

import (
	"bytes"
	"crypto/cipher"
	"crypto/hmac"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"net/netip"
	"time"

	"github.com/bpfvpn/bpfvpn/ike"
	"github.com/bpfvpn/bpfvpn/ike/ikev1/isakmp"
	"github.com/bpfvpn/bpfvpn/ike/suite"
)

type p1State uint8

const (
	p1MM1Sent p1State = iota // initiator
	p1MM3Sent
	p1MM5Sent
	p1MM2Sent // responder
	p1MM4Sent
	p1Established
	p1Deleted
)

const nonceLen = 32

// phase1 is one ISAKMP SA and its Main Mode negotiation.
type phase1 struct {
	e     *Engine
	peer  *peerState
	log   *slog.Logger
	index uint64
	role  ike.Role
	state p1State

	ckyI, ckyR    [8]byte
	local, remote netip.AddrPort

	prop     Phase1Proposal
	lifetime time.Duration
	natt     isakmp.NATTMethod
	peerDPD  bool
	localNAT bool
	peerNAT  bool

	saiB       []byte // SA payload body sent by the initiator
	ke         suite.KeyExchange
	ni, nr     []byte
	gxi, gxr   []byte
	keys       *phase1Keys
	hash       func() hash.Hash
	block      cipher.Block
	iv         []byte // running IV of the Main Mode exchange
	phase1IV   []byte // last CBC block of Main Mode
	remoteID   *isakmp.ID
	initialCon bool // INITIAL-CONTACT received

	halfKey  halfOpenKey
	lastRecv [32]byte
	// dhPending is the digest of a third message whose key exchange is
	// being computed outside the engine lock.
	dhPending [32]byte
	stats     ike.Stats // IKE traffic of this SA
	rt        retransmitter
	// replyTo is the digest of the message rt.data answers: a duplicate of
	// it is answered again, other duplicates are ignored.
	replyTo [32]byte

	established time.Time
	// startSeq and estSeq place the start of the negotiation and the
	// establishment in the engine's event order (Engine.nextSeq).
	startSeq, estSeq uint64
	// confirmed: the peer is known to hold the SA established (this end
	// received the sixth message, or a protected exchange over it). A
	// responder's SA is not: the sixth message may never have arrived.
	confirmed bool
	expireT   *timer
	rekeyT    *timer
	// replaces is the SA this one re-establishes.
	replaces *phase1

	quick  map[uint32]*quickEx
	queued []int // proxy-ID indexes waiting for the SA
	// early are Quick Mode messages that arrived before the SA was up.
	early      []ike.Datagram
	infoMIDs   map[uint32]bool
	dpd        dpdState
	lastHeard  time.Time
	keepaliveT *timer
}

func (e *Engine) newPhase1(ps *peerState, role ike.Role, local, remote netip.AddrPort) *phase1 {
	p := &phase1{e: e, peer: ps, role: role, index: e.newIndex(), local: local, remote: remote,
		quick: map[uint32]*quickEx{}, infoMIDs: map[uint32]bool{}, startSeq: e.nextSeq()}
	p.rt.e, p.rt.stats = e, &p.stats
	p.log = e.log.With("gateway", ps.cfg.Name, "sa", p.index)
	return p
}

// startMain begins Main Mode as initiator.
func (e *Engine) startMain(now time.Time, ps *peerState, replaces *phase1) *phase1 {
	if e.nHalfOpen >= e.opts.MaxHalfOpen {
		e.log.Warn("not initiating: too many half-open phase-1 SAs", "gateway", ps.cfg.Name)
		return nil
	}
	local := netip.AddrPortFrom(ps.cfg.Local, ps.cfg.localPort())
	remote := netip.AddrPortFrom(ps.cfg.Remote, ps.cfg.remotePort())
	p := e.newPhase1(ps, ike.Initiator, local, remote)
	p.replaces = replaces
	e.random(p.ckyI[:])
	e.initWait[p.ckyI] = p
	e.nHalfOpen++
	sa := phase1SA(ps.cfg.IKE)
	p.saiB = sa.AppendBody(nil)
	ps2 := []isakmp.Payload{sa}
	ps2 = append(ps2, p.vendorIDs(nil)...)
	b := isakmp.Encode(p.header(isakmp.ExchangeMain, 0, 0), ps2)
	p.log.Info("initiating Main Mode", "remote", remote, "proposals", len(ps.cfg.IKE))
	p.state = p1MM1Sent
	p.rt.start(now, p.local, p.remote, b, true, p.giveUp)
	p.notifyStatus()
	return p
}

// vendorIDs are the VIDs we send: NAT-T (all flavours as initiator, the
// one agreed as responder) and DPD.
func (p *phase1) vendorIDs(peerVIDs [][]byte) []isakmp.Payload {
	var out []isakmp.Payload
	if !p.peer.cfg.DisableNATT {
		if p.role == ike.Initiator {
			for _, v := range [][]byte{isakmp.VIDNATTRFC3947, isakmp.VIDNATTDraft03, isakmp.VIDNATTDraft02N} {
				out = append(out, isakmp.VendorID(v))
			}
		} else {
			switch p.natt {
			case isakmp.NATTRFC:
				out = append(out, isakmp.VendorID(isakmp.VIDNATTRFC3947))
			case isakmp.NATTDraft03:
				out = append(out, isakmp.VendorID(isakmp.VIDNATTDraft03))
			case isakmp.NATTDraft02:
				v := isakmp.VIDNATTDraft02N
				if isakmp.HasVendorID(peerVIDs, isakmp.VIDNATTDraft02) {
					v = isakmp.VIDNATTDraft02
				}
				out = append(out, isakmp.VendorID(v))
			}
		}
	}
	return append(out, isakmp.VendorID(isakmp.VIDDPD))
}

func (p *phase1) header(x isakmp.ExchangeType, flags isakmp.Flags, mid uint32) isakmp.Header {
	return isakmp.Header{InitiatorCookie: p.ckyI, ResponderCookie: p.ckyR, Exchange: x, Flags: flags, MessageID: mid}
}

func (p *phase1) giveUp(now time.Time) {
	p.log.Warn("phase-1 negotiation timed out: no answer from peer", "remote", p.remote, "state", p.state)
	p.delete(now, false, "negotiation timed out")
}

// handleMain dispatches a Main Mode message.
func (e *Engine) handleMain(now time.Time, d ike.Datagram, m isakmp.Message, pre *dhJob) {
	h := m.Header
	if h.MessageID != 0 {
		e.log.Debug("dropped Main Mode message with non-zero message ID", "from", d.Remote)
		return
	}
	if h.ResponderCookie == ([8]byte{}) {
		if p := e.halfOpen[halfOpenKey{h.InitiatorCookie, d.Remote}]; p != nil {
			if digest(d.Data) == p.lastRecv {
				p.rt.resend()
			}
			return
		}
		e.respondMM1(now, d, m)
		return
	}
	p := e.byCookies[pairOf(h.InitiatorCookie, h.ResponderCookie)]
	if p == nil {
		if w := e.initWait[h.InitiatorCookie]; w != nil && w.state == p1MM1Sent {
			p = w
		}
	}
	if p == nil {
		e.log.Debug("dropped Main Mode message for unknown SA", "from", d.Remote)
		return
	}
	p.countIn(d)
	dg := digest(d.Data)
	if dg == p.replyTo {
		p.rt.resend()
		return
	}
	if dg == p.lastRecv {
		return
	}
	var err error
	switch p.state {
	case p1MM1Sent:
		err = p.initiatorMM2(now, d, m)
	case p1MM3Sent:
		err = p.initiatorMM4(now, d, m)
	case p1MM5Sent:
		err = p.initiatorMM6(now, d, m)
	case p1MM2Sent:
		if pre != nil && pre.p != p {
			pre = nil
		}
		if pre == nil && p.dhPending == dg {
			return // another receiver is computing the key exchange for it
		}
		err = p.responderMM3(now, d, m, pre)
	case p1MM4Sent:
		err = p.responderMM5(now, d, m)
	default:
		return
	}
	if err != nil {
		p.log.Warn("Main Mode message rejected", "from", d.Remote, "state", p.state, "err", err)
		var f fatalErr
		if errors.As(err, &f) {
			p.delete(now, false, err.Error())
		}
		return
	}
	p.lastRecv = dg
	p.lastHeard = now
}

// fatalErr ends the negotiation (as opposed to a dropped forgery).
type fatalErr struct{ error }

func fatal(format string, args ...any) error { return fatalErr{fmt.Errorf(format, args...)} }

func (e *Engine) respondMM1(now time.Time, d ike.Datagram, m isakmp.Message) {
	ps := e.peerFor(d.Local.Addr(), d.Remote.Addr())
	if ps == nil {
		e.log.Info("Main Mode from unknown peer refused", "from", d.Remote)
		return
	}
	if e.nHalfOpen >= e.opts.MaxHalfOpen {
		e.log.Warn("Main Mode refused: too many half-open phase-1 SAs", "from", d.Remote)
		return
	}
	rsa, ok := isakmp.Find(m.Payloads, isakmp.PayloadSA)
	if !ok {
		e.log.Info("Main Mode request without SA payload", "from", d.Remote)
		return
	}
	sa, err := isakmp.ParseSA(rsa.Body)
	if err != nil {
		e.log.Info("Main Mode request with malformed SA", "from", d.Remote, "err", err)
		return
	}
	prop, tr, chosen, life, err := selectPhase1(sa, ps.cfg.IKE)
	if err != nil {
		e.log.Warn("phase-1 proposal mismatch", "gateway", ps.cfg.Name, "from", d.Remote, "err", err)
		h := isakmp.Header{InitiatorCookie: m.Header.InitiatorCookie, Exchange: isakmp.ExchangeInformational}
		e.random(h.ResponderCookie[:])
		e.transmit(d.Local, d.Remote, isakmp.Encode(h, []isakmp.Payload{&isakmp.Notify{DOI: isakmp.DOIIPsec, Protocol: isakmp.ProtoISAKMP, NotifyType: isakmp.NotifyNoProposalChosen}}))
		return
	}
	p := e.newPhase1(ps, ike.Responder, d.Local, d.Remote)
	p.ckyI = m.Header.InitiatorCookie
	e.random(p.ckyR[:])
	p.prop = chosen
	p.lifetime = min(orDur(life, DefaultIKELifetime), orDur(chosen.Lifetime, DefaultIKELifetime))
	p.saiB = append([]byte(nil), rsa.Body...)
	var vids [][]byte
	for _, v := range isakmp.FindAll(m.Payloads, isakmp.PayloadVendorID) {
		vids = append(vids, v.Body)
	}
	if !ps.cfg.DisableNATT {
		p.natt = isakmp.NATTFromVendorIDs(vids)
	}
	p.peerDPD = isakmp.HasVendorID(vids, isakmp.VIDDPD)
	if err := p.setupHash(); err != nil {
		p.log.Warn("phase-1 setup failed", "err", err)
		return
	}
	e.byCookies[pairOf(p.ckyI, p.ckyR)] = p
	p.halfKey = halfOpenKey{p.ckyI, d.Remote}
	e.halfOpen[p.halfKey] = p
	e.nHalfOpen++
	echo := &isakmp.SA{DOI: sa.DOI, Situation: sa.Situation, Proposals: []isakmp.Proposal{{
		Number: prop.Number, Protocol: prop.Protocol, SPI: prop.SPI, Transforms: []isakmp.Transform{tr}}}}
	out := append([]isakmp.Payload{echo}, p.vendorIDs(vids)...)
	p.log.Info("Main Mode request accepted", "remote", d.Remote, "proposal", chosen.String(), "nat-t", p.natt, "dpd", p.peerDPD)
	p.state = p1MM2Sent
	p.countIn(d)
	p.lastRecv = digest(d.Data)
	p.replyTo = p.lastRecv
	p.lastHeard = now
	p.rt.start(now, p.local, p.remote, isakmp.Encode(p.header(isakmp.ExchangeMain, 0, 0), out), false, nil)
	// A responder that hears nothing more forgets the SA.
	p.expireT = e.at(now.Add(p.halfOpenTimeout()), func(now time.Time) {
		if p.state != p1Established {
			p.log.Info("half-open phase-1 SA expired", "remote", p.remote)
			p.delete(now, false, "negotiation timed out")
		}
	})
	p.notifyStatus()
}

func (p *phase1) halfOpenTimeout() time.Duration {
	var total time.Duration
	for i := 0; i < p.e.opts.RetransmitTries; i++ {
		total += p.e.opts.RetransmitBase << i
	}
	return total
}

// setupHash prepares the PRF and hash of the chosen proposal.
func (p *phase1) setupHash() error {
	id, ok := p.prop.Hash.prfID()
	if !ok {
		return fmt.Errorf("hash %v unsupported", p.prop.Hash)
	}
	prf, err := id.PRF()
	if err != nil {
		return err
	}
	p.hash = prf.Hash()
	p.keys = &phase1Keys{prf: prf}
	return nil
}

func (p *phase1) initiatorMM2(now time.Time, d ike.Datagram, m isakmp.Message) error {
	sa, err := findSA(m.Payloads)
	if err != nil {
		return err
	}
	if len(sa.Proposals) != 1 || len(sa.Proposals[0].Transforms) != 1 {
		return fatal("responder chose %d proposals", len(sa.Proposals))
	}
	a, err := parsePhase1Transform(sa.Proposals[0].Transforms[0])
	if err != nil {
		return fatal("responder's choice: %w", err)
	}
	found := false
	for _, x := range p.peer.cfg.IKE {
		if a.matches(x) {
			p.prop, found = x, true
			break
		}
	}
	if !found {
		return fatal("responder chose %v, which was not offered", a.prop)
	}
	p.lifetime = min(orDur(a.lifetime, DefaultIKELifetime), orDur(p.prop.Lifetime, DefaultIKELifetime))
	var vids [][]byte
	for _, v := range isakmp.FindAll(m.Payloads, isakmp.PayloadVendorID) {
		vids = append(vids, v.Body)
	}
	if !p.peer.cfg.DisableNATT {
		p.natt = isakmp.NATTFromVendorIDs(vids)
	}
	p.peerDPD = isakmp.HasVendorID(vids, isakmp.VIDDPD)
	if err := p.setupHash(); err != nil {
		return fatal("%w", err)
	}
	p.ckyR = m.Header.ResponderCookie
	delete(p.e.initWait, p.ckyI)
	p.e.byCookies[pairOf(p.ckyI, p.ckyR)] = p
	ke, err := p.e.newKE(p.prop.Group)
	if err != nil {
		return fatal("%w", err)
	}
	p.ke = ke
	p.gxi = ke.PublicValue()
	p.ni = make([]byte, nonceLen)
	p.e.random(p.ni)
	out := []isakmp.Payload{isakmp.KE(p.gxi), isakmp.Nonce(p.ni)}
	out = append(out, p.natdPayloads()...)
	p.log.Debug("Main Mode proposal agreed", "proposal", p.prop.String(), "nat-t", p.natt, "dpd", p.peerDPD)
	p.state = p1MM3Sent
	p.rt.start(now, p.local, p.remote, isakmp.Encode(p.header(isakmp.ExchangeMain, 0, 0), out), true, p.giveUp)
	return nil
}

func (p *phase1) natdHash(a netip.AddrPort) []byte {
	h := p.hash()
	h.Write(p.ckyI[:])
	h.Write(p.ckyR[:])
	h.Write(a.Addr().Unmap().AsSlice())
	var port [2]byte
	binary.BigEndian.PutUint16(port[:], a.Port())
	h.Write(port[:])
	return h.Sum(nil)
}

// natdPayloads are NAT-D(remote as seen here), NAT-D(local).
func (p *phase1) natdPayloads() []isakmp.Payload {
	if p.natt == isakmp.NATTNone {
		return nil
	}
	t := p.natt.NATDType()
	return []isakmp.Payload{isakmp.NATD(t, p.natdHash(p.remote)), isakmp.NATD(t, p.natdHash(p.local))}
}

// detectNAT compares the peer's NAT-D payloads with the addresses of d.
func (p *phase1) detectNAT(d ike.Datagram, ps []isakmp.RawPayload) {
	if p.natt == isakmp.NATTNone {
		return
	}
	natd := isakmp.FindAll(ps, p.natt.NATDType())
	if len(natd) < 2 {
		return
	}
	p.localNAT = !bytes.Equal(natd[0].Body, p.natdHash(d.Local))
	p.peerNAT = true
	want := p.natdHash(d.Remote)
	for _, n := range natd[1:] {
		if bytes.Equal(n.Body, want) {
			p.peerNAT = false
		}
	}
	if p.localNAT || p.peerNAT {
		p.log.Info("NAT detected", "local-behind-nat", p.localNAT, "remote-behind-nat", p.peerNAT)
	}
}

func (p *phase1) behindNAT() bool { return p.localNAT || p.peerNAT }

// keOf extracts and validates the KE and nonce payloads.
func (p *phase1) keAndNonce(ps []isakmp.RawPayload) (ke, nonce []byte, err error) {
	k, ok := isakmp.Find(ps, isakmp.PayloadKE)
	if !ok {
		return nil, nil, errors.New("no KE payload")
	}
	n, ok := isakmp.Find(ps, isakmp.PayloadNonce)
	if !ok {
		return nil, nil, errors.New("no NONCE payload")
	}
	if len(n.Body) < 8 || len(n.Body) > 256 {
		return nil, nil, fmt.Errorf("nonce of %d bytes", len(n.Body))
	}
	if len(k.Body) != p.prop.Group.PublicValueLen() {
		return nil, nil, fmt.Errorf("KE of %d bytes for %v", len(k.Body), p.prop.Group)
	}
	return append([]byte(nil), k.Body...), append([]byte(nil), n.Body...), nil
}

// computeKeys derives SKEYID and friends and the first Main Mode IV.
func (p *phase1) computeKeys(peerKE []byte) error {
	gxy, err := p.ke.SharedSecret(peerKE)
	if err != nil {
		return err
	}
	return p.keysFrom(gxy)
}

// keysFrom derives the phase-1 keys from the shared secret g^xy (wiped).
func (p *phase1) keysFrom(gxy suite.Key) error {
	defer gxy.Wipe()
	p.ke.Wipe()
	prf := p.keys.prf
	p.keys = derivePhase1(prf, p.peer.cfg.PSK, p.ni, p.nr, gxy, p.ckyI, p.ckyR, p.prop.Encryption.KeyLen())
	c, err := p.prop.Encryption.New(p.keys.encKey)
	if err != nil {
		return err
	}
	p.block = c.Block()
	p.iv = hashIV(p.hash, p.block.BlockSize(), p.gxi, p.gxr)
	return nil
}

func (p *phase1) responderMM3(now time.Time, d ike.Datagram, m isakmp.Message, pre *dhJob) error {
	if m.Header.Flags&isakmp.FlagEncryption != 0 {
		return errors.New("encrypted third message")
	}
	gxi, ni, err := p.keAndNonce(m.Payloads)
	if err != nil {
		return err
	}
	if pre == nil {
		pre = &dhJob{group: p.prop.Group, peer: gxi}
		pre.run(p.e.newKE)
	}
	if pre.err != nil {
		return fatal("key exchange: %w", pre.err)
	}
	pre.used = true
	p.ke, p.gxi, p.ni = pre.ke, gxi, ni
	p.gxr = pre.ke.PublicValue()
	p.nr = make([]byte, nonceLen)
	p.e.random(p.nr)
	if err := p.keysFrom(pre.shared); err != nil {
		return fatal("key exchange: %w", err)
	}
	p.detectNAT(d, m.Payloads)
	out := []isakmp.Payload{isakmp.KE(p.gxr), isakmp.Nonce(p.nr)}
	out = append(out, p.natdPayloads()...)
	p.state = p1MM4Sent
	p.replyTo = digest(d.Data)
	p.rt.start(now, p.local, p.remote, isakmp.Encode(p.header(isakmp.ExchangeMain, 0, 0), out), false, nil)
	return nil
}

func (p *phase1) initiatorMM4(now time.Time, d ike.Datagram, m isakmp.Message) error {
	if m.Header.Flags&isakmp.FlagEncryption != 0 {
		return errors.New("encrypted fourth message")
	}
	gxr, nr, err := p.keAndNonce(m.Payloads)
	if err != nil {
		return err
	}
	p.gxr, p.nr = gxr, nr
	if err := p.computeKeys(gxr); err != nil {
		return fatal("key exchange: %w", err)
	}
	p.detectNAT(d, m.Payloads)
	if p.behindNAT() {
		// RFC 3947 §4: float to port 4500 for the rest of the negotiation.
		p.local = netip.AddrPortFrom(p.local.Addr(), p.peer.cfg.localNATTPort())
		p.remote = netip.AddrPortFrom(p.remote.Addr(), p.peer.cfg.remoteNATTPort())
	}
	id := p.localID()
	idB := id.AppendBody(nil)
	hashI := p.authHash(true, idB)
	out := []isakmp.Payload{id, isakmp.Hash(hashI)}
	// INITIAL-CONTACT tells the peer that this end holds nothing of it:
	// only when no other phase-1 SA is up and no CHILD SA exists (in
	// IKEv1 CHILD SAs outlive the phase-1 SA that made them).
	if !p.e.opts.NoInitialContact && p.replaces == nil && !p.e.hasEstablished(p.peer, p) && len(p.peer.children) == 0 {
		out = append(out, &isakmp.Notify{DOI: isakmp.DOIIPsec, Protocol: isakmp.ProtoISAKMP,
			SPI: p.cookieSPI(), NotifyType: isakmp.NotifyInitialContact})
	}
	p.state = p1MM5Sent
	p.rt.start(now, p.local, p.remote, p.encryptMM(out), true, p.giveUp)
	return nil
}

func (e *Engine) hasEstablished(ps *peerState, except *phase1) bool {
	for _, p := range e.phase1sOf(ps) {
		if p != except && p.state == p1Established {
			return true
		}
	}
	return false
}

func (p *phase1) cookieSPI() []byte {
	c := pairOf(p.ckyI, p.ckyR)
	return c[:]
}

func (p *phase1) localID() *isakmp.ID {
	if p.peer.cfg.LocalID != nil {
		return p.peer.cfg.LocalID
	}
	return isakmp.AddrID(p.peer.cfg.Local)
}

// authHash computes HASH_I (initiator == true) or HASH_R.
func (p *phase1) authHash(initiator bool, idB []byte) []byte {
	if initiator {
		return p.keys.prf.Compute(p.keys.skeyid, p.gxi, p.gxr, p.ckyI[:], p.ckyR[:], p.saiB, idB)
	}
	return p.keys.prf.Compute(p.keys.skeyid, p.gxr, p.gxi, p.ckyR[:], p.ckyI[:], p.saiB, idB)
}

// encryptMM encodes and encrypts a Main Mode message with the running IV.
func (p *phase1) encryptMM(ps []isakmp.Payload) []byte {
	h := p.header(isakmp.ExchangeMain, isakmp.FlagEncryption, 0)
	h.NextPayload = isakmp.FirstType(ps)
	plain := isakmp.AppendChain(nil, ps)
	ct, next := encryptCBC(p.block, p.iv, plain)
	p.iv = next
	b := h.Append(make([]byte, 0, isakmp.HeaderLen+len(ct)))
	b = append(b, ct...)
	isakmp.SetLength(b)
	return b
}

// decrypt decrypts the body of m with iv and parses its payloads. It
// returns the payloads, the plaintext, the bytes after the first payload
// (for Quick Mode and informational hashes) and the IV that follows.
func (p *phase1) decrypt(m isakmp.Message, iv []byte) (ps []isakmp.RawPayload, afterFirst []byte, next []byte, err error) {
	if m.Header.Flags&isakmp.FlagEncryption == 0 {
		return nil, nil, nil, errors.New("message not encrypted")
	}
	if p.block == nil {
		return nil, nil, nil, errors.New("no keys yet")
	}
	plain, next, err := decryptCBC(p.block, iv, m.Body)
	if err != nil {
		return nil, nil, nil, err
	}
	ps, rest, err := isakmp.ParseChain(m.Header.NextPayload, plain)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("decrypted payloads (wrong pre-shared key?): %w", err)
	}
	if len(ps) > 0 {
		afterFirst = plain[len(ps[0].Raw) : len(plain)-len(rest)]
	}
	return ps, afterFirst, next, nil
}

func (p *phase1) checkID(ps []isakmp.RawPayload) (*isakmp.ID, []byte, error) {
	rid, ok := isakmp.Find(ps, isakmp.PayloadID)
	if !ok {
		return nil, nil, errors.New("no ID payload")
	}
	id, err := isakmp.ParseID(rid.Body)
	if err != nil {
		return nil, nil, err
	}
	if want := p.peer.cfg.RemoteID; want != nil && (want.IDType != id.IDType || !bytes.Equal(want.Data, id.Data)) {
		return nil, nil, fatal("peer identity %s does not match configured %s", id, want)
	}
	return &isakmp.ID{IDType: id.IDType, Protocol: id.Protocol, Port: id.Port, Data: append([]byte(nil), id.Data...)},
		append([]byte(nil), rid.Body...), nil
}

func (p *phase1) verifyHash(ps []isakmp.RawPayload, initiator bool, idB []byte) error {
	hp, ok := isakmp.Find(ps, isakmp.PayloadHash)
	if !ok {
		return errors.New("no HASH payload")
	}
	if !hmac.Equal(hp.Body, p.authHash(initiator, idB)) {
		return fatal("authentication failed: HASH mismatch (pre-shared keys differ?)")
	}
	return nil
}

func (p *phase1) responderMM5(now time.Time, d ike.Datagram, m isakmp.Message) error {
	ps, _, next, err := p.decrypt(m, p.iv)
	if err != nil {
		return fatal("fifth message: %w", err)
	}
	id, idB, err := p.checkID(ps)
	if err != nil {
		return err
	}
	if err := p.verifyHash(ps, true, idB); err != nil {
		return err
	}
	p.iv = next
	p.remoteID = id
	for _, n := range isakmp.FindAll(ps, isakmp.PayloadNotify) {
		if nn, err := isakmp.ParseNotify(n.Body); err == nil && nn.NotifyType == isakmp.NotifyInitialContact {
			p.initialCon = true
		}
	}
	// The peer may have floated to port 4500 (or a NAT re-mapped it).
	p.local, p.remote = d.Local, d.Remote
	myID := p.localID()
	out := []isakmp.Payload{myID, isakmp.Hash(p.authHash(false, myID.AppendBody(nil)))}
	p.replyTo = digest(d.Data)
	p.rt.start(now, p.local, p.remote, p.encryptMM(out), false, nil)
	p.phase1IV = append([]byte(nil), p.iv...)
	p.lastRecv = digest(d.Data)
	p.establish(now)
	return nil
}

func (p *phase1) initiatorMM6(now time.Time, d ike.Datagram, m isakmp.Message) error {
	ps, _, next, err := p.decrypt(m, p.iv)
	if err != nil {
		return fatal("sixth message: %w", err)
	}
	id, idB, err := p.checkID(ps)
	if err != nil {
		return err
	}
	if err := p.verifyHash(ps, false, idB); err != nil {
		return err
	}
	p.iv = next
	p.phase1IV = append([]byte(nil), next...)
	p.remoteID = id
	p.rt.stop()
	p.lastRecv = digest(d.Data)
	p.establish(now)
	return nil
}

// establish finishes Main Mode on either side.
func (p *phase1) establish(now time.Time) {
	p.state = p1Established
	p.established = now
	p.estSeq = p.e.nextSeq()
	p.confirmed = p.role == ike.Initiator
	p.peer.lastErr = nil
	p.lastHeard = now
	p.e.nHalfOpen--
	p.e.cancel(p.expireT)
	if p.e.halfOpen[p.halfKey] == p {
		delete(p.e.halfOpen, p.halfKey)
	}
	p.log.Info("phase-1 SA established", "role", p.role, "remote", p.remote, "peer-id", p.remoteID.String(),
		"proposal", p.prop.String(), "lifetime", p.lifetime, "nat", p.behindNAT(), "dpd", p.peerDPD)
	p.expireT = p.e.at(now.Add(p.lifetime), func(now time.Time) {
		p.log.Info("phase-1 SA lifetime expired")
		p.delete(now, true, "lifetime expired")
	})
	// Re-establish before expiry (make-before-break) when this end
	// keeps the tunnel up; the original initiator goes first.
	margin := p.lifetime / 10
	if p.role == ike.Responder {
		margin = p.lifetime / 20
	}
	jitter := time.Duration(p.e.randomUint32()%1000) * margin / 4000
	p.rekeyT = p.e.at(now.Add(p.lifetime-margin-jitter), p.reestablish)
	if p.initialCon {
		p.e.initialContact(now, p)
	}
	if old := p.replaces; old != nil && old.state == p1Established {
		old.delete(now, true, reasonReestablished)
	}
	p.replaces = nil
	p.startDPD(now)
	p.startKeepalive(now)
	p.notifyStatus()
	p.handleEarly(now)
	if p.state != p1Established {
		return
	}
	p.startQueued(now, p)
	// A rekey of a CHILD SA may have been waiting for a phase-1 SA.
	for _, c := range p.peer.childList() {
		if c.needsRekey && !c.rekeying {
			p.startQuick(now, c.proxyIdx, c)
		}
	}
}

func (p *phase1) reestablish(now time.Time) {
	p.rekeyT = nil
	if p.state != p1Established {
		return
	}
	if !p.peer.cfg.Remote.IsValid() || !(p.peer.wantUp || p.peer.cfg.Immediately || (p.role == ike.Initiator && len(p.peer.children) > 0)) {
		return
	}
	for _, q := range p.e.phase1sOf(p.peer) {
		if q != p && (q.replaces == p || q.state == p1Established && q.estSeq > p.estSeq) {
			return
		}
	}
	p.log.Info("re-establishing phase-1 SA before expiry")
	p.e.startMain(now, p.peer, p)
}

// initialContact removes the SAs with the peer of p that the peer lost
// (it rebooted; RFC 2407 §4.6.3.3): the phase-1 and CHILD SAs that were
// established here before the negotiation of p began. The peer sends
// INITIAL-CONTACT only while it holds no SA with this end, and an SA is up
// at the peer before, or one message after, it is up here; so whatever came
// up here before p began is gone at the peer. SAs that came up later (both
// ends initiated at once), negotiations in progress and p itself stay.
func (e *Engine) initialContact(now time.Time, p *phase1) {
	for _, q := range e.phase1sOf(p.peer) {
		if q != p && q.state == p1Established && q.estSeq < p.startSeq && q.remote.Addr() == p.remote.Addr() {
			q.log.Info("phase-1 SA deleted after INITIAL-CONTACT", "new-sa", p.index)
			q.delete(now, false, "peer sent INITIAL-CONTACT")
		}
	}
	for _, c := range p.peer.childList() {
		if c.seq < p.startSeq && c.sa.Remote == p.remote.Addr() {
			e.deleteChild(now, c, false, "peer sent INITIAL-CONTACT")
		}
	}
}

// delete removes the SA; notify sends a delete payload to the peer first.
func (p *phase1) delete(now time.Time, notify bool, reason string) {
	if p.state == p1Deleted {
		return
	}
	if notify && p.state == p1Established {
		p.sendInformational(now, []isakmp.Payload{&isakmp.Delete{DOI: isakmp.DOIIPsec, Protocol: isakmp.ProtoISAKMP,
			SPISize: 16, SPIs: [][]byte{p.cookieSPI()}}})
	}
	if p.state != p1Established {
		p.e.nHalfOpen--
	}
	prev := p.state
	if prev != p1Established && reason != reasonTerminated {
		p.peer.fail("phase 1: " + reason)
	}
	p.state = p1Deleted
	p.rt.stop()
	p.e.cancel(p.expireT)
	p.e.cancel(p.rekeyT)
	p.stopDPD()
	p.e.cancel(p.keepaliveT)
	for _, q := range p.quick {
		q.stop()
	}
	delete(p.e.byCookies, pairOf(p.ckyI, p.ckyR))
	if p.e.initWait[p.ckyI] == p {
		delete(p.e.initWait, p.ckyI)
	}
	if p.e.halfOpen[p.halfKey] == p {
		delete(p.e.halfOpen, p.halfKey)
	}
	if len(p.queued) > 0 {
		// This SA never came up: what waited for it goes over another.
		if best, up := p.e.bestPhase1(p.peer); up {
			best.startQueued(now, p)
		}
	}
	if p.keys != nil {
		p.keys.wipe()
	}
	if p.ke != nil {
		p.ke.Wipe()
	}
	if prev == p1Established {
		p.log.Info("phase-1 SA deleted", "reason", reason)
	}
	st := p.status(now)
	st.State = ike.StateDown
	st.Reason = reason
	p.e.sink.IKESAChanged(st)
	// A tunnel that must stay up is negotiated again; failed negotiations
	// retry after a pause.
	if (p.peer.wantUp || p.peer.cfg.Immediately) && p.replaces == nil && reason != reasonTerminated &&
		reason != reasonReestablished && reason != errDead.Error() {
		delay := time.Duration(0)
		if prev != p1Established {
			delay = 5 * p.e.opts.RetransmitBase
		}
		ps := p.peer
		p.e.at(now.Add(delay), func(now time.Time) {
			if ps.wantUp || ps.cfg.Immediately {
				if q, _ := p.e.bestPhase1(ps); q == nil {
					p.e.ensureUp(now, ps)
				}
			}
		})
	}
}

// startQueued runs over p the Quick Modes that waited for from to come up
// (from may be p). What waits for an SA this end initiates stays with it
// while both ends initiate: the peer holds that SA once it is up here, not
// necessarily the one it initiated itself.
func (p *phase1) startQueued(now time.Time, from *phase1) {
	queued := from.queued
	from.queued = nil
	for _, i := range queued {
		if !p.peer.hasChildFor(i) && !p.e.quickBusy(p.peer, i) {
			p.startQuick(now, i, nil)
		}
	}
}

// Reasons with special meaning for delete.
const (
	reasonTerminated    = "terminated"
	reasonReestablished = "re-established"
)

func (p *phase1) notifyStatus() {
	p.e.sink.IKESAChanged(p.status(time.Time{}))
}

func (p *phase1) status(now time.Time) ike.IKESAStatus {
	st := ike.IKESAStatus{
		Index: p.index, Gateway: p.peer.cfg.Name, Version: 1, Mode: "Main", Role: p.role,
		SPIi: binary.BigEndian.Uint64(p.ckyI[:]), SPIr: binary.BigEndian.Uint64(p.ckyR[:]),
		Local: p.local, Remote: p.remote, LocalID: p.localID().String(), Auth: "pre-shared-keys",
		Established: p.established, LifetimeSeconds: uint64(p.lifetime / time.Second),
		LocalBehindNAT: p.localNAT, RemoteBehindNAT: p.peerNAT, ChildSAs: len(p.peer.children),
		Stats: p.stats,
	}
	switch p.state {
	case p1Established:
		st.State = ike.StateEstablished
	case p1Deleted:
		st.State = ike.StateDown
	default:
		st.State = ike.StateConnecting
	}
	if p.remoteID != nil {
		st.RemoteID = p.remoteID.String()
	}
	if p.prop.Hash != 0 {
		st.Encryption = junosEncName(p.prop.Encryption)
		st.PRF = "hmac-" + p.prop.Hash.String()
		st.Integrity = st.PRF
		st.DHGroup = fmt.Sprintf("DH-group-%d", p.prop.Group)
	}
	if !now.IsZero() && !p.established.IsZero() {
		if left := p.established.Add(p.lifetime).Sub(now); left > 0 {
			st.RemainingSeconds = uint64(left / time.Second)
		}
	}
	return st
}

func junosEncName(e suite.Encr) string {
	switch e.ID {
	case suite.Encr3DES:
		return "3des-cbc"
	case suite.EncrAESCBC:
		return fmt.Sprintf("aes%d-cbc", e.KeyBits)
	case suite.EncrAESGCM16:
		return fmt.Sprintf("aes-gcm-%d", e.KeyBits)
	}
	return e.String()
}

// keepaliveInterval is the NAT-T keepalive period (RFC 3948 §2.3: 20 s
// is the usual choice).
const keepaliveInterval = 20 * time.Second

// startKeepalive sends NAT-T keepalives (one 0xFF byte) while this end is
// behind a NAT, so that the mapping outlives quiet periods.
func (p *phase1) startKeepalive(now time.Time) {
	if !p.localNAT {
		return
	}
	var tick func(time.Time)
	tick = func(now time.Time) {
		if p.state != p1Established {
			return
		}
		p.e.transmit(p.local, p.remote, []byte{0xff})
		p.keepaliveT = p.e.at(now.Add(keepaliveInterval), tick)
	}
	p.keepaliveT = p.e.at(now.Add(keepaliveInterval), tick)
}

func (p *phase1) countIn(d ike.Datagram) {
	p.stats.InBytes += uint64(len(d.Data))
	p.stats.InPackets++
}

// dhJob is a responder's Diffie-Hellman computation for a third Main Mode
// message, run outside the engine lock so that receivers on several
// goroutines use several cores.
type dhJob struct {
	p      *phase1
	group  suite.DHGroup
	peer   []byte
	ke     suite.KeyExchange
	shared suite.Key
	err    error
	// used: the result went into an SA (which owns and wipes it).
	used bool
}

func (j *dhJob) run(newKE func(suite.DHGroup) (suite.KeyExchange, error)) {
	j.ke, j.err = newKE(j.group)
	if j.err == nil {
		j.shared, j.err = j.ke.SharedSecret(j.peer)
	}
}

func (j *dhJob) wipe() {
	if j.ke != nil {
		j.ke.Wipe()
	}
	j.shared.Wipe()
}

// prepareDH returns a job when d is a fresh third Main Mode message for a
// responder SA (called with the lock held; the job runs without it).
func (e *Engine) prepareDH(d ike.Datagram, m isakmp.Message) *dhJob {
	h := m.Header
	if h.Exchange != isakmp.ExchangeMain || h.Flags&isakmp.FlagEncryption != 0 || h.ResponderCookie == ([8]byte{}) {
		return nil
	}
	p := e.byCookies[pairOf(h.InitiatorCookie, h.ResponderCookie)]
	if p == nil || p.state != p1MM2Sent {
		return nil
	}
	dg := digest(d.Data)
	if dg == p.replyTo || dg == p.lastRecv || dg == p.dhPending {
		return nil
	}
	gxi, _, err := p.keAndNonce(m.Payloads)
	if err != nil {
		return nil
	}
	p.dhPending = dg
	return &dhJob{p: p, group: p.prop.Group, peer: gxi}
}
