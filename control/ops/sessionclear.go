package ops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// SessionFilter selects the sessions `clear security flow session` clears
// and `show security flow session` lists.
// The zero value selects every session (`all`); each set field narrows the
// selection, and the fields combine with AND. Addresses, ports and the
// protocol are those of the session's initiating direction (the In line of
// `show security flow session`); SessionID is the Session ID shown there.
type SessionFilter struct {
	SourcePrefix      netip.Prefix // the zero Prefix matches any source
	DestinationPrefix netip.Prefix // the zero Prefix matches any destination
	Protocol          *uint8
	SourcePort        *uint16
	DestinationPort   *uint16
	SessionID         *uint64
	// Interface is a logical interface (st0.0, ge-0/0/0.0) either
	// direction of the session uses; a name without a unit (st0) stands
	// for all its units. "" matches any.
	Interface string
}

// Match reports whether f selects the session with view ID id, IP protocol
// proto and initiating direction src → dst.
func (f SessionFilter) Match(id uint64, proto uint8, src, dst netip.AddrPort) bool {
	return prefixHas(f.SourcePrefix, src.Addr()) && prefixHas(f.DestinationPrefix, dst.Addr()) &&
		is(f.Protocol, proto) && is(f.SourcePort, src.Port()) && is(f.DestinationPort, dst.Port()) && is(f.SessionID, id)
}

// String is f as the words of the command ("all" for the zero value).
func (f SessionFilter) String() string {
	var w []string
	if f.SourcePrefix.IsValid() {
		w = append(w, "source-prefix", f.SourcePrefix.String())
	}
	if f.DestinationPrefix.IsValid() {
		w = append(w, "destination-prefix", f.DestinationPrefix.String())
	}
	if f.Protocol != nil {
		w = append(w, "protocol", ProtocolName(*f.Protocol))
	}
	if f.SourcePort != nil {
		w = append(w, "source-port", strconv.Itoa(int(*f.SourcePort)))
	}
	if f.DestinationPort != nil {
		w = append(w, "destination-port", strconv.Itoa(int(*f.DestinationPort)))
	}
	if f.SessionID != nil {
		w = append(w, "session-identifier", strconv.FormatUint(*f.SessionID, 10))
	}
	if f.Interface != "" {
		w = append(w, "interface", f.Interface)
	}
	if len(w) == 0 {
		return "all"
	}
	return strings.Join(w, " ")
}

// MatchInterfaces reports whether f's interface is in or out, the
// interfaces of the session's two directions (the If: of its In and Out
// lines).
func (f SessionFilter) MatchInterfaces(in, out string) bool {
	return f.Interface == "" || isUnitOf(in, f.Interface) || isUnitOf(out, f.Interface)
}

func isUnitOf(name, want string) bool {
	return name == want || strings.HasPrefix(name, want+".") && !strings.Contains(want, ".")
}

func prefixHas(p netip.Prefix, a netip.Addr) bool { return !p.IsValid() || p.Contains(a.Unmap()) }

func is[T comparable](want *T, v T) bool { return want == nil || *want == v }

// FlowSessionsCleared is the answer to `clear security flow session`: how
// many sessions were deleted.
type FlowSessionsCleared struct {
	Cleared int `json:"sessions-cleared"`
}

// WriteText prints the vendor's confirmation (the count only; the vendor
// does not make "sessions" singular either).
func (v FlowSessionsCleared) WriteText(w io.Writer) error {
	_, err := fmt.Fprintf(w, "%d active sessions cleared\n", v.Cleared)
	return err
}

// Options of `clear security flow session`: all, or at least one filter.
var sessionFilterOpts = append([]option{
	{word: "all", help: "Clear all sessions", alone: true},
}, sessionSelectOpts...)

