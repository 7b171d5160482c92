package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/bpfvpn/bpfvpn/control/api"
	"github.com/bpfvpn/bpfvpn/control/config"
)

// policyRecorder is a recorder that also applies policy-only deltas.
type policyRecorder struct {
	*recorder
	pmu      sync.Mutex
	policies [][]config.PolicyRef
	pchecks  int
	failPol  func(*config.Config) error
}

func (r *policyRecorder) CheckPolicies(ctx context.Context, cfg *config.Config, changed []config.PolicyRef) error {
	r.pmu.Lock()
	defer r.pmu.Unlock()
	r.pchecks++
	return nil
}

func (r *policyRecorder) ApplyPolicies(ctx context.Context, cfg *config.Config, changed []config.PolicyRef) error {
	r.pmu.Lock()
	defer r.pmu.Unlock()
	if r.failPol != nil {
		if err := r.failPol(cfg); err != nil {
			return err
		}
	}
	r.policies = append(r.policies, changed)
	r.recorder.mu.Lock()
	r.recorder.applied = append(r.recorder.applied, cfg)
	r.recorder.mu.Unlock()
	return nil
}

// startDeltaDaemon is startDaemon with a data-plane recorder that takes
// policy-only deltas.
func startDeltaDaemon(t *testing.T, text string) (*harness, *policyRecorder) {
	t.Helper()
	pr := &policyRecorder{recorder: &recorder{name: "dataplane"}}
	h := startDaemonWith(t, text, []Component{&recorder{name: "kernel"}, pr, &recorder{name: "ike"}})
	return h, pr
}

const addNoSSH = `set security policies from-zone trust to-zone vpn policy NO-SSH match source-address any
set security policies from-zone trust to-zone vpn policy NO-SSH match destination-address any
set security policies from-zone trust to-zone vpn policy NO-SSH match application junos-ssh
set security policies from-zone trust to-zone vpn policy NO-SSH then deny
insert security policies from-zone trust to-zone vpn policy NO-SSH before policy VPN-OUT
`

func policyNames(cfg *config.Config, from, to string) []string {
	var out []string
	for _, pc := range cfg.Policies.Contexts {
		if pc.From == from && pc.To == to {
			for _, p := range pc.Policies {
				out = append(out, p.Name)
			}
		}
	}
	return out
}

