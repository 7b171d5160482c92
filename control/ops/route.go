package ops

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"
)

// NextHop is one next hop of a route.
type NextHop struct {
	Gateway   netip.Addr `json:"gateway,omitzero"` // zero for interface routes
	Interface string     `json:"interface"`
	Selected  bool       `json:"selected"` // the ">" next hop used for forwarding
}

// Route is one route of a table.
type Route struct {
	Destination netip.Prefix `json:"destination"`
	Protocol    string       `json:"protocol"` // Static, Direct, Local, …
	Preference  uint32       `json:"preference"`
	Active      bool         `json:"active"`
	AgeSeconds  int64        `json:"age-seconds"`
	Metric      *uint32      `json:"metric,omitempty"`
	NextHops    []NextHop    `json:"next-hops"`
}

// RouteTable is one routing table (inet.0, inet6.0).
type RouteTable struct {
	Name     string  `json:"name"`
	Routes   []Route `json:"routes"`
	Hidden   int     `json:"hidden"`
	Holddown int     `json:"holddown"`
}

// Routes is the answer to `show route`.
type Routes struct {
	Tables []RouteTable `json:"tables"`
}

// WriteText prints each table with its header line and legend, then the
// routes grouped by destination.
func (v Routes) WriteText(w io.Writer) error {
	ew := errWriter{w: w}
	for i, t := range v.Tables {
		if i > 0 {
			ew.line("")
		}
		dests := map[netip.Prefix]bool{}
		active := 0
		for _, r := range t.Routes {
			dests[r.Destination] = true
			if r.Active {
				active++
			}
		}
		ew.printf("%s: %d destinations, %d routes (%d active, %d holddown, %d hidden)\n",
			t.Name, len(dests), len(t.Routes), active, t.Holddown, t.Hidden)
		ew.line("+ = Active Route, - = Last Active, * = Both")
		ew.line("")
		var prev netip.Prefix
		for j, r := range t.Routes {
			dest := ""
			if j == 0 || r.Destination != prev {
				dest = r.Destination.String()
			}
			prev = r.Destination
			mark := " "
			if r.Active {
				mark = "*"
			}
			head := fmt.Sprintf("%-18s %s[%s/%d] %s", dest, mark, r.Protocol, r.Preference, age(r.AgeSeconds))
			if r.Metric != nil {
				head += fmt.Sprintf(", metric %d", *r.Metric)
			}
			ew.line(head)
			for _, nh := range r.NextHops {
				ew.line(nextHopLine(r, nh))
			}
		}
	}
	return ew.err
}

func nextHopLine(r Route, nh NextHop) string {
	sel := " "
	if nh.Selected {
		sel = ">"
	}
	indent := strings.Repeat(" ", 20)
	switch {
	case r.Protocol == "Local":
		return indent + "   Local via " + nh.Interface
	case nh.Gateway.IsValid():
		return indent + sel + "  to " + nh.Gateway.String() + " via " + nh.Interface
	default:
		return indent + sel + "  via " + nh.Interface
	}
}

// age prints a route age the way devices do: 00:12:34, 1d 02:03:04,
// 2w3d 04:05:06.
func age(seconds int64) string {
	if seconds < 0 {
		seconds = 0
	}
	d := time.Duration(seconds) * time.Second
	weeks := int64(d / (7 * 24 * time.Hour))
	d -= time.Duration(weeks) * 7 * 24 * time.Hour
	days := int64(d / (24 * time.Hour))
	d -= time.Duration(days) * 24 * time.Hour
	hms := fmt.Sprintf("%02d:%02d:%02d", int64(d/time.Hour), int64(d/time.Minute)%60, int64(d/time.Second)%60)
	switch {
	case weeks > 0:
		return fmt.Sprintf("%dw%dd %s", weeks, days, hms)
	case days > 0:
		return fmt.Sprintf("%dd %s", days, hms)
	}
	return hms
}
