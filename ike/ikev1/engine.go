package ikev1

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/bpfvpn/bpfvpn/ike"
	"github.com/bpfvpn/bpfvpn/ike/ikev1/isakmp"
	"github.com/bpfvpn/bpfvpn/ike/suite"
)

// Options tune the engine; zero values select the defaults.
type Options struct {
	// Logger receives protocol events (never key material).
	Logger *slog.Logger
	// Rand is the randomness source (cookies, nonces, SPIs, DH values).
	Rand io.Reader
	// RetransmitBase is the first retransmission delay (default 2 s); it
	// doubles per try up to RetransmitTries sends (default 6).
	RetransmitBase  time.Duration
	RetransmitTries int
	// MaxHalfOpen bounds phase-1 SAs that are not established (default 10000).
	MaxHalfOpen int
	// DeleteDelay is how long a rekeyed-away CHILD SA keeps carrying
	// inbound traffic before it is deleted (default 5 s).
	DeleteDelay time.Duration
	// NoInitialContact suppresses INITIAL-CONTACT (load generators that
	// open many SAs to one responder).
	NoInitialContact bool
}

type cookiePair [16]byte

func pairOf(i, r [8]byte) (c cookiePair) {
	copy(c[:8], i[:])
	copy(c[8:], r[:])
	return c
}

type halfOpenKey struct {
	cky    [8]byte
	remote netip.AddrPort
}

// peerState is one configured gateway and what it has negotiated.
type peerState struct {
	cfg      Peer
	children map[uint32]*child // by inbound SPI
	// wantUp is set while the tunnel should be kept up (Initiate, or
	// Immediately).
	wantUp bool
	// lastErr is the last negotiation failure (LastError).
	lastErr error
}

// Engine is the IKEv1 engine. It implements ike.Engine.
type Engine struct {
	mu    sync.Mutex
	log   *slog.Logger
	rand  io.Reader
	send  ike.Sender
	sink  ike.SASink
	opts  Options
	peers []*peerState

	byCookies map[cookiePair]*phase1
	// initWait holds initiator SAs before the responder cookie is known.
	initWait map[[8]byte]*phase1
	// halfOpen finds responder SAs by the initiator cookie for
	// retransmitted first messages.
	halfOpen  map[halfOpenKey]*phase1
	nHalfOpen int
	spis      map[uint32]*child
	timers    timerHeap
	nextIndex uint64
	// seq orders events of this engine (negotiation starts, phase-1
	// establishment, CHILD SA installation) for INITIAL-CONTACT.
	seq uint64
	// newKE creates Diffie-Hellman state (tests substitute a
	// deterministic one to replay exchanges).
	newKE func(suite.DHGroup) (suite.KeyExchange, error)
}

var _ ike.Engine = (*Engine)(nil)

// New returns an engine for peers. It validates the configuration and logs
// a warning for every weak algorithm that was configured.
func New(peers []Peer, send ike.Sender, sink ike.SASink, opts Options) (*Engine, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.RetransmitBase <= 0 {
		opts.RetransmitBase = 2 * time.Second
	}
	if opts.RetransmitTries <= 0 {
		opts.RetransmitTries = 6
	}
	if opts.MaxHalfOpen <= 0 {
		opts.MaxHalfOpen = 10000
	}
	if opts.DeleteDelay <= 0 {
		opts.DeleteDelay = 5 * time.Second
	}
	if sink == nil {
		sink = ike.NopSink{}
	}
	e := &Engine{
		log: opts.Logger.With("ike", "v1"), rand: opts.Rand, send: send, sink: sink, opts: opts,
		byCookies: map[cookiePair]*phase1{}, initWait: map[[8]byte]*phase1{},
		halfOpen: map[halfOpenKey]*phase1{}, spis: map[uint32]*child{},
		newKE: suite.NewKeyExchange,
	}
	for _, p := range peers {
		if err := p.Validate(); err != nil {
			return nil, err
		}
		for _, w := range p.Warnings() {
			e.log.Warn("weak algorithm configured", "gateway", p.Name, "warning", w)
		}
		p.PSK = append([]byte(nil), p.PSK...)
		e.peers = append(e.peers, &peerState{cfg: p, children: map[uint32]*child{}})
	}
	return e, nil
}

