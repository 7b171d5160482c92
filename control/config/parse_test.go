package config

import (
	"fmt"
	"strings"
	"testing"
	"unsafe"
)

func mustParse(t *testing.T, text string) *Tree {
	t.Helper()
	tr := NewTree()
	if d := tr.Parse("t", []byte(text)); d.HasErrors() {
		t.Fatalf("parse errors:\n%s", d)
	}
	return tr
}

func TestDetectFormat(t *testing.T) {
	for text, want := range map[string]Format{
		"set a b":                      FormatSet,
		"# comment\n\ndelete a":        FormatSet,
		"/* c */ deactivate x":         FormatSet,
		"security { }":                 FormatHierarchical,
		"## Last commit\nsystem { }":   FormatHierarchical,
		"":                             FormatHierarchical,
		"inactive: security { }":       FormatHierarchical,
		"insert security policies x y": FormatSet,
		"activate security policies":   FormatSet,
	} {
		if got := DetectFormat([]byte(text)); got != want {
			t.Errorf("DetectFormat(%q) = %v, want %v", text, got, want)
		}
	}
}

func TestSetCommands(t *testing.T) {
	tr := mustParse(t, `# comment line
set security policies from-zone a to-zone b policy p1 then permit
set security policies from-zone a to-zone b policy p2 then deny
set security policies from-zone a to-zone b policy p3 then reject
insert security policies from-zone a to-zone b policy p3 before policy p1
insert security policies from-zone a to-zone b policy p1 after policy p2
set security ike policy x proposals [ a b c ]
delete security ike policy x proposals b
set security ike policy x proposals d
deactivate security ike policy x
set security ike gateway g address 192.0.2.1
deactivate security ike gateway g
activate security ike gateway g
set security ike proposal gone
delete security ike proposal gone
set system host-name "my gw"
`)
	h := tr.String()
	for _, want := range []string{
		"policy p3 {\n                then {\n                    reject;",
		"inactive: policy x {\n            proposals [ a c d ];",
		"        gateway g {\n            address 192.0.2.1;",
		"    host-name \"my gw\";",
	} {
		if !strings.Contains(h, want) {
			t.Errorf("missing %q in:\n%s", want, h)
		}
	}
	order := []int{strings.Index(h, "policy p3"), strings.Index(h, "policy p2"), strings.Index(h, "policy p1")}
	if !(order[0] < order[1] && order[1] < order[2]) {
		t.Errorf("insert did not reorder to p3 p2 p1:\n%s", h)
	}
	if strings.Contains(h, "gone") || strings.Contains(h, "inactive: gateway") {
		t.Errorf("delete or activate not applied:\n%s", h)
	}
}

func TestSetCommandWarnings(t *testing.T) {
	tr := NewTree()
	d := tr.Parse("t", []byte("delete security ike proposal nope\ndeactivate interfaces eth9\n"))
	if d.HasErrors() || len(d) != 2 || !strings.Contains(d[0].String(), "t:1:8: warning: statement not found: security ike proposal nope") {
		t.Errorf("diagnostics:\n%s", d)
	}
}

func TestHierarchicalSyntax(t *testing.T) {
	tr := mustParse(t, `/* block
   comment */
security { # trailing comment
    ike {
        inactive: proposal p {
            lifetime-seconds 600;
        }
        policy "x y" {
            proposals [ p ];
            pre-shared-key ascii-text "$9$FNkC3/t1IcevLuOWx"; ## SECRET-DATA
        }
        active: gateway g { address [ 192.0.2.1 192.0.2.2 ]; }
    }
    ipsec { proposal standard; }
}
`)
	h := tr.String()
	for _, want := range []string{
		"        inactive: proposal p {\n            lifetime-seconds 600;",
		"        policy \"x y\" {\n",
		"pre-shared-key ascii-text \"$9$FNkC3/t1IcevLuOWx\"; ## SECRET-DATA\n",
		"            address [ 192.0.2.1 192.0.2.2 ];",
		"        proposal standard;\n",
	} {
		if !strings.Contains(h, want) {
			t.Errorf("missing %q in:\n%s", want, h)
		}
	}
}

