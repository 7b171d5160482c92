package main

import (
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/bpfvpn/bpfvpn/control/dataplane"
	tp "github.com/bpfvpn/bpfvpn/control/dataplane/testpkt"
)

// hitBench measures the session-hit path alone (a small policy table: a
// hit never consults the policies of its own generation), once with the
// trust port plain (XDP_PASS to the stack) and once redirect-capable
// (XDP_REDIRECT after the route lookup), each against the same-run trivial
// XDP_PASS program, measured in alternation rounds times.
func hitBench(repeat uint32, rounds int) error {
	s, err := newProgSetup()
	if err != nil {
		return err
	}
	defer s.Close()
	b, objs, m, pass := s.b, s.objs, s.m, s.pass
	in := b.idx["trust0"]
	ack := packetFor(b, tcpPkt("10.1.0.2", "10.2.0.2", 40000, 80, tp.ACK), "trust0")
	p255 := tcpPkt("10.1.0.2", "10.2.0.2", 40000, 80, tp.ACK)
	p255.TTL = 255
	ack255 := packetFor(b, p255, "trust0")
	syn := packetFor(b, tcpPkt("10.1.0.2", "10.2.0.2", 40000, 80, tp.SYN), "trust0")
	synack := packetFor(b, tcpPkt("10.2.0.2", "10.1.0.2", 80, 40000, tp.SYN|tp.ACK), "untr0")
	fmt.Printf("\n| measurement (session hit, %d × %d runs) | ns/packet | minus XDP_PASS | ratio to XDP_PASS | verdict |\n|---|---:|---:|---:|---|\n", rounds, repeat)
	for _, redirect := range []bool{false, true} {
		spec := bigSpec(10, 1)
		for i := range spec.Interfaces {
			spec.Interfaces[i].Redirect = redirect && !spec.Interfaces[i].Tunnel
		}
		if err := b.in(func() error { _, err := dataplane.Apply(m, spec, nil); return err }); err != nil {
			return err
		}
		if err := clearSessions(m); err != nil {
			return err
		}
		if err := s.establish(syn, synack, ack); err != nil {
			return err
		}
		// A redirect decrements the TTL of the buffer the runs of one
		// call share: redirect rows run calls of 200 runs of a TTL 255
		// packet (and their baseline the same way).
		run := func(p *ebpf.Program, pkt []byte) (float64, uint32, error) {
			if redirect {
				// each call costs milliseconds outside the measured runs
				return benchChunked(b, p, in, pkt, min(repeat, 40000), 200)
			}
			return bench(b, p, in, pkt, repeat)
		}
		pkt := ack
		if redirect {
			pkt = ack255
		}
		var sumBase, sumHit float64
		var ret uint32
		for r := 0; r < rounds; r++ {
			base, _, err := run(pass, pkt)
			if err != nil {
				return err
			}
			hit, rt, err := run(objs.XdpZone, pkt)
			if err != nil {
				return err
			}
			sumBase += base
			sumHit += hit
			ret = rt
		}
		base, hit := sumBase/float64(rounds), sumHit/float64(rounds)
		name := "trivial XDP_PASS / session hit, TCP ACK, plain port (XDP_PASS)"
		if redirect {
			name = "trivial XDP_PASS / session hit, TCP ACK, redirect-capable ports (XDP_REDIRECT with the cached route; calls of 200 runs of a TTL 255 packet, 40,000 runs per round)"
		}
		fmt.Printf("| %s | %.1f / %.1f | %.1f | %.2f | %s |\n", name, base, hit, hit-base, hit/base, verdict(ret))
	}
	return nil
}
