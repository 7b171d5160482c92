package ops_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bpfvpn/bpfvpn/control/ops"
	"github.com/bpfvpn/bpfvpn/control/ops/opstest"
)

var update = flag.Bool("update", false, "rewrite the golden files of views the reference does not show")

// goldenCases maps commands to golden files. Files marked reference hold
// the sample outputs of reference §4 copied verbatim; -update never
// rewrites them.
var goldenCases = []struct {
	command   string
	golden    string
	reference bool
}{
	{"show security ike security-associations", "ike_list", true},
	{"show security ike security-associations index 1512635 detail", "ike_detail", true},
	{"show security ipsec security-associations", "ipsec_list", true},
	{"show security ipsec security-associations index 131073 detail", "ipsec_detail", true},
	{"show security ipsec statistics", "ipsec_statistics", true},
	{"show security policies", "policies", false},
	{"show security policies hit-count", "policies_hit_count", false},
	{"show security flow session", "flow_session", false},
	{"show security flow session summary", "flow_session_summary", false},
	{"show security zones", "zones", false},
	{"show interfaces st0 terse", "interfaces_st0_terse", false},
	{"show interfaces st0", "interfaces_st0", false},
	{"show route", "route", false},
	{"clear security flow session all", "flow_session_cleared", false},
}

func checkGolden(t *testing.T, name string, got string, mayUpdate bool) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update && mayUpdate {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden: %v", err)
	}
	if got != string(want) {
		t.Errorf("%s differs\n--- got ---\n%s--- want ---\n%s", path, got, want)
	}
}

func TestGoldenText(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.golden, func(t *testing.T) {
			out, err := ops.Run(context.Background(), opstest.Reference(), strings.Fields(tc.command), false)
			if err != nil {
				t.Fatalf("%s: %v", tc.command, err)
			}
			checkGolden(t, tc.golden+".golden", out, !tc.reference)
		})
	}
}

func TestGoldenJSON(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.golden, func(t *testing.T) {
			out, err := ops.Run(context.Background(), opstest.Reference(), strings.Fields(tc.command), true)
			if err != nil {
				t.Fatalf("%s: %v", tc.command, err)
			}
			checkGolden(t, tc.golden+".json.golden", out, true)
			piped, err := ops.Run(context.Background(), opstest.Reference(), append(strings.Fields(tc.command), "|", "display", "json"), false)
			if err != nil {
				t.Fatalf("%s | display json: %v", tc.command, err)
			}
			if piped != out {
				t.Errorf("| display json differs from --json")
			}
		})
	}
}
