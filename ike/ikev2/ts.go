package ikev2

import (
	"github.com/bpfvpn/bpfvpn/ike"
)

func tsPayload(responder bool, sel []ike.TrafficSelector) *TS {
	p := &TS{Responder: responder}
	for _, s := range sel {
		t := TSIPv4Range
		if s.Start.Is6() {
			t = TSIPv6Range
		}
		p.Selectors = append(p.Selectors, Selector{TSType: t, IPProtocol: s.Protocol, StartPort: s.StartPort, EndPort: s.EndPort, Start: s.Start, End: s.End})
	}
	return p
}

func selectorsOf(p *TS) []ike.TrafficSelector {
	if p == nil {
		return nil
	}
	out := make([]ike.TrafficSelector, 0, len(p.Selectors))
	for _, s := range p.Selectors {
		if s.Start.Compare(s.End) > 0 || s.StartPort > s.EndPort {
			continue // empty range
		}
		out = append(out, ike.TrafficSelector{Protocol: s.IPProtocol, Start: s.Start, End: s.End, StartPort: s.StartPort, EndPort: s.EndPort})
	}
	return out
}

// intersect returns the overlap of a and b, ok=false when empty.
func intersect(a, b ike.TrafficSelector) (ike.TrafficSelector, bool) {
	if a.Start.Is4() != b.Start.Is4() {
		return ike.TrafficSelector{}, false
	}
	var r ike.TrafficSelector
	switch {
	case a.Protocol == 0:
		r.Protocol = b.Protocol
	case b.Protocol == 0 || b.Protocol == a.Protocol:
		r.Protocol = a.Protocol
	default:
		return r, false
	}
	r.Start, r.End = a.Start, a.End
	if b.Start.Compare(r.Start) > 0 {
		r.Start = b.Start
	}
	if b.End.Compare(r.End) < 0 {
		r.End = b.End
	}
	r.StartPort, r.EndPort = max(a.StartPort, b.StartPort), min(a.EndPort, b.EndPort)
	if r.Start.Compare(r.End) > 0 || r.StartPort > r.EndPort {
		return r, false
	}
	return r, true
}

// narrow intersects the peer's proposed selectors with our configured ones
// (RFC 7296 §2.9): the result is what both accept.
func narrow(peer, ours []ike.TrafficSelector) []ike.TrafficSelector {
	var out []ike.TrafficSelector
	for _, p := range peer {
		for _, o := range ours {
			if r, ok := intersect(p, o); ok && !containsTS(out, r) {
				out = append(out, r)
			}
		}
	}
	return out
}

func containsTS(list []ike.TrafficSelector, t ike.TrafficSelector) bool {
	for _, l := range list {
		if l == t {
			return true
		}
	}
	return false
}

// within reports whether every selector of got lies inside one of offered.
func within(got, offered []ike.TrafficSelector) bool {
	for _, g := range got {
		ok := false
		for _, o := range offered {
			if r, in := intersect(g, o); in && r == g {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return len(got) > 0
}
