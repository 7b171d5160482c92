package config

import (
	"fmt"
	"strings"
	"testing"
)

// validBase is a small valid set-form configuration; invalid cases append to it.
const validBase = `set interfaces ge-0/0/0 unit 0 family inet address 10.0.0.1/24
set interfaces ge-0/0/1 unit 0 family inet address 192.0.2.1/24
set interfaces st0 unit 0 family inet address 10.9.0.1/30
set security zones security-zone trust interfaces ge-0/0/0.0
set security zones security-zone untrust interfaces ge-0/0/1.0
set security zones security-zone vpn interfaces st0.0
set security ike proposal p authentication-method pre-shared-keys
set security ike policy ip proposals p
set security ike policy ip pre-shared-key ascii-text secret123
set security ike gateway g ike-policy ip
set security ike gateway g address 192.0.2.2
set security ike gateway g external-interface ge-0/0/1
set security ipsec proposal sp
set security ipsec policy spol proposals sp
set security ipsec vpn v bind-interface st0.0
set security ipsec vpn v ike gateway g
set security ipsec vpn v ike ipsec-policy spol
set security zones security-zone untrust host-inbound-traffic system-services ike
`

const baseLines = 18

func TestValidBase(t *testing.T) {
	cfg, diags := ParseBytes("base", []byte(validBase))
	if cfg == nil || len(diags) != 0 {
		t.Fatalf("base configuration: %v\n%s", cfg, diags)
	}
}