// TestPlainSecretStoredEncoded: ascii-text in clear is encoded at parse
// time, displayed only encoded, and decodes back for IKE.
func TestPlainSecretStoredEncoded(t *testing.T) {
	text := validBase
	tr := mustParse(t, text)
	for _, out := range []string{tr.String(), setText(t, tr)} {
		if strings.Contains(out, "secret123") {
			t.Fatalf("display contains the secret in clear:\n%s", out)
		}
		if !strings.Contains(out, `pre-shared-key ascii-text "$9$`) || !strings.Contains(out, "## SECRET-DATA") {
			t.Fatalf("display lacks the encoded secret:\n%s", out)
		}
	}
	cfg, d := tr.Compile()
	if cfg == nil {
		t.Fatal(d)
	}
	if got := string(cfg.IKE.Policies[0].PreSharedKey.Bytes()); got != "secret123" {
		t.Errorf("key %q", got)
	}
}

func TestInactiveNotCompiled(t *testing.T) {
	cfg := loadTestdata(t, "features.conf")
	ctx := cfg.Policies.Contexts[0]
	if len(ctx.Policies) != 1 || ctx.Policies[0].Name != "a" {
		t.Errorf("inactive policy b compiled: %+v", ctx.Policies)
	}
	if cfg.Policies.Default != ActionPermit {
		t.Errorf("default-policy %v", cfg.Policies.Default)
	}
	if cfg.Interfaces[0].Description != `LAN side; "trust"` || cfg.Interfaces[0].LinuxName != "eth0" {
		t.Errorf("interface %+v", cfg.Interfaces[0])
	}
	u := cfg.Interfaces[0].Units[0]
	if !u.HostInbound.Allows("ssh") || !u.HostInbound.Allows("ping") || u.HostInbound.Allows("ike") {
		t.Errorf("interface host-inbound %+v", u.HostInbound)
	}
	gw := cfg.IKE.Gateways[0]
	if gw.DPD == nil || gw.DPD.Mode != "always-send" || gw.DPD.Threshold != 3 || gw.DPD.Interval != 10 ||
		gw.LocalIdentity == nil || gw.LocalIdentity.Type != "inet" || gw.LocalIdentity.Value != "10.0.0.1" {
		t.Errorf("gateway %+v", gw)
	}
	if string(gw.Policy.PreSharedKey.Bytes()) != "lc" {
		t.Errorf("psk")
	}
	v := cfg.IPsec.VPNs[0]
	if v.IfID != 6 || v.Policy.PFSGroup != 19 || v.Policy.Proposals[0].EncryptionAlgorithm != "aes-128-gcm" {
		t.Errorf("vpn %+v policy %+v", v, v.Policy)
	}
	if a := cfg.Policies.Contexts[0].Policies[0]; len(a.Source) != 2 || len(a.Terms) != 2 || a.Terms[0].DstPorts.Lo != 22 {
		t.Errorf("policy a %+v", a)
	}
}

