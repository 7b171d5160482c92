package lab

import (
	"os"
	"strings"
	"testing"
)

// TestConfigSRX1IsReference compares SRX1's configuration with reference §3
// (testdata/srx1.conf holds the guide's lines plus the interface map).
func TestConfigSRX1IsReference(t *testing.T) {
	want, err := os.ReadFile("testdata/srx1.conf")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Config(SRX1, ConfigOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("SRX1 config differs from the reference:\n--- got\n%s\n--- want\n%s", got, want)
	}
}

// TestConfigSRX2IsMirror checks the mirrored values of SRX2 and that it has
// as many statements as SRX1.
func TestConfigSRX2IsMirror(t *testing.T) {
	c1, _ := Config(SRX1, ConfigOptions{})
	c2, err := Config(SRX2, ConfigOptions{IKEVersion: "v2-only", PreSharedKey: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{
		"set system interface-map ge-0/0/0 eth0",
		"set system interface-map ge-0/0/1 eth1",
		"set interfaces ge-0/0/0 unit 0 family inet address 10.100.22.1/24",
		"set interfaces ge-0/0/1 unit 0 family inet address 172.16.23.1/24",
		"set interfaces st0 unit 0 family inet address 10.100.200.2/24",
		"set routing-options static route 10.100.11.0/24 next-hop st0.0",
		"set routing-options static route 0.0.0.0/0 next-hop 172.16.23.2",
		"set security ike gateway IKE-GW address 172.16.13.1",
		"set security ike gateway IKE-GW version v2-only",
		`set security ike policy IKE-POL pre-shared-key ascii-text "s3cret"`,
		"set security ipsec vpn VPN-to-Host1 bind-interface st0.0",
		"set security address-book Host2 attach zone trust",
		"set security address-book Host1 attach zone vpn",
		"set security policies from-zone trust to-zone vpn policy VPN-OUT match source-address Host2-Net",
		"set security policies from-zone vpn to-zone trust policy VPN-IN match source-address Host1-Net",
	} {
		if !strings.Contains(c2, l+"\n") {
			t.Errorf("SRX2 config lacks %q", l)
		}
	}
	if n1, n2 := strings.Count(c1, "\nset "), strings.Count(c2, "\nset "); n2 != n1+1 {
		t.Errorf("SRX2 has %d statements, want SRX1's %d plus the version line", n2, n1)
	}
	if _, err := Config(Host1, ConfigOptions{}); err == nil {
		t.Error("Config(host1) succeeded, want an error")
	}
	if _, err := Config(SRX1, ConfigOptions{PreSharedKey: `a"b`}); err == nil {
		t.Error("a quote in the key was accepted")
	}
}
