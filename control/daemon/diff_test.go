package daemon

import (
	"fmt"
	"strings"
	"testing"

	"github.com/bpfvpn/bpfvpn/control/config"
)

func diffTestConfig(t *testing.T, names []string, changed map[string]bool) *config.Config {
	t.Helper()
	var b strings.Builder
	b.WriteString(srx1(t))
	for _, n := range names {
		p := "set security policies from-zone trust to-zone untrust policy " + n + " "
		app := "junos-http"
		if changed[n] {
			app = "junos-https"
		}
		b.WriteString(p + "match source-address any\n" + p + "match destination-address any\n" + p + "match application " + app + "\n" + p + "then permit\n")
	}
	cfg, ds := config.ParseBytes("t", []byte(b.String()))
	if cfg == nil {
		t.Fatal(ds)
	}
	return cfg
}

// TestDiffPolicies: the per-pair walk reports what a name-by-name
// comparison of every policy reports (a policy whose predecessor changed
// counts as changed: its place in the pair did).
func TestDiffPolicies(t *testing.T) {
	base := []string{"a", "b", "c", "d", "e", "f"}
	cases := map[string]struct {
		names   []string
		changed map[string]bool
		want    []string
	}{
		"same":             {base, nil, nil},
		"add at the end":   {append(append([]string{}, base...), "g"), nil, []string{"+ g"}},
		"insert in middle": {[]string{"a", "b", "x", "c", "d", "e", "f"}, nil, []string{"~ c", "+ x"}},
		"delete middle":    {[]string{"a", "b", "d", "e", "f"}, nil, []string{"~ d", "- c"}},
		"change middle":    {base, map[string]bool{"d": true}, []string{"~ d"}},
		"swap":             {[]string{"a", "c", "b", "d", "e", "f"}, nil, []string{"~ b", "~ c", "~ d"}},
		"first and last":   {[]string{"z", "b", "c", "d", "e"}, nil, []string{"~ b", "- a", "- f", "+ z"}},
	}
	prev := diffTestConfig(t, base, nil)
	for name, tc := range cases {
		next := diffTestConfig(t, tc.names, tc.changed)
		got := Diff(prev, next)
		var want []string
		for _, w := range tc.want {
			want = append(want, w[:2]+policyName(pairKey{"trust", "untrust"}, w[2:]))
		}
		sortChanges(want)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: got %q\nwant %q", name, got, want)
		}
	}
	// A removed and an added zone pair.
	next := diffTestConfig(t, base, nil)
	next.Policies.Contexts = next.Policies.Contexts[1:]
	for _, dir := range []struct {
		sign     string
		from, to *config.Config
	}{{"-", prev, next}, {"+", next, prev}} {
		got := Diff(dir.from, dir.to)
		if len(got) != 7 {
			t.Errorf("pair %s: %q", dir.sign, got)
		}
		for _, g := range got {
			if !strings.HasPrefix(g, dir.sign+" security policies from-zone trust to-zone untrust policy ") {
				t.Errorf("pair %s: %q", dir.sign, g)
			}
		}
	}
}
