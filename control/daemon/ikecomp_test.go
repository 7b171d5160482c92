package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/bpfvpn/bpfvpn/control/config"
	"github.com/bpfvpn/bpfvpn/control/kernel"
	"github.com/bpfvpn/bpfvpn/control/lab"
	"github.com/bpfvpn/bpfvpn/ike/udp"
)

// fakeKernel records what the IKE component asks of the kernel.
type fakeKernel struct {
	mu       sync.Mutex
	sas      map[uint32]kernel.InstalledSA // by SPI
	installs []kernel.ChildSA
	removes  []int
	retired  []uint32
}

func newFakeKernel() *fakeKernel { return &fakeKernel{sas: map[uint32]kernel.InstalledSA{}} }

func (k *fakeKernel) InstallChildSA(ctx context.Context, c kernel.ChildSA) ([]kernel.Change, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.installs = append(k.installs, c)
	k.sas[c.InboundSPI] = kernel.InstalledSA{Unit: c.Unit, SPI: c.InboundSPI, Src: c.Remote, Dst: c.Local, Direction: "inbound"}
	k.sas[c.OutboundSPI] = kernel.InstalledSA{Unit: c.Unit, SPI: c.OutboundSPI, Src: c.Local, Dst: c.Remote, Direction: "outbound"}
	return nil, nil
}

func (k *fakeKernel) InstallInbound(ctx context.Context, c kernel.ChildSA) ([]kernel.Change, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.sas[c.InboundSPI] = kernel.InstalledSA{Unit: c.Unit, SPI: c.InboundSPI, Src: c.Remote, Dst: c.Local, Direction: "inbound"}
	return nil, nil
}

func (k *fakeKernel) RetireChildSA(ctx context.Context, old kernel.ChildSA, grace time.Duration) ([]kernel.Change, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.sas, old.InboundSPI)
	delete(k.sas, old.OutboundSPI)
	k.retired = append(k.retired, old.InboundSPI)
	return nil, nil
}

func (k *fakeKernel) RemoveTunnel(ctx context.Context, unit int) ([]kernel.Change, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for spi, sa := range k.sas {
		if sa.Unit == unit {
			delete(k.sas, spi)
		}
	}
	k.removes = append(k.removes, unit)
	return nil, nil
}

func (k *fakeKernel) InstalledSAs() ([]kernel.InstalledSA, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []kernel.InstalledSA
	for _, sa := range k.sas {
		out = append(out, sa)
	}
	return out, nil
}

// pair returns the installed inbound and outbound SPI of unit.
func (k *fakeKernel) pair(unit int) (in, out []uint32) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, sa := range k.sas {
		if sa.Unit != unit {
			continue
		}
		if sa.Direction == "inbound" {
			in = append(in, sa.SPI)
		} else {
			out = append(out, sa.SPI)
		}
	}
	return in, out
}

func (k *fakeKernel) installCount() int { k.mu.Lock(); defer k.mu.Unlock(); return len(k.installs) }

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
}

