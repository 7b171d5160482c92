// Command ikev1 measures IKEv1 Main Mode + Quick Mode setups per second
// against strongSwan's charon and against bpfvpn's own IKEv1 responder,
// with the same generator in the same run.
//
// Everything runs inside a private network namespace on loopback: charon
// (kernel-libipsec, so it really installs each CHILD SA, in userspace) at
// 127.0.0.1, bpfvpn's responder as a separate process at 127.0.0.3, and the
// generator (bpfvpn's IKEv1 engine as initiator, C concurrent slots with
// their own UDP ports) at 127.0.0.2. Each setup is Main Mode (6 messages) +
// Quick Mode (3 messages) measured from the first message to the installed
// CHILD SA; then the slot deletes the SAs (informational) and starts over.
//
// Usage (root): go run ./bench/ikev1 [-n 2000] [-c 16] [-out bench/ikev1/last-run.md]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bpfvpn/bpfvpn/bench/internal/machine"
	"github.com/bpfvpn/bpfvpn/ike"
	"github.com/bpfvpn/bpfvpn/ike/ikev1"
	"github.com/bpfvpn/bpfvpn/ike/interop"
	"github.com/bpfvpn/bpfvpn/ike/suite"
	"github.com/bpfvpn/bpfvpn/ike/udp"
)

const psk = "bench-ikev1-psk-0123456789"

var (
	charonAddr = netip.MustParseAddr("127.0.0.1")
	genAddr    = netip.MustParseAddr("127.0.0.2")
	bpfAddr    = netip.MustParseAddr("127.0.0.3")
)

// charon binds its ports on every address, so the responders differ in
// ports as well as addresses.
const (
	charonPort = 1500
	charonNATT = 14500
	bpfPort    = 2500
	bpfNATT    = 24500
)

// benchSuite is one proposal set, spelled for both implementations.
type benchSuite struct {
	name    string
	swanIKE string
	swanESP string
	ike     ikev1.Phase1Proposal
	esp     ikev1.Phase2Proposal
}

var suites = map[string]benchSuite{
	"ecp256": {"aes256-sha256-ecp256 / esp aes256gcm16 (reference defaults)", "aes256-sha256-ecp256", "aes256gcm16",
		ikev1.DefaultPhase1, ikev1.DefaultPhase2},
	"modp2048": {"aes256-sha256-modp2048 / esp aes256-sha256", "aes256-sha256-modp2048", "aes256-sha256",
		ikev1.Phase1Proposal{Encryption: suite.Encr{ID: suite.EncrAESCBC, KeyBits: 256}, Hash: ikev1.HashSHA256, Group: suite.MODP2048},
		ikev1.Phase2Proposal{Encryption: suite.Encr{ID: suite.EncrAESCBC, KeyBits: 256}, Integrity: suite.IntegHMACSHA2256128}},
}

