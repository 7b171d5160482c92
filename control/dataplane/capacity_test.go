package dataplane

import (
	"fmt"
	"strings"
	"testing"

	"github.com/bpfvpn/bpfvpn/control/config"
	"github.com/bpfvpn/bpfvpn/maps"
)

// capacityConfig has one context per count, zone pair zI→zI+1, whose
// policies sit at big.conf:LINE:5, one line per policy in order.
func capacityConfig(counts ...int) *config.Config {
	cfg := &config.Config{}
	line := 0
	for i, n := range counts {
		line++
		pc := &config.PolicyContext{From: fmt.Sprintf("z%d", i), To: fmt.Sprintf("z%d", i+1), Pos: config.Pos{File: "big.conf", Line: line, Col: 1}}
		for j := 0; j < n; j++ {
			line++
			pc.Policies = append(pc.Policies, &config.Policy{Name: fmt.Sprintf("P%d-%d", i, j), Pos: config.Pos{File: "big.conf", Line: line, Col: 5}})
		}
		cfg.Policies.Contexts = append(cfg.Policies.Contexts, pc)
	}
	return cfg
}

// TestCheckCapacity: a zone pair over maps.MaxPoliciesPerZonePair or a
// configuration over maps.MaxPolicies is refused by FromConfig (the
// data-plane component's Check) with the zone pair, the limit and the
// position of the first policy over it; configurations at the limits pass.
func TestCheckCapacity(t *testing.T) {
	const perPair, all = maps.MaxPoliciesPerZonePair, maps.MaxPolicies
	full := all / perPair // whole zone pairs that fit
	fits := []int{}
	for i := 0; i < full; i++ {
		fits = append(fits, perPair)
	}
	fits = append(fits, all-full*perPair)
	for _, counts := range [][]int{{perPair}, {3, perPair, 7}, fits} {
		if err := CheckCapacity(capacityConfig(counts...)); err != nil {
			t.Errorf("%d zone pairs at the limits: %v", len(counts), err)
		}
	}
	for _, tc := range []struct {
		counts []int
		want   []string
	}{
		// Zone pair z1→z2 starts at line 5 (4 lines of z0→z1 before);
		// its policy number perPair (0-based) is on line 6+perPair.
		{[]int{3, perPair + 1, 2}, []string{fmt.Sprintf("big.conf:%d:5: ", 6+perPair), "from-zone z1 to-zone z2",
			fmt.Sprintf("policy P1-%d is the first over", perPair), fmt.Sprintf("at most %d policies per zone pair", perPair)}},
		{append(append([]int(nil), fits[:len(fits)-1]...), perPair), []string{fmt.Sprintf("from-zone z%d to-zone z%d", full, full+1),
			fmt.Sprintf("policy P%d-%d is the first over", full, all-full*perPair), fmt.Sprintf("limit of %d policies in all", all)}},
	} {
		err := CheckCapacity(capacityConfig(tc.counts...))
		if err == nil {
			t.Errorf("%v: accepted", tc.counts)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: %q lacks %q", tc.counts[:min(len(tc.counts), 3)], err, w)
			}
		}
		if _, _, ferr := FromConfig(capacityConfig(tc.counts...)); ferr == nil || ferr.Error() != err.Error() {
			t.Errorf("FromConfig: %v, want %v", ferr, err)
		}
	}
	// Without positions the message has no position prefix.
	cfg := capacityConfig(perPair + 1)
	for _, p := range cfg.Policies.Contexts[0].Policies {
		p.Pos = config.Pos{}
	}
	cfg.Policies.Contexts[0].Pos = config.Pos{}
	if err := CheckCapacity(cfg); err == nil || !strings.HasPrefix(err.Error(), "from-zone z0 to-zone z1: ") {
		t.Errorf("without positions: %v", err)
	}
}
