package ikev2

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/bpfvpn/bpfvpn/ike"
	"github.com/bpfvpn/bpfvpn/ike/suite"
)

// Config is the engine-wide configuration.
type Config struct {
	Sender ike.Sender
	Sink   ike.SASink
	Log    *slog.Logger // nil: slog.Default()
	// Rand supplies SPIs, nonces and IVs; nil means crypto/rand.
	Rand io.Reader

	// CookieThreshold is the number of half-open responder SAs from which
	// IKE_SA_INIT requests must carry a valid COOKIE (RFC 7296 §2.6).
	// 0 selects 1000; negative disables cookies.
	CookieThreshold int
	// HalfOpenTimeout drops responder SAs not authenticated in time (30 s).
	HalfOpenTimeout time.Duration
	// RetransmitTimeout is the first retransmission timeout (1 s), doubled
	// up to RetransmitMax (32 s); RetransmitTries is how many times a request
	// is sent before the peer counts as dead (6).
	RetransmitTimeout time.Duration
	RetransmitMax     time.Duration
	RetransmitTries   int
	// KEReuse lets IKE_SA_INIT reuse our Diffie-Hellman private value for
	// this long (RFC 7296 §2.12 permits it; it weakens forward secrecy to
	// that window). 0, the default, draws a fresh value for every IKE SA.
	// The load generator of bench/ike uses it to spend its CPU on load.
	KEReuse time.Duration
	// FragmentSize is the largest protected datagram before IKE
	// fragmentation (RFC 7383) applies, when the peer supports it (1280).
	FragmentSize int
	// WindowSize is the message-ID window (RFC 7296 §2.3) we advertise with
	// SET_WINDOW_SIZE: how many of the peer's requests we accept before
	// answering the lowest, and how many answers we keep for retransmitted
	// requests. 0 selects 4; 1 or less means window one and no notify.
	WindowSize int
}

func (c *Config) defaults() {
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Sink == nil {
		c.Sink = ike.NopSink{}
	}
	if c.CookieThreshold == 0 {
		c.CookieThreshold = 1000
	}
	if c.HalfOpenTimeout == 0 {
		c.HalfOpenTimeout = 30 * time.Second
	}
	if c.RetransmitTimeout == 0 {
		c.RetransmitTimeout = time.Second
	}
	if c.RetransmitMax == 0 {
		c.RetransmitMax = 32 * time.Second
	}
	if c.RetransmitTries == 0 {
		c.RetransmitTries = 6
	}
	if c.FragmentSize == 0 {
		c.FragmentSize = 1280
	}
	if c.WindowSize == 0 {
		c.WindowSize = defaultWindowSize
	}
}

// Identity is an IKE identity (RFC 7296 §3.5).
type Identity struct {
	Type  IDType
	Value string // address text, FQDN or user@fqdn
}

// ParseIdentity classifies s: an IP address, user@fqdn (RFC 822) or FQDN.
func ParseIdentity(s string) Identity {
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Is4() {
			return Identity{IDIPv4, a.String()}
		}
		return Identity{IDIPv6, a.String()}
	}
	if strings.Contains(s, "@") {
		return Identity{IDRFC822, s}
	}
	return Identity{IDFQDN, s}
}

// AddrIdentity is the identity of an address (the default local identity).
func AddrIdentity(a netip.Addr) Identity { return ParseIdentity(a.Unmap().String()) }

func (i Identity) payload(responder bool) (*ID, error) {
	id := &ID{Responder: responder, IDType: i.Type}
	switch i.Type {
	case IDIPv4, IDIPv6:
		a, err := netip.ParseAddr(i.Value)
		if err != nil || (i.Type == IDIPv4) != a.Is4() {
			return nil, fmt.Errorf("identity %q: not an address of its type", i.Value)
		}
		id.Data = a.AsSlice()
	case IDFQDN, IDRFC822, IDKeyID:
		if i.Value == "" {
			return nil, fmt.Errorf("identity of type %d is empty", i.Type)
		}
		id.Data = []byte(i.Value)
	default:
		return nil, fmt.Errorf("identity type %d unsupported", i.Type)
	}
	return id, nil
}

