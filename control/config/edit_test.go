package config

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
)

// editBase is the reference SRX1 configuration plus a few more trust→untrust
// policies, so that deltas can touch the middle of a zone pair.
func editBase(t testing.TB) (*Tree, *Config) {
	t.Helper()
	data, err := os.ReadFile("testdata/srx1.set")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.Write(data)
	for i := 0; i < 40; i++ {
		p := fmt.Sprintf("set security policies from-zone trust to-zone untrust policy P%d ", i)
		b.WriteString(p + "match source-address any\n" + p + "match destination-address any\n")
		b.WriteString(p + "match application junos-http\n" + p + "then permit\n")
	}
	tr := NewTree()
	if ds := tr.Parse("base.set", []byte(b.String())); ds.HasErrors() {
		t.Fatal(ds)
	}
	cfg, ds := tr.Compile()
	if cfg == nil {
		t.Fatal(ds)
	}
	return tr, cfg
}

func jsonOf(t testing.TB, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestEditPolicyDeltaMatchesFullCompile: a policy-only delta compiled
// incrementally gives exactly the Config a full compile of the same tree
// gives, whatever the delta does to the zone pair.
func TestEditPolicyDeltaMatchesFullCompile(t *testing.T) {
	deltas := map[string]string{
		"add at the end": `set security policies from-zone trust to-zone untrust policy NEW match source-address any
set security policies from-zone trust to-zone untrust policy NEW match destination-address any
set security policies from-zone trust to-zone untrust policy NEW match application junos-ssh
set security policies from-zone trust to-zone untrust policy NEW then deny`,
		"change in the middle": `set security policies from-zone trust to-zone untrust policy P17 then deny
delete security policies from-zone trust to-zone untrust policy P17 then permit`,
		"delete":     `delete security policies from-zone trust to-zone untrust policy P3`,
		"deactivate": `deactivate security policies from-zone trust to-zone untrust policy P30`,
		"insert before": `set security policies from-zone trust to-zone untrust policy NEW match source-address any
set security policies from-zone trust to-zone untrust policy NEW match destination-address any
set security policies from-zone trust to-zone untrust policy NEW match application any
set security policies from-zone trust to-zone untrust policy NEW then reject
insert security policies from-zone trust to-zone untrust policy NEW before policy P5`,
		"two pairs": `set security policies from-zone vpn to-zone trust policy VPN-IN then deny
delete security policies from-zone vpn to-zone trust policy VPN-IN then permit
delete security policies from-zone trust to-zone untrust policy P0`,
		"new pair": `set security policies from-zone untrust to-zone trust policy IN match source-address any
set security policies from-zone untrust to-zone trust policy IN match destination-address Host1-Net
set security policies from-zone untrust to-zone trust policy IN match application junos-https
set security policies from-zone untrust to-zone trust policy IN then permit`,
	}
	for name, delta := range deltas {
		t.Run(name, func(t *testing.T) {
			tr, prev := editBase(t)
			before := jsonOf(t, prev)
			e, ds := tr.Edit("-", []byte(delta))
			if e == nil {
				t.Fatal(ds)
			}
			if e.Wide || len(e.Policies) == 0 {
				t.Fatalf("policy delta classified wide=%v policies=%v", e.Wide, e.Policies)
			}
			got, ds := tr.CompileDelta(prev, e)
			if got == nil {
				t.Fatal(ds)
			}
			want, ds := tr.Compile()
			if want == nil {
				t.Fatal(ds)
			}
			if g, w := jsonOf(t, got), jsonOf(t, want); g != w {
				t.Errorf("incremental compile differs from the full one:\n got %s\nwant %s", g, w)
			}
			if jsonOf(t, prev) != before {
				t.Error("CompileDelta modified the previous Config")
			}
			// Untouched policies are reused, not compiled again.
			if got.Policies.Contexts[0].Policies[0] != prev.Policies.Contexts[0].Policies[0] {
				t.Error("the untouched first policy was compiled again")
			}
		})
	}
}

// TestEditUndoRestoresTree: an edit that fails (syntax or validation)
// leaves the tree displaying exactly as before, and the failure carries the
// delta's own name:line:col.
func TestEditUndoRestoresTree(t *testing.T) {
	cases := []struct {
		name, delta, wantPos string
		syntax               bool
	}{
		{"syntax", "set security policies from-zone trust to-zone untrust policy P1 then deny\ndelete security policies from-zone trust to-zone untrust policy P2\nset security policies from-zone trust to-zone untrust policy P3 match source-address [ a\n", "-:3:", true},
		{"undefined address", "delete security policies from-zone trust to-zone untrust policy P8\nset security policies from-zone trust to-zone untrust policy P9 match destination-address Nowhere\n", "-:2:", false},
		{"undefined zone", "set security zones security-zone dmz host-inbound-traffic system-services ping\nset security policies from-zone trust to-zone nowhere policy X match source-address any\nset security policies from-zone trust to-zone nowhere policy X match destination-address any\nset security policies from-zone trust to-zone nowhere policy X match application any\nset security policies from-zone trust to-zone nowhere policy X then permit\n", "-:2:", false},
		{"hierarchical merge", "security { policies { from-zone trust to-zone untrust { policy P4 { then { deny; } } } } }\ninterfaces { ge-0/0/9 { unit 0 { family inet { address 10.200.0.1/33; } } } }\n", "-:2:", false},
		{"insert", "insert security policies from-zone trust to-zone untrust policy P20 before policy P2\nset security policies from-zone trust to-zone untrust policy P20 match application nope\n", "-:2:", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr, prev := editBase(t)
			before := tr.String()
			files := len(tr.files)
			e, ds := tr.Edit("-", []byte(tc.delta))
			if tc.syntax {
				if e != nil {
					t.Fatal("syntax error accepted")
				}
			} else {
				if e == nil {
					t.Fatal(ds)
				}
				cfg, cds := tr.CompileDelta(prev, e)
				if cfg != nil {
					t.Fatal("invalid delta compiled")
				}
				ds = cds
				e.Undo()
			}
			if !strings.Contains(ds.Errors().String(), tc.wantPos) {
				t.Errorf("errors %q lack the position %s", ds.Errors().String(), tc.wantPos)
			}
			if after := tr.String(); after != before {
				t.Errorf("tree changed by a failed edit:\n%s", lineDiff(before, after))
			}
			if len(tr.files) != files {
				t.Errorf("files %v after undo", tr.files)
			}
			// The tree still compiles to the previous configuration.
			cfg, ds := tr.Compile()
			if cfg == nil || jsonOf(t, cfg) != jsonOf(t, prev) {
				t.Errorf("tree does not compile back to the previous configuration: %v", ds)
			}
		})
	}
}

