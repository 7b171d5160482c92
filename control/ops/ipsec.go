package ops

import (
	"fmt"
	"io"
	"net/netip"
	"strconv"
)

// MonitorState is the VPN-monitoring column: "-" off, "U" up, "D" down.
type MonitorState string

const (
	MonitorOff  MonitorState = "-"
	MonitorUp   MonitorState = "U"
	MonitorDown MonitorState = "D"
)

// ProxyID is one side of a traffic selector (proxy identity). The
// route-based default is 0.0.0.0/0 (or ::/0), protocol any, port 0.
type ProxyID struct {
	Prefix   netip.Prefix `json:"prefix"`
	Protocol string       `json:"protocol"` // "any", "tcp", "udp", "icmp" or a number
	Port     uint16       `json:"port"`
}

// String prints the device form: ipv4_subnet(any:0,[0..7]=0.0.0.0/0) for a
// subnet, ipv4(any:0,[0..3]=10.0.0.1) for a host, ipv6_subnet / ipv6 with
// byte ranges [0..31] / [0..15].
func (p ProxyID) String() string {
	proto := p.Protocol
	if proto == "" {
		proto = "any"
	}
	if !p.Prefix.IsValid() {
		return fmt.Sprintf("ipv4_subnet(%s:%d,[0..7]=0.0.0.0/0)", proto, p.Port)
	}
	pfx := p.Prefix.Masked()
	addr := pfx.Addr().Unmap()
	host := pfx.Bits() == addr.BitLen()
	kind, bytes := "ipv4", 4
	if addr.Is6() {
		kind, bytes = "ipv6", 16
	}
	if host {
		return fmt.Sprintf("%s(%s:%d,[0..%d]=%s)", kind, proto, p.Port, bytes-1, addr)
	}
	return fmt.Sprintf("%s_subnet(%s:%d,[0..%d]=%s)", kind, proto, p.Port, 2*bytes-1, pfx)
}

// SPI is an IPsec security parameter index; it prints as 8 hex digits in
// text and JSON alike.
type SPI uint32

func (s SPI) String() string { return fmt.Sprintf("%08x", uint32(s)) }

// MarshalText gives the 8 hex digits.
func (s SPI) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses hex digits.
func (s *SPI) UnmarshalText(b []byte) error {
	v, err := strconv.ParseUint(string(b), 16, 32)
	if err != nil {
		return fmt.Errorf("spi %q: %w", b, err)
	}
	*s = SPI(v)
	return nil
}

// IPsecSADirection is one half of an IPsec SA pair.
type IPsecSADirection struct {
	SPI                 SPI    `json:"spi"`
	AuxSPI              uint32 `json:"aux-spi"`
	HardLifetimeSeconds int64  `json:"hard-lifetime-seconds"`
	SoftLifetimeSeconds int64  `json:"soft-lifetime-seconds"`
	// LifesizeRemainingKB is the volume left before rekey; 0 means unlimited.
	LifesizeRemainingKB uint64 `json:"lifesize-remaining-kb"`
	Mode                string `json:"mode"`  // Tunnel
	Type                string `json:"type"`  // dynamic (IKE) or manual
	State               string `json:"state"` // installed
	AntiReplay          bool   `json:"anti-replay"`
	ReplayWindow        uint32 `json:"replay-window-size"`
}

// IPsecSA is one IPsec SA pair of a tunnel (the two rows of the list view
// and one block of the detail view).
type IPsecSA struct {
	ID             uint32       `json:"id"`
	VPNName        string       `json:"vpn-name"`
	LocalGateway   netip.Addr   `json:"local-gateway"`
	RemoteGateway  netip.Addr   `json:"remote-gateway"`
	LocalIdentity  ProxyID      `json:"local-identity"`
	RemoteIdentity ProxyID      `json:"remote-identity"`
	Version        string       `json:"version"` // IKEv1 or IKEv2
	DFBit          string       `json:"df-bit"`  // clear, set or copy
	BindInterface  string       `json:"bind-interface"`
	Port           uint16       `json:"port"` // 500, or 4500 under NAT-T
	NegoCount      uint32       `json:"negotiations"`
	FailCount      uint32       `json:"failures"`
	DefDelCount    uint32       `json:"deferred-deletes"`
	Flag           uint32       `json:"flag"`
	Monitoring     MonitorState `json:"vpn-monitoring"`
	Protocol       string       `json:"protocol"` // ESP or AH
	// Encryption and Authentication are configuration-language names
	// (aes-256-gcm, hmac-sha-256-128) or the engines' IANA names
	// (AES-GCM-16-256); Authentication is empty for AEAD.
	Encryption     string           `json:"encryption-algorithm"`
	Authentication string           `json:"authentication-algorithm,omitempty"`
	Inbound        IPsecSADirection `json:"inbound"`
	Outbound       IPsecSADirection `json:"outbound"`
}