// TestCommitLoadSetOnePolicy: `load set` of one policy validates and
// applies only that policy (the data plane gets it, kernel and IKE are left
// alone), lists only it as changed, stores the resulting whole
// configuration (rollback 0 parses to it; rollback 1 restores the one
// before) and writes it to the configuration file.
func TestCommitLoadSetOnePolicy(t *testing.T) {
	h, pr := startDeltaDaemon(t, srx1(t))
	kernel, ike := h.comps[0], h.comps[2]
	res, err := h.do(t, VerbCommitCheck, CommitRequest{Name: "-", Text: addNoSSH, Load: LoadSet})
	if err != nil || res.Committed || !res.Incremental {
		t.Fatalf("check: %+v %v", res, err)
	}
	if pr.count() != 1 || hasPolicy(h.d.active, "NO-SSH") {
		t.Fatal("commit check of a delta changed something")
	}
	res, err = h.do(t, VerbCommit, CommitRequest{Name: "-", Text: addNoSSH, Load: LoadSet, Comment: "no ssh"})
	if err != nil || !res.Committed || !res.Incremental {
		t.Fatalf("commit: %+v %v", res, err)
	}
	want := []string{"+ security policies from-zone trust to-zone vpn policy NO-SSH"}
	if fmt.Sprint(res.Changes) != fmt.Sprint(want) {
		t.Errorf("changes %q, want %q", res.Changes, want)
	}
	if kernel.count() != 1 || ike.count() != 1 || kernel.checks != 0 || ike.checks != 0 {
		t.Errorf("kernel/ike touched by a policy delta: %d/%d applies, %d/%d checks", kernel.count(), ike.count(), kernel.checks, ike.checks)
	}
	if len(pr.policies) != 1 || fmt.Sprint(pr.policies[0]) != "[{trust vpn NO-SSH}]" {
		t.Errorf("data plane got %v", pr.policies)
	}
	got := policyNames(pr.last(), "trust", "vpn")
	if fmt.Sprint(got) != "[NO-SSH VPN-OUT]" {
		t.Errorf("trust→vpn policies %v, want [NO-SSH VPN-OUT]", got)
	}
	h.d.WaitPersisted()
	_, text, err := h.d.store.Get(0)
	if err != nil {
		t.Fatal(err)
	}
	stored, ds := config.ParseBytes("rollback0", text)
	if stored == nil || fmt.Sprint(policyNames(stored, "trust", "vpn")) != "[NO-SSH VPN-OUT]" {
		t.Fatalf("stored configuration: %v %v", stored, ds)
	}
	if file, _ := os.ReadFile(h.cfgPath); string(file) != string(text) {
		t.Error("configuration file differs from rollback 0")
	}
	// A second delta on top of the first.
	res, err = h.do(t, VerbCommit, CommitRequest{Name: "-", Text: "set security policies from-zone trust to-zone vpn policy NO-SSH then count\n", Load: LoadSet})
	if err != nil || fmt.Sprint(res.Changes) != "[~ security policies from-zone trust to-zone vpn policy NO-SSH]" {
		t.Fatalf("second delta: %+v %v", res, err)
	}
	res, err = h.do(t, VerbRollback, RollbackRequest{N: 2})
	if err != nil || !res.Committed {
		t.Fatalf("rollback 2: %+v %v", res, err)
	}
	if hasPolicy(h.d.active, "NO-SSH") {
		t.Error("rollback 2 kept NO-SSH")
	}
	// Deltas after a rollback apply to the restored configuration.
	res, err = h.do(t, VerbCommit, CommitRequest{Name: "-", Text: "delete security policies from-zone trust to-zone vpn policy VPN-OUT\n", Load: LoadSet})
	if err != nil || fmt.Sprint(res.Changes) != "[- security policies from-zone trust to-zone vpn policy VPN-OUT]" {
		t.Fatalf("delete after rollback: %+v %v", res, err)
	}
}

