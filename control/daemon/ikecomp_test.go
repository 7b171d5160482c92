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
	"github.com/bpfvpn/bpfvpn/control/ops/opstest"
	"github.com/bpfvpn/bpfvpn/ike"
	"github.com/bpfvpn/bpfvpn/ike/udp"
)

// fakeKernel records what the IKE component asks of the kernel.
type fakeKernel struct {
	mu       sync.Mutex
	sas      map[uint32]kernel.InstalledSA // by SPI
	installs []kernel.ChildSA
	removes  []int
	retired  []uint32
	lists    int // InstalledSAs calls
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
	k.lists++
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
	addLoopback(t, ns, "172.16.13.1/32", "172.16.23.1/32")
	return ns
}

// addLoopback sets ns's loopback up and adds addrs to it.
func addLoopback(t *testing.T, ns netns.NsHandle, addrs ...string) {
	t.Helper()
	err := lab.Do(ns, func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		if err := netlink.LinkSetUp(lo); err != nil {
			return err
		}
		for _, a := range addrs {
			addr, err := netlink.ParseAddr(a)
			if err != nil {
				return err
			}
			if err := netlink.AddrAdd(lo, addr); err != nil {
				return fmt.Errorf("add %s to lo: %w", a, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
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

// fakeEngine is an engine whose IKE and CHILD SAs the test sets; it records
// what the supervision asks of it.
type fakeEngine struct {
	mu         sync.Mutex
	sas        []ike.IKESAStatus
	children   []ike.ChildSAStatus
	initiated  []time.Time
	created    []time.Time
	terminated []time.Time
	// onInitiate sets the IKE SAs an initiation leaves (nil: none).
	onInitiate []ike.IKESAStatus
}

func (e *fakeEngine) HandleDatagram(time.Time, ike.Datagram) {}
func (e *fakeEngine) Tick(time.Time)                         {}
func (e *fakeEngine) NextTimer() (time.Time, bool)           { return time.Time{}, false }
func (e *fakeEngine) LastError() error                       { return nil }
func (e *fakeEngine) Rekey(time.Time) error                  { return nil }
func (e *fakeEngine) Expired(time.Time, uint32, bool)        {}

func (e *fakeEngine) Initiate(now time.Time) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.initiated = append(e.initiated, now)
	e.sas = append([]ike.IKESAStatus(nil), e.onInitiate...)
	return nil
}

func (e *fakeEngine) CreateChild(now time.Time) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.created = append(e.created, now)
	return nil
}

func (e *fakeEngine) Terminate(now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.terminated = append(e.terminated, now)
	e.sas, e.children = nil, nil
}

func (e *fakeEngine) IKESAs(time.Time) []ike.IKESAStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]ike.IKESAStatus(nil), e.sas...)
}

func (e *fakeEngine) ChildSAs(time.Time) []ike.ChildSAStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]ike.ChildSAStatus(nil), e.children...)
}

func (e *fakeEngine) set(sas ...ike.IKESAStatus) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sas = sas
}

func (e *fakeEngine) counts() (initiated, created, terminated int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.initiated), len(e.created), len(e.terminated)
}

var (
	ikeConnecting  = ike.IKESAStatus{Index: 1, State: ike.StateConnecting}
	ikeEstablished = ike.IKESAStatus{Index: 1, State: ike.StateEstablished}
)

// supervised is one tunnel under supervision with a fake engine and clock.
type supervised struct {
	t    *testing.T
	c    *ikeComponent
	kern *fakeKernel
	eng  *fakeEngine
	tu   *tunnel
	now  time.Time
	next time.Time // what the last supervise run asked for
}