func TestHubModel(t *testing.T) {
	cfg := loadTestdata(t, "hub.set")
	byName := map[string]*Unit{}
	for _, i := range cfg.Interfaces {
		for _, u := range i.Units {
			byName[u.Name] = u
		}
	}
	st0 := byName["st0.0"]
	if !st0.Multipoint || len(st0.NextHopTunnels) != 2 || st0.NextHopTunnels[1].VPN != "SPOKE-B" {
		t.Errorf("st0.0 %+v", st0)
	}
	vl := byName["ge-0/0/1.20"]
	if vl.LinuxName != "eth1.20" || vl.VLANID != 20 || !vl.HostInbound.Allows("ssh") || vl.HostInbound.Allows("telnet") {
		t.Errorf("vlan unit %+v", vl)
	}
	if !byName["ge-0/0/1.0"].HostInbound.Allows("ike") || byName["ge-0/0/1.0"].HostInbound.Allows("ssh") {
		t.Errorf("zone host-inbound")
	}
	var dc *Route
	for _, r := range cfg.Routes {
		if r.Prefix.String() == "10.9.0.0/16" {
			dc = r
		}
	}
	if dc == nil || len(dc.Qualified) != 2 || dc.Qualified[0].Preference != 10 || dc.Qualified[1].Interface != "st0.2" {
		t.Errorf("qualified next hops %+v", dc)
	}
	var trustVPN *PolicyContext
	for _, c := range cfg.Policies.Contexts {
		if c.From == "trust" && c.To == "vpn" {
			trustVPN = c
		}
	}
	p := trustVPN.Policies[0]
	if len(p.Source) != 2 || len(p.Destination) != 3 || !p.Count || !p.LogInit || !p.LogClose {
		t.Errorf("to-spokes %+v", p)
	}
	// web = junos-http, junos-https, web-alt 8080-8090; plus junos-icmp-ping.
	if len(p.Terms) != 4 || p.Terms[2].DstPorts != (PortRange{8080, 8090}) || p.Terms[3].Protocol != 1 || p.Terms[3].ICMPType != 8 {
		t.Errorf("terms %+v", p.Terms)
	}
	var vpnTrust *PolicyContext
	for _, c := range cfg.Policies.Contexts {
		if c.From == "vpn" && c.To == "trust" {
			vpnTrust = c
		}
	}
	if vpnTrust.Policies[0].Name != "from-spokes" {
		t.Errorf("insert before not applied: %s first", vpnTrust.Policies[0].Name)
	}
	if cfg.Flow.TCPMSSIPsecVPN != 1360 || cfg.Flow.TCPMSSAllTCP != 1400 {
		t.Errorf("flow %+v", cfg.Flow)
	}
	if len(cfg.IPsec.VPNs) != 4 {
		t.Errorf("deactivated VPN compiled: %d VPNs", len(cfg.IPsec.VPNs))
	}
	gwdc := cfg.IKE.Gateways[2]
	if len(gwdc.Addresses) != 2 || gwdc.LocalAddress.String() != "198.51.100.1" || !gwdc.GeneralIKEID {
		t.Errorf("GW-DC %+v", gwdc)
	}
	if cfg.IKE.Gateways[1].NATTraversal || !cfg.IKE.Gateways[0].NATTraversal || cfg.IKE.Gateways[0].Version != 2 {
		t.Errorf("gateways")
	}
	if k := cfg.IKE.Policies[1].PreSharedKey.Bytes(); len(k) != 16 || k[15] != 0xff {
		t.Errorf("hexadecimal key %x", k)
	}
	cbc := cfg.IPsec.Proposals[1]
	if cbc.LifetimeKilobytes != 1000000 || cbc.AuthenticationAlgorithm != "hmac-sha-256-128" {
		t.Errorf("CBC %+v", cbc)
	}
	if cfg.InterfaceMap["ge-0/0/1"] != "eth1" {
		t.Errorf("interface map %v", cfg.InterfaceMap)
	}
}

func TestFillDefaults(t *testing.T) {
	tr := mustParse(t, validBase+"set security flow tcp-mss ipsec-vpn\nset security ike gateway g dead-peer-detection\n")
	tr.FillDefaults()
	h := tr.String()
	for _, want := range []string{
		"dh-group group19; ## default",
		"encryption-algorithm aes-256-cbc; ## default",
		"authentication-algorithm sha-256; ## default",
		"lifetime-seconds 28800; ## default",
		"mode main; ## default",
		"version v1-only; ## default",
		"optimized; ## default",
		"interval 10; ## default",
		"threshold 5; ## default",
		"protocol esp; ## default",
		"encryption-algorithm aes-256-gcm; ## default",
		"lifetime-seconds 3600; ## default",
		"establish-tunnels on-traffic; ## default",
		"df-bit clear; ## default",
		"mss 1320; ## default",
	} {
		if !strings.Contains(h, want) {
			t.Errorf("missing %q in:\n%s", want, h)
		}
	}
	// The filled tree still compiles to the same values.
	if cfg, d := tr.Compile(); cfg == nil || cfg.Flow.TCPMSSIPsecVPN != 1320 {
		t.Errorf("filled tree: %v", d)
	}
}

