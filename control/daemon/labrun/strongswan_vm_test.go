package labrun

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/bpfvpn/bpfvpn/control/lab"
	"github.com/bpfvpn/bpfvpn/ike/interop"
	"github.com/bpfvpn/bpfvpn/vm"
)

// bpfvpn as SRX1 against strongSwan's charon as SRX2 (swanctl.conf from
// lab.SwanctlConfig: the reference proposals, PSK and route-based 0/0
// selectors on an xfrm interface with if_id 1).
func TestVMLabStrongSwanIKEv1(t *testing.T) { strongSwanScenario(t, "") }

func TestVMLabStrongSwanIKEv2(t *testing.T) { strongSwanScenario(t, "v2-only") }

func newStrongSwanRun(t *testing.T, cfg lab.ConfigOptions, dataplane bool) *Run {
	t.Helper()
	vm.RequireKernelIPsec(t)
	if why := interop.Available(); why != "" {
		t.Skip("strongSwan unavailable: " + why)
	}
	r := newTestRun(t, cfg, dataplane)
	r.opts.SRX2 = PeerStrongSwan
	return r
}

// charonChild returns the SPIs (inbound, outbound, hex as swanctl prints
// them) of charon's installed CHILD SAs.
func charonChildren(t *testing.T, r *Run) [][2]string {
	t.Helper()
	sas, err := r.Charon().ListSAs()
	if err != nil {
		t.Fatal(err)
	}
	var out [][2]string
	for _, sa := range sas {
		for _, c := range sa.Children {
			if c.State == "INSTALLED" {
				out = append(out, [2]string{c.SPIIn, c.SPIOut})
			}
		}
	}
	return out
}

// sameSAs checks that SRX1's IPsec SAs are the mirror of one of charon's
// CHILD SAs: SRX1's inbound SPI is charon's outbound and the reverse.
func sameSAs(t *testing.T, r *Run) (bool, string) {
	t.Helper()
	ours := spis(t, r, lab.SRX1)
	theirs := charonChildren(t, r)
	var in, out string
	for _, s := range ours {
		if s[0] == '<' {
			in = s[1:]
		} else {
			out = s[1:]
		}
	}
	for _, c := range theirs {
		if c[0] == out && c[1] == in {
			return true, ""
		}
	}
	return false, fmt.Sprintf("srx1 SAs %v, charon CHILD SAs (in, out) %v", ours, theirs)
}

func strongSwanScenario(t *testing.T, version string) {
	r := newStrongSwanRun(t, lab.ConfigOptions{IKEVersion: version}, false)
	ctx := context.Background()
	upVerified(t, ctx, r, version)
	if ok, why := sameSAs(t, r); !ok {
		t.Fatalf("bpfvpn and charon disagree: %s", why)
	}
	// charon's SAs are kernel SAs bound to st0.0's if_id.
	out, err := exec.Command("ip", "-n", r.Lab().Namespace(lab.SRX2), "xfrm", "state").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "if_id 0x1") {
		t.Errorf("srx2 kernel SAs lack if_id 1: %v\n%s", err, out)
	}

	t.Run("traffic", func(t *testing.T) {
		if err := r.PingFrom(ctx, lab.Host2, Host1Addr, 3); err != nil {
			t.Error(err)
		}
		const n = 1 << 20
		if got, _ := tcpTransferBetween(t, r, lab.Host1, lab.Host2, Host2Addr, n); got != n-n%6 {
			t.Errorf("host1 → host2: host2 received %d bytes", got)
		}
		if got, _ := tcpTransferBetween(t, r, lab.Host2, lab.Host1, Host1Addr, n); got != n-n%6 {
			t.Errorf("host2 → host1: host1 received %d bytes", got)
		}
		if enc, dec := espPackets(t, r, lab.SRX1); enc < 100 || dec < 100 {
			t.Errorf("srx1: encrypted %d, decrypted %d packets after two 1 MiB transfers", enc, dec)
		}
	})
	t.Run("charon-rekeys", func(t *testing.T) {
		before := spis(t, r, lab.SRX1)
		if out, err := r.Charon().Swanctl("--rekey", "--child", "VPN-to-Host1"); err != nil {
			t.Fatalf("swanctl --rekey: %v\n%s", err, out)
		}
		// The new pair is on both sides (IKEv1 keeps the rekeyed pair
		// until it expires or is deleted, so the old one may stay listed).
		deadline := time.Now().Add(60 * time.Second)
		for {
			after := spis(t, r, lab.SRX1)
			have := strings.Join(after, " ")
			fresh := ""
			for _, c := range charonChildren(t, r) {
				if !strings.Contains(strings.Join(before, " "), c[0]) &&
					strings.Contains(have, "<"+c[1]) && strings.Contains(have, ">"+c[0]) {
					fresh = c[0] + "/" + c[1]
				}
			}
			if fresh != "" {
				t.Logf("rekeyed by charon: %v → %v (charon in/out %s)", before, after, fresh)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no new SA pair on both sides after charon's rekey: srx1 %v, charon %v", after, charonChildren(t, r))
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err := r.Ping(ctx, 3); err != nil {
			t.Fatal(err)
		}
	})
}
