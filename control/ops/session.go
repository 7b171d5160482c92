package ops

import (
	"fmt"
	"io"
	"net/netip"
)

// FlowWing is one direction of a session: the packets that created it (In)
// or the replies (Out).
type FlowWing struct {
	Source      netip.AddrPort `json:"source"`
	Destination netip.AddrPort `json:"destination"`
	Protocol    string         `json:"protocol"` // tcp, udp, icmp, or a number
	Interface   string         `json:"interface"`
	Packets     uint64         `json:"packets"`
	Bytes       uint64         `json:"bytes"`
}

// FlowSession is one entry of the session table.
type FlowSession struct {
	ID             uint64   `json:"session-id"`
	PolicyName     string   `json:"policy-name"`
	PolicyIndex    uint32   `json:"policy-index"`
	TimeoutSeconds int64    `json:"timeout-seconds"`
	Valid          bool     `json:"valid"`
	In             FlowWing `json:"in"`
	Out            FlowWing `json:"out"`
}

// FlowSessions is the answer to `show security flow session`.
type FlowSessions struct {
	Sessions []FlowSession `json:"sessions"`
}

// WriteText prints each session with its In and Out lines, a blank line
// between sessions, then the total.
func (v FlowSessions) WriteText(w io.Writer) error {
	ew := errWriter{w: w}
	for i, s := range v.Sessions {
		if i > 0 {
			ew.line("")
		}
		state := "Valid"
		if !s.Valid {
			state = "Invalid"
		}
		ew.printf("Session ID: %d, Policy name: %s/%d, Timeout: %d, Session State: %s\n", s.ID, s.PolicyName, s.PolicyIndex, s.TimeoutSeconds, state)
		ew.printf("  In: %s\n", wing(s.In))
		ew.printf("  Out: %s\n", wing(s.Out))
	}
	ew.printf("Total sessions: %d\n", len(v.Sessions))
	return ew.err
}

// Select returns the sessions f selects: by their In wing, and by either
// wing's interface.
func (v FlowSessions) Select(f SessionFilter) FlowSessions {
	if f == (SessionFilter{}) {
		return v
	}
	out := FlowSessions{Sessions: []FlowSession{}}
	for _, s := range v.Sessions {
		proto, err := ParseProtocol(s.In.Protocol)
		if err == nil && f.Match(s.ID, proto, s.In.Source, s.In.Destination) && f.MatchInterfaces(s.In.Interface, s.Out.Interface) {
			out.Sessions = append(out.Sessions, s)
		}
	}
	return out
}

// selectedSummary is the summary of the sessions a filter selected; the
// table's maximum is the whole table's.
func selectedSummary(v FlowSessions, maximum uint64) FlowSessionSummary {
	s := FlowSessionSummary{Maximum: maximum}
	for _, x := range v.Sessions {
		s.Unicast++
		s.InUse++
		if x.Valid {
			s.Valid++
		} else {
			s.Invalidated++
		}
	}
	return s
}

func wing(f FlowWing) string {
	return fmt.Sprintf("%s/%d --> %s/%d;%s, Conn Tag: 0x0, If: %s, Pkts: %d, Bytes: %d,",
		addrString(f.Source.Addr()), f.Source.Port(), addrString(f.Destination.Addr()), f.Destination.Port(),
		f.Protocol, f.Interface, f.Packets, f.Bytes)
}

// FlowSessionSummary is the answer to `show security flow session summary`.
type FlowSessionSummary struct {
	Unicast     uint64 `json:"unicast-sessions"`
	Multicast   uint64 `json:"multicast-sessions"`
	Failed      uint64 `json:"failed-sessions"`
	InUse       uint64 `json:"sessions-in-use"`
	Valid       uint64 `json:"valid-sessions"`
	Pending     uint64 `json:"pending-sessions"`
	Invalidated uint64 `json:"invalidated-sessions"`
	OtherStates uint64 `json:"sessions-in-other-states"`
	Maximum     uint64 `json:"maximum-sessions"`
}

// WriteText prints the summary counters.
func (s FlowSessionSummary) WriteText(w io.Writer) error {
	ew := errWriter{w: w}
	ew.printf("Unicast-sessions: %d\n", s.Unicast)
	ew.printf("Multicast-sessions: %d\n", s.Multicast)
	ew.line("Services-offload-sessions: 0")
	ew.printf("Failed-sessions: %d\n", s.Failed)
	ew.printf("Sessions-in-use: %d\n", s.InUse)
	ew.printf("  Valid sessions: %d\n", s.Valid)
	ew.printf("  Pending sessions: %d\n", s.Pending)
	ew.printf("  Invalidated sessions: %d\n", s.Invalidated)
	ew.printf("  Sessions in other states: %d\n", s.OtherStates)
	ew.printf("Maximum-sessions: %d\n", s.Maximum)
	return ew.err
}