// newSupervised returns an immediately tunnel on st0.1 from local to remote,
// due for its first attempt at the fake clock's start.
func newSupervised(t *testing.T, local, remote string) *supervised {
	kern := newFakeKernel()
	c := newIKEComponent(slog.New(slog.NewTextHandler(testWriter{t, "sup"}, nil)), kern, nil)
	s := &supervised{t: t, c: c, kern: kern, eng: &fakeEngine{}, now: time.Unix(1_000_000, 0)}
	c.now = func() time.Time { return s.now }
	s.tu = &tunnel{t: &Tunnel{VPN: "VPN-1", Gateway: "GW-1", Unit: 1, Version: 2, Immediate: true,
		Local: netip.MustParseAddr(local), Remote: netip.MustParseAddr(remote)}, eng: s.eng}
	s.tu.nextTry = s.now
	c.tunnels[s.tu.t.VPN], c.order = s.tu, []string{s.tu.t.VPN}
	return s
}

// run sets the fake clock to at and supervises.
func (s *supervised) run(at time.Time) {
	s.now = at
	s.next = s.c.supervise(at, []*tunnel{s.tu})
}

// until supervises at every time the supervision asks for, up to end.
func (s *supervised) until(end time.Time) {
	for i := 0; i < 1000; i++ {
		if s.next.IsZero() || s.next.After(end) {
			s.now = end
			s.next = s.c.supervise(end, []*tunnel{s.tu})
			return
		}
		s.run(s.next)
	}
	s.t.Fatal("supervision loops")
}

func TestSuperviseRequestsChildOnEstablishedIKESA(t *testing.T) {
	// The tunnel went down because its CHILD SA was deleted (a collision,
	// or the peer deleted it) while its IKE SA stays up.
	s := newSupervised(t, "172.16.13.10", "172.16.23.10")
	s.eng.set(ikeEstablished)
	t0 := s.now
	s.run(t0)
	if i, c, _ := s.eng.counts(); i != 0 || c != 0 {
		t.Fatalf("at once: %d initiations, %d CHILD SA requests; want neither during ChildGrace", i, c)
	}
	s.until(t0.Add(ChildGrace))
	if i, c, _ := s.eng.counts(); i != 0 || c != 1 {
		t.Fatalf("after ChildGrace: %d initiations, %d CHILD SA requests; want one request, no new IKE SA", i, c)
	}
	s.until(t0.Add(ChildGrace + NegotiationTimeout - time.Second))
	if i, c, tm := s.eng.counts(); i != 0 || c != 1 || tm != 0 {
		t.Fatalf("before the deadline: %d initiations, %d requests, %d terminations", i, c, tm)
	}
	// No CHILD SA by the deadline: the IKE SA is given up and a new one
	// negotiated after the back-off.
	s.until(t0.Add(ChildGrace + NegotiationTimeout))
	if _, _, tm := s.eng.counts(); tm != 1 {
		t.Fatalf("at the deadline: %d terminations, want 1", tm)
	}
	if st := s.c.Tunnels()[0]; st.LastError == "" || st.State != "retrying" {
		t.Errorf("status after abandoning: %+v", st)
	}
	s.until(t0.Add(ChildGrace + NegotiationTimeout + RetryMin*2))
	if i, _, _ := s.eng.counts(); i != 1 {
		t.Fatalf("after the back-off: %d initiations, want 1", i)
	}
}

