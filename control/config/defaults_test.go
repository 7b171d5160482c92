package config

import "testing"

// TestDefaultsTable pins the defaults of reference §6 to DefaultsVersion 1:
// changing a default must bump the version and this test.
func TestDefaultsTable(t *testing.T) {
	if DefaultsVersion != 1 {
		t.Fatalf("DefaultsVersion %d: update this test with the new table", DefaultsVersion)
	}
	d := Defaults
	checks := []struct {
		name      string
		got, want any
	}{
		{"ike dh-group", d.IKEDHGroup, 19},
		{"ike encryption", d.IKEEncryptionAlgorithm, "aes-256-cbc"},
		{"ike authentication", d.IKEAuthenticationAlgorithm, "sha-256"},
		{"ike lifetime", d.IKELifetimeSeconds, 28800},
		{"ike method", d.IKEAuthenticationMethod, "pre-shared-keys"},
		{"ike mode", d.IKEPolicyMode, "main"},
		{"gateway version", d.IKEGatewayVersion, 1},
		{"dpd mode", d.DPDMode, "optimized"},
		{"dpd interval", d.DPDInterval, 10},
		{"dpd threshold", d.DPDThreshold, 5},
		{"ipsec protocol", d.IPsecProtocol, "esp"},
		{"ipsec encryption", d.IPsecEncryptionAlgorithm, "aes-256-gcm"},
		{"ipsec lifetime", d.IPsecLifetimeSeconds, 3600},
		{"ipsec kilobytes", d.IPsecLifetimeKilobytes, 0},
		{"establish-tunnels", d.EstablishTunnels, "on-traffic"},
		{"df-bit", d.DFBit, "clear"},
		{"tcp-mss ipsec-vpn", d.TCPMSSIPsecVPN, 1320},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

// TestProposalSets pins the proposal-set expansions of reference §6.
func TestProposalSets(t *testing.T) {
	std := ikeProposalSets["standard"]
	if len(std) != 2 || std[0] != (ikeSetEntry{2, "aes-128-cbc", "sha1"}) || std[1] != (ikeSetEntry{2, "3des-cbc", "sha1"}) {
		t.Errorf("ike standard %v", std)
	}
	if p := ikeProposalSets["prime-128"]; len(p) != 1 || p[0] != (ikeSetEntry{19, "aes-128-gcm", "sha-256"}) {
		t.Errorf("ike prime-128 %v", p)
	}
	if p := ikeProposalSets["prime-256"]; len(p) != 1 || p[0] != (ikeSetEntry{20, "aes-256-gcm", "sha-384"}) {
		t.Errorf("ike prime-256 %v", p)
	}
	is := ipsecProposalSets["standard"]
	if is.pfs != 2 || len(is.proposals) != 2 || is.proposals[0] != (ipsecSetEntry{"3des-cbc", "hmac-sha1-96"}) || is.proposals[1] != (ipsecSetEntry{"aes-128-cbc", "hmac-sha1-96"}) {
		t.Errorf("ipsec standard %+v", is)
	}
	if p := ipsecProposalSets["prime-256"]; p.pfs != 20 || p.proposals[0] != (ipsecSetEntry{"aes-256-gcm", ""}) {
		t.Errorf("ipsec prime-256 %+v", p)
	}
	for _, set := range []string{"basic", "compatible"} {
		weak := false
		for _, e := range ikeProposalSets[set] {
			weak = weak || weakAlgorithms[e.enc] || weakAlgorithms[e.auth] || weakGroups[e.dh]
		}
		if !weak {
			t.Errorf("ike %s should consist of weak algorithms", set)
		}
	}
	cfg, d := ParseBytes("s", []byte(validBase+"delete security ike policy ip proposals\nset security ike policy ip proposal-set prime-256\n"+
		"delete security ipsec policy spol proposals\nset security ipsec policy spol proposal-set standard\n"))
	if cfg == nil {
		t.Fatal(d)
	}
	if p := cfg.IKE.Policies[0].Proposals; len(p) != 1 || p[0].DHGroup != 20 || p[0].FromSet != "prime-256" {
		t.Errorf("ike policy proposals %+v", p)
	}
	if p := cfg.IPsec.Policies[0]; p.PFSGroup != 2 || len(p.Proposals) != 2 || p.Proposals[0].EncryptionAlgorithm != "3des-cbc" {
		t.Errorf("ipsec policy %+v", p)
	}
}
