package ops_test

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/bpfvpn/bpfvpn/control/ops"
)

func text(t *testing.T, v ops.View) string {
	t.Helper()
	out, err := ops.Render(v, false)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestProxyIDFormats(t *testing.T) {
	cases := []struct {
		id   ops.ProxyID
		want string
	}{
		{ops.ProxyID{}, "ipv4_subnet(any:0,[0..7]=0.0.0.0/0)"},
		{ops.ProxyID{Prefix: netip.MustParsePrefix("0.0.0.0/0"), Protocol: "any"}, "ipv4_subnet(any:0,[0..7]=0.0.0.0/0)"},
		{ops.ProxyID{Prefix: netip.MustParsePrefix("10.100.11.0/24")}, "ipv4_subnet(any:0,[0..7]=10.100.11.0/24)"},
		{ops.ProxyID{Prefix: netip.MustParsePrefix("10.100.11.7/32"), Protocol: "tcp", Port: 80}, "ipv4(tcp:80,[0..3]=10.100.11.7)"},
		{ops.ProxyID{Prefix: netip.MustParsePrefix("::/0"), Protocol: "any"}, "ipv6_subnet(any:0,[0..31]=::/0)"},
		{ops.ProxyID{Prefix: netip.MustParsePrefix("2001:db8::1/128"), Protocol: "udp", Port: 53}, "ipv6(udp:53,[0..15]=2001:db8::1)"},
	}
	for _, tc := range cases {
		if got := tc.id.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.id, got, tc.want)
		}
	}
}

func TestIPsecListVariants(t *testing.T) {
	sa := ops.IPsecSA{ID: 131074, Port: 4500, Monitoring: ops.MonitorUp, Protocol: "ESP",
		Encryption: "aes-256-cbc", Authentication: "hmac-sha-256-128", RemoteGateway: netip.MustParseAddr("198.51.100.7"),
		Inbound:  ops.IPsecSADirection{SPI: 0xb95afaf0, HardLifetimeSeconds: 3029, LifesizeRemainingKB: 102400},
		Outbound: ops.IPsecSADirection{SPI: 0xca3156de, HardLifetimeSeconds: 3029, LifesizeRemainingKB: 102400}}
	down := sa
	down.ID, down.Monitoring, down.Encryption, down.Authentication = 131075, ops.MonitorDown, "aes-128-gcm", ""
	got := text(t, ops.IPsecSAs{SAs: []ops.IPsecSA{sa, down}})
	want := `  Total active tunnels: 2     Total IPsec sas: 2
  ID      Algorithm       SPI      Life:sec/kb  Mon lsys Port  Gateway
  <131074 ESP:aes-cbc-256/sha256 b95afaf0 3029/ 102400 U root 4500 198.51.100.7
  >131074 ESP:aes-cbc-256/sha256 ca3156de 3029/ 102400 U root 4500 198.51.100.7
  <131075 ESP:aes-gcm-128/None b95afaf0 3029/ 102400 D root 4500 198.51.100.7
  >131075 ESP:aes-gcm-128/None ca3156de 3029/ 102400 D root 4500 198.51.100.7
`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	detail := text(t, ops.IPsecSADetails{SAs: []ops.IPsecSA{sa}})
	for _, line := range []string{
		"    Protocol: ESP, Authentication: hmac-sha256-128, Encryption: aes-cbc (256 bits)\n",
		"    Lifesize Remaining:  102400 kilobytes\n",
		"  Port: 4500, Nego#: 0, Fail#: 0, Def-Del#: 0 Flag: 0x0\n",
		"  Direction: inbound, SPI: b95afaf0, AUX-SPI: 0, VPN Monitoring: U\n",
		"    Anti-replay service: counter-based disabled, Replay window size: 0\n",
	} {
		if !strings.Contains(detail, line) {
			t.Errorf("detail lacks %q:\n%s", line, detail)
		}
	}
	if got := text(t, ops.IPsecSAs{}); got != "  Total active tunnels: 0     Total IPsec sas: 0\n  ID      Algorithm       SPI      Life:sec/kb  Mon lsys Port  Gateway\n" {
		t.Errorf("empty list: %q", got)
	}
}

