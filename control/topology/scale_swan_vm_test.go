package topology

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bpfvpn/bpfvpn/control/lab"
	"github.com/bpfvpn/bpfvpn/ike/interop"
	"github.com/bpfvpn/bpfvpn/vm"
)

// SwanEnv runs TestVMScaleStrongSwanPeer (a benchmark reference, not part
// of make test).
const SwanEnv = "BPFVPN_SCALE_SWAN"

// swanctlConf is the SRX2 role of ScaleConfig for strongSwan: the
// reference VPN (i = 0) and n extra ones, each a connection between the
// gateways' WAN addresses of that tunnel whose CHILD SA carries 0/0 on the
// xfrm interface st0.i (if_id i+1), with the lab's proposals (IKE
// aes-256-cbc/sha-256/group19, ESP aes-256-gcm, no PFS) and key. charon
// only responds (SRX1 initiates) and sends no DPD: with the harness's short
// retransmission limits (3 tries) a DPD answered late by a busy initiator
// made charon delete live tunnels.
func swanctlConf(n int, psk string) string {
	var b strings.Builder
	b.WriteString("connections {\n")
	for i := 0; i <= n; i++ {
		local, remote := netip.MustParseAddr("172.16.23.1"), netip.MustParseAddr("172.16.13.1")
		if i > 0 {
			w1, w2 := scaleWAN(i)
			local, remote = w2.Addr(), w1.Addr()
		}
		fmt.Fprintf(&b, `  vpn%d {
    version = 2
    local_addrs = %s
    remote_addrs = %s
    proposals = aes256-sha256-ecp256
    if_id_in = %d
    if_id_out = %d
    local { auth = psk
      id = %s }
    remote { auth = psk }
    children {
      vpn%d {
        local_ts = 0.0.0.0/0
        remote_ts = 0.0.0.0/0
        esp_proposals = aes256gcm16
      }
    }
  }
`, i, local, remote, ScaleUnit(i)+1, ScaleUnit(i)+1, local, i)
	}
	fmt.Fprintf(&b, "}\nsecrets {\n  ike-lab {\n    secret = %q\n  }\n}\n", psk)
	return b.String()
}

var swanStats = regexp.MustCompile(`IKE_SAs: (\d+) total`)