// HandleDatagram implements ike.Engine.
func (e *Engine) HandleDatagram(now time.Time, d ike.Datagram) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.runTimers(now)
	m, err := isakmp.Parse(d.Data)
	if err != nil {
		e.log.Debug("dropped malformed ISAKMP datagram", "from", d.Remote, "err", err)
		return
	}
	// A responder's Diffie-Hellman runs without the lock.
	var pre *dhJob
	if job := e.prepareDH(d, m); job != nil {
		newKE := e.newKE
		e.mu.Unlock()
		job.run(newKE)
		e.mu.Lock()
		pre = job
		defer func() {
			if !pre.used {
				pre.wipe()
			}
		}()
	}
	switch m.Header.Exchange {
	case isakmp.ExchangeMain:
		e.handleMain(now, d, m, pre)
	case isakmp.ExchangeQuick:
		e.handleQuick(now, d, m)
	case isakmp.ExchangeInformational:
		e.handleInformational(now, d, m)
	case isakmp.ExchangeAggressive:
		e.refuseAggressive(d, m)
	default:
		e.log.Info("dropped unsupported ISAKMP exchange", "from", d.Remote, "exchange", m.Header.Exchange)
	}
}

// Tick implements ike.Engine.
func (e *Engine) Tick(now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.runTimers(now)
}

// NextTimer implements ike.Engine.
func (e *Engine) NextTimer() (time.Time, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.timers) == 0 {
		return time.Time{}, false
	}
	return e.timers[0].at, true
}

// Initiate starts Main Mode and Quick Mode towards the named gateway unless
// an SA is already up or being negotiated, and keeps the tunnel up.
func (e *Engine) Initiate(now time.Time, gateway string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.runTimers(now)
	ps := e.peer(gateway)
	if ps == nil {
		return fmt.Errorf("initiate %s: no such IKEv1 gateway", gateway)
	}
	if !ps.cfg.Remote.IsValid() {
		return fmt.Errorf("initiate %s: gateway has no remote address", gateway)
	}
	ps.wantUp = true
	e.ensureUp(now, ps)
	return nil
}

func (e *Engine) peer(name string) *peerState {
	for _, p := range e.peers {
		if p.cfg.Name == name {
			return p
		}
	}
	return nil
}

// peerFor finds the gateway for a Main Mode initiator at remote: an exact
// address match first, then a gateway without a remote address.
func (e *Engine) peerFor(local, remote netip.Addr) *peerState {
	var wild *peerState
	for _, p := range e.peers {
		if p.cfg.Local.IsValid() && p.cfg.Local != local && !local.IsUnspecified() {
			continue
		}
		if p.cfg.Remote == remote {
			return p
		}
		if !p.cfg.Remote.IsValid() && wild == nil {
			wild = p
		}
	}
	return wild
}

