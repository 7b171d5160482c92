package dataplane

import (
	"net/netip"
	"testing"

	"github.com/bpfvpn/bpfvpn/control/config"
)

func TestFromConfigSRX1(t *testing.T) {
	cfg, diags, err := config.Load("../config/testdata/srx1.set")
	if err != nil || diags.HasErrors() {
		t.Fatalf("load: %v %v", err, diags)
	}
	s, warns, err := FromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 0 {
		t.Errorf("warnings: %v", warns)
	}
	zones := map[string]Zone{}
	for _, z := range s.Zones {
		zones[z.Name] = z
	}
	if len(zones["untrust"].HostInbound.Services) != 1 || zones["untrust"].HostInbound.Services[0] != "ike" {
		t.Errorf("untrust host-inbound %+v, want ike", zones["untrust"].HostInbound)
	}
	if m, _ := zones["trust"].HostInbound.Mask(); m != 1<<Services["ping"] {
		t.Errorf("trust mask %#x", m)
	}
	ifz := map[string]Interface{}
	for _, i := range s.Interfaces {
		ifz[i.Name] = i
	}
	if ifz["st0.0"].Zone != "vpn" || !ifz["st0.0"].Tunnel {
		t.Errorf("st0.0: %+v", ifz["st0.0"])
	}
	var out *Policy
	for i := range s.Policies {
		if s.Policies[i].Name == "VPN-OUT" {
			out = &s.Policies[i]
		}
	}
	if out == nil || out.FromZone != "trust" || out.ToZone != "vpn" || out.Action != Permit || out.Apps != nil ||
		len(out.Source) != 1 || out.Source[0] != netip.MustParsePrefix("10.100.11.0/24") {
		t.Errorf("VPN-OUT: %+v", out)
	}
	if s.TCPMSS.IPsecVPN != 1350 {
		t.Errorf("tcp-mss %d", s.TCPMSS.IPsecVPN)
	}
	// the spec compiles (interfaces resolved by a fake)
	idx := map[string]uint32{}
	fake := func(name string) (Link, error) {
		if idx[name] == 0 {
			idx[name] = uint32(len(idx) + 10)
		}
		return Link{Name: name, Index: idx[name], L2: true}, nil
	}
	if _, err := Compile(s, 1, nil, fake); err != nil {
		t.Errorf("compile: %v", err)
	}
}

func TestFromConfigUnsupportedSourcePort(t *testing.T) {
	cfg, diags := config.ParseBytes("t.set", []byte(`set interfaces eth1 unit 0 family inet address 10.0.0.1/24
set security zones security-zone a interfaces eth1.0
set applications application src53 protocol udp source-port 53
set security policies from-zone a to-zone a policy p match source-address any
set security policies from-zone a to-zone a policy p match destination-address any
set security policies from-zone a to-zone a policy p match application src53
set security policies from-zone a to-zone a policy p then permit
`))
	if diags.HasErrors() {
		t.Fatalf("parse: %v", diags)
	}
	if _, _, err := FromConfig(cfg); err == nil {
		t.Error("a source-port application was accepted (it would widen the policy)")
	}
}

func TestRangePrefixes(t *testing.T) {
	for _, c := range []struct {
		lo, hi uint32
		n      int
	}{{80, 80, 1}, {0, 65535, 1}, {8000, 8010, 3}, {1, 65534, 30}} {
		ps := rangePrefixes(c.lo, c.hi)
		if len(ps) != c.n {
			t.Errorf("%d-%d: %d prefixes %v, want %d", c.lo, c.hi, len(ps), ps, c.n)
		}
		covered := uint32(0)
		for _, p := range ps {
			covered += 1 << (16 - p[1])
		}
		if covered != c.hi-c.lo+1 {
			t.Errorf("%d-%d: prefixes cover %d ports", c.lo, c.hi, covered)
		}
	}
}
