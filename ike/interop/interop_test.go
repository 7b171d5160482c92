package interop

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/bpfvpn/bpfvpn/ike"
	"github.com/bpfvpn/bpfvpn/ike/iketest"
	"github.com/bpfvpn/bpfvpn/ike/ikev2"
	"github.com/bpfvpn/bpfvpn/ike/suite"
	"github.com/bpfvpn/bpfvpn/vm"
)

type interopSuite struct {
	name, ike, esp string
	ikeProp        ikev2.IKEProposal
	child          ikev2.ChildProposal
}

var interopSuites = []interopSuite{
	{"aesgcm256-prfsha384-ecp384", "aes256gcm16-prfsha384-ecp384", "aes256gcm16",
		ikev2.IKEProposal{Encryption: []suite.Encr{{ID: suite.EncrAESGCM16, KeyBits: 256}}, PRF: []suite.PRFID{suite.PRFHMACSHA2384}, DH: []suite.DHGroup{suite.ECP384}},
		ikev2.ChildProposal{Encryption: []suite.Encr{{ID: suite.EncrAESGCM16, KeyBits: 256}}}},
	{"aes256-sha256-modp2048", "aes256-sha256-modp2048", "aes256-sha256",
		ikev2.IKEProposal{Encryption: []suite.Encr{{ID: suite.EncrAESCBC, KeyBits: 256}}, Integrity: []suite.IntegID{suite.IntegHMACSHA2256128}, PRF: []suite.PRFID{suite.PRFHMACSHA2256}, DH: []suite.DHGroup{suite.MODP2048}},
		ikev2.ChildProposal{Encryption: []suite.Encr{{ID: suite.EncrAESCBC, KeyBits: 256}}, Integrity: []suite.IntegID{suite.IntegHMACSHA2256128}}},
	{"chacha20poly1305-x25519", "chacha20poly1305-prfsha256-x25519", "chacha20poly1305",
		ikev2.IKEProposal{Encryption: []suite.Encr{{ID: suite.EncrChaCha20Poly1305}}, PRF: []suite.PRFID{suite.PRFHMACSHA2256}, DH: []suite.DHGroup{suite.Curve25519}},
		ikev2.ChildProposal{Encryption: []suite.Encr{{ID: suite.EncrChaCha20Poly1305}}}},
}

const (
	charonAddr = "127.0.0.1"
	peerAddr   = "127.0.0.2"
	peerPort   = 500
	charonPort = 1500
	charonNAT  = 14500
	psk        = "interop-secret-0123456789"
)

func swanctlConf(s interopSuite) string {
	return fmt.Sprintf(`connections {
  bpf {
    version = 2
    local_addrs = %s
    remote_addrs = %s
    remote_port = %d
    proposals = %s
    rekey_time = 24h
    fragmentation = yes
    local {
      auth = psk
      id = charon.test
    }
    remote {
      auth = psk
      id = bpfvpn.test
    }
    children {
      net {
        local_ts = 0.0.0.0/0
        remote_ts = 0.0.0.0/0
        esp_proposals = %s
        rekey_time = 24h
        start_action = none
      }
    }
  }
}
secrets {
  ike-bpf {
    id-1 = charon.test
    id-2 = bpfvpn.test
    secret = "%s"
  }
}
`, charonAddr, peerAddr, peerPort, s.ike, s.esp, psk)
}

type fixture struct {
	ns     *Netns
	t      *testing.T
	charon *Charon
	peer   *Peer
	sink   *iketest.Sink
}

