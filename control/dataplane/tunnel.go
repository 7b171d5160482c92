package dataplane

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/bpfvpn/bpfvpn/maps"
)

// TunnelDemand is an on-traffic event: a packet was sent into the st0
// interface Ifindex (unit Unit) while its tunnel was down. The data plane
// raises at most one per tunnel per interval (SetTunnelState). Src, Dst,
// ports and Proto describe the packet; the addresses are invalid when it
// was not IP.
type TunnelDemand struct {
	Ifindex      uint32
	Unit         uint32
	Proto        uint8
	Src, Dst     netip.Addr
	SPort, DPort uint16
}

// SetTunnelState marks the st0 interface ifindex (unit number unit) as a
// tunnel established on traffic: while up is false, traffic sent into it
// raises TunnelDemand events, at most one per interval (0 = 1 s). Call it
// with up = true once an SA pair is installed, false when it is removed.
// Interfaces never set raise no events.
func SetTunnelState(m *maps.Set, ifindex, unit uint32, up bool, interval time.Duration) error {
	st := maps.TunnelState{Unit: unit, IntervalMs: uint32(interval / time.Millisecond)}
	if up {
		st.Up = 1
	}
	var old maps.TunnelState
	if err := m.Tunnels.Lookup(ifindex, &old); err == nil {
		st.LastEventNs = old.LastEventNs // the rate limit survives a state change
	}
	if err := m.Tunnels.Put(ifindex, st); err != nil {
		return fmt.Errorf("set tunnel state of st0.%d (ifindex %d): %w", unit, ifindex, err)
	}
	return nil
}

// RemoveTunnelState forgets the on-traffic state of ifindex.
func RemoveTunnelState(m *maps.Set, ifindex uint32) error {
	if err := m.Tunnels.Delete(ifindex); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("remove tunnel state of ifindex %d: %w", ifindex, err)
	}
	return nil
}

// TunnelDemands reads the data plane's on-traffic events until ctx ends;
// the channel is closed then (or when the ring buffer fails). Events that
// the reader does not take in time stay in the ring buffer (64 KiB); events
// raised while it is full are counted as tunnel-demand-lost. One reader per
// map set.
func TunnelDemands(ctx context.Context, m *maps.Set) (<-chan TunnelDemand, error) {
	rd, err := ringbuf.NewReader(m.TunnelEvents)
	if err != nil {
		return nil, fmt.Errorf("open tunnel event ring buffer: %w", err)
	}
	ch := make(chan TunnelDemand)
	go func() {
		<-ctx.Done()
		rd.Close() // unblocks Read
	}()
	go func() {
		defer close(ch)
		for {
			rec, err := rd.Read()
			if err != nil {
				return // closed, or the ring buffer failed
			}
			d, ok := decodeTunnelEvent(rec.RawSample)
			if !ok {
				continue
			}
			select {
			case ch <- d:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}

// decodeTunnelEvent decodes one ring-buffer record (struct tunnel_event).
func decodeTunnelEvent(b []byte) (TunnelDemand, bool) {
	var e maps.TunnelEvent
	if _, err := binary.Decode(b, binary.NativeEndian, &e); err != nil {
		return TunnelDemand{}, false
	}
	d := TunnelDemand{Ifindex: e.Ifindex, Unit: e.Unit, Proto: e.Proto, SPort: e.Sport, DPort: e.Dport}
	if e.Family != 0 {
		d.Src, d.Dst = maps.WordsAddr(e.Family, e.Saddr), maps.WordsAddr(e.Family, e.Daddr)
	}
	return d, true
}
