package main

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/bpfvpn/bpfvpn/control/lab"
	"github.com/bpfvpn/bpfvpn/loader"
)

// gatewayConfig has zones and policies but no tunnel, so the daemon runs
// on a kernel without xfrm interfaces.
const gatewayConfig = `set system interface-map ge-0/0/0 gwt0
set interfaces ge-0/0/0 unit 0 family inet address 10.199.1.1/24
set security zones security-zone trust interfaces ge-0/0/0.0
set security zones security-zone trust host-inbound-traffic system-services ping
set security policies from-zone trust to-zone trust policy intra match source-address any
set security policies from-zone trust to-zone trust policy intra match destination-address any
set security policies from-zone trust to-zone trust policy intra match application any
set security policies from-zone trust to-zone trust policy intra then permit
`

// daemonNamespace is a fresh network namespace holding the gwt0 device that
// gatewayConfig addresses.
func daemonNamespace(t *testing.T) netns.NsHandle {
	t.Helper()
	ns, err := lab.NewAnonymous()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	err = lab.Do(ns, func() error {
		return netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "gwt0"}, PeerName: "gwt0p"})
	})
	if err != nil {
		t.Fatalf("create gwt0: %v", err)
	}
	return ns
}

type daemonProc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	sock   string
	conf   string
	done   chan error
}

// startDaemonProcess runs `bpfvpn daemon` in a new network namespace and
// waits for its READY=1 notification.
func startDaemonProcess(t *testing.T, conf string) *daemonProc {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace for the daemon")
	}
	dir := t.TempDir()
	p := &daemonProc{sock: filepath.Join(dir, "run", "bpfvpn.sock"), conf: filepath.Join(dir, "bpfvpn.conf"), stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	if err := os.WriteFile(p.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "notify"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	instance := "gwtest-" + filepath.Base(dir)
	if len(instance) > 60 {
		instance = instance[:60]
	}
	t.Cleanup(func() { os.RemoveAll(loader.InstanceDir(instance)) })
	p.cmd = exec.Command(exe, "daemon", "--config", p.conf, "--socket", p.sock, "--commit-dir", filepath.Join(dir, "commits"),
		"--log-format", "json", "--instance", instance)
	p.cmd.Env = append(os.Environ(), cliHelperEnv+"=1", "NOTIFY_SOCKET="+filepath.Join(dir, "notify"))
	p.cmd.Stderr = p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := lab.Start(daemonNamespace(t), p.cmd); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("daemon stderr:\n%s", p.stderr)
		}
	})
	notify.SetReadDeadline(time.Now().Add(60 * time.Second))
	buf := make([]byte, 4096)
	n, err := notify.Read(buf)
	if err != nil {
		t.Fatalf("no readiness notification: %v\n%s", err, p.stderr)
	}
	if !strings.HasPrefix(string(buf[:n]), "READY=1\n") {
		t.Fatalf("notification %q", buf[:n])
	}
	return p
}

func (p *daemonProc) cli(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := execute(append(args, "--socket", p.sock), &out, &errOut)
	return out.String(), errOut.String(), code
}

func (p *daemonProc) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(60 * time.Second):
		t.Fatal("daemon did not exit")
		return nil
	}
}

func TestDaemonProcessCommitRollbackSignals(t *testing.T) {
	p := startDaemonProcess(t, gatewayConfig)
	if fi, err := os.Stat(p.sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("control socket: %v %v", fi, err)
	}

	bad := filepath.Join(t.TempDir(), "bad.conf")
	os.WriteFile(bad, []byte(gatewayConfig+"set security zones security-zone trust interfaces ge-0/0/9.0\n"), 0o600)
	for _, args := range [][]string{{"commit", "check", bad}, {"commit", bad}} {
		out, errOut, code := p.cli(t, args...)
		if code != 1 || !strings.Contains(errOut, bad+":9:") || strings.Contains(out, "commit complete") {
			t.Fatalf("%v: code %d\nstdout %s\nstderr %s", args, code, out, errOut)
		}
	}

	next := filepath.Join(t.TempDir(), "next.conf")
	os.WriteFile(next, []byte(gatewayConfig+"set security policies from-zone trust to-zone trust policy intra then count\n"), 0o600)
	out, errOut, code := p.cli(t, "commit", "check", next)
	if code != 0 || !strings.Contains(out, "configuration check succeeds") {
		t.Fatalf("commit check: %d %s %s", code, out, errOut)
	}
	out, errOut, code = p.cli(t, "commit", next, "-m", "count intra")
	if code != 0 || !strings.Contains(out, "~ security policies from-zone trust to-zone trust policy intra") || !strings.Contains(out, "commit complete") {
		t.Fatalf("commit: %d %s %s", code, out, errOut)
	}
	out, _, code = p.cli(t, "rollback")
	if code != 0 || !strings.Contains(out, "0   ") || !strings.Contains(out, "(count intra)") || !strings.Contains(out, "1   ") {
		t.Fatalf("rollback list: %d %s", code, out)
	}
	out, errOut, code = p.cli(t, "rollback", "1")
	if code != 0 || !strings.Contains(out, "commit complete") {
		t.Fatalf("rollback 1: %d %s %s", code, out, errOut)
	}
	if data, _ := os.ReadFile(p.conf); string(data) != gatewayConfig {
		t.Fatalf("configuration file after rollback:\n%s", data)
	}

	// SIGHUP commits the edited file.
	os.WriteFile(p.conf, []byte(gatewayConfig+"set security policies from-zone trust to-zone trust policy intra then log session-init\n"), 0o600)
	p.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(p.stderr.String(), `"msg":"reload complete"`) {
		if time.Now().After(deadline) {
			t.Fatal("no reload after SIGHUP")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// SIGTERM: clean exit, status 0.
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.wait(t); err != nil {
		t.Fatalf("daemon exit: %v", err)
	}
	sc := bufio.NewScanner(strings.NewReader(p.stderr.String()))
	for sc.Scan() {
		if !strings.HasPrefix(sc.Text(), "{") {
			t.Errorf("non-JSON log line: %q", sc.Text())
		}
	}
	if _, _, code := p.cli(t, "rollback"); code == 0 {
		t.Error("CLI succeeded with the daemon stopped")
	}
}

func TestDaemonFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := execute([]string{"daemon"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "--config") {
		t.Fatalf("daemon without --config: %d %q", code, errOut.String())
	}
	if code := execute([]string{"daemon", "--config", "x", "--log-format", "xml"}, &out, &errOut); code != 2 {
		t.Fatalf("bad --log-format: %d", code)
	}
	if code := execute([]string{"rollback", "x"}, &out, &errOut); code != 2 {
		t.Fatalf("rollback x: %d", code)
	}
}
