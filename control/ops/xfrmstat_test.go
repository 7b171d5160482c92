package ops_test

import (
	"os"
	"strings"
	"testing"

	"github.com/bpfvpn/bpfvpn/control/ops"
)

const sampleXFRMStat = `XfrmInError             	1
XfrmInBufferError       	0
XfrmInHdrError          	2
XfrmInNoStates          	3
XfrmInStateProtoError   	4
XfrmInStateModeError    	0
XfrmInStateSeqError     	5
XfrmInStateExpired      	0
XfrmInStateMismatch     	0
XfrmInStateInvalid      	0
XfrmInTmplMismatch      	6
XfrmInNoPols            	7
XfrmInPolBlock          	0
XfrmInPolError          	0
XfrmOutError            	0
XfrmOutBundleGenError   	0
XfrmOutBundleCheckError 	0
XfrmOutNoStates         	8
XfrmOutStateProtoError  	0
XfrmOutStateModeError   	0
XfrmOutStateSeqError    	0
XfrmOutStateExpired     	0
XfrmOutPolBlock         	9
XfrmOutPolDead          	0
XfrmOutPolError         	0
XfrmFwdHdrError         	0
XfrmOutStateInvalid     	0
XfrmAcquireError        	0
`

func TestXFRMStatErrors(t *testing.T) {
	st, err := ops.ParseXFRMStat(strings.NewReader(sampleXFRMStat))
	if err != nil {
		t.Fatal(err)
	}
	got := st.Errors()
	want := ops.IPsecErrors{ReplayErrors: 5, ESPAuthFailures: 4, BadHeaders: 2, InvalidSPI: 3, TSCheckFail: 13, Discarded: 1 + 8 + 9}
	if got != want {
		t.Fatalf("errors %+v, want %+v", got, want)
	}
}

func TestXFRMStatMalformed(t *testing.T) {
	for _, in := range []string{"XfrmInError\n", "XfrmInError x\n", "a 1 2\n", "XfrmInError -1\n"} {
		if _, err := ops.ParseXFRMStat(strings.NewReader(in)); err == nil {
			t.Errorf("%q parsed", in)
		}
	}
}

func TestXFRMStatOfThisHost(t *testing.T) {
	f, err := os.Open("/proc/net/xfrm_stat")
	if err != nil {
		t.Skipf("no /proc/net/xfrm_stat here: %v", err)
	}
	defer f.Close()
	st, err := ops.ParseXFRMStat(f)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st["XfrmInNoStates"]; !ok {
		t.Errorf("XfrmInNoStates missing from %v", st)
	}
}

func FuzzParseXFRMStat(f *testing.F) {
	f.Add(sampleXFRMStat)
	f.Add("XfrmInError 18446744073709551615\n\n")
	f.Add("XfrmInError 18446744073709551616")
	f.Fuzz(func(t *testing.T, in string) {
		st, err := ops.ParseXFRMStat(strings.NewReader(in))
		if err == nil {
			_ = st.Errors()
		}
	})
}