func TestIKEListOverflowAndEmpty(t *testing.T) {
	if got := text(t, ops.IKESAs{}); got != "" {
		t.Errorf("no IKE SA prints %q, want nothing", got)
	}
	got := text(t, ops.IKESAs{SAs: []ops.IKESA{{Index: 10827715, State: ops.StateUp, InitiatorCookie: 0xccb95f0882a044a8,
		ResponderCookie: 0x67c1a3d54ae8f069, Mode: ops.ModeIKEv2, RemoteAddress: netip.MustParseAddrPort("[2001:db8::2]:4500")}}})
	// An index wider than its column pushes State right; later columns keep their stops.
	want := "Index   State  Initiator cookie  Responder cookie  Mode           Remote Address\n" +
		"10827715 UP    ccb95f0882a044a8  67c1a3d54ae8f069  IKEv2          2001:db8::2\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestIKEDetailAlgorithms(t *testing.T) {
	sa := ops.IKESA{Index: 7, Mode: ops.ModeIKEv2, Role: "Responder", State: ops.StateUp,
		Algorithms:   ops.IKEAlgorithms{Authentication: "sha-384", Encryption: "aes-128-cbc", DHGroup: "group20"},
		LocalAddress: netip.MustParseAddrPort("172.16.13.1:4500"), RemoteAddress: netip.MustParseAddrPort("[2001:db8::2]:4500")}
	got := text(t, ops.IKESADetails{SAs: []ops.IKESA{sa, sa}})
	for _, line := range []string{
		"   Authentication        : hmac-sha384-192\n",
		"   Encryption            : aes128-cbc\n",
		"   Pseudo random function: hmac-sha384\n",
		"   Diffie-Hellman group  : DH-group-20\n",
		"  Exchange type: IKEv2, Authentication method: \n",
		"  Local: 172.16.13.1:4500, Remote: 2001:db8::2:4500\n",
		"  Phase 2 negotiations in progress: 0\n\nIKE peer 2001:db8::2, Index 7",
	} {
		if !strings.Contains(got, line) {
			t.Errorf("detail lacks %q:\n%s", line, got)
		}
	}
}

func TestHitCountLongNames(t *testing.T) {
	got := text(t, ops.PolicyHitCounts{Policies: []ops.Policy{
		{FromZone: "junos-host", ToZone: "dmz", Name: "allow-junos-host-to-dmz", Hits: 18939, Action: "permit"},
		{FromZone: "all-zone", ToZone: "all-zone", Name: "default-http-mux", Hits: 0, Action: "deny"},
	}})
	want := "Logical system: root-logical-system\n" +
		"Index   From zone        To zone           Name           Policy count  Action\n" +
		"1       junos-host       dmz               allow-junos-host-to-dmz 18939 Permit\n" +
		"2       all-zone         all-zone          default-http-mux 0           Deny\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestTerseAddresses(t *testing.T) {
	got := text(t, ops.InterfacesTerse{Interfaces: []ops.Interface{{Name: "st0", AdminUp: true, LinkUp: true, Units: []ops.LogicalInterface{
		{Name: "st0.0", AdminUp: true, LinkUp: false, Addresses: []netip.Prefix{
			netip.MustParsePrefix("10.100.200.1/24"), netip.MustParsePrefix("2001:db8:200::1/64"), netip.MustParsePrefix("fe80::1/64")}},
		{Name: "st0.1", AdminUp: true, LinkUp: true},
	}}}})
	want := "Interface               Admin Link Proto    Local                 Remote\n" +
		"st0                     up    up\n" +
		"st0.0                   up    down inet     10.100.200.1/24\n" +
		"                                   inet6    2001:db8:200::1/64\n" +
		"                                            fe80::1/64\n" +
		"st0.1                   up    up\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestFlowSessionEmpty(t *testing.T) {
	if got := text(t, ops.FlowSessions{}); got != "Total sessions: 0\n" {
		t.Errorf("%q", got)
	}
}

func TestNoSecretsInViews(t *testing.T) {
	// No view type may have a field that could hold key material: walk
	// every field of every view, recursively, and check its Go and JSON names.
	views := []any{ops.IKESAs{}, ops.IPsecSAs{}, ops.IPsecStatistics{}, ops.Policies{}, ops.FlowSessions{},
		ops.FlowSessionSummary{}, ops.Zones{}, ops.Interfaces{}, ops.Routes{}, ops.Cleared{}}
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type, string)
	walk = func(rt reflect.Type, path string) {
		for rt.Kind() == reflect.Slice || rt.Kind() == reflect.Pointer || rt.Kind() == reflect.Map {
			rt = rt.Elem()
		}
		if rt.Kind() != reflect.Struct || seen[rt] || rt.PkgPath() != reflect.TypeOf(ops.IKESA{}).PkgPath() {
			return
		}
		seen[rt] = true
		for i := 0; i < rt.NumField(); i++ {
			f := rt.Field(i)
			name := strings.ToLower(f.Name + " " + f.Tag.Get("json"))
			for _, bad := range []string{"key", "secret", "psk", "password", "nonce"} {
				if strings.Contains(name, bad) {
					t.Errorf("%s.%s may carry secrets (%q)", path, f.Name, bad)
				}
			}
			walk(f.Type, path+"."+f.Name)
		}
	}
	for _, v := range views {
		walk(reflect.TypeOf(v), reflect.TypeOf(v).Name())
	}
	if len(seen) < 15 {
		t.Fatalf("walked only %d view types", len(seen))
	}
}