func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) && i < len(bl); i++ {
		if al[i] != bl[i] {
			return fmt.Sprintf("line %d: %q → %q", i+1, al[i], bl[i])
		}
	}
	return fmt.Sprintf("%d lines → %d lines", len(al), len(bl))
}

// TestEditWide: statements that other parts reference make the edit wide
// (full validation); policies only do not.
func TestEditWide(t *testing.T) {
	for delta, wide := range map[string]bool{
		"set security address-book Host1 address X 10.9.9.0/24":                                   true,
		"delete security policies from-zone trust to-zone untrust":                                true,
		"set applications application a protocol tcp":                                             true,
		"set security policies from-zone trust to-zone untrust policy P1 then count":              false,
		"deactivate security policies from-zone trust to-zone untrust policy P1":                  false,
		"security { policies { from-zone trust to-zone untrust { policy P1 { then count; } } } }": true,
	} {
		tr, prev := editBase(t)
		e, ds := tr.Edit("-", []byte(delta))
		if e == nil {
			t.Fatalf("%s: %v", delta, ds)
		}
		if e.Wide != wide {
			t.Errorf("%s: wide %v, want %v", delta, e.Wide, wide)
		}
		got, ds := tr.CompileDelta(prev, e)
		want, _ := tr.Compile()
		if got == nil || want == nil || jsonOf(t, got) != jsonOf(t, want) {
			t.Errorf("%s: delta compile differs from full: %v", delta, ds)
		}
	}
}

// FuzzEditUndo: whatever a delta says, undoing it restores the tree's
// display exactly, and a delta that compiles incrementally compiles to
// what a full compile of the same tree gives.
func FuzzEditUndo(f *testing.F) {
	for _, seed := range []string{
		"set security policies from-zone trust to-zone untrust policy P1 then deny\ndelete security policies from-zone trust to-zone untrust policy P1 then permit\n",
		"delete security policies from-zone trust to-zone untrust policy P3\n",
		"insert security policies from-zone trust to-zone untrust policy P9 before policy P2\n",
		"deactivate security policies from-zone trust to-zone untrust policy P4\nactivate security policies from-zone trust to-zone untrust policy P4\n",
		"delete security address-book\n",
		"security { policies { from-zone trust to-zone untrust { policy P1 { then { count; } } } } }\n",
		"set interfaces ge-0/0/9 unit 0 family inet address 10.9.9.1/24\nset foo bar baz\n",
		"delete\nset security policies from-zone trust to-zone untrust policy [ x\n",
	} {
		f.Add(seed)
	}
	base := func(t *testing.T) (*Tree, *Config) { return editBase(t) }
	f.Fuzz(func(t *testing.T, delta string) {
		tr, prev := base(t)
		before := tr.String()
		e, _ := tr.Edit("-", []byte(delta))
		if e == nil {
			if after := tr.String(); after != before {
				t.Fatalf("refused edit changed the tree: %s", lineDiff(before, after))
			}
			return
		}
		if !e.Wide {
			got, _ := tr.CompileDelta(prev, e)
			want, _ := tr.Compile()
			if (got == nil) != (want == nil) || got != nil && jsonOf(t, got) != jsonOf(t, want) {
				t.Fatalf("incremental compile differs from the full one for %q", delta)
			}
		}
		e.Undo()
		if after := tr.String(); after != before {
			t.Fatalf("undo left the tree changed: %s", lineDiff(before, after))
		}
	})
}
