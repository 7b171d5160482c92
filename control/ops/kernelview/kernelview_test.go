package kernelview_test

import (
	"strings"
	"testing"

	"github.com/bpfvpn/bpfvpn/control/kernel"
	"github.com/bpfvpn/bpfvpn/control/ops"
	"github.com/bpfvpn/bpfvpn/control/ops/kernelview"
)

func sas() []kernel.SAStats {
	return []kernel.SAStats{
		{Unit: 0, SPI: 0x8f3a21c4, Direction: "inbound", SACounters: kernel.SACounters{Bytes: 7909692, Packets: 94163, ReplayErrors: 1, IntegrityFailures: 2}},
		{Unit: 0, SPI: 0x5b0c77e1, Direction: "outbound", SACounters: kernel.SACounters{Bytes: 14689428, Packets: 94163}},
		{Unit: 1, SPI: 0x11111111, Direction: "inbound", SACounters: kernel.SACounters{Bytes: 100, Packets: 1, ReplayWindowDrops: 4}},
		{Unit: 1, SPI: 0x22222222, Direction: "outbound", SACounters: kernel.SACounters{Bytes: 200, Packets: 2}},
	}
}

func TestStatisticsOfOneUnitMatchesTheReference(t *testing.T) {
	st := kernelview.Statistics(sas(), kernel.XfrmStat{InNoStates: 99}, 0)
	out, err := ops.Render(st, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"  Encrypted bytes:         14689428\n", "  Decrypted bytes:          7909692\n",
		"  Encrypted packets:          94163\n", "  Decrypted packets:          94163\n",
		"  AH authentication failures: 0, Replay errors: 1\n",
		"  ESP authentication failures: 2, ESP decryption failures: 0\n",
		"  Invalid SPI: 0, TS check fail: 0\n",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("lacks %q:\n%s", line, out)
		}
	}
}

func TestStatisticsOfAllUnits(t *testing.T) {
	xs, err := kernel.ParseXfrmStat(strings.NewReader("XfrmInError 1\nXfrmInHdrError 2\nXfrmInNoStates 3\n" +
		"XfrmInStateProtoError 4\nXfrmInStateSeqError 5\nXfrmInTmplMismatch 6\nXfrmInNoPols 7\n" +
		"XfrmOutNoStates 8\nXfrmOutPolBlock 9\nXfrmSomethingNew 10\n"))
	if err != nil {
		t.Fatal(err)
	}
	st := kernelview.Statistics(sas(), xs, kernelview.AllUnits)
	wantESP := ops.ESPStatistics{EncryptedBytes: 14689628, DecryptedBytes: 7909792, EncryptedPackets: 94165, DecryptedPackets: 94164}
	if st.ESP != wantESP {
		t.Errorf("ESP %+v, want %+v", st.ESP, wantESP)
	}
	wantErr := ops.IPsecErrors{ReplayErrors: 5, ESPAuthFailures: 4, BadHeaders: 2, InvalidSPI: 3, TSCheckFail: 13, Discarded: 1 + 8 + 9 + 10}
	if st.Errors != wantErr {
		t.Errorf("errors %+v, want %+v", st.Errors, wantErr)
	}
}

func TestMetricsSAs(t *testing.T) {
	m := kernelview.MetricsSAs(sas(), func(unit int) string { return map[int]string{0: "VPN-to-Host2"}[unit] })
	if len(m) != 4 || m[0].VPN != "VPN-to-Host2" || m[0].Interface != "st0.0" || m[0].Errors["replay"] != 1 ||
		m[0].Errors["integrity"] != 2 || m[1].Errors != nil || m[2].Errors["replay-window"] != 4 || m[3].Interface != "st0.1" {
		t.Fatalf("%+v", m)
	}
}