// TestCommitDeltaInvalidChangesNothing: a delta with a syntax or a
// validation error is refused with the delta's own positions, and nothing
// changes: not the active configuration, not the tree later deltas apply
// to, not the store.
func TestCommitDeltaInvalidChangesNothing(t *testing.T) {
	h, pr := startDeltaDaemon(t, srx1(t))
	for _, tc := range []struct{ text, pos, load string }{
		{"delete security policies from-zone trust to-zone vpn policy VPN-OUT\nset security policies from-zone trust to-zone vpn policy X match source-address [ a\n", "-:2:", LoadSet},
		{"delete security policies from-zone trust to-zone vpn policy VPN-OUT\nset security policies from-zone vpn to-zone trust policy VPN-IN match destination-address Nowhere-Net\n", "-:2:", LoadSet},
		{"deactivate security policies from-zone vpn to-zone trust policy VPN-IN\nset security address-book Host1 address Bad 10.0.0.1/33\n", "-:2:", LoadSet},
		{"security { policies { from-zone trust to-zone vpn { policy VPN-OUT { match { application nope; } } } } }\n", "-:1:", LoadMerge},
		{"security { policies { default-policy { permit-all; } } }\n", "-:1:", LoadSet},
	} {
		for _, verb := range []string{VerbCommitCheck, VerbCommit} {
			res, err := h.do(t, verb, CommitRequest{Name: "-", Text: tc.text, Load: tc.load})
			var ae *api.Error
			if !errors.As(err, &ae) || ae.Code != CodeInvalid || res.Committed {
				t.Fatalf("%s %q: %+v %v", verb, tc.text, res, err)
			}
			if !strings.Contains(strings.Join(res.Diagnostics, "\n"), tc.pos) {
				t.Errorf("%s: diagnostics %q lack %s", verb, res.Diagnostics, tc.pos)
			}
		}
	}
	if pr.count() != 1 || len(pr.policies) != 0 {
		t.Errorf("data plane applied %d times after invalid deltas", pr.count())
	}
	if list, _ := h.d.store.List(); len(list) != 1 {
		t.Errorf("store holds %d entries", len(list))
	}
	// The tree is as before: a valid delta sees VPN-OUT and VPN-IN.
	res, err := h.do(t, VerbCommit, CommitRequest{Name: "-", Text: addNoSSH, Load: LoadSet})
	if err != nil {
		t.Fatalf("valid delta after invalid ones: %v", err)
	}
	if fmt.Sprint(policyNames(pr.last(), "trust", "vpn")) != "[NO-SSH VPN-OUT]" || !hasPolicy(pr.last(), "VPN-IN") ||
		len(res.Changes) != 1 {
		t.Errorf("after invalid deltas: trust→vpn %v, changes %v", policyNames(pr.last(), "trust", "vpn"), res.Changes)
	}
	// A wide delta compiles the whole tree: it must hold nothing of the
	// refused deltas.
	res, err = h.do(t, VerbCommit, CommitRequest{Name: "-", Text: "set security flow tcp-mss ipsec-vpn mss 1300\n", Load: LoadSet})
	if err != nil || res.Incremental {
		t.Fatalf("wide delta after invalid ones: %+v %v", res, err)
	}
	if fmt.Sprint(res.Changes) != "[~ security flow]" || !hasPolicy(pr.last(), "VPN-IN") {
		t.Errorf("wide delta after invalid ones: changes %q", res.Changes)
	}
}

// TestCommitDeltaApplyFailureRestores: when the data plane fails to apply a
// policy delta, the previous policies are applied again and the tree is
// restored.
func TestCommitDeltaApplyFailureRestores(t *testing.T) {
	h, pr := startDeltaDaemon(t, srx1(t))
	pr.failPol = func(cfg *config.Config) error {
		if hasPolicy(cfg, "NO-SSH") {
			return errors.New("map full")
		}
		return nil
	}
	_, err := h.do(t, VerbCommit, CommitRequest{Name: "-", Text: addNoSSH, Load: LoadSet})
	if err == nil || !strings.Contains(err.Error(), "map full") {
		t.Fatalf("commit: %v", err)
	}
	if len(pr.policies) != 1 || hasPolicy(pr.last(), "NO-SSH") || hasPolicy(h.d.active, "NO-SSH") {
		t.Errorf("previous policies not restored: %v", pr.policies)
	}
	pr.failPol = nil
	if _, err := h.do(t, VerbCommit, CommitRequest{Name: "-", Text: addNoSSH, Load: LoadSet}); err != nil {
		t.Fatalf("same delta after the failure: %v", err)
	}
}

// TestCommitDeltaWide: a delta that touches what policies reference (an
// address book) is validated and applied whole by every component.
func TestCommitDeltaWide(t *testing.T) {
	h, pr := startDeltaDaemon(t, srx1(t))
	res, err := h.do(t, VerbCommit, CommitRequest{Name: "-", Text: "set security address-book Host2 address Host2-Net 10.100.23.0/24\n", Load: LoadMerge})
	if err != nil || res.Incremental || !res.Committed {
		t.Fatalf("wide delta: %+v %v", res, err)
	}
	if fmt.Sprint(res.Changes) != "[~ security address-book Host2]" {
		t.Errorf("changes %q", res.Changes)
	}
	for _, c := range []*recorder{h.comps[0], pr.recorder, h.comps[2]} {
		if c.count() != 2 {
			t.Errorf("%s applied %d times, want 2", c.name, c.count())
		}
	}
}

