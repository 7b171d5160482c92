// Package sessionview turns the data plane's session table (package maps)
// into the flow-session views.
package sessionview

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"net/netip"
	"time"

	"github.com/bpfvpn/bpfvpn/control/ops"
	"github.com/bpfvpn/bpfvpn/maps"
)

// Names resolves the data plane's numbers for display. Nil functions show
// the raw number or "-".
type Names struct {
	// Policy names the global policy index a session was created by, with
	// the policy id shown after the slash.
	Policy func(index uint32) (name string, id uint32)
	// Interfaces names the ingress interface of the first packet (In) and
	// the interface its replies arrive on (Out).
	Interfaces func(s maps.Session) (in, out string)
}

func (n Names) interfaces(s maps.Session) (in, out string) {
	if n.Interfaces == nil {
		return "-", "-"
	}
	return n.Interfaces(s)
}

// ID is a session's number in the views: a hash of its key, stable while
// the session lives.
func ID(k maps.SessKey) uint64 {
	h := fnv.New32a()
	binary.Write(h, binary.LittleEndian, k)
	return uint64(h.Sum32())
}

// Selector is f over the data plane's sessions (with the session IDs and
// the interface names n gives the views), for dataplane.ClearSessions.
func Selector(f ops.SessionFilter, n Names) func(maps.Session) bool {
	return func(s maps.Session) bool {
		if !f.Match(ID(s.Key), s.Proto, netip.AddrPortFrom(s.Src, s.SPort), netip.AddrPortFrom(s.Dst, s.DPort)) {
			return false
		}
		if f.Interface == "" {
			return true
		}
		in, out := n.interfaces(s)
		return f.MatchInterfaces(in, out)
	}
}

// Timeout is the idle timeout the data plane applies to s (config_map's
// to_* fields, by protocol and TCP state).
func Timeout(cfg maps.Config, s maps.Session) time.Duration {
	var sec uint32
	switch s.Proto {
	case 6:
		switch s.TCPState {
		case maps.TCPEstablished:
			sec = cfg.ToTcpEst
		case maps.TCPClosing:
			sec = cfg.ToTcpClose
		default:
			sec = cfg.ToTcpInit
		}
	case 17:
		sec = cfg.ToUdp
	case 1, 58:
		sec = cfg.ToIcmp
	default:
		sec = cfg.ToOther
	}
	return time.Duration(sec) * time.Second
}

// FlowSessions builds `show security flow session`: In is the initiator's
// direction, Out the replies; Timeout is the idle time left; sessions past
// their timeout (not yet swept) show as Invalid.
func FlowSessions(ss []maps.Session, cfg maps.Config, n Names) ops.FlowSessions {
	out := ops.FlowSessions{Sessions: make([]ops.FlowSession, 0, len(ss))}
	for _, s := range ss {
		left := Timeout(cfg, s) - s.Idle
		fs := ops.FlowSession{ID: ID(s.Key), TimeoutSeconds: int64(left / time.Second), Valid: left > 0,
			PolicyName: fmt.Sprint(s.Policy), PolicyIndex: s.Policy}
		if left < 0 {
			fs.TimeoutSeconds = 0
		}
		if n.Policy != nil {
			fs.PolicyName, fs.PolicyIndex = n.Policy(s.Policy)
		}
		in, outIf := n.interfaces(s)
		proto := ops.ProtocolName(s.Proto)
		fs.In = ops.FlowWing{Source: netip.AddrPortFrom(s.Src, s.SPort), Destination: netip.AddrPortFrom(s.Dst, s.DPort),
			Protocol: proto, Interface: in, Packets: s.Packets[0], Bytes: s.Bytes[0]}
		fs.Out = ops.FlowWing{Source: netip.AddrPortFrom(s.Dst, s.DPort), Destination: netip.AddrPortFrom(s.Src, s.SPort),
			Protocol: proto, Interface: outIf, Packets: s.Packets[1], Bytes: s.Bytes[1]}
		out.Sessions = append(out.Sessions, fs)
	}
	return out
}

// Summary builds `show security flow session summary`; maximum is the
// session table's capacity.
func Summary(ss []maps.Session, cfg maps.Config, maximum uint64) ops.FlowSessionSummary {
	sum := ops.FlowSessionSummary{Maximum: maximum}
	for _, s := range ss {
		sum.InUse++
		sum.Unicast++
		switch {
		case Timeout(cfg, s)-s.Idle <= 0:
			sum.Invalidated++
		case s.Proto == 6 && s.TCPState != maps.TCPEstablished && s.TCPState != maps.TCPClosing:
			sum.Pending++
		default:
			sum.Valid++
		}
	}
	return sum
}
