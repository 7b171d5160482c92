package vm

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const testOutputSample = `=== vmrun: run example.com/a
=== RUN   TestVMOne
=== RUN   TestVMOne/sub
--- PASS: TestVMOne (0.10s)
    --- PASS: TestVMOne/sub (0.05s)
=== RUN   TestVMTwo
    two_test.go:9: boom
--- FAIL: TestVMTwo (0.00s)
=== RUN   TestVMThree
    three_test.go:3: kernel lacks ESP
--- SKIP: TestVMThree (0.00s)
FAIL
=== vmrun: exit example.com/a 1
=== vmrun: run example.com/b
panic: runtime error
=== vmrun: exit example.com/b 2
=== vmrun: run example.com/c
--- PASS: TestVMFour (1.00s)
PASS
=== vmrun: exit example.com/c 0
=== vmrun: run example.com/d
=== RUN   TestVMHang
`

func TestTestSummaryCountsTopLevelResults(t *testing.T) {
	var s TestSummary
	lw := NewLineWriter(s.Line)
	// Written in odd chunks, as the serial port delivers it.
	for i := 0; i < len(testOutputSample); i += 7 {
		lw.Write([]byte(testOutputSample[i:min(i+7, len(testOutputSample))]))
	}
	if s.Passed != 2 || s.Failed != 2 || s.Skipped != 1 {
		t.Fatalf("passed %d failed %d skipped %d, want 2 2 1", s.Passed, s.Failed, s.Skipped)
	}
	if got := s.String(); got != "2 passed, 2 failed (1 skipped)" {
		t.Fatalf("String() = %q", got)
	}
	s.Abort([]TestPackage{{ImportPath: "example.com/a"}, {ImportPath: "example.com/d"}, {ImportPath: "example.com/e"}}, "timed out")
	want := []string{
		"example.com/a TestVMTwo",
		"example.com/b (exit 2)",
		"example.com/d (did not finish: timed out)",
		"example.com/e (did not finish: timed out)",
	}
	if !reflect.DeepEqual(s.Failures, want) {
		t.Fatalf("failures %q, want %q", s.Failures, want)
	}
	if got := s.String(); got != "2 passed, 4 failed (1 skipped)" {
		t.Fatalf("String() = %q", got)
	}
}

func TestTestScript(t *testing.T) {
	pkgs := []TestPackage{{ImportPath: "example.com/a", Dir: "/src/a", Binary: "/tmp/b/0/a.test"}}
	s := TestScript(pkgs, []string{"BPFVPN_VM=1"}, "", 90*time.Second)
	for _, want := range []string{
		"echo '=== vmrun: run example.com/a'",
		"(cd '/src/a' && exec /run/vmrun/busybox env -i 'BPFVPN_VM=1' '/tmp/b/0/a.test' -test.run '^TestVM' -test.v -test.timeout 1m30s)",
		`echo '=== vmrun: exit example.com/a '"$?"`,
	} {
		if !strings.Contains(s, want+"\n") {
			t.Errorf("script lacks %q:\n%s", want, s)
		}
	}
	if s := TestScript(pkgs, nil, "TestVMOne/sub", time.Minute); !strings.Contains(s, "-test.run 'TestVMOne/sub' -test.v") {
		t.Errorf("script ignores the run pattern:\n%s", s)
	}
}

func TestHasVMTest(t *testing.T) {
	if !HasVMTest([]byte("package x\n\nfunc TestVMXfrm(t *testing.T) {}\n")) {
		t.Error("TestVMXfrm not found")
	}
	for _, src := range []string{"func TestVxlan(t *testing.T) {}", "// func TestVMX(t *testing.T)", "func TestVMX[T any]"} {
		if HasVMTest([]byte(src)) {
			t.Errorf("found a TestVM in %q", src)
		}
	}
}

func TestFindVMTestPackagesFindsTheSmokeTest(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	pkgs, err := FindVMTestPackages(context.Background(), ".", "github.com/bpfvpn/bpfvpn/vm/...")
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) != 1 || pkgs[0].ImportPath != "github.com/bpfvpn/bpfvpn/vm" || pkgs[0].Name != "vm" {
		t.Fatalf("packages %+v, want only the vm package", pkgs)
	}
}

func TestPrefixWriter(t *testing.T) {
	var buf bytes.Buffer
	p := NewPrefixWriter(&buf, "[6.1] ")
	p.Write([]byte("a\nb"))
	p.Write([]byte("c\n\nd"))
	p.Flush()
	if got, want := buf.String(), "[6.1] a\n[6.1] bc\n[6.1] \n[6.1] d\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestStatusRead(t *testing.T) {
	var s status
	s.read(strings.NewReader("noise\r\nvmrun: start\r\nvmrun: exit 42\r\n"), time.Now())
	if !s.exited || s.code != 42 {
		t.Fatalf("status %+v, want exit 42", s)
	}
	var e status
	e.read(strings.NewReader("vmrun: error mount 9p hostroot\n"), time.Now())
	if e.exited || e.initErr != "mount 9p hostroot" {
		t.Fatalf("status %+v, want init error", e)
	}
}

// TestBuildTestBinariesIsolatesBrokenPackage builds a scratch module with
// one good and one broken TestVM package.
func TestBuildTestBinariesIsolatesBrokenPackage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go test -c (-short)")
	}
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":              "module example.com/m\n\ngo 1.22\n",
		"good/good.go":        "package good\n",
		"good/good_test.go":   "package good\n\nimport \"testing\"\n\nfunc TestVMGood(t *testing.T) {}\n",
		"bad/bad.go":          "package bad\n",
		"bad/bad_test.go":     "package bad\n\nimport \"testing\"\n\nfunc TestVMBad(t *testing.T) { undefined() }\n",
		"plain/plain.go":      "package plain\n",
		"plain/plain_test.go": "package plain\n\nimport \"testing\"\n\nfunc TestPlain(t *testing.T) {}\n",
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	pkgs, err := FindVMTestPackages(ctx, dir, "./...")
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) != 2 || pkgs[0].ImportPath != "example.com/m/bad" || pkgs[1].ImportPath != "example.com/m/good" {
		t.Fatalf("packages %+v, want bad and good", pkgs)
	}
	if err := BuildTestBinaries(ctx, dir, t.TempDir(), pkgs); err != nil {
		t.Fatal(err)
	}
	if pkgs[0].Binary != "" || !strings.Contains(pkgs[0].BuildErr, "undefined") {
		t.Errorf("bad: binary %q, build error %q", pkgs[0].Binary, pkgs[0].BuildErr)
	}
	if pkgs[1].Binary == "" || pkgs[1].BuildErr != "" {
		t.Errorf("good: binary %q, build error %q", pkgs[1].Binary, pkgs[1].BuildErr)
	}
	var s TestSummary
	s.BuildFailed(pkgs)
	if s.Failed != 1 || s.Failures[0] != "example.com/m/bad (build failed)" {
		t.Errorf("summary %+v", s.Failures)
	}
}