func main() {
	serve := flag.Bool("serve", false, "internal: run bpfvpn's IKEv1 responder")
	suiteName := flag.String("suite", "ecp256", "proposal set: ecp256 or modp2048 (or all)")
	n := flag.Int("n", 2000, "setups per responder")
	c := flag.Int("c", 16, "concurrent setups")
	out := flag.String("out", "", "also write the result table to this file")
	flag.Parse()
	if *serve {
		if err := runResponder(*suiteName); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	names := []string{*suiteName}
	if *suiteName == "all" {
		names = []string{"ecp256", "modp2048"}
	}
	var report strings.Builder
	for _, name := range names {
		s, ok := suites[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown suite %q\n", name)
			os.Exit(2)
		}
		r, err := run(name, s, *n, *c)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		report.WriteString(r)
	}
	fmt.Print(report.String())
	if *out != "" {
		if err := os.WriteFile(*out, []byte(report.String()), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}

// runResponder is bpfvpn's responder process: any peer with the PSK.
func runResponder(name string) error {
	s := suites[name]
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r, err := udp.Listen(log, []udp.Listener{
		{Addr: netip.AddrPortFrom(bpfAddr, bpfPort), NATT: true},
		{Addr: netip.AddrPortFrom(bpfAddr, bpfNATT), NATT: true},
	})
	if err != nil {
		return err
	}
	defer r.Close()
	p := ikev1.Peer{Name: "any", Local: bpfAddr, LocalPort: bpfPort, LocalNATTPort: bpfNATT, PSK: []byte(psk),
		IKE: []ikev1.Phase1Proposal{s.ike}, ESP: []ikev1.Phase2Proposal{s.esp}}
	eng, err := ikev1.New([]ikev1.Peer{p}, r, ike.NopSink{}, ikev1.Options{Logger: log, MaxHalfOpen: 1 << 20})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// The engine computes a responder's Diffie-Hellman outside its lock:
	// one receiver per CPU lets it use every core.
	r.Readers = runtime.NumCPU()
	fmt.Println("ready")
	_ = r.Run(ctx, eng)
	return nil
}

// result of one responder run.
type result struct {
	name      string
	setups    int
	failed    int
	wall      time.Duration
	lat       []time.Duration
	cpu       time.Duration // responder user+system time
	hwm       int64         // responder peak RSS, kB
	genCPU    time.Duration
	responder int
}

func run(name string, s benchSuite, n, c int) (string, error) {
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("needs root (network namespace)")
	}
	if why := interop.Available(); why != "" {
		return "", fmt.Errorf("charon unavailable: %s", why)
	}
	ns, err := interop.NewNetns("ikev1b")
	if err != nil {
		return "", err
	}
	defer ns.Close()
	for _, a := range []string{"127.0.0.2/8", "127.0.0.3/8"} {
		_ = exec.Command("ip", "-n", ns.Name, "addr", "add", a, "dev", "lo").Run()
	}
	dir, err := os.MkdirTemp("", "bench-ikev1-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)

	ch, err := interop.StartCharon(interop.CharonOptions{Dir: dir, Netns: ns, Port: charonPort, NATPort: charonNATT, LogLevel: -1,
		SwanctlConf: fmt.Sprintf(`connections {
	bench {
		version = 1
		aggressive = no
		local_addrs = %s
		remote_addrs = %%any
		proposals = %s
		rekey_time = 0
		reauth_time = 0
		local { auth = psk }
		remote { auth = psk }
		children {
			c {
				esp_proposals = %s
				local_ts = 0.0.0.0/0
				remote_ts = 0.0.0.0/0
				rekey_time = 0
			}
		}
	}
}
secrets { ike-1 { secret = "%s" } }
`, charonAddr, s.swanIKE, s.swanESP, psk)})
	if err != nil {
		return "", err
	}
	defer ch.Stop()

	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	srv := exec.Command("ip", "netns", "exec", ns.Name, self, "-serve", "-suite", name)
	srv.Stderr = os.Stderr
	stdout, err := srv.StdoutPipe()
	if err != nil {
		return "", err
	}
	if err := srv.Start(); err != nil {
		return "", err
	}
	defer func() { _ = srv.Process.Signal(syscall.SIGTERM); _ = srv.Wait() }()
	buf := make([]byte, 6)
	if _, err := io.ReadFull(stdout, buf); err != nil || string(buf) != "ready\n" {
		return "", fmt.Errorf("bpfvpn responder did not start: %v %q", err, buf)
	}

	var results []result
	for _, target := range []struct {
		name       string
		addr       netip.Addr
		port, natt uint16
		pid        int
	}{{"strongSwan charon 5.9.8", charonAddr, charonPort, charonNATT, ch.Pid()}, {"bpfvpn", bpfAddr, bpfPort, bpfNATT, srv.Process.Pid}} {
		before := machine.ProcessCPU(target.pid)
		r, err := generate(ns, s, netip.AddrPortFrom(target.addr, target.port), target.natt, n, c)
		if err != nil {
			return "", fmt.Errorf("%s: %w", target.name, err)
		}
		r.cpu = machine.ProcessCPU(target.pid) - before
		r.hwm = machine.ProcessKB(target.pid, "VmHWM")
		r.name = target.name
		r.responder = target.pid
		results = append(results, r)
	}
	return format(s, n, c, results), nil
}

// generate runs n setups against the responder at addr with c slots.
func generate(ns *interop.Netns, s benchSuite, addr netip.AddrPort, natt uint16, n, c int) (result, error) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var listeners []udp.Listener
	for i := 0; i < c; i++ {
		listeners = append(listeners,
			udp.Listener{Addr: netip.AddrPortFrom(genAddr, uint16(20000+2*i)), NATT: true},
			udp.Listener{Addr: netip.AddrPortFrom(genAddr, uint16(20001+2*i)), NATT: true})
	}
	var r *udp.Runner
	if err := ns.Do(func() error {
		var err error
		r, err = udp.Listen(log, listeners)
		return err
	}); err != nil {
		return result{}, err
	}
	defer r.Close()
	var peers []ikev1.Peer
	for i := 0; i < c; i++ {
		peers = append(peers, ikev1.Peer{Name: "g" + strconv.Itoa(i), VPNName: "g" + strconv.Itoa(i),
			Local: genAddr, LocalPort: uint16(20000 + 2*i), LocalNATTPort: uint16(20001 + 2*i),
			Remote: addr.Addr(), RemotePort: addr.Port(), RemoteNATTPort: natt, PSK: []byte(psk),
			IKE: []ikev1.Phase1Proposal{s.ike}, ESP: []ikev1.Phase2Proposal{s.esp}})
	}
	done := make([]chan struct{}, c)
	for i := range done {
		done[i] = make(chan struct{}, 4)
	}
	sink := &genSink{done: done}
	eng, err := ikev1.New(peers, r, sink, ikev1.Options{Logger: log, NoInitialContact: true, RetransmitBase: time.Second, RetransmitTries: 4})
	if err != nil {
		return result{}, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	var runWG sync.WaitGroup
	runWG.Add(1)
	go func() { defer runWG.Done(); _ = r.Run(ctx, eng) }()
	defer func() { cancel(); runWG.Wait() }()

	var (
		next   atomic.Int64
		failed atomic.Int64
		mu     sync.Mutex
		lat    []time.Duration
		wg     sync.WaitGroup
	)
	start := time.Now()
	genStart := cpuSelf()
	for i := 0; i < c; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			gw := "g" + strconv.Itoa(i)
			for next.Add(1) <= int64(n) {
				t0 := time.Now()
				if err := eng.Initiate(t0, gw); err != nil {
					failed.Add(1)
					return
				}
				select {
				case <-done[i]:
					d := time.Since(t0)
					mu.Lock()
					lat = append(lat, d)
					mu.Unlock()
				case <-time.After(20 * time.Second):
					failed.Add(1)
				}
				eng.Terminate(time.Now(), gw)
			}
		}(i)
	}
	wg.Wait()
	wall := time.Since(start)
	genCPU := cpuSelf() - genStart
	return result{setups: len(lat), failed: int(failed.Load()), wall: wall, lat: lat, genCPU: genCPU}, nil
}

// genSink signals each slot when its CHILD SA is installed.
type genSink struct {
	ike.NopSink
	done []chan struct{}
}

func (g *genSink) ChildSAInstalled(sa ike.ChildSA) error {
	i, err := strconv.Atoi(strings.TrimPrefix(sa.Name, "g"))
	if err == nil && i < len(g.done) {
		select {
		case g.done[i] <- struct{}{}:
		default:
		}
	}
	return nil
}

// cpuSelf is this process's user+system CPU time.
func cpuSelf() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func pct(l []time.Duration, p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), l...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func format(s benchSuite, n, c int, rs []result) string {
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "\n### IKEv1 Main Mode + Quick Mode setups: %s\n\n", s.name)
	fmt.Fprintf(&b, "Command: `go run ./bench/ikev1 -suite <suite> -n %d -c %d` (root). Machine: %s, %d CPUs, %s, Go %s; %s.\n\n",
		n, c, host, runtime.NumCPU(), strings.TrimSpace("Linux "+machine.KernelRelease()), runtime.Version(), time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	b.WriteString("| responder | setups | failed | wall s | setups/s | p50 ms | p99 ms | responder CPU s | CPU ms/setup | responder peak RSS MB |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		rate := float64(r.setups) / r.wall.Seconds()
		per := 0.0
		if r.setups > 0 {
			per = float64(r.cpu.Microseconds()) / 1000 / float64(r.setups)
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %.2f | %.0f | %.1f | %.1f | %.2f | %.2f | %.1f |\n", r.name, r.setups, r.failed,
			r.wall.Seconds(), rate, float64(pct(r.lat, 0.5).Microseconds())/1000, float64(pct(r.lat, 0.99).Microseconds())/1000,
			r.cpu.Seconds(), per, float64(r.hwm)/1024)
	}
	if len(rs) == 2 && rs[0].setups > 0 && rs[0].wall > 0 {
		r0 := float64(rs[0].setups) / rs[0].wall.Seconds()
		r1 := float64(rs[1].setups) / rs[1].wall.Seconds()
		fmt.Fprintf(&b, "\nRatio bpfvpn / charon setups/s: %.2f. Generator CPU: %.2f s (charon run), %.2f s (bpfvpn run).\n",
			r1/r0, rs[0].genCPU.Seconds(), rs[1].genCPU.Seconds())
	}
	return b.String()
}
