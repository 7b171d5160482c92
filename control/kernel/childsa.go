package kernel

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
)

// Key is secret key material. It formats as "[redacted]" with every fmt
// verb, so it never reaches a log or an error by accident.
type Key []byte

func (Key) String() string                 { return "[redacted]" }
func (Key) GoString() string               { return "[redacted]" }
func (Key) Format(f fmt.State, _ rune)     { io.WriteString(f, "[redacted]") }
func (k Key) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }

// Keys are the keys of one direction of a CHILD SA.
type Keys struct {
	Encryption Key // for AEAD algorithms, key followed by the 4-byte salt (RFC 4106, RFC 7634)
	Integrity  Key // empty for AEAD
}

// UDPEncap is NAT-T UDP encapsulation (RFC 3948). The IKE socket on
// LocalPort must have UDP_ENCAP_ESPINUDP set for inbound ESP-in-UDP.
type UDPEncap struct {
	LocalPort, RemotePort uint16
}

// Selector is one traffic selector pair (proxy identity), seen from this
// gateway. Protocol 0 means any; port 0 means any.
type Selector struct {
	Local, Remote         netip.Prefix
	Protocol              uint8
	LocalPort, RemotePort uint16
}

// DefaultSelectors are the route-based defaults: everything, both families.
var DefaultSelectors = []Selector{
	{Local: netip.MustParsePrefix("0.0.0.0/0"), Remote: netip.MustParsePrefix("0.0.0.0/0")},
	{Local: netip.MustParsePrefix("::/0"), Remote: netip.MustParsePrefix("::/0")},
}

// Lifetime holds kernel lifetimes of an SA; zero means unlimited. The soft
// limits make the kernel send an expire event; the hard ones delete the SA.
type Lifetime struct {
	SoftSeconds, HardSeconds uint64
	SoftBytes, HardBytes     uint64
	SoftPackets, HardPackets uint64
}

// ChildSA is one negotiated CHILD SA pair (IKEv2) or IPsec SA pair (IKEv1)
// for the tunnel of st0 unit Unit, in ESP tunnel mode.
type ChildSA struct {
	Unit          int
	Peer          int        // multipoint peer id; 0 for the unit's own tunnel
	Local, Remote netip.Addr // tunnel endpoints (outer addresses)
	InboundSPI    uint32     // SPI the peer sends to us
	OutboundSPI   uint32     // SPI we send to the peer

	// Algorithms by XFRM name: Encryption is "rfc4106(gcm(aes))",
	// "rfc7539esp(chacha20,poly1305)" (AEAD) or "cbc(aes)"; Integrity is
	// "hmac(sha1)", "hmac(sha256)", "hmac(sha384)", "hmac(sha512)" or "" for
	// AEAD.
	Encryption    string
	Integrity     string
	ICVBits       int // AEAD ICV length; 0 means 128
	IntegrityBits int // truncated ICV length; 0 means the RFC default of the hash

	Inbound, Outbound Keys

	ReplayWindow uint32 // packets; 0 disables anti-replay
	ESN          bool
	Encap        *UDPEncap
	Selectors    []Selector // nil means DefaultSelectors
	Lifetime     Lifetime
}

// String describes the SA without key material.
func (c ChildSA) String() string {
	alg := c.Encryption
	if c.Integrity != "" {
		alg += "/" + c.Integrity
	}
	s := fmt.Sprintf("%s %s<->%s in %08x out %08x %s", c.name(), c.Local, c.Remote, c.InboundSPI, c.OutboundSPI, alg)
	if c.Encap != nil {
		s += fmt.Sprintf(" udp %d-%d", c.Encap.LocalPort, c.Encap.RemotePort)
	}
	return s
}

// name is the Linux name of the interface the SA's tunnel uses: st0.N, or
// st0.N.pK for a peer of a multipoint unit.
func (c ChildSA) name() string {
	if c.Peer != 0 {
		return PeerLinkName(c.Unit, c.Peer)
	}
	return LinkName(c.Unit)
}

// aead reports whether the SA uses an AEAD algorithm.
func (c ChildSA) aead() bool {
	return strings.HasPrefix(c.Encryption, "rfc4106(") || strings.HasPrefix(c.Encryption, "rfc7539esp(") ||
		strings.HasPrefix(c.Encryption, "rfc4309(") || strings.HasPrefix(c.Encryption, "rfc4543(")
}