func TestSuperviseAbandonsStuckIKENegotiation(t *testing.T) {
	// The negotiation neither completes nor fails (seen: both ends
	// "connecting" for minutes after colliding).
	s := newSupervised(t, "172.16.13.10", "172.16.23.10")
	s.eng.onInitiate = []ike.IKESAStatus{ikeConnecting}
	t0 := s.now
	s.run(t0)
	if i, _, _ := s.eng.counts(); i != 1 {
		t.Fatalf("%d initiations at the start, want 1", i)
	}
	s.until(t0.Add(NegotiationTimeout - time.Millisecond))
	if i, _, tm := s.eng.counts(); i != 1 || tm != 0 {
		t.Fatalf("before the deadline: %d initiations, %d terminations", i, tm)
	}
	// Abandoned at the deadline, retried after a back-off, abandoned
	// again: the gaps between attempts grow.
	s.until(t0.Add(10 * time.Minute))
	s.eng.mu.Lock()
	inits, terms := append([]time.Time(nil), s.eng.initiated...), len(s.eng.terminated)
	s.eng.mu.Unlock()
	if len(inits) < 4 || terms < len(inits)-1 {
		t.Fatalf("in 10 minutes: %d initiations, %d terminations", len(inits), terms)
	}
	if st := s.c.Tunnels()[0]; st.Negotiations != uint64(len(inits)) || st.Failures != uint64(terms) {
		t.Errorf("status counts %d negotiations, %d failures; want %d started, %d abandoned", st.Negotiations, st.Failures, len(inits), terms)
	}
	var waits []time.Duration
	for i := 1; i < len(inits); i++ {
		waits = append(waits, inits[i].Sub(inits[i-1])-NegotiationTimeout)
	}
	for i, w := range waits {
		lo := min(RetryMin<<i, RetryMax)
		if w < lo || w > lo*3/2+time.Millisecond {
			t.Errorf("wait before attempt %d: %v, want back-off %v plus at most half of it as jitter (waits %v)", i+2, w, lo, waits)
		}
	}
}

func TestSuperviseHigherAddressYieldsAfterCollision(t *testing.T) {
	s := newSupervised(t, "172.16.23.10", "172.16.13.10")
	s.eng.set(ikeConnecting)
	t0 := s.now
	s.run(t0) // the peer's negotiation is timed from here
	if i, _, _ := s.eng.counts(); i != 0 {
		t.Fatalf("initiated while the peer negotiates")
	}
	s.until(t0.Add(NegotiationTimeout))
	if _, _, tm := s.eng.counts(); tm != 1 {
		t.Fatalf("%d terminations at the deadline", tm)
	}
	if d := s.tu.nextTry.Sub(s.now); d < RetryMin+ResponderDelay {
		t.Errorf("the end with the higher address retries after %v, want at least %v", d, RetryMin+ResponderDelay)
	}
	// The peer's negotiation was abandoned, not one of ours.
	if st := s.c.Tunnels()[0]; st.Negotiations != 0 || st.Failures != 0 {
		t.Errorf("status counts %d negotiations, %d failures; want none of ours", st.Negotiations, st.Failures)
	}
}

func TestSuperviseBacksOffFailedInitiations(t *testing.T) {
	// Each attempt fails in the engine at once (no IKE SA left).
	s := newSupervised(t, "172.16.13.10", "172.16.23.10")
	t0 := s.now
	s.run(t0)
	s.until(t0.Add(5 * time.Minute))
	s.eng.mu.Lock()
	inits := append([]time.Time(nil), s.eng.initiated...)
	s.eng.mu.Unlock()
	for i := 1; i < len(inits); i++ {
		if got, want := inits[i].Sub(inits[i-1]), min(RetryMin<<(i-1), RetryMax); got != want {
			t.Errorf("gap before attempt %d: %v, want %v", i+1, got, want)
		}
	}
	if len(inits) < 6 {
		t.Fatalf("%d attempts in 5 minutes", len(inits))
	}
	// Every attempt but the last failed in the engine, seen by a later run.
	if st := s.c.Tunnels()[0]; st.Negotiations != uint64(len(inits)) || st.Failures < uint64(len(inits)-1) || st.Failures > uint64(len(inits)) {
		t.Errorf("status counts %d negotiations, %d failures after %d attempts that failed at once", st.Negotiations, st.Failures, len(inits))
	}
	// show security ipsec inactive-tunnels lists it with those counts.
	st := newState(nil)
	st.SetTunnelSource(s.c)
	out := opstest.Run(t, st, "show security ipsec inactive-tunnels")
	row := fmt.Sprintf("  131074   500   %-6d %-6d -     172.16.23.10     ", len(inits), s.c.Tunnels()[0].Failures)
	if !strings.Contains(out, "Total inactive tunnels: 1\n") || !strings.Contains(out, "with establish immediately: 1\n") || !strings.Contains(out, row) {
		t.Errorf("inactive-tunnels, want a row starting %q:\n%s", row, out)
	}
	// Coming up resets the back-off.
	s.tu.up.Store(true)
	s.tu.resetBackoff.Store(true)
	s.eng.children = []ike.ChildSAStatus{{}}
	s.run(s.now.Add(time.Second))
	s.tu.up.Store(false)
	s.eng.children = nil
	n := len(inits)
	s.run(s.now.Add(time.Second))
	s.until(s.now.Add(RetryMin))
	if i, _, _ := s.eng.counts(); i != n+2 {
		t.Errorf("after going down: %d new attempts within RetryMin, want 2 (at once and after RetryMin)", i-n)
	}
}

