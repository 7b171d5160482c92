package ikeview_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bpfvpn/bpfvpn/control/ops"
	"github.com/bpfvpn/bpfvpn/control/ops/ikeview"
	"github.com/bpfvpn/bpfvpn/ike"
)

func golden(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func render(t *testing.T, v ops.View) string {
	t.Helper()
	out, err := ops.Render(v, false)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The IKEv1 engine's report of SRX1's phase-1 SA renders as the reference.
func TestIKEv1StatusRendersTheReference(t *testing.T) {
	st := ike.IKESAStatus{
		Index: 1512635, Gateway: "IKE-GW", Version: 1, Mode: "Main", Role: ike.Initiator, State: ike.StateEstablished,
		SPIi: 0xa296c603e4746996, SPIr: 0xe3c175f78f62f6ee,
		Local: netip.MustParseAddrPort("172.16.13.1:500"), Remote: netip.MustParseAddrPort("172.16.23.1:500"),
		LocalID: "172.16.13.1", RemoteID: "172.16.23.1", Auth: "pre-shared-keys",
		Encryption: "aes256-cbc", PRF: "hmac-sha-256", Integrity: "hmac-sha-256", DHGroup: "DH-group-19",
		LifetimeSeconds: 28800, RemainingSeconds: 28391,
		Stats:    ike.Stats{InBytes: 2316, OutBytes: 2480, InPackets: 11, OutPackets: 12},
		ChildSAs: 1,
	}
	sa := ikeview.IKESA(st)
	if got, want := render(t, ops.IKESAs{SAs: []ops.IKESA{sa}}), golden(t, "ike_list.golden"); got != want {
		t.Errorf("list:\n%s\nwant\n%s", got, want)
	}
	if got, want := render(t, ops.IKESADetails{SAs: []ops.IKESA{sa}}), golden(t, "ike_detail.golden"); got != want {
		t.Errorf("detail:\n%s\nwant\n%s", got, want)
	}
}

func TestIKEv2Status(t *testing.T) {
	sa := ikeview.IKESA(ike.IKESAStatus{Index: 7, Version: 2, Mode: "IKEv2", Role: ike.Responder, State: ike.StateRekeying,
		Encryption: "AES-GCM-16-256", PRF: "PRF-HMAC-SHA2-384", Integrity: "NONE", DHGroup: "ECP-384"})
	if sa.Mode != ops.ModeIKEv2 || sa.State != ops.StateUp || sa.Role != "Responder" {
		t.Fatalf("%+v", sa)
	}
	out := render(t, ops.IKESADetails{SAs: []ops.IKESA{sa}})
	for _, line := range []string{"   Authentication        : None\n", "   Encryption            : aes256-gcm\n",
		"   Pseudo random function: hmac-sha384\n", "   Diffie-Hellman group  : DH-group-20\n"} {
		if !strings.Contains(out, line) {
			t.Errorf("lacks %q:\n%s", line, out)
		}
	}
	if down := ikeview.IKESA(ike.IKESAStatus{State: ike.StateConnecting}); down.State != ops.StateDown || down.Mode != ops.ModeMain {
		t.Errorf("connecting SA: %+v", down)
	}
}

// The engine's report of SRX1's CHILD SA pair renders as the reference once
// the daemon adds its negotiation counters.
func TestChildSAStatusRendersTheReference(t *testing.T) {
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	any4 := ike.PrefixSelector(netip.MustParsePrefix("0.0.0.0/0"))
	st := ike.ChildSAStatus{
		SA: ike.ChildSA{
			Name: "VPN-to-Host2", IfID: 1, IKEVersion: 1, IKESA: 1512635, Protocol: ike.ProtoESP, Mode: ike.ModeTunnel,
			SPIIn: 0x8f3a21c4, SPIOut: 0x5b0c77e1,
			Local: netip.MustParseAddr("172.16.13.1"), Remote: netip.MustParseAddr("172.16.23.1"), LocalPort: 500, RemotePort: 500,
			Encryption: ike.Algorithm{Name: "rfc4106(gcm(aes))", KeyBits: 288, ICVBits: 128, AEAD: true, IKEName: "AES-GCM-16-256"},
			LocalTS:    []ike.TrafficSelector{any4}, RemoteTS: []ike.TrafficSelector{any4},
			ReplayWindow: 64, Lifetime: ike.Lifetime{HardSeconds: 3600, SoftSeconds: 3008},
		},
		IKESA: 1512635, Established: now.Add(-397 * time.Second), RemainingSeconds: 2611,
	}
	sa := ikeview.IPsecSA(st, now)
	sa.NegoCount, sa.Flag = 1, 0x600a29
	if got, want := render(t, ops.IPsecSAs{SAs: []ops.IPsecSA{sa}}), golden(t, "ipsec_list.golden"); got != want {
		t.Errorf("list:\n%s\nwant\n%s", got, want)
	}
	if got, want := render(t, ops.IPsecSADetails{SAs: []ops.IPsecSA{sa}}), golden(t, "ipsec_detail.golden"); got != want {
		t.Errorf("detail:\n%s\nwant\n%s", got, want)
	}
}

func TestChildSANATAndCBC(t *testing.T) {
	st := ike.ChildSAStatus{SA: ike.ChildSA{IfID: 3, IKEVersion: 2, Protocol: ike.ProtoESP, RemotePort: 4500,
		Encap:      &ike.UDPEncap{LocalPort: 4500, RemotePort: 4500},
		Encryption: ike.Algorithm{IKEName: "AES-CBC-128"}, Integrity: &ike.Algorithm{IKEName: "HMAC-SHA2-256-128"},
		LocalTS: []ike.TrafficSelector{{Protocol: 6, Start: netip.MustParseAddr("10.0.0.5"), End: netip.MustParseAddr("10.0.0.5"),
			StartPort: 443, EndPort: 443}},
		Lifetime: ike.Lifetime{HardBytes: 10 << 20}}, RemainingSeconds: 100}
	sa := ikeview.IPsecSA(st, time.Now())
	if sa.ID != 131075 || sa.BindInterface != "st0.2" || sa.Port != 4500 || sa.Version != "IKEv2" ||
		sa.Encryption != "aes-128-cbc" || sa.Authentication != "hmac-sha-256-128" || sa.Inbound.LifesizeRemainingKB != 10240 ||
		sa.Inbound.HardLifetimeSeconds != 100 {
		t.Fatalf("%+v", sa)
	}
	if got := sa.LocalIdentity.String(); got != "ipv4(tcp:443,[0..3]=10.0.0.5)" {
		t.Errorf("local identity %s", got)
	}
	if got := sa.RemoteIdentity.String(); got != "ipv4_subnet(any:0,[0..7]=0.0.0.0/0)" {
		t.Errorf("remote identity %s", got)
	}
	out := render(t, ops.IPsecSAs{SAs: []ops.IPsecSA{sa}})
	if !strings.Contains(out, "  <131075 ESP:aes-cbc-128/sha256 00000000 100/ 10240 - root 4500 -\n") {
		t.Errorf("list:\n%s", out)
	}
}

func TestUnit(t *testing.T) {
	for id, want := range map[uint32]int{131073: 0, 131074: 1, 131072 + 16000: 15999} {
		if got, ok := ikeview.Unit(id); !ok || got != want {
			t.Errorf("Unit(%d) = %d, %v; want %d", id, got, ok, want)
		}
	}
	if _, ok := ikeview.Unit(131072); ok {
		t.Error("Unit(131072) ok")
	}
}
