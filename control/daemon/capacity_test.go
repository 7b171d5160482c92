package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/bpfvpn/bpfvpn/control/config"
	"github.com/bpfvpn/bpfvpn/maps"
)

// dpCheckRecorder records applies like policyRecorder but checks with the
// real data-plane component's Check and CheckPolicies (which need no BPF).
type dpCheckRecorder struct {
	*policyRecorder
	dp *dataplaneComponent
}

func (r *dpCheckRecorder) Check(ctx context.Context, cfg *config.Config) error {
	return r.dp.Check(ctx, cfg)
}

func (r *dpCheckRecorder) CheckPolicies(ctx context.Context, cfg *config.Config, changed []config.PolicyRef) error {
	return r.dp.CheckPolicies(ctx, cfg, changed)
}

// policyLines are n trust→vpn policies P0..Pn-1 in set form.
func policyLines(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		p := fmt.Sprintf("set security policies from-zone trust to-zone vpn policy P%d ", i)
		b.WriteString(p + "match source-address any\n" + p + "match destination-address any\n" +
			p + "match application junos-ssh\n" + p + "then deny\n")
	}
	return b.String()
}

// TestCommitOverCapacityChangesNothing: a configuration with more policies
// in one zone pair than the data plane holds is refused by commit check,
// commit and load set with the zone pair, the limit and the position of the
// first policy over it, and nothing is applied or stored.
func TestCommitOverCapacityChangesNothing(t *testing.T) {
	dp, err := newDataplaneComponent(slog.New(slog.DiscardHandler), "captest", nil)
	if err != nil {
		t.Fatal(err)
	}
	pr := &policyRecorder{recorder: &recorder{name: "dataplane"}}
	h := startDaemonWith(t, srx1(t), []Component{&recorder{name: "kernel"}, &dpCheckRecorder{pr, dp}, &recorder{name: "ike"}})
	base := srx1(t)
	// trust→vpn holds VPN-OUT: MaxPoliciesPerZonePair more put one over.
	n := maps.MaxPoliciesPerZonePair
	over := fmt.Sprintf("P%d", n-1)
	// Line of the first line of policy `over` in a text of lines lines
	// followed by policyLines: 4 lines per policy.
	lineOf := func(prefix string) int { return strings.Count(prefix, "\n") + 4*(n-1) + 1 }
	want := func(name string, line int) []string {
		return []string{fmt.Sprintf("%s:%d:", name, line), "from-zone trust to-zone vpn", "policy " + over + " is the first over",
			fmt.Sprintf("at most %d policies per zone pair", maps.MaxPoliciesPerZonePair)}
	}
	for _, tc := range []struct {
		verb, name, text, load string
		want                   []string
	}{
		{VerbCommitCheck, "big.set", base + policyLines(n), "", want("big.set", lineOf(base))},
		{VerbCommit, "big.set", base + policyLines(n), "", want("big.set", lineOf(base))},
		{VerbCommitCheck, "-", policyLines(n), LoadSet, want("-", lineOf(""))},
		{VerbCommit, "-", policyLines(n), LoadSet, want("-", lineOf(""))},
		{VerbCommit, "-", policyLines(n), LoadMerge, want("-", lineOf(""))},
	} {
		// Over 1 MiB: past the socket's request limit, straight to the
		// daemon (as a SIGHUP reload of the file would).
		res, err := h.d.Commit(context.Background(), CommitRequest{Name: tc.name, Text: tc.text, Load: tc.load}, tc.verb == VerbCommitCheck)
		if err == nil || res.Committed {
			t.Fatalf("%s %s %s: accepted: %+v", tc.verb, tc.name, tc.load, res)
		}
		t.Logf("%s %s %s: %v", tc.verb, tc.name, tc.load, err)
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s %s %s: %q lacks %q", tc.verb, tc.name, tc.load, err, w)
			}
		}
	}
	if pr.count() != 1 || len(pr.policies) != 0 || h.comps[0].count() != 1 {
		t.Errorf("applied after refused commits: data plane %d, policy deltas %d, kernel %d", pr.count(), len(pr.policies), h.comps[0].count())
	}
	if list, _ := h.d.store.List(); len(list) != 1 {
		t.Errorf("store holds %d entries", len(list))
	}
	if hasPolicy(h.d.active, "P0") {
		t.Error("active configuration holds a policy of a refused commit")
	}
	// At the limit it commits.
	if _, err := h.d.Commit(context.Background(), CommitRequest{Name: "-", Text: policyLines(n - 1), Load: LoadSet}, false); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	if !hasPolicy(pr.last(), "P0") {
		t.Error("policies at the limit not applied")
	}
}
