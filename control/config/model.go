package config

import (
	"net/netip"

	"github.com/bpfvpn/bpfvpn/control/config/secret"
)

// Config is the typed, validated configuration that the rest of bpfvpn
// compiles from. Every reference is resolved (names to objects, address names
// to prefixes, application names to protocol/port terms, interface names to
// Linux names) and every default of the Defaults table is filled in. Inactive
// statements are absent. Slices keep configuration order.
type Config struct {
	// DefaultsVersion is the version of the defaults table that was applied.
	DefaultsVersion int `json:"defaults-version"`
	// InterfaceMap maps vendor interface names (ge-0/0/1) to Linux names
	// (eth1), from `system interface-map`.
	InterfaceMap map[string]string `json:"interface-map,omitempty"`
	// Interfaces are the physical and tunnel interfaces (st0 is one Interface
	// whose units are the st0.N tunnels).
	Interfaces []*Interface `json:"interfaces"`
	// Routes are the static routes of inet.0 and inet6.0.
	Routes []*Route `json:"routes"`
	// Zones are the security zones.
	Zones []*Zone `json:"zones"`
	// AddressBooks are the global book, named books attached to zones and
	// legacy zone books (Zone set), each with its addresses and sets.
	AddressBooks []*AddressBook `json:"address-books"`
	// Applications are the user-defined applications (predefined junos-*
	// ones are looked up with PredefinedApplication).
	Applications []*Application `json:"applications"`
	// ApplicationSets are the user-defined application sets.
	ApplicationSets []*ApplicationSet `json:"application-sets"`
	// Policies are the security policies of every zone pair.
	Policies Policies `json:"policies"`
	// Flow holds `security flow` settings.
	Flow Flow `json:"flow"`
	// IKE holds `security ike`.
	IKE IKE `json:"ike"`
	// IPsec holds `security ipsec`.
	IPsec IPsec `json:"ipsec"`
}

// Interface is `interfaces NAME`.
type Interface struct {
	// Name is the name as configured (ge-0/0/1, eth1, st0).
	Name string `json:"name"`
	// LinuxName is the Linux device: the interface-map target, or Name.
	LinuxName string `json:"linux-name"`
	// Tunnel is true for st0, the secure tunnel interface.
	Tunnel      bool    `json:"tunnel,omitempty"`
	Description string  `json:"description,omitempty"`
	Disable     bool    `json:"disable,omitempty"`
	MTU         int     `json:"mtu,omitempty"`
	Units       []*Unit `json:"units"`
	Pos         Pos     `json:"pos,omitzero"`
}

// Unit is a logical interface `interfaces NAME unit N`; zones, routes and
// VPNs refer to units by Name (ge-0/0/0.0, st0.0).
type Unit struct {
	// Name is the logical name NAME.N as zones and routes write it.
	Name string `json:"name"`
	// Interface is the configured physical name (ge-0/0/0, st0).
	Interface string `json:"interface"`
	// Number is N.
	Number int `json:"number"`
	// LinuxName is the Linux device of the unit: for st0 units "st0.N" (an
	// xfrm interface); for others the mapped device for unit 0 and
	// "DEV.VLAN" for a VLAN unit.
	LinuxName string `json:"linux-name"`
	// VLANID is the 802.1Q id (vlan-id, or N for units > 0), 0 for untagged.
	VLANID int `json:"vlan-id,omitempty"`
	// Tunnel is true for st0.N.
	Tunnel bool `json:"tunnel,omitempty"`
	// IfID is the XFRM interface id of st0.N: N+1 (0 would match policies
	// without if_id). Zero for non-tunnel units.
	IfID uint32 `json:"if-id,omitempty"`
	// Multipoint marks a point-to-multipoint st0 unit (several VPNs bound,
	// chosen by NextHopTunnels).
	Multipoint  bool   `json:"multipoint,omitempty"`
	Description string `json:"description,omitempty"`
	Disable     bool   `json:"disable,omitempty"`
	// Inet and Inet6 are the configured addresses (interface address with
	// prefix length), in order; the first is the primary one.
	Inet  []netip.Prefix `json:"inet,omitempty"`
	Inet6 []netip.Prefix `json:"inet6,omitempty"`
	// MTU is the family inet mtu, 0 if unset.
	MTU int `json:"mtu,omitempty"`
	// NextHopTunnels bind next-hop addresses to VPNs on a multipoint st0 unit.
	NextHopTunnels []NextHopTunnel `json:"next-hop-tunnels,omitempty"`
	// Zone is the security zone of the unit ("" if none).
	Zone string `json:"zone,omitempty"`
	// HostInbound is the resolved host-inbound-traffic of the unit (the
	// interface setting if present, else the zone's).
	HostInbound HostInbound `json:"host-inbound-traffic"`
	Pos         Pos         `json:"pos,omitzero"`
}

