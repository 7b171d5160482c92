package config

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/bpfvpn/bpfvpn/control/config/secret"
)

func parseTree(t *testing.T, name string, data []byte) *Tree {
	t.Helper()
	tr := NewTree()
	if diags := tr.Parse(name, data); diags.HasErrors() {
		t.Fatalf("%s: parse errors:\n%s", name, diags)
	}
	return tr
}

func hierText(t *testing.T, tr *Tree) string {
	t.Helper()
	var b bytes.Buffer
	if err := tr.WriteHierarchical(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func setText(t *testing.T, tr *Tree) string {
	t.Helper()
	var b bytes.Buffer
	if err := tr.WriteSet(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// treeEqual compares two trees statement by statement, in order.
func treeEqual(a, b *node) bool {
	if a.kw != b.kw || a.name != b.name || a.name2() != b.name2() || a.inactive() != b.inactive() ||
		a.sp != b.sp || len(a.vals) != len(b.vals) || len(a.kids) != len(b.kids) {
		return false
	}
	for i := range a.vals {
		if a.sp != nil && a.sp.secret {
			// Plain secrets are encoded with a random salt: compare keys.
			x, errx := secret.Decode(a.vals[i].s)
			y, erry := secret.Decode(b.vals[i].s)
			if errx != nil || erry != nil || !bytes.Equal(x, y) {
				return false
			}
			continue
		}
		if a.vals[i].s != b.vals[i].s {
			return false
		}
	}
	for i := range a.kids {
		if !treeEqual(a.kids[i], b.kids[i]) {
			return false
		}
	}
	return true
}

var roundTripFiles = []string{"srx1.set", "srx2.set", "srx1.conf", "srx2.conf", "hub.set", "features.conf"}

// TestRoundTrips checks set → tree → hierarchical → tree and
// hierarchical → tree → set → tree: the trees are equal and the texts are
// fixed points.
func TestRoundTrips(t *testing.T) {
	for _, f := range roundTripFiles {
		t.Run(f, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", f))
			if err != nil {
				t.Fatal(err)
			}
			t1 := parseTree(t, f, data)
			h1 := hierText(t, t1)
			t2 := parseTree(t, "hier", []byte(h1))
			if !treeEqual(t1.root, t2.root) {
				t.Errorf("tree → hierarchical → tree differs:\n%s\nvs\n%s", h1, hierText(t, t2))
			}
			if h2 := hierText(t, t2); h2 != h1 {
				t.Errorf("hierarchical text is not a fixed point")
			}
			s1 := setText(t, t2)
			t3 := parseTree(t, "set", []byte(s1))
			if DetectFormat([]byte(s1)) != FormatSet {
				t.Errorf("set display not detected as set form")
			}
			if s2 := setText(t, t3); s2 != s1 {
				t.Errorf("set text is not a fixed point:\n%s\nvs\n%s", s1, s2)
			}
			if !treeEqual(t2.root, t3.root) {
				t.Errorf("tree → set → tree differs:\n%s\nvs\n%s", h1, hierText(t, t3))
			}
			// Set form has no place for /* */ comments.
			if hierText(t, t3) != dropComments(h1) {
				t.Errorf("set → hierarchical differs from the original hierarchical text")
			}
		})
	}
}

// stripPos removes position fields from decoded JSON.
func stripPos(v any) any {
	switch x := v.(type) {
	case map[string]any:
		delete(x, "pos")
		for k, e := range x {
			x[k] = stripPos(e)
		}
	case []any:
		for i, e := range x {
			x[i] = stripPos(e)
		}
	}
	return v
}

func modelJSON(t *testing.T, cfg *Config) any {
	t.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return stripPos(v)
}

// TestFormsCompileToSameModel: the set and hierarchical SRX configurations
// of reference §3 give the same typed model, pre-shared key included.
func TestFormsCompileToSameModel(t *testing.T) {
	for _, n := range []string{"srx1", "srx2"} {
		a := loadTestdata(t, n+".set")
		b := loadTestdata(t, n+".conf")
		if !reflect.DeepEqual(modelJSON(t, a), modelJSON(t, b)) {
			ja, _ := json.MarshalIndent(a, "", " ")
			jb, _ := json.MarshalIndent(b, "", " ")
			t.Errorf("%s: set and hierarchical models differ:\n%s\nvs\n%s", n, ja, jb)
		}
		ka, kb := a.IKE.Policies[0].PreSharedKey, b.IKE.Policies[0].PreSharedKey
		if !ka.Equal(kb) || string(ka.Bytes()) != "$ABC123" {
			t.Errorf("%s: pre-shared keys differ", n)
		}
	}
}

// TestHubRoundTripModel: the hub configuration compiles to the same model
// from its set form and from its hierarchical display.
func TestHubRoundTripModel(t *testing.T) {
	a := loadTestdata(t, "hub.set")
	data, _ := os.ReadFile(filepath.Join("testdata", "hub.set"))
	h := hierText(t, parseTree(t, "hub.set", data))
	b, diags := ParseBytes("hub.conf", []byte(h))
	if b == nil {
		t.Fatalf("hierarchical display of hub.set does not compile:\n%s", diags)
	}
	if !reflect.DeepEqual(modelJSON(t, a), modelJSON(t, b)) {
		t.Errorf("hub models differ")
	}
	if strings.Contains(h, "OLD-VPN") && !strings.Contains(h, "inactive: vpn OLD-VPN") {
		t.Errorf("inactive vpn not displayed as inactive:\n%s", h)
	}
}

// dropComments removes the /* */ comment lines of a hierarchical display.
func dropComments(h string) string {
	var b strings.Builder
	inComment := false
	for _, line := range strings.SplitAfter(h, "\n") {
		trimmed := strings.TrimSpace(line)
		if !inComment && strings.HasPrefix(trimmed, "/*") {
			inComment = !strings.HasSuffix(trimmed, "*/")
			continue
		}
		if inComment {
			inComment = !strings.HasSuffix(trimmed, "*/")
			continue
		}
		b.WriteString(line)
	}
	return b.String()
}
