package labrun

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/bpfvpn/bpfvpn/control/lab"
	"github.com/bpfvpn/bpfvpn/ike/interop"
	"github.com/bpfvpn/bpfvpn/vm"
)

// TestVMLabIKEFlood floods SRX1 with spoofed IKE_SA_INIT requests from the
// Internet node while Host1 pings Host2 through the established tunnel,
// then lets a second gateway (charon at lab.Site3) connect to SRX1:
//   - flood A comes from 4 spoofed addresses as fast as the sender goes
//     (hundreds of requests/s each): the XDP per-source IKE limit (50/s,
//     burst 100) drops most of it, the rest dies in the daemon's
//     dispatcher (no such peer);
//   - flood B spoofs Site3's own address just under that limit, so every
//     request reaches the IKEv2 engine of VPN-to-Site3 and becomes a
//     half-open SA, until the engine demands COOKIEs (1000 half-open);
//   - charon then connects while flood B goes on. At the threshold the
//     engine alternates between COOKIE replies and new half-open SAs as old
//     ones expire, so whether charon's own request meets a COOKIE depends
//     on timing: logged, not asserted.
//
// The tunnel's ping loses nothing, SRX1's drop-ike-rate counter grows,
// COOKIE replies are seen on the wire and Site3's tunnel comes up.
func TestVMLabIKEFlood(t *testing.T) {
	vm.RequireKernelIPsec(t)
	if why := interop.Available(); why != "" {
		t.Skip("strongSwan unavailable: " + why)
	}
	r := newTestRun(t, lab.ConfigOptions{IKEVersion: "v2-only"}, true)
	r.opts.ExtraConfig = map[string]string{lab.SRX1: lab.Site3SRX1Config}
	r.opts.NoWait = []string{"VPN-to-Site3"}
	ctx := context.Background()
	if err := r.Up(ctx, true); err != nil {
		t.Fatalf("lab up: %v", err)
	}
	t.Cleanup(func() { r.Lab().RemoveSite3() })
	if err := r.Lab().AddSite3(); err != nil {
		t.Fatal(err)
	}
	conf, err := lab.Site3SwanctlConfig("")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(r.Dir(), lab.Site3+"-charon")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	site3, err := interop.StartCharon(interop.CharonOptions{Dir: dir, Netns: &interop.Netns{Name: r.Lab().Namespace(lab.Site3)},
		Plugins: charonPlugins, SwanctlConf: conf, LogLevel: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s charon log tail:\n%s", lab.Site3, tail(filepath.Join(dir, "charon.log"), 60))
		}
		site3.Stop()
	})

	nsInternet, err := netns.GetFromName(r.Lab().Namespace(lab.Internet))
	if err != nil {
		t.Fatal(err)
	}
	defer nsInternet.Close()
	nsH1, err := netns.GetFromName(r.Lab().Namespace(lab.Host1))
	if err != nil {
		t.Fatal(err)
	}
	defer nsH1.Close()
	srx1WAN := netip.MustParseAddr("172.16.13.1")
	replies, err := lab.WatchInitReplies(nsInternet, "eth0", srx1WAN)
	if err != nil {
		t.Fatal(err)
	}
	defer replies.Close()
	drops0 := dropCounter(t, r, lab.SRX1, "drop-ike-rate")
	pinger, err := lab.StartPinger(nsH1, Host2Addr, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}

	var spoofed []netip.Addr
	for i := 1; i <= 4; i++ {
		spoofed = append(spoofed, netip.AddrFrom4([4]byte{198, 18, 0, byte(i)}))
	}
	floods := []struct {
		name string
		f    lab.IKEFlood
	}{
		{"A (4 spoofed sources)", lab.IKEFlood{Sources: spoofed, Count: 6000, Duration: 20 * time.Second}},
		{"B (spoofing srx3)", lab.IKEFlood{Sources: []netip.Addr{lab.Site3Wire.B.Address.Addr()}, Count: 6000, Rate: 48, Duration: 130 * time.Second}},
	}
	fctx, stopFloods := context.WithCancel(ctx)
	defer stopFloods()
	var wg sync.WaitGroup
	sent := make([]int, len(floods))
	errs := make([]error, len(floods))
	for i, fl := range floods {
		fl.f.Target = netip.AddrPortFrom(srx1WAN, 500)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent[i], errs[i] = fl.f.Send(fctx, nsInternet)
		}()
	}
	finish := func() {
		stopFloods()
		wg.Wait()
		for i, fl := range floods {
			t.Logf("flood %s: %d IKE_SA_INIT requests sent (err %v)", fl.name, sent[i], errs[i])
		}
	}

	// The half-open SAs of flood B pile up until the engine asks for
	// cookies (1000 half-open SAs, each kept 30 s: the responder must
	// answer more than 33 requests/s; the XDP limit admits 50/s).
	floodStart := time.Now()
	deadline := floodStart.Add(120 * time.Second)
	for replies.Cookies() == 0 {
		if time.Now().After(deadline) {
			finish()
			t.Fatalf("no COOKIE from srx1 after 120 s of flood: %d IKE_SA_INIT replies (%.1f/s; the 1000 half-open SAs of the threshold need > 33/s)",
				replies.Others(), float64(replies.Others())/time.Since(floodStart).Seconds())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("srx1 asks for cookies after %d IKE_SA_INIT replies", replies.Others())

	// The legitimate second gateway connects while flood B goes on.
	out, err := site3.Swanctl("--initiate", "--child", "VPN-to-SRX1", "--timeout", "60")
	if err != nil {
		finish()
		t.Fatalf("%s: swanctl --initiate: %v\n%s", lab.Site3, err, out)
	}
	finish()
	for i := range floods {
		if errs[i] != nil {
			t.Errorf("flood %s: %v", floods[i].name, errs[i])
		}
	}
	st := pinger.Stop(5 * time.Second)
	t.Logf("ping host1 → host2 during the flood: %s", st)
	if st.Received == 0 || len(st.Lost) != 0 {
		t.Errorf("established tunnel lost %d of %d pings during the flood: %v", len(st.Lost), st.Sent, st.Lost)
	}
	drops := dropCounter(t, r, lab.SRX1, "drop-ike-rate") - drops0
	t.Logf("srx1 drop-ike-rate +%d, COOKIE replies %d, other IKE_SA_INIT replies %d", drops, replies.Cookies(), replies.Others())
	if drops == 0 {
		t.Error("the XDP IKE rate limit dropped nothing")
	}
	if replies.Cookies() == 0 {
		t.Error("srx1 sent no COOKIE")
	}
	t.Logf("%s went through a COOKIE exchange: %v", lab.Site3, strings.Contains(site3.Log(), "N(COOKIE)"))
	// Both sides hold the new tunnel.
	deadline = time.Now().Add(30 * time.Second)
	for {
		stat, err := r.Status(ctx, lab.SRX1)
		up := 0
		for _, tu := range stat.Tunnels {
			if tu.Up {
				up++
			}
		}
		if err == nil && up == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("srx1 tunnels not both up: %+v %v", stat.Tunnels, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := r.Ping(ctx, 3); err != nil {
		t.Error(err)
	}
}
