package ops

import (
	"fmt"
	"io"
	"net/netip"
	"strconv"
)

// SAState is UP or DOWN, as devices print it.
type SAState string

const (
	StateUp   SAState = "UP"
	StateDown SAState = "DOWN"
)

// IKEMode is the exchange of an IKE SA: Main, Aggressive (IKEv1) or IKEv2.
type IKEMode string

const (
	ModeMain       IKEMode = "Main"
	ModeAggressive IKEMode = "Aggressive"
	ModeIKEv2      IKEMode = "IKEv2"
)

// Cookie is an IKEv1 cookie or IKEv2 SPI; it prints as 16 hex digits.
type Cookie uint64

func (c Cookie) String() string { return fmt.Sprintf("%016x", uint64(c)) }

// MarshalText makes JSON carry the same 16 hex digits as the text view.
func (c Cookie) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText parses 16 hex digits.
func (c *Cookie) UnmarshalText(b []byte) error {
	v, err := strconv.ParseUint(string(b), 16, 64)
	if err != nil {
		return fmt.Errorf("cookie %q: %w", b, err)
	}
	*c = Cookie(v)
	return nil
}

// IKEAlgorithms are the negotiated IKE transforms, named as in the
// configuration language (authentication-algorithm sha-256, encryption-
// algorithm aes-256-cbc, dh-group group19) or as the IKE engines report them
// (see CanonicalCipher and friends). PRF defaults to the authentication
// algorithm's hash when empty.
type IKEAlgorithms struct {
	Authentication string `json:"authentication-algorithm"`
	Encryption     string `json:"encryption-algorithm"`
	PRF            string `json:"prf-algorithm,omitempty"`
	DHGroup        string `json:"dh-group"`
}

// Traffic counts the IKE messages of one IKE SA.
type Traffic struct {
	InputBytes    uint64 `json:"input-bytes"`
	OutputBytes   uint64 `json:"output-bytes"`
	InputPackets  uint64 `json:"input-packets"`
	OutputPackets uint64 `json:"output-packets"`
}

// IKESA is one IKE security association (phase 1), the row of `show security
// ike security-associations` and the block of its detail form.
type IKESA struct {
	Index           uint32         `json:"index"`
	GatewayName     string         `json:"gateway-name"`
	State           SAState        `json:"state"`
	Role            string         `json:"role"` // Initiator or Responder
	InitiatorCookie Cookie         `json:"initiator-cookie"`
	ResponderCookie Cookie         `json:"responder-cookie"`
	Mode            IKEMode        `json:"mode"`
	AuthMethod      string         `json:"authentication-method"` // Pre-shared-keys, RSA-signatures, …
	LocalAddress    netip.AddrPort `json:"local-address"`
	RemoteAddress   netip.AddrPort `json:"remote-address"`
	LifetimeSeconds int64          `json:"lifetime-remaining-seconds"`
	PeerIKEID       string         `json:"peer-ike-id"`
	Algorithms      IKEAlgorithms  `json:"algorithms"`
	Traffic         Traffic        `json:"traffic-statistics"`
	IPsecCreated    uint32         `json:"ipsec-sas-created"`
	IPsecDeleted    uint32         `json:"ipsec-sas-deleted"`
	Phase2Pending   uint32         `json:"phase2-negotiations-in-progress"`
}

// IKESAs is the answer to `show security ike security-associations`.
type IKESAs struct {
	SAs []IKESA `json:"ike-security-associations"`
}

var ikeListStops = []int{0, 8, 15, 33, 51, 66}

// WriteText prints the list layout: one row per SA under the column header,
// nothing at all when there is no SA (as devices do).
func (v IKESAs) WriteText(w io.Writer) error {
	if len(v.SAs) == 0 {
		return nil
	}
	ew := errWriter{w: w}
	ew.line(columns(ikeListStops, "Index", "State", "Initiator cookie", "Responder cookie", "Mode", "Remote Address"))
	for _, sa := range v.SAs {
		ew.line(columns(ikeListStops, strconv.FormatUint(uint64(sa.Index), 10), string(sa.State),
			sa.InitiatorCookie.String(), sa.ResponderCookie.String(), string(sa.Mode), addrString(sa.RemoteAddress.Addr())))
	}
	return ew.err
}

// IKESADetails is the answer to `show security ike security-associations
// [index N] detail`.
type IKESADetails IKESAs

// WriteText prints one detail block per SA, blocks separated by a blank line.
func (v IKESADetails) WriteText(w io.Writer) error {
	ew := errWriter{w: w}
	for i, sa := range v.SAs {
		if i > 0 {
			ew.line("")
		}
		auth, enc, prf, dh := ikeAlgorithmNames(sa.Algorithms)
		ew.printf("IKE peer %s, Index %d, Gateway Name: %s\n", addrString(sa.RemoteAddress.Addr()), sa.Index, sa.GatewayName)
		ew.printf("  Role: %s, State: %s\n", sa.Role, sa.State)
		ew.printf("  Initiator cookie: %s, Responder cookie: %s\n", sa.InitiatorCookie, sa.ResponderCookie)
		ew.printf("  Exchange type: %s, Authentication method: %s\n", sa.Mode, sa.AuthMethod)
		ew.printf("  Local: %s, Remote: %s\n", addrPortString(sa.LocalAddress), addrPortString(sa.RemoteAddress))
		ew.printf("  Lifetime: Expires in %d seconds\n", sa.LifetimeSeconds)
		ew.printf("  Peer ike-id: %s\n", sa.PeerIKEID)
		ew.line("  Algorithms:")
		ew.printf("   Authentication        : %s\n", auth)
		ew.printf("   Encryption            : %s\n", enc)
		ew.printf("   Pseudo random function: %s\n", prf)
		ew.printf("   Diffie-Hellman group  : %s\n", dh)
		ew.line("  Traffic statistics:")
		ew.printf("   Input  bytes  :%21d\n", sa.Traffic.InputBytes)
		ew.printf("   Output bytes  :%21d\n", sa.Traffic.OutputBytes)
		ew.printf("   Input  packets:%21d\n", sa.Traffic.InputPackets)
		ew.printf("   Output packets:%21d\n", sa.Traffic.OutputPackets)
		ew.printf("  IPSec security associations: %d created, %d deleted\n", sa.IPsecCreated, sa.IPsecDeleted)
		ew.printf("  Phase 2 negotiations in progress: %d\n", sa.Phase2Pending)
	}
	return ew.err
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return "-"
	}
	return a.Unmap().String()
}

// addrPortString prints address:port the way devices do, without brackets
// around IPv6 addresses.
func addrPortString(ap netip.AddrPort) string {
	return addrString(ap.Addr()) + ":" + strconv.Itoa(int(ap.Port()))
}
