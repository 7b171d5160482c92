// Package metrics exports bpfvpn's state as Prometheus metrics. The
// collector asks a Source for a fresh Snapshot at every scrape, so the
// metrics never go stale and the daemon keeps no metric state of its own.
package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Tunnel is one configured VPN and whether its IPsec SAs are installed.
type Tunnel struct {
	VPN       string // security ipsec vpn name
	Interface string // bound st0.N
	Up        bool
}

// SA holds the counters of one directional IPsec SA.
type SA struct {
	VPN       string
	Interface string
	Direction string // inbound or outbound
	SPI       uint32
	Bytes     uint64
	Packets   uint64
	// Errors counts failures by kind: replay, authentication, decryption,
	// invalid-spi, … (names chosen by the daemon, used as label values).
	Errors map[string]uint64
}

// PolicyHits counts the sessions a security policy matched.
type PolicyHits struct {
	FromZone string
	ToZone   string
	Policy   string
	Hits     uint64
}

// Snapshot is the state exported at one scrape.
type Snapshot struct {
	Tunnels []Tunnel
	// IKESAs and IPsecSAs count established IKE SAs and IPsec SA pairs.
	IKESAs   int
	IPsecSAs int
	SAs      []SA
	Policies []PolicyHits
	// Drops counts packets the data plane dropped, by reason (policy-deny,
	// host-inbound, spi-filter, ike-rate-limit, …).
	Drops    map[string]uint64
	Sessions uint64
}

// Source supplies snapshots; the daemon implements it. It must honour ctx.
type Source interface {
	MetricsSnapshot(ctx context.Context) (Snapshot, error)
}

// SourceFunc adapts a function to Source.
type SourceFunc func(ctx context.Context) (Snapshot, error)

// MetricsSnapshot calls f.
func (f SourceFunc) MetricsSnapshot(ctx context.Context) (Snapshot, error) { return f(ctx) }

// ScrapeTimeout bounds one call to Source.MetricsSnapshot.
const ScrapeTimeout = 10 * time.Second

var (
	descUp = prometheus.NewDesc("bpfvpn_up",
		"1 if bpfvpn's state could be read at this scrape, 0 otherwise.", nil, nil)
	descTunnelUp = prometheus.NewDesc("bpfvpn_tunnel_up",
		"1 if the VPN's IPsec SAs are installed, 0 otherwise.", []string{"vpn", "interface"}, nil)
	descTunnelsUp = prometheus.NewDesc("bpfvpn_tunnels_up",
		"Number of VPNs whose IPsec SAs are installed.", nil, nil)
	descTunnels = prometheus.NewDesc("bpfvpn_tunnels",
		"Number of configured VPNs.", nil, nil)
	descIKESAs = prometheus.NewDesc("bpfvpn_ike_security_associations",
		"Number of established IKE SAs.", nil, nil)
	descIPsecSAs = prometheus.NewDesc("bpfvpn_ipsec_security_associations",
		"Number of installed IPsec SA pairs.", nil, nil)
	saLabels     = []string{"vpn", "interface", "direction", "spi"}
	descSABytes  = prometheus.NewDesc("bpfvpn_ipsec_sa_bytes_total", "Bytes processed by the IPsec SA.", saLabels, nil)
	descSAPkts   = prometheus.NewDesc("bpfvpn_ipsec_sa_packets_total", "Packets processed by the IPsec SA.", saLabels, nil)
	descSAErrors = prometheus.NewDesc("bpfvpn_ipsec_sa_errors_total", "Packets the IPsec SA rejected, by kind.",
		append(append([]string(nil), saLabels...), "kind"), nil)
	descPolicyHits = prometheus.NewDesc("bpfvpn_policy_hits_total",
		"Sessions created by (first packets matched by) the security policy.", []string{"from_zone", "to_zone", "policy"}, nil)
	descDrops = prometheus.NewDesc("bpfvpn_drops_total",
		"Packets dropped by the data plane, by reason.", []string{"reason"}, nil)
	descSessions = prometheus.NewDesc("bpfvpn_flow_sessions",
		"Number of sessions in the flow table.", nil, nil)
)

// Collector is a prometheus.Collector reading a Source at scrape time.
type Collector struct {
	src Source
	log *slog.Logger
}

// NewCollector returns a collector for src; log (may be nil) receives
// snapshot errors.
func NewCollector(src Source, log *slog.Logger) *Collector {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Collector{src: src, log: log}
}

// Describe sends every metric description.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descTunnelUp, descTunnelsUp, descTunnels, descIKESAs, descIPsecSAs,
		descSABytes, descSAPkts, descSAErrors, descPolicyHits, descDrops, descSessions} {
		ch <- d
	}
}

// Collect takes a snapshot and sends its metrics. When the snapshot fails
// only bpfvpn_up 0 is sent.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), ScrapeTimeout)
	defer cancel()
	s, err := c.src.MetricsSnapshot(ctx)
	if err != nil {
		c.log.Warn("metrics: snapshot failed", "err", err)
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 1)
	up := 0
	for _, t := range s.Tunnels {
		v := 0.0
		if t.Up {
			v, up = 1, up+1
		}
		ch <- prometheus.MustNewConstMetric(descTunnelUp, prometheus.GaugeValue, v, t.VPN, t.Interface)
	}
	ch <- prometheus.MustNewConstMetric(descTunnelsUp, prometheus.GaugeValue, float64(up))
	ch <- prometheus.MustNewConstMetric(descTunnels, prometheus.GaugeValue, float64(len(s.Tunnels)))
	ch <- prometheus.MustNewConstMetric(descIKESAs, prometheus.GaugeValue, float64(s.IKESAs))
	ch <- prometheus.MustNewConstMetric(descIPsecSAs, prometheus.GaugeValue, float64(s.IPsecSAs))
	for _, sa := range s.SAs {
		spi := fmt.Sprintf("%08x", sa.SPI)
		ch <- prometheus.MustNewConstMetric(descSABytes, prometheus.CounterValue, float64(sa.Bytes), sa.VPN, sa.Interface, sa.Direction, spi)
		ch <- prometheus.MustNewConstMetric(descSAPkts, prometheus.CounterValue, float64(sa.Packets), sa.VPN, sa.Interface, sa.Direction, spi)
		for _, kind := range sortedKeys(sa.Errors) {
			ch <- prometheus.MustNewConstMetric(descSAErrors, prometheus.CounterValue, float64(sa.Errors[kind]), sa.VPN, sa.Interface, sa.Direction, spi, kind)
		}
	}
	for _, p := range s.Policies {
		ch <- prometheus.MustNewConstMetric(descPolicyHits, prometheus.CounterValue, float64(p.Hits), p.FromZone, p.ToZone, p.Policy)
	}
	for _, reason := range sortedKeys(s.Drops) {
		ch <- prometheus.MustNewConstMetric(descDrops, prometheus.CounterValue, float64(s.Drops[reason]), reason)
	}
	ch <- prometheus.MustNewConstMetric(descSessions, prometheus.GaugeValue, float64(s.Sessions))
}

func sortedKeys(m map[string]uint64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