// storedConfig parses rollback 0.
func storedConfig(t *testing.T, h *harness) (*config.Config, []byte) {
	t.Helper()
	h.d.WaitPersisted()
	_, text, err := h.d.store.Get(0)
	if err != nil {
		t.Fatal(err)
	}
	cfg, ds := config.ParseBytes("rollback0", text)
	if cfg == nil {
		t.Fatalf("stored configuration: %v", ds)
	}
	return cfg, text
}

// TestCommitLoadSetHierarchicalBase: a delta over a configuration file in
// the brace form stores the whole result (rendered in set form), and later
// deltas build on it.
func TestCommitLoadSetHierarchicalBase(t *testing.T) {
	data, err := os.ReadFile("../config/testdata/srx1.conf")
	if err != nil {
		t.Fatal(err)
	}
	h, _ := startDeltaDaemon(t, string(data))
	for i, delta := range []string{addNoSSH, "set security policies from-zone trust to-zone vpn policy NO-SSH then count\n"} {
		if _, err := h.do(t, VerbCommit, CommitRequest{Name: "-", Text: delta, Load: LoadSet}); err != nil {
			t.Fatalf("delta %d: %v", i, err)
		}
		stored, text := storedConfig(t, h)
		if config.DetectFormat(text) != config.FormatSet || jsonOfConfig(t, stored) != jsonOfConfig(t, h.d.active) {
			t.Fatalf("delta %d: stored configuration differs from the active one", i)
		}
	}
}

// TestCommitLoadSetCompacts: appended delta lines are folded into a
// rendering of the whole configuration once they have grown, and the
// stored text still parses to the active configuration.
func TestCommitLoadSetCompacts(t *testing.T) {
	h, _ := startDeltaDaemon(t, srx1(t))
	line := "set security policies from-zone trust to-zone vpn policy VPN-OUT then count\n"
	delta := strings.Repeat(line, 10)
	appended := 0
	for i := 0; i < 100; i++ {
		if _, err := h.do(t, VerbCommit, CommitRequest{Name: "-", Text: delta, Load: LoadSet}); err != nil {
			t.Fatalf("delta %d: %v", i, err)
		}
		appended += len(delta)
	}
	stored, text := storedConfig(t, h)
	if len(text) >= len(srx1(t))+appended/2 {
		t.Errorf("stored text is %d bytes after %d bytes of deltas: never compacted", len(text), appended)
	}
	if jsonOfConfig(t, stored) != jsonOfConfig(t, h.d.active) {
		t.Error("stored configuration differs from the active one")
	}
	// The configuration file (appended to, compacted in the background)
	// parses to the active configuration as well.
	file, err := os.ReadFile(h.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(file) >= len(srx1(t))+appended/2 {
		t.Errorf("configuration file is %d bytes after %d bytes of deltas: never compacted", len(file), appended)
	}
	if cfg, ds := config.ParseBytes(h.cfgPath, file); cfg == nil || jsonOfConfig(t, cfg) != jsonOfConfig(t, h.d.active) {
		t.Errorf("configuration file differs from the active configuration: %v", ds)
	}
}

func jsonOfConfig(t *testing.T, cfg *config.Config) string {
	t.Helper()
	// Positions differ between the stored text and the edited tree.
	var b strings.Builder
	for _, pc := range cfg.Policies.Contexts {
		for _, p := range pc.Policies {
			fmt.Fprintf(&b, "%s/%s/%s %v %v %v %v %v;", pc.From, pc.To, p.Name, p.SourceAddresses, p.DestinationAddresses, p.Applications, p.Action, p.Count)
		}
	}
	return b.String() + fmt.Sprint(len(cfg.Zones), len(cfg.AddressBooks), len(cfg.IPsec.VPNs), len(cfg.Interfaces))
}