func testLog(t *testing.T) *slog.Logger {
	if os.Getenv("IKE_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newFixture(t *testing.T, s interopSuite) *fixture { return newFixtureKernel(t, s, false) }

// newFixtureKernel starts charon with kernel-netlink (real XFRM SAs, the
// VM tier) when kernel is set, with kernel-libipsec otherwise.
func newFixtureKernel(t *testing.T, s interopSuite, kernel bool) *fixture {
	if why := Available(); why != "" {
		t.Skip("strongSwan interop unavailable: " + why)
	}
	ns, err := NewNetns("ikev2")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	dir, err := os.MkdirTemp("", "ikev2-interop-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			os.RemoveAll(dir)
		} else {
			t.Logf("charon files kept in %s", dir)
		}
	})
	opts := CharonOptions{Dir: dir, Netns: ns, Port: charonPort, NATPort: charonNAT, SwanctlConf: swanctlConf(s), LogLevel: 2}
	if kernel {
		opts.Plugins = "random nonce openssl kdf pem pkcs1 x509 pubkey kernel-netlink socket-default vici"
	}
	ch, err := StartCharon(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("charon log:\n%s", tail(ch.Log(), 60))
		}
		ch.Stop()
	})
	sink := iketest.NewSink()
	peer, err := StartPeer(ns, netip.MustParseAddrPort(fmt.Sprintf("%s:%d", peerAddr, peerPort)),
		netip.MustParseAddrPort(peerAddr+":4500"), ikev2.Config{Sink: sink}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(peer.Stop)
	err = peer.Engine.AddConnection(ikev2.Connection{
		Name: "bpf", Gateway: "charon", ReqID: 1, IfID: 1,
		Local:          netip.MustParseAddrPort(fmt.Sprintf("%s:%d", peerAddr, peerPort)),
		Remote:         netip.MustParseAddrPort(fmt.Sprintf("%s:%d", charonAddr, charonPort)),
		RemoteNATPort:  charonNAT,
		LocalID:        ikev2.ParseIdentity("bpfvpn.test"),
		RemoteID:       ikev2.ParseIdentity("charon.test"),
		PSK:            []byte(psk),
		IKEProposals:   []ikev2.IKEProposal{s.ikeProp},
		ChildProposals: []ikev2.ChildProposal{s.child},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, charon: ch, peer: peer, sink: sink, ns: ns}
}

func tail(s string, n int) string {
	l := strings.Split(s, "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// waitFor polls cond until it holds or the deadline passes.
func (f *fixture) waitFor(what string, cond func() bool) {
	f.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			f.t.Fatalf("%s: not reached in 30 s (engine error: %v)", what, f.peer.Engine.LastError("bpf"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// matched reports whether charon and bpfvpn agree on exactly one IKE SA
// and one CHILD SA with the same SPIs.
func (f *fixture) matched() (bool, string) {
	sas, err := f.charon.ListSAs()
	if err != nil {
		return false, err.Error()
	}
	ours := f.peer.Engine.IKESAs(time.Now())
	inst := f.sink.Installed()
	if len(sas) != 1 || len(ours) != 1 || len(inst) != 1 {
		return false, fmt.Sprintf("charon %d IKE SAs, bpfvpn %d IKE SAs and %d CHILD SAs", len(sas), len(ours), len(inst))
	}
	c, o := sas[0], ours[0]
	if c.State != "ESTABLISHED" || o.State != ike.StateEstablished || c.SPIi != fmt.Sprintf("%016x", o.SPIi) || c.SPIr != fmt.Sprintf("%016x", o.SPIr) {
		return false, fmt.Sprintf("IKE SA charon %+v bpfvpn %x/%x %v", c, o.SPIi, o.SPIr, o.State)
	}
	if len(c.Children) != 1 {
		return false, fmt.Sprintf("charon has %d CHILD SAs", len(c.Children))
	}
	for _, sa := range inst {
		ch := c.Children[0]
		if ch.State != "INSTALLED" || ch.SPIIn != fmt.Sprintf("%08x", sa.SPIOut) || ch.SPIOut != fmt.Sprintf("%08x", sa.SPIIn) {
			return false, fmt.Sprintf("CHILD SA charon %+v bpfvpn in=%08x out=%08x", ch, sa.SPIIn, sa.SPIOut)
		}
	}
	return true, ""
}

func (f *fixture) waitMatched(what string) {
	f.t.Helper()
	var why string
	deadline := time.Now().Add(30 * time.Second)
	for {
		var ok bool
		if ok, why = f.matched(); ok {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%s: charon and bpfvpn disagree: %s (engine error: %v)", what, why, f.peer.Engine.LastError("bpf"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (f *fixture) ikeSPI() uint64 {
	if s := f.peer.Engine.IKESAs(time.Now()); len(s) == 1 {
		return s[0].SPIi
	}
	return 0
}

func (f *fixture) swanctl(args ...string) {
	f.t.Helper()
	if out, err := f.charon.Swanctl(args...); err != nil {
		f.t.Fatalf("swanctl %v: %v\n%s", args, err, out)
	}
}

// rekeyBothWays rekeys the CHILD and IKE SA from each side and checks that
// both ends agree after every step.
func (f *fixture) rekeyBothWays() {
	f.t.Helper()
	f.peer.Engine.RekeyChild(time.Now(), "bpf")
	f.waitFor("bpfvpn child rekey", func() bool { return f.sink.Count("rekeyed") == 1 })
	f.waitMatched("after bpfvpn child rekey")

	old := f.ikeSPI()
	if err := f.peer.Engine.RekeyIKE(time.Now(), "bpf"); err != nil {
		f.t.Fatal(err)
	}
	f.waitFor("bpfvpn IKE rekey", func() bool { s := f.ikeSPI(); return s != 0 && s != old })
	f.waitMatched("after bpfvpn IKE rekey")

	f.swanctl("--rekey", "--child", "net")
	f.waitFor("charon child rekey", func() bool { return f.sink.Count("rekeyed") == 2 })
	f.waitMatched("after charon child rekey")

	old = f.ikeSPI()
	f.swanctl("--rekey", "--ike", "bpf")
	f.waitFor("charon IKE rekey", func() bool { s := f.ikeSPI(); return s != 0 && s != old })
	f.waitMatched("after charon IKE rekey")
}

func TestInteropBpfvpnInitiator(t *testing.T) {
	for _, s := range interopSuites {
		t.Run(s.name, func(t *testing.T) {
			f := newFixture(t, s)
			if err := f.peer.Engine.Initiate(time.Now(), "bpf"); err != nil {
				t.Fatal(err)
			}
			f.waitMatched("established")
			f.rekeyBothWays()
			f.peer.Engine.Terminate(time.Now(), "bpf")
			f.waitFor("deleted on both sides", func() bool {
				sas, err := f.charon.ListSAs()
				return err == nil && len(sas) == 0 && len(f.sink.Installed()) == 0 && len(f.peer.Engine.IKESAs(time.Now())) == 0
			})
		})
	}
}

func TestInteropBpfvpnResponder(t *testing.T) {
	for _, s := range interopSuites {
		t.Run(s.name, func(t *testing.T) {
			f := newFixture(t, s)
			f.swanctl("--initiate", "--child", "net", "--ike", "bpf", "--timeout", "20")
			f.waitMatched("established")
			if st := f.peer.Engine.IKESAs(time.Now())[0]; st.Role != ike.Responder {
				t.Fatalf("bpfvpn role %v", st.Role)
			}
			f.rekeyBothWays()
			f.swanctl("--terminate", "--ike", "bpf", "--timeout", "20")
			f.waitFor("deleted on both sides", func() bool {
				sas, err := f.charon.ListSAs()
				return err == nil && len(sas) == 0 && len(f.sink.Installed()) == 0 && len(f.peer.Engine.IKESAs(time.Now())) == 0
			})
		})
	}
}

// TestInteropChildless opens an IKE SA without CHILD SA (RFC 6023) with
// charon as responder, the mode the benchmark uses.
func TestInteropChildless(t *testing.T) {
	f := newFixture(t, interopSuites[2])
	f.peer.Engine.AddConnection(ikev2.Connection{
		Name: "bpf", Local: netip.MustParseAddrPort(fmt.Sprintf("%s:%d", peerAddr, peerPort)),
		Remote: netip.MustParseAddrPort(fmt.Sprintf("%s:%d", charonAddr, charonPort)), RemoteNATPort: charonNAT, LocalID: ikev2.ParseIdentity("bpfvpn.test"),
		RemoteID: ikev2.ParseIdentity("charon.test"), PSK: []byte(psk), Childless: true,
		IKEProposals: []ikev2.IKEProposal{interopSuites[2].ikeProp},
	})
	f.peer.Engine.Initiate(time.Now(), "bpf")
	f.waitFor("IKE SA without child", func() bool {
		sas, err := f.charon.ListSAs()
		return err == nil && len(sas) == 1 && sas[0].State == "ESTABLISHED" && len(sas[0].Children) == 0
	})
	if len(f.sink.Installed()) != 0 {
		t.Fatal("bpfvpn installed a child")
	}
}

// TestVMInteropKernelSAs repeats the interop in the VM tier with charon
// installing real XFRM SAs: the SPIs bpfvpn negotiated must be in the
// kernel's SA database of the namespace.
func TestVMInteropKernelSAs(t *testing.T) {
	vm.RequireKernelIPsec(t)
	for _, s := range interopSuites {
		for _, bpfInit := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/bpfvpn-initiator=%v", s.name, bpfInit), func(t *testing.T) {
				f := newFixtureKernel(t, s, true)
				if bpfInit {
					if err := f.peer.Engine.Initiate(time.Now(), "bpf"); err != nil {
						t.Fatal(err)
					}
				} else {
					f.swanctl("--initiate", "--child", "net", "--ike", "bpf", "--timeout", "20")
				}
				f.waitMatched("established")
				f.kernelHasSPIs()
				f.rekeyBothWays()
				f.kernelHasSPIs()
				f.peer.Engine.Terminate(time.Now(), "bpf")
				f.waitFor("deleted", func() bool { sas, err := f.charon.ListSAs(); return err == nil && len(sas) == 0 })
			})
		}
	}
}

// kernelHasSPIs checks that charon's kernel SAs carry bpfvpn's SPIs.
func (f *fixture) kernelHasSPIs() {
	f.t.Helper()
	out, err := exec.Command("ip", "-n", f.ns.Name, "xfrm", "state").CombinedOutput()
	if err != nil {
		f.t.Fatalf("ip xfrm state: %v: %s", err, out)
	}
	for _, sa := range f.sink.Installed() {
		for _, spi := range []uint32{sa.SPIIn, sa.SPIOut} {
			if !strings.Contains(string(out), fmt.Sprintf("spi 0x%08x", spi)) {
				f.t.Fatalf("SPI %08x not in the kernel:\n%s", spi, out)
			}
		}
	}
}
