// Command dataplane measures the bpfvpn data plane: per-packet cost of the
// XDP program through BPF_PROG_TEST_RUN (JIT on) against a trivial XDP_PASS
// program in the same run, and the session table under a SYN flood. Needs
// root. Results go to bench/RESULTS.md.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/bpfvpn/bpfvpn/bench/internal/machine"
	"github.com/bpfvpn/bpfvpn/control/dataplane"
	tp "github.com/bpfvpn/bpfvpn/control/dataplane/testpkt"
	"github.com/bpfvpn/bpfvpn/loader"
	"github.com/bpfvpn/bpfvpn/maps"
)

func main() {
	what := flag.String("what", "prog,flood", "comma-separated: prog (per-packet cost), hit (session hit alone, plain and redirect), flood (SYN flood), fwd (forwarding pps vs nftables)")
	repeat := flag.Uint("repeat", 2000000, "BPF_PROG_TEST_RUN repetitions per measurement")
	singles := flag.Int("singles", 20000, "packets measured one run each (first packet with session insert, MSS delta)")
	floodN := flag.Int("flood", 300000, "SYNs of the flood")
	floodTable := flag.Uint("flood-table", 65536, "session table size for the flood")
	rounds := flag.Int("rounds", 5, "alternating rounds of -what hit")
	fwdSecs := flag.Duration("fwd-time", 3*time.Second, "duration of each forwarding run")
	fwdRounds := flag.Int("fwd-rounds", 5, "alternating nftables / bpfvpn forwarding rounds")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench/dataplane: needs root")
		os.Exit(2)
	}
	fmt.Printf("machine: %s, %d CPUs, kernel %s, %s\n", machine.CPUModel(), runtime.NumCPU(), machine.KernelRelease(), time.Now().UTC().Format(time.RFC3339))
	for _, w := range strings.Split(*what, ",") {
		var err error
		switch w {
		case "prog":
			err = progBench(uint32(*repeat), *singles)
		case "hit":
			err = hitBench(uint32(*repeat), *rounds)
		case "flood":
			err = floodBench(*floodN, uint32(*floodTable))
		case "fwd":
			err = fwdBench(*fwdSecs, *fwdRounds)
		default:
			err = fmt.Errorf("unknown -what %q", w)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench/dataplane:", err)
			os.Exit(1)
		}
	}
}

func tcpPkt(src, dst string, sp, dp uint16, flags uint8, opts ...byte) tp.Packet {
	return tp.Packet{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), Proto: tp.TCP, SPort: sp, DPort: dp,
		TCPFlags: flags, Seq: 1, Ack: 1, TCPOptions: opts}
}

// pairedRuns alternates one run of (fdA, mkA) with one of (fdB, mkB), n
// times each and in alternating order, so that load drift and cache warmth
// on the shared machine hit both alike; it returns the two means.
func pairedRuns(b *benchNS, ifindex uint32, fdA int, mkA func(int) []byte, fdB int, mkB func(int) []byte, n int) (float64, float64, error) {
	var ta, tb uint64
	err := b.in(func() error {
		for i := 0; i < n; i++ {
			for k := 0; k < 2; k++ {
				fd, mk, acc := fdA, mkA, &ta
				if k == 1-i%2 { // alternate the order: the first of a pair pays colder caches
					fd, mk, acc = fdB, mkB, &tb
				}
				pkt := mk(i)
				_, ns, err := testRun(fd, pkt, &xdpMD{DataEnd: uint32(len(pkt)), IngressIfindex: ifindex}, 1)
				if err != nil {
					return err
				}
				*acc += uint64(ns)
			}
		}
		return nil
	})
	return float64(ta) / float64(n), float64(tb) / float64(n), err
}

