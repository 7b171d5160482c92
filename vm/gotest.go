package vm

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// TestPackage is a Go package with TestVM… tests and its compiled test binary.
type TestPackage struct {
	ImportPath string
	Name       string
	Dir        string
	Binary     string // set by BuildTestBinaries
	BuildErr   string // set by BuildTestBinaries when the package did not build
}

var testVMFunc = regexp.MustCompile(`(?m)^func TestVM\w*\(`)

// HasVMTest reports whether Go source src declares a TestVM… function.
func HasVMTest(src []byte) bool { return testVMFunc.Match(src) }

// FindVMTestPackages lists the packages matching pattern (go list syntax)
// whose _test.go files declare a TestVM… function.
func FindVMTestPackages(ctx context.Context, dir, pattern string) ([]TestPackage, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-e", "-f",
		`{{.ImportPath}}{{"\t"}}{{.Name}}{{"\t"}}{{.Dir}}{{"\t"}}{{join .TestGoFiles ","}},{{join .XTestGoFiles ","}}`, pattern)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list %s: %w: %s", pattern, err, strings.TrimSpace(stderr.String()))
	}
	var pkgs []TestPackage
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			continue
		}
		p := TestPackage{ImportPath: f[0], Name: f[1], Dir: f[2]}
		for _, file := range strings.Split(f[3], ",") {
			if file == "" {
				continue
			}
			src, err := os.ReadFile(filepath.Join(p.Dir, file))
			if err != nil {
				return nil, fmt.Errorf("find TestVM in %s: %w", p.ImportPath, err)
			}
			if HasVMTest(src) {
				pkgs = append(pkgs, p)
				break
			}
		}
	}
	return pkgs, nil
}

// BuildTestBinaries compiles the test binary of every package into outDir
// with `go test -c`, one go invocation per group of distinct package names.
// When a group fails, its packages are built one by one so that one broken
// package does not hide the others: each gets Binary or BuildErr.
func BuildTestBinaries(ctx context.Context, dir, outDir string, pkgs []TestPackage) error {
	seen := map[string]int{}
	var rounds [][]int
	for i := range pkgs {
		r := seen[pkgs[i].Name]
		seen[pkgs[i].Name]++
		if r == len(rounds) {
			rounds = append(rounds, nil)
		}
		rounds[r] = append(rounds[r], i)
	}
	for r, idxs := range rounds {
		out := filepath.Join(outDir, strconv.Itoa(r))
		if err := os.MkdirAll(out, 0o755); err != nil {
			return err
		}
		var paths []string
		for _, i := range idxs {
			paths = append(paths, pkgs[i].ImportPath)
		}
		if goTestC(ctx, dir, out, paths...) == nil {
			for _, i := range idxs {
				pkgs[i].Binary = filepath.Join(out, pkgs[i].Name+".test")
			}
			continue
		}
		for _, i := range idxs {
			if err := goTestC(ctx, dir, out, pkgs[i].ImportPath); err != nil {
				pkgs[i].BuildErr = err.Error()
				continue
			}
			pkgs[i].Binary = filepath.Join(out, pkgs[i].Name+".test")
		}
	}
	for i := range pkgs {
		if pkgs[i].Binary == "" {
			continue
		}
		if _, err := os.Stat(pkgs[i].Binary); err != nil {
			pkgs[i].Binary, pkgs[i].BuildErr = "", fmt.Sprintf("go test -c wrote no binary: %v", err)
		}
	}
	return ctx.Err()
}

func goTestC(ctx context.Context, dir, out string, paths ...string) error {
	cmd := exec.CommandContext(ctx, "go", append([]string{"test", "-c", "-o", out + "/"}, paths...)...)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go test -c: %w\n%s", err, strings.TrimSpace(string(b)))
	}
	return nil
}

// Markers the test script prints around each binary on the output port.
const (
	markRun  = "=== vmrun: run "
	markExit = "=== vmrun: exit "
)

