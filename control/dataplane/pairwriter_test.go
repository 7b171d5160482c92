package dataplane_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/bpfvpn/bpfvpn/control/dataplane"
	tp "github.com/bpfvpn/bpfvpn/control/dataplane/testpkt"
	"github.com/bpfvpn/bpfvpn/loader"
	"github.com/bpfvpn/bpfvpn/maps"
)

// withDeny80 is baseSpec with a policy denying HTTP to 10.2.0.2 first in
// trust→untrust.
func withDeny80() *dataplane.Spec {
	s := baseSpec()
	s.Policies = append([]dataplane.Policy{{Name: "deny-80", FromZone: "trust", ToZone: "untrust",
		Destination: []netip.Prefix{pfx("10.2.0.2/32")}, Apps: []dataplane.AppTerm{appHTTP}, Action: dataplane.Deny}}, s.Policies...)
	return s
}

// TestPairWriterDecisions: the PairWriter's generations decide as Apply's
// do; once both generations are its own, a one-pair change rewrites only
// that pair; an established session that the new generation denies is
// closed on its next packet, one it still permits keeps flowing.
func TestPairWriterDecisions(t *testing.T) {
	f := newProgFixture(t)
	f.apply(t, baseSpec())
	w := &dataplane.PairWriter{}
	var lastGen uint32
	write := func(spec *dataplane.Spec) dataplane.PairWriteStats {
		t.Helper()
		var st dataplane.PairWriteStats
		var index map[string]uint32
		var err error
		f.in(t, func() { index, st, err = w.Write(f.m, spec) })
		if err != nil {
			t.Fatalf("write: %v", err)
		}
		// The index names the row of every policy.
		if len(index) != len(spec.Policies) {
			t.Errorf("index has %d entries for %d policies", len(index), len(spec.Policies))
		}
		for key, idx := range index {
			var row maps.Policy
			if err := f.m.Policies.Lookup(idx, &row); err != nil {
				t.Fatalf("row %d of %s: %v", idx, key, err)
			}
			name := string(bytes.TrimRight(row.Name[:], "\x00"))
			if !strings.HasSuffix(key, "/"+name) || idx/maps.MaxPolicies != st.Gen&1 {
				t.Errorf("index %s → row %d (generation %d) holds %q", key, idx, st.Gen, name)
			}
		}
		// Generations count commits (a session stamped two commits ago
		// must not look current when the same half is active again).
		if st.Gen <= lastGen {
			t.Errorf("generation %d after %d: does not count commits", st.Gen, lastGen)
		}
		lastGen = st.Gen
		return st
	}
	port := uint16(2000)
	syn80 := func(want uint32) pcase {
		port++
		return pcase{name: "HTTP SYN to 10.2.0.2", pkt: tcp("10.1.0.2", "10.2.0.2", port, 80, tp.SYN), want: want}
	}
	dns := pcase{name: "DNS permitted", pkt: udp("10.1.0.2", "10.2.0.2", 5353, 53), want: xdpRedirect}
	vpnOut := pcase{name: "trust→vpn untouched pair permits", pkt: tcp("10.1.0.2", "10.3.0.9", 1, 22, tp.SYN), want: xdpPass}
	vpnDeny := pcase{name: "trust→vpn untouched pair denies", pkt: tcp("10.1.7.7", "10.3.0.9", 1, 22, tp.SYN), want: xdpDrop}
	counted := withDeny80()
	counted.Policies[0].Count = true

	// Generations alternate: steps 0 and 2 write one, 1 and 3 the other.
	for i, step := range []struct {
		spec          *dataplane.Spec
		whole         bool
		written, kept int
		want          uint32
	}{
		{withDeny80(), true, 4, 0, xdpDrop},
		{baseSpec(), true, 4, 0, xdpRedirect},
		{counted, false, 1, 3, xdpDrop},        // only trust→untrust differs from step 0
		{baseSpec(), false, 0, 4, xdpRedirect}, // same as step 1
		{withDeny80(), false, 1, 3, xdpDrop},
	} {
		st := write(step.spec)
		if st.Whole != step.whole || st.PairsWritten != step.written || st.PairsKept != step.kept {
			t.Errorf("step %d: whole %v, %d pairs written, %d kept; want %v, %d, %d", i, st.Whole, st.PairsWritten, st.PairsKept, step.whole, step.written, step.kept)
		}
		f.runCases(t, []pcase{syn80(step.want), dns, vpnOut, vpnDeny})
	}

	// A pair that outgrows its room: the rows are laid out again.
	grown := withDeny80()
	for i := 0; i < 40; i++ {
		// Before web-out, which would permit what they deny.
		grown.Policies = append([]dataplane.Policy{{Name: fmt.Sprintf("g%d", i), FromZone: "trust", ToZone: "untrust",
			Destination: []netip.Prefix{pfx(fmt.Sprintf("10.2.0.%d/32", 100+i))}, Action: dataplane.Deny}}, grown.Policies...)
	}
	probe := func() uint32 {
		port++
		ret, _ := f.runXDP(t, "trust0", tcp("10.1.0.2", "10.2.0.139", port, 80, tp.SYN).Bytes())
		return ret
	}
	if ret := probe(); ret == xdpDrop {
		t.Fatal("10.2.0.139 dropped before the pair grew")
	}
	write(grown)
	f.runCases(t, []pcase{syn80(xdpDrop), dns, vpnOut, vpnDeny})
	if ret := probe(); ret != xdpDrop {
		t.Errorf("grown pair's policy g39: verdict %d, want drop", ret)
	}
	write(baseSpec())
	f.runCases(t, []pcase{syn80(xdpRedirect), dns, vpnOut, vpnDeny})

	// A session established under the permitting generation.
	write(baseSpec())
	f.runCases(t, []pcase{{name: "session SYN", pkt: tcp("10.1.0.2", "10.2.0.2", 3000, 80, tp.SYN), want: xdpRedirect}})
	f.runCases(t, []pcase{{name: "session ACK", pkt: tcp("10.1.0.2", "10.2.0.2", 3000, 80, tp.ACK), want: xdpRedirect}})
	f.runCases(t, []pcase{{name: "DNS session", pkt: udp("10.1.0.2", "10.2.0.2", 4000, 53), want: xdpRedirect}})
	write(counted)
	f.runCases(t, []pcase{
		{name: "denied session closed on its next packet", pkt: tcp("10.1.0.2", "10.2.0.2", 3000, 80, tp.ACK), want: xdpDrop},
		{name: "permitted session keeps flowing", pkt: udp("10.1.0.2", "10.2.0.2", 4000, 53), want: xdpRedirect, cnt: loader.BpfvpnCounterIdCNT_SESSION_HIT},
	})
	// The writer's Apply also writes zones, interfaces and the config map
	// (tcp-mss here), rewriting only the changed pair.
	mss := withDeny80()
	mss.TCPMSS.AllTCP = 1300
	var ast dataplane.PairWriteStats
	var err error
	f.in(t, func() { _, ast, err = w.Apply(f.m, mss, nil) })
	if err != nil {
		t.Fatalf("writer apply: %v", err)
	}
	if ast.Whole || ast.PairsWritten != 1 {
		t.Errorf("writer apply: %+v, want one pair written", ast)
	}
	if cfg, err := f.m.ReadConfig(); err != nil || cfg.MssAll != 1300 || cfg.Gen != ast.Gen {
		t.Errorf("config after writer apply: %+v %v", cfg, err)
	}
	f.runCases(t, []pcase{syn80(xdpDrop), dns, vpnOut, vpnDeny})

	// Apply (full) makes the writer's knowledge stale: Forget.
	f.apply(t, baseSpec())
	w.Forget()
	if st := write(withDeny80()); !st.Whole {
		t.Error("write after Forget was not whole")
	}
	f.runCases(t, []pcase{syn80(xdpDrop), dns, vpnOut, vpnDeny})
}
