package configview_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bpfvpn/bpfvpn/control/config"
	"github.com/bpfvpn/bpfvpn/control/ops"
	"github.com/bpfvpn/bpfvpn/control/ops/configview"
)

func srx1(t *testing.T) *config.Config {
	t.Helper()
	path := filepath.Join("..", "..", "config", "testdata", "srx1.set")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, diags := config.ParseBytes(path, data)
	if cfg == nil {
		t.Fatalf("srx1.set: %v", diags)
	}
	return cfg
}

func render(t *testing.T, v ops.View) string {
	t.Helper()
	out, err := ops.Render(v, false)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPoliciesOfSRX1(t *testing.T) {
	hits := map[string]uint64{"trust/vpn/VPN-OUT": 3}
	pol := configview.Policies(srx1(t), func(from, to, name string) uint64 { return hits[from+"/"+to+"/"+name] })
	want := `Logical system: root-logical-system
Index   From zone        To zone           Name           Policy count  Action
1       trust            untrust           default-permit 0             Permit
2       trust            vpn               VPN-OUT        3             Permit
3       vpn              trust             VPN-IN         0             Permit
`
	if got := render(t, ops.PolicyHitCounts(pol)); got != want {
		t.Errorf("hit-count:\n%s\nwant\n%s", got, want)
	}
	got := render(t, pol)
	for _, line := range []string{
		"Default policy: deny-all\n",
		"From zone: trust, To zone: vpn\n  Policy: VPN-OUT, State: enabled, Index: 2, Scope Policy: 0, Sequence number: 1\n" +
			"    Source addresses: Host1-Net\n    Destination addresses: Host2-Net\n    Applications: any\n    Action: permit\n",
	} {
		if !strings.Contains(got, line) {
			t.Errorf("policies lack %q:\n%s", line, got)
		}
	}
}

func TestZonesOfSRX1(t *testing.T) {
	z := configview.Zones(srx1(t))
	got := map[string][]string{}
	for _, zone := range z.Zones {
		got[zone.Name] = zone.Interfaces
	}
	if len(z.Zones) != 3 || got["trust"][0] != "ge-0/0/0.0" || got["untrust"][0] != "ge-0/0/1.0" || got["vpn"][0] != "st0.0" {
		t.Fatalf("zones %+v", z.Zones)
	}
	if out := render(t, z); !strings.Contains(out, "Security zone: vpn\n") || !strings.Contains(out, "  Interfaces bound: 1\n  Interfaces:\n    st0.0\n") {
		t.Errorf("zones:\n%s", out)
	}
}

func TestInterfacesOfSRX1(t *testing.T) {
	cfg := srx1(t)
	link := func(name string) (configview.LinkState, bool) {
		if name != "st0.0" {
			return configview.LinkState{}, false
		}
		return configview.LinkState{Index: 70, AdminUp: true, LinkUp: true, MTU: 1436, InputPackets: 5, OutputPackets: 6}, true
	}
	for _, name := range []string{"", "st0", "st0.0"} {
		ifs, err := configview.Interfaces(cfg, name, link)
		if err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		want := "Interface               Admin Link Proto    Local                 Remote\n" +
			"st0                     up    up\n" +
			"st0.0                   up    up   inet     10.100.200.1/24\n"
		if got := render(t, ops.InterfacesTerse(ifs)); got != want {
			t.Errorf("%q terse:\n%s\nwant\n%s", name, got, want)
		}
	}
	ifs, _ := configview.Interfaces(cfg, "st0", nil)
	if got := render(t, ops.InterfacesTerse(ifs)); !strings.Contains(got, "st0.0                   up    down inet") {
		t.Errorf("without a device st0.0 must be down:\n%s", got)
	}
	for _, bad := range []string{"st0.7", "ge-0/0/9"} {
		if _, err := configview.Interfaces(cfg, bad, link); err == nil || err.Error() != "device "+bad+" not found" {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func TestRoutesOfSRX1(t *testing.T) {
	r := configview.Routes(srx1(t), func(*config.Route) (bool, int64) { return true, 754 })
	want := `inet.0: 8 destinations, 8 routes (8 active, 0 holddown, 0 hidden)
+ = Active Route, - = Last Active, * = Both

0.0.0.0/0          *[Static/5] 00:12:34
                    >  to 172.16.13.2 via ge-0/0/1.0
10.100.11.0/24     *[Direct/0] 00:00:00
                    >  via ge-0/0/0.0
10.100.11.1/32     *[Local/0] 00:00:00
                       Local via ge-0/0/0.0
10.100.22.0/24     *[Static/5] 00:12:34
                    >  via st0.0
10.100.200.0/24    *[Direct/0] 00:00:00
                    >  via st0.0
10.100.200.1/32    *[Local/0] 00:00:00
                       Local via st0.0
172.16.13.0/24     *[Direct/0] 00:00:00
                    >  via ge-0/0/1.0
172.16.13.1/32     *[Local/0] 00:00:00
                       Local via ge-0/0/1.0
`
	if got := render(t, r); got != want {
		t.Errorf("routes:\n%s\nwant\n%s", got, want)
	}
}

func TestProxyIDsAndAlgorithms(t *testing.T) {
	cfg := srx1(t)
	vpn := cfg.IPsec.VPNs[0]
	l, r := configview.ProxyIDs(cfg, vpn)
	if l.String() != "ipv4_subnet(any:0,[0..7]=0.0.0.0/0)" || r.String() != "ipv4_subnet(any:0,[0..7]=0.0.0.0/0)" {
		t.Errorf("proxy ids %s %s", l, r)
	}
	withSvc := *vpn
	withSvc.ProxyIdentity.Local = ops.ProxyID{}.Prefix
	withSvc.ProxyIdentity.Service = "junos-https"
	l, _ = configview.ProxyIDs(cfg, &withSvc)
	if l.String() != "ipv4_subnet(tcp:443,[0..7]=0.0.0.0/0)" {
		t.Errorf("junos-https proxy id %s", l)
	}
	ike := configview.IKEAlgorithms(cfg.IKE.Policies[0].Proposals[0])
	if ike.DHGroup != "group19" || ike.Encryption != "aes-256-cbc" || ike.Authentication != "sha-256" {
		t.Errorf("IKE algorithms %+v", ike)
	}
	proto, enc, auth := configview.IPsecAlgorithms(vpn.Policy.Proposals[0])
	if proto != "ESP" || enc != "aes-256-gcm" || auth != "" {
		t.Errorf("IPsec algorithms %s %s %q", proto, enc, auth)
	}
}