func progBench(repeat uint32, singles int) error {
	s, err := newProgSetup()
	if err != nil {
		return err
	}
	defer s.Close()
	b, objs, m, pass := s.b, s.objs, s.m, s.pass
	start := time.Now()
	spec := bigSpec(10000, 5)
	spec.Policies[9999].Action = dataplane.Deny
	var c *dataplane.Compiled
	if err := b.in(func() error { c, err = dataplane.Apply(m, spec, nil); return err }); err != nil {
		return err
	}
	applyTime := time.Since(start)
	nPrefixes := 0
	for _, p := range spec.Policies {
		nPrefixes += len(p.Source) + len(p.Destination)
	}
	in := b.idx["trust0"]
	fmt.Printf("\nspec: %d policies in trust→untrust, %d address-book prefixes; Apply took %v (generation %d)\n",
		len(spec.Policies)-1, nPrefixes, applyTime.Round(time.Millisecond), c.Gen)

	ack := packetFor(b, tcpPkt("10.1.0.2", "10.2.0.2", 40000, 80, tp.ACK), "trust0")
	base, _, err := bench(b, pass, in, ack, repeat)
	if err != nil {
		return err
	}
	fmt.Printf("\n| measurement | ns/packet | ratio to XDP_PASS | verdict |\n|---|---:|---:|---|\n")
	fmt.Printf("| trivial XDP_PASS program (baseline) | %.1f | 1.00 | pass |\n", base)
	report := func(name string, ns float64, ret uint32) {
		fmt.Printf("| %s | %.1f | %.2f | %s |\n", name, ns, ns/base, verdict(ret))
	}
	// session hit: a handshake establishes the session, measure its ACKs
	syn := packetFor(b, tcpPkt("10.1.0.2", "10.2.0.2", 40000, 80, tp.SYN), "trust0")
	synack := packetFor(b, tcpPkt("10.2.0.2", "10.1.0.2", 80, 40000, tp.SYN|tp.ACK), "untr0")
	if err := s.establish(syn, synack, ack); err != nil {
		return err
	}
	ns, ret, err := bench(b, objs.XdpZone, in, ack, repeat)
	if err != nil {
		return err
	}
	report("session hit (TCP ACK, established flow)", ns, ret)
	// first packet, 10,000 policies: src/dst of the last big policy, deny
	last := spec.Policies[9999]
	fp := packetFor(b, tp.Packet{Src: last.Source[2].Addr(), Dst: last.Destination[3].Addr().Next(), Proto: tp.TCP,
		SPort: 1234, DPort: 80, TCPFlags: tp.SYN}, "trust0")
	ns, ret, err = bench(b, objs.XdpZone, in, fp, repeat)
	if err != nil {
		return err
	}
	report("first packet: policy #10000 of 10,000 matches (deny, no session insert)", ns, ret)

	// singles: first packet with a session insert vs the baseline the same way
	mk := func(i int) []byte {
		return packetFor(b, tp.Packet{Src: last.Source[i%5].Addr(), Dst: netip.MustParseAddr("10.2.0.2"), Proto: tp.TCP,
			SPort: uint16(10000 + i), DPort: 80, TCPFlags: tp.SYN}, "trust0")
	}
	if err := clearSessions(m); err != nil {
		return err
	}
	baseSingle, first, err := pairedRuns(b, in, pass.FD(), mk, objs.XdpZone.FD(), mk, singles)
	if err != nil {
		return err
	}
	mkDeny := func(i int) []byte {
		return packetFor(b, tp.Packet{Src: last.Source[i%5].Addr(), Dst: last.Destination[i%5].Addr().Next(), Proto: tp.TCP,
			SPort: uint16(10000 + i), DPort: 80, TCPFlags: tp.SYN}, "trust0")
	}
	if err := clearSessions(m); err != nil {
		return err
	}
	denySingle, permitSingle, err := pairedRuns(b, in, objs.XdpZone.FD(), mkDeny, objs.XdpZone.FD(), mk, singles)
	if err != nil {
		return err
	}
	fmt.Printf("| single runs (%d distinct SYNs each, alternating): trivial XDP_PASS | %.1f | 1.00 | pass |\n", singles, baseSingle)
	fmt.Printf("| ↳ first packet, 10,000 policies, creates a session | %.1f | %.2f | pass |\n", first, first/baseSingle)
	fmt.Printf("| ↳ first packet, 10,000 policies, deny (no insert), paired with the next row | %.1f | %.2f | drop |\n", denySingle, denySingle/baseSingle)
	fmt.Printf("| ↳ first packet, 10,000 policies, creates a session, paired with the row above | %.1f | %.2f | pass |\n", permitSingle, permitSingle/baseSingle)

	// MSS: a SYN into the tunnel that hits its session, with and without a rewrite
	mss := func(v uint16) func(int) []byte {
		return func(i int) []byte {
			return packetFor(b, tcpPkt("10.1.0.2", "10.3.0.2", uint16(2000+i%1000), 443, tp.SYN, tp.MSSOption(v)...), "trust0")
		}
	}
	for i := 0; i < 1000; i++ { // open the sessions
		p := mss(1460)(i)
		if _, _, err := bench(b, objs.XdpZone, in, p, 1); err != nil {
			return err
		}
	}
	noRewrite, rewrite, err := pairedRuns(b, in, objs.XdpZone.FD(), mss(1200), objs.XdpZone.FD(), mss(1460), singles)
	if err != nil {
		return err
	}
	fmt.Printf("| SYN into st0 hitting its session, MSS 1200 (parsed, not rewritten) | %.1f | %.2f | pass |\n", noRewrite, noRewrite/baseSingle)
	fmt.Printf("| SYN into st0 hitting its session, MSS 1460 → 1350 (rewritten) | %.1f | %.2f | pass |\n", rewrite, rewrite/baseSingle)
	fmt.Printf("| ↳ MSS rewrite delta | %.1f | | |\n", rewrite-noRewrite)
	return nil
}