// TestVMScaleStrongSwanPeer is the peer-side reference of
// TestVMScaleTunnels: SRX2's daemon creates the st0 units (xfrm interfaces,
// if_id unit+1) and WAN addresses of n extra tunnels and is stopped; charon
// (kernel-netlink, swanctl) takes the SRX2 role with n+1 connections; SRX1's
// daemon initiates every tunnel. It logs a SCALE-SWAN line: time to all-up
// (SRX1 reports every tunnel up and charon holds an IKE SA for each of the
// n new ones) and the RSS of SRX1's daemon and of charon. It runs with
// BPFVPN_SCALE_SWAN=1 (make bench-topology).
func TestVMScaleStrongSwanPeer(t *testing.T) {
	vm.RequireKernelIPsec(t)
	if os.Getenv(SwanEnv) != "1" {
		t.Skip("benchmark reference: " + SwanEnv + "=1 runs it (make bench-topology)")
	}
	if _, err := os.Stat(interop.CharonBinary); err != nil {
		t.Skip("strongSwan charon missing (Debian strongswan-charon, strongswan-swanctl)")
	}
	ctx := context.Background()
	r, n := upScaleLab(t, ctx)

	// SRX2's daemon lays out the st0 units and WAN addresses, then leaves
	// them to charon (a stopped daemon keeps its kernel objects).
	srx2, err := ScaleConfig(lab.SRX2, n, lab.ConfigOptions{IKEVersion: "v2-only"}, "on-traffic")
	if err != nil {
		t.Fatal(err)
	}
	commit(t, r, lab.SRX2, srx2)
	if l := st0Links(t, r, lab.SRX2); len(l) != n+1 {
		t.Fatalf("srx2 holds %d st0 units, want %d", len(l), n+1)
	}
	pid := r.Running()[lab.SRX2]
	syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(30 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatal("srx2 daemon did not stop")
		}
		time.Sleep(50 * time.Millisecond)
	}
	ns := r.Lab().Namespace(lab.SRX2)
	for _, what := range []string{"state", "policy"} {
		if out, err := exec.Command("ip", "-n", ns, "xfrm", what, "flush").CombinedOutput(); err != nil {
			t.Fatalf("xfrm %s flush: %v: %s", what, err, out)
		}
	}
	dir := t.TempDir()
	charon, err := interop.StartCharon(interop.CharonOptions{Dir: dir, Netns: &interop.Netns{Name: ns},
		Threads: 8, LogLevel: -1, SwanctlConf: swanctlConf(n, "$ABC123"),
		Plugins: "random nonce openssl kdf pem pkcs1 x509 pubkey kernel-netlink socket-default vici"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(charon.Stop)
	srx1Pid := r.Running()[lab.SRX1]
	rss1, cpu1 := rssKiB(srx1Pid), cpuSeconds(srx1Pid)
	rssCharon0 := rssKiB(charon.Pid())

	srx1, err := ScaleConfig(lab.SRX1, n, lab.ConfigOptions{IKEVersion: "v2-only"}, "immediately")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	commit(t, r, lab.SRX1, srx1)
	committed := time.Since(start)
	var ikeSAs int
	// Within the test binary's 10 minutes (lab and commits included).
	limit := start.Add(min(time.Duration(60+n)*time.Second, 8*time.Minute))
	last := ""
	for {
		up, total, err := upCount(ctx, r, lab.SRX1)
		if out, serr := charon.Swanctl("--stats"); serr == nil {
			if m := swanStats.FindStringSubmatch(out); m != nil {
				ikeSAs, _ = strconv.Atoi(m[1])
			}
		}
		s := fmt.Sprintf("srx1 %d/%d (%v), charon %d IKE SAs", up, total, err, ikeSAs)
		if s != last {
			t.Logf("[%5.1fs] %s; rss srx1 %d KiB, charon %d KiB", time.Since(start).Seconds(), s, rssKiB(srx1Pid), rssKiB(charon.Pid()))
			last = s
		}
		// The reference tunnel stays up on SRX1 with the stopped daemon's
		// SAs until DPD notices: charon's count covers the n new ones.
		if err == nil && up == n+1 && total == n+1 && ikeSAs >= n {
			break
		}
		if time.Now().After(limit) {
			t.Fatalf("not all up after %v: %s", time.Since(start), s)
		}
		time.Sleep(250 * time.Millisecond)
	}
	allUp := time.Since(start)
	states, policies := xfrmCounts(t, r, lab.SRX2)
	t.Logf("SCALE-SWAN tunnels=%d commit=%.2fs all-up=%.2fs rss: srx1 %d KiB (was %d KiB with 1 tunnel), charon %d KiB (was %d KiB before the commit); srx1 cpu since commit %.1fs, charon cpu %.1fs; charon's xfrm: %d states, %d policies",
		n, committed.Seconds(), allUp.Seconds(), rssKiB(srx1Pid), rss1, rssKiB(charon.Pid()), rssCharon0,
		cpuSeconds(srx1Pid)-cpu1, cpuSeconds(charon.Pid()), states, policies)
	if states < 2*n {
		t.Errorf("charon installed %d XFRM states for %d tunnels", states, n)
	}
	// One echo through the first and the last tunnel: the SAs carry traffic
	// over the if_id-bound xfrm interfaces.
	for _, i := range []int{1, n} {
		_, dst := ScaleAddrs(i)
		if err := r.PingFrom(ctx, lab.SRX1, dst, 1); err != nil {
			t.Errorf("echo through tunnel %d (%s): %v", i, dst, err)
		}
	}
}
