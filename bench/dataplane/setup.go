package main

import (
	"github.com/cilium/ebpf"

	"github.com/bpfvpn/bpfvpn/loader"
	"github.com/bpfvpn/bpfvpn/maps"
)

// progSetup is what the per-packet measurements run against: the bench
// namespace, the data plane loaded with default sizes, its maps and the
// trivial XDP_PASS baseline program.
type progSetup struct {
	b    *benchNS
	objs *loader.Objects
	m    *maps.Set
	pass *ebpf.Program
}

func newProgSetup() (*progSetup, error) {
	b, err := newBenchNS()
	if err != nil {
		return nil, err
	}
	objs, err := loader.Load(loader.Options{})
	if err != nil {
		b.ns.Close()
		return nil, err
	}
	pass, err := trivialPass()
	if err != nil {
		objs.Close()
		b.ns.Close()
		return nil, err
	}
	return &progSetup{b: b, objs: objs, m: maps.FromObjects(objs), pass: pass}, nil
}

func (s *progSetup) Close() {
	s.pass.Close()
	s.objs.Close()
	s.b.ns.Close()
}

// establish passes a TCP handshake through the zone program (SYN and ACK
// in on trust0, SYN-ACK in on untr0): only an established TCP session is
// cached, so the measured ACKs that follow hit it.
func (s *progSetup) establish(syn, synack, ack []byte) error {
	for _, h := range []struct {
		pkt []byte
		ifc uint32
	}{{syn, s.b.idx["trust0"]}, {synack, s.b.idx["untr0"]}, {ack, s.b.idx["trust0"]}} {
		if _, _, err := bench(s.b, s.objs.XdpZone, h.ifc, h.pkt, 1); err != nil {
			return err
		}
	}
	return nil
}
