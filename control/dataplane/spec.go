// Package dataplane compiles a data-plane Spec (zones, interfaces,
// host-inbound services, policies with resolved addresses and
// applications, TCP MSS) into the contents of the BPF maps and applies it
// in place: interface and zone tables are diffed, policies are staged in
// the inactive generation and switched with one write of the config map.
package dataplane

import (
	"github.com/bpfvpn/bpfvpn/control/config"

	"net/netip"
	"time"
)

// Spec is the desired state of the data plane.
type Spec struct {
	Zones      []Zone
	Interfaces []Interface
	// Policies in evaluation order; first match in a zone pair wins.
	Policies []Policy
	// DefaultPermit is `security policies default-policy permit-all`.
	DefaultPermit bool
	TCPMSS        TCPMSS
	// LocalAddrs are extra addresses of the router (the addresses of the
	// attached interfaces are found automatically).
	LocalAddrs []netip.Addr
	Timeouts   Timeouts
	IKELimit   IKELimit
}

// Zone is a security zone and its host-inbound services.
type Zone struct {
	Name        string
	HostInbound HostInbound
}

// Interface puts a Linux interface into a zone.
type Interface struct {
	Name string
	// VLAN, when non-zero, is unit N with vlan-id N on device Name: tagged
	// frames arriving on Name. The VLAN device Name.N, when it exists, is
	// used for route lookups.
	VLAN uint16
	Zone string
	// Tunnel marks st0.N (automatic for xfrm devices).
	Tunnel bool
	// HostInbound, when set, overrides the zone's services.
	HostInbound *HostInbound
	// Redirect allows XDP_REDIRECT of plain permitted traffic to and from
	// this interface once the neighbour is resolved.
	Redirect bool
}

// HostInbound lists `host-inbound-traffic` system-services and protocols;
// "all" enables every name and Except names are removed afterwards.
type HostInbound struct {
	Services        []string
	ServicesExcept  []string
	Protocols       []string
	ProtocolsExcept []string
}

// Action of a policy.
type Action uint8

const (
	Deny Action = iota
	Permit
	Reject
)

func (a Action) String() string {
	switch a {
	case Permit:
		return "permit"
	case Reject:
		return "reject"
	}
	return "deny"
}

// Policy is one security policy with resolved match fields. A nil slice
// means any.
type Policy struct {
	Name        string
	FromZone    string
	ToZone      string
	Source      []netip.Prefix
	Destination []netip.Prefix
	Apps        []AppTerm
	Action      Action
	Count       bool
	Log         bool
	// origin is the configuration policy FromConfig made this one from
	// (nil otherwise). A compiled config.Policy is never changed (a
	// delta compiles the policies it touches anew), so two Policies with
	// the same origin in the same zone pair are equal.
	origin *config.Policy
}

// AppTerm matches one protocol (0 = any) and a destination port range
// (TCP, UDP, SCTP; 0-0 = any port) or an ICMP / ICMPv6 type and code.
type AppTerm struct {
	Proto    uint8
	PortLow  uint16
	PortHigh uint16
	// HasICMPType / HasICMPCode select ICMPType / ICMPCode (protocols 1, 58).
	HasICMPType bool
	ICMPType    uint8
	HasICMPCode bool
	ICMPCode    uint8
}

// TCPMSS is `security flow tcp-mss`: 0 disables a clamp.
type TCPMSS struct {
	IPsecVPN uint16
	AllTCP   uint16
}

// Timeouts are idle timeouts of sessions (zero fields take defaults).
type Timeouts struct {
	TCPInitial, TCPEstablished, TCPClosing, UDP, ICMP, Other time.Duration
}

// IKELimit bounds IKE packets to the router per source address.
type IKELimit struct {
	PerSecond uint32 // 0 = DefaultIKERate
	Burst     uint32
	Disabled  bool
}

// Defaults.
const (
	DefaultIKERate  = 50
	DefaultIKEBurst = 100
)

// DefaultTimeouts are used for zero fields of Spec.Timeouts.
var DefaultTimeouts = Timeouts{
	TCPInitial:     20 * time.Second,
	TCPEstablished: 1800 * time.Second,
	TCPClosing:     10 * time.Second,
	UDP:            60 * time.Second,
	ICMP:           60 * time.Second,
	Other:          60 * time.Second,
}
