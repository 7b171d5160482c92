// Command esp measures the ESP forwarding overhead of bpfvpn's data plane:
// TCP throughput Host1 → Host2 through the two-site lab's tunnel (both
// gateways bpfvpn daemons, kernel XFRM, reference configuration) with the
// daemons' eBPF programs attached, against the same tunnel with every
// program detached, in one run. Rounds alternate the order (on/off,
// off/on, …) so that drift of the shared machine hits both sides alike.
//
// It needs root and a kernel with ESP and xfrm interfaces, so it runs in
// the VM (`make bench-esp`):
//
//	go build -o bin/espbench ./bench/esp
//	go run ./vm/cmd/vmrun -kernel 6.12 -- ./bin/espbench -rounds 5 -seconds 3
//
// Detaching keeps the pinned programs and maps; attaching again links the
// same pinned programs to the same hooks, so both states run the same
// tunnel, SAs and sessions table. Only the hooks change.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netns"

	"github.com/bpfvpn/bpfvpn/control/daemon/labrun"
	"github.com/bpfvpn/bpfvpn/control/lab"
	"github.com/bpfvpn/bpfvpn/loader"
)

// daemonEnv makes this binary act as a lab gateway's `bpfvpn daemon`.
const daemonEnv = "BPFVPN_ESPBENCH_DAEMON"

func main() {
	if os.Getenv(daemonEnv) == "1" {
		os.Exit(labrun.RunDaemon(os.Args[1:]))
	}
	rounds := flag.Int("rounds", 5, "on/off pairs")
	seconds := flag.Float64("seconds", 3, "length of one throughput measurement")
	version := flag.String("ike", "", "IKE version of the lab (\"\" = the reference's v1-only, v2-only)")
	flag.Parse()
	if err := run(*rounds, time.Duration(*seconds*float64(time.Second)), *version); err != nil {
		fmt.Fprintln(os.Stderr, "espbench:", err)
		os.Exit(1)
	}
}

func run(rounds int, length time.Duration, version string) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces, BPF)")
	}
	b := make([]byte, 3)
	rand.Read(b)
	dir, err := os.MkdirTemp("", "espbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	r := labrun.New(labrun.Options{Prefix: "esp" + hex.EncodeToString(b) + "-", Dir: filepath.Join(dir, "lab"),
		Env: []string{daemonEnv + "=1"}, Config: lab.ConfigOptions{IKEVersion: version},
		TunnelTimeout: 120 * time.Second, Out: os.Stderr})
	defer r.Down(context.Background())
	ctx := context.Background()
	if err := r.Up(ctx, false); err != nil {
		for _, gw := range labrun.Gateways {
			if log, rerr := os.ReadFile(r.LogPath(gw)); rerr == nil {
				lines := strings.Split(strings.TrimRight(string(log), "\n"), "\n")
				fmt.Fprintf(os.Stderr, "--- %s log (last 40 lines)\n%s\n", gw, strings.Join(lines[max(0, len(lines)-40):], "\n"))
			}
		}
		return fmt.Errorf("lab up: %w", err)
	}
	// The data plane clamps the MSS of SYNs; on veth with TX checksum
	// offload a clamped SYN with a partial checksum is lost (known data
	// plane bug, see TestVMLabDataplane). Full checksums on the hosts, in
	// both states.
	for _, h := range []string{lab.Host1, lab.Host2} {
		if out, err := exec.Command("ip", "netns", "exec", r.Lab().Namespace(h), "ethtool", "-K", "eth0", "tx", "off").CombinedOutput(); err != nil {
			return fmt.Errorf("ethtool on %s: %v: %s", h, err, out)
		}
	}
	hooks := map[string][]loader.Attachment{}
	for _, gw := range labrun.Gateways {
		as, err := loader.Attachments(loader.InstanceDir(r.Lab().Namespace(gw)))
		if err != nil || len(as) == 0 {
			return fmt.Errorf("%s: no data plane attached (%v)", gw, err)
		}
		hooks[gw] = as
	}
	if err := r.Ping(ctx, 3); err != nil {
		return err
	}
	// Warm-up: one transfer in each state (TCP, ARP, the first session).
	if _, err := throughput(r, time.Second); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	var on, off, pairs []float64
	for i := 0; i < rounds; i++ {
		order := []bool{true, false}
		if i%2 == 1 {
			order = []bool{false, true}
		}
		for _, attached := range order {
			if err := setHooks(r, hooks, attached); err != nil {
				return err
			}
			bps, err := throughput(r, length)
			if err != nil {
				return fmt.Errorf("round %d (programs attached %v): %w", i+1, attached, err)
			}
			fmt.Fprintf(os.Stderr, "round %d: programs %s: %.1f Mbit/s\n", i+1, state(attached), bps/1e6)
			if attached {
				on = append(on, bps)
			} else {
				off = append(off, bps)
			}
		}
		pairs = append(pairs, on[i]/off[i])
	}
	if err := setHooks(r, hooks, true); err != nil {
		return err
	}
	mOn, mOff := median(on), median(off)
	fmt.Printf("| data plane | median Mbit/s | rounds (Mbit/s) |\n|---|---|---|\n")
	fmt.Printf("| bpfvpn programs attached | %.1f | %s |\n", mOn/1e6, list(on))
	fmt.Printf("| no BPF programs | %.1f | %s |\n", mOff/1e6, list(off))
	fmt.Printf("\nratio attached / none: %.3f of the medians; %.3f median of the %d same-round ratios (%s) (target ≥ 0.95)\n",
		mOn/mOff, median(pairs), len(pairs), ratios(pairs))
	if g, lo, hi := geoInterval(pairs); len(pairs) > 1 {
		fmt.Printf("geometric mean of the same-round ratios: %.3f, 95%% interval %.3f … %.3f\n", g, lo, hi)
	}
	return nil
}