// invalidCases has one entry per validation rule: the text appended to
// validBase (or a whole file with whole), the line of the expected error
// (relative to the appended text, or absolute when abs), the word whose
// column the error points at, and a part of the message.
var invalidCases = []struct {
	name  string
	add   string
	whole bool
	line  int
	abs   bool
	at    string
	last  bool // the last occurrence of at on the line
	msg   string
}{
	// syntax
	{name: "unknown command", add: "sett security flow\n", line: 1, at: "sett", msg: "syntax error: unknown command"},
	{name: "leaf without value", add: "set security flow tcp-mss ipsec-vpn mss\n", line: 1, at: "mss", last: true, msg: "syntax error: mss needs a value"},
	{name: "named without name", add: "set security ike proposal\n", line: 1, at: "proposal", msg: "syntax error: proposal needs a name"},
	{name: "unterminated string", add: "set security ike proposal p description \"abc\n", line: 1, at: "\"", msg: "syntax error: newline inside a quoted string"},
	{name: "unterminated string at end", whole: true, add: "set security ike proposal p description \"abc", line: 1, at: "\"", msg: "syntax error: unterminated quoted string"},
	{name: "unterminated comment", whole: true, add: "security {\n/* flow\n}\n", line: 2, at: "/*", msg: "syntax error: unterminated /* comment"},
	{name: "list on single leaf", add: "set security ike policy ip mode [ main ]\n", line: 1, at: "[", msg: "takes a single value"},
	{name: "hier missing brace", whole: true, add: "security {\n    flow {\n        tcp-mss { ipsec-vpn { mss 1350; } }\n}\n", line: 1, at: "{", msg: "missing '}'"},
	{name: "hier unexpected brace", whole: true, add: "security { }\n}\n", line: 2, at: "}", msg: "unexpected '}'"},
	{name: "hier missing semicolon", whole: true, add: "security {\n    flow\n}\n", line: 2, at: "flow", msg: "missing ';'"},
	{name: "hier block on leaf", whole: true, add: "security {\n    ike { policy x { proposal-set standard; mode main { x; } } }\n}\n", line: 2, at: "mode", msg: "mode cannot have a '{' block"},
	{name: "hier block on flag", whole: true, add: "security {\n    policies { from-zone a to-zone b { policy p { then { deny { x; } } } } }\n}\n", line: 2, at: "deny", msg: "deny cannot have a '{' block"},
	{name: "bad number", add: "set security flow tcp-mss ipsec-vpn mss big\n", line: 1, at: "big", msg: "\"big\" is not a number"},
	{name: "bad enum", add: "set security ike policy ip mode fast\n", line: 1, at: "fast", msg: "mode: invalid value \"fast\""},
	// undefined references
	{name: "undefined from-zone", add: "set security policies from-zone dmz to-zone trust policy x match source-address any destination-address any application any\nset security policies from-zone dmz to-zone trust policy x then permit\n", line: 1, at: "from-zone", msg: "undefined zone dmz (from-zone)"},
	{name: "undefined to-zone", add: "set security policies from-zone trust to-zone dmz policy x match source-address any destination-address any application any\nset security policies from-zone trust to-zone dmz policy x then permit\n", line: 1, at: "from-zone", msg: "undefined zone dmz (to-zone)"},
	{name: "undefined attach zone", add: "set security address-book b address n 10.0.0.0/8\nset security address-book b attach zone dmz\n", line: 2, at: "dmz", msg: "address-book b: undefined zone dmz"},
	{name: "undefined address", add: "set security policies from-zone trust to-zone vpn policy x match source-address nope destination-address any application any\nset security policies from-zone trust to-zone vpn policy x then permit\n", line: 1, at: "nope", msg: "undefined address nope in zone trust"},
	{name: "undefined address in set", add: "set security address-book global address-set s address nope\n", line: 1, at: "address nope", msg: "undefined address nope"},
	{name: "undefined application", add: "set security policies from-zone trust to-zone vpn policy x match source-address any destination-address any application junos-nope\nset security policies from-zone trust to-zone vpn policy x then permit\n", line: 1, at: "junos-nope", msg: "undefined application junos-nope"},
	{name: "undefined ike proposal", add: "set security ike policy ip proposals q\n", line: 1, at: "q", msg: "undefined ike proposal q"},
	{name: "undefined ipsec proposal", add: "set security ipsec policy spol proposals q\n", line: 1, at: "q", msg: "undefined ipsec proposal q"},
	{name: "undefined ike policy", add: "set security ike gateway g ike-policy nope\n", line: 1, at: "nope", msg: "undefined ike policy nope"},
	{name: "undefined ipsec policy", add: "set security ipsec vpn v ike ipsec-policy nope\n", line: 1, at: "nope", msg: "undefined ipsec policy nope"},
	{name: "undefined gateway", add: "set security ipsec vpn v ike gateway nope\n", line: 1, at: "nope", msg: "undefined ike gateway nope"},
	{name: "undefined zone interface", add: "set security zones security-zone dmz interfaces ge-0/0/5.0\n", line: 1, at: "ge-0/0/5.0", msg: "undefined interface ge-0/0/5.0"},
	{name: "undefined bind interface", add: "set security ipsec vpn v bind-interface st0.7\n", line: 1, at: "st0.7", msg: "undefined interface st0.7 (bind-interface)"},
	{name: "undefined route interface", add: "set routing-options static route 10.1.0.0/16 next-hop st0.3\n", line: 1, at: "st0.3", msg: "undefined interface st0.3 (next-hop)"},
	{name: "two interfaces on one Linux device", add: "set system interface-map ge-0/0/0 eth0\nset interfaces eth0 unit 0\n", line: 2, at: "eth0", msg: "interface eth0: Linux device eth0 is already used by interface ge-0/0/0 (line 1)"},
	// st0 units
	{name: "st0 reserved unit", add: "set interfaces st0 unit 16000 family inet address 10.8.0.1/30\n", line: 1, at: "unit", msg: "units st0.16000 to st0.16385 are reserved"},
	{name: "st0 reserved last", add: "set interfaces st0 unit 16385\n", line: 1, at: "unit", msg: "reserved for HA control-link encryption"},
	{name: "st0 unit out of range", add: "set interfaces st0 unit 16386\n", line: 1, at: "unit", msg: "st0.16386: unit out of range 0..15999"},
	{name: "st0 two ipv4", add: "set interfaces st0 unit 0 family inet address 10.9.1.1/30\n", line: 1, at: "address", msg: "at most one IPv4 address"},
	{name: "st0 two ipv6", add: "set interfaces st0 unit 0 family inet6 address fd00::1/64\nset interfaces st0 unit 0 family inet6 address fd00:1::1/64\n", line: 2, at: "address", msg: "at most one IPv6 address"},
	{name: "st0 disable", add: "set interfaces st0 unit 0 disable\n", line: 1, at: "disable", msg: "disable is not supported on st0"},
	{name: "st0 interface disable", add: "set interfaces st0 disable\n", line: 1, at: "disable", msg: "disable is not supported on st0"},
	// zones and books
	{name: "interface in two zones", add: "set security zones security-zone dmz interfaces ge-0/0/0.0\n", line: 1, at: "ge-0/0/0.0", msg: "interface ge-0/0/0.0 is already in zone trust (line 4)"},
	{name: "host bits", add: "set security address-book global address n 10.1.2.3/16\n", line: 1, at: "10.1.2.3/16", msg: "prefix 10.1.2.3/16 has host bits set (network is 10.1.0.0/16)"},
	{name: "zone book with global book", add: "set security address-book global address n 10.1.0.0/16\nset security zones security-zone trust address-book address m 10.2.0.0/16\n", line: 2, at: "address-book", msg: "zone address books cannot be mixed with global or named address books"},
	{name: "unknown service", add: "set security zones security-zone trust host-inbound-traffic system-services smtp\n", line: 1, at: "smtp", msg: "unknown system-services \"smtp\""},
	// policies
	{name: "duplicate policy", whole: true, add: "security {\n    zones { security-zone a; }\n    policies {\n        from-zone a to-zone a {\n            policy p { match { source-address any; destination-address any; application any; } then { permit; } }\n            policy p { then { deny; } }\n        }\n    }\n}\n", line: 6, at: "policy", msg: "duplicate policy p in security policies from-zone a to-zone a (first defined at line 5)"},
	{name: "policy without action", add: "set security policies from-zone trust to-zone vpn policy x match source-address any destination-address any application any\n", line: 1, at: "policy", msg: "policy x: an action is required"},
	{name: "next-hop-tunnel undefined vpn", add: "set interfaces st0 unit 0 multipoint\nset interfaces st0 unit 0 family inet next-hop-tunnel 10.9.0.2 ipsec-vpn nope\n", line: 2, at: "next-hop-tunnel", msg: "st0.0: next-hop-tunnel 10.9.0.2: undefined ipsec vpn nope"},
	{name: "next-hop-tunnel vpn elsewhere", add: "set interfaces st0 unit 1 multipoint\nset interfaces st0 unit 1 family inet next-hop-tunnel 10.9.1.2 ipsec-vpn v\nset security zones security-zone vpn interfaces st0.1\n", line: 2, at: "next-hop-tunnel", msg: "vpn v is bound to st0.0, not st0.1"},
	{name: "next-hop-tunnel without multipoint", add: "set interfaces st0 unit 0 family inet next-hop-tunnel 10.9.0.2 ipsec-vpn v\n", line: 3, abs: true, at: "unit", msg: "st0.0: next-hop-tunnel needs a multipoint unit"},
	{name: "address-set cycle", add: "set security address-book global address-set a address-set b\nset security address-book global address-set b address-set a\n", line: 1, at: "address-set", msg: "address-set a contains itself"},
	{name: "application-set cycle", add: "set applications application-set a application-set b\nset applications application-set b application-set a\n", line: 1, at: "application-set", msg: "application-set a contains itself"},
	{name: "reserved application name", add: "set applications application junos-mine protocol tcp\n", line: 1, at: "application junos-mine", msg: "application junos-mine: the name is reserved"},
	{name: "ports on icmp", add: "set applications application a protocol icmp destination-port 80\n", line: 1, at: "destination-port", msg: "application a: ports need protocol tcp, udp or sctp"},
	{name: "bad port range", add: "set applications application a protocol tcp destination-port 90-80\n", line: 1, at: "90-80", msg: "invalid port or range \"90-80\""},
	{name: "route without next hop", add: "set routing-options static route 10.1.0.0/16 preference 7\n", line: 1, at: "route", msg: "route 10.1.0.0/16 needs next-hop"},
	{name: "route family", add: "set routing-options rib inet6.0 static route 10.1.0.0/16 next-hop st0.0\n", line: 1, at: "route", msg: "route 10.1.0.0/16 does not belong in inet6.0"},
	{name: "policy without match", add: "set security policies from-zone trust to-zone vpn policy x then permit\n", line: 1, at: "policy", msg: "policy x: match is required"},
	{name: "bind to non-st0", add: "set security ipsec vpn v bind-interface ge-0/0/0.0\n", line: 1, at: "ge-0/0/0.0", msg: "bind-interface ge-0/0/0.0 is not an st0 unit"},
	{name: "proxy-identity families", add: "set security ipsec vpn v ike proxy-identity local 10.0.0.0/8 remote fd00::/8\n", line: 1, at: "proxy-identity", msg: "proxy-identity local and remote must be of one address family"},
	{name: "identity family", add: "set security ike gateway g local-identity inet fd00::1\n", line: 1, at: "fd00::1", msg: "local-identity inet: \"fd00::1\" is not an inet address"},
	{name: "foreign local-address", add: "set security ike gateway g local-address 192.0.2.9\n", line: 1, at: "192.0.2.9", msg: "local-address 192.0.2.9 is not an address of any interface"},
	// flow
	{name: "mss too small", add: "set security flow tcp-mss ipsec-vpn mss 63\n", line: 1, at: "63", msg: "mss 63 out of range 64..65535"},
	{name: "mss too large", add: "set security flow tcp-mss all-tcp mss 65536\n", line: 1, at: "65536", msg: "mss 65536 out of range 64..65535"},
	// VPNs
	{name: "vpn without bind-interface", add: "delete security ipsec vpn v bind-interface\n", line: 15, abs: true, at: "vpn", msg: "ipsec vpn v: bind-interface is required"},
	{name: "two vpns on point-to-point st0", add: "set security ike gateway g2 ike-policy ip address 192.0.2.3 external-interface ge-0/0/1\nset security ipsec vpn w bind-interface st0.0 ike gateway g2 ipsec-policy spol\n", line: 2, at: "vpn", msg: "st0.0 is point-to-point and already bound to vpn v (line 15)"},
	{name: "same peer without proxy-identity", add: "set interfaces st0 unit 1 family inet address 10.9.1.1/30\nset security zones security-zone vpn interfaces st0.1\nset security ipsec vpn w bind-interface st0.1 ike gateway g ipsec-policy spol\n", line: 3, at: "vpn", msg: "vpn v (line 15) goes to the same peer 192.0.2.2 with the same proxy-identity"},
	{name: "gateway interface without address", add: "set interfaces ge-0/0/2 unit 0\nset security zones security-zone untrust interfaces ge-0/0/2.0\nset security ike gateway g external-interface ge-0/0/2\n", line: 3, at: "ge-0/0/2", msg: "external interface ge-0/0/2.0 has no inet address"},
	{name: "gcm with authentication", add: "set security ipsec proposal sp encryption-algorithm aes-256-gcm authentication-algorithm hmac-sha1-96\n", line: 1, at: "authentication-algorithm", msg: "must not be set with aes-256-gcm"},
	{name: "ike policy without proposals", add: "delete security ike policy ip proposals\n", line: 8, abs: true, at: "policy", msg: "proposals or proposal-set is required"},
}

