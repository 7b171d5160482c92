package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strconv"
)

// View is the answer to a command: it renders as the device text layout and
// marshals as JSON.
type View interface {
	WriteText(w io.Writer) error
}

type runFunc func(ctx context.Context, p Provider, inv Invocation) (View, error)

var (
	indexOpt = option{word: "index", help: "Index number of security association", value: "number",
		valid: func(w string) error {
			if n, err := strconv.ParseUint(w, 10, 32); err != nil || n == 0 {
				return fmt.Errorf("'%s' is not a number from 1 to 4294967295", w)
			}
			return nil
		}}
	detailOpt = option{word: "detail", help: "Display detailed output"}
	peerOpt   = option{word: "peer-address", help: "IP address of remote peer", positional: true,
		valid: func(w string) error { _, err := netip.ParseAddr(w); return err }}
)

var root = &node{children: []*node{
	{word: "show", help: "Show system information", children: []*node{
		{word: "interfaces", help: "Show interface information", options: []option{
			{word: "interface-name", help: "Name of interface (st0, st0.N)", positional: true},
			{word: "terse", help: "Display terse output"},
		}, run: runInterfaces},
		{word: "route", help: "Show routing table information", run: runRoutes},
		{word: "security", help: "Show security information", children: []*node{
			{word: "flow", help: "Show flow information", children: []*node{
				{word: "session", help: "Show session information", options: append([]option{
					{word: "summary", help: "Display summary output"},
				}, sessionSelectOpts...), run: runFlowSession},
			}},
			{word: "ike", help: "Show Internet Key Exchange information", children: []*node{
				{word: "security-associations", aliases: []string{"sa"}, help: "Show Internet Key Exchange security associations",
					options: []option{peerOpt, indexOpt, detailOpt}, run: runIKESA},
			}},
			{word: "ipsec", help: "Show IP Security information", children: []*node{
				{word: "security-associations", aliases: []string{"sa"}, help: "Show IPSec security associations",
					options: []option{indexOpt, detailOpt}, run: runIPsecSA},
				{word: "statistics", help: "Show IPSec statistics",
					options: []option{indexOpt}, run: runIPsecStatistics},
				{word: "inactive-tunnels", help: "Show inactive IPSec tunnels",
					options: []option{indexOpt}, run: runInactiveTunnels},
			}},
			{word: "policies", help: "Show security policies", options: []option{
				{word: "hit-count", help: "Show policies hit count"},
			}, run: runPolicies},
			{word: "zones", help: "Show security zone information", run: runZones},
		}},
	}},
	{word: "clear", help: "Clear information in the system", children: []*node{
		{word: "security", help: "Clear security information", children: []*node{
			{word: "flow", help: "Clear flow information", children: []*node{
				{word: "session", help: "Clear session information", options: sessionFilterOpts, needsOption: true,
					run: runClearFlowSession},
			}},
			{word: "ike", help: "Clear Internet Key Exchange information", children: []*node{
				{word: "security-associations", aliases: []string{"sa"}, help: "Clear Internet Key Exchange security associations",
					options: []option{peerOpt, indexOpt}, run: runClearIKESA},
			}},
			{word: "ipsec", help: "Clear IP Security information", children: []*node{
				{word: "statistics", help: "Clear IPSec statistics",
					options: []option{indexOpt}, run: runClearIPsecStatistics},
			}},
		}},
	}},
}}

// Run parses words, asks p for the view and renders it: as the device text
// layout, or as indented JSON when asJSON is set or the words end in
// `| display json`. A *SyntaxError is returned for words the grammar
// rejects.
func Run(ctx context.Context, p Provider, words []string, asJSON bool) (string, error) {
	inv, err := Parse(words)
	if err != nil {
		return "", err
	}
	return Execute(ctx, p, inv, asJSON)
}

// Execute runs a parsed invocation against p and renders the result.
func Execute(ctx context.Context, p Provider, inv Invocation, asJSON bool) (string, error) {
	if inv.cmd == nil || inv.cmd.run == nil {
		return "", fmt.Errorf("execute: invocation was not produced by Parse")
	}
	v, err := inv.cmd.run(ctx, p, inv)
	if err != nil {
		return "", err
	}
	out, err := Render(v, asJSON || inv.JSON)
	if err != nil {
		return "", err
	}
	for _, pipe := range inv.Pipes {
		out = pipe.apply(out)
	}
	return out, nil
}

// Render returns v as text, or as indented JSON.
func Render(v View, asJSON bool) (string, error) {
	var buf bytes.Buffer
	if asJSON {
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			return "", fmt.Errorf("render json: %w", err)
		}
		return buf.String(), nil
	}
	if err := v.WriteText(&buf); err != nil {
		return "", fmt.Errorf("render text: %w", err)
	}
	return buf.String(), nil
}

func runIKESA(ctx context.Context, p Provider, inv Invocation) (View, error) {
	sas, err := p.IKESecurityAssociations(ctx, inv.Index())
	if err != nil {
		return nil, fmt.Errorf("ike security-associations: %w", err)
	}
	sas.SAs = filter(sas.SAs, ikeSelector(inv))
	if inv.Has("detail") {
		return IKESADetails(sas), nil
	}
	return sas, nil
}

