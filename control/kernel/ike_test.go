package kernel

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/bpfvpn/bpfvpn/ike"
	"github.com/bpfvpn/bpfvpn/ike/suite"
)

func ikeSA() ike.ChildSA {
	return ike.ChildSA{
		Name: "VPN-to-Host2", ReqID: 77, IfID: 1, IKEVersion: 2,
		Protocol: ike.ProtoESP, Mode: ike.ModeTunnel, SPIIn: 0x8f3a21c4, SPIOut: 0x5b0c77e1,
		Local: ip("172.16.13.1"), Remote: ip("172.16.23.1"),
		Encap:      &ike.UDPEncap{LocalPort: 4500, RemotePort: 4501},
		Encryption: ike.Algorithm{Name: "cbc(aes)", KeyBits: 256},
		Integrity:  &ike.Algorithm{Name: "hmac(sha256)", KeyBits: 256, TruncBits: 128},
		In:         ike.SAKeys{Encryption: suite.Key(strings.Repeat("a", 32)), Integrity: suite.Key(strings.Repeat("b", 32))},
		Out:        ike.SAKeys{Encryption: suite.Key(strings.Repeat("c", 32)), Integrity: suite.Key(strings.Repeat("d", 32))},
		LocalTS:    []ike.TrafficSelector{ike.PrefixSelector(pfx("0.0.0.0/0")), ike.PrefixSelector(pfx("::/0"))},
		RemoteTS:   []ike.TrafficSelector{ike.PrefixSelector(pfx("0.0.0.0/0")), ike.PrefixSelector(pfx("::/0"))},
		ESN:        true, ReplayWindow: 128,
		Lifetime: ike.Lifetime{SoftSeconds: 3000, HardSeconds: 3600},
	}
}

func TestFromIKE(t *testing.T) {
	in := ikeSA()
	c, err := FromIKE(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Unit != 0 || c.InboundSPI != in.SPIIn || c.OutboundSPI != in.SPIOut || c.Local != in.Local ||
		c.Integrity != "hmac(sha256)" || c.IntegrityBits != 128 || !c.ESN || c.ReplayWindow != 128 ||
		c.Encap == nil || c.Encap.RemotePort != 4501 || c.Lifetime.HardSeconds != 3600 {
		t.Errorf("converted %+v", c)
	}
	want := []Selector{{Local: pfx("0.0.0.0/0"), Remote: pfx("0.0.0.0/0")}, {Local: pfx("::/0"), Remote: pfx("::/0")}}
	if len(c.Selectors) != 2 || c.Selectors[0] != want[0] || c.Selectors[1] != want[1] {
		t.Errorf("selectors %+v, want %+v", c.Selectors, want)
	}
	// The engine wipes its keys when the SA dies: ours are copies.
	in.Wipe()
	if string(c.Inbound.Encryption) != strings.Repeat("a", 32) || string(c.Outbound.Integrity) != strings.Repeat("d", 32) {
		t.Error("keys were not copied")
	}
}

func TestFromIKEProxyIdentity(t *testing.T) {
	in := ikeSA()
	in.LocalTS = []ike.TrafficSelector{ike.PrefixSelector(pfx("10.100.11.0/24"))}
	in.RemoteTS = []ike.TrafficSelector{{Protocol: 6, Start: ip("10.100.22.0"), End: ip("10.100.22.255"), StartPort: 443, EndPort: 443}}
	c, err := FromIKE(in)
	if err != nil {
		t.Fatal(err)
	}
	want := Selector{Local: pfx("10.100.11.0/24"), Remote: pfx("10.100.22.0/24"), Protocol: 6, RemotePort: 443}
	if len(c.Selectors) != 1 || c.Selectors[0] != want {
		t.Errorf("selectors %+v, want %+v", c.Selectors, want)
	}
	ps := wantPolicies(c)
	if len(ps) != 3 || ps[0].DstPort != 443 || ps[1].SrcPort != 443 || ps[1].Src != pfx("10.100.22.0/24") {
		t.Errorf("policies %+v", ps)
	}
}

func TestFromIKERejects(t *testing.T) {
	for name, mut := range map[string]func(*ike.ChildSA){
		"if_id 0":        func(c *ike.ChildSA) { c.IfID = 0 },
		"transport mode": func(c *ike.ChildSA) { c.Mode = ike.ModeTransport },
		"AH":             func(c *ike.ChildSA) { c.Protocol = ike.ProtoAH },
		"address range": func(c *ike.ChildSA) {
			c.LocalTS = []ike.TrafficSelector{{Start: ip("10.0.0.1"), End: ip("10.0.0.5"), EndPort: 0xffff}}
		},
		"port range": func(c *ike.ChildSA) {
			c.LocalTS = []ike.TrafficSelector{{Start: ip("10.0.0.0"), End: ip("10.0.0.255"), StartPort: 1, EndPort: 9}}
		},
		"no common family": func(c *ike.ChildSA) {
			c.LocalTS = []ike.TrafficSelector{ike.PrefixSelector(pfx("10.0.0.0/8"))}
			c.RemoteTS = []ike.TrafficSelector{ike.PrefixSelector(netip.MustParsePrefix("fd00::/8"))}
		},
	} {
		c := ikeSA()
		mut(&c)
		if _, err := FromIKE(c); err == nil {
			t.Errorf("%s: converted", name)
		}
	}
}
