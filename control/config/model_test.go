package config

import (
	"net/netip"
	"os"
	"path/filepath"
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

func TestMain(m *testing.M) { os.Exit(m.Run()) }

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
