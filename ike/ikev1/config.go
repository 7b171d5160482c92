package ikev1

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/bpfvpn/bpfvpn/ike/ikev1/isakmp"
	"github.com/bpfvpn/bpfvpn/ike/suite"
)

// Hash is a phase-1 hash algorithm; the PRF is HMAC over it.
type Hash uint16

// Phase-1 hash algorithms (ISAKMP attribute values).
const (
	HashSHA1   = Hash(isakmp.HashSHA1)
	HashSHA256 = Hash(isakmp.HashSHA256)
	HashSHA384 = Hash(isakmp.HashSHA384)
	HashSHA512 = Hash(isakmp.HashSHA512)
)

func (h Hash) prfID() (suite.PRFID, bool) {
	switch h {
	case HashSHA1:
		return suite.PRFHMACSHA1, true
	case HashSHA256:
		return suite.PRFHMACSHA2256, true
	case HashSHA384:
		return suite.PRFHMACSHA2384, true
	case HashSHA512:
		return suite.PRFHMACSHA2512, true
	}
	return 0, false
}

func (h Hash) String() string {
	switch h {
	case HashSHA1:
		return "sha1"
	case HashSHA256:
		return "sha-256"
	case HashSHA384:
		return "sha-384"
	case HashSHA512:
		return "sha-512"
	}
	return fmt.Sprintf("hash-%d", uint16(h))
}

// Phase1Proposal is one IKE (phase-1) proposal: authentication is always
// pre-shared keys.
type Phase1Proposal struct {
	// Encryption is AES-CBC with 128, 192 or 256 bits, or 3DES.
	Encryption suite.Encr
	Hash       Hash
	Group      suite.DHGroup
	// Lifetime is the phase-1 SA lifetime (0: 28800 s).
	Lifetime time.Duration
}

func (p Phase1Proposal) String() string {
	return fmt.Sprintf("%v/%v/%v", p.Encryption, p.Hash, p.Group)
}

// Phase2Proposal is one ESP (phase-2) proposal.
type Phase2Proposal struct {
	// Encryption is AES-CBC, AES-GCM-16 (128/256) or 3DES.
	Encryption suite.Encr
	// Integrity is suite.IntegNone for AES-GCM, an HMAC otherwise.
	Integrity suite.IntegID
	// Lifetime is the SA lifetime (0: 3600 s); LifeKilobytes 0 is unlimited.
	Lifetime      time.Duration
	LifeKilobytes uint64
}

func (p Phase2Proposal) String() string {
	if p.Integrity == suite.IntegNone {
		return fmt.Sprintf("esp/%v", p.Encryption)
	}
	return fmt.Sprintf("esp/%v/%v", p.Encryption, p.Integrity)
}

// ProxyID is a pair of Quick Mode client identities seen from this end.
// Zero prefixes mean 0.0.0.0/0 (the route-based default).
type ProxyID struct {
	Local, Remote netip.Prefix
	// Protocol and the ports narrow the identities (0 = any).
	Protocol   uint8
	LocalPort  uint16
	RemotePort uint16
}

// DPDMode is the dead-peer-detection mode of the Junos gateway.
type DPDMode uint8

// DPD modes.
const (
	// DPDOptimized probes only when the peer has been silent for an
	// interval while we had something to say (the Junos default).
	DPDOptimized DPDMode = iota
	// DPDProbeIdle probes whenever the peer has been silent for an interval.
	DPDProbeIdle
	// DPDAlwaysSend probes every interval.
	DPDAlwaysSend
)

// DPDAction is what happens when a peer is declared dead.
type DPDAction uint8

// DPD actions.
const (
	// DPDRestart deletes the SAs and negotiates again.
	DPDRestart DPDAction = iota
	// DPDClear deletes the SAs.
	DPDClear
)

// DPD configures RFC 3706 dead peer detection. Interval 0 disables it.
type DPD struct {
	Mode      DPDMode
	Interval  time.Duration
	Threshold int
	Action    DPDAction
}

