package kernel

import "testing"

func TestSumStatistics(t *testing.T) {
	sas := []SAStats{
		{Unit: 0, Direction: "outbound", SACounters: SACounters{Bytes: 100, Packets: 2}},
		{Unit: 0, Direction: "inbound", SACounters: SACounters{Bytes: 300, Packets: 3, ReplayErrors: 1, ReplayWindowDrops: 2, IntegrityFailures: 4}},
		{Unit: 1, Direction: "outbound", SACounters: SACounters{Bytes: 1000, Packets: 10}},
		{Unit: 1, Direction: "", SACounters: SACounters{Bytes: 5000, Packets: 50}}, // direction unknown: not counted
	}
	xs := &XfrmStat{InNoStates: 7, InStateProtoError: 5, InTmplMismatch: 1, InNoPols: 1, InHdrError: 2, OutNoStates: 3}
	g := sumStatistics(sas, xs, -1)
	if g.EncryptedBytes != 1100 || g.EncryptedPackets != 12 || g.DecryptedBytes != 300 || g.DecryptedPackets != 3 ||
		g.ReplayErrors != 3 || g.ESPAuthenticationFailures != 4 || g.InvalidSPI != 7 || g.ESPDecryptionFailures != 5 ||
		g.TSCheckFail != 2 || g.BadHeaders != 2 || g.Discarded != 3 {
		t.Errorf("global %+v", g)
	}
	u := sumStatistics(sas, nil, 1)
	if u.EncryptedBytes != 1000 || u.DecryptedBytes != 0 || u.InvalidSPI != 0 {
		t.Errorf("unit 1 %+v", u)
	}
}