func state(attached bool) string {
	if attached {
		return "attached"
	}
	return "detached"
}

func list(v []float64) string {
	var s []string
	for _, x := range v {
		s = append(s, fmt.Sprintf("%.1f", x/1e6))
	}
	return strings.Join(s, ", ")
}

func ratios(v []float64) string {
	var s []string
	for _, x := range v {
		s = append(s, fmt.Sprintf("%.2f", x))
	}
	return strings.Join(s, ", ")
}

// geoInterval is the geometric mean of ratios with a 95% confidence
// interval from Student's t on their logarithms (t ≈ 2 for 10–30 rounds;
// the exact quantile matters less than the machine's noise).
func geoInterval(v []float64) (g, lo, hi float64) {
	n := float64(len(v))
	var sum, sq float64
	for _, x := range v {
		sum += math.Log(x)
	}
	mean := sum / n
	for _, x := range v {
		sq += (math.Log(x) - mean) * (math.Log(x) - mean)
	}
	if n < 2 {
		return math.Exp(mean), 0, 0
	}
	half := tQuantile(len(v)-1) * math.Sqrt(sq/(n-1)/n)
	return math.Exp(mean), math.Exp(mean - half), math.Exp(mean + half)
}

// tQuantile is the two-sided 95% quantile of Student's t with df degrees
// of freedom (table values, 1.96 beyond 30).
func tQuantile(df int) float64 {
	table := []float64{12.71, 4.30, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23, 2.20, 2.18, 2.16, 2.14, 2.13,
		2.12, 2.11, 2.10, 2.09, 2.09, 2.08, 2.07, 2.07, 2.06, 2.06, 2.06, 2.05, 2.05, 2.05, 2.04}
	if df >= 1 && df <= len(table) {
		return table[df-1]
	}
	return 1.96
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// programFor returns the pinned program bpfvpn attaches at a hook of
// ifname (the same choice as control/dataplane.Attach).
func programFor(a loader.Attachment) string {
	tunnel := strings.HasPrefix(a.Ifname, "st0.")
	switch {
	case a.Hook == loader.HookXDP:
		return loader.BpfvpnProgXdpZone
	case tunnel && a.Hook == loader.HookTCIngress:
		return loader.BpfvpnProgTcSt0Ingress
	case tunnel:
		return loader.BpfvpnProgTcSt0Egress
	}
	return loader.BpfvpnProgTcZoneEgress
}

// setHooks detaches every hook of both gateways, or attaches the pinned
// programs to them again.
func setHooks(r *labrun.Run, hooks map[string][]loader.Attachment, attached bool) error {
	for gw, as := range hooks {
		dir := loader.InstanceDir(r.Lab().Namespace(gw))
		err := r.Lab().Exec(gw, func() error {
			for _, a := range as {
				if !attached {
					if _, err := loader.Detach(dir, a.Ifname); err != nil {
						return err
					}
					continue
				}
				if cur, _ := loader.Attachments(dir); containsHook(cur, a) {
					continue
				}
				prog, err := ebpf.LoadPinnedProgram(filepath.Join(dir, "prog_"+programFor(a)), nil)
				if err != nil {
					return err
				}
				if a.Hook == loader.HookXDP {
					_, err = loader.AttachXDP(dir, prog, a.Ifname)
				} else {
					_, err = loader.AttachTC(dir, prog, a.Ifname, a.Hook)
				}
				prog.Close()
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("%s: %s programs: %w", gw, map[bool]string{true: "attach", false: "detach"}[attached], err)
		}
		if cur, _ := loader.Attachments(dir); attached && len(cur) != len(as) || !attached && len(cur) != 0 {
			return fmt.Errorf("%s: %d hooks attached, want %d", gw, len(cur), map[bool]int{true: len(as), false: 0}[attached])
		}
	}
	return nil
}

func containsHook(as []loader.Attachment, a loader.Attachment) bool {
	for _, x := range as {
		if x.Ifname == a.Ifname && x.Hook == a.Hook {
			return true
		}
	}
	return false
}

// throughput sends as much as it can from Host1 to Host2 over one TCP
// connection for length and returns the bits per second Host2 received.
func throughput(r *labrun.Run, length time.Duration) (float64, error) {
	nsH1, err := netns.GetFromName(r.Lab().Namespace(lab.Host1))
	if err != nil {
		return 0, err
	}
	defer nsH1.Close()
	nsH2, err := netns.GetFromName(r.Lab().Namespace(lab.Host2))
	if err != nil {
		return 0, err
	}
	defer nsH2.Close()
	sink, err := lab.StartTCPSink(nsH2, labrun.Host2Addr, length+30*time.Second)
	if err != nil {
		return 0, err
	}
	defer sink.Close()
	conn, err := sink.Dial(nsH1, 10*time.Second)
	if err != nil {
		return 0, fmt.Errorf("connect host1 → host2: %w", err)
	}
	buf := make([]byte, 64<<10)
	conn.SetWriteDeadline(time.Now().Add(length))
	for {
		if _, err := conn.Write(buf); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				break
			}
			conn.Close()
			return 0, fmt.Errorf("send: %w", err)
		}
	}
	conn.Close()
	res := sink.Wait()
	if res.Err != nil {
		return 0, fmt.Errorf("receive: %w", res.Err)
	}
	return float64(res.Bytes) * 8 / res.Elapsed.Seconds(), nil
}
