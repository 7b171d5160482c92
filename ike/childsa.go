package ike

import (
	"fmt"
	"net/netip"

	"github.com/bpfvpn/bpfvpn/ike/suite"
)

// Key is secret key material whose printed and encoded forms are redacted.
type Key = suite.Key

// Protocol is the IPsec protocol of a CHILD SA (IANA protocol numbers).
type Protocol uint8

const (
	ProtoESP Protocol = 50
	ProtoAH  Protocol = 51
)

func (p Protocol) String() string {
	switch p {
	case ProtoESP:
		return "ESP"
	case ProtoAH:
		return "AH"
	}
	return fmt.Sprintf("proto-%d", uint8(p))
}

// Mode is the IPsec encapsulation mode.
type Mode uint8

const (
	ModeTunnel Mode = iota
	ModeTransport
)

func (m Mode) String() string {
	if m == ModeTransport {
		return "transport"
	}
	return "tunnel"
}

// TrafficSelector is an inclusive address and port range of one IP protocol
// (0 = any), as negotiated (IKEv2 TS payloads, IKEv1 proxy IDs).
type TrafficSelector struct {
	Protocol  uint8      `json:"protocol"`
	Start     netip.Addr `json:"start"`
	End       netip.Addr `json:"end"`
	StartPort uint16     `json:"start_port"`
	EndPort   uint16     `json:"end_port"`
}

// PrefixSelector returns the selector covering prefix p, all protocols and ports.
func PrefixSelector(p netip.Prefix) TrafficSelector {
	p = p.Masked()
	return TrafficSelector{Start: p.Addr(), End: lastAddr(p), StartPort: 0, EndPort: 0xffff}
}

// Prefix returns the address range as a prefix when it is exactly one.
func (ts TrafficSelector) Prefix() (netip.Prefix, bool) {
	if !ts.Start.IsValid() || ts.Start.BitLen() != ts.End.BitLen() {
		return netip.Prefix{}, false
	}
	for bits := 0; bits <= ts.Start.BitLen(); bits++ {
		p := netip.PrefixFrom(ts.Start, bits).Masked()
		if p.Addr() == ts.Start && lastAddr(p) == ts.End {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// AllPorts reports whether the selector covers every port.
func (ts TrafficSelector) AllPorts() bool { return ts.StartPort == 0 && ts.EndPort == 0xffff }

func (ts TrafficSelector) String() string {
	r := ts.Start.String() + "-" + ts.End.String()
	if p, ok := ts.Prefix(); ok {
		r = p.String()
	}
	if ts.Protocol != 0 {
		r += fmt.Sprintf("/proto=%d", ts.Protocol)
	}
	if !ts.AllPorts() {
		r += fmt.Sprintf("/ports=%d-%d", ts.StartPort, ts.EndPort)
	}
	return r
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// UDPEncap describes UDP encapsulation of ESP (RFC 3948), in the outbound
// orientation: ESP leaves from LocalPort to RemotePort.
type UDPEncap struct {
	LocalPort  uint16 `json:"local_port"`
	RemotePort uint16 `json:"remote_port"`
	// LocalBehindNAT / RemoteBehindNAT are the NAT-detection results.
	LocalBehindNAT  bool `json:"local_behind_nat"`
	RemoteBehindNAT bool `json:"remote_behind_nat"`
}

// Algorithm names an XFRM algorithm: Name is the Linux crypto name
// ("rfc4106(gcm(aes))", "cbc(aes)", "hmac(sha256)", "rfc7539esp(chacha20,poly1305)").
type Algorithm struct {
	Name string `json:"name"`
	// KeyBits is the key length including any salt (the XFRM key length).
	KeyBits int `json:"key_bits"`
	// ICVBits is the AEAD tag length; TruncBits the integrity truncation.
	ICVBits   int  `json:"icv_bits,omitempty"`
	TruncBits int  `json:"trunc_bits,omitempty"`
	AEAD      bool `json:"aead,omitempty"`
	// IKEName is the IKE transform name for show commands ("AES-GCM-16-256").
	IKEName string `json:"ike_name"`
}

// SAKeys are the keys of one direction.
type SAKeys struct {
	Encryption Key `json:"encryption"` // includes the salt for AEAD ciphers
	Integrity  Key `json:"integrity,omitempty"`
}

func (k *SAKeys) wipe() {
	k.Encryption.Wipe()
	k.Integrity.Wipe()
}

// Lifetime bounds an SA. Zero means no limit of that kind. The engine
// rekeys at the soft limits itself (seconds) or when told (bytes, through
// the kernel's expire events); the hard limits are for the kernel.
type Lifetime struct {
	SoftSeconds uint64 `json:"soft_seconds"`
	HardSeconds uint64 `json:"hard_seconds"`
	SoftBytes   uint64 `json:"soft_bytes"`
	HardBytes   uint64 `json:"hard_bytes"`
}

// ChildSA is one negotiated IPsec SA pair (inbound and outbound), everything
// the gateway needs to install it into XFRM.
type ChildSA struct {
	// Name, ReqID and IfID are the caller's handle, copied from the
	// connection configuration (the VPN name, the XFRM reqid, the if_id of
	// the bound st0 interface).
	Name  string `json:"name"`
	ReqID uint32 `json:"reqid"`
	IfID  uint32 `json:"if_id"`

	IKEVersion int    `json:"ike_version"` // 1 or 2
	IKESA      uint64 `json:"ike_sa"`      // index of the IKE SA that negotiated it

	Protocol Protocol `json:"protocol"`
	Mode     Mode     `json:"mode"`
	SPIIn    uint32   `json:"spi_in"`
	SPIOut   uint32   `json:"spi_out"`

	// Local and Remote are the tunnel endpoints (outer addresses).
	Local  netip.Addr `json:"local"`
	Remote netip.Addr `json:"remote"`
	// LocalPort and RemotePort are the IKE ports in use (500 or 4500).
	LocalPort  uint16    `json:"local_port"`
	RemotePort uint16    `json:"remote_port"`
	Encap      *UDPEncap `json:"encap,omitempty"`

	Encryption Algorithm  `json:"encryption"`
	Integrity  *Algorithm `json:"integrity,omitempty"` // nil for AEAD ciphers
	In         SAKeys     `json:"in"`
	Out        SAKeys     `json:"out"`
	// PFSGroup is the key-exchange group used for this SA's keys (0 = none).
	PFSGroup suite.DHGroup `json:"pfs_group"`

	LocalTS  []TrafficSelector `json:"local_ts"`
	RemoteTS []TrafficSelector `json:"remote_ts"`

	ESN          bool     `json:"esn"`
	ReplayWindow uint32   `json:"replay_window"`
	Lifetime     Lifetime `json:"lifetime"`
}

// Wipe zeroes the keys of both directions.
func (c *ChildSA) Wipe() {
	c.In.wipe()
	c.Out.wipe()
}

// WithoutKeys returns a copy that carries no key material (for deletion
// notices and status views).
func (c ChildSA) WithoutKeys() ChildSA {
	c.In, c.Out = SAKeys{}, SAKeys{}
	return c
}

func (c ChildSA) String() string {
	return fmt.Sprintf("%s %v in=%08x out=%08x %v<->%v", c.Name, c.Protocol, c.SPIIn, c.SPIOut, c.Local, c.Remote)
}
