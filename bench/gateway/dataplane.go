package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netns"

	"github.com/bpfvpn/bpfvpn/control/daemon"
	"github.com/bpfvpn/bpfvpn/control/dataplane"
	"github.com/bpfvpn/bpfvpn/control/namespace"
	"github.com/bpfvpn/bpfvpn/loader"
)

// The gateway namespaces: client (trust) — gateway — server (untrust), and
// a dmz interface on the gateway with no host behind it.
const (
	clientAddr = "10.201.1.2"
	serverAddr = "10.201.2.2"
	flowPort   = 5000
)

func sh(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// runGatewayNamespaces builds the namespaces, runs the measurement inside
// the gateway's (a child process of this binary, so that every thread of
// the daemon is in it) and removes them again.
func runGatewayNamespaces(n, runs int) error {
	b := make([]byte, 3)
	rand.Read(b)
	sfx := hex.EncodeToString(b)
	cl, gw, sv := "cbcl-"+sfx, "cbgw-"+sfx, "cbsv-"+sfx
	defer func() {
		for _, ns := range []string{cl, gw, sv} {
			exec.Command("ip", "netns", "del", ns).Run()
		}
	}()
	steps := [][]string{
		{"ip", "netns", "add", cl}, {"ip", "netns", "add", gw}, {"ip", "netns", "add", sv},
		{"ip", "-n", gw, "link", "add", "gwt", "type", "veth", "peer", "name", "eth0", "netns", cl},
		{"ip", "-n", gw, "link", "add", "gwu", "type", "veth", "peer", "name", "eth0", "netns", sv},
		{"ip", "-n", gw, "link", "add", "gwd", "type", "veth", "peer", "name", "gwdp"},
		{"ip", "-n", gw, "link", "add", "gwp", "type", "veth", "peer", "name", "gwpp"},
		{"ip", "-n", gw, "link", "add", "gwm", "type", "veth", "peer", "name", "gwmp"},
		{"ip", "-n", gw, "addr", "add", "10.201.1.1/24", "dev", "gwt"},
		{"ip", "-n", gw, "addr", "add", "10.201.2.1/24", "dev", "gwu"},
		{"ip", "-n", gw, "addr", "add", "10.201.3.1/24", "dev", "gwd"},
		{"ip", "-n", gw, "addr", "add", "10.201.4.1/24", "dev", "gwp"},
		{"ip", "-n", gw, "addr", "add", "10.201.5.1/24", "dev", "gwm"},
		{"ip", "-n", cl, "addr", "add", clientAddr + "/24", "dev", "eth0"},
		{"ip", "-n", sv, "addr", "add", serverAddr + "/24", "dev", "eth0"},
	}
	for _, l := range []struct{ ns, dev string }{{gw, "lo"}, {gw, "gwt"}, {gw, "gwu"}, {gw, "gwd"}, {gw, "gwdp"}, {gw, "gwp"}, {gw, "gwpp"}, {gw, "gwm"}, {gw, "gwmp"}, {cl, "lo"}, {cl, "eth0"}, {sv, "lo"}, {sv, "eth0"}} {
		steps = append(steps, []string{"ip", "-n", l.ns, "link", "set", l.dev, "up"})
	}
	steps = append(steps,
		[]string{"ip", "-n", cl, "route", "add", "default", "via", "10.201.1.1"},
		[]string{"ip", "-n", sv, "route", "add", "default", "via", "10.201.2.1"},
		[]string{"ip", "netns", "exec", gw, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
		// Hosts send full checksums, as from a real NIC.
		[]string{"ip", "netns", "exec", cl, "ethtool", "-K", "eth0", "tx", "off"},
		[]string{"ip", "netns", "exec", sv, "ethtool", "-K", "eth0", "tx", "off"},
	)
	for _, s := range steps {
		if err := sh(s...); err != nil {
			return err
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command("ip", "netns", "exec", gw, exe, "-role", "gw", "-dp-policies", fmt.Sprint(n), "-runs", fmt.Sprint(runs), "-cpuprofile", *cpuProfile, fmt.Sprintf("-v=%v", *verbose))
	cmd.Env = append(os.Environ(), "CB_CLIENT_NS="+cl, "CB_SERVER_NS="+sv, "CB_INSTANCE=cbench-"+sfx)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
}

// dpLayout is how dpConfig spreads the policies over zone pairs, as a
// rule base of five zones would be: percent of the policies per pair (each
// pair at most 10,240 policies for up to about 100,000 in all). The flow's
// policy is the last of trust→untrust, the pair the commits change.
var dpLayout = []struct {
	from, to string
	percent  int
}{
	{"trust", "untrust", 10}, {"untrust", "dmz", 10}, {"trust", "dmz", 10}, {"partner", "dmz", 10},
	{"untrust", "trust", 9}, {"dmz", "trust", 9}, {"trust", "partner", 9}, {"partner", "trust", 8},
	{"mgmt", "trust", 8}, {"mgmt", "dmz", 7}, {"dmz", "untrust", 5}, {"trust", "mgmt", 5},
}

// dpInterfaces are the gateway's zone interfaces (veths in its namespace).
var dpInterfaces = []string{"gwt", "gwu", "gwd", "gwp", "gwm"}

// dpConfig is a gateway with five zones and n policies over the zone pairs
// of dpLayout, each pair's policies in a block as on a real device, with
// destination addresses from a 256-entry global address book and four
// applications, every fifth one deny, plus the policy that permits the
// measured flow, last in trust→untrust.
func dpConfig(n int) string {
	var b strings.Builder
	b.WriteString(`set system interface-map ge-0/0/0 gwt
set system interface-map ge-0/0/1 gwu
set system interface-map ge-0/0/2 gwd
set system interface-map ge-0/0/3 gwp
set system interface-map ge-0/0/4 gwm
set interfaces ge-0/0/0 unit 0 family inet address 10.201.1.1/24
set interfaces ge-0/0/1 unit 0 family inet address 10.201.2.1/24
set interfaces ge-0/0/2 unit 0 family inet address 10.201.3.1/24
set interfaces ge-0/0/3 unit 0 family inet address 10.201.4.1/24
set interfaces ge-0/0/4 unit 0 family inet address 10.201.5.1/24
set security zones security-zone trust interfaces ge-0/0/0.0
set security zones security-zone trust host-inbound-traffic system-services ping
set security zones security-zone untrust interfaces ge-0/0/1.0
set security zones security-zone dmz interfaces ge-0/0/2.0
set security zones security-zone partner interfaces ge-0/0/3.0
set security zones security-zone mgmt interfaces ge-0/0/4.0
set applications application bench-udp protocol udp
set applications application bench-udp destination-port 5000
`)
	for i := 0; i < 256; i++ {
		fmt.Fprintf(&b, "set security address-book global address A%d 10.%d.%d.0/24\n", i, 100+i/128, (i%128)*2)
	}
	apps := []string{"junos-http", "junos-https", "junos-ssh", "junos-dns-udp"}
	left := n
	for k, l := range dpLayout {
		m := n * l.percent / 100
		if k == len(dpLayout)-1 {
			m = left
		}
		left -= m
		for i := 0; i < m; i++ {
			p := fmt.Sprintf("set security policies from-zone %s to-zone %s policy %s-%s-%d ", l.from, l.to, l.from, l.to, i)
			fmt.Fprintf(&b, "%smatch source-address any\n%smatch destination-address A%d\n%smatch application %s\n", p, p, (i+k)%256, p, apps[(i+k)%4])
			if i%5 == 0 {
				b.WriteString(p + "then deny\n")
			} else {
				b.WriteString(p + "then permit\n")
			}
		}
		if k == 0 {
			p := "set security policies from-zone trust to-zone untrust policy flow "
			b.WriteString(p + "match source-address any\n" + p + "match destination-address any\n" + p + "match application bench-udp\n" + p + "then permit\n")
		}
	}
	return b.String()
}

// inNetns runs fn on a thread in the named namespace.
func inNetns(name string, fn func() error) error {
	ns, err := netns.GetFromName(name)
	if err != nil {
		return err
	}
	defer ns.Close()
	return namespace.Do(ns, fn)
}

// flow is a one-way UDP flow client → server through the gateway, one
// datagram every interval, each numbered; the server marks what arrives.
type flow struct {
	c, s     net.Conn
	sc       net.PacketConn
	sent     atomic.Uint32
	mu       sync.Mutex
	got      []bool
	received atomic.Uint32
	stop     chan struct{}
	done     sync.WaitGroup
}

func startFlow(client, server string, interval time.Duration) (*flow, error) {
	f := &flow{got: make([]bool, 1<<22), stop: make(chan struct{})}
	if err := inNetns(server, func() (err error) {
		f.sc, err = net.ListenPacket("udp4", net.JoinHostPort(serverAddr, fmt.Sprint(flowPort)))
		return err
	}); err != nil {
		return nil, fmt.Errorf("server socket: %w", err)
	}
	if err := inNetns(client, func() (err error) {
		f.c, err = net.Dial("udp4", net.JoinHostPort(serverAddr, fmt.Sprint(flowPort)))
		return err
	}); err != nil {
		f.sc.Close()
		return nil, fmt.Errorf("client socket: %w", err)
	}
	f.done.Add(2)
	go func() {
		defer f.done.Done()
		buf := make([]byte, 64)
		for {
			n, _, err := f.sc.ReadFrom(buf)
			if err != nil {
				return
			}
			if n >= 4 {
				seq := binary.BigEndian.Uint32(buf)
				f.mu.Lock()
				if int(seq) < len(f.got) && !f.got[seq] {
					f.got[seq] = true
					f.received.Add(1)
				}
				f.mu.Unlock()
			}
		}
	}()
	go func() {
		defer f.done.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		buf := make([]byte, 64)
		for {
			select {
			case <-f.stop:
				return
			case <-t.C:
			}
			seq := f.sent.Load()
			if int(seq) >= len(f.got) {
				return
			}
			binary.BigEndian.PutUint32(buf, seq)
			if _, err := f.c.Write(buf); err == nil {
				f.sent.Add(1)
			}
		}
	}()
	return f, nil
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// finish stops sending, waits for what is in flight and returns which
// sequence numbers were lost.
func (f *flow) finish() (sent uint32, lost map[uint32]bool) {
	close(f.stop)
	waitFor(2*time.Second, func() bool { return f.received.Load() >= f.sent.Load() })
	f.c.Close()
	f.sc.Close()
	f.done.Wait()
	sent = f.sent.Load()
	lost = map[uint32]bool{}
	f.mu.Lock()
	for i := uint32(0); i < sent; i++ {
		if !f.got[i] {
			lost[i] = true
		}
	}
	f.mu.Unlock()
	return sent, lost
}

// window is the sequence numbers sent while one commit ran.
type window struct{ from, to uint32 }

func gatewayChild(n, runs int) error {
	client, server, instance := os.Getenv("CB_CLIENT_NS"), os.Getenv("CB_SERVER_NS"), os.Getenv("CB_INSTANCE")
	dir, err := os.MkdirTemp("", "bpfvpn-bench-dp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	defer os.RemoveAll(loader.InstanceDir(instance))
	defer dataplane.Detach(instance, dpInterfaces)
	comp, err := daemon.NewDataplaneComponent(slog.New(slog.DiscardHandler), instance)
	if err != nil {
		return err
	}
	base := dpConfig(n)
	t0 := time.Now()
	d, stop, err := startDaemon(dir, base, []daemon.Component{comp}, instance)
	if err != nil {
		return err
	}
	defer stop()
	attach := time.Since(t0)
	f, err := startFlow(client, server, 500*time.Microsecond)
	if err != nil {
		return err
	}
	if !waitFor(10*time.Second, func() bool { return f.received.Load() > 0 }) {
		f.finish()
		return fmt.Errorf("no datagram of the flow reached the server through the gateway")
	}
	var windows []window
	var kinds []string
	kind := "whole file"
	around := func(commit func()) {
		from := f.sent.Load()
		commit()
		windows = append(windows, window{from, f.sent.Load()})
		kinds = append(kinds, kind)
	}
	ctx := context.Background()
	profileNext = true
	whole, delta, err := func() (series, series, error) {
		// commitPair runs the whole-file commits first, then the deltas.
		count := 0
		wrapped := func(c func()) {
			if count == runs {
				kind = "load set"
			}
			count++
			around(c)
		}
		return commitPair(ctx, d, base, "trust", "untrust", "trust-untrust-0", runs, wrapped)
	}()
	sent, lost := f.finish()
	if err != nil {
		return err
	}
	inWindow := map[string][2]int{} // kind → sent, lost during commits
	var lostIn int
	for i, w := range windows {
		s := inWindow[kinds[i]]
		s[0] += int(w.to - w.from)
		for q := w.from; q < w.to; q++ {
			if lost[q] {
				s[1]++
				lostIn++
			}
		}
		inWindow[kinds[i]] = s
	}
	name := fmt.Sprintf("gateway, %d policies in %d zone pairs, real data plane", n+1, len(dpLayout))
	fmt.Println(whole.row(name, "whole file"))
	fmt.Println(delta.row(name, "load set"))
	fmt.Println()
	fmt.Printf("Flow through the gateway (one datagram per 0.5 ms, established before the first commit): %d sent, %d lost in all.\n", sent, len(lost))
	for _, k := range []string{"whole file", "load set"} {
		s := inWindow[k]
		fmt.Printf("- during the %s commits: %d datagrams sent while a commit ran, %d of them lost\n", k, s[0], s[1])
	}
	fmt.Printf("- outside commits: %d lost\n", len(lost)-lostIn)
	fmt.Printf("Daemon start (parse, attach, first full apply): %.0f ms\n", ms(attach))
	return nil
}