// TestParallelPolicyCompile: large configurations compile zone pairs
// concurrently; order and diagnostics must be those of configuration order.
func TestParallelPolicyCompile(t *testing.T) {
	var b strings.Builder
	b.WriteString(validBase)
	pairs := [][2]string{{"trust", "vpn"}, {"vpn", "trust"}, {"trust", "untrust"}, {"untrust", "trust"}}
	for i := 0; i < 6000; i++ {
		p := pairs[i%len(pairs)]
		src := "any"
		if i == 17 || i == 5002 {
			src = "missing" + itoa(i)
		}
		fmt.Fprintf(&b, "set security policies from-zone %s to-zone %s policy p%d match source-address %s destination-address any application any\n", p[0], p[1], i, src)
		fmt.Fprintf(&b, "set security policies from-zone %s to-zone %s policy p%d then permit\n", p[0], p[1], i)
	}
	tr := mustParse(t, b.String())
	_, diags := tr.Compile()
	errs := diags.Errors()
	if len(errs) != 2 || !strings.Contains(errs[0].Message, "missing17") || !strings.Contains(errs[1].Message, "missing5002") {
		t.Fatalf("errors:\n%s", errs)
	}
	tr = mustParse(t, strings.ReplaceAll(strings.ReplaceAll(b.String(), "missing17", "any"), "missing5002", "any"))
	cfg, diags := tr.Compile()
	if cfg == nil {
		t.Fatal(diags)
	}
	for i, c := range cfg.Policies.Contexts {
		if c.From != pairs[i][0] || c.To != pairs[i][1] || len(c.Policies) != 1500 {
			t.Fatalf("context %d: %s→%s with %d policies", i, c.From, c.To, len(c.Policies))
		}
		for j, p := range c.Policies {
			if p.Name != "p"+itoa(j*len(pairs)+i) {
				t.Fatalf("context %d policy %d is %s", i, j, p.Name)
			}
		}
	}
}

// TestIndexCollisions: children that share a name (address X and
// address-set X) stay distinct in large containers, through delete too.
func TestIndexCollisions(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 40; i++ {
		fmt.Fprintf(&b, "set security address-book global address n%d 10.0.%d.0/24\n", i, i)
	}
	b.WriteString("set security address-book global address-set n5 address n6\n")
	b.WriteString("set security address-book global address-set n7 address n8\n")
	b.WriteString("delete security address-book global address n5\n")
	b.WriteString("set security address-book global address-set n7 address n9\n")
	b.WriteString("delete security address-book global address-set n7\n")
	b.WriteString("set security address-book global address n7 10.9.9.0/24\n")
	tr := mustParse(t, b.String())
	h := tr.String()
	for want, ok := range map[string]bool{
		"address n5 ":             false,
		"address-set n5 {":        true,
		"address-set n7":          false,
		"address n7 10.9.9.0/24;": true,
		"address n6 10.0.6.0/24;": true,
	} {
		if strings.Contains(h, want) != ok {
			t.Errorf("%q present=%v, want %v:\n%s", want, !ok, ok, h)
		}
	}
}

// TestNodeSize guards the memory budget of large configurations: a
// statement node must stay in the 112-byte size class.
func TestNodeSize(t *testing.T) {
	if s := unsafe.Sizeof(node{}); s > 112 {
		t.Errorf("node is %d bytes, want <= 112", s)
	}
}