func TestSuperviseTakesDownTunnelWithoutChildSA(t *testing.T) {
	// The sink kept the tunnel up because another inbound SA was still in
	// the kernel (retiring), but the engine holds no CHILD SA any more.
	s := newSupervised(t, "172.16.13.10", "172.16.23.10")
	s.tu.up.Store(true)
	s.eng.set(ikeEstablished)
	t0 := s.now
	s.run(t0)
	if !s.tu.up.Load() {
		t.Fatal("taken down at once; want ChildGrace first")
	}
	s.until(t0.Add(ChildGrace))
	if s.tu.up.Load() {
		t.Fatal("still up after ChildGrace without a CHILD SA")
	}
	if len(s.kern.removes) != 1 || s.kern.removes[0] != 1 {
		t.Errorf("kernel removals %v, want st0.1", s.kern.removes)
	}
	s.until(t0.Add(2*ChildGrace + time.Second))
	if i, c, _ := s.eng.counts(); i != 0 || c != 1 {
		t.Errorf("%d initiations, %d CHILD SA requests; want one request on the IKE SA", i, c)
	}
	// A tunnel whose engine holds its CHILD SA stays up.
	u := newSupervised(t, "172.16.13.10", "172.16.23.10")
	u.tu.up.Store(true)
	u.eng.children = []ike.ChildSAStatus{{}}
	u.run(u.now)
	u.until(u.now.Add(time.Minute))
	if !u.tu.up.Load() || len(u.kern.removes) != 0 {
		t.Error("a tunnel with its CHILD SA was taken down")
	}
}

func TestSuperviseOnTrafficRequestsChild(t *testing.T) {
	s := newSupervised(t, "172.16.13.10", "172.16.23.10")
	s.tu.t.Immediate = false
	var tx uint64
	s.c.txCount = func(int) (uint64, error) { return tx, nil }
	s.eng.set(ikeEstablished)
	t0 := s.now
	s.run(t0)
	s.until(t0.Add(ChildGrace + time.Second))
	if i, c, _ := s.eng.counts(); i+c != 0 {
		t.Fatalf("without traffic: %d initiations, %d requests", i, c)
	}
	tx = 1
	s.until(s.now.Add(2 * trafficPoll))
	if i, c, _ := s.eng.counts(); i != 0 || c != 1 {
		t.Fatalf("after traffic: %d initiations, %d CHILD SA requests; want one request", i, c)
	}
}