// DefaultTestRun selects the tests that need the VM.
const DefaultTestRun = "^TestVM"

// TestScript is a run script that runs each package's binary in its
// directory, like go test does, with -test.run run (DefaultTestRun when
// empty) and -test.v.
func TestScript(pkgs []TestPackage, env []string, run string, testTimeout time.Duration) string {
	if run == "" {
		run = DefaultTestRun
	}
	var b strings.Builder
	for _, p := range pkgs {
		fmt.Fprintf(&b, "echo %s\n", shellQuote(markRun+p.ImportPath))
		fmt.Fprintf(&b, "(cd %s && exec %s env -i", shellQuote(p.Dir), guestBusybox)
		for _, e := range env {
			b.WriteString(" " + shellQuote(e))
		}
		fmt.Fprintf(&b, " %s -test.run %s -test.v -test.timeout %s)\n", shellQuote(p.Binary), shellQuote(run), testTimeout)
		fmt.Fprintf(&b, "echo %s\"$?\"\n", shellQuote(markExit+p.ImportPath+" "))
	}
	return b.String()
}

// TestSummary counts top-level test results of test -v output.
type TestSummary struct {
	Passed, Failed, Skipped int
	Failures                []string // "importpath TestName" or "importpath (exit N)"
	finished                map[string]bool
	current                 string
	currentFailed           bool
	mu                      sync.Mutex
}

var resultLine = regexp.MustCompile(`^--- (PASS|FAIL|SKIP): (\S+)`)

// Line feeds one line of the test script's output.
func (s *TestSummary) Line(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	line = strings.TrimRight(line, "\r\n")
	switch {
	case strings.HasPrefix(line, markRun):
		s.current = strings.TrimPrefix(line, markRun)
		s.currentFailed = false
	case strings.HasPrefix(line, markExit):
		rest := strings.TrimPrefix(line, markExit)
		i := strings.LastIndexByte(rest, ' ')
		if i < 0 {
			return
		}
		pkg, code := rest[:i], rest[i+1:]
		if s.finished == nil {
			s.finished = map[string]bool{}
		}
		s.finished[pkg] = true
		if code != "0" && !s.currentFailed {
			s.Failed++
			s.Failures = append(s.Failures, fmt.Sprintf("%s (exit %s)", pkg, code))
		}
		s.current = ""
	default:
		m := resultLine.FindStringSubmatch(line)
		if m == nil {
			return
		}
		switch m[1] {
		case "PASS":
			s.Passed++
		case "SKIP":
			s.Skipped++
		case "FAIL":
			s.Failed++
			s.currentFailed = true
			s.Failures = append(s.Failures, strings.TrimSpace(s.current+" "+m[2]))
		}
	}
}

// BuildFailed counts each package that did not build as failed.
func (s *TestSummary) BuildFailed(pkgs []TestPackage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range pkgs {
		if p.BuildErr != "" {
			s.Failed++
			s.Failures = append(s.Failures, p.ImportPath+" (build failed)")
		}
	}
}

// Abort counts every binary that did not finish as failed, after the
// guest stopped early for reason.
func (s *TestSummary) Abort(pkgs []TestPackage, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range pkgs {
		if !s.finished[p.ImportPath] {
			s.Failed++
			s.Failures = append(s.Failures, fmt.Sprintf("%s (did not finish: %s)", p.ImportPath, reason))
		}
	}
}

// String is the summary in the form "N passed, N failed".
func (s *TestSummary) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := fmt.Sprintf("%d passed, %d failed", s.Passed, s.Failed)
	if s.Skipped > 0 {
		out += fmt.Sprintf(" (%d skipped)", s.Skipped)
	}
	return out
}

// LineWriter calls fn for every complete line written to it.
type LineWriter struct {
	fn  func(string)
	buf []byte
}

// NewLineWriter returns a LineWriter calling fn.
func NewLineWriter(fn func(string)) *LineWriter { return &LineWriter{fn: fn} }

func (l *LineWriter) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		l.fn(string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
}