func TestInvalidInputs(t *testing.T) {
	for _, tc := range invalidCases {
		t.Run(tc.name, func(t *testing.T) {
			text := validBase + tc.add
			line := baseLines + tc.line
			if tc.whole {
				text, line = tc.add, tc.line
			}
			if tc.abs {
				line = tc.line
			}
			lines := strings.Split(text, "\n")
			col := strings.Index(lines[line-1], tc.at) + 1
			if tc.last {
				col = strings.LastIndex(lines[line-1], tc.at) + 1
			}
			if col == 0 {
				t.Fatalf("test bug: %q not on line %d", tc.at, line)
			}
			want := fmt.Sprintf("case.conf:%d:%d: ", line, col)
			cfg, diags := ParseBytes("case.conf", []byte(text))
			if cfg != nil {
				t.Fatalf("no error; diagnostics:\n%s", diags)
			}
			for _, d := range diags.Errors() {
				if strings.HasPrefix(d.String(), want) && strings.Contains(d.Message, tc.msg) {
					return
				}
			}
			t.Errorf("want an error %s…%s; got:\n%s", want, tc.msg, diags)
		})
	}
}

// TestAllErrorsInOneRun: independent problems are all reported.
func TestAllErrorsInOneRun(t *testing.T) {
	add := "set security flow tcp-mss ipsec-vpn mss 10\n" +
		"set interfaces st0 unit 16001\n" +
		"set security address-book global address n 10.1.2.3/16\n" +
		"set security ipsec vpn v ike gateway nope\n"
	_, diags := ParseBytes("c", []byte(validBase+add))
	if n := len(diags.Errors()); n != 4 {
		t.Fatalf("want 4 errors, got %d:\n%s", n, diags)
	}
}