func (e *Engine) phase1sOf(ps *peerState) []*phase1 {
	var out []*phase1
	seen := map[*phase1]bool{}
	for _, p := range e.byCookies {
		if p.peer == ps && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, p := range e.initWait {
		if p.peer == ps && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// bestPhase1 returns the established phase-1 SA of ps to negotiate over
// (the newest of those the peer is known to hold, else the newest), or
// one this end initiates that is in negotiation (established == false),
// or nil.
func (e *Engine) bestPhase1(ps *peerState) (p1 *phase1, established bool) {
	var nego *phase1
	for _, p := range e.phase1sOf(ps) {
		switch p.state {
		case p1Established:
			if p1 == nil || p.confirmed != p1.confirmed && p.confirmed || p.confirmed == p1.confirmed && p.estSeq > p1.estSeq {
				p1 = p
			}
		case p1Deleted:
		default:
			if p.role == ike.Initiator {
				nego = p
			}
		}
	}
	if p1 != nil {
		return p1, true
	}
	return nego, false
}

// ensureUp makes sure every proxy ID of ps has a CHILD SA or a negotiation
// under way, starting Main Mode if needed.
func (e *Engine) ensureUp(now time.Time, ps *peerState) {
	if !ps.cfg.Remote.IsValid() {
		return
	}
	p1, up := e.bestPhase1(ps)
	if p1 == nil {
		p1 = e.startMain(now, ps, nil)
		if p1 == nil {
			return
		}
	}
	for i := range ps.cfg.proxyIDs() {
		if ps.hasChildFor(i) || e.quickBusy(ps, i) {
			continue
		}
		if up {
			p1.startQuick(now, i, nil)
		} else {
			p1.queueQuick(i)
		}
	}
}

func (e *Engine) random(b []byte) {
	if _, err := io.ReadFull(e.rand, b); err != nil {
		panic(fmt.Sprintf("ikev1: randomness source failed: %v", err))
	}
}

func (e *Engine) randomUint32() uint32 {
	var b [4]byte
	e.random(b[:])
	return binary.BigEndian.Uint32(b[:])
}

// newSPI returns an unused inbound SPI above the reserved range.
func (e *Engine) newSPI() uint32 {
	for {
		s := e.randomUint32()
		if s < 256 {
			continue
		}
		if _, used := e.spis[s]; !used {
			return s
		}
	}
}

func (e *Engine) newIndex() uint64 {
	e.nextIndex++
	return e.nextIndex
}

// nextSeq returns the next value of the engine's event order.
func (e *Engine) nextSeq() uint64 {
	e.seq++
	return e.seq
}

func (e *Engine) transmit(local, remote netip.AddrPort, b []byte) {
	if err := e.send.Send(ike.Datagram{Local: local, Remote: remote, Data: b}); err != nil {
		e.log.Debug("send failed", "to", remote, "err", err)
	}
}

// refuseAggressive answers an Aggressive Mode request with an unprotected
// NO-PROPOSAL-CHOSEN notification: Aggressive Mode with PSK exposes a hash
// an eavesdropper can attack offline.
func (e *Engine) refuseAggressive(d ike.Datagram, m isakmp.Message) {
	e.log.Warn("refused IKEv1 Aggressive Mode (only Main Mode is supported)", "from", d.Remote)
	if m.Header.Flags&isakmp.FlagEncryption != 0 || m.Header.ResponderCookie != ([8]byte{}) {
		return
	}
	var ckyR [8]byte
	e.random(ckyR[:])
	h := isakmp.Header{InitiatorCookie: m.Header.InitiatorCookie, ResponderCookie: ckyR, Exchange: isakmp.ExchangeInformational}
	b := isakmp.Encode(h, []isakmp.Payload{&isakmp.Notify{DOI: isakmp.DOIIPsec, Protocol: isakmp.ProtoISAKMP, NotifyType: isakmp.NotifyNoProposalChosen}})
	e.transmit(d.Local, d.Remote, b)
}

// digest identifies a received datagram for duplicate detection.
func digest(b []byte) [32]byte { return sha256.Sum256(b) }

// retransmitter resends the last message of an exchange with exponential
// back-off until stopped.
type retransmitter struct {
	e      *Engine
	data   []byte
	local  netip.AddrPort
	remote netip.AddrPort
	tries  int
	t      *timer
	// onGiveUp runs when the last try went unanswered.
	onGiveUp func(now time.Time)
	// stats counts what is sent (the phase-1 SA's IKE traffic).
	stats *ike.Stats
}

func (r *retransmitter) send() {
	r.e.transmit(r.local, r.remote, r.data)
	if r.stats != nil {
		r.stats.OutBytes += uint64(len(r.data))
		r.stats.OutPackets++
	}
}

func (r *retransmitter) start(now time.Time, local, remote netip.AddrPort, data []byte, expectReply bool, giveUp func(time.Time)) {
	r.stop()
	r.data, r.local, r.remote, r.tries, r.onGiveUp = data, local, remote, 1, giveUp
	r.send()
	if expectReply {
		r.schedule(now)
	}
}

func (r *retransmitter) schedule(now time.Time) {
	d := r.e.opts.RetransmitBase << (r.tries - 1)
	r.t = r.e.at(now.Add(d), r.fire)
}

func (r *retransmitter) fire(now time.Time) {
	r.t = nil
	if r.tries >= r.e.opts.RetransmitTries {
		if r.onGiveUp != nil {
			r.onGiveUp(now)
		}
		return
	}
	r.tries++
	r.send()
	r.schedule(now)
}

// resend transmits the cached message once more (answer to a duplicate).
func (r *retransmitter) resend() {
	if r.data != nil {
		r.send()
	}
}

func (r *retransmitter) stop() {
	r.e.cancel(r.t)
	r.t = nil
}