func TestSuperviseOnTrafficTakesOverStalledPeerNegotiation(t *testing.T) {
	// The peer started Main Mode and then went quiet (its daemon restarted
	// or its configuration changed mid-exchange): traffic routed into the
	// tunnel waits ResponderStall for it, then starts its own negotiation.
	s := newSupervised(t, "172.16.13.10", "172.16.23.10")
	s.tu.t.Immediate = false
	var tx uint64
	s.c.txCount = func(int) (uint64, error) { return tx, nil }
	peer := ike.IKESAStatus{Index: 1, State: ike.StateConnecting, Role: ike.Responder}
	ours := ike.IKESAStatus{Index: 2, State: ike.StateConnecting, Role: ike.Initiator}
	s.eng.set(peer)
	s.eng.onInitiate = []ike.IKESAStatus{peer, ours}
	t0 := s.now
	s.run(t0)
	for at := t0.Add(trafficPoll); at.Before(t0.Add(ResponderStall)); at = at.Add(trafficPoll) {
		tx++
		s.run(at)
		if i, _, _ := s.eng.counts(); i != 0 {
			t.Fatalf("%v after the peer started: initiated while its negotiation may still finish", at.Sub(t0))
		}
	}
	tx++
	s.run(t0.Add(ResponderStall))
	if i, _, _ := s.eng.counts(); i != 1 {
		t.Fatalf("traffic %v into the peer's stalled negotiation: %d initiations, want 1", ResponderStall, i)
	}
	// Our own negotiation under way is left to finish.
	for at := s.now.Add(trafficPoll); at.Before(t0.Add(NegotiationTimeout)); at = at.Add(trafficPoll) {
		tx++
		s.run(at)
	}
	if i, _, tm := s.eng.counts(); i != 1 || tm != 0 {
		t.Fatalf("with our negotiation under way: %d initiations, %d terminations; want 1, 0", i, tm)
	}
	// Ours keep failing at once while the peer's stays: each new attempt
	// waits for the stall and for the back-off.
	s.eng.onInitiate = []ike.IKESAStatus{peer}
	s.eng.set(peer)
	for at, end := s.now.Add(trafficPoll), s.now.Add(3*time.Minute); at.Before(end); at = at.Add(trafficPoll) {
		tx++
		s.run(at)
	}
	s.eng.mu.Lock()
	inits := append([]time.Time(nil), s.eng.initiated[1:]...)
	s.eng.mu.Unlock()
	if len(inits) < 5 {
		t.Fatalf("%d attempts in 3 minutes of traffic", len(inits))
	}
	for i := 1; i < len(inits); i++ {
		if gap, want := inits[i].Sub(inits[i-1]), max(ResponderStall, min(RetryMin<<i, RetryMax)); gap < want {
			t.Errorf("attempt %d after %v, want at least %v (stall and back-off)", i+2, gap, want)
		}
	}

	// Without traffic a stalled peer negotiation starts nothing.
	u := newSupervised(t, "172.16.13.10", "172.16.23.10")
	u.tu.t.Immediate = false
	u.c.txCount = func(int) (uint64, error) { return 7, nil }
	u.eng.set(peer)
	u.run(u.now)
	u.until(u.now.Add(2 * ResponderStall))
	if i, _, _ := u.eng.counts(); i != 0 {
		t.Fatalf("no traffic: %d initiations", i)
	}
	// A data-plane event after the stall starts one; the stall is timed
	// from when the supervision first saw the negotiation.
	u.c.TrafficStart(1)
	if i, _, _ := u.eng.counts(); i != 1 {
		t.Fatalf("data-plane event after the stall: %d initiations, want 1", i)
	}
}

// matchedUnit is matched for st0.unit.
func matchedUnit(a, b *fakeKernel, unit int) bool {
	ain, aout := a.pair(unit)
	bin, bout := b.pair(unit)
	has := func(l []uint32, v uint32) bool {
		for _, x := range l {
			if x == v {
				return true
			}
		}
		return false
	}
	for _, in := range ain {
		if !has(bout, in) {
			continue
		}
		for _, out := range aout {
			if has(bin, out) {
				return true
			}
		}
	}
	return false
}

