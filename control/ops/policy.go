package ops

import (
	"io"
	"strconv"
	"strings"
)

// Policy is one security policy of a zone pair, in evaluation order.
type Policy struct {
	Name                 string   `json:"name"`
	FromZone             string   `json:"from-zone"`
	ToZone               string   `json:"to-zone"`
	Index                uint32   `json:"index"`           // unique policy id
	Sequence             uint32   `json:"sequence-number"` // position within the zone pair, from 1
	Enabled              bool     `json:"enabled"`
	SourceAddresses      []string `json:"source-addresses"`
	DestinationAddresses []string `json:"destination-addresses"`
	Applications         []string `json:"applications"`
	Action               string   `json:"action"` // permit, deny or reject
	Log                  bool     `json:"log,omitempty"`
	Count                bool     `json:"count,omitempty"`
	// Hits counts the sessions (first packets) the policy matched.
	Hits uint64 `json:"hit-count"`
}

// Policies is the answer to `show security policies` and `show security
// policies hit-count`.
type Policies struct {
	// DefaultPolicy is deny-all or permit-all.
	DefaultPolicy string   `json:"default-policy"`
	Policies      []Policy `json:"policies"`
}

// WriteText prints the policy list grouped by zone pair, in the order given.
func (v Policies) WriteText(w io.Writer) error {
	ew := errWriter{w: w}
	ew.printf("Default policy: %s\n", orDefault(v.DefaultPolicy, "deny-all"))
	var from, to string
	for i, p := range v.Policies {
		if i == 0 || p.FromZone != from || p.ToZone != to {
			from, to = p.FromZone, p.ToZone
			ew.printf("From zone: %s, To zone: %s\n", from, to)
		}
		state := "enabled"
		if !p.Enabled {
			state = "disabled"
		}
		ew.printf("  Policy: %s, State: %s, Index: %d, Scope Policy: 0, Sequence number: %d\n", p.Name, state, p.Index, p.Sequence)
		ew.printf("    Source addresses: %s\n", list(p.SourceAddresses))
		ew.printf("    Destination addresses: %s\n", list(p.DestinationAddresses))
		ew.printf("    Applications: %s\n", list(p.Applications))
		action := p.Action
		if p.Log {
			action += ", log"
		}
		if p.Count {
			action += ", count"
		}
		ew.printf("    Action: %s\n", action)
	}
	return ew.err
}

func list(items []string) string {
	if len(items) == 0 {
		return "any"
	}
	return strings.Join(items, ", ")
}

// PolicyHitCounts is the hit-count view of Policies.
type PolicyHitCounts Policies

var hitCountStops = []int{0, 8, 25, 43, 58, 72}

// WriteText prints the hit-count table of the root logical system.
func (v PolicyHitCounts) WriteText(w io.Writer) error {
	ew := errWriter{w: w}
	ew.line("Logical system: root-logical-system")
	ew.line(columns(hitCountStops, "Index", "From zone", "To zone", "Name", "Policy count", "Action"))
	for i, p := range v.Policies {
		action := p.Action
		if action != "" {
			action = strings.ToUpper(action[:1]) + action[1:]
		}
		ew.line(columns(hitCountStops, strconv.Itoa(i+1), p.FromZone, p.ToZone, p.Name,
			strconv.FormatUint(p.Hits, 10), action))
	}
	return ew.err
}
