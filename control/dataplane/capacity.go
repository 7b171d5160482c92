package dataplane

import (
	"fmt"

	"github.com/bpfvpn/bpfvpn/control/config"
	"github.com/bpfvpn/bpfvpn/maps"
)

// CheckCapacity reports the first place where cfg's policies exceed what one
// data-plane generation holds: maps.MaxPoliciesPerZonePair policies in one
// zone pair (the bits of a policy bitset) and maps.MaxPolicies in all (the
// rows of a generation). The error names the zone pair, the limit and, when
// the configuration carries positions, the file:line:col of the first
// policy over it.
func CheckCapacity(cfg *config.Config) error {
	type pair struct{ from, to string }
	perPair := map[pair]int{}
	total := 0
	for _, pc := range cfg.Policies.Contexts {
		k := pair{pc.From, pc.To}
		n := perPair[k]
		if n+len(pc.Policies) > maps.MaxPoliciesPerZonePair {
			p := pc.Policies[maps.MaxPoliciesPerZonePair-n]
			return fmt.Errorf("%sfrom-zone %s to-zone %s: %d policies, policy %s is the first over the limit; the data plane holds at most %d policies per zone pair",
				posPrefix(p.Pos, pc.Pos), pc.From, pc.To, n+len(pc.Policies), p.Name, maps.MaxPoliciesPerZonePair)
		}
		if total+len(pc.Policies) > maps.MaxPolicies {
			p := pc.Policies[maps.MaxPolicies-total]
			return fmt.Errorf("%sfrom-zone %s to-zone %s: policy %s is the first over the limit of %d policies in all the data plane holds",
				posPrefix(p.Pos, pc.Pos), pc.From, pc.To, p.Name, maps.MaxPolicies)
		}
		perPair[k] = n + len(pc.Policies)
		total += len(pc.Policies)
	}
	return nil
}

// posPrefix is "FILE:LINE:COL: " of the first valid position, or "".
func posPrefix(ps ...config.Pos) string {
	for _, p := range ps {
		if p.IsValid() {
			return p.String() + ": "
		}
	}
	return ""
}