// collisionVPNs returns n extra VPNs on st0.1..n between 172.16.13.(10+i)
// and 172.16.23.(10+i), establish-tunnels immediately, for gateway gw.
func collisionVPNs(gw string, n int, version string) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		local, peer := fmt.Sprintf("172.16.13.%d", 10+i), fmt.Sprintf("172.16.23.%d", 10+i)
		if gw == lab.SRX2 {
			local, peer = peer, local
		}
		fmt.Fprintf(&b, "set interfaces ge-0/0/1 unit 0 family inet address %s/24\n", local)
		fmt.Fprintf(&b, "set interfaces st0 unit %d family inet address 10.200.%d.%d/24\n", i, i, map[bool]int{true: 1, false: 2}[gw == lab.SRX1])
		fmt.Fprintf(&b, "set security zones security-zone vpn interfaces st0.%d\n", i)
		fmt.Fprintf(&b, "set security ike gateway GW-%d ike-policy IKE-POL\n", i)
		fmt.Fprintf(&b, "set security ike gateway GW-%d address %s\n", i, peer)
		fmt.Fprintf(&b, "set security ike gateway GW-%d external-interface ge-0/0/1\n", i)
		fmt.Fprintf(&b, "set security ike gateway GW-%d local-address %s\n", i, local)
		fmt.Fprintf(&b, "set security ike gateway GW-%d version %s\n", i, version)
		fmt.Fprintf(&b, "set security ipsec vpn VPN-%d bind-interface st0.%d\n", i, i)
		fmt.Fprintf(&b, "set security ipsec vpn VPN-%d ike gateway GW-%d\n", i, i)
		fmt.Fprintf(&b, "set security ipsec vpn VPN-%d ike ipsec-policy IPSEC-POL\n", i)
		fmt.Fprintf(&b, "set security ipsec vpn VPN-%d establish-tunnels immediately\n", i)
	}
	return b.String()
}

// TestIKEComponentsConvergeWhenBothInitiate starts both gateways' tunnels
// at the same moment (no responder delay), so that many negotiations
// collide, and requires every tunnel to end with one matching SA pair on
// both sides, each side counting it up.
func TestIKEComponentsConvergeWhenBothInitiate(t *testing.T) {
	const n = 24
	for _, version := range []string{"v2-only", "v1-only"} {
		t.Run(version, func(t *testing.T) {
			ns := ikeNamespace(t)
			var addrs []string
			for i := 1; i <= n; i++ {
				addrs = append(addrs, fmt.Sprintf("172.16.13.%d/32", 10+i), fmt.Sprintf("172.16.23.%d/32", 10+i))
			}
			addLoopback(t, ns, addrs...)
			// The supervision's first attempt waits: the test starts
			// every negotiation on both ends at once instead.
			old, oldNego, oldGrace := ResponderDelay, NegotiationTimeout, ChildGrace
			ResponderDelay, NegotiationTimeout, ChildGrace = time.Hour, 5*time.Second, time.Second
			t.Cleanup(func() { ResponderDelay, NegotiationTimeout, ChildGrace = old, oldNego, oldGrace })
			opts := lab.ConfigOptions{IKEVersion: version}
			srx1, srx2 := newTestGateway(t, ns, "srx1"), newTestGateway(t, ns, "srx2")
			cfg1 := labConfig(t, lab.SRX1, opts, collisionVPNs(lab.SRX1, n, version))
			cfg2 := labConfig(t, lab.SRX2, opts, collisionVPNs(lab.SRX2, n, version))
			ctx := context.Background()
			var wg sync.WaitGroup
			errs := make([]error, 2)
			wg.Add(2)
			go func() { defer wg.Done(); errs[0] = srx1.c.Apply(ctx, cfg1) }()
			go func() { defer wg.Done(); errs[1] = srx2.c.Apply(ctx, cfg2) }()
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			ResponderDelay = old
			now := time.Now()
			start := make(chan struct{})
			for _, c := range []*ikeComponent{srx1.c, srx2.c} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					for _, tu := range c.snapshotTunnels() {
						c.initiate(now, tu)
					}
				}()
			}
			close(start)
			wg.Wait()
			allUp := func(c *ikeComponent) (int, bool) {
				up := 0
				for _, ts := range c.Tunnels() {
					if ts.Up {
						up++
					}
				}
				return up, up == n+1
			}
			waitFor(t, "every tunnel up with a matching pair on both gateways", 3*time.Minute, func() bool {
				for u := 0; u <= n; u++ {
					if !matchedUnit(srx1.kern, srx2.kern, u) {
						return false
					}
				}
				_, ok1 := allUp(srx1.c)
				_, ok2 := allUp(srx2.c)
				return ok1 && ok2
			})
		})
	}
}