// NextHopTunnel is `family inet next-hop-tunnel ADDR ipsec-vpn VPN`.
type NextHopTunnel struct {
	Address netip.Addr `json:"address"`
	VPN     string     `json:"ipsec-vpn"`
	Pos     Pos        `json:"pos,omitzero"`
}

// Route is a static route.
type Route struct {
	// Prefix is the destination.
	Prefix netip.Prefix `json:"prefix"`
	// NextHops are the next hops of equal preference (addresses or st0.N).
	NextHops []NextHop `json:"next-hops,omitempty"`
	// Qualified are the qualified next hops, each with its own preference
	// (primary / backup VPN).
	Qualified []NextHop `json:"qualified-next-hops,omitempty"`
	// Preference is the route preference (default 5).
	Preference int `json:"preference"`
	// Metric is the route metric (0 if unset).
	Metric int `json:"metric,omitempty"`
	// Discard and Reject are the blackhole forms.
	Discard bool `json:"discard,omitempty"`
	Reject  bool `json:"reject,omitempty"`
	Pos     Pos  `json:"pos,omitzero"`
}

// NextHop is one next hop of a route: a gateway address or an interface unit.
type NextHop struct {
	// Address is set for a gateway next hop.
	Address netip.Addr `json:"address,omitzero"`
	// Interface is the unit name for an interface next hop (st0.0).
	Interface string `json:"interface,omitempty"`
	// LinuxName is the Linux device of Interface.
	LinuxName string `json:"linux-name,omitempty"`
	// Preference of a qualified next hop (the route's preference otherwise).
	Preference int `json:"preference"`
	Metric     int `json:"metric,omitempty"`
}

// Zone is `security zones security-zone NAME`.
type Zone struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Interfaces are the unit names (ge-0/0/0.0, st0.0) in the zone.
	Interfaces []string `json:"interfaces"`
	// HostInbound is the zone-level host-inbound-traffic.
	HostInbound HostInbound `json:"host-inbound-traffic"`
	// InterfaceHostInbound holds the interface-level overrides by unit name.
	InterfaceHostInbound map[string]HostInbound `json:"interface-host-inbound-traffic,omitempty"`
	// Book is the address book the zone sees: its attached or legacy book
	// merged with global. Not in JSON (AddressBooks has the books).
	Book *ResolvedBook `json:"-"`
	Pos  Pos           `json:"pos,omitzero"`
}

// HostInbound is a resolved host-inbound-traffic setting: the system services
// and protocols that may reach the router itself, with `all` and `except`
// already applied.
type HostInbound struct {
	// Services are the enabled system-services names, sorted.
	Services []string `json:"system-services,omitempty"`
	// Protocols are the enabled protocols names, sorted.
	Protocols []string `json:"protocols,omitempty"`
	// Rules are Services and Protocols as packet matches, for the data plane.
	Rules []HostInboundRule `json:"-"`
}