// IPsecSAs is the answer to `show security ipsec security-associations`.
type IPsecSAs struct {
	SAs []IPsecSA `json:"ipsec-security-associations"`
}

// activeTunnels counts distinct tunnels (IDs) among the SAs.
func (v IPsecSAs) activeTunnels() int {
	seen := map[uint32]bool{}
	for _, sa := range v.SAs {
		seen[sa.ID] = true
	}
	return len(seen)
}

// WriteText prints the list layout: totals, column header, an inbound (<)
// and an outbound (>) row per SA pair.
func (v IPsecSAs) WriteText(w io.Writer) error {
	ew := errWriter{w: w}
	ew.printf("  Total active tunnels: %d     Total IPsec sas: %d\n", v.activeTunnels(), len(v.SAs))
	ew.line("  ID      Algorithm       SPI      Life:sec/kb  Mon lsys Port  Gateway")
	for _, sa := range v.SAs {
		alg := espListAlgorithm(sa.Protocol, sa.Encryption, sa.Authentication)
		for _, d := range []struct {
			mark string
			dir  IPsecSADirection
		}{{"<", sa.Inbound}, {">", sa.Outbound}} {
			ew.printf("  %s%d %s %s %d/ %s %s root %d %s\n", d.mark, sa.ID, alg, d.dir.SPI,
				d.dir.HardLifetimeSeconds, lifesizeShort(d.dir.LifesizeRemainingKB), monitor(sa.Monitoring),
				sa.Port, addrString(sa.RemoteGateway))
		}
	}
	return ew.err
}

// IPsecSADetails is the answer to `show security ipsec security-associations
// [index N] detail`.
type IPsecSADetails IPsecSAs

// WriteText prints one detail block per SA pair, separated by blank lines.
func (v IPsecSADetails) WriteText(w io.Writer) error {
	ew := errWriter{w: w}
	for i, sa := range v.SAs {
		if i > 0 {
			ew.line("")
		}
		ew.printf("ID: %d Virtual-system: root, VPN Name: %s\n", sa.ID, sa.VPNName)
		ew.printf("  Local Gateway: %s, Remote Gateway: %s\n", addrString(sa.LocalGateway), addrString(sa.RemoteGateway))
		ew.printf("  Local Identity: %s\n", sa.LocalIdentity)
		ew.printf("  Remote Identity: %s\n", sa.RemoteIdentity)
		ew.printf("  Version: %s\n", sa.Version)
		ew.printf("  DF-bit: %s, Bind-interface: %s\n", orDefault(sa.DFBit, "clear"), sa.BindInterface)
		ew.printf("  Port: %d, Nego#: %d, Fail#: %d, Def-Del#: %d Flag: %#x\n", sa.Port, sa.NegoCount, sa.FailCount, sa.DefDelCount, sa.Flag)
		auth, enc := espDetailAlgorithms(sa.Encryption, sa.Authentication)
		for _, d := range []struct {
			name string
			dir  IPsecSADirection
		}{{"inbound", sa.Inbound}, {"outbound", sa.Outbound}} {
			ew.printf("  Direction: %s, SPI: %s, AUX-SPI: %d, VPN Monitoring: %s\n", d.name, d.dir.SPI, d.dir.AuxSPI, monitor(sa.Monitoring))
			ew.printf("    Hard lifetime: Expires in %d seconds\n", d.dir.HardLifetimeSeconds)
			ew.printf("    Lifesize Remaining:  %s\n", lifesizeLong(d.dir.LifesizeRemainingKB))
			ew.printf("    Soft lifetime: Expires in %d seconds\n", d.dir.SoftLifetimeSeconds)
			ew.printf("    Mode: %s(0 0), Type: %s, State: %s\n", orDefault(d.dir.Mode, "Tunnel"), orDefault(d.dir.Type, "dynamic"), orDefault(d.dir.State, "installed"))
			ew.printf("    Protocol: %s, Authentication: %s, Encryption: %s\n", orDefault(sa.Protocol, "ESP"), auth, enc)
			replay := "disabled"
			if d.dir.AntiReplay {
				replay = "enabled"
			}
			ew.printf("    Anti-replay service: counter-based %s, Replay window size: %d\n", replay, d.dir.ReplayWindow)
		}
	}
	return ew.err
}

func lifesizeShort(kb uint64) string {
	if kb == 0 {
		return "unlim"
	}
	return strconv.FormatUint(kb, 10)
}

func lifesizeLong(kb uint64) string {
	if kb == 0 {
		return "Unlimited"
	}
	return strconv.FormatUint(kb, 10) + " kilobytes"
}

func monitor(m MonitorState) string {
	if m == "" {
		return string(MonitorOff)
	}
	return string(m)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
