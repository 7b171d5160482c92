package ops_test

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/bpfvpn/bpfvpn/control/ops"
	"github.com/bpfvpn/bpfvpn/control/ops/opstest"
)

func ptr[T any](v T) *T { return &v }

func TestSessionFilterMatch(t *testing.T) {
	src := netip.MustParseAddrPort("10.100.11.10:51234")
	dst := netip.MustParseAddrPort("10.100.22.10:22")
	src6 := netip.MustParseAddrPort("[2001:db8:1::10]:51234")
	dst6 := netip.MustParseAddrPort("[2001:db8:2::10]:22")
	cases := []struct {
		name     string
		f        ops.SessionFilter
		src, dst netip.AddrPort
		want     bool
	}{
		{"all", ops.SessionFilter{}, src, dst, true},
		{"all IPv6", ops.SessionFilter{}, src6, dst6, true},
		{"source prefix", ops.SessionFilter{SourcePrefix: netip.MustParsePrefix("10.100.11.0/24")}, src, dst, true},
		{"source prefix is the initiator's", ops.SessionFilter{SourcePrefix: netip.MustParsePrefix("10.100.22.0/24")}, src, dst, false},
		{"destination prefix", ops.SessionFilter{DestinationPrefix: netip.MustParsePrefix("10.100.22.10/32")}, src, dst, true},
		{"destination prefix other", ops.SessionFilter{DestinationPrefix: netip.MustParsePrefix("10.100.23.0/24")}, src, dst, false},
		{"IPv4 prefix, IPv6 session", ops.SessionFilter{SourcePrefix: netip.MustParsePrefix("0.0.0.0/0")}, src6, dst6, false},
		{"IPv6 prefix", ops.SessionFilter{SourcePrefix: netip.MustParsePrefix("2001:db8:1::/48")}, src6, dst6, true},
		{"IPv4-mapped address", ops.SessionFilter{SourcePrefix: netip.MustParsePrefix("10.100.11.0/24")},
			netip.AddrPortFrom(netip.MustParseAddr("::ffff:10.100.11.10"), 1), dst, true},
		{"protocol", ops.SessionFilter{Protocol: ptr(uint8(6))}, src, dst, true},
		{"protocol other", ops.SessionFilter{Protocol: ptr(uint8(17))}, src, dst, false},
		{"source port", ops.SessionFilter{SourcePort: ptr(uint16(51234))}, src, dst, true},
		{"source port is not the destination port", ops.SessionFilter{SourcePort: ptr(uint16(22))}, src, dst, false},
		{"destination port", ops.SessionFilter{DestinationPort: ptr(uint16(22))}, src, dst, true},
		{"destination port other", ops.SessionFilter{DestinationPort: ptr(uint16(23))}, src, dst, false},
		{"session id", ops.SessionFilter{SessionID: ptr(uint64(1022))}, src, dst, true},
		{"session id other", ops.SessionFilter{SessionID: ptr(uint64(1021))}, src, dst, false},
		{"AND, all hold", ops.SessionFilter{SourcePrefix: netip.MustParsePrefix("10.0.0.0/8"), Protocol: ptr(uint8(6)),
			DestinationPort: ptr(uint16(22)), SessionID: ptr(uint64(1022))}, src, dst, true},
		{"AND, one fails", ops.SessionFilter{SourcePrefix: netip.MustParsePrefix("10.0.0.0/8"), Protocol: ptr(uint8(6)),
			DestinationPort: ptr(uint16(80))}, src, dst, false},
	}
	for _, tc := range cases {
		if got := tc.f.Match(1022, 6, tc.src, tc.dst); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestProtocolNames(t *testing.T) {
	for _, p := range []uint8{1, 6, 17, 47, 50, 51, 58, 89, 132} {
		name := ops.ProtocolName(p)
		if got, err := ops.ParseProtocol(name); err != nil || got != p {
			t.Errorf("protocol %d shows as %q, which reads back as %d (%v)", p, name, got, err)
		}
	}
	if got := ops.ProtocolName(200); got != "200" {
		t.Errorf("protocol 200 shows as %q", got)
	}
	if got, err := ops.ParseProtocol("0"); err != nil || got != 0 {
		t.Errorf("protocol 0: %d, %v", got, err)
	}
}

// TestClearFlowSession: the words select the sessions of the reference
// state (1021 icmp, 1022 tcp 10.100.11.10/51234 → 10.100.22.10/22) as the
// vendor's filters do; the count printed is the number removed.
func TestClearFlowSession(t *testing.T) {
	cases := []struct {
		words   string
		cleared int
		kept    []uint64
		filter  ops.SessionFilter
	}{
		{"all", 2, nil, ops.SessionFilter{}},
		{"protocol tcp", 1, []uint64{1021}, ops.SessionFilter{Protocol: ptr(uint8(6))}},
		{"protocol 1", 1, []uint64{1022}, ops.SessionFilter{Protocol: ptr(uint8(1))}},
		{"protocol udp", 0, []uint64{1021, 1022}, ops.SessionFilter{Protocol: ptr(uint8(17))}},
		{"source-prefix 10.100/16", 2, nil, ops.SessionFilter{SourcePrefix: netip.MustParsePrefix("10.100.0.0/16")}},
		{"source-prefix 10.100.11.10", 2, nil, ops.SessionFilter{SourcePrefix: netip.MustParsePrefix("10.100.11.10/32")}},
		{"source-prefix 10.100.22.10/24", 0, []uint64{1021, 1022}, ops.SessionFilter{SourcePrefix: netip.MustParsePrefix("10.100.22.0/24")}},
		{"destination-prefix 10.100.22.0/24 destination-port 22", 1, []uint64{1021},
			ops.SessionFilter{DestinationPrefix: netip.MustParsePrefix("10.100.22.0/24"), DestinationPort: ptr(uint16(22))}},
		{"source-port 51234 protocol icmp", 0, []uint64{1021, 1022}, ops.SessionFilter{SourcePort: ptr(uint16(51234)), Protocol: ptr(uint8(1))}},
		{"session-identifier 1021", 1, []uint64{1022}, ops.SessionFilter{SessionID: ptr(uint64(1021))}},
	}
	for _, tc := range cases {
		p := opstest.Reference()
		ctx := context.Background()
		words := strings.Fields("clear security flow session " + tc.words)
		out, err := ops.Run(ctx, p, words, false)
		if err != nil {
			t.Errorf("%s: %v", tc.words, err)
			continue
		}
		if want := fmt.Sprintf("%d active sessions cleared\n", tc.cleared); out != want {
			t.Errorf("%s: %q, want %q", tc.words, out, want)
		}
		var kept []uint64
		for _, s := range p.State.Sessions.Sessions {
			kept = append(kept, s.ID)
		}
		if !slices.Equal(kept, tc.kept) {
			t.Errorf("%s: kept %v, want %v", tc.words, kept, tc.kept)
		}
		clears := p.Clears()
		if len(clears) != 1 || clears[0].What != "flow-sessions" || !reflect.DeepEqual(clears[0].Filter, tc.filter) {
			t.Errorf("%s: provider asked %+v, want filter %+v", tc.words, clears, tc.filter)
		}
	}
}

func TestClearFlowSessionJSON(t *testing.T) {
	p := opstest.Reference()
	out, err := ops.Run(context.Background(), p, strings.Fields("clear security flow session protocol tcp | display json"), false)
	if err != nil || out != "{\n  \"sessions-cleared\": 1\n}\n" {
		t.Fatalf("%q, %v", out, err)
	}
	out, err = ops.Run(context.Background(), p, strings.Fields("clear security flow session protocol tcp"), true)
	if err != nil || out != "{\n  \"sessions-cleared\": 0\n}\n" {
		t.Fatalf("cleared again: %q, %v", out, err)
	}
}

// TestSessionFilterString: a filter reads as the words of the command in
// one order, and those words parse back to the same filter.
func TestSessionFilterString(t *testing.T) {
	filterOf := func(words string) ops.SessionFilter {
		t.Helper()
		p := opstest.Reference()
		opstest.Run(t, p, "clear security flow session "+words)
		return p.Clears()[0].Filter
	}
	for words, want := range map[string]string{
		"all":                                "all",
		"protocol 1 source-prefix 10.100/16": "source-prefix 10.100.0.0/16 protocol icmp",
		"session-identifier 1021 destination-port 22 source-port 7 destination-prefix 2001:db8::1": "destination-prefix 2001:db8::1/128 source-port 7 destination-port 22 session-identifier 1021",
	} {
		f := filterOf(words)
		if got := f.String(); got != want {
			t.Errorf("%s: reads %q, want %q", words, got, want)
		}
		if again := filterOf(f.String()); !reflect.DeepEqual(again, f) {
			t.Errorf("%s: %q parses to %+v, want %+v", words, f, again, f)
		}
	}
}

func TestShowFlowSessionFilters(t *testing.T) {
	cases := []struct {
		words string
		ids   []string // Session IDs listed
	}{
		{"", []string{"1021", "1022"}},
		{"protocol tcp", []string{"1022"}},
		{"destination-port 7", []string{"1021"}},
		{"source-prefix 10.100.11/24 protocol icmp", []string{"1021"}},
		{"source-prefix 10.100.22/24", nil},
		{"session-identifier 1022", []string{"1022"}},
		{"interface st0.0", []string{"1021", "1022"}},
		{"interface ge-0/0/0.0 protocol icmp", []string{"1021"}},
		{"interface st0", []string{"1021", "1022"}},
		{"interface st0.1", nil},
		{"interface ge-0/0/1.0", nil},
		{"interface ge-0/0", nil},
	}
	idRE := regexp.MustCompile(`(?m)^Session ID: (\d+),`)
	for _, tc := range cases {
		out := opstest.Run(t, opstest.Reference(), "show security flow session "+tc.words)
		var ids []string
		for _, m := range idRE.FindAllStringSubmatch(out, -1) {
			ids = append(ids, m[1])
		}
		if !slices.Equal(ids, tc.ids) || !strings.HasSuffix(out, fmt.Sprintf("Total sessions: %d\n", len(tc.ids))) {
			t.Errorf("%q lists %v, want %v:\n%s", tc.words, ids, tc.ids, out)
		}
	}
	if out := opstest.Run(t, opstest.Reference(), "show security flow session protocol udp | display json"); !strings.Contains(out, `"sessions": []`) {
		t.Errorf("no session selected, JSON:\n%s", out)
	}
	// summary with a filter counts the selected sessions; the maximum is
	// the table's.
	p := opstest.Reference()
	out := opstest.Run(t, p, "show security flow session summary protocol tcp")
	for _, want := range []string{"Unicast-sessions: 1\n", "Sessions-in-use: 1\n", "  Valid sessions: 1\n", "Maximum-sessions: 524288\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary protocol tcp lacks %q:\n%s", want, out)
		}
	}
	if out := opstest.Run(t, p, "show security flow session summary"); !strings.Contains(out, "Unicast-sessions: 2\n") {
		t.Errorf("summary without a filter:\n%s", out)
	}
	if _, err := ops.Parse(strings.Fields("show security flow session all")); err == nil {
		t.Error("show security flow session all parsed; all is clear's word")
	}
}

func TestSessionFilterInterfaces(t *testing.T) {
	cases := []struct {
		iface, in, out string
		want           bool
	}{
		{"", "ge-0/0/0.0", "st0.0", true},
		{"ge-0/0/0.0", "ge-0/0/0.0", "st0.0", true},
		{"st0.0", "ge-0/0/0.0", "st0.0", true},
		{"st0", "ge-0/0/0.0", "st0.0", true},
		{"st0", "ge-0/0/0.0", "st0.12", true},
		{"st0.1", "ge-0/0/0.0", "st0.12", false},
		{"st", "ge-0/0/0.0", "st0.0", false},
		{"st0.0", "-", "-", false},
	}
	for _, c := range cases {
		if got := (ops.SessionFilter{Interface: c.iface}).MatchInterfaces(c.in, c.out); got != c.want {
			t.Errorf("interface %q, session on %s/%s: %v, want %v", c.iface, c.in, c.out, got, c.want)
		}
	}
}