// TestWarnings: weak algorithms are accepted with a warning, unknown
// statements are kept and warned.
func TestWarnings(t *testing.T) {
	cases := []struct{ line, at, msg string }{
		{"set security ike proposal p dh-group group2", "group2", "warning: dh-group group2 is weak"},
		{"set security ike proposal p encryption-algorithm 3des-cbc", "3des-cbc", "warning: encryption-algorithm 3des-cbc is weak"},
		{"set security ike proposal p authentication-algorithm md5", "md5", "warning: authentication-algorithm md5 is weak"},
		{"set security ipsec policy spol perfect-forward-secrecy keys group5", "group5", "warning: keys group5 is weak"},
		{"set security ipsec proposal sp encryption-algorithm des-cbc", "des-cbc", "warning: encryption-algorithm des-cbc is weak"},
		{"set security ipsec proposal sp authentication-algorithm hmac-md5-96", "hmac-md5-96", "warning: authentication-algorithm hmac-md5-96 is weak"},
		{"set security screen ids-option x icmp ping-death", "screen", "warning: security screen: not supported by bpfvpn, ignored"},
	}
	text := validBase
	for _, c := range cases {
		text += c.line + "\n"
	}
	cfg, diags := ParseBytes("w", []byte(text))
	if cfg == nil {
		t.Fatalf("errors:\n%s", diags)
	}
	got := diags.String()
	for i, c := range cases {
		want := fmt.Sprintf("w:%d:%d: %s", baseLines+1+i, strings.Index(c.line, c.at)+1, c.msg)
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	if len(diags) != len(cases) {
		t.Errorf("want %d warnings, got:\n%s", len(cases), got)
	}
	if cfg.IKE.Proposals[0].DHGroup != 2 || cfg.IKE.Proposals[0].EncryptionAlgorithm != "3des-cbc" {
		t.Errorf("weak algorithms not applied: %+v", cfg.IKE.Proposals[0])
	}
	// Proposal sets with weak members warn too.
	_, diags = ParseBytes("w", []byte(validBase+"delete security ike policy ip proposals\nset security ike policy ip proposal-set standard\n"))
	if !strings.Contains(diags.String(), "w:20:41: warning: proposal-set standard") {
		t.Errorf("proposal-set standard not warned:\n%s", diags)
	}
}

// TestOperationalWarnings: configurations that commit but cannot work as
// written are warned about.
func TestOperationalWarnings(t *testing.T) {
	text := strings.Replace(validBase, "set security zones security-zone untrust host-inbound-traffic system-services ike\n",
		"set security zones security-zone untrust host-inbound-traffic system-services ping\n", 1) +
		"set interfaces st0 unit 4 family inet address 10.9.4.1/30\n" +
		"set routing-options static route 10.40.0.0/16 next-hop st0.4\n"
	cfg, diags := ParseBytes("o", []byte(text))
	if cfg == nil {
		t.Fatal(diags)
	}
	for _, want := range []string{
		"o:10:18: warning: ike gateway g: host-inbound-traffic of ge-0/0/1.0 (zone untrust) does not allow system-services ike",
		"o:20:28: warning: route 10.40.0.0/16: no ipsec vpn is bound to st0.4, so this route drops its traffic",
		"o:19:20: warning: interface st0.4 is in no security zone",
	} {
		if !strings.Contains(diags.String(), want) {
			t.Errorf("missing %q in:\n%s", want, diags)
		}
	}
}

// TestSecretsNeverInDiagnostics: a broken secret is reported without its value.
func TestSecretsNeverInDiagnostics(t *testing.T) {
	add := "set security ike policy ip pre-shared-key hexadecimal zz-topsecret-zz\n" +
		"set security ike policy ip2 pre-shared-key ascii-text \"topsecret\" mode fast\n" +
		"set security ike policy ip3 pre-shared-key ascii-text topsecret [\n"
	_, diags := ParseBytes("s", []byte(validBase+add))
	if !diags.HasErrors() {
		t.Fatal("no errors")
	}
	if strings.Contains(diags.String(), "topsecret") {
		t.Errorf("diagnostics leak a secret:\n%s", diags)
	}
	if !strings.Contains(diags.String(), "s:19:55: ike policy ip: pre-shared-key hexadecimal is not a hex string") {
		t.Errorf("missing hex error:\n%s", diags)
	}
	// An unquoted secret with a space is refused whole: no part of it is
	// kept in the tree (which would display it) or named in a message.
	tr := NewTree()
	d := tr.Parse("u", []byte("set security ike policy p pre-shared-key ascii-text top secretpart\n"))
	if !strings.Contains(d.String(), "u:1:42: syntax error: unexpected words after the ascii-text value") {
		t.Errorf("diagnostics:\n%s", d)
	}
	if out := tr.String() + d.String(); strings.Contains(out, "secretpart") || strings.Contains(out, "top") {
		t.Errorf("secret fragments kept or printed:\n%s", out)
	}
}

func TestBrokenNineIsPlainKey(t *testing.T) {
	cfg, d := ParseBytes("n", []byte(strings.Replace(validBase, "ascii-text secret123", "ascii-text \"$9$ABC\"", 1)))
	if cfg == nil || !strings.Contains(d.String(), "n:9:54: warning: ascii-text starts with $9$ but is not a valid $9$ string") {
		t.Fatalf("diagnostics:\n%s", d)
	}
	if got := string(cfg.IKE.Policies[0].PreSharedKey.Bytes()); got != "$9$ABC" {
		t.Errorf("key %q", got)
	}
}

// TestTwoBooksOnOneZone: a zone sees every book attached to it.
func TestTwoBooksOnOneZone(t *testing.T) {
	cfg, d := ParseBytes("b", []byte(validBase+
		"set security address-book a address n1 10.1.0.0/16\nset security address-book a attach zone trust\n"+
		"set security address-book b address n2 10.2.0.0/16\nset security address-book b attach zone trust\n"+
		"set security policies from-zone trust to-zone vpn policy p match source-address [ n1 n2 ] destination-address any application any\n"+
		"set security policies from-zone trust to-zone vpn policy p then permit\n"))
	if cfg == nil {
		t.Fatal(d)
	}
	if src := cfg.Policies.Contexts[0].Policies[0].Source; len(src) != 2 {
		t.Errorf("source %v", src)
	}
}
