// Package kernelview turns the kernel reconciler's XFRM counters
// (control/kernel) into the IPsec statistics view and the per-SA metrics,
// so the daemon's providers only pick which SAs to ask about.
package kernelview

import (
	"github.com/bpfvpn/bpfvpn/control/kernel"
	"github.com/bpfvpn/bpfvpn/control/metrics"
	"github.com/bpfvpn/bpfvpn/control/ops"
)

// AllUnits selects every tunnel in Statistics.
const AllUnits = -1

// Statistics builds `show security ipsec statistics`: ESP bytes and packets
// summed over the outbound (encrypted) and inbound (decrypted) SAs of unit
// st0.N, or of every unit with AllUnits.
//
// Errors: for one unit they come from its SAs' own counters (replay and
// replay-window drops, integrity failures of inbound SAs); for every unit
// from /proc/net/xfrm_stat, mapped as
//
//	Replay errors               InStateSeqError (sequence number outside the window)
//	ESP authentication failures InStateProtoError (ICV check failed: wrong key)
//	Bad headers                 InHdrError
//	Invalid SPI                 InNoStates (no SA for SPI/address/protocol)
//	TS check fail               InTmplMismatch, InNoPols (decrypted packet fits no policy)
//	Discarded                   every other inbound, outbound and forward error
//
// The kernel does not count AH authentication, ESP decryption, bad-trailer
// or tunnel-MTU failures apart; those stay 0.
func Statistics(sas []kernel.SAStats, xs kernel.XfrmStat, unit int) ops.IPsecStatistics {
	var st ops.IPsecStatistics
	var perSA ops.IPsecErrors
	for _, sa := range sas {
		if unit != AllUnits && sa.Unit != unit {
			continue
		}
		switch sa.Direction {
		case "outbound":
			st.ESP.EncryptedBytes += sa.Bytes
			st.ESP.EncryptedPackets += sa.Packets
		case "inbound":
			st.ESP.DecryptedBytes += sa.Bytes
			st.ESP.DecryptedPackets += sa.Packets
			perSA.ESPAuthFailures += sa.IntegrityFailures
		}
		perSA.ReplayErrors += sa.ReplayErrors + sa.ReplayWindowDrops
	}
	if unit != AllUnits {
		st.Errors = perSA
		return st
	}
	st.Errors = ops.IPsecErrors{
		ReplayErrors:    xs.InStateSeqError,
		ESPAuthFailures: xs.InStateProtoError,
		BadHeaders:      xs.InHdrError,
		InvalidSPI:      xs.InNoStates,
		TSCheckFail:     xs.InTmplMismatch + xs.InNoPols,
		Discarded: xs.InError + xs.InBufferError + xs.InStateModeError + xs.InStateExpired + xs.InStateMismatch +
			xs.InStateInvalid + xs.InPolBlock + xs.InPolError + xs.InIptfsError + xs.InStateDirError +
			xs.AcquireError + xs.FwdHdrError +
			xs.OutError + xs.OutBundleGenError + xs.OutBundleCheckError + xs.OutNoStates + xs.OutStateProtoError +
			xs.OutStateModeError + xs.OutStateSeqError + xs.OutStateExpired + xs.OutPolBlock + xs.OutPolDead +
			xs.OutPolError + xs.OutStateInvalid + xs.OutStateDirError,
	}
	for _, v := range xs.Other {
		st.Errors.Discarded += v
	}
	return st
}

// MetricsSAs gives the per-SA counters of the metrics snapshot. vpn names
// the VPN bound to unit st0.N ("" when none is).
func MetricsSAs(sas []kernel.SAStats, vpn func(unit int) string) []metrics.SA {
	out := make([]metrics.SA, 0, len(sas))
	for _, sa := range sas {
		m := metrics.SA{VPN: vpn(sa.Unit), Interface: kernel.LinkName(sa.Unit), Direction: sa.Direction,
			SPI: sa.SPI, Bytes: sa.Bytes, Packets: sa.Packets}
		errs := map[string]uint64{}
		if sa.ReplayErrors > 0 {
			errs["replay"] = sa.ReplayErrors
		}
		if sa.ReplayWindowDrops > 0 {
			errs["replay-window"] = sa.ReplayWindowDrops
		}
		if sa.IntegrityFailures > 0 {
			errs["integrity"] = sa.IntegrityFailures
		}
		if len(errs) > 0 {
			m.Errors = errs
		}
		out = append(out, m)
	}
	return out
}
