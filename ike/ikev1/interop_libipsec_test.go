package ikev1

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bpfvpn/bpfvpn/ike/interop"
	"github.com/bpfvpn/bpfvpn/ike/udp"
)

// The full interop tier on the host: charon in a private namespace with
// kernel-libipsec (userspace ESP, shared harness of ike/interop) installs
// real CHILD SAs, so both roles, rekeys and deletes are checked end to end.
const (
	nsCharonAddr = "127.0.0.1"
	nsCharonPort = 1500
	nsCharonNATT = 14500
	nsPeerAddr   = "127.0.0.2"
)

type nsFixture struct {
	t      *testing.T
	charon *interop.Charon
	eng    *Engine
	sink   *recSink
}

func swanctlConfNS(s interopSuite) string {
	return fmt.Sprintf(`connections {
	gw {
		version = 1
		aggressive = no
		local_addrs = %s
		remote_addrs = %s
		remote_port = 500
		proposals = %s
		rekey_time = 0
		reauth_time = 0
		dpd_delay = 5s
		local {
			auth = psk
			id = %s
		}
		remote {
			auth = psk
			id = %s
		}
		children {
			c {
				esp_proposals = %s
				local_ts = 0.0.0.0/0
				remote_ts = 0.0.0.0/0
				mode = tunnel
				rekey_time = 0
			}
		}
	}
}
secrets {
	ike-1 {
		secret = "%s"
	}
}
`, nsCharonAddr, nsPeerAddr, s.swanIKE, nsCharonAddr, nsPeerAddr, s.swanESP, pairPSK)
}

