package config

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
)

func loadTestdata(t *testing.T, name string) *Config {
	t.Helper()
	cfg, diags, err := Load(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if diags.HasErrors() {
		t.Fatalf("%s: unexpected errors:\n%s", name, diags)
	}
	for _, w := range diags {
		t.Logf("%s", w)
	}
	return cfg
}

func TestSRX1Model(t *testing.T) {
	cfg := loadTestdata(t, "srx1.set")
	if len(cfg.Interfaces) != 3 {
		t.Fatalf("interfaces %d", len(cfg.Interfaces))
	}
	st0 := cfg.Interfaces[2]
	if !st0.Tunnel || st0.Units[0].Name != "st0.0" || st0.Units[0].IfID != 1 || st0.Units[0].Zone != "vpn" {
		t.Errorf("st0 %+v", st0.Units[0])
	}
	if got := st0.Units[0].Inet; len(got) != 1 || got[0] != netip.MustParsePrefix("10.100.200.1/24") {
		t.Errorf("st0.0 inet %v", got)
	}
	wan := cfg.Interfaces[1].Units[0]
	if wan.LinuxName != "ge-0-0-1" || wan.Zone != "untrust" || !wan.HostInbound.Allows("ike") || wan.HostInbound.Allows("ping") {
		t.Errorf("wan %+v", wan)
	}
	if len(cfg.Routes) != 2 || cfg.Routes[0].NextHops[0].Interface != "st0.0" || cfg.Routes[1].NextHops[0].Address != netip.MustParseAddr("172.16.13.2") {
		t.Errorf("routes %+v", cfg.Routes)
	}
	if len(cfg.Policies.Contexts) != 3 {
		t.Fatalf("contexts %d", len(cfg.Policies.Contexts))
	}
	out := cfg.Policies.Contexts[1].Policies[0]
	if out.Name != "VPN-OUT" || out.Action != ActionPermit || !out.AnyApplication ||
		len(out.Source) != 1 || out.Source[0] != netip.MustParsePrefix("10.100.11.0/24") ||
		len(out.Destination) != 1 || out.Destination[0] != netip.MustParsePrefix("10.100.22.0/24") {
		t.Errorf("VPN-OUT %+v", out)
	}
	if cfg.Flow.TCPMSSIPsecVPN != 1350 {
		t.Errorf("mss %d", cfg.Flow.TCPMSSIPsecVPN)
	}
	gw := cfg.IKE.Gateways[0]
	if gw.Policy == nil || string(gw.Policy.PreSharedKey.Bytes()) != "$ABC123" || gw.LocalAddress != netip.MustParseAddr("172.16.13.1") ||
		gw.ExternalInterface != "ge-0/0/1.0" || gw.Version != 1 {
		t.Errorf("gateway %+v", gw)
	}
	p := cfg.IKE.Proposals[0]
	if p.DHGroup != 19 || p.EncryptionAlgorithm != "aes-256-cbc" || p.AuthenticationAlgorithm != "sha-256" || p.LifetimeSeconds != 28800 {
		t.Errorf("ike proposal defaults %+v", p)
	}
	ip := cfg.IPsec.Proposals[0]
	if ip.Protocol != "esp" || ip.EncryptionAlgorithm != "aes-256-gcm" || ip.AuthenticationAlgorithm != "" || ip.LifetimeSeconds != 3600 {
		t.Errorf("ipsec proposal defaults %+v", ip)
	}
	v := cfg.IPsec.VPNs[0]
	if v.Name != "VPN-to-Host2" || v.IfID != 1 || v.Gateway != gw || v.Policy == nil || !v.EstablishImmediately ||
		v.ProxyIdentity.Local != netip.MustParsePrefix("0.0.0.0/0") {
		t.Errorf("vpn %+v", v)
	}
}

func TestSRX2Model(t *testing.T) {
	cfg := loadTestdata(t, "srx2.set")
	if gw := cfg.IKE.Gateways[0]; gw.Addresses[0] != netip.MustParseAddr("172.16.13.1") || gw.LocalAddress != netip.MustParseAddr("172.16.23.1") {
		t.Errorf("gateway %+v", gw)
	}
}

func TestLookups(t *testing.T) {
	cfg := loadTestdata(t, "hub.set")
	if u := cfg.Unit("ge-0/0/1"); u == nil || u.Name != "ge-0/0/1.0" {
		t.Errorf("Unit(ge-0/0/1) = %+v", u)
	}
	if cfg.Unit("st0.1") == nil || cfg.Unit("st0.9") != nil {
		t.Errorf("Unit st0")
	}
	if cfg.Zone("vpn") == nil || cfg.Zone("nope") != nil {
		t.Errorf("Zone")
	}
	if cfg.Gateway("GW-DC") == nil || cfg.VPN("DC-BACKUP") == nil || cfg.VPN("OLD-VPN") != nil {
		t.Errorf("Gateway/VPN")
	}
	if vs := cfg.VPNsBoundTo("st0.0"); len(vs) != 2 || vs[0].Name != "SPOKE-A" {
		t.Errorf("VPNsBoundTo(st0.0) = %v", vs)
	}
}

func TestApplicationTermsAndProxyService(t *testing.T) {
	cfg, d := ParseBytes("a", []byte(validBase+
		"set applications application web8 protocol tcp destination-port 8080\n"+
		"set applications application-set webs application web8\n"+
		"set applications application-set webs application junos-https\n"+
		"set security ipsec vpn v ike proxy-identity service web8\n"))
	if cfg == nil {
		t.Fatal(d)
	}
	if terms, any, ok := cfg.ApplicationTerms("webs"); !ok || any || len(terms) != 2 || terms[0].DstPorts.Lo != 8080 {
		t.Errorf("webs: %v %v %v", terms, any, ok)
	}
	if _, any, ok := cfg.ApplicationTerms("any"); !ok || !any {
		t.Errorf("any")
	}
	if _, _, ok := cfg.ApplicationTerms("nope"); ok {
		t.Errorf("nope resolved")
	}
	if pi := cfg.IPsec.VPNs[0].ProxyIdentity; pi.Service != "web8" || len(pi.ServiceTerms) != 1 || pi.ServiceTerms[0].Protocol != 6 {
		t.Errorf("proxy identity %+v", pi)
	}
}

// TestReferenceApplications: the predefined applications of reference §5.
func TestReferenceApplications(t *testing.T) {
	for name, want := range map[string]AppTerm{
		"junos-http":      {Protocol: 6, DstPorts: PortRange{80, 80}, ICMPType: -1, ICMPCode: -1},
		"junos-https":     {Protocol: 6, DstPorts: PortRange{443, 443}, ICMPType: -1, ICMPCode: -1},
		"junos-ssh":       {Protocol: 6, DstPorts: PortRange{22, 22}, ICMPType: -1, ICMPCode: -1},
		"junos-telnet":    {Protocol: 6, DstPorts: PortRange{23, 23}, ICMPType: -1, ICMPCode: -1},
		"junos-dns-udp":   {Protocol: 17, DstPorts: PortRange{53, 53}, ICMPType: -1, ICMPCode: -1},
		"junos-dns-tcp":   {Protocol: 6, DstPorts: PortRange{53, 53}, ICMPType: -1, ICMPCode: -1},
		"junos-ntp":       {Protocol: 17, DstPorts: PortRange{123, 123}, ICMPType: -1, ICMPCode: -1},
		"junos-ike":       {Protocol: 17, DstPorts: PortRange{500, 500}, ICMPType: -1, ICMPCode: -1},
		"junos-ike-nat":   {Protocol: 17, DstPorts: PortRange{4500, 4500}, ICMPType: -1, ICMPCode: -1},
		"junos-icmp-all":  {Protocol: 1, ICMPType: -1, ICMPCode: -1},
		"junos-icmp-ping": {Protocol: 1, ICMPType: 8, ICMPCode: 0},
	} {
		terms, ok := PredefinedApplication(name)
		if !ok || len(terms) != 1 || terms[0] != want {
			t.Errorf("%s = %+v, want %+v", name, terms, want)
		}
	}
	if len(PredefinedApplicationNames()) < 60 {
		t.Errorf("only %d predefined applications", len(PredefinedApplicationNames()))
	}
}

// TestHostInboundServices: the host-inbound services of reference §5.
func TestHostInboundServices(t *testing.T) {
	cfg, d := ParseBytes("h", []byte(validBase+
		"set security zones security-zone trust host-inbound-traffic system-services all\n"+
		"set security zones security-zone trust host-inbound-traffic system-services ssh except\n"+
		"set security zones security-zone trust host-inbound-traffic protocols all\n"))
	if cfg == nil {
		t.Fatal(d)
	}
	u := cfg.Unit("ge-0/0/1.0").HostInbound
	ports := map[uint16]bool{}
	for _, r := range u.Rules {
		if r.Name == "ike" && r.Protocol == 17 {
			ports[r.Ports.Lo] = true
		}
	}
	if !ports[500] || !ports[4500] || len(u.Services) != 1 {
		t.Errorf("untrust (ike only): %+v", u)
	}
	trust := cfg.Unit("ge-0/0/0.0").HostInbound
	if !trust.Allows("https") || !trust.Allows("ping") || trust.Allows("ssh") || !trust.Allows("bgp") || !trust.Allows("ospf") {
		t.Errorf("trust (all except ssh, all protocols): %+v", trust.Services)
	}
	var ping []HostInboundRule
	for _, r := range trust.Rules {
		if r.Name == "ping" {
			ping = append(ping, r)
		}
	}
	if len(ping) != 2 || ping[0].Protocol != 1 || ping[0].ICMPType != 8 || ping[1].Protocol != 58 || ping[1].ICMPType != 128 {
		t.Errorf("ping rules %+v", ping)
	}
}

func TestIPv6OnlyTunnelSelectors(t *testing.T) {
	cfg, d := ParseBytes("v6", []byte(strings.Replace(validBase,
		"set interfaces st0 unit 0 family inet address 10.9.0.1/30", "set interfaces st0 unit 0 family inet6 address fd00:9::1/64", 1)))
	if cfg == nil {
		t.Fatal(d)
	}
	if pi := cfg.IPsec.VPNs[0].ProxyIdentity; pi.Local.String() != "::/0" || pi.Remote.String() != "::/0" {
		t.Errorf("proxy identity %+v", pi)
	}
}
