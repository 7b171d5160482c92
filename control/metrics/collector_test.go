package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bpfvpn/bpfvpn/control/metrics"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func referenceSnapshot() metrics.Snapshot {
	return metrics.Snapshot{
		Tunnels: []metrics.Tunnel{{VPN: "VPN-to-Host2", Interface: "st0.0", Up: true}, {VPN: "VPN-backup", Interface: "st0.1"}},
		IKESAs:  1, IPsecSAs: 1,
		SAs: []metrics.SA{
			{VPN: "VPN-to-Host2", Interface: "st0.0", Direction: "inbound", SPI: 0x8f3a21c4, Bytes: 7909692, Packets: 94163,
				Errors: map[string]uint64{"replay": 2, "authentication": 1}},
			{VPN: "VPN-to-Host2", Interface: "st0.0", Direction: "outbound", SPI: 0x5b0c77e1, Bytes: 14689428, Packets: 94163},
		},
		Policies: []metrics.PolicyHits{{FromZone: "trust", ToZone: "vpn", Policy: "VPN-OUT", Hits: 3}},
		Drops:    map[string]uint64{"policy-deny": 12, "host-inbound": 4},
		Sessions: 2,
	}
}

const wantExposition = `
# HELP bpfvpn_drops_total Packets dropped by the data plane, by reason.
# TYPE bpfvpn_drops_total counter
bpfvpn_drops_total{reason="host-inbound"} 4
bpfvpn_drops_total{reason="policy-deny"} 12
# HELP bpfvpn_flow_sessions Number of sessions in the flow table.
# TYPE bpfvpn_flow_sessions gauge
bpfvpn_flow_sessions 2
# HELP bpfvpn_ike_security_associations Number of established IKE SAs.
# TYPE bpfvpn_ike_security_associations gauge
bpfvpn_ike_security_associations 1
# HELP bpfvpn_ipsec_sa_bytes_total Bytes processed by the IPsec SA.
# TYPE bpfvpn_ipsec_sa_bytes_total counter
bpfvpn_ipsec_sa_bytes_total{direction="inbound",interface="st0.0",spi="8f3a21c4",vpn="VPN-to-Host2"} 7.909692e+06
bpfvpn_ipsec_sa_bytes_total{direction="outbound",interface="st0.0",spi="5b0c77e1",vpn="VPN-to-Host2"} 1.4689428e+07
# HELP bpfvpn_ipsec_sa_errors_total Packets the IPsec SA rejected, by kind.
# TYPE bpfvpn_ipsec_sa_errors_total counter
bpfvpn_ipsec_sa_errors_total{direction="inbound",interface="st0.0",kind="authentication",spi="8f3a21c4",vpn="VPN-to-Host2"} 1
bpfvpn_ipsec_sa_errors_total{direction="inbound",interface="st0.0",kind="replay",spi="8f3a21c4",vpn="VPN-to-Host2"} 2
# HELP bpfvpn_ipsec_sa_packets_total Packets processed by the IPsec SA.
# TYPE bpfvpn_ipsec_sa_packets_total counter
bpfvpn_ipsec_sa_packets_total{direction="inbound",interface="st0.0",spi="8f3a21c4",vpn="VPN-to-Host2"} 94163
bpfvpn_ipsec_sa_packets_total{direction="outbound",interface="st0.0",spi="5b0c77e1",vpn="VPN-to-Host2"} 94163
# HELP bpfvpn_ipsec_security_associations Number of installed IPsec SA pairs.
# TYPE bpfvpn_ipsec_security_associations gauge
bpfvpn_ipsec_security_associations 1
# HELP bpfvpn_policy_hits_total Sessions created by (first packets matched by) the security policy.
# TYPE bpfvpn_policy_hits_total counter
bpfvpn_policy_hits_total{from_zone="trust",policy="VPN-OUT",to_zone="vpn"} 3
# HELP bpfvpn_tunnel_up 1 if the VPN's IPsec SAs are installed, 0 otherwise.
# TYPE bpfvpn_tunnel_up gauge
bpfvpn_tunnel_up{interface="st0.0",vpn="VPN-to-Host2"} 1
bpfvpn_tunnel_up{interface="st0.1",vpn="VPN-backup"} 0
# HELP bpfvpn_tunnels Number of configured VPNs.
# TYPE bpfvpn_tunnels gauge
bpfvpn_tunnels 2
# HELP bpfvpn_tunnels_up Number of VPNs whose IPsec SAs are installed.
# TYPE bpfvpn_tunnels_up gauge
bpfvpn_tunnels_up 1
# HELP bpfvpn_up 1 if bpfvpn's state could be read at this scrape, 0 otherwise.
# TYPE bpfvpn_up gauge
bpfvpn_up 1
`

func TestCollectorExposition(t *testing.T) {
	c := metrics.NewCollector(metrics.SourceFunc(func(context.Context) (metrics.Snapshot, error) {
		return referenceSnapshot(), nil
	}), nil)
	if err := testutil.CollectAndCompare(c, strings.NewReader(wantExposition)); err != nil {
		t.Fatal(err)
	}
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestCollectorReadsAtScrapeTime(t *testing.T) {
	sessions := uint64(0)
	c := metrics.NewCollector(metrics.SourceFunc(func(context.Context) (metrics.Snapshot, error) {
		sessions++
		return metrics.Snapshot{Sessions: sessions}, nil
	}), nil)
	for want := 1; want <= 3; want++ {
		exp := fmt.Sprintf("# HELP bpfvpn_flow_sessions Number of sessions in the flow table.\n"+
			"# TYPE bpfvpn_flow_sessions gauge\nbpfvpn_flow_sessions %d\n", want)
		if err := testutil.CollectAndCompare(c, strings.NewReader(exp), "bpfvpn_flow_sessions"); err != nil {
			t.Fatalf("scrape %d: %v", want, err)
		}
	}
}

func TestCollectorSourceError(t *testing.T) {
	c := metrics.NewCollector(metrics.SourceFunc(func(context.Context) (metrics.Snapshot, error) {
		return metrics.Snapshot{}, errors.New("daemon starting")
	}), nil)
	want := `
# HELP bpfvpn_up 1 if bpfvpn's state could be read at this scrape, 0 otherwise.
# TYPE bpfvpn_up gauge
bpfvpn_up 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(c); n != 1 {
		t.Fatalf("%d metrics after a failed snapshot, want 1", n)
	}
}

func TestHTTPHandler(t *testing.T) {
	src := metrics.SourceFunc(func(context.Context) (metrics.Snapshot, error) { return referenceSnapshot(), nil })
	ln, err := metrics.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- metrics.Serve(ctx, ln, metrics.Handler(metrics.NewRegistry(src, nil))) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	for _, want := range []string{
		"bpfvpn_up 1\n",
		`bpfvpn_tunnel_up{interface="st0.0",vpn="VPN-to-Host2"} 1`,
		`bpfvpn_policy_hits_total{from_zone="trust",policy="VPN-OUT",to_zone="vpn"} 3`,
		"go_goroutines ",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