// truncBits returns the ICV length of the integrity algorithm.
func (c ChildSA) truncBits() int {
	if c.IntegrityBits != 0 {
		return c.IntegrityBits
	}
	switch c.Integrity {
	case "hmac(sha1)", "hmac(md5)":
		return 96
	case "hmac(sha256)":
		return 128
	case "hmac(sha384)":
		return 192
	case "hmac(sha512)":
		return 256
	}
	return 0
}

func (c ChildSA) icvBits() int {
	if c.ICVBits == 0 {
		return 128
	}
	return c.ICVBits
}

func (c ChildSA) selectors() []Selector {
	if len(c.Selectors) == 0 {
		return DefaultSelectors
	}
	return c.Selectors
}

// Validate checks the SA for what the kernel would reject.
func (c ChildSA) Validate() error {
	var errs []error
	if err := checkUnit(c.Unit); err != nil {
		errs = append(errs, err)
	}
	if c.Peer < 0 || c.Peer > MaxPeer {
		errs = append(errs, fmt.Errorf("peer %d out of range 0-%d", c.Peer, MaxPeer))
	}
	if !c.Local.IsValid() || !c.Remote.IsValid() || c.Local.Unmap().Is4() != c.Remote.Unmap().Is4() {
		errs = append(errs, errors.New("endpoints must be two addresses of one family"))
	}
	if c.InboundSPI < 256 || c.OutboundSPI < 256 {
		errs = append(errs, errors.New("SPIs must be at least 256 (RFC 4303)"))
	}
	keyLens := map[string][]int{
		"rfc4106(gcm(aes))":             {20, 28, 36},
		"rfc7539esp(chacha20,poly1305)": {36},
		"cbc(aes)":                      {16, 24, 32},
	}
	lens, known := keyLens[c.Encryption]
	if !known && c.Encryption == "" {
		errs = append(errs, errors.New("no encryption algorithm"))
	}
	for dir, k := range map[string]Keys{"inbound": c.Inbound, "outbound": c.Outbound} {
		if known && !containsInt(lens, len(k.Encryption)) {
			errs = append(errs, fmt.Errorf("%s %s key is %d bytes, want one of %v", dir, c.Encryption, len(k.Encryption), lens))
		}
		if c.aead() && len(k.Integrity) != 0 {
			errs = append(errs, fmt.Errorf("%s: AEAD %s takes no integrity key", dir, c.Encryption))
		}
		if !c.aead() && c.Integrity != "" && len(k.Integrity) == 0 {
			errs = append(errs, fmt.Errorf("%s: no %s key", dir, c.Integrity))
		}
	}
	if c.aead() && c.Integrity != "" {
		errs = append(errs, fmt.Errorf("AEAD %s with integrity %s", c.Encryption, c.Integrity))
	}
	if !c.aead() && c.Integrity == "" {
		errs = append(errs, fmt.Errorf("%s needs an integrity algorithm", c.Encryption))
	}
	if !c.aead() && c.Integrity != "" && c.truncBits() == 0 {
		errs = append(errs, fmt.Errorf("no ICV length for %s", c.Integrity))
	}
	if c.aead() && !containsInt([]int{64, 96, 128}, c.icvBits()) {
		errs = append(errs, fmt.Errorf("AEAD ICV of %d bits", c.icvBits()))
	}
	if c.ESN && c.ReplayWindow == 0 {
		errs = append(errs, errors.New("ESN needs a replay window"))
	}
	if c.Encap != nil && (c.Encap.LocalPort == 0 || c.Encap.RemotePort == 0) {
		errs = append(errs, errors.New("UDP encapsulation needs both ports"))
	}
	for _, s := range c.Selectors {
		if !s.Local.IsValid() || !s.Remote.IsValid() || s.Local.Addr().Is4() != s.Remote.Addr().Is4() {
			errs = append(errs, fmt.Errorf("selector %s-%s: two prefixes of one family", s.Local, s.Remote))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("child SA %s: %w", c, err)
	}
	return nil
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
