package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/bpfvpn/bpfvpn/control/dataplane"
	tp "github.com/bpfvpn/bpfvpn/control/dataplane/testpkt"
	"github.com/bpfvpn/bpfvpn/control/namespace"
	"github.com/bpfvpn/bpfvpn/loader"
	"github.com/bpfvpn/bpfvpn/maps"
)

// bpfFTestXDPLiveFrames is BPF_F_TEST_XDP_LIVE_FRAMES.
const bpfFTestXDPLiveFrames = 1 << 1

// fwdLab: gen ─ rtg [router] rts ─ sink, each in its own namespace.
// The generator transmits one UDP frame over and over with XDP_TX in
// BPF_PROG_TEST_RUN live-frames mode (a kernel packet generator); the sink
// counts frames with an XDP program.
type fwdLab struct {
	gen, rt, sink netns.NsHandle
	names         []string
	idx           map[string]int
	mac           map[string]net.HardwareAddr
}

func newFwdLab() (*fwdLab, error) {
	l := &fwdLab{idx: map[string]int{}, mac: map[string]net.HardwareAddr{}}
	sfx := fmt.Sprintf("%x", time.Now().UnixNano()&0xffffff)
	runtime.LockOSThread()
	orig, _ := netns.Get()
	var hs []netns.NsHandle
	for _, n := range []string{"dpbg", "dpbr", "dpbs"} {
		h, err := netns.NewNamed(n + sfx)
		if err != nil {
			netns.Set(orig)
			runtime.UnlockOSThread()
			return nil, err
		}
		hs = append(hs, h)
		l.names = append(l.names, n+sfx)
	}
	netns.Set(orig)
	orig.Close()
	runtime.UnlockOSThread()
	l.gen, l.rt, l.sink = hs[0], hs[1], hs[2]
	err := namespace.Do(l.rt, func() error {
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "rtg"}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(l.gen))}); err != nil {
			return err
		}
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "rts"}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(l.sink))}); err != nil {
			return err
		}
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0)
	})
	if err != nil {
		return nil, err
	}
	up := func(ns netns.NsHandle, dev, cidr, key string) error {
		return namespace.Do(ns, func() error {
			lk, err := netlink.LinkByName(dev)
			if err != nil {
				return err
			}
			a, _ := netlink.ParseAddr(cidr)
			if err := netlink.AddrAdd(lk, a); err != nil {
				return err
			}
			if err := netlink.LinkSetUp(lk); err != nil {
				return err
			}
			l.idx[key], l.mac[key] = lk.Attrs().Index, lk.Attrs().HardwareAddr
			return nil
		})
	}
	for _, u := range []struct {
		ns       netns.NsHandle
		dev, cid string
		key      string
	}{{l.gen, "eth0", "10.20.1.2/24", "gen"}, {l.rt, "rtg", "10.20.1.1/24", "rtg"}, {l.rt, "rts", "10.20.2.1/24", "rts"}, {l.sink, "eth0", "10.20.2.2/24", "sink"}} {
		if err := up(u.ns, u.dev, u.cid, u.key); err != nil {
			return nil, fmt.Errorf("set up %s: %w", u.key, err)
		}
	}
	err = namespace.Do(l.rt, func() error {
		return netlink.NeighAdd(&netlink.Neigh{LinkIndex: l.idx["rts"], Family: netlink.FAMILY_V4, State: netlink.NUD_PERMANENT,
			IP: net.ParseIP("10.20.2.2"), HardwareAddr: l.mac["sink"]})
	})
	return l, err
}

func (l *fwdLab) close() {
	for i, h := range []netns.NsHandle{l.gen, l.rt, l.sink} {
		h.Close()
		netns.DeleteNamed(l.names[i])
	}
}

