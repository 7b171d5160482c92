// Package ikev2 is the IKEv2 engine (RFC 7296): codec, exchanges as small
// tasks composed per exchange (one build/process pair per role, after
// strongSwan's task design), message-ID windows and retransmission, CHILD SA
// and IKE SA rekeying with the simultaneous-rekey rules, DPD, NAT-T, cookies
// and fragmentation. It owns no sockets: see ike.Engine.
package ikev2

import (
	"container/heap"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/bpfvpn/bpfvpn/ike"
	"github.com/bpfvpn/bpfvpn/ike/suite"
)

// NotifyError is an error notification sent or received, surfaced to the
// caller through LastError and logs.
type NotifyError struct {
	Type     NotifyType
	Exchange ExchangeType
	FromPeer bool
}

func (n *NotifyError) Error() string {
	dir := "sent"
	if n.FromPeer {
		dir = "received from peer"
	}
	return fmt.Sprintf("%v %s in %v", n.Type, dir, n.Exchange)
}

// Engine runs IKEv2 for a set of connections. It implements ike.Engine.
type Engine struct {
	mu        sync.Mutex
	cfg       Config
	log       *slog.Logger
	conns     []*Connection
	sas       map[uint64]*ikeSA // by our SPI
	initSeen  map[initKey]*ikeSA
	childSPIs map[uint32]*child
	halfOpen  int
	nextIndex uint64
	timers    timerHeap
	// COOKIE secrets (RFC 7296 §2.6): the current one and its predecessor,
	// rotated every cookieRotation; the cookie's first byte names the version.
	cookieSecret   [32]byte
	cookiePrev     [32]byte
	cookieVersion  uint8
	cookieRotateAt time.Time
	lastErr        map[string]error
	keMu           sync.Mutex // guards reusedKE (used outside mu)
	reusedKE       map[suite.DHGroup]reusedKE
}

type reusedKE struct {
	ke    suite.KeyExchange
	until time.Time
}

// keyExchange returns a key exchange for an IKE_SA_INIT: fresh, or the
// shared one when Config.KEReuse allows (shared=true: never wipe it).
func (e *Engine) keyExchange(now time.Time, g suite.DHGroup) (ke suite.KeyExchange, shared bool, err error) {
	if e.cfg.KEReuse <= 0 {
		ke, err = suite.NewKeyExchange(g)
		return ke, false, err
	}
	e.keMu.Lock()
	defer e.keMu.Unlock()
	if r, ok := e.reusedKE[g]; ok && now.Before(r.until) {
		return r.ke, true, nil
	}
	if ke, err = suite.NewKeyExchange(g); err != nil {
		return nil, false, err
	}
	if e.reusedKE == nil {
		e.reusedKE = map[suite.DHGroup]reusedKE{}
	}
	e.reusedKE[g] = reusedKE{ke: ke, until: now.Add(e.cfg.KEReuse)}
	return ke, true, nil
}

type initKey struct {
	spiI   uint64
	remote netip.AddrPort
}

var _ ike.Engine = (*Engine)(nil)

// New creates an engine.
func New(cfg Config) (*Engine, error) {
	if cfg.Sender == nil {
		return nil, errors.New("ikev2: no sender")
	}
	cfg.defaults()
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	e := &Engine{cfg: cfg, log: cfg.Log, sas: map[uint64]*ikeSA{}, initSeen: map[initKey]*ikeSA{},
		childSPIs: map[uint32]*child{}, lastErr: map[string]error{}}
	if _, err := io.ReadFull(cfg.Rand, e.cookieSecret[:]); err != nil {
		return nil, fmt.Errorf("ikev2: cookie secret: %w", err)
	}
	return e, nil
}

func (e *Engine) random(b []byte) {
	if _, err := io.ReadFull(e.cfg.Rand, b); err != nil {
		panic("ikev2: random source failed: " + err.Error())
	}
}

func (e *Engine) randomUint64() uint64 {
	var b [8]byte
	for {
		e.random(b[:])
		if v := binary.BigEndian.Uint64(b[:]); v != 0 {
			return v
		}
	}
}

// newIKESPI returns an unused non-zero SPI.
func (e *Engine) newIKESPI() uint64 {
	for {
		if v := e.randomUint64(); e.sas[v] == nil {
			return v
		}
	}
}

// newChildSPI reserves an unused inbound ESP SPI (>= 256, RFC 4303 §2.1).
func (e *Engine) newChildSPI(c *child) uint32 {
	var b [4]byte
	for {
		e.random(b[:])
		v := binary.BigEndian.Uint32(b[:])
		if v >= 256 && e.childSPIs[v] == nil {
			e.childSPIs[v] = c
			return v
		}
	}
}

func (e *Engine) nonce() []byte {
	n := make([]byte, 32)
	e.random(n)
	return n
}