func identityOf(p *ID) Identity {
	switch p.IDType {
	case IDIPv4, IDIPv6:
		a, _ := netip.AddrFromSlice(p.Data)
		return Identity{p.IDType, a.String()}
	}
	return Identity{p.IDType, string(p.Data)}
}

func (i Identity) String() string { return i.Value }

// matches reports whether the peer's identity satisfies i (empty i: any).
func (i Identity) matches(peer Identity) bool {
	if i.Value == "" {
		return true
	}
	return i.Type == peer.Type && strings.EqualFold(i.Value, peer.Value)
}

// IKEProposal is one IKE SA proposal: every combination of its lists is
// acceptable. Integrity stays empty for AEAD ciphers.
type IKEProposal struct {
	Encryption []suite.Encr
	Integrity  []suite.IntegID
	PRF        []suite.PRFID
	DH         []suite.DHGroup
}

// ChildProposal is one ESP proposal. DH lists the PFS groups for
// CREATE_CHILD_SA (empty: no PFS); ESN defaults to no ESN.
type ChildProposal struct {
	Encryption []suite.Encr
	Integrity  []suite.IntegID
	DH         []suite.DHGroup
	ESN        []suite.ESNID
}

// DPDAction is what happens when the peer is found dead.
type DPDAction uint8

const (
	// DPDClear deletes the SAs.
	DPDClear DPDAction = iota
	// DPDRestart deletes the SAs and initiates again.
	DPDRestart
)

// Connection is one peer: an IKE gateway with its VPN (CHILD SA) settings,
// in engine terms. The control plane translates the Junos model into it.
type Connection struct {
	// Name identifies the connection (the VPN name); it is copied into
	// every ChildSA with ReqID and IfID.
	Name    string
	Gateway string // IKE gateway name, for status views
	ReqID   uint32
	IfID    uint32

	// Local is our address (used for NAT detection and as the default
	// identity); Remote is the peer. An unspecified Remote address accepts
	// any peer as responder and cannot initiate.
	Local  netip.AddrPort
	Remote netip.AddrPort

	LocalID  Identity // default: Local's address
	RemoteID Identity // empty: any
	PSK      []byte   // never logged

	IKEProposals   []IKEProposal
	ChildProposals []ChildProposal

	// LocalTS / RemoteTS are the proxy identities; empty means 0.0.0.0/0
	// and ::/0 (route-based VPN).
	LocalTS  []ike.TrafficSelector
	RemoteTS []ike.TrafficSelector

	IKELifetime     time.Duration // 8 h
	ChildLifetime   time.Duration // 1 h
	ChildLifetimeKB uint64        // 0: none
	// RekeyMargin is how long before expiry rekeying starts (10% of the
	// lifetime); RekeyJitter randomises it further by up to this fraction
	// of the margin (0.3).
	RekeyMargin time.Duration
	RekeyJitter float64

	DPDInterval  time.Duration // 0: no liveness checks
	DPDThreshold int           // unanswered checks before the peer is dead (5)
	DPDAction    DPDAction

	// LocalNATPort and RemoteNATPort are the ports IKE floats to when a NAT
	// is detected (4500 each, RFC 7296 §2.23).
	LocalNATPort  uint16
	RemoteNATPort uint16
	// KeepaliveInterval of NAT-T keepalives when we are behind a NAT (20 s).
	KeepaliveInterval time.Duration
	// Childless asks for an IKE SA without CHILD SA (RFC 6023).
	Childless bool
	// NoFragmentation disables RFC 7383 fragmentation.
	NoFragmentation bool
	// KeepOnInitialContact keeps older IKE SAs of the same peer when its
	// IKE_AUTH carries INITIAL_CONTACT; by default they are dropped, since
	// the peer says it lost them (RFC 7296 §2.4).
	KeepOnInitialContact bool
	// AllowWeak accepts groups 2/5 and 3DES when configured (warned).
	AllowWeak    bool
	ReplayWindow uint32 // 32
}