func TestFillDefaultsProposalSets(t *testing.T) {
	tr := mustParse(t, validBase+"delete security ike policy ip proposals\nset security ike policy ip proposal-set standard\n"+
		"delete security ipsec policy spol proposals\nset security ipsec policy spol proposal-set prime-256\n")
	tr.FillDefaults()
	h := tr.String()
	for _, want := range []string{
		"proposal-set standard; ## proposes group2 aes-128-cbc sha1, group2 3des-cbc sha1\n",
		"proposal-set prime-256; ## proposes esp aes-256-gcm; pfs group20\n",
	} {
		if !strings.Contains(h, want) {
			t.Errorf("missing %q in:\n%s", want, h)
		}
	}
	if _, d := ParseBytes("again", []byte(h)); d.HasErrors() {
		t.Errorf("annotated display does not parse: %s", d)
	}
}

func TestIdentities(t *testing.T) {
	cfg, d := ParseBytes("id", []byte(validBase+
		"set security ike gateway g local-identity distinguished-name\n"+
		"set security ike gateway g remote-identity user-at-hostname peer@example.net\n"))
	if cfg == nil {
		t.Fatal(d)
	}
	g := cfg.IKE.Gateways[0]
	if g.LocalIdentity.Type != "distinguished-name" || g.RemoteIdentity.Type != "user-at-hostname" || g.RemoteIdentity.Value != "peer@example.net" {
		t.Errorf("identities %+v %+v", g.LocalIdentity, g.RemoteIdentity)
	}
}

// TestLongLists: list leaves with many values keep order, drop duplicates,
// and delete single values.
func TestLongLists(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 200; i++ {
		fmt.Fprintf(&b, "set security ike policy x proposals p%d\n", i%150)
	}
	b.WriteString("delete security ike policy x proposals p7\nset security ike policy x proposals p7\nset security ike policy x proposals [ p1 p200 ]\n")
	tr := mustParse(t, b.String())
	n := tr.root.child("security").child("ike").child("policy").child("proposals")
	if len(n.vals) != 151 || n.vals[0].s != "p0" || n.vals[149].s != "p7" || n.vals[150].s != "p200" {
		t.Errorf("%d values, first %s, last %s", len(n.vals), n.vals[0].s, n.vals[len(n.vals)-1].s)
	}
}

// TestPathologicalInputs: inputs built to hurt (deep nesting, huge lines,
// unbalanced brackets) end with diagnostics, not a crash or a hang.
func TestPathologicalInputs(t *testing.T) {
	inputs := map[string]string{
		"deep nesting":    strings.Repeat("a {", 100000),
		"closing braces":  strings.Repeat("}", 100000),
		"garbage lines":   strings.Repeat("frobnicate x\n", 100000),
		"long set line":   "set system " + strings.Repeat("w ", 200000),
		"open brackets":   "set security ike policy p proposals " + strings.Repeat("[ ", 100000),
		"long string":     "set system host-name \"" + strings.Repeat("x", 1<<20) + "\"",
		"many semicolons": strings.Repeat(";", 100000),
		"many comments":   strings.Repeat("/* c */ # x\n", 50000),
		"nul bytes":       "set \x00 \x00\x00\n" + strings.Repeat("\x00", 1000),
	}
	for name, text := range inputs {
		tr := NewTree()
		d := tr.Parse(name, []byte(text))
		tr.Compile()
		_ = tr.String()
		if len(d) > maxSyntaxErrors+1 {
			t.Errorf("%s: %d diagnostics, want at most %d", name, len(d), maxSyntaxErrors+1)
		}
	}
}