// Peer is one IKEv1 gateway: a remote address, a PSK and the proposals.
type Peer struct {
	// Name is the gateway name (show output, logs).
	Name string
	// Local is the local address; Remote the peer's. An invalid Remote
	// accepts Main Mode from any address (responder only).
	Local  netip.Addr
	Remote netip.Addr
	// RemotePort and RemoteNATTPort are the peer's IKE ports (0: 500 and
	// 4500).
	RemotePort     uint16
	RemoteNATTPort uint16
	// LocalPort and LocalNATTPort are our ports (0: 500 and 4500).
	LocalPort     uint16
	LocalNATTPort uint16
	// PSK is the pre-shared key. It is never logged.
	PSK []byte
	// LocalID and RemoteID are phase-1 identities; nil means our address,
	// and any authenticated identity of the peer.
	LocalID  *isakmp.ID
	RemoteID *isakmp.ID
	// IKE and ESP proposals in order of preference.
	IKE []Phase1Proposal
	ESP []Phase2Proposal
	// PFS is the Quick Mode Diffie-Hellman group (0: no PFS).
	PFS suite.DHGroup
	// ProxyIDs are the Quick Mode identities; empty means one pair
	// 0.0.0.0/0 <-> 0.0.0.0/0.
	ProxyIDs []ProxyID
	DPD      DPD
	// DisableNATT stops NAT-T vendor IDs and NAT-D payloads.
	DisableNATT bool
	// Immediately keeps the tunnel up: negotiate at start, after DPD and
	// when the phase-1 SA expires (establish-tunnels immediately).
	Immediately bool
	// Child handle copied into every ChildSA.
	VPNName string
	ReqID   uint32
	IfID    uint32
}

// Defaults of reference §6.
const (
	DefaultIKELifetime   = 28800 * time.Second
	DefaultIPsecLifetime = 3600 * time.Second
)

// DefaultPhase1 is the IKE proposal bpfvpn applies when a proposal leaves
// everything out: group19, aes-256-cbc, sha-256, 28800 s.
var DefaultPhase1 = Phase1Proposal{
	Encryption: suite.Encr{ID: suite.EncrAESCBC, KeyBits: 256},
	Hash:       HashSHA256,
	Group:      suite.ECP256,
	Lifetime:   DefaultIKELifetime,
}

// DefaultPhase2 is the IPsec proposal default: esp aes-256-gcm, 3600 s.
var DefaultPhase2 = Phase2Proposal{
	Encryption: suite.Encr{ID: suite.EncrAESGCM16, KeyBits: 256},
	Lifetime:   DefaultIPsecLifetime,
}

// StandardPhase1 is proposal-set standard for IKE: g2/aes128-cbc/sha1,
// g2/3des/sha1.
var StandardPhase1 = []Phase1Proposal{
	{Encryption: suite.Encr{ID: suite.EncrAESCBC, KeyBits: 128}, Hash: HashSHA1, Group: suite.MODP1024, Lifetime: DefaultIKELifetime},
	{Encryption: suite.Encr{ID: suite.Encr3DES}, Hash: HashSHA1, Group: suite.MODP1024, Lifetime: DefaultIKELifetime},
}

// StandardPhase2 is proposal-set standard for IPsec: esp 3des/sha1 and
// esp aes128-cbc/sha1, used with PFS group 2 (StandardPFS).
var StandardPhase2 = []Phase2Proposal{
	{Encryption: suite.Encr{ID: suite.Encr3DES}, Integrity: suite.IntegHMACSHA196, Lifetime: DefaultIPsecLifetime},
	{Encryption: suite.Encr{ID: suite.EncrAESCBC, KeyBits: 128}, Integrity: suite.IntegHMACSHA196, Lifetime: DefaultIPsecLifetime},
}

// StandardPFS is the PFS group of proposal-set standard.
const StandardPFS = suite.MODP1024

// DefaultDPD is the [ours] default: optimized, 10 s, threshold 5.
var DefaultDPD = DPD{Mode: DPDOptimized, Interval: 10 * time.Second, Threshold: 5}

