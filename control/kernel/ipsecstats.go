package kernel

// IPsecStatistics are the counters of `show security ipsec statistics
// [index N]`, in the vendor's terms.
//
// Sources: Encrypted/Decrypted from the byte and packet counters of the
// outbound/inbound SAs; ReplayErrors and AuthenticationFailures from the
// inbound SAs' replay and integrity counters. The other errors exist only
// per network namespace in /proc/net/xfrm_stat, so they are filled in for
// the global view (unit -1) only: DecryptionFailures = XfrmInStateProtoError
// (ESP processing failed, e.g. a bad ICV or padding), BadHeaders =
// XfrmInHdrError, BadTrailers = XfrmInStateModeError, InvalidSPI =
// XfrmInNoStates, TSCheckFail = XfrmInTmplMismatch + XfrmInNoPols +
// XfrmInPolBlock (the packet did not match the SA's selectors or policy),
// ExceedsTunnelMTU is not counted by XFRM (always 0), Discarded =
// XfrmInError + XfrmInBufferError + XfrmOutError + XfrmOutNoStates +
// XfrmOutStateProtoError + XfrmOutPolBlock. AH is not used by bpfvpn (0).
type IPsecStatistics struct {
	EncryptedBytes, DecryptedBytes     uint64
	EncryptedPackets, DecryptedPackets uint64

	AHAuthenticationFailures  uint64
	ReplayErrors              uint64
	ESPAuthenticationFailures uint64
	ESPDecryptionFailures     uint64
	BadHeaders, BadTrailers   uint64
	InvalidSPI, TSCheckFail   uint64
	ExceedsTunnelMTU          uint64
	Discarded                 uint64
}

// Statistics sums the SA counters of unit (every unit when unit is -1) and,
// for the global view, adds the namespace's xfrm_stat errors; all relative
// to the last ClearStatistics.
func (r *Reconciler) Statistics(unit int) (IPsecStatistics, error) {
	sas, err := r.SAStatistics()
	if err != nil {
		return IPsecStatistics{}, err
	}
	var xs *XfrmStat
	if unit < 0 {
		x, err := r.ReadXfrmStat()
		if err != nil {
			return IPsecStatistics{}, err
		}
		xs = &x
	}
	return sumStatistics(sas, xs, unit), nil
}

// sumStatistics is Statistics without the kernel.
func sumStatistics(sas []SAStats, xs *XfrmStat, unit int) IPsecStatistics {
	var s IPsecStatistics
	for _, sa := range sas {
		if unit >= 0 && sa.Unit != unit {
			continue
		}
		switch sa.Direction {
		case "outbound":
			s.EncryptedBytes += sa.Bytes
			s.EncryptedPackets += sa.Packets
		case "inbound":
			s.DecryptedBytes += sa.Bytes
			s.DecryptedPackets += sa.Packets
			s.ReplayErrors += sa.ReplayErrors + sa.ReplayWindowDrops
			s.ESPAuthenticationFailures += sa.IntegrityFailures
		}
	}
	if xs != nil {
		s.ESPDecryptionFailures = xs.InStateProtoError
		s.BadHeaders = xs.InHdrError
		s.BadTrailers = xs.InStateModeError
		s.InvalidSPI = xs.InNoStates
		s.TSCheckFail = xs.InTmplMismatch + xs.InNoPols + xs.InPolBlock
		s.Discarded = xs.InError + xs.InBufferError + xs.OutError + xs.OutNoStates + xs.OutStateProtoError + xs.OutPolBlock
	}
	return s
}
