// Package labrun runs the two-site reference lab with bpfvpn gateways: it
// builds the topology of control/lab in network namespaces, writes the SRX1
// and SRX2 configurations, starts one `bpfvpn daemon` inside each gateway's
// namespace, waits for the tunnel while showing progress, pings Host1 →
// Host2 and runs the verification commands of the reference (§4) on SRX1.
//
// State lives in Dir (/run/bpfvpn/lab/PREFIX by default): the two
// configurations, the daemons' control sockets, commit stores, logs and pid
// files. The daemons keep running after Up returns; Down stops them and
// removes the namespaces.
package labrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netns"

	"github.com/bpfvpn/bpfvpn/control/api"
	"github.com/bpfvpn/bpfvpn/control/daemon"
	"github.com/bpfvpn/bpfvpn/control/lab"
	"github.com/bpfvpn/bpfvpn/ike/interop"
	"github.com/bpfvpn/bpfvpn/loader"
)

// ReadyTimeout bounds a daemon's start (its first apply loads and verifies
// the BPF programs: tens of seconds in a TCG VM).
const ReadyTimeout = 3 * time.Minute

// Gateways are the two gateway nodes, SRX1 first.
var Gateways = []string{lab.SRX1, lab.SRX2}

// Host addresses pinged across the tunnel.
var (
	Host1Addr = netip.MustParseAddr("10.100.11.2")
	Host2Addr = netip.MustParseAddr("10.100.22.2")
)

// VerificationCommands are the operational commands of reference §4 run on
// SRX1 after the ping (the ping is the third step of the guide).
var VerificationCommands = [][]string{
	{"show", "security", "ike", "security-associations"},
	{"show", "security", "ipsec", "security-associations"},
	{"show", "security", "ipsec", "statistics"},
}

// Options configure a lab run.
type Options struct {
	// Prefix names the namespaces ("" = lab.DefaultPrefix).
	Prefix string
	// Dir holds the lab's files ("" = /run/bpfvpn/lab/<prefix>).
	Dir string
	// Exe is the bpfvpn binary the daemons run ("" = this executable).
	Exe string
	// Env is added to the daemons' environment.
	Env []string
	// NoDataplane runs the gateways without the eBPF data plane.
	NoDataplane bool
	// Config varies the generated gateway configurations (IKE version, PSK).
	Config lab.ConfigOptions
	// SRX2 selects what plays SRX2: a bpfvpn daemon (PeerBpfvpn, the
	// default) or strongSwan's charon (PeerStrongSwan).
	SRX2 Peer
	// ExtraConfig holds configuration lines appended to a gateway's
	// reference configuration, by gateway.
	ExtraConfig map[string]string
	// NoWait names VPNs WaitTunnel does not wait for (on-traffic tunnels
	// of ExtraConfig that a test brings up itself).
	NoWait []string
	// TunnelTimeout bounds the wait for the tunnel (0 = 60 s).
	TunnelTimeout time.Duration
	// Out receives the progress display and the verification output.
	Out io.Writer
}

// Run is one lab.
type Run struct {
	opts   Options
	lab    *lab.Lab
	start  time.Time
	charon *interop.Charon // SRX2 when opts.SRX2 is PeerStrongSwan
}