func verdict(r uint32) string {
	switch r {
	case 1:
		return "drop"
	case 2:
		return "pass"
	case 3:
		return "tx"
	case 4:
		return "redirect"
	}
	return fmt.Sprint(r)
}

// floodBench: a session table of size table under a flood of SYNs from
// random sources that trust→untrust permits; an established flow sends a
// packet after every 1000 flood packets and must keep passing.
func floodBench(n int, table uint32) error {
	b, err := newBenchNS()
	if err != nil {
		return err
	}
	defer b.ns.Close()
	objs, err := loader.Load(loader.Options{SessionMax: table})
	if err != nil {
		return err
	}
	defer objs.Close()
	m := maps.FromObjects(objs)
	spec := bigSpec(0, 0)
	if err := b.in(func() error { _, err := dataplane.Apply(m, spec, nil); return err }); err != nil {
		return err
	}
	in := b.idx["trust0"]
	fd := objs.XdpZone.FD()
	run := func(p tp.Packet, ifc string) (uint32, error) {
		var r uint32
		err := b.in(func() error {
			pkt := packetFor(b, p, ifc)
			var err error
			r, _, err = testRun(fd, pkt, &xdpMD{DataEnd: uint32(len(pkt)), IngressIfindex: b.idx[ifc]}, 1)
			return err
		})
		return r, err
	}
	legit := []struct {
		p   tp.Packet
		ifc string
	}{
		{tcpPkt("10.1.0.2", "10.2.0.2", 5555, 80, tp.SYN), "trust0"},
		{tcpPkt("10.2.0.2", "10.1.0.2", 80, 5555, tp.SYN|tp.ACK), "untr0"},
		{tcpPkt("10.1.0.2", "10.2.0.2", 5555, 80, tp.ACK), "trust0"},
	}
	for _, l := range legit {
		if r, err := run(l.p, l.ifc); err != nil || r != 2 {
			return fmt.Errorf("establish the legitimate flow: verdict %d, %v", r, err)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	legitFail := 0
	start := time.Now()
	err = b.in(func() error {
		for i := 0; i < n; i++ {
			src := netip.AddrFrom4([4]byte{10, 1, byte(rng.IntN(256)), byte(rng.IntN(256))})
			p := packetFor(b, tp.Packet{Src: src, Dst: netip.MustParseAddr("10.2.0.2"), Proto: tp.TCP,
				SPort: uint16(1024 + rng.IntN(60000)), DPort: 80, TCPFlags: tp.SYN}, "trust0")
			if _, _, err := testRun(fd, p, &xdpMD{DataEnd: uint32(len(p)), IngressIfindex: in}, 1); err != nil {
				return err
			}
			if i%1000 == 999 {
				lp := packetFor(b, legit[i/1000%2*1+1].p, legit[i/1000%2*1+1].ifc)
				if i/1000%2 == 0 {
					lp = packetFor(b, legit[2].p, legit[2].ifc)
				}
				ifc := b.idx["trust0"]
				if i/1000%2 == 1 {
					ifc = b.idx["untr0"]
				}
				r, _, err := testRun(fd, lp, &xdpMD{DataEnd: uint32(len(lp)), IngressIfindex: ifc}, 1)
				if err != nil {
					return err
				}
				if r != 2 {
					legitFail++
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	took := time.Since(start)
	entries, err := maps.CountEntries(m, "sessions")
	if err != nil {
		return err
	}
	cs, err := m.ReadCounters()
	if err != nil {
		return err
	}
	created := cs[maps.CounterID(7)] // session-new
	fmt.Printf("\nSYN flood: %d SYNs from random 10.1.0.0/16 sources in %v, session table %d entries (LRU)\n", n, took.Round(time.Millisecond), table)
	fmt.Printf("\n| metric | value |\n|---|---:|\n")
	fmt.Printf("| sessions created | %d |\n| entries after the flood | %d |\n| evicted by LRU (created − entries) | %d |\n", created, entries, int(created)-entries)
	fmt.Printf("| established-flow packets during the flood | %d |\n| of them dropped | %d |\n", n/1000, legitFail)
	for id, name := range maps.CounterNames {
		if strings.HasPrefix(name, "drop-") && cs[id] != 0 {
			fmt.Printf("| %s | %d |\n", name, cs[id])
		}
	}
	fmt.Printf("| session-hit | %d |\n", cs[maps.CounterID(6)])
	return nil
}