// AddConnection adds or replaces a connection (by name). Existing SAs keep
// their old settings until they are rekeyed or re-established.
func (e *Engine) AddConnection(c Connection) error {
	if err := c.normalize(); err != nil {
		return err
	}
	for _, p := range c.IKEProposals {
		for _, g := range p.DH {
			if g.Weak() {
				e.log.Warn("weak DH group configured", "connection", c.Name, "group", g.String())
			}
		}
		for _, en := range p.Encryption {
			if en.Weak() {
				e.log.Warn("weak cipher configured", "connection", c.Name, "cipher", en.String())
			}
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, old := range e.conns {
		if old.Name == c.Name {
			e.conns[i] = &c
			return nil
		}
	}
	e.conns = append(e.conns, &c)
	return nil
}

// RemoveConnection deletes the connection and its SAs (the peer is told).
func (e *Engine) RemoveConnection(now time.Time, name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.terminate(now, name)
	for i, c := range e.conns {
		if c.Name == name {
			e.conns = append(e.conns[:i], e.conns[i+1:]...)
			return
		}
	}
}

func (e *Engine) conn(name string) *Connection {
	for _, c := range e.conns {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Initiate starts an IKE SA (and its CHILD SA unless childless) for name.
func (e *Engine) Initiate(now time.Time, name string) error {
	_, err := e.InitiateSA(now, name)
	return err
}

// InitiateSA is Initiate returning the index of the new IKE SA (the Index
// of its IKESAStatus).
func (e *Engine) InitiateSA(now time.Time, name string) (uint64, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.conn(name)
	if c == nil {
		return 0, fmt.Errorf("initiate %s: no such connection", name)
	}
	if !c.Remote.Addr().IsValid() || c.Remote.Addr().IsUnspecified() {
		return 0, fmt.Errorf("initiate %s: no remote address", name)
	}
	return e.initiate(now, c).index, nil
}

func (e *Engine) initiate(now time.Time, c *Connection) *ikeSA {
	s := e.newSA(now, c, true)
	s.spiI = e.newIKESPI()
	s.local, s.remote = c.Local, c.Remote
	e.sas[s.spiI] = s
	s.queue = append(s.queue, newInitExchange(), newAuthExchange(s))
	e.log.Info("initiating IKE SA", "connection", c.Name, "remote", c.Remote, "index", s.index)
	s.startNext(now)
	e.schedule(s)
	return s
}

func (e *Engine) newSA(now time.Time, c *Connection, initiator bool) *ikeSA {
	e.nextIndex++
	return &ikeSA{e: e, conn: c, index: e.nextIndex, initiator: initiator, state: ike.StateConnecting, created: now, lastRecv: now}
}

// Terminate deletes the IKE SAs of name and their CHILD SAs.
func (e *Engine) Terminate(now time.Time, name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.terminate(now, name)
}

func (e *Engine) terminate(now time.Time, name string) {
	for _, s := range e.sasOf(name) {
		if s.state == ike.StateEstablished || s.state == ike.StateRekeying {
			s.queueDeleteIKE(now)
		} else {
			s.destroy(now, "terminated")
		}
	}
}

func (e *Engine) sasOf(name string) []*ikeSA {
	var out []*ikeSA
	for _, s := range e.sas {
		if s.conn.Name == name && !s.dead {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].index < out[j].index })
	return out
}

// hasOtherSA reports whether the connection of s has another live IKE SA.
// It stops at the first one: it runs for every IKE_AUTH we initiate.
func (e *Engine) hasOtherSA(s *ikeSA) bool {
	for _, o := range e.sas {
		if o != s && !o.dead && o.conn.Name == s.conn.Name {
			return true
		}
	}
	return false
}

// RekeyIKE rekeys the established IKE SA of name now.
func (e *Engine) RekeyIKE(now time.Time, name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.sasOf(name) {
		if s.state == ike.StateEstablished && s.replacedBy == nil {
			s.startIKERekey(now)
			e.schedule(s)
			return nil
		}
	}
	return fmt.Errorf("rekey IKE SA of %s: none established", name)
}

// RekeyChild rekeys every installed CHILD SA of name now.
func (e *Engine) RekeyChild(now time.Time, name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, s := range e.sasOf(name) {
		for _, c := range s.children {
			if c.state == childInstalled {
				s.startChildRekey(now, c)
				n++
			}
		}
		e.schedule(s)
	}
	if n == 0 {
		return fmt.Errorf("rekey CHILD SA of %s: none installed", name)
	}
	return nil
}

// CreateChild negotiates an additional CHILD SA on the IKE SA of name.
func (e *Engine) CreateChild(now time.Time, name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.sasOf(name) {
		if s.state == ike.StateEstablished && s.replacedBy == nil {
			s.enqueue(now, &exchange{typ: CREATE_CHILD_SA, tasks: []task{&childCreateTask{pfs: true}}})
			e.schedule(s)
			return nil
		}
	}
	return fmt.Errorf("create CHILD SA of %s: no IKE SA established", name)
}

// ChildExpired is called by the gateway when the kernel reports that the
// CHILD SA with inbound SPI spi hit its soft (rekey) or hard (delete)
// byte/packet limit.
func (e *Engine) ChildExpired(now time.Time, spi uint32, hard bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.childSPIs[spi]
	if c == nil {
		return
	}
	for _, s := range e.sas {
		for _, sc := range s.children {
			if sc == c {
				if hard {
					s.deleteChildLocally(now, c, "hard lifetime")
					s.queueDeleteChild(now, c)
				} else if c.state == childInstalled {
					s.startChildRekey(now, c)
				}
				e.schedule(s)
				return
			}
		}
	}
}

// LastError is the last negotiation error of connection name, nil if none.
func (e *Engine) LastError(name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lastErr[name]
}

func (e *Engine) fail(c *Connection, err error) {
	e.lastErr[c.Name] = err
	e.log.Warn("IKE negotiation failed", "connection", c.Name, "err", err)
}

// IKESAs returns the status of every IKE SA.
func (e *Engine) IKESAs(now time.Time) []ike.IKESAStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []ike.IKESAStatus
	for _, s := range e.sas {
		if !s.dead {
			out = append(out, s.status(now))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out
}

// ChildSAs returns the status of every CHILD SA.
func (e *Engine) ChildSAs(now time.Time) []ike.ChildSAStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []ike.ChildSAStatus
	for _, s := range e.sas {
		for _, c := range s.children {
			out = append(out, c.status(now, s.index))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SA.SPIIn < out[j].SA.SPIIn })
	return out
}

// HalfOpen is the number of responder IKE SAs not yet authenticated.
func (e *Engine) HalfOpen() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.halfOpen
}

// HandleDatagram implements ike.Engine.
func (e *Engine) HandleDatagram(now time.Time, d ike.Datagram) {
	m, err := Decode(d.Data)
	if err != nil {
		e.log.Debug("dropping undecodable IKE datagram", "remote", d.Remote, "err", err)
		return
	}
	if m.Exchange == IKE_SA_INIT && !m.IsResponse() {
		e.handleInitRequest(now, d, m)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	local := m.SPIi
	if m.FromInitiator() {
		local = m.SPIr
	}
	s := e.sas[local]
	if s == nil || s.dead {
		e.log.Debug("IKE message for unknown SA", "remote", d.Remote, "exchange", m.Exchange)
		return
	}
	if m.Exchange == IKE_SA_INIT {
		if s.spiR != 0 && s.spiR != m.SPIr {
			return
		}
	} else if m.SPIi != s.spiI || m.SPIr != s.spiR {
		return
	}
	if m.FromInitiator() == s.initiator {
		return // a message claiming our own role
	}
	s.receive(now, d, m)
	if !s.dead {
		e.schedule(s)
	}
}

// Tick implements ike.Engine.
func (e *Engine) Tick(now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for e.timers.Len() > 0 {
		top := e.timers[0]
		if top.at.After(now) {
			return
		}
		heap.Pop(&e.timers)
		s := top.sa
		if s.dead || top.seq != s.timerSeq {
			continue
		}
		s.timerAt = time.Time{}
		s.onTimer(now)
		if !s.dead {
			e.schedule(s)
		}
	}
}

// NextTimer implements ike.Engine.
func (e *Engine) NextTimer() (time.Time, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for e.timers.Len() > 0 {
		top := e.timers[0]
		if top.sa.dead || top.seq != top.sa.timerSeq {
			heap.Pop(&e.timers)
			continue
		}
		return top.at, true
	}
	return time.Time{}, false
}

// schedule (re)arms the SA's timer entry.
func (e *Engine) schedule(s *ikeSA) {
	if s.dead {
		return
	}
	at := s.nextDeadline()
	if at.IsZero() || at.Equal(s.timerAt) {
		return
	}
	s.timerSeq++
	s.timerAt = at
	heap.Push(&e.timers, timerEntry{at: at, sa: s, seq: s.timerSeq})
}

type timerEntry struct {
	at  time.Time
	sa  *ikeSA
	seq uint64
}

type timerHeap []timerEntry

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timerEntry)) }
func (h *timerHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = timerEntry{}
	*h = old[:len(old)-1]
	return x
}

// jitter returns d reduced by a random fraction up to frac.
func (e *Engine) jitter(d time.Duration, frac float64) time.Duration {
	if frac <= 0 || d <= 0 {
		return d
	}
	var b [8]byte
	e.random(b[:])
	r := float64(binary.BigEndian.Uint64(b[:])>>11) / float64(1<<53)
	return d - time.Duration(float64(d)*frac*r)
}