func (c *Connection) normalize() error {
	if c.Name == "" {
		return fmt.Errorf("connection without a name")
	}
	if len(c.PSK) == 0 {
		return fmt.Errorf("connection %s: no pre-shared key", c.Name)
	}
	if len(c.IKEProposals) == 0 {
		return fmt.Errorf("connection %s: no IKE proposal", c.Name)
	}
	if len(c.ChildProposals) == 0 && !c.Childless {
		return fmt.Errorf("connection %s: no ESP proposal", c.Name)
	}
	for _, p := range c.IKEProposals {
		if len(p.Encryption) == 0 || len(p.PRF) == 0 || len(p.DH) == 0 {
			return fmt.Errorf("connection %s: IKE proposal needs encryption, PRF and DH", c.Name)
		}
		for _, e := range p.Encryption {
			if err := e.Validate(); err != nil {
				return fmt.Errorf("connection %s: %w", c.Name, err)
			}
			if !e.AEAD() && len(p.Integrity) == 0 {
				return fmt.Errorf("connection %s: %v needs an integrity algorithm", c.Name, e)
			}
		}
		for _, g := range p.DH {
			if !g.Supported() {
				return fmt.Errorf("connection %s: DH group %v unsupported", c.Name, g)
			}
			if g.Weak() && !c.AllowWeak {
				return fmt.Errorf("connection %s: DH group %v is weak and not allowed", c.Name, g)
			}
		}
	}
	if !c.LocalID.Type.valid() {
		if !c.Local.Addr().IsValid() {
			return fmt.Errorf("connection %s: no local identity and no local address", c.Name)
		}
		c.LocalID = AddrIdentity(c.Local.Addr())
	}
	if c.Local.Port() == 0 && c.Local.Addr().IsValid() {
		c.Local = netip.AddrPortFrom(c.Local.Addr(), ike.PortIKE)
	}
	if c.Remote.Port() == 0 {
		c.Remote = netip.AddrPortFrom(c.Remote.Addr(), ike.PortIKE)
	}
	if len(c.LocalTS) == 0 {
		c.LocalTS = anyTS()
	}
	if len(c.RemoteTS) == 0 {
		c.RemoteTS = anyTS()
	}
	if c.IKELifetime == 0 {
		c.IKELifetime = 8 * time.Hour
	}
	if c.ChildLifetime == 0 {
		c.ChildLifetime = time.Hour
	}
	if c.RekeyJitter == 0 {
		c.RekeyJitter = 0.3
	}
	if c.DPDThreshold == 0 {
		c.DPDThreshold = 5
	}
	if c.LocalNATPort == 0 {
		c.LocalNATPort = ike.PortNATT
	}
	if c.RemoteNATPort == 0 {
		c.RemoteNATPort = ike.PortNATT
	}
	if c.KeepaliveInterval == 0 {
		c.KeepaliveInterval = 20 * time.Second
	}
	if c.ReplayWindow == 0 {
		c.ReplayWindow = 32
	}
	return nil
}

func (t IDType) valid() bool {
	switch t {
	case IDIPv4, IDIPv6, IDFQDN, IDRFC822, IDKeyID:
		return true
	}
	return false
}

func anyTS() []ike.TrafficSelector {
	return []ike.TrafficSelector{
		ike.PrefixSelector(netip.MustParsePrefix("0.0.0.0/0")),
		ike.PrefixSelector(netip.MustParsePrefix("::/0")),
	}
}

// margin is the rekey margin for a lifetime.
func (c *Connection) margin(life time.Duration) time.Duration {
	if c.RekeyMargin > 0 && c.RekeyMargin < life {
		return c.RekeyMargin
	}
	return life / 10
}