// HostInboundRule is one packet match of a host-inbound service or protocol.
type HostInboundRule struct {
	// Name is the service or protocol (ike, ping, bgp).
	Name string
	// Protocol is the IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, 89 OSPF, …).
	Protocol uint8
	// Ports is the destination port range for TCP/UDP; zero for other protocols.
	Ports PortRange
	// ICMPType is the ICMP type for ICMP matches, -1 for any.
	ICMPType int
}

// Allows reports whether the service or protocol name is enabled.
func (h HostInbound) Allows(name string) bool {
	for _, s := range h.Services {
		if s == name {
			return true
		}
	}
	for _, s := range h.Protocols {
		if s == name {
			return true
		}
	}
	return false
}

// AddressBook is one address book.
type AddressBook struct {
	// Name is "global", a named book, or the zone name for a legacy zone book.
	Name string `json:"name"`
	// Zone is set for a legacy `security-zone Z address-book`.
	Zone string `json:"zone,omitempty"`
	// AttachZones are the zones a named book is attached to.
	AttachZones []string      `json:"attach-zones,omitempty"`
	Addresses   []*Address    `json:"addresses"`
	Sets        []*AddressSet `json:"address-sets,omitempty"`
	Pos         Pos           `json:"pos,omitzero"`
}

// Address is `address NAME PREFIX` (host bits are zero).
type Address struct {
	Name   string       `json:"name"`
	Prefix netip.Prefix `json:"prefix"`
	Pos    Pos          `json:"pos,omitzero"`
}

// AddressSet is `address-set NAME` with its members by name.
type AddressSet struct {
	Name      string   `json:"name"`
	Addresses []string `json:"addresses,omitempty"`
	Sets      []string `json:"address-sets,omitempty"`
	// Prefixes is the expansion of all members, deduplicated.
	Prefixes []netip.Prefix `json:"prefixes"`
	Pos      Pos            `json:"pos,omitzero"`
}

// ResolvedBook maps the address names visible in a zone (its own book, then
// global) to prefixes. The returned slices are shared: read-only.
type ResolvedBook struct {
	own, global map[string][]netip.Prefix
}

// Lookup returns the prefixes of an address or address-set name; `any`,
// `any-ipv4` and `any-ipv6` are predefined.
func (b *ResolvedBook) Lookup(name string) ([]netip.Prefix, bool) {
	switch name {
	case "any", "any-ipv4", "any-ipv6":
		return anyAddresses[name], true
	}
	if b == nil {
		return nil, false
	}
	if p, ok := b.own[name]; ok {
		return p, true
	}
	p, ok := b.global[name]
	return p, ok
}

var anyAddresses = map[string][]netip.Prefix{
	"any":      {netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")},
	"any-ipv4": {netip.MustParsePrefix("0.0.0.0/0")},
	"any-ipv6": {netip.MustParsePrefix("::/0")},
}

// Application is a user-defined `applications application NAME`, or a
// predefined junos-* application.
type Application struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Terms are what the application matches (one for user definitions).
	Terms []AppTerm `json:"terms"`
	// InactivityTimeout in seconds, 0 for the protocol default.
	InactivityTimeout int  `json:"inactivity-timeout,omitempty"`
	Predefined        bool `json:"predefined,omitempty"`
	Pos               Pos  `json:"pos,omitzero"`
}

// AppTerm is one protocol match of an application.
type AppTerm struct {
	// Protocol is the IP protocol number; 0 means any protocol.
	Protocol uint8 `json:"protocol"`
	// SrcPorts and DstPorts are inclusive port ranges; the zero range
	// {0,0} means any port (only meaningful for TCP and UDP).
	SrcPorts PortRange `json:"source-port"`
	DstPorts PortRange `json:"destination-port"`
	// ICMPType and ICMPCode match ICMP/ICMPv6; -1 is any.
	ICMPType int `json:"icmp-type"`
	ICMPCode int `json:"icmp-code"`
}

