package dataplane_test

import (
	"testing"

	tp "github.com/bpfvpn/bpfvpn/control/dataplane/testpkt"
)

// FuzzXDP feeds arbitrary frames to xdp_zone: whatever the bytes, the
// program returns one of its four verdicts (never XDP_ABORTED) and the
// test harness never fails to run it.
func FuzzXDP(f *testing.F) {
	seeds := []tp.Packet{
		tcp("10.1.0.2", "10.2.0.2", 1234, 80, tp.SYN, append([]byte{1, 1, 3, 3, 7}, tp.MSSOption(1460)...)...),
		tcp("10.1.0.2", "10.3.0.5", 1, 443, tp.SYN, 2, 4, 5, 180),
		udp("2001:db8:1::2", "2001:db8:2::77", 5000, 53),
		icmp("10.2.0.2", "10.1.0.2", 3, 1),
		{Src: addr("10.1.0.2"), Dst: addr("10.2.0.2"), Proto: tp.UDP, FragOffset: 3, FragID: 9, L4Raw: []byte{1, 2, 3}},
		{Src: addr("10.2.0.2"), Dst: addr("10.2.0.1"), Proto: tp.ESP, SPI: 7},
	}
	for _, s := range seeds {
		f.Add(s.Bytes())
	}
	fx := newProgFixture(f)
	fx.apply(f, baseSpec())
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) < 14 || len(frame) > 1500 {
			return
		}
		ret, _ := fx.runXDP(t, "trust0", frame)
		switch ret {
		case xdpDrop, xdpPass, xdpTX, xdpRedirect:
		default:
			t.Fatalf("verdict %d for %x", ret, frame)
		}
	})
}
