package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testdata = "../../control/config/testdata"

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigCheckSucceeds(t *testing.T) {
	for _, f := range []string{"srx1.set", "srx2.set", "srx1.conf", "srx2.conf", "hub.set"} {
		code, out, errOut := run(t, "config", "check", filepath.Join(testdata, f))
		if code != 0 || out != "configuration check succeeds\n" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", f, code, out, errOut)
		}
	}
}

func TestConfigCheckWarningsOnStderr(t *testing.T) {
	p := writeFile(t, "w.set", "set system host-name gw\n")
	code, out, errOut := run(t, "config", "check", p)
	if code != 0 || out != "configuration check succeeds\n" ||
		errOut != p+":1:12: warning: system host-name: not supported by bpfvpn, ignored\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestConfigCheckFails(t *testing.T) {
	p := writeFile(t, "bad.set", "set interfaces st0 unit 16000\nset security flow tcp-mss ipsec-vpn mss 10\n")
	code, out, errOut := run(t, "config", "check", p)
	want := p + ":1:20: st0.16000: units st0.16000 to st0.16385 are reserved for HA control-link encryption; use 0..15999\n" +
		p + ":2:41: mss 10 out of range 64..65535\n"
	if code != 1 || out != "" || errOut != want {
		t.Errorf("exit %d, stdout %q, stderr %q, want %q", code, out, errOut, want)
	}
}

func TestConfigCheckMissingFile(t *testing.T) {
	code, _, errOut := run(t, "config", "check", filepath.Join(t.TempDir(), "nope"))
	if code != 1 || !strings.Contains(errOut, "no such file") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	if code, _, _ := run(t, "config", "check"); code == 0 {
		t.Errorf("check without files exited 0")
	}
}

// TestConfigCheckMergesFiles: files are merged in order, so the second one
// can complete the first.
func TestConfigCheckMergesFiles(t *testing.T) {
	a := writeFile(t, "a.conf", "interfaces { st0 { unit 0 { family inet address 10.0.0.1/30; } } }\n")
	b := writeFile(t, "b.set", "set security zones security-zone vpn interfaces st0.0\n")
	if code, _, errOut := run(t, "config", "check", a, b); code != 0 {
		t.Errorf("exit %d: %s", code, errOut)
	}
}

func TestConfigShowHierarchical(t *testing.T) {
	code, out, errOut := run(t, "config", "show", filepath.Join(testdata, "srx1.set"))
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	want, err := os.ReadFile(filepath.Join(testdata, "srx1.conf"))
	if err != nil {
		t.Fatal(err)
	}
	// srx1.conf is the canonical display plus leading comments and the
	// reference's encoding of the key.
	wantText := string(want)
	wantText = wantText[strings.Index(wantText, "interfaces {"):]
	gotText := replaceSecret(out)
	if gotText != replaceSecret(wantText) {
		t.Errorf("show differs from testdata/srx1.conf:\n%s", out)
	}
	if strings.Contains(out, "$ABC123") {
		t.Errorf("show prints the key in clear")
	}
}

// replaceSecret blanks $9$ strings, whose salt is random.
func replaceSecret(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, `"$9$`)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.Index(s[i+1:], `"`)
		b.WriteString(s[:i])
		b.WriteString(`"$9$…"`)
		s = s[i+1+j+1:]
	}
}

func TestConfigShowSetParsesBack(t *testing.T) {
	code, out, _ := run(t, "config", "show", "--display", "set", filepath.Join(testdata, "srx2.conf"))
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	p := writeFile(t, "again.set", out)
	code, out2, _ := run(t, "config", "show", "--display", "set", p)
	if code != 0 || out2 != out {
		t.Errorf("set display does not parse back to the same tree:\n%s\n---\n%s", out, out2)
	}
	if !strings.Contains(out, "set security ike policy IKE-POL pre-shared-key ascii-text \"$9$jjik.PfQ3n9p08XN-wsfTQ\" ## SECRET-DATA\n") {
		t.Errorf("secret line:\n%s", out)
	}
}

func TestConfigShowJSON(t *testing.T) {
	code, out, errOut := run(t, "config", "show", "--display", "json", filepath.Join(testdata, "srx1.set"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if strings.Contains(out, "ABC123") || strings.Contains(out, "$9$") || !strings.Contains(out, `"pre-shared-key": "<redacted>"`) {
		t.Errorf("JSON secret handling:\n%s", out)
	}
	if m["defaults-version"].(float64) != 1 {
		t.Errorf("defaults-version %v", m["defaults-version"])
	}
}

func TestConfigShowDefaults(t *testing.T) {
	code, out, _ := run(t, "config", "show", "--defaults", filepath.Join(testdata, "srx1.set"))
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{
		"        proposal standard {\n            authentication-method pre-shared-keys;\n            dh-group group19; ## default\n",
		"        proposal standard {\n            protocol esp; ## default\n            encryption-algorithm aes-256-gcm; ## default\n            lifetime-seconds 3600; ## default\n        }\n",
		"            version v1-only; ## default\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}

func TestConfigShowErrors(t *testing.T) {
	p := writeFile(t, "bad.conf", "security {\n")
	code, out, errOut := run(t, "config", "show", p)
	if code != 1 || out != "" || errOut != p+":1:10: syntax error: missing '}' for this '{'\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code, _, _ := run(t, "config", "show", "--display", "xml", p); code != 2 {
		t.Errorf("--display xml exit %d", code)
	}
}

// TestConfigCheckStdin: "-" reads standard input, so displays can be piped
// back into check.
func TestConfigCheckStdin(t *testing.T) {
	_, set, _ := run(t, "config", "show", "--display", "set", filepath.Join(testdata, "hub.set"))
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		_, _ = w.WriteString(set)
		w.Close()
	}()
	old := os.Stdin
	os.Stdin = r
	t.Cleanup(func() { os.Stdin = old; r.Close() })
	code, out, errOut := run(t, "config", "check", "-")
	if code != 0 || out != "configuration check succeeds\n" || !strings.HasPrefix(errOut, "-:") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