// The sinks' questions about a unit's SAs are answered from the record:
// bringing up n tunnels lists the kernel's SAs once, not n times.
func TestSARecordAnswersWithoutListing(t *testing.T) {
	k := newFakeKernel()
	k.InstallChildSA(t.Context(), kernelChildSA(7, testChildSA(0x1000, 0x2000))) // an earlier daemon's pair
	c := newIKEComponent(slog.New(slog.DiscardHandler), k, nil)
	if !c.unitHasSAs(7) || c.unitHasSAs(1) {
		t.Fatal("earlier daemon's SAs not seen")
	}
	for u := 10; u < 110; u++ {
		sa := testChildSA(uint32(0x10000+u), uint32(0x20000+u))
		if c.unitHasSAs(u) {
			t.Fatalf("st0.%d holds SAs before its install", u)
		}
		if _, err := c.kern.InstallChildSA(t.Context(), kernelChildSA(u, sa)); err != nil {
			t.Fatal(err)
		}
		tu := &tunnel{t: &Tunnel{Unit: u, Local: sa.Local}}
		if !c.unitHasSAs(u) || c.otherChildren(tu, sa.SPIIn) {
			t.Fatalf("st0.%d after its install: has %v, other inbound %v", u, c.unitHasSAs(u), c.otherChildren(tu, sa.SPIIn))
		}
	}
	if k.lists != 1 {
		t.Errorf("the kernel was listed %d times for 100 installs, want once", k.lists)
	}
	// A second pair, then the first retired: the unit keeps one inbound SA.
	tu := &tunnel{t: &Tunnel{Unit: 5, Local: netip.MustParseAddr("172.16.13.1")}}
	second := kernelChildSA(5, testChildSA(0x3005, 0x4005))
	c.kern.InstallInbound(t.Context(), second)
	if !c.otherChildren(tu, 0x10005) {
		t.Error("second inbound SA not seen")
	}
	c.kern.RetireChildSA(t.Context(), kernelChildSA(5, testChildSA(0x10005, 0x20005).WithoutKeys()), RetireGrace)
	if c.otherChildren(tu, 0x3005) {
		t.Error("a retired pair still counts as another inbound SA")
	}
	c.kern.RemoveTunnel(t.Context(), 5)
	if c.unitHasSAs(5) {
		t.Error("SAs left after RemoveTunnel")
	}
	// A commit lists the kernel again (units may have changed hands).
	c.sas.invalidate()
	if !c.unitHasSAs(7) || k.lists != 2 {
		t.Errorf("after invalidate: has %v, lists %d", c.unitHasSAs(7), k.lists)
	}
}

// The supervision keeps at most MaxNegotiations IKE SAs in negotiation;
// the other tunnels start as slots free up.
func TestSupervisePacesInitiations(t *testing.T) {
	s := newSupervised(t, "172.16.13.10", "172.16.23.10")
	old := MaxNegotiations
	MaxNegotiations = 4
	t.Cleanup(func() { MaxNegotiations = old })
	var tunnels []*tunnel
	var engines []*fakeEngine
	for i := 0; i < 10; i++ {
		e := &fakeEngine{onInitiate: []ike.IKESAStatus{ikeConnecting}}
		tu := &tunnel{t: &Tunnel{VPN: fmt.Sprintf("VPN-%d", i), Unit: i, Version: 2, Immediate: true,
			Local: netip.MustParseAddr("172.16.13.10"), Remote: netip.MustParseAddr("172.16.23.10")}, eng: e}
		tu.nextTry = s.now
		tunnels, engines = append(tunnels, tu), append(engines, e)
	}
	initiated := func() (n int) {
		for _, e := range engines {
			i, _, _ := e.counts()
			n += i
		}
		return n
	}
	s.c.supervise(s.now, tunnels)
	if n := initiated(); n != 4 {
		t.Fatalf("%d initiations at once, want MaxNegotiations (4)", n)
	}
	s.c.supervise(s.now.Add(time.Second), tunnels)
	if n := initiated(); n != 4 {
		t.Fatalf("%d initiations while all slots are taken", n)
	}
	// Two IKE SAs come up, one tunnel comes up: three slots free.
	engines[0].set(ikeEstablished)
	engines[1].set(ikeEstablished)
	tunnels[2].up.Store(true)
	tunnels[2].eng.(*fakeEngine).children = []ike.ChildSAStatus{{}}
	s.c.supervise(s.now.Add(2*time.Second), tunnels)
	s.c.supervise(s.now.Add(2*time.Second), tunnels)
	if n := initiated(); n != 7 {
		t.Fatalf("%d initiations after three slots freed, want 7", n)
	}
	if got := s.c.negotiations.Load(); got != 4 {
		t.Errorf("%d slots taken, want 4", got)
	}
}