// sessionSelectOpts are the filters of `show|clear security flow session`.
var sessionSelectOpts = []option{
	{word: "source-prefix", help: "Source IP prefix or address", value: "prefix", valid: validWith(parseFlowPrefix)},
	{word: "destination-prefix", help: "Destination IP prefix or address", value: "prefix", valid: validWith(parseFlowPrefix)},
	{word: "protocol", help: "IP protocol name or number", value: "protocol", valid: validWith(ParseProtocol)},
	{word: "source-port", help: "Source port", value: "port", valid: validWith(parsePort)},
	{word: "destination-port", help: "Destination port", value: "port", valid: validWith(parsePort)},
	{word: "session-identifier", help: "Session ID", value: "number", valid: validWith(parseSessionID)},
	{word: "interface", help: "Name of logical interface (either direction)", value: "interface-name"},
}

func validWith[T any](parse func(string) (T, error)) func(string) error {
	return func(w string) error { _, err := parse(w); return err }
}

// parseFlowPrefix reads an address (a host prefix) or a prefix; as on the
// vendor's CLI an IPv4 prefix may leave out trailing zero octets (10.100/16).
// Host bits are cleared.
func parseFlowPrefix(w string) (netip.Prefix, error) {
	bad := fmt.Errorf("'%s' is not an IP address or prefix", w)
	if a, err := netip.ParseAddr(w); err == nil {
		if a.Zone() != "" {
			return netip.Prefix{}, bad
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	addr, bits, ok := strings.Cut(w, "/")
	if !ok {
		return netip.Prefix{}, bad
	}
	if octets := strings.Count(addr, ".") + 1; !strings.Contains(addr, ":") && octets < 4 {
		addr += strings.Repeat(".0", 4-octets)
	}
	p, err := netip.ParsePrefix(addr + "/" + bits)
	if err != nil {
		return netip.Prefix{}, bad
	}
	return p.Masked(), nil
}

func parsePort(w string) (uint16, error) {
	n, err := strconv.ParseUint(w, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("'%s' is not a port (0-65535)", w)
	}
	return uint16(n), nil
}

func parseSessionID(w string) (uint64, error) {
	n, err := strconv.ParseUint(w, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("'%s' is not a session identifier", w)
	}
	return n, nil
}

// sessionFilterOf builds the filter of a parsed invocation. The grammar
// has checked the values; an error here would widen the filter, so it is
// returned rather than ignored.
func sessionFilterOf(inv Invocation) (SessionFilter, error) {
	var errs []error
	f := SessionFilter{
		Protocol:        optionValue(inv, "protocol", ParseProtocol, &errs),
		SourcePort:      optionValue(inv, "source-port", parsePort, &errs),
		DestinationPort: optionValue(inv, "destination-port", parsePort, &errs),
		SessionID:       optionValue(inv, "session-identifier", parseSessionID, &errs),
	}
	if p := optionValue(inv, "source-prefix", parseFlowPrefix, &errs); p != nil {
		f.SourcePrefix = *p
	}
	if p := optionValue(inv, "destination-prefix", parseFlowPrefix, &errs); p != nil {
		f.DestinationPrefix = *p
	}
	f.Interface = inv.Options["interface"]
	return f, errors.Join(errs...)
}

// optionValue is the parsed value of option word, nil when it was not
// given; a parse error is appended to errs.
func optionValue[T any](inv Invocation, word string, parse func(string) (T, error), errs *[]error) *T {
	w, ok := inv.Options[word]
	if !ok {
		return nil
	}
	v, err := parse(w)
	if err != nil {
		*errs = append(*errs, fmt.Errorf("%s: %w", word, err))
		return nil
	}
	return &v
}

func runClearFlowSession(ctx context.Context, p Provider, inv Invocation) (View, error) {
	f, err := sessionFilterOf(inv)
	if err != nil {
		return nil, fmt.Errorf("clear flow session: %w", err)
	}
	v, err := p.ClearFlowSessions(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("clear flow session: %w", err)
	}
	return v, nil
}
