package main

import (
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/bpfvpn/bpfvpn/control/dataplane"
	tp "github.com/bpfvpn/bpfvpn/control/dataplane/testpkt"
	"github.com/bpfvpn/bpfvpn/maps"
)

type xdpMD struct {
	Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
}

type row struct {
	name  string
	ns    float64
	ratio float64
	note  string
}

// bench runs prog on pkt (received on ifindex) repeat times and returns
// the kernel's mean time per run.
func bench(b *benchNS, prog *ebpf.Program, ifindex uint32, pkt []byte, repeat uint32) (float64, uint32, error) {
	var ret, ns uint32
	err := b.in(func() error {
		var err error
		ret, ns, err = testRun(prog.FD(), pkt, &xdpMD{DataEnd: uint32(len(pkt)), IngressIfindex: ifindex}, repeat)
		return err
	})
	return float64(ns), ret, err
}

// benchChunked is bench in calls of chunk runs each: every call starts
// from a fresh copy of pkt, so a program that rewrites the packet (TTL of a
// redirect) sees the original again after chunk runs.
func benchChunked(b *benchNS, prog *ebpf.Program, ifindex uint32, pkt []byte, repeat, chunk uint32) (float64, uint32, error) {
	var sum float64
	var ret uint32
	n := uint32(0)
	err := b.in(func() error {
		for n < repeat {
			r, ns, err := testRun(prog.FD(), pkt, &xdpMD{DataEnd: uint32(len(pkt)), IngressIfindex: ifindex}, chunk)
			if err != nil {
				return err
			}
			sum += float64(ns) * float64(chunk)
			n += chunk
			ret = r
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return sum / float64(n), ret, nil
}

func packetFor(b *benchNS, p tp.Packet, in string) []byte {
	copy(p.SrcMAC[:], []byte{2, 0, 0, 0, 0, 1})
	copy(p.DstMAC[:], b.mac[in])
	return p.Bytes()
}

func trivialPass() (*ebpf.Program, error) {
	return ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2), asm.Return()}})
}

// bigSpec: trust→untrust with nPol policies, each naming perPol source and
// perPol destination /32…/24 prefixes (nPol*perPol*2 address-book prefixes
// in all); policy i's prefixes are 10.(i)… in distinct /16s.
func bigSpec(nPol, perPol int) *dataplane.Spec {
	s := &dataplane.Spec{
		Zones:      []dataplane.Zone{{Name: "trust"}, {Name: "untrust"}, {Name: "vpn"}},
		Interfaces: []dataplane.Interface{{Name: "trust0", Zone: "trust"}, {Name: "untr0", Zone: "untrust"}, {Name: "st0x", Zone: "vpn", Tunnel: true}},
		TCPMSS:     dataplane.TCPMSS{IPsecVPN: 1350},
	}
	for i := 0; i < nPol; i++ {
		p := dataplane.Policy{Name: fmt.Sprintf("p%d", i), FromZone: "trust", ToZone: "untrust", Action: dataplane.Permit,
			Apps: []dataplane.AppTerm{{Proto: tp.TCP, PortLow: uint16(1000 + i%5000)}, {Proto: tp.TCP, PortLow: 80}}}
		for j := 0; j < perPol; j++ {
			k := i*perPol + j
			p.Source = append(p.Source, netip.PrefixFrom(netip.AddrFrom4([4]byte{11, byte(k >> 16), byte(k >> 8), byte(k)}), 32))
			p.Destination = append(p.Destination, netip.PrefixFrom(netip.AddrFrom4([4]byte{12, byte(k >> 16), byte(k >> 8), 0}), 24))
		}
		s.Policies = append(s.Policies, p)
	}
	s.Policies = append(s.Policies,
		dataplane.Policy{Name: "any", FromZone: "trust", ToZone: "untrust", Action: dataplane.Permit},
		dataplane.Policy{Name: "vpn", FromZone: "trust", ToZone: "vpn", Action: dataplane.Permit})
	return s
}

func clearSessions(m *maps.Set) error {
	keys, err := maps.Keys[maps.SessKey](m.Sessions)
	if err != nil {
		return err
	}
	if err := maps.DeleteKeys(m.Sessions, keys); err != nil {
		return err
	}
	return m.InvalidateFlowCache()
}
