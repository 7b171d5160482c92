package daemon

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/bpfvpn/bpfvpn/control/ops"
	"github.com/bpfvpn/bpfvpn/control/ops/opstest"
	"github.com/bpfvpn/bpfvpn/loader"
	"github.com/bpfvpn/bpfvpn/maps"
)

// putSession writes a session src → dst (src initiated it) into the data
// plane's session table, as xdp_zone would have created it.
func putSession(t *testing.T, m *maps.Set, proto uint8, src, dst string) {
	t.Helper()
	s, d := netip.MustParseAddrPort(src), netip.MustParseAddrPort(dst)
	k := maps.SessKey{A: maps.AddrWords(s.Addr()), B: maps.AddrWords(d.Addr()), Pa: s.Port(), Pb: d.Port(), Proto: proto, Family: maps.AFInet}
	if s.Addr().Is6() {
		k.Family = maps.AFInet6
	}
	v := maps.SessVal{Pkts: [2]uint64{3, 2}, Bytes: [2]uint64{300, 200}, Flags: uint8(loader.BpfvpnSessFlagsSF_INIT_IS_A)}
	if proto == 6 {
		v.TcpState = maps.TCPEstablished
	}
	if err := m.Sessions.Update(&k, &v, 0); err != nil {
		t.Fatalf("put session %s → %s: %v", src, dst, err)
	}
}

// TestClearFlowSessionsDataPlane: `clear security flow session …` through
// the daemon's Provider deletes exactly the selected entries of the data
// plane's session table (a real BPF map), prints how many, and `show
// security flow session` lists the others. (What the next packet of a
// cleared flow meets is tested on the programs in control/dataplane,
// TestProgClearSessions.)
func TestClearFlowSessionsDataPlane(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("loading the data plane needs root")
	}
	objs, err := loader.Load(loader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { objs.Close() })
	m := maps.FromObjects(objs)
	// Loopback addresses route through lo on any kernel: their sessions
	// show (and are cleared) on lo0.0.
	dp := &dataplaneComponent{log: slog.New(slog.DiscardHandler), set: m, units: map[string]string{"lo": "lo0.0"}}
	st := newState(nil)
	run := func(cmd string) string { t.Helper(); return opstest.Run(t, st, cmd) }
	if out := run("clear security flow session all"); out != "0 active sessions cleared\n" {
		t.Fatalf("without a data plane: %q", out)
	}
	st.SetDataplaneView(dp)

	putSession(t, m, 6, "10.100.11.10:51234", "10.100.22.10:22")
	putSession(t, m, 6, "10.100.11.10:51235", "10.100.22.10:80")
	putSession(t, m, 6, "10.100.22.10:40000", "10.100.11.10:22") // started at the far site
	putSession(t, m, 17, "10.100.11.10:5000", "10.100.22.10:53")
	putSession(t, m, 58, "[2001:db8:1::10]:7", "[2001:db8:2::10]:7")
	putSession(t, m, 6, "[2001:db8:1::10]:40001", "[2001:db8:2::10]:22")

	inLines := func() []string {
		t.Helper()
		return regexp.MustCompile(`(?m)^  In: (\S+ --> \S+);`).FindAllString(run("show security flow session"), -1)
	}
	if got := len(inLines()); got != 6 {
		t.Fatalf("%d sessions shown before the clears, want 6", got)
	}

	if out := run("clear security flow session protocol tcp destination-port 22 source-prefix 10.100.11.0/24"); out != "1 active sessions cleared\n" {
		t.Errorf("tcp to port 22 from 10.100.11.0/24: %q", out)
	}
	if out := run("clear security flow session destination-prefix 10.100/16 protocol tcp"); out != "2 active sessions cleared\n" {
		t.Errorf("tcp to 10.100/16: %q", out)
	}
	want := []string{"  In: 10.100.11.10/5000 --> 10.100.22.10/53;", "  In: 2001:db8:1::10/7 --> 2001:db8:2::10/7;", "  In: 2001:db8:1::10/40001 --> 2001:db8:2::10/22;"}
	if got := inLines(); !sameSet(got, want) {
		t.Fatalf("sessions left %q, want %q", got, want)
	}

	id := regexp.MustCompile(`Session ID: (\d+),[^\n]*\n  In: 2001:db8:1::10/7 `).FindStringSubmatch(run("show security flow session"))
	if id == nil {
		t.Fatal("no session ID shown for the ICMPv6 session")
	}
	if out := run("clear security flow session session-identifier " + id[1]); out != "1 active sessions cleared\n" {
		t.Errorf("by session ID: %q", out)
	}
	out, err := ops.Run(context.Background(), st, strings.Fields("clear security flow session source-prefix 2001:db8:1::/48 | display json"), false)
	if err != nil || out != "{\n  \"sessions-cleared\": 1\n}\n" {
		t.Errorf("IPv6 prefix, JSON: %q, %v", out, err)
	}
	if got := inLines(); !sameSet(got, want[:1]) {
		t.Fatalf("sessions left %q, want %q", got, want[:1])
	}
	// By interface: a unit, or an interface without a unit for all of
	// them, with the other filters ANDed.
	putSession(t, m, 6, "127.0.0.1:1000", "127.0.0.2:80")
	putSession(t, m, 17, "127.0.0.1:1001", "127.0.0.3:53")
	for _, c := range []struct{ cmd, want string }{
		{"interface lo0.1", "0 active sessions cleared\n"},
		{"interface lo0 protocol udp", "1 active sessions cleared\n"},
		{"interface lo0.0", "1 active sessions cleared\n"},
	} {
		if out := run("clear security flow session " + c.cmd); out != c.want {
			t.Errorf("%s: %q, want %q", c.cmd, out, c.want)
		}
	}
	if got := inLines(); !sameSet(got, want[:1]) {
		t.Fatalf("sessions left after the interface clears %q, want %q", got, want[:1])
	}
	if out := run("clear security flow session all"); out != "1 active sessions cleared\n" {
		t.Errorf("all: %q", out)
	}
	if n, err := maps.CountEntries(m, "sessions"); err != nil || n != 0 {
		t.Errorf("session table holds %d entries after clear all (%v)", n, err)
	}
	if out := run("clear security flow session all"); out != "0 active sessions cleared\n" {
		t.Errorf("all again: %q", out)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
