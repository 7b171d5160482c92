package maps

import (
	"fmt"

	"github.com/bpfvpn/bpfvpn/loader"
)

// CounterNames names the counters of enum counter_id for status output.
var CounterNames = map[CounterID]string{
	loader.BpfvpnCounterIdCNT_PKTS:                "packets",
	loader.BpfvpnCounterIdCNT_PASS_NON_IP:         "pass-non-ip",
	loader.BpfvpnCounterIdCNT_PASS_HOST:           "pass-host-inbound",
	loader.BpfvpnCounterIdCNT_PASS_ND:             "pass-ipv6-nd",
	loader.BpfvpnCounterIdCNT_PASS_ICMP_ERROR:     "pass-icmp-error-to-host",
	loader.BpfvpnCounterIdCNT_PASS_ESP:            "pass-esp-known-spi",
	loader.BpfvpnCounterIdCNT_SESSION_HIT:         "session-hit",
	loader.BpfvpnCounterIdCNT_SESSION_NEW:         "session-new",
	loader.BpfvpnCounterIdCNT_SESSION_EXPIRED:     "session-expired",
	loader.BpfvpnCounterIdCNT_SESSION_RECHECK:     "session-recheck",
	loader.BpfvpnCounterIdCNT_REDIRECT:            "xdp-redirect",
	loader.BpfvpnCounterIdCNT_PASS_FIB_OTHER:      "pass-fib-other",
	loader.BpfvpnCounterIdCNT_MSS_CLAMPED:         "tcp-mss-clamped",
	loader.BpfvpnCounterIdCNT_FRAG_FOLLOWED:       "fragment-followed",
	loader.BpfvpnCounterIdCNT_REJECT_TCP:          "reject-tcp-rst",
	loader.BpfvpnCounterIdCNT_REJECT_ICMP:         "reject-icmp-unreachable",
	loader.BpfvpnCounterIdCNT_DROP_MALFORMED:      "drop-malformed",
	loader.BpfvpnCounterIdCNT_DROP_NO_ZONE:        "drop-no-zone",
	loader.BpfvpnCounterIdCNT_DROP_NO_TO_ZONE:     "drop-no-to-zone",
	loader.BpfvpnCounterIdCNT_DROP_HOST_INBOUND:   "drop-host-inbound",
	loader.BpfvpnCounterIdCNT_DROP_ESP_SPI:        "drop-esp-unknown-spi",
	loader.BpfvpnCounterIdCNT_DROP_IKE_RATE:       "drop-ike-rate",
	loader.BpfvpnCounterIdCNT_DROP_POLICY:         "drop-policy",
	loader.BpfvpnCounterIdCNT_DROP_REJECT:         "drop-reject-failed",
	loader.BpfvpnCounterIdCNT_DROP_TCP_NO_SYN:     "drop-tcp-no-syn",
	loader.BpfvpnCounterIdCNT_DROP_FRAG_UNKNOWN:   "drop-fragment-unknown",
	loader.BpfvpnCounterIdCNT_DROP_FRAG_SHORT:     "drop-fragment-short",
	loader.BpfvpnCounterIdCNT_DROP_SESSION_CLOSED: "drop-session-closed",
	loader.BpfvpnCounterIdCNT_DROP_ICMP_ERROR:     "drop-icmp-error-no-session",
	loader.BpfvpnCounterIdCNT_TUNNEL_OUT:          "tunnel-out",
	loader.BpfvpnCounterIdCNT_SESSION_SELF:        "session-self",
	loader.BpfvpnCounterIdCNT_TUNNEL_DEMAND:       "tunnel-demand",
	loader.BpfvpnCounterIdCNT_TUNNEL_DEMAND_LOST:  "tunnel-demand-lost",
	loader.BpfvpnCounterIdCNT_FLOW_CACHE_HIT:      "session-hit-flow-cache",
}

// ReadCounters sums the per-CPU event counters.
func (s *Set) ReadCounters() (map[CounterID]uint64, error) {
	out := map[CounterID]uint64{}
	for id := CounterID(0); id < loader.BpfvpnCounterIdCNT_MAX; id++ {
		var per []uint64
		if err := s.Counters.Lookup(uint32(id), &per); err != nil {
			return nil, fmt.Errorf("read counter %d: %w", id, err)
		}
		var sum uint64
		for _, v := range per {
			sum += v
		}
		out[id] = sum
	}
	return out, nil
}

// ReadZoneStats sums the per-CPU counters of a zone.
func (s *Set) ReadZoneStats(zone uint16) (ZoneStats, error) {
	var per []ZoneStats
	var z ZoneStats
	if err := s.ZoneCounters.Lookup(uint32(zone), &per); err != nil {
		return z, fmt.Errorf("read zone %d counters: %w", zone, err)
	}
	for _, v := range per {
		z.RxPkts += v.RxPkts
		z.RxBytes += v.RxBytes
		z.HostPkts += v.HostPkts
		z.Drops += v.Drops
		z.TxPkts += v.TxPkts
	}
	return z, nil
}

// ReadPolicyHits sums the per-CPU hit counter of a global policy index.
func (s *Set) ReadPolicyHits(idx uint32) (uint64, error) {
	var per []uint64
	if err := s.PolicyHits.Lookup(idx, &per); err != nil {
		return 0, fmt.Errorf("read policy %d hits: %w", idx, err)
	}
	var sum uint64
	for _, v := range per {
		sum += v
	}
	return sum, nil
}