func fwdSpec() *dataplane.Spec {
	return &dataplane.Spec{
		Zones:      []dataplane.Zone{{Name: "trust"}, {Name: "untrust"}},
		Interfaces: []dataplane.Interface{{Name: "rtg", Zone: "trust", Redirect: true}, {Name: "rts", Zone: "untrust", Redirect: true}},
		Policies: []dataplane.Policy{{Name: "dns", FromZone: "trust", ToZone: "untrust", Action: dataplane.Permit,
			Destination: []netip.Prefix{netip.MustParsePrefix("10.20.2.0/24")}, Apps: []dataplane.AppTerm{{Proto: tp.UDP, PortLow: 53}}}},
		TCPMSS: dataplane.TCPMSS{AllTCP: 1350},
	}
}

const nftRuleset = `table inet dpbench {
	set trust { type ifname; elements = { "rtg" } }
	set untrust { type ifname; elements = { "rts" } }
	chain forward {
		type filter hook forward priority 0; policy drop;
		ct state established,related accept
		tcp flags syn tcp option maxseg size set 1350
		iifname @trust oifname @untrust ip daddr 10.20.2.0/24 udp dport 53 ct state new accept
	}
}
`

// counter program: count frames in an array map and drop them.
func sinkCounter() (*ebpf.Program, *ebpf.Map, error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		return nil, nil, err
	}
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "GPL", Instructions: asm.Instructions{
		asm.StoreImm(asm.R10, -4, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, m.FD()),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, 1).WithSymbol("out"),
		asm.Return(),
	}})
	return p, m, err
}

func readCount(m *ebpf.Map) uint64 {
	var per []uint64
	if err := m.Lookup(uint32(0), &per); err != nil {
		return 0
	}
	var s uint64
	for _, v := range per {
		s += v
	}
	return s
}

// run sends frames for d and returns frames/s received by the sink.
func (l *fwdLab) run(d time.Duration, cnt *ebpf.Map) (float64, float64, error) {
	frame := tp.Packet{Src: netip.MustParseAddr("10.20.1.2"), Dst: netip.MustParseAddr("10.20.2.2"), Proto: tp.UDP,
		SPort: 3333, DPort: 53, Payload: make([]byte, 18)}
	copy(frame.SrcMAC[:], l.mac["gen"])
	copy(frame.DstMAC[:], l.mac["rtg"])
	b := frame.Bytes()
	// The generator rewrites the whole frame before XDP_TX: pages come back
	// from the receivers (veth passes frames without copying) with the
	// router's TTL and MAC rewrites in them.
	insns := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word), // data
		asm.LoadMem(asm.R3, asm.R1, 4, asm.Word), // data_end
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, int32(len(b))),
		asm.JGT.Reg(asm.R4, asm.R3, "drop"),
	}
	for off := 0; off+4 <= len(b); off += 4 {
		insns = append(insns, asm.StoreImm(asm.R2, int16(off), int64(int32(binary.NativeEndian.Uint32(b[off:]))), asm.Word))
	}
	insns = append(insns, asm.Mov.Imm(asm.R0, 3), asm.Return(), asm.Mov.Imm(asm.R0, 1).WithSymbol("drop"), asm.Return())
	gen, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "GPL", Instructions: insns})
	if err != nil {
		return 0, 0, err
	}
	defer gen.Close()
	before := readCount(cnt)
	sent := uint64(0)
	start := time.Now()
	err = namespace.Do(l.gen, func() error {
		for time.Since(start) < d {
			const batch = 200000
			_, err := gen.Run(&ebpf.RunOptions{Data: b, Repeat: batch, Flags: bpfFTestXDPLiveFrames, BatchSize: 64,
				Context: xdpMD{DataEnd: uint32(len(b)), IngressIfindex: uint32(l.idx["gen"])}})
			if err != nil {
				return fmt.Errorf("live-frames generator: %w", err)
			}
			sent += batch
		}
		return nil
	})
	el := time.Since(start).Seconds()
	if os.Getenv("DPBENCH_DEBUG") != "" {
		for _, n := range l.names {
			out, _ := exec.Command("ip", "-n", n, "-s", "link").CombinedOutput()
			fmt.Fprintf(os.Stderr, "== %s\n%s", n, out)
		}
	}
	got := readCount(cnt) - before
	return float64(got) / el, float64(sent) / el, err
}