// Warnings lists weak algorithms in p (3DES, groups 2 and 5) for the
// caller to log; they are accepted because they were configured.
func (p *Peer) Warnings() []string {
	var w []string
	for _, x := range p.IKE {
		if x.Encryption.Weak() {
			w = append(w, fmt.Sprintf("IKE proposal %v uses weak encryption %v", x, x.Encryption))
		}
		if x.Group.Weak() {
			w = append(w, fmt.Sprintf("IKE proposal %v uses weak group %v", x, x.Group))
		}
	}
	for _, x := range p.ESP {
		if x.Encryption.Weak() {
			w = append(w, fmt.Sprintf("IPsec proposal %v uses weak encryption %v", x, x.Encryption))
		}
	}
	if p.PFS.Weak() {
		w = append(w, fmt.Sprintf("PFS group %v is weak", p.PFS))
	}
	return w
}

// Validate checks that every algorithm is supported.
func (p *Peer) Validate() error {
	if p.Name == "" {
		return errors.New("ikev1 peer: empty name")
	}
	if len(p.PSK) == 0 {
		return fmt.Errorf("ikev1 peer %s: no pre-shared key", p.Name)
	}
	if !p.Local.IsValid() {
		return fmt.Errorf("ikev1 peer %s: no local address", p.Name)
	}
	if len(p.IKE) == 0 || len(p.ESP) == 0 {
		return fmt.Errorf("ikev1 peer %s: no proposals", p.Name)
	}
	for _, x := range p.IKE {
		if x.Encryption.ID != suite.EncrAESCBC && x.Encryption.ID != suite.Encr3DES {
			return fmt.Errorf("ikev1 peer %s: IKE encryption %v unsupported", p.Name, x.Encryption)
		}
		if err := x.Encryption.Validate(); err != nil {
			return fmt.Errorf("ikev1 peer %s: %w", p.Name, err)
		}
		if _, ok := x.Hash.prfID(); !ok {
			return fmt.Errorf("ikev1 peer %s: hash %v unsupported", p.Name, x.Hash)
		}
		if !x.Group.Supported() || x.Group == suite.Curve25519 {
			return fmt.Errorf("ikev1 peer %s: group %v unsupported", p.Name, x.Group)
		}
	}
	for _, x := range p.ESP {
		if _, ok := espTransformID(x.Encryption); !ok {
			return fmt.Errorf("ikev1 peer %s: ESP encryption %v unsupported", p.Name, x.Encryption)
		}
		if err := x.Encryption.Validate(); err != nil {
			return fmt.Errorf("ikev1 peer %s: %w", p.Name, err)
		}
		if x.Encryption.AEAD() != (x.Integrity == suite.IntegNone) {
			return fmt.Errorf("ikev1 peer %s: ESP proposal %v: integrity needed exactly for non-AEAD ciphers", p.Name, x)
		}
		if x.Integrity != suite.IntegNone {
			if _, ok := authAlgOf(x.Integrity); !ok {
				return fmt.Errorf("ikev1 peer %s: ESP integrity %v unsupported", p.Name, x.Integrity)
			}
		}
	}
	if p.PFS != suite.DHNone && (!p.PFS.Supported() || p.PFS == suite.Curve25519) {
		return fmt.Errorf("ikev1 peer %s: PFS group %v unsupported", p.Name, p.PFS)
	}
	return nil
}

func (p *Peer) proxyIDs() []ProxyID {
	if len(p.ProxyIDs) == 0 {
		return []ProxyID{{}}
	}
	return p.ProxyIDs
}

func (x ProxyID) local() netip.Prefix  { return orAny(x.Local) }
func (x ProxyID) remote() netip.Prefix { return orAny(x.Remote) }

func orAny(p netip.Prefix) netip.Prefix {
	if !p.IsValid() {
		return netip.MustParsePrefix("0.0.0.0/0")
	}
	return p.Masked()
}

func (p *Peer) remotePort() uint16     { return or16(p.RemotePort, 500) }
func (p *Peer) remoteNATTPort() uint16 { return or16(p.RemoteNATTPort, 4500) }
func (p *Peer) localPort() uint16      { return or16(p.LocalPort, 500) }
func (p *Peer) localNATTPort() uint16  { return or16(p.LocalNATTPort, 4500) }

func or16(v, d uint16) uint16 {
	if v == 0 {
		return d
	}
	return v
}

func orDur(v, d time.Duration) time.Duration {
	if v <= 0 {
		return d
	}
	return v
}