func newNSFixture(t *testing.T, s interopSuite) *nsFixture {
	if why := interop.Available(); why != "" {
		t.Skip("strongSwan interop (kernel-libipsec) unavailable: " + why)
	}
	ns, err := interop.NewNetns("ikev1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	dir := t.TempDir()
	ch, err := interop.StartCharon(interop.CharonOptions{Dir: dir, Netns: ns, Port: nsCharonPort, NATPort: nsCharonNATT,
		SwanctlConf: swanctlConfNS(s), LogLevel: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			var keep []string
			for _, l := range strings.Split(ch.Log(), "\n") {
				if !strings.Contains(l, "vici") {
					keep = append(keep, l)
				}
			}
			log := strings.Join(keep, "\n")
			if len(log) > 8000 {
				log = log[len(log)-8000:]
			}
			t.Logf("charon log:\n%s", log)
		}
		ch.Stop()
	})
	var r *udp.Runner
	if err := ns.Do(func() error {
		var err error
		r, err = udp.Listen(testLogger(t), []udp.Listener{
			{Addr: netip.MustParseAddrPort(nsPeerAddr + ":500")},
			{Addr: netip.MustParseAddrPort(nsPeerAddr + ":4500"), NATT: true},
		})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	p := basePeer("swan", netip.MustParseAddr(nsPeerAddr), netip.MustParseAddr(nsCharonAddr))
	p.RemotePort, p.RemoteNATTPort = nsCharonPort, nsCharonNATT
	p.IKE, p.ESP, p.PFS = s.ike, s.esp, s.pfs
	p.DPD = DPD{Mode: DPDProbeIdle, Interval: 5 * time.Second, Threshold: 3}
	eng, sink := runEngine(t, r, p, Options{Logger: testLogger(t), RetransmitBase: time.Second, RetransmitTries: 4, DeleteDelay: time.Second})
	return &nsFixture{t: t, charon: ch, eng: eng, sink: sink}
}

func (f *nsFixture) swanctl(args ...string) string {
	f.t.Helper()
	out, err := f.charon.Swanctl(args...)
	if err != nil {
		f.t.Fatalf("swanctl %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return out
}

// matched reports whether charon has exactly one installed CHILD SA whose
// SPIs mirror one of ours, with the phase-1 cookies of an SA of ours.
func (f *nsFixture) matched() (bool, string) {
	sas, err := f.charon.ListSAs()
	if err != nil {
		return false, err.Error()
	}
	ours := f.sink.Installed()
	cookies := map[string]bool{}
	for _, st := range f.eng.IKESAs(time.Now()) {
		cookies[fmt.Sprintf("%016x/%016x", st.SPIi, st.SPIr)] = true
	}
	var desc []string
	n := 0
	for _, s := range sas {
		desc = append(desc, fmt.Sprintf("%s %s %s/%s", s.Name, s.State, s.SPIi, s.SPIr))
		if s.State != "ESTABLISHED" || !cookies[s.SPIi+"/"+s.SPIr] {
			continue
		}
		for _, c := range s.Children {
			desc = append(desc, fmt.Sprintf("  %s %s in=%s out=%s", c.Name, c.State, c.SPIIn, c.SPIOut))
			if c.State != "INSTALLED" {
				continue
			}
			for _, o := range ours {
				if fmt.Sprintf("%08x", o.SPIIn) == c.SPIOut && fmt.Sprintf("%08x", o.SPIOut) == c.SPIIn {
					n++
				}
			}
		}
	}
	return n >= 1, strings.Join(desc, "\n")
}

func (f *nsFixture) waitMatched(what string) {
	f.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, desc := f.matched()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%s: charon and bpfvpn do not agree after 30 s:\n%s\nours: %s", what, desc, f.sink.counts())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestInteropLibipsec: Main Mode + Quick Mode with real CHILD SAs on the
// strongSwan side, both roles, every interop suite; then a Quick Mode
// rekey started by charon, one started by us, and deletes both ways.
func TestInteropLibipsec(t *testing.T) {
	if os.Getenv("IKEV1_SKIP_LIBIPSEC") != "" {
		t.Skip("IKEV1_SKIP_LIBIPSEC set")
	}
	for _, s := range interopSuites() {
		for _, weInit := range []bool{true, false} {
			name := s.name + "/bpfvpn-initiates"
			if !weInit {
				name = s.name + "/charon-initiates"
			}
			t.Run(name, func(t *testing.T) {
				f := newNSFixture(t, s)
				if weInit {
					if err := f.eng.Initiate(time.Now(), "swan"); err != nil {
						t.Fatal(err)
					}
				} else {
					f.swanctl("--initiate", "--child", "c", "--timeout", "20")
				}
				f.waitMatched("establish")
				// kernel-libipsec makes charon fake a NAT to force UDP
				// encapsulation: NAT-T (float to 4500, UDP-encapsulated
				// tunnel mode) is exercised too.
				sa, _ := lastInstalled(f.sink)
				if sa.Encap == nil || sa.Encap.RemotePort != nsCharonNATT || sa.Encap.LocalPort != 4500 || !sa.Encap.RemoteBehindNAT {
					t.Fatalf("CHILD SA encapsulation %+v, want UDP 4500<->%d", sa.Encap, nsCharonNATT)
				}
				out := f.swanctl("--list-sas")
				if !strings.Contains(out, s.wantIKE) || !strings.Contains(out, s.wantChild) {
					t.Fatalf("charon's algorithms are not %s / %s:\n%s", s.wantIKE, s.wantChild, out)
				}
				// Rekey by charon: we see ChildSARekeyed and the pair still matches.
				f.swanctl("--rekey", "--child", "c")
				waitFor(t, 20*time.Second, "our side of charon's rekey", func() bool { return f.sink.Count("rekeyed") >= 1 })
				f.waitMatched("after charon's rekey")
				// Rekey by us.
				f.eng.mu.Lock()
				for _, c := range f.eng.peers[0].childList() {
					if !c.replaced {
						f.eng.rekeyChild(time.Now(), c)
					}
				}
				f.eng.mu.Unlock()
				waitFor(t, 20*time.Second, "our rekey", func() bool { return f.sink.Count("rekeyed") >= 2 })
				f.waitMatched("after our rekey")
				// Delete: we terminate, charon drops every CHILD SA and the IKE SA.
				f.eng.Terminate(time.Now(), "swan")
				waitFor(t, 20*time.Second, "charon to drop the SAs", func() bool {
					sas, err := f.charon.ListSAs()
					return err == nil && len(sas) == 0
				})
			})
		}
	}
}

// TestInteropSimultaneous: charon and bpfvpn start Main Mode at the same
// moment (both keep the tunnel up). The INITIAL-CONTACTs must not leave
// either end waiting for DPD: they agree on a working CHILD SA pair, which
// then stays.
func TestInteropSimultaneous(t *testing.T) {
	if os.Getenv("IKEV1_SKIP_LIBIPSEC") != "" {
		t.Skip("IKEV1_SKIP_LIBIPSEC set")
	}
	s := interopSuites()[0]
	for round := 0; round < 3; round++ {
		t.Run(fmt.Sprintf("round-%d", round), func(t *testing.T) {
			f := newNSFixture(t, s)
			start := make(chan struct{})
			done := make(chan string, 1)
			go func() {
				<-start
				out, err := f.charon.Swanctl("--initiate", "--child", "c", "--timeout", "20")
				if err != nil {
					out += err.Error()
				}
				done <- out
			}()
			close(start)
			if err := f.eng.Initiate(time.Now(), "swan"); err != nil {
				t.Fatal(err)
			}
			f.waitMatched("simultaneous start")
			<-done
			t.Logf("after the start: %d phase-1 SAs here, %s", len(f.eng.IKESAs(time.Now())), f.sink.counts())
			// Duplicate pairs, if any, are deleted; one agreed pair stays.
			defer func() { t.Logf("charon:\n%s", f.swanctl("--list-sas")) }()
			waitFor(t, 30*time.Second, "one CHILD SA pair on each end", func() bool {
				sas, err := f.charon.ListSAs()
				if err != nil {
					return false
				}
				n := 0
				for _, s := range sas {
					for _, c := range s.Children {
						if c.State == "INSTALLED" {
							n++
						}
					}
				}
				return n == 1 && len(f.sink.Installed()) == 1
			})
			t.Logf("%s", f.swanctl("--list-sas"))
			f.waitMatched("after the clean-up")
		})
	}
}
