// Package lab builds the two-site reference topology of the route-based VPN
// guide in network namespaces (Host1 ─ SRX1 ─ Internet ─ SRX2 ─ Host2), tears
// it down, reports its state, runs code inside its namespaces and writes the
// SRX1 and SRX2 configurations that bpfvpn gateways apply there.
package lab

import "net/netip"

// Node names of the reference topology. A node's namespace is Prefix+node.
const (
	Host1    = "host1"
	SRX1     = "srx1"
	Internet = "internet"
	SRX2     = "srx2"
	Host2    = "host2"
)

// Nodes lists every node in the order Up creates them.
var Nodes = []string{Host1, SRX1, Internet, SRX2, Host2}

// Endpoint is one end of a point-to-point veth link.
type Endpoint struct {
	Node    string
	Link    string       // Linux interface name inside the node's namespace
	Vendor  string       // SRX interface name, for gateways ("" otherwise)
	Address netip.Prefix // the address of reference §2
}

// Wire is a veth pair between two nodes.
type Wire struct{ A, B Endpoint }

// Wires is the reference topology of §2. Host addresses (.2) are ours: the
// guide names only the networks.
var Wires = []Wire{
	{
		A: Endpoint{Node: Host1, Link: "eth0", Address: netip.MustParsePrefix("10.100.11.2/24")},
		B: Endpoint{Node: SRX1, Link: "eth0", Vendor: "ge-0/0/0", Address: netip.MustParsePrefix("10.100.11.1/24")},
	},
	{
		A: Endpoint{Node: SRX1, Link: "eth1", Vendor: "ge-0/0/1", Address: netip.MustParsePrefix("172.16.13.1/24")},
		B: Endpoint{Node: Internet, Link: "eth0", Address: netip.MustParsePrefix("172.16.13.2/24")},
	},
	{
		A: Endpoint{Node: Internet, Link: "eth1", Address: netip.MustParsePrefix("172.16.23.2/24")},
		B: Endpoint{Node: SRX2, Link: "eth1", Vendor: "ge-0/0/1", Address: netip.MustParsePrefix("172.16.23.1/24")},
	},
	{
		A: Endpoint{Node: SRX2, Link: "eth0", Vendor: "ge-0/0/0", Address: netip.MustParsePrefix("10.100.22.1/24")},
		B: Endpoint{Node: Host2, Link: "eth0", Address: netip.MustParsePrefix("10.100.22.2/24")},
	},
}

// DefaultRoutes are the hosts' default gateways (the gateways' own routes
// come from their configuration).
var DefaultRoutes = map[string]netip.Addr{
	Host1: netip.MustParseAddr("10.100.11.1"),
	Host2: netip.MustParseAddr("10.100.22.1"),
}

// Forwarders are the nodes that route between their interfaces.
var Forwarders = []string{SRX1, Internet, SRX2}

// IsGateway reports whether node is one of the two SRX roles.
func IsGateway(node string) bool { return node == SRX1 || node == SRX2 }

// Address returns the address of node on its Linux interface link.
func Address(node, link string) (netip.Prefix, bool) {
	for _, w := range Wires {
		for _, e := range []Endpoint{w.A, w.B} {
			if e.Node == node && e.Link == link {
				return e.Address, true
			}
		}
	}
	return netip.Prefix{}, false
}

// Endpoints returns the endpoints of node, in wire order.
func Endpoints(node string) []Endpoint {
	var out []Endpoint
	for _, w := range Wires {
		for _, e := range []Endpoint{w.A, w.B} {
			if e.Node == node {
				out = append(out, e)
			}
		}
	}
	return out
}
