package vm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Config describes one boot.
type Config struct {
	Kernel    *Kernel
	RunScript string        // sh script run in the guest; see CommandScript
	Binds     []string      // host directories under /tmp or /run to keep visible; see BindsFor
	Memory    string        // qemu -m, default "2G"
	CPUs      int           // qemu -smp, default 2
	Accel     string        // qemu -accel, default DefaultAccel
	CPU       string        // qemu -cpu, default "max"
	Timeout   time.Duration // whole boot, default 10m
	Output    io.Writer     // the script's stdout+stderr, streamed
	Console   io.Writer     // if set, the kernel console is streamed here too
}

// Result is the outcome of a boot that ran its command.
type Result struct {
	ExitCode      int
	BootToCommand time.Duration // qemu start until the command started
	Total         time.Duration // qemu start until qemu exited
}

// GuestError is a boot that did not report an exit code: a panic, a hang,
// an init failure. Log holds the tail of the kernel console.
type GuestError struct {
	Reason string
	Log    string
}

func (e *GuestError) Error() string {
	return fmt.Sprintf("%s\n--- kernel log tail ---\n%s\n--- end of kernel log ---", e.Reason, e.Log)
}

const consoleTailLines = 60

// DefaultAccel is single-threaded TCG: KVM fails on the build machine, and
// multi-threaded TCG once killed 6.12 early with "Oops: int3" while the
// kernel patched its own code (text_poke) under another running vCPU.
const DefaultAccel = "tcg,thread=single"

// Run boots cfg.Kernel with cfg.RunScript and returns the script's exit code.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Memory == "" {
		cfg.Memory = "2G"
	}
	if cfg.CPUs == 0 {
		cfg.CPUs = 2
	}
	if cfg.Accel == "" {
		cfg.Accel = DefaultAccel
	}
	if cfg.CPU == "" {
		cfg.CPU = "max"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Minute
	}
	if cfg.Output == nil {
		cfg.Output = io.Discard
	}
	tmp, err := os.MkdirTemp("", "vmrun-")
	if err != nil {
		return nil, fmt.Errorf("vm run: %w", err)
	}
	defer os.RemoveAll(tmp)
	initrd := filepath.Join(tmp, "initramfs.cpio")
	f, err := os.Create(initrd)
	if err != nil {
		return nil, fmt.Errorf("vm run: %w", err)
	}
	err = WriteInitramfs(f, cfg.Kernel, cfg.RunScript, cfg.Binds)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("vm run %s: %w", cfg.Kernel.Package, err)
	}

	// Three ISA serial ports, each a pipe passed to qemu as fd 3, 4, 5:
	// ttyS0 kernel console, ttyS1 command output, ttyS2 status lines.
	var readers, writers [3]*os.File
	for i := range readers {
		if readers[i], writers[i], err = os.Pipe(); err != nil {
			return nil, fmt.Errorf("vm run: %w", err)
		}
		defer readers[i].Close()
		defer writers[i].Close()
	}
	runCtx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	cmd := exec.CommandContext(runCtx, "qemu-system-x86_64", qemuArgs(cfg, initrd)...)
	cmd.ExtraFiles = writers[:]
	var qemuErr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &qemuErr, &qemuErr
	cmd.WaitDelay = 5 * time.Second

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("vm run: start qemu: %w", err)
	}
	for _, w := range writers {
		w.Close()
	}

	console := &tailBuffer{max: 256 << 10}
	var consoleW io.Writer = console
	if cfg.Console != nil {
		consoleW = io.MultiWriter(console, cfg.Console)
	}
	var st status
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); io.Copy(consoleW, readers[0]) }()
	go func() { defer wg.Done(); io.Copy(cfg.Output, readers[1]) }()
	exited := make(chan struct{})
	st.onExit = func() { close(exited) }
	go func() { defer wg.Done(); st.read(readers[2], start) }()
	go func() {
		// The exit code is in; a guest that then fails to power off is
		// stopped rather than left to the timeout.
		select {
		case <-exited:
		case <-runCtx.Done():
			return
		}
		select {
		case <-time.After(powerOffGrace):
			cancel()
		case <-runCtx.Done():
		}
	}()
	waitErr := cmd.Wait()
	total := time.Since(start)
	wg.Wait()

	tail := console.Tail(consoleTailLines)
	switch {
	case st.exited:
		return &Result{ExitCode: st.code, BootToCommand: st.started, Total: total}, nil
	case st.initErr != "":
		return nil, &GuestError{Reason: fmt.Sprintf("guest %s init failed: %s", cfg.Kernel.Series, st.initErr), Log: tail}
	case errors.Is(runCtx.Err(), context.DeadlineExceeded):
		return nil, &GuestError{Reason: fmt.Sprintf("guest %s timed out after %s (raise -timeout?)", cfg.Kernel.Series, cfg.Timeout), Log: tail}
	case ctx.Err() != nil:
		return nil, fmt.Errorf("vm run %s: %w", cfg.Kernel.Series, ctx.Err())
	case strings.Contains(console.String(), "Kernel panic"):
		return nil, &GuestError{Reason: fmt.Sprintf("guest %s kernel panicked", cfg.Kernel.Series), Log: tail}
	default:
		return nil, &GuestError{
			Reason: fmt.Sprintf("guest %s stopped without reporting an exit code (qemu: %v) %s",
				cfg.Kernel.Series, waitErr, strings.TrimSpace(qemuErr.String())),
			Log: tail,
		}
	}
}

