package interop

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	"github.com/bpfvpn/bpfvpn/ike"
	"github.com/bpfvpn/bpfvpn/ike/ikev2"
	"github.com/bpfvpn/bpfvpn/ike/udp"
)

// Peer is a bpfvpn IKEv2 engine running over UDP inside a namespace.
type Peer struct {
	Engine *ikev2.Engine
	Runner *udp.Runner
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// StartPeer listens on addr (IKE) and natAddr (NAT-T, with the non-ESP
// marker) inside ns and runs an engine configured by cfg (its Sender is set
// here).
func StartPeer(ns *Netns, addr, natAddr netip.AddrPort, cfg ikev2.Config, log *slog.Logger) (*Peer, error) {
	var r *udp.Runner
	err := ns.Do(func() error {
		var err error
		ls := []udp.Listener{{Addr: addr}}
		if natAddr.IsValid() {
			ls = append(ls, udp.Listener{Addr: natAddr, NATT: true})
		}
		r, err = udp.Listen(log, ls)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen in %s: %w", ns.Name, err)
	}
	cfg.Sender = r
	if cfg.Log == nil {
		cfg.Log = log
	}
	eng, err := ikev2.New(cfg)
	if err != nil {
		r.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Peer{Engine: eng, Runner: r, cancel: cancel}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		r.Run(ctx, eng)
	}()
	return p, nil
}

// Stop ends the runner and closes its sockets.
func (p *Peer) Stop() {
	p.cancel()
	p.wg.Wait()
	p.Runner.Close()
}

var _ ike.Engine = (*ikev2.Engine)(nil)