func TestTxCountsReadsEveryUnit(t *testing.T) {
	ns := ikeNamespace(t)
	err := lab.Do(ns, func() error {
		// (The host kernel has veth but no dummy or xfrm links; only the
		// names matter here.)
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "st0.3"}, PeerName: "st0.12"}); err != nil {
			return err
		}
		x := &txCounts{}
		for _, unit := range []int{3, 12} {
			if _, err := x.count(unit); err != nil {
				return fmt.Errorf("st0.%d: %w", unit, err)
			}
		}
		if _, err := x.count(4); err == nil {
			return fmt.Errorf("st0.4 has a count but no link")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// countingKernel is a fake kernel that also serves SA counters.
type countingKernel struct {
	*fakeKernel
	fakeCounters
}

// The IKEv1 DPD liveness probe finds the kernel's counters behind the
// component's SA record.
func TestIKEv1TunnelGetsLivenessProbe(t *testing.T) {
	ns := ikeNamespace(t)
	kern := &countingKernel{fakeKernel: newFakeKernel()}
	c := newIKEComponent(slog.New(slog.DiscardHandler), kern, nil)
	c.listen = func(a netip.Addr) (*udp.Runner, error) {
		var r *udp.Runner
		err := lab.Do(ns, func() error {
			var err error
			r, err = udp.Listen(c.log, udp.DefaultListeners(a))
			return err
		})
		return r, err
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Apply(context.Background(), labConfig(t, lab.SRX1, lab.ConfigOptions{}, "")); err != nil {
		t.Fatal(err)
	}
	tu := c.snapshotTunnels()[0]
	if e, ok := tu.eng.(v1Engine); !ok || e.live == nil {
		t.Fatalf("IKEv1 tunnel without a liveness probe (engine %T)", tu.eng)
	}
}

// A re-apply of the same configuration reuses its translation; another
// configuration is translated.
func TestIKEComponentReapplyKeepsTranslation(t *testing.T) {
	ns := ikeNamespace(t)
	g := newTestGateway(t, ns, "srx1")
	ctx := context.Background()
	cfg := labConfig(t, lab.SRX1, lab.ConfigOptions{}, "")
	if err := g.c.Apply(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	first := g.c.appliedWant
	if err := g.c.Apply(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if len(first) != 1 || &g.c.appliedWant[0] != &first[0] {
		t.Fatal("re-apply of the same configuration translated it again")
	}
	other := labConfig(t, lab.SRX1, lab.ConfigOptions{}, "set security ipsec vpn VPN-to-Host2 establish-tunnels on-traffic\n")
	if err := g.c.Apply(ctx, other); err != nil {
		t.Fatal(err)
	}
	if g.c.appliedCfg != other || g.c.appliedWant[0].Immediate {
		t.Fatal("another configuration was not translated")
	}
}

// kernelChildSA is sa as the sink installs it on unit.
func kernelChildSA(unit int, sa ike.ChildSA) kernel.ChildSA {
	kc, err := kernel.FromIKE(sa)
	if err != nil {
		panic(err)
	}
	kc.Unit = unit
	return kc
}