// TestCommentsKept: /* */ comments of the hierarchical form are displayed
// again before the statement they precede.
func TestCommentsKept(t *testing.T) {
	tr := mustParse(t, "/* top */\nsecurity {\n    /* two\n       lines */\n    flow { tcp-mss { /* x */ ipsec-vpn { mss 1350; } } } # dropped\n}\n")
	want := "/* top */\nsecurity {\n    /* two\n       lines */\n    flow {\n        tcp-mss {\n            /* x */\n            ipsec-vpn {\n                mss 1350;\n            }\n        }\n    }\n}\n"
	if got := tr.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// TestUnknownStatements: unknown statements keep their structure in both
// forms, so set display reads back to the same tree.
func TestUnknownStatements(t *testing.T) {
	hier := `system {
    host-name gw1;
    services {
        ssh {
            root-login deny;
        }
        inactive: netconf;
    }
}
protocols {
    inactive: ospf area 0.0.0.0 interface st0.0;
    bgp {
        group ext;
    }
}
`
	tr := mustParse(t, hier)
	want := strings.Replace(hier, "    bgp {\n        group ext;\n    }\n", "    bgp group ext;\n", 1)
	want = strings.Replace(want, "        ssh {\n            root-login deny;\n        }\n", "        ssh root-login deny;\n", 1)
	if got := tr.String(); got != want {
		t.Errorf("display:\n%s", got)
	}
	set := setText(t, tr)
	wantSet := `set system host-name gw1
set system services ssh root-login deny
set system services netconf
deactivate system services netconf
set protocols ospf area 0.0.0.0 interface st0.0
deactivate protocols ospf area 0.0.0.0 interface st0.0
set protocols bgp group ext
`
	if set != wantSet {
		t.Errorf("set display:\n%s", set)
	}
	back := mustParse(t, set)
	if !treeEqual(tr.root, back.root) {
		t.Errorf("set display reads back to another tree:\n%s", back.String())
	}
	_, d := tr.Compile()
	if len(d) != 3 || !strings.Contains(d[0].Message, "system host-name: not supported by bpfvpn, ignored") ||
		!strings.Contains(d[1].Message, "system services: not supported") || !strings.Contains(d[2].Message, "protocols: not supported") {
		t.Errorf("warnings:\n%s", d)
	}
}

func TestCompactKeepsComments(t *testing.T) {
	text := "routing-options {\n    static {\n        route 10.0.0.0/8 {\n            /* via the tunnel */\n            next-hop st0.0;\n        }\n        route 10.1.0.0/16 next-hop st0.1;\n    }\n}\n"
	if got := mustParse(t, text).String(); got != text {
		t.Errorf("got:\n%s", got)
	}
}

// TestDeletePrunesStructure: deleting the last statement of a structural
// container removes the container; presence containers stay.
func TestDeletePrunesStructure(t *testing.T) {
	tr := mustParse(t, "set security ike proposal p dh-group group14\ndelete security ike proposal p\n"+
		"set security flow tcp-mss ipsec-vpn mss 1350\ndelete security flow tcp-mss ipsec-vpn mss\n"+
		"set security policies from-zone a to-zone b policy x then permit\ndelete security policies from-zone a to-zone b policy x\n")
	want := "security {\n    flow {\n        tcp-mss {\n            ipsec-vpn;\n        }\n    }\n    policies {\n        from-zone a to-zone b;\n    }\n}\n"
	if got := tr.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// TestCanonicalOrder: statements of different kinds display in schema order
// whatever order they were written in; statements of one kind keep theirs.
func TestCanonicalOrder(t *testing.T) {
	a := mustParse(t, "set security zones security-zone z interfaces eth0.0\nset security ike proposal p2 dh-group group20\n"+
		"set interfaces eth0 unit 0\nset security ike proposal p1 lifetime-seconds 600\nset security ike proposal p1 dh-group group19\n")
	b := mustParse(t, "interfaces { eth0 { unit 0; } }\nsecurity {\n ike {\n  proposal p2 { dh-group group20; }\n  proposal p1 { dh-group group19; lifetime-seconds 600; }\n }\n zones { security-zone z { interfaces { eth0.0; } } }\n}\n")
	if a.String() != b.String() {
		t.Errorf("different displays:\n%s\n---\n%s", a.String(), b.String())
	}
	want := "interfaces {\n    eth0 {\n        unit 0;\n    }\n}\nsecurity {\n    ike {\n        proposal p2 {\n            dh-group group20;\n        }\n        proposal p1 {\n            dh-group group19;\n            lifetime-seconds 600;\n        }\n    }\n    zones {\n        security-zone z {\n            interfaces {\n                eth0.0;\n            }\n        }\n    }\n}\n"
	if a.String() != want {
		t.Errorf("got:\n%s", a.String())
	}
}