// PortRange is an inclusive range of ports; {0,0} and {0,65535} mean any.
type PortRange struct {
	Lo uint16 `json:"lo"`
	Hi uint16 `json:"hi"`
}

// Any reports whether the range matches every port.
func (r PortRange) Any() bool { return r.Lo == 0 && (r.Hi == 0 || r.Hi == 65535) }

// ApplicationSet is `applications application-set NAME`.
type ApplicationSet struct {
	Name         string   `json:"name"`
	Applications []string `json:"applications,omitempty"`
	Sets         []string `json:"application-sets,omitempty"`
	// Terms is the expansion of all members.
	Terms []AppTerm `json:"terms"`
	Pos   Pos       `json:"pos,omitzero"`
}

// Action is what a policy does with the first packet of a flow.
type Action uint8

const (
	// ActionDeny drops silently.
	ActionDeny Action = iota
	// ActionPermit creates a session.
	ActionPermit
	// ActionReject answers with TCP RST or ICMP unreachable.
	ActionReject
)

func (a Action) String() string {
	switch a {
	case ActionPermit:
		return "permit"
	case ActionReject:
		return "reject"
	}
	return "deny"
}

// MarshalText writes the action name.
func (a Action) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// Policies is `security policies`.
type Policies struct {
	// Contexts are the zone pairs in configuration order.
	Contexts []*PolicyContext `json:"contexts"`
	// Default is the action of the implicit last policy: deny unless
	// `default-policy permit-all`.
	Default Action `json:"default-policy"`
}

// PolicyContext is `from-zone A to-zone B`: an ordered policy list, first
// match wins.
type PolicyContext struct {
	From     string    `json:"from-zone"`
	To       string    `json:"to-zone"`
	Policies []*Policy `json:"policies"`
	Pos      Pos       `json:"pos,omitzero"`
}

// Policy is one security policy. Source, Destination and Terms may share
// storage with address books, applications and other policies: read-only.
type Policy struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// SourceAddresses, DestinationAddresses and Applications are the names
	// as configured.
	SourceAddresses      []string `json:"source-address"`
	DestinationAddresses []string `json:"destination-address"`
	Applications         []string `json:"application"`
	// Source and Destination are the resolved prefixes (sets expanded, `any`
	// = 0.0.0.0/0 and ::/0, any-ipv4, any-ipv6), deduplicated.
	Source      []netip.Prefix `json:"source-prefixes,omitempty"`
	Destination []netip.Prefix `json:"destination-prefixes,omitempty"`
	// AnyApplication is true when `application any` is among Applications.
	AnyApplication bool `json:"any-application,omitempty"`
	// Terms are the resolved application terms (nil with AnyApplication).
	Terms []AppTerm `json:"terms,omitempty"`
	// Action is permit, deny or reject.
	Action Action `json:"action"`
	// Count is `then count`.
	Count bool `json:"count,omitempty"`
	// LogInit and LogClose are `then log session-init|session-close`.
	LogInit  bool `json:"log-session-init,omitempty"`
	LogClose bool `json:"log-session-close,omitempty"`
	Pos      Pos  `json:"pos,omitzero"`
}

// Flow is `security flow`.
type Flow struct {
	// TCPMSSIPsecVPN is `tcp-mss ipsec-vpn mss N` (1320 if ipsec-vpn is set
	// without mss); 0 means off.
	TCPMSSIPsecVPN int `json:"tcp-mss-ipsec-vpn,omitempty"`
	// TCPMSSAllTCP is `tcp-mss all-tcp mss N`; 0 means off.
	TCPMSSAllTCP int `json:"tcp-mss-all-tcp,omitempty"`
}

// IKE is `security ike`.
type IKE struct {
	Proposals []*IKEProposal `json:"proposals"`
	Policies  []*IKEPolicy   `json:"policies"`
	Gateways  []*IKEGateway  `json:"gateways"`
}

