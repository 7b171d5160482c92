package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/bpfvpn/bpfvpn/control/config"
)

// TestCommitLoadSetDurableBeforeAnswer: when `load set` answers, its lines
// are in the configuration file even though the commit store entry is
// still being written; a daemon started on the same files right then (as
// after a kill) has the change active and in its commit history. A
// `load merge` is in the file when it answers too.
func TestCommitLoadSetDurableBeforeAnswer(t *testing.T) {
	h, _ := startDeltaDaemon(t, srx1(t))
	dir := filepath.Dir(h.cfgPath)
	gate := make(chan struct{})
	released := false
	release := func() {
		if !released {
			released = true
			close(gate)
		}
	}
	t.Cleanup(release) // before the first daemon stops (it waits for its persists)
	h.d.mu.Lock()
	h.d.beforePersist = func() { <-gate }
	h.d.mu.Unlock()

	res, err := h.do(t, VerbCommit, CommitRequest{Name: "-", Text: addNoSSH, Load: LoadSet})
	if err != nil || !res.Committed || !res.Persisting {
		t.Fatalf("load set: %+v %v", res, err)
	}
	// The store write is held at the gate: only the synced append is done.
	text, err := os.ReadFile(h.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg, ds := config.ParseBytes(h.cfgPath, text)
	if cfg == nil || !hasPolicy(cfg, "NO-SSH") {
		t.Fatalf("configuration file after the answer lacks the delta: %v", ds)
	}
	if list, _ := h.d.store.List(); len(list) != 1 {
		t.Fatalf("store holds %d entries while its write is held", len(list))
	}

	// "Restart": a second daemon on the same file and store.
	h2 := startDaemonIn(t, dir, "run2", "", []Component{&recorder{name: "kernel"}, &recorder{name: "dataplane"}, &recorder{name: "ike"}})
	if !hasPolicy(h2.d.active, "NO-SSH") || !hasPolicy(h2.comps[1].last(), "NO-SSH") {
		t.Error("restarted daemon lost the load set commit")
	}
	if fmt.Sprint(policyNames(h2.d.active, "trust", "vpn")) != "[NO-SSH VPN-OUT]" {
		t.Errorf("restarted daemon: trust→vpn %v", policyNames(h2.d.active, "trust", "vpn"))
	}
	if stored, _ := storedConfig(t, h2); !hasPolicy(stored, "NO-SSH") {
		t.Error("restarted daemon's rollback 0 lacks the load set commit")
	}
	release()
	h.d.WaitPersisted()

	// load merge renders the whole tree before answering.
	merge := "security { policies { from-zone trust to-zone vpn { policy MERGED { match { source-address any; destination-address any; application junos-ssh; } then { deny; } } } } }\n"
	if res, err := h2.do(t, VerbCommit, CommitRequest{Name: "-", Text: merge, Load: LoadMerge}); err != nil || !res.Committed {
		t.Fatalf("load merge: %+v %v", res, err)
	}
	text, _ = os.ReadFile(h2.cfgPath)
	if cfg, ds := config.ParseBytes(h2.cfgPath, text); cfg == nil || !hasPolicy(cfg, "MERGED") || !hasPolicy(cfg, "NO-SSH") {
		t.Fatalf("configuration file after load merge: %v", ds)
	}
}