func qemuArgs(cfg Config, initrd string) []string {
	// loglevel=5 keeps the boot quiet but prints warnings, oopses and the
	// init's progress lines; the whole log goes to Console when set.
	// no_timer_check: under TCG on a loaded host the IO-APIC timer check
	// sees too few ticks and panics ("IO-APIC + timer doesn't work").
	loglevel := "loglevel=5"
	if cfg.Console != nil {
		loglevel = "loglevel=7"
	}
	appendLine := strings.Join([]string{
		"console=ttyS0", loglevel, "panic=-1", "rdinit=/init",
		"8250.nr_uarts=4", "no_timer_check", "random.trust_cpu=on", "mitigations=off", "cryptomgr.notests=1",
	}, " ")
	return []string{
		"-accel", cfg.Accel, "-cpu", cfg.CPU,
		"-smp", strconv.Itoa(cfg.CPUs), "-m", cfg.Memory,
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-kernel", cfg.Kernel.Image(), "-initrd", initrd, "-append", appendLine,
		"-chardev", "file,id=console,path=/dev/fd/3", "-serial", "chardev:console",
		"-chardev", "file,id=output,path=/dev/fd/4", "-serial", "chardev:output",
		"-chardev", "file,id=status,path=/dev/fd/5", "-serial", "chardev:status",
		"-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
	}
}

// powerOffGrace is how long qemu may take to exit after the guest reported
// the exit code.
const powerOffGrace = 15 * time.Second

// status collects the guest's status lines.
type status struct {
	started time.Duration
	exited  bool
	code    int
	initErr string
	onExit  func() // called once when the exit line arrives
}

func (s *status) read(r io.Reader, start time.Time) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == statusStart:
			s.started = time.Since(start)
		case strings.HasPrefix(line, statusExit):
			if n, err := strconv.Atoi(strings.TrimPrefix(line, statusExit)); err == nil && !s.exited {
				s.exited, s.code = true, n
				if s.onExit != nil {
					s.onExit()
				}
			}
		case strings.HasPrefix(line, statusError):
			s.initErr = strings.TrimPrefix(line, statusError)
		}
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// Tail returns the last n lines, without carriage returns.
func (t *tailBuffer) Tail(n int) string {
	s := strings.ReplaceAll(t.String(), "\r", "")
	return lastLines([]byte(s), n)
}