// ikeSelector keeps the IKE SAs an invocation names by index and peer.
func ikeSelector(inv Invocation) func(IKESA) bool {
	idx := inv.Index()
	peer, hasPeer := inv.Options["peer-address"]
	var addr netip.Addr
	if hasPeer {
		addr, _ = netip.ParseAddr(peer)
		addr = addr.Unmap()
	}
	return func(sa IKESA) bool {
		if idx != AllIndexes && sa.Index != idx {
			return false
		}
		return !hasPeer || sa.RemoteAddress.Addr().Unmap() == addr
	}
}

func runIPsecSA(ctx context.Context, p Provider, inv Invocation) (View, error) {
	sas, err := p.IPsecSecurityAssociations(ctx, inv.Index())
	if err != nil {
		return nil, fmt.Errorf("ipsec security-associations: %w", err)
	}
	idx := inv.Index()
	if idx != AllIndexes {
		sas.SAs = filter(sas.SAs, func(sa IPsecSA) bool { return sa.ID == idx })
	}
	// As on the device, `index N` shows the detail of that SA.
	if inv.Has("detail") || idx != AllIndexes {
		return IPsecSADetails(sas), nil
	}
	return sas, nil
}

func runIPsecStatistics(ctx context.Context, p Provider, inv Invocation) (View, error) {
	st, err := p.IPsecStatistics(ctx, inv.Index())
	if err != nil {
		return nil, fmt.Errorf("ipsec statistics: %w", err)
	}
	return st, nil
}

func runPolicies(ctx context.Context, p Provider, inv Invocation) (View, error) {
	pol, err := p.Policies(ctx)
	if err != nil {
		return nil, fmt.Errorf("security policies: %w", err)
	}
	if inv.Has("hit-count") {
		return PolicyHitCounts(pol), nil
	}
	return pol, nil
}

func runFlowSession(ctx context.Context, p Provider, inv Invocation) (View, error) {
	f, err := sessionFilterOf(inv)
	if err != nil {
		return nil, fmt.Errorf("flow session: %w", err)
	}
	if inv.Has("summary") {
		s, err := p.FlowSessionSummary(ctx)
		if err != nil {
			return nil, fmt.Errorf("flow session summary: %w", err)
		}
		if f == (SessionFilter{}) {
			return s, nil
		}
		all, err := p.FlowSessions(ctx)
		if err != nil {
			return nil, fmt.Errorf("flow session summary: %w", err)
		}
		return selectedSummary(all.Select(f), s.Maximum), nil
	}
	s, err := p.FlowSessions(ctx)
	if err != nil {
		return nil, fmt.Errorf("flow session: %w", err)
	}
	return s.Select(f), nil
}

func runZones(ctx context.Context, p Provider, _ Invocation) (View, error) {
	z, err := p.Zones(ctx)
	if err != nil {
		return nil, fmt.Errorf("security zones: %w", err)
	}
	return z, nil
}

func runInterfaces(ctx context.Context, p Provider, inv Invocation) (View, error) {
	ifs, err := p.Interfaces(ctx, inv.Options["interface-name"])
	if err != nil {
		return nil, fmt.Errorf("interfaces: %w", err)
	}
	if inv.Has("terse") {
		return InterfacesTerse(ifs), nil
	}
	return ifs, nil
}

func runRoutes(ctx context.Context, p Provider, _ Invocation) (View, error) {
	r, err := p.Routes(ctx)
	if err != nil {
		return nil, fmt.Errorf("route: %w", err)
	}
	return r, nil
}

// Cleared is the answer to a clear command: no text (as on the device), and
// a JSON object saying what was cleared.
type Cleared struct {
	Cleared string `json:"cleared"`
	Index   uint32 `json:"index,omitempty"`
	Peer    string `json:"peer-address,omitempty"`
}

// WriteText prints nothing.
func (Cleared) WriteText(io.Writer) error { return nil }

func runClearIKESA(ctx context.Context, p Provider, inv Invocation) (View, error) {
	peer, hasPeer := inv.Options["peer-address"]
	if !hasPeer {
		if err := p.ClearIKESecurityAssociations(ctx, inv.Index()); err != nil {
			return nil, fmt.Errorf("clear ike security-associations: %w", err)
		}
		return Cleared{Cleared: "ike-security-associations", Index: inv.Index()}, nil
	}
	// By peer: clear each SA to that peer by its index.
	sas, err := p.IKESecurityAssociations(ctx, inv.Index())
	if err != nil {
		return nil, fmt.Errorf("clear ike security-associations %s: %w", peer, err)
	}
	for _, sa := range filter(sas.SAs, ikeSelector(inv)) {
		if err := p.ClearIKESecurityAssociations(ctx, sa.Index); err != nil {
			return nil, fmt.Errorf("clear ike security-associations %s index %d: %w", peer, sa.Index, err)
		}
	}
	return Cleared{Cleared: "ike-security-associations", Index: inv.Index(), Peer: peer}, nil
}

func runClearIPsecStatistics(ctx context.Context, p Provider, inv Invocation) (View, error) {
	if err := p.ClearIPsecStatistics(ctx, inv.Index()); err != nil {
		return nil, fmt.Errorf("clear ipsec statistics: %w", err)
	}
	return Cleared{Cleared: "ipsec-statistics", Index: inv.Index()}, nil
}

func filter[T any](in []T, keep func(T) bool) []T {
	var out []T
	for _, v := range in {
		if keep(v) {
			out = append(out, v)
		}
	}
	return out
}