// ikeNamespace is a network namespace whose loopback holds both gateways'
// WAN addresses, so two IKE components talk over it.
func ikeNamespace(t *testing.T) netns.NsHandle {
	t.Helper()
	requireRoot(t)
	ns, err := lab.NewAnonymous()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	err = lab.Do(ns, func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		if err := netlink.LinkSetUp(lo); err != nil {
			return err
		}
		for _, a := range []string{"172.16.13.1/32", "172.16.23.1/32"} {
			addr, _ := netlink.ParseAddr(a)
			if err := netlink.AddrAdd(lo, addr); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

func labConfig(t *testing.T, gw string, opts lab.ConfigOptions, extra string) *config.Config {
	t.Helper()
	text, err := lab.Config(gw, opts)
	if err != nil {
		t.Fatal(err)
	}
	cfg, diags := config.ParseBytes(gw+".conf", []byte(text+extra))
	if diags.HasErrors() {
		t.Fatalf("%s config: %s", gw, diags)
	}
	return cfg
}

type testGateway struct {
	c    *ikeComponent
	kern *fakeKernel
}

func newTestGateway(t *testing.T, ns netns.NsHandle, name string) *testGateway {
	kern := newFakeKernel()
	log := slog.New(slog.NewTextHandler(testWriter{t, name}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	c := newIKEComponent(log, kern, nil)
	c.listen = func(a netip.Addr) (*udp.Runner, error) {
		var r *udp.Runner
		err := lab.Do(ns, func() error {
			var err error
			r, err = udp.Listen(c.log, udp.DefaultListeners(a))
			return err
		})
		return r, err
	}
	c.txCount = func(int) (uint64, error) { return 0, nil }
	t.Cleanup(func() { c.Close() })
	return &testGateway{c: c, kern: kern}
}

type testWriter struct {
	t    *testing.T
	name string
}

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(w.name + ": " + strings.TrimSpace(string(p)))
	return len(p), nil
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// matched reports whether the gateways hold a pair for st0.0 whose SPIs
// mirror each other (other than the pair with SRX1 inbound SPI not), and
// returns SRX1's inbound SPI of it.
func matched(a, b *fakeKernel, not uint32) (uint32, bool) {
	ain, aout := a.pair(0)
	bin, bout := b.pair(0)
	has := func(l []uint32, v uint32) bool {
		for _, x := range l {
			if x == v {
				return true
			}
		}
		return false
	}
	for _, in := range ain {
		if in == not || !has(bout, in) {
			continue
		}
		for _, out := range aout {
			if has(bin, out) {
				return in, true
			}
		}
	}
	return 0, false
}

func TestIKEComponentsBringUpTunnel(t *testing.T) {
	for _, version := range []string{"", "v2-only"} {
		t.Run("version="+version, func(t *testing.T) {
			ns := ikeNamespace(t)
			ctx := context.Background()
			opts := lab.ConfigOptions{IKEVersion: version}
			srx1, srx2 := newTestGateway(t, ns, "srx1"), newTestGateway(t, ns, "srx2")
			cfg1, cfg2 := labConfig(t, lab.SRX1, opts, ""), labConfig(t, lab.SRX2, opts, "")
			if err := srx2.c.Apply(ctx, cfg2); err != nil {
				t.Fatal(err)
			}
			if err := srx1.c.Apply(ctx, cfg1); err != nil {
				t.Fatal(err)
			}
			var spi uint32
			waitFor(t, "a matching IPsec SA pair on both gateways", 60*time.Second, func() bool {
				var ok bool
				spi, ok = matched(srx1.kern, srx2.kern, 0)
				return ok
			})
			waitFor(t, "tunnel up", 10*time.Second, func() bool {
				ts := srx1.c.Tunnels()
				return len(ts) == 1 && ts[0].Up && ts[0].State == "up"
			})
			ikes := srx1.c.IKESAs()
			if len(ikes) == 0 || ikes[0].State != "UP" || ikes[0].GatewayName != "IKE-GW" || ikes[0].RemoteAddress.Addr().String() != "172.16.23.1" {
				t.Fatalf("IKE SAs %+v", ikes)
			}
			wantMode := "Main"
			if version == "v2-only" {
				wantMode = "IKEv2"
			}
			if string(ikes[0].Mode) != wantMode || ikes[0].Algorithms.Encryption != "aes-256-cbc" || ikes[0].Algorithms.DHGroup != "group19" {
				t.Errorf("IKE SA mode %s algorithms %+v", ikes[0].Mode, ikes[0].Algorithms)
			}
			ipsec := srx1.c.IPsecSAs()
			if len(ipsec) != 1 || ipsec[0].ID != 131073 || uint32(ipsec[0].Inbound.SPI) != spi || ipsec[0].Encryption != "aes-256-gcm" || ipsec[0].BindInterface != "st0.0" {
				t.Fatalf("IPsec SAs %+v", ipsec)
			}
			inst := srx1.kern.installs[0]
			if inst.Unit != 0 || inst.Encryption != "rfc4106(gcm(aes))" || len(inst.Inbound.Encryption) != 36 || inst.ReplayWindow == 0 {
				t.Errorf("installed %v window %d", inst, inst.ReplayWindow)
			}

			// A commit that leaves the VPN alone keeps the tunnel.
			n := srx1.kern.installCount()
			if err := srx1.c.Apply(ctx, labConfig(t, lab.SRX1, opts, withPolicy("", "EXTRA"))); err != nil {
				t.Fatal(err)
			}
			if in, _ := srx1.kern.pair(0); len(in) != 1 || in[0] != spi || srx1.kern.installCount() != n {
				t.Fatalf("untouched tunnel renegotiated: spi %08x→%v installs %d→%d", spi, in, n, srx1.kern.installCount())
			}

			// clear security ike security-associations: torn down and,
			// establish-tunnels immediately, negotiated again.
			if err := srx1.c.ClearIKE(ctx, 0); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "a new SA pair after clear", 60*time.Second, func() bool {
				_, ok := matched(srx1.kern, srx2.kern, spi)
				return ok
			})

			// request rekey: a new pair replaces the current one.
			cur, _ := matched(srx1.kern, srx2.kern, 0)
			if err := srx1.c.Rekey(ctx, ""); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "a rekeyed pair", 60*time.Second, func() bool {
				in, _ := srx1.kern.pair(0)
				for _, spi := range in {
					if spi != cur {
						got, ok := matched(srx1.kern, srx2.kern, cur)
						return ok && got == spi
					}
				}
				return false
			})
			if err := srx1.c.Rekey(ctx, "no-such-vpn"); err == nil {
				t.Error("rekey of an unknown VPN succeeded")
			}

			// Removing the VPN removes its SAs.
			if err := srx1.c.Apply(ctx, labConfig(t, lab.SRX1, opts, "delete security ipsec vpn VPN-to-Host2\n")); err != nil {
				t.Fatal(err)
			}
			if in, out := srx1.kern.pair(0); len(in)+len(out) != 0 {
				t.Fatalf("SAs left after the VPN was deleted: %v %v", in, out)
			}
			if len(srx1.c.Tunnels()) != 0 {
				t.Fatal("tunnel still listed")
			}
		})
	}
}

func TestIKEComponentCheckRejectsUnsupported(t *testing.T) {
	c := newIKEComponent(slog.New(slog.DiscardHandler), newFakeKernel(), nil)
	cfg := labConfig(t, lab.SRX1, lab.ConfigOptions{}, "set security ike policy IKE-POL mode aggressive\n")
	if err := c.Check(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "aggressive") {
		t.Fatalf("Check: %v", err)
	}
	cfg = labConfig(t, lab.SRX1, lab.ConfigOptions{}, "set security ike proposal standard encryption-algorithm aes-256-gcm\n")
	if err := c.Check(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "IKEv1") {
		t.Fatalf("Check: %v", err)
	}
	if err := c.Check(context.Background(), labConfig(t, lab.SRX1, lab.ConfigOptions{IKEVersion: "v2-only"},
		"set security ike proposal standard encryption-algorithm aes-256-gcm\n")); err != nil {
		t.Fatalf("Check of GCM over IKEv2: %v", err)
	}
}

func TestTunnelOfReferenceDefaults(t *testing.T) {
	cfg := labConfig(t, lab.SRX1, lab.ConfigOptions{}, "")
	tu, err := TunnelOf(cfg.IPsec.VPNs[0])
	if err != nil {
		t.Fatal(err)
	}
	p := tu.V1
	if p == nil || tu.V2 != nil || tu.Unit != 0 || !tu.Immediate {
		t.Fatalf("tunnel %+v", tu)
	}
	if string(p.PSK) != "$ABC123" || p.Local.String() != "172.16.13.1" || p.Remote.String() != "172.16.23.1" {
		t.Fatalf("peer endpoints %v %v", p.Local, p.Remote)
	}
	got := fmt.Sprintf("%v %v %v", p.IKE, p.ESP, p.DPD)
	want := fmt.Sprintf("%v %v %v", []any{"AES-CBC-256/sha-256/ECP-256"}, []any{"esp/AES-GCM-16-256"}, "")
	_ = want
	if len(p.IKE) != 1 || p.IKE[0].String() != "AES-CBC-256/sha-256/ECP-256" || p.IKE[0].Lifetime != 8*time.Hour {
		t.Errorf("IKE proposals %v (%s)", p.IKE, got)
	}
	if len(p.ESP) != 1 || p.ESP[0].String() != "esp/AES-GCM-16-256" || p.ESP[0].Lifetime != time.Hour || p.PFS != 0 {
		t.Errorf("ESP proposals %v PFS %v", p.ESP, p.PFS)
	}
	if p.DPD.Interval != 10*time.Second || p.DPD.Threshold != 5 || p.ReqID != kernel.ReqID(0) || p.IfID != 1 {
		t.Errorf("DPD %+v reqid %x ifid %d", p.DPD, p.ReqID, p.IfID)
	}
	v2 := labConfig(t, lab.SRX1, lab.ConfigOptions{IKEVersion: "v2-only"}, "set security ipsec vpn VPN-to-Host2 establish-tunnels on-traffic\n")
	tu, err = TunnelOf(v2.IPsec.VPNs[0])
	if err != nil {
		t.Fatal(err)
	}
	c := tu.V2
	if c == nil || tu.Immediate || c.IKELifetime != 8*time.Hour || c.ChildLifetime != time.Hour || c.IfID != 1 || len(c.IKEProposals) != 1 {
		t.Fatalf("v2 connection %+v", c)
	}
	if c.IKEProposals[0].Integrity[0].String() != "HMAC-SHA2-256-128" || c.ChildProposals[0].Integrity != nil {
		t.Errorf("v2 proposals %+v %+v", c.IKEProposals, c.ChildProposals)
	}
}