func fwdBench(d time.Duration, rounds int) error {
	l, err := newFwdLab()
	if err != nil {
		return fmt.Errorf("forwarding lab: %w", err)
	}
	defer l.close()
	cp, cm, err := sinkCounter()
	if err != nil {
		return err
	}
	defer cp.Close()
	defer cm.Close()
	var sinkLink link.Link
	if err := namespace.Do(l.sink, func() error {
		var err error
		sinkLink, err = link.AttachXDP(link.XDPOptions{Program: cp, Interface: l.idx["sink"]})
		return err
	}); err != nil {
		return err
	}
	defer sinkLink.Close()
	// 1) Linux forwarding with nftables + conntrack; GRO gives the veths NAPI
	for _, dev := range []string{"rtg", "rts"} {
		if out, err := exec.Command("ip", "netns", "exec", l.names[1], "ethtool", "-K", dev, "gro", "on").CombinedOutput(); err != nil {
			return fmt.Errorf("ethtool gro on %s: %v %s", dev, err, out)
		}
	}
	inst := "dpbench-" + l.names[1]
	fmt.Printf("\nforwarding, one UDP flow, 60-byte frames, %v per run, %d alternating rounds (generator: XDP_TX in BPF_PROG_TEST_RUN live-frames mode)\n", d, rounds)
	fmt.Printf("\n| round | nftables frames/s at the sink | bpfvpn frames/s at the sink | ratio | nftables / bpfvpn generator frames/s |\n|---|---:|---:|---:|---:|\n")
	var ratios []float64
	var cs map[maps.CounterID]uint64
	for r := 1; r <= rounds; r++ {
		// 1) Linux forwarding with nftables + conntrack
		nft := exec.Command("ip", "netns", "exec", l.names[1], "nft", "-f", "-")
		nft.Stdin = strings.NewReader(nftRuleset)
		if out, err := nft.CombinedOutput(); err != nil {
			return fmt.Errorf("nft: %v %s", err, out)
		}
		nftPPS, nftSent, err := l.run(d, cm)
		if err != nil {
			return err
		}
		exec.Command("ip", "netns", "exec", l.names[1], "nft", "delete", "table", "inet", "dpbench").Run()
		// 2) bpfvpn: XDP with sessions and policies, XDP_REDIRECT
		var res *dataplane.AttachResult
		if err := namespace.Do(l.rt, func() error {
			var err error
			res, err = dataplane.Attach(dataplane.AttachOptions{Instance: inst, Interfaces: []string{"rtg", "rts"}, Spec: fwdSpec()})
			return err
		}); err != nil {
			return err
		}
		bpfPPS, bpfSent, err := l.run(d, cm)
		if err == nil {
			var m *maps.Set
			if m, err = maps.OpenPinned(res.Dir); err == nil {
				cs, _ = m.ReadCounters()
				m.Close()
			}
		}
		namespace.Do(l.rt, func() error { _, err := dataplane.Detach(inst, []string{"rtg", "rts"}); return err })
		os.RemoveAll(loader.InstanceDir(inst))
		if err != nil {
			return err
		}
		ratios = append(ratios, bpfPPS/nftPPS)
		fmt.Printf("| %d | %.0f | %.0f | %.2f | %.0f / %.0f |\n", r, nftPPS, bpfPPS, bpfPPS/nftPPS, nftSent, bpfSent)
	}
	sort.Float64s(ratios)
	fmt.Printf("\nmedian ratio %.2f (min %.2f, max %.2f)\n", ratios[len(ratios)/2], ratios[0], ratios[len(ratios)-1])
	fmt.Printf("\nbpfvpn counters of the last round:")
	for id, v := range cs {
		if v != 0 {
			fmt.Printf(" %s %d,", maps.CounterNames[id], v)
		}
	}
	fmt.Println()
	return nil
}