// New returns the lab described by opts.
func New(opts Options) *Run {
	l := lab.New(opts.Prefix)
	l.UnaddressedGateways = true
	if opts.Dir == "" {
		opts.Dir = filepath.Join("/run/bpfvpn/lab", strings.TrimSuffix(l.Prefix, "-"))
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.TunnelTimeout == 0 {
		opts.TunnelTimeout = 60 * time.Second
	}
	return &Run{opts: opts, lab: l, start: time.Now()}
}

// Lab returns the topology.
func (r *Run) Lab() *lab.Lab { return r.lab }

// Dir returns the lab's state directory.
func (r *Run) Dir() string { return r.opts.Dir }

// ConfigPath, Socket, LogPath and pidPath name a gateway's files.
func (r *Run) ConfigPath(gw string) string { return filepath.Join(r.opts.Dir, gw+".conf") }
func (r *Run) Socket(gw string) string     { return filepath.Join(r.opts.Dir, gw+".sock") }
func (r *Run) LogPath(gw string) string    { return filepath.Join(r.opts.Dir, gw+".log") }
func (r *Run) pidPath(gw string) string    { return filepath.Join(r.opts.Dir, gw+".pid") }

func (r *Run) step(format string, args ...any) {
	fmt.Fprintf(r.opts.Out, "[%5.1fs] %s\n", time.Since(r.start).Seconds(), fmt.Sprintf(format, args...))
}

// Up builds the lab, starts the gateways and waits for the tunnel. With
// verify it then pings Host1 → Host2 and prints the verification commands.
func (r *Run) Up(ctx context.Context, verify bool) error {
	r.start = time.Now()
	if err := os.MkdirAll(r.opts.Dir, 0o700); err != nil {
		return fmt.Errorf("lab directory: %w", err)
	}
	if err := r.lab.Up(); err != nil {
		return err
	}
	r.step("topology up: %s", strings.Join(r.namespaces(), ", "))
	if err := r.WriteConfigs(); err != nil {
		return err
	}
	r.step("configurations written: %s, %s", r.ConfigPath(lab.SRX1), r.ConfigPath(lab.SRX2))
	if r.opts.SRX2 == PeerStrongSwan {
		if err := r.startCharon(); err != nil {
			return err
		}
	}
	for _, gw := range r.daemonGateways() {
		pid, err := r.startDaemon(ctx, gw)
		if err != nil {
			return err
		}
		r.step("%s: bpfvpn daemon ready (pid %d, socket %s)", gw, pid, r.Socket(gw))
	}
	if err := r.WaitTunnel(ctx, r.opts.TunnelTimeout); err != nil {
		return err
	}
	if !verify {
		return nil
	}
	if err := r.Ping(ctx, 3); err != nil {
		return err
	}
	return r.Verify(ctx, r.opts.Out)
}

// WriteConfigs writes the SRX1 and SRX2 configurations into Dir (mode 0600:
// they hold the pre-shared key).
func (r *Run) WriteConfigs() error {
	if err := os.MkdirAll(r.opts.Dir, 0o700); err != nil {
		return fmt.Errorf("lab directory: %w", err)
	}
	for _, gw := range Gateways {
		text, err := lab.Config(gw, r.opts.Config)
		if err != nil {
			return err
		}
		text += r.opts.ExtraConfig[gw]
		if err := os.WriteFile(r.ConfigPath(gw), []byte(text), 0o600); err != nil {
			return fmt.Errorf("write %s configuration: %w", gw, err)
		}
	}
	return nil
}

func (r *Run) namespaces() []string {
	var out []string
	for _, n := range lab.Nodes {
		out = append(out, r.lab.Namespace(n))
	}
	return out
}

// running returns the pid of gw's daemon if it is alive.
func (r *Run) running(gw string) (int, bool) {
	data, err := os.ReadFile(r.pidPath(gw))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	if err := syscall.Kill(pid, 0); err != nil {
		return 0, false
	}
	// A recycled pid is not our daemon: check its command line names our
	// configuration.
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), r.ConfigPath(gw)) {
		return 0, false
	}
	return pid, true
}