// IKEProposal is an IKE (phase 1) proposal with defaults filled in.
type IKEProposal struct {
	Name string `json:"name"`
	// AuthenticationMethod is pre-shared-keys (rsa-signatures and others are
	// parsed but not supported by the IKE engines).
	AuthenticationMethod string `json:"authentication-method"`
	// DHGroup is the Diffie-Hellman group number (19 = ECP-256).
	DHGroup int `json:"dh-group"`
	// AuthenticationAlgorithm is md5, sha1, sha-256 or sha-384 (PRF and
	// integrity).
	AuthenticationAlgorithm string `json:"authentication-algorithm"`
	// EncryptionAlgorithm is des-cbc, 3des-cbc, aes-128-cbc, aes-192-cbc,
	// aes-256-cbc, aes-128-gcm or aes-256-gcm.
	EncryptionAlgorithm string `json:"encryption-algorithm"`
	LifetimeSeconds     int    `json:"lifetime-seconds"`
	// FromSet names the proposal-set this proposal comes from ("" for user ones).
	FromSet string `json:"from-proposal-set,omitempty"`
	Pos     Pos    `json:"pos,omitzero"`
}

// IKEPolicy is `security ike policy NAME`.
type IKEPolicy struct {
	Name string `json:"name"`
	// Mode is main or aggressive (IKEv1).
	Mode string `json:"mode"`
	// ProposalNames or ProposalSet as configured.
	ProposalNames []string `json:"proposals,omitempty"`
	ProposalSet   string   `json:"proposal-set,omitempty"`
	// Proposals is the resolved list, in preference order.
	Proposals []*IKEProposal `json:"resolved-proposals"`
	// PreSharedKey is the key (redacted in every printed form).
	PreSharedKey secret.Value `json:"pre-shared-key"`
	Pos          Pos          `json:"pos,omitzero"`
}

// IKEGateway is `security ike gateway NAME`.
type IKEGateway struct {
	Name string `json:"name"`
	// PolicyName is ike-policy; Policy the resolved policy.
	PolicyName string     `json:"ike-policy"`
	Policy     *IKEPolicy `json:"-"`
	// Addresses are the peer addresses (the first is tried first).
	Addresses []netip.Addr `json:"address"`
	// ExternalInterface is the unit name (ge-0/0/1.0); ExternalLinux its device.
	ExternalInterface string `json:"external-interface"`
	ExternalLinux     string `json:"external-linux-name"`
	// LocalAddress is local-address, or the first address of the external
	// interface of the peer's family.
	LocalAddress netip.Addr `json:"local-address"`
	// Version is 1 (v1-only, the default) or 2 (v2-only).
	Version int `json:"version"`
	// DPD is dead-peer-detection; nil when not configured.
	DPD *DPD `json:"dead-peer-detection,omitempty"`
	// NATTraversal is true unless `nat-traversal disable` / no-nat-traversal.
	NATTraversal   bool      `json:"nat-traversal"`
	LocalIdentity  *Identity `json:"local-identity,omitempty"`
	RemoteIdentity *Identity `json:"remote-identity,omitempty"`
	// GeneralIKEID accepts any peer identity.
	GeneralIKEID bool `json:"general-ikeid,omitempty"`
	Pos          Pos  `json:"pos,omitzero"`
}

// DPD is dead-peer-detection of a gateway.
type DPD struct {
	// Mode is optimized (default), probe-idle-tunnel or always-send.
	Mode      string `json:"mode"`
	Interval  int    `json:"interval"`
	Threshold int    `json:"threshold"`
}

// Identity is a local-identity or remote-identity.
type Identity struct {
	// Type is inet, inet6, hostname, user-at-hostname or distinguished-name.
	Type  string `json:"type"`
	Value string `json:"value,omitempty"`
}

