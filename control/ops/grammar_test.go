package ops_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/bpfvpn/bpfvpn/control/ops"
	"github.com/bpfvpn/bpfvpn/control/ops/opstest"
)

func TestParseAbbreviations(t *testing.T) {
	cases := []struct {
		words string
		path  string
		opts  map[string]string
		json  bool
	}{
		{"sh sec ike sec", "show security ike security-associations", nil, false},
		{"show security ike sa", "show security ike security-associations", nil, false},
		{"sh sec ip sa ind 131073 det", "show security ipsec security-associations", map[string]string{"index": "131073", "detail": ""}, false},
		{"sh sec ipsec sa detail index 131073", "show security ipsec security-associations", map[string]string{"index": "131073", "detail": ""}, false},
		{"show security ipsec stat", "show security ipsec statistics", nil, false},
		{"sh sec pol hit", "show security policies", map[string]string{"hit-count": ""}, false},
		{"sh sec fl se su", "show security flow session", map[string]string{"summary": ""}, false},
		{"sh sec z", "show security zones", nil, false},
		{"sh int st0 t", "show interfaces", map[string]string{"interface-name": "st0", "terse": ""}, false},
		{"sh int te", "show interfaces", map[string]string{"terse": ""}, false},
		{"sh ro", "show route", nil, false},
		{"cl sec ipsec stat index 7", "clear security ipsec statistics", map[string]string{"index": "7"}, false},
		{"clear security ike security-associations", "clear security ike security-associations", nil, false},
		{"show security ike sa 172.16.23.1 det", "show security ike security-associations", map[string]string{"peer-address": "172.16.23.1", "detail": ""}, false},
		{"clear sec ike sa 2001:db8::2", "clear security ike security-associations", map[string]string{"peer-address": "2001:db8::2"}, false},
		{"show security ike sa | display json", "show security ike security-associations", nil, true},
		{"show security ike sa |display json", "show security ike security-associations", nil, true},
		{"show security ike sa | d j", "show security ike security-associations", nil, true},
		{"show route | match st0 | no-more", "show route", nil, false},
		{"clear security flow session all", "clear security flow session", map[string]string{"all": ""}, false},
		{"cl sec fl se prot tcp destination-po 22 source-pr 10.100/16", "clear security flow session",
			map[string]string{"protocol": "tcp", "destination-port": "22", "source-prefix": "10.100/16"}, false},
		{"clear security flow session session-identifier 1021 | display json", "clear security flow session",
			map[string]string{"session-identifier": "1021"}, true},
	}
	for _, tc := range cases {
		inv, err := ops.Parse(strings.Fields(tc.words))
		if err != nil {
			t.Errorf("%q: %v", tc.words, err)
			continue
		}
		if got := strings.Join(inv.Path, " "); got != tc.path {
			t.Errorf("%q: path %q, want %q", tc.words, got, tc.path)
		}
		if len(inv.Options) != len(tc.opts) {
			t.Errorf("%q: options %v, want %v", tc.words, inv.Options, tc.opts)
		}
		for k, v := range tc.opts {
			if got, ok := inv.Options[k]; !ok || got != v {
				t.Errorf("%q: option %s = %q (%v), want %q", tc.words, k, got, ok, v)
			}
		}
		if inv.JSON != tc.json {
			t.Errorf("%q: JSON %v, want %v", tc.words, inv.JSON, tc.json)
		}
	}
}

// sessionFilterHint is the hint of an incomplete clear security flow session.
const sessionFilterHint = `Possible completions:
  all                  Clear all sessions
  destination-port     Destination port
  destination-prefix   Destination IP prefix or address
  interface            Name of logical interface (either direction)
  protocol             IP protocol name or number
  session-identifier   Session ID
  source-port          Source port
  source-prefix        Source IP prefix or address`

