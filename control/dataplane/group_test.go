package dataplane

import (
	"fmt"
	"testing"
)

// TestGroupPoliciesInterleaved: policies of one zone pair that are not
// contiguous in the spec are grouped in spec order, as contiguous ones.
func TestGroupPoliciesInterleaved(t *testing.T) {
	zones := map[string]uint16{"a": 1, "b": 2}
	spec := &Spec{Policies: []Policy{
		{Name: "1", FromZone: "a", ToZone: "b"}, {Name: "2", FromZone: "a", ToZone: "b"},
		{Name: "3", FromZone: "b", ToZone: "a"}, {Name: "4", FromZone: "a", ToZone: "b"},
		{Name: "5", FromZone: "b", ToZone: "a"},
	}}
	order, groups, err := groupPolicies(spec, zones)
	if err != nil {
		t.Fatal(err)
	}
	names := func(ps []Policy) (out []string) {
		for _, p := range ps {
			out = append(out, p.Name)
		}
		return out
	}
	ab, ba := pairID{1, 2}, pairID{2, 1}
	if fmt.Sprint(order) != fmt.Sprint([]pairID{ab, ba}) || fmt.Sprint(names(groups[ab])) != "[1 2 4]" || fmt.Sprint(names(groups[ba])) != "[3 5]" {
		t.Errorf("order %v, groups %v %v", order, names(groups[ab]), names(groups[ba]))
	}
	// A group never aliases the spec beyond its own policies.
	groups[ba] = append(groups[ba], Policy{Name: "x"})
	if spec.Policies[4].Name != "5" {
		t.Error("appending to a group changed the spec")
	}
}
