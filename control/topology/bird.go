package topology

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/vishvananda/netns"

	"github.com/bpfvpn/bpfvpn/control/lab"
)

// Bird is one BIRD 2 routing daemon running in the foreground inside a
// network namespace, with its configuration, control socket and pid file in
// a private directory (several run on one machine at once).
type Bird struct {
	Dir    string
	Socket string
	cmd    *exec.Cmd
	exited chan error
}

// BirdBinary and BirdcBinary are Debian bird2's programs.
var (
	BirdBinary  = "bird"
	BirdcBinary = "birdc"
)

// StartBird writes conf into dir and starts `bird -f` inside ns. It returns
// once the control socket answers (or an error when bird exits or ctx ends).
func StartBird(ctx context.Context, ns netns.NsHandle, dir, conf string) (*Bird, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("bird directory: %w", err)
	}
	b := &Bird{Dir: dir, Socket: filepath.Join(dir, "bird.ctl"), exited: make(chan error, 1)}
	confPath := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return nil, fmt.Errorf("write bird configuration: %w", err)
	}
	logf, err := os.Create(filepath.Join(dir, "bird.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	b.cmd = exec.Command(BirdBinary, "-f", "-c", confPath, "-s", b.Socket, "-P", filepath.Join(dir, "bird.pid"))
	b.cmd.Stdout, b.cmd.Stderr = logf, logf
	if err := lab.Start(ns, b.cmd); err != nil {
		return nil, fmt.Errorf("start bird: %w", err)
	}
	go func() { b.exited <- b.cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := b.Command(ctx, "show", "status"); err == nil {
			return b, nil
		} else if time.Now().After(deadline) {
			b.Stop()
			return nil, fmt.Errorf("bird control socket %s: %w", b.Socket, err)
		}
		select {
		case err := <-b.exited:
			log, _ := os.ReadFile(filepath.Join(dir, "bird.log"))
			return nil, fmt.Errorf("bird exited: %v\n%s", err, log)
		case <-ctx.Done():
			b.Stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Command runs one birdc command and returns its output.
func (b *Bird) Command(ctx context.Context, words ...string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, BirdcBinary, append([]string{"-s", b.Socket}, words...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("birdc %s: %w: %s", strings.Join(words, " "), err, out)
	}
	return string(out), nil
}

var bgpStateRE = regexp.MustCompile(`(?m)^\s*BGP state:\s+(\S+)`)

// BGPState returns the BGP state of protocol name (Idle, Connect, Active,
// OpenSent, OpenConfirm, Established).
func (b *Bird) BGPState(ctx context.Context, name string) (string, error) {
	out, err := b.Command(ctx, "show", "protocols", "all", name)
	if err != nil {
		return "", err
	}
	m := bgpStateRE.FindStringSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("no BGP state for %s in:\n%s", name, out)
	}
	return m[1], nil
}

// Stop kills bird and waits for it (bounded).
func (b *Bird) Stop() {
	if b.cmd == nil || b.cmd.Process == nil {
		return
	}
	b.cmd.Process.Kill()
	select {
	case <-b.exited:
	case <-time.After(5 * time.Second):
	}
}

// BGPPeer describes one side of an eBGP session between st0 addresses.
type BGPPeer struct {
	RouterID  string
	LocalAddr string
	LocalAS   int
	PeerAddr  string
	PeerAS    int
	// Originate are static routes (prefix → next hop) BIRD announces and
	// installs in the kernel.
	Originate map[string]string
}

// BGPProtocol is the name of the BGP protocol in BirdConfig.
const BGPProtocol = "st0peer"

// BirdConfig returns a BIRD 2 configuration for p: one eBGP session with
// short retry timers, static routes originated, and BGP and static routes
// exported to the kernel (BIRD's own route protocol, not bpfvpn's 246).
func BirdConfig(p BGPPeer) string {
	var b strings.Builder
	fmt.Fprintf(&b, "router id %s;\n", p.RouterID)
	b.WriteString("protocol device { scan time 1; }\n")
	b.WriteString("protocol kernel { ipv4 { import none; export where source ~ [ RTS_STATIC, RTS_BGP ]; }; }\n")
	if len(p.Originate) > 0 {
		b.WriteString("protocol static originated { ipv4;\n")
		for prefix, via := range p.Originate {
			fmt.Fprintf(&b, "  route %s via %s;\n", prefix, via)
		}
		b.WriteString("}\n")
	}
	fmt.Fprintf(&b, `protocol bgp %s {
  local %s as %d;
  neighbor %s as %d;
  connect retry time 1;
  error wait time 1, 4;
  hold time 9;
  ipv4 { import all; export where source = RTS_STATIC; };
}
`, BGPProtocol, p.LocalAddr, p.LocalAS, p.PeerAddr, p.PeerAS)
	return b.String()
}