func TestParseErrors(t *testing.T) {
	cases := []struct {
		words string
		want  string // the whole error text
	}{
		{"show security foo", `show security foo
              ^
syntax error, expecting <command>.
Possible completions:
  flow                 Show flow information
  ike                  Show Internet Key Exchange information
  ipsec                Show IP Security information
  policies             Show security policies
  zones                Show security zone information`},
		{"show security i sa", `show security i sa
              ^
'i' is ambiguous.
Possible completions:
  ike                  Show Internet Key Exchange information
  ipsec                Show IP Security information`},
		{"show security", `show security
              ^
syntax error, expecting <command>.
Possible completions:
  flow                 Show flow information
  ike                  Show Internet Key Exchange information
  ipsec                Show IP Security information
  policies             Show security policies
  zones                Show security zone information`},
		{"show security ipsec statistics index", `show security ipsec statistics index
                                     ^
syntax error, expecting <number>.`},
		{"show security ipsec statistics index abc", `show security ipsec statistics index abc
                                     ^
syntax error, expecting <number>: 'abc' is not a number from 1 to 4294967295.`},
		{"show security ike sa index 0", `show security ike sa index 0
                           ^
syntax error, expecting <number>: '0' is not a number from 1 to 4294967295.`},
		{"clear security flow session", `clear security flow session
                            ^
syntax error, expecting <command>.
` + sessionFilterHint},
		{"clear security flow session | display json", `clear security flow session | display json
                            ^
syntax error, expecting <command>.
` + sessionFilterHint},
		{"clear security flow", `clear security flow
                    ^
syntax error, expecting <command>.
Possible completions:
  session              Clear session information`},
		{"clear security flow session all protocol tcp", `clear security flow session all protocol tcp
                                ^
syntax error.`},
		{"clear security flow session protocol tcp all", `clear security flow session protocol tcp all
                                         ^
syntax error.
Possible completions:
  destination-port     Destination port
  destination-prefix   Destination IP prefix or address
  interface            Name of logical interface (either direction)
  session-identifier   Session ID
  source-port          Source port
  source-prefix        Source IP prefix or address`},
		{"clear security flow session source-prefix 10.0.0.300", `clear security flow session source-prefix 10.0.0.300
                                          ^
syntax error, expecting <prefix>: '10.0.0.300' is not an IP address or prefix.`},
		{"clear security flow session destination-prefix 10.1.0.0/33", `clear security flow session destination-prefix 10.1.0.0/33
                                               ^
syntax error, expecting <prefix>: '10.1.0.0/33' is not an IP address or prefix.`},
		{"clear security flow session source-prefix fe80::1%eth0", `clear security flow session source-prefix fe80::1%eth0
                                          ^
syntax error, expecting <prefix>: 'fe80::1%eth0' is not an IP address or prefix.`},
		{"clear security flow session protocol tcp destination-port 70000", `clear security flow session protocol tcp destination-port 70000
                                                          ^
syntax error, expecting <port>: '70000' is not a port (0-65535).`},
		{"clear security flow session source-port -1", `clear security flow session source-port -1
                                        ^
syntax error, expecting <port>: '-1' is not a port (0-65535).`},
		{"clear security flow session protocol frob", `clear security flow session protocol frob
                                     ^
syntax error, expecting <protocol>: 'frob' is not a protocol (a name such as tcp, udp, icmp, or 0-255).`},
		{"clear security flow session protocol 256", `clear security flow session protocol 256
                                     ^
syntax error, expecting <protocol>: '256' is not a protocol (a name such as tcp, udp, icmp, or 0-255).`},
		{"clear security flow session session-identifier 0x10", `clear security flow session session-identifier 0x10
                                               ^
syntax error, expecting <number>: '0x10' is not a session identifier.`},
		{"clear security flow session protocol", `clear security flow session protocol
                                     ^
syntax error, expecting <protocol>.`},
		{"show security ike sa detail detail", `show security ike sa detail detail
                            ^
syntax error.
Possible completions:
  <peer-address>       IP address of remote peer
  index                Index number of security association`},
		{"show security ike sa 10.0.0.300", `show security ike sa 10.0.0.300
                     ^
syntax error.
Possible completions:
  <peer-address>       IP address of remote peer
  detail               Display detailed output
  index                Index number of security association`},
		{"show route | display xml", `show route | display xml
                     ^
syntax error, expecting <command>.
Possible completions:
  json                 Show output as JSON`},
		{"frobnicate", `frobnicate
^
syntax error, expecting <command>.
Possible completions:
  clear                Clear information in the system
  show                 Show system information`},
	}
	for _, tc := range cases {
		_, err := ops.Parse(strings.Fields(tc.words))
		var se *ops.SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("%q: error %v, want a *SyntaxError", tc.words, err)
			continue
		}
		if err.Error() != tc.want {
			t.Errorf("%q:\n--- got ---\n%s\n--- want ---\n%s", tc.words, err, tc.want)
		}
	}
}

func TestParseEmpty(t *testing.T) {
	_, err := ops.Parse(nil)
	var se *ops.SyntaxError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "syntax error, expecting <command>.") {
		t.Fatalf("empty command: %v", err)
	}
}

func TestPipes(t *testing.T) {
	p := opstest.Reference()
	run := func(cmd string) string { t.Helper(); return opstest.Run(t, p, cmd) }
	if got, want := run("show route | match st0"), "                    >  via st0.0\n                    >  via st0.0\n                       Local via st0.0\n"; got != want {
		t.Errorf("match: %q, want %q", got, want)
	}
	if got := run("show route | match st0"); strings.Contains(got, "ge-0/0/0.0") {
		t.Errorf("match kept a non-matching line: %q", got)
	}
	if got := run("show security zones | except Zone|Send|Policy"); strings.Contains(got, "Zone ID") || !strings.Contains(got, "Security zone: vpn") {
		t.Errorf("except: %q", got)
	}
	if got := run("show security ipsec sa | count"); got != "Count: 4 lines\n" {
		t.Errorf("count: %q", got)
	}
	if got := run("show security ipsec statistics | last 2"); got != "  Exceeds tunnel MTU: 0\n  Discarded: 0\n" {
		t.Errorf("last: %q", got)
	}
	if got := run("show security ike sa | display json | match index"); strings.TrimSpace(got) != `"index": 1512635,` {
		t.Errorf("json then match: %q", got)
	}
}