// IPsec is `security ipsec`.
type IPsec struct {
	Proposals []*IPsecProposal `json:"proposals"`
	Policies  []*IPsecPolicy   `json:"policies"`
	VPNs      []*VPN           `json:"vpns"`
}

// IPsecProposal is an IPsec (phase 2) proposal with defaults filled in.
type IPsecProposal struct {
	Name string `json:"name"`
	// Protocol is esp or ah.
	Protocol string `json:"protocol"`
	// EncryptionAlgorithm as in IKEProposal, "" for AH.
	EncryptionAlgorithm string `json:"encryption-algorithm,omitempty"`
	// AuthenticationAlgorithm is hmac-md5-96, hmac-sha1-96,
	// hmac-sha-256-128, hmac-sha-384-192, hmac-sha-512-256; "" with GCM.
	AuthenticationAlgorithm string `json:"authentication-algorithm,omitempty"`
	LifetimeSeconds         int    `json:"lifetime-seconds"`
	// LifetimeKilobytes is 0 for unlimited.
	LifetimeKilobytes int    `json:"lifetime-kilobytes"`
	FromSet           string `json:"from-proposal-set,omitempty"`
	Pos               Pos    `json:"pos,omitzero"`
}

// IPsecPolicy is `security ipsec policy NAME`.
type IPsecPolicy struct {
	Name          string           `json:"name"`
	ProposalNames []string         `json:"proposals,omitempty"`
	ProposalSet   string           `json:"proposal-set,omitempty"`
	Proposals     []*IPsecProposal `json:"resolved-proposals"`
	// PFSGroup is the DH group of perfect-forward-secrecy, 0 for none.
	PFSGroup int `json:"pfs-group,omitempty"`
	Pos      Pos `json:"pos,omitzero"`
}

// VPN is `security ipsec vpn NAME`, one route-based tunnel.
type VPN struct {
	Name string `json:"name"`
	// BindInterface is the st0 unit name (st0.0); IfID its XFRM if_id.
	BindInterface string `json:"bind-interface"`
	IfID          uint32 `json:"if-id"`
	// GatewayName and Gateway are `ike gateway`.
	GatewayName string      `json:"ike-gateway"`
	Gateway     *IKEGateway `json:"-"`
	// PolicyName and Policy are `ike ipsec-policy`.
	PolicyName string       `json:"ipsec-policy"`
	Policy     *IPsecPolicy `json:"-"`
	// ProxyIdentity are the traffic selectors (default 0.0.0.0/0 both ways,
	// service any).
	ProxyIdentity ProxyIdentity `json:"proxy-identity"`
	// EstablishImmediately is `establish-tunnels immediately` (on-traffic otherwise).
	EstablishImmediately bool `json:"establish-immediately"`
	// DFBit is clear (default), copy or set.
	DFBit      string      `json:"df-bit"`
	VPNMonitor *VPNMonitor `json:"vpn-monitor,omitempty"`
	Pos        Pos         `json:"pos,omitzero"`
}

// ProxyIdentity is the traffic selector pair of a VPN. Unless configured it
// is 0.0.0.0/0 both ways, or ::/0 when the bound st0 unit has only IPv6
// addresses.
type ProxyIdentity struct {
	Local  netip.Prefix `json:"local"`
	Remote netip.Prefix `json:"remote"`
	// Service is an application name; "any" by default.
	Service string `json:"service"`
	// ServiceTerms are the resolved terms of Service (nil for any).
	ServiceTerms []AppTerm `json:"service-terms,omitempty"`
	// Configured is true when proxy-identity was written (not defaulted).
	Configured bool `json:"configured,omitempty"`
}

// VPNMonitor is vpn-monitor of a VPN.
type VPNMonitor struct {
	Optimized       bool       `json:"optimized,omitempty"`
	SourceInterface string     `json:"source-interface,omitempty"`
	DestinationIP   netip.Addr `json:"destination-ip,omitzero"`
}
