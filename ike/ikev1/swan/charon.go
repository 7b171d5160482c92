// Package swan runs a private strongSwan charon for interoperability tests
// and benchmarks of the IKEv1 engine: its own strongswan.conf, VICI socket,
// ports and (through a private mount namespace) its own /run, so it never
// touches a system charon or another test's.
//
// It is separate from ike/interop on purpose: this charon runs in the
// caller's network namespace with kernel-netlink and the crypto plugins the
// IKEv1 suites need (no kernel-libipsec, so its tests run where
// libcharon-extra-plugins is missing), logs with timestamps and, with
// LogKeys, the CHILD SA keys its key-comparison test parses, and keeps its
// own retransmission settings; ike/interop's charon runs in a named
// namespace with kernel-libipsec and benchmark limits. One harness would
// need all of these as options and change what the existing tests run.
package swan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// CharonPath is Debian's charon binary.
const CharonPath = "/usr/lib/ipsec/charon"

// Available reports why charon cannot run here, or nil.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("charon needs root")
	}
	for _, p := range []string{CharonPath, "/usr/sbin/swanctl", "/usr/bin/unshare"} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return nil
}

// Options configure one charon.
type Options struct {
	// Dir is a private directory for the configuration, the log and the
	// VICI socket.
	Dir string
	// Port and NATTPort are charon's IKE ports.
	Port, NATTPort int
	// Debug raises the IKE log level.
	Debug bool
	// Threads is charon's worker thread count (0: default 16).
	Threads int
	// LogKeys logs CHILD SA keys (level 4 of the CHD group) so that tests
	// can compare key material with charon's. Test use only.
	LogKeys bool
	// Extra is appended inside the charon { } section.
	Extra string
}

// Charon is a running charon.
type Charon struct {
	opts Options
	cmd  *exec.Cmd
	done chan error
	URI  string
	Log  string
}

func (o Options) conf() string {
	lvl := 1
	if o.Debug {
		lvl = 2
	}
	threads := ""
	if o.Threads > 0 {
		threads = fmt.Sprintf("\tthreads = %d\n", o.Threads)
	}
	return fmt.Sprintf(`charon {
	load_modular = no
	load = random nonce openssl aes sha1 sha2 hmac gmp kernel-netlink socket-default vici
	port = %d
	port_nat_t = %d
	install_routes = no
	install_virtual_ip = no
	retransmit_base = 1.4
	retransmit_timeout = 2.0
	retransmit_tries = 4
%s	plugins {
		vici {
			socket = unix://%s
		}
	}
	filelog {
		log {
			path = %s
			time_format = %%T
			flush_line = yes
			default = %d
			ike = %d
			cfg = %d
			enc = %d
			net = %d
			chd = %d
		}
	}
	syslog {
		daemon {
			default = -1
		}
	}
%s
}
`, o.Port, o.NATTPort, threads, filepath.Join(o.Dir, "charon.vici"), filepath.Join(o.Dir, "charon.log"), lvl, lvl, lvl, lvl, lvl, o.chdLevel(), o.Extra)
}

// Start writes the configuration and starts charon in a private mount
// namespace (so its PID file in /run is private), then waits for VICI.
func Start(ctx context.Context, o Options) (*Charon, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	conf := filepath.Join(o.Dir, "strongswan.conf")
	if err := os.WriteFile(conf, []byte(o.conf()), 0o600); err != nil {
		return nil, fmt.Errorf("charon config: %w", err)
	}
	c := &Charon{opts: o, URI: "unix://" + filepath.Join(o.Dir, "charon.vici"), Log: filepath.Join(o.Dir, "charon.log"), done: make(chan error, 1)}
	script := "mount -t tmpfs tmpfs /run && exec " + CharonPath
	c.cmd = exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	c.cmd.Env = append(os.Environ(), "STRONGSWAN_CONF="+conf)
	out, err := os.Create(filepath.Join(o.Dir, "charon.out"))
	if err != nil {
		return nil, err
	}
	c.cmd.Stdout, c.cmd.Stderr = out, out
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := c.cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start charon: %w", err)
	}
	go func() { c.done <- c.cmd.Wait(); out.Close() }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := c.Swanctl(ctx, "--stats"); err == nil {
			return c, nil
		}
		select {
		case err := <-c.done:
			b, _ := os.ReadFile(filepath.Join(o.Dir, "charon.out"))
			return nil, fmt.Errorf("charon exited: %v: %s", err, tail(b, 2000))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.Stop()
			return nil, errors.New("charon: VICI socket not ready after 15 s")
		}
	}
}

// Swanctl runs swanctl against this charon.
func (c *Charon) Swanctl(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	args = append(args, "--uri", c.URI)
	cmd := exec.CommandContext(ctx, "swanctl", args...)
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	err := cmd.Run()
	if err != nil {
		return b.String(), fmt.Errorf("swanctl %s: %w: %s", strings.Join(args, " "), err, tail(b.Bytes(), 1000))
	}
	return b.String(), nil
}

// Load writes swanctl.conf with the given text and loads it.
func (c *Charon) Load(ctx context.Context, swanctlConf string) error {
	f := filepath.Join(c.opts.Dir, "swanctl.conf")
	if err := os.WriteFile(f, []byte(swanctlConf), 0o600); err != nil {
		return err
	}
	_, err := c.Swanctl(ctx, "--load-all", "--noprompt", "--file", f)
	return err
}

// LogTail returns the end of charon's log (for test failure messages).
func (c *Charon) LogTail(n int) string {
	b, _ := os.ReadFile(c.Log)
	return tail(b, n)
}

// Stop terminates charon and waits for it.
func (c *Charon) Stop() {
	if c.cmd.Process == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// Port is charon's IKE port.
func (c *Charon) Port() int { return c.opts.Port }

func (o Options) chdLevel() int {
	if o.LogKeys {
		return 4
	}
	if o.Debug {
		return 2
	}
	return 1
}