func TestClearCommands(t *testing.T) {
	p := opstest.Reference()
	ctx := context.Background()
	out, err := ops.Run(ctx, p, strings.Fields("clear security ipsec statistics"), false)
	if err != nil || out != "" {
		t.Fatalf("clear ipsec statistics: %q, %v", out, err)
	}
	out, err = ops.Run(ctx, p, strings.Fields("clear security ike security-associations index 1512635"), true)
	if err != nil || !strings.Contains(out, `"cleared": "ike-security-associations"`) || !strings.Contains(out, `"index": 1512635`) {
		t.Fatalf("clear ike sa --json: %q, %v", out, err)
	}
	want := []opstest.Clear{{What: "ipsec-statistics", Index: ops.AllIndexes}, {What: "ike-security-associations", Index: 1512635}}
	got := p.Clears()
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("clears %v, want %v", got, want)
	}
	stats, _ := ops.Run(ctx, p, strings.Fields("show security ipsec statistics"), false)
	if !strings.Contains(stats, "  Encrypted bytes:                0\n") {
		t.Errorf("statistics not cleared:\n%s", stats)
	}
}

func TestProviderErrorsCarryContext(t *testing.T) {
	p := opstest.Reference()
	p.Err = errors.New("daemon starting")
	_, err := ops.Run(context.Background(), p, strings.Fields("show security ike sa"), false)
	if err == nil || err.Error() != "ike security-associations: daemon starting" {
		t.Fatalf("error %v", err)
	}
}

func TestIndexFilters(t *testing.T) {
	p := opstest.Reference()
	ctx := context.Background()
	out, err := ops.Run(ctx, p, strings.Fields("show security ike sa index 99"), false)
	if err != nil || out != "" {
		t.Fatalf("unknown IKE index: %q, %v", out, err)
	}
	out, err = ops.Run(ctx, p, strings.Fields("show security ipsec sa index 131073"), false)
	if err != nil || !strings.HasPrefix(out, "ID: 131073 Virtual-system: root, VPN Name: VPN-to-Host2\n") {
		t.Fatalf("ipsec sa index N shows the detail: %q, %v", out, err)
	}
}

func TestIKEByPeer(t *testing.T) {
	p := opstest.Reference()
	ctx := context.Background()
	out, err := ops.Run(ctx, p, strings.Fields("show security ike sa 172.16.23.1"), false)
	if err != nil || !strings.Contains(out, "1512635 UP") {
		t.Fatalf("by peer: %q, %v", out, err)
	}
	out, err = ops.Run(ctx, p, strings.Fields("show security ike sa 192.0.2.1"), false)
	if err != nil || out != "" {
		t.Fatalf("other peer: %q, %v", out, err)
	}
	if _, err := ops.Run(ctx, p, strings.Fields("clear security ike sa 192.0.2.1"), false); err != nil {
		t.Fatal(err)
	}
	if got := p.Clears(); len(got) != 0 {
		t.Fatalf("clearing an unknown peer cleared %v", got)
	}
	out, err = ops.Run(ctx, p, strings.Fields("clear security ike sa 172.16.23.1"), true)
	if err != nil || !strings.Contains(out, `"peer-address": "172.16.23.1"`) {
		t.Fatal(out, err)
	}
	if got := p.Clears(); len(got) != 1 || got[0] != (opstest.Clear{What: "ike-security-associations", Index: 1512635}) {
		t.Fatalf("clears %v", got)
	}
}

func TestComplete(t *testing.T) {
	words := func(cs []ops.Completion) string {
		var w []string
		for _, c := range cs {
			w = append(w, c.Word)
		}
		return strings.Join(w, " ")
	}
	cases := map[string]string{
		"":                                 "clear show",
		"show s":                           "security",
		"show security i":                  "ike ipsec",
		"show security ike sa ":            "detail index",
		"show security ike sa d":           "detail",
		"show interfaces st0 ":             "terse",
		"clear security flow session ":     "all destination-port destination-prefix interface protocol session-identifier source-port source-prefix",
		"clear security flow session all ": "",
		"clear security flow session protocol tcp ": "destination-port destination-prefix interface session-identifier source-port source-prefix",
		"clear security flow session pro tcp s":     "session-identifier source-port source-prefix",
	}
	for in, want := range cases {
		w := strings.Split(in, " ")
		if in == "" {
			w = nil
		}
		if got := words(ops.Complete(w)); got != want {
			t.Errorf("Complete(%q) = %q, want %q", in, got, want)
		}
	}
}