// startDaemon starts gw's daemon in its namespace (unless it runs) and
// waits for its READY=1.
func (r *Run) startDaemon(ctx context.Context, gw string) (int, error) {
	if pid, ok := r.running(gw); ok {
		return pid, nil
	}
	exe := r.opts.Exe
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return 0, err
		}
	}
	notifyPath := filepath.Join(r.opts.Dir, gw+".notify")
	os.Remove(notifyPath)
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		return 0, fmt.Errorf("%s: readiness socket: %w", gw, err)
	}
	defer os.Remove(notifyPath)
	defer notify.Close()
	logf, err := os.OpenFile(r.LogPath(gw), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	cmd := exec.Command(exe, "daemon", "--config", r.ConfigPath(gw), "--socket", r.Socket(gw),
		"--commit-dir", filepath.Join(r.opts.Dir, gw+"-commits"), fmt.Sprintf("--dataplane=%t", !r.opts.NoDataplane))
	cmd.Env = append(append(os.Environ(), r.opts.Env...), daemon.NotifySocketEnv+"="+notifyPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own session: the daemon outlives `bpfvpn lab up`.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	ns, err := netns.GetFromName(r.lab.Namespace(gw))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", gw, err)
	}
	defer ns.Close()
	if err := lab.Start(ns, cmd); err != nil {
		return 0, fmt.Errorf("%s: start daemon: %w", gw, err)
	}
	pid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if err := os.WriteFile(r.pidPath(gw), []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
		return 0, err
	}
	ready := make(chan error, 1)
	go func() {
		notify.SetReadDeadline(time.Now().Add(ReadyTimeout))
		buf := make([]byte, 4096)
		for {
			n, err := notify.Read(buf)
			if err != nil {
				ready <- err
				return
			}
			if strings.Contains(string(buf[:n]), "READY=1") {
				ready <- nil
				return
			}
		}
	}()
	select {
	case err := <-ready:
		if err != nil {
			return 0, fmt.Errorf("%s: daemon not ready: %w (log: %s)", gw, err, r.LogPath(gw))
		}
	case err := <-exited:
		return 0, fmt.Errorf("%s: daemon exited: %v (log: %s)\n%s", gw, err, r.LogPath(gw), tail(r.LogPath(gw), 20))
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	cmd.Process.Release()
	return pid, nil
}

func tail(path string, n int) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Status asks gw's daemon for its status.
func (r *Run) Status(ctx context.Context, gw string) (daemon.Status, error) {
	resp, err := api.NewClient(r.Socket(gw)).Do(ctx, api.Request{Verb: daemon.VerbStatus})
	if err != nil {
		return daemon.Status{}, err
	}
	var st daemon.Status
	if err := json.Unmarshal(resp.Result, &st); err != nil {
		return st, fmt.Errorf("decode status: %w", err)
	}
	return st, nil
}

// WaitTunnel waits until both gateways report every tunnel up, printing
// each change of state.
func (r *Run) WaitTunnel(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := map[string]string{}
	for {
		allUp := true
		if r.charon != nil {
			state, up := r.charonState()
			allUp = up
			if last[lab.SRX2] != state {
				r.step("%s: %s", lab.SRX2, state)
				last[lab.SRX2] = state
			}
		}
		for _, gw := range r.daemonGateways() {
			qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			st, err := r.Status(qctx, gw)
			cancel()
			state := ""
			switch {
			case err != nil:
				state = "no answer: " + err.Error()
				allUp = false
			case len(st.Tunnels) == 0:
				state = "no tunnel configured"
				allUp = false
			default:
				var parts []string
				for _, t := range st.Tunnels {
					if slices.Contains(r.opts.NoWait, t.VPN) {
						continue
					}
					s := fmt.Sprintf("%s (%s, IKEv%d) %s", t.VPN, t.Interface, t.Version, t.State)
					if t.LastError != "" {
						s += ": " + t.LastError
					}
					parts = append(parts, s)
					allUp = allUp && t.Up
				}
				state = strings.Join(parts, "; ")
				if st.ApplyError != "" {
					state += " [apply: " + st.ApplyError + "]"
				}
			}
			if last[gw] != state {
				r.step("%s: %s", gw, state)
				last[gw] = state
			}
		}
		if allUp {
			r.step("tunnel up on both gateways")
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("tunnel not up after %v (logs: %s, %s)", timeout, r.LogPath(lab.SRX1), r.LogPath(lab.SRX2))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Ping sends count echo requests from Host1 to Host2 and fails unless all
// are answered.
func (r *Run) Ping(ctx context.Context, count int) error {
	return r.PingFrom(ctx, lab.Host1, Host2Addr, count)
}

// PingFrom sends count echo requests from node to dst and fails unless all
// are answered.
func (r *Run) PingFrom(ctx context.Context, node string, dst netip.Addr, count int) error {
	ns, err := netns.GetFromName(r.lab.Namespace(node))
	if err != nil {
		return fmt.Errorf("ping: node %s: %w", node, err)
	}
	defer ns.Close()
	st, err := lab.Ping(ns, dst, count, 200*time.Millisecond, 5*time.Second)
	if err != nil {
		return fmt.Errorf("ping %s from %s: %w", dst, node, err)
	}
	r.step("ping %s → %s: %s", node, dst, st)
	if st.Received != count {
		return fmt.Errorf("ping %s → %s: %s", node, dst, st)
	}
	return nil
}

// Verify prints the verification commands of the reference and their
// output on SRX1.
func (r *Run) Verify(ctx context.Context, w io.Writer) error {
	c := api.NewClient(r.Socket(lab.SRX1))
	for _, words := range VerificationCommands {
		out, err := c.Op(ctx, words, false)
		if err != nil {
			return fmt.Errorf("%s: %w", strings.Join(words, " "), err)
		}
		fmt.Fprintf(w, "\nsrx1> %s\n%s", strings.Join(words, " "), out)
		if !strings.HasSuffix(out, "\n") && out != "" {
			fmt.Fprintln(w)
		}
	}
	return nil
}

// Down stops the gateways' daemons (SIGTERM, then SIGKILL), removes the
// namespaces and the lab's directory.
func (r *Run) Down(ctx context.Context) error {
	var errs []error
	if r.charon != nil {
		r.charon.Stop()
		r.charon = nil
	}
	for _, gw := range Gateways {
		pid, ok := r.running(gw)
		if !ok {
			continue
		}
		syscall.Kill(pid, syscall.SIGTERM)
		deadline := time.Now().Add(10 * time.Second)
		for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if syscall.Kill(pid, 0) == nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if err := r.lab.Down(); err != nil {
		errs = append(errs, err)
	}
	// The gateways' data planes were pinned under their namespaces' names.
	for _, gw := range Gateways {
		if err := os.RemoveAll(loader.InstanceDir(r.lab.Namespace(gw))); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(r.opts.Dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Running reports the pids of the gateways' daemons that run.
func (r *Run) Running() map[string]int {
	out := map[string]int{}
	for _, gw := range r.daemonGateways() {
		if pid, ok := r.running(gw); ok {
			out[gw] = pid
		}
	}
	return out
}
