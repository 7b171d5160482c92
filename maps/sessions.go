package maps

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/bpfvpn/bpfvpn/loader"
)

// Session is a decoded session entry, oriented initiator → responder.
type Session struct {
	Proto          uint8
	Src, Dst       netip.Addr
	SPort, DPort   uint16
	FromZone       uint16
	ToZone         uint16
	TCPState       uint8
	Policy         uint32
	Generation     uint32
	Packets, Bytes [2]uint64
	Idle           time.Duration
	Key            SessKey
}

// TCP states (enum tcp_state).
const (
	TCPSynSent     = uint8(loader.BpfvpnTcpStateTS_SYN_SENT)
	TCPSynRecv     = uint8(loader.BpfvpnTcpStateTS_SYN_RECV)
	TCPEstablished = uint8(loader.BpfvpnTcpStateTS_ESTABLISHED)
	TCPClosing     = uint8(loader.BpfvpnTcpStateTS_CLOSING)
)

// DecodeSession orients an entry; now is CLOCK_MONOTONIC in ns.
func DecodeSession(k SessKey, v SessVal, now uint64) Session {
	a, b := WordsAddr(k.Family, k.A), WordsAddr(k.Family, k.B)
	s := Session{Proto: k.Proto, FromZone: v.FromZone, ToZone: v.ToZone, TCPState: v.TcpState,
		Policy: v.Policy, Generation: v.Gen, Packets: v.Pkts, Bytes: v.Bytes, Key: k}
	if v.Flags&uint8(loader.BpfvpnSessFlagsSF_INIT_IS_A) != 0 {
		s.Src, s.SPort, s.Dst, s.DPort = a, k.Pa, b, k.Pb
	} else {
		s.Src, s.SPort, s.Dst, s.DPort = b, k.Pb, a, k.Pa
	}
	if now > v.LastNs {
		s.Idle = time.Duration(now - v.LastNs)
	}
	return s
}

// ListSessions decodes every session entry, with the hits the flow cache
// still holds for it added.
func (s *Set) ListSessions(now uint64) ([]Session, error) {
	pending, err := s.PendingFlowCounts()
	if err != nil {
		return nil, err
	}
	var out []Session
	var k SessKey
	var v SessVal
	it := s.Sessions.Iterate()
	for it.Next(&k, &v) {
		if p, ok := pending[k]; ok {
			for d := range 2 {
				v.Pkts[d] += p.Packets[d]
				v.Bytes[d] += p.Bytes[d]
			}
			v.LastNs = max(v.LastNs, p.LastNs)
		}
		out = append(out, DecodeSession(k, v, now))
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("iterate sessions: %w", err)
	}
	return out, nil
}

// CountEntries counts the entries of a hash-like map by iterating it.
func CountEntries(s *Set, name string) (int, error) {
	m := s.Named()[name]
	if m == nil {
		return 0, fmt.Errorf("no map %q", name)
	}
	n := 0
	var k, v []byte
	it := m.Iterate()
	for it.Next(&k, &v) {
		n++
	}
	if err := it.Err(); err != nil {
		return n, fmt.Errorf("iterate %s: %w", name, err)
	}
	return n, nil
}
