package kernel

import (
	"fmt"
	"strings"
	"testing"
)

const sampleXfrmStat = `XfrmInError             	0
XfrmInBufferError       	1
XfrmInHdrError          	2
XfrmInNoStates          	3
XfrmInStateProtoError   	4
XfrmInStateModeError    	0
XfrmInStateSeqError     	5
XfrmInStateExpired      	0
XfrmInStateMismatch     	0
XfrmInStateInvalid      	0
XfrmInTmplMismatch      	6
XfrmInNoPols            	0
XfrmInPolBlock          	0
XfrmInPolError          	0
XfrmOutError            	0
XfrmOutBundleGenError   	0
XfrmOutBundleCheckError 	0
XfrmOutNoStates         	7
XfrmOutStateProtoError  	0
XfrmOutStateModeError   	0
XfrmOutStateSeqError    	0
XfrmOutStateExpired     	0
XfrmOutPolBlock         	0
XfrmOutPolDead          	0
XfrmOutPolError         	0
XfrmFwdHdrError         	0
XfrmOutStateInvalid     	0
XfrmAcquireError        	8
XfrmFutureCounter       	9
`

func TestParseXfrmStat(t *testing.T) {
	s, err := ParseXfrmStat(strings.NewReader(sampleXfrmStat))
	if err != nil {
		t.Fatal(err)
	}
	if s.InBufferError != 1 || s.InHdrError != 2 || s.InNoStates != 3 || s.InStateProtoError != 4 ||
		s.InStateSeqError != 5 || s.InTmplMismatch != 6 || s.OutNoStates != 7 || s.AcquireError != 8 {
		t.Errorf("parsed %+v", s)
	}
	if s.Other["XfrmFutureCounter"] != 9 {
		t.Errorf("unknown counter not kept: %v", s.Other)
	}
	base := s
	base.InNoStates = 1
	base.Other = map[string]uint64{"XfrmFutureCounter": 4}
	d := s.Sub(base)
	if d.InNoStates != 2 || d.InStateSeqError != 0 || d.Other["XfrmFutureCounter"] != 5 {
		t.Errorf("Sub = %+v", d)
	}
	// A counter below its base (namespace recreated) counts from zero.
	base.InNoStates = 10
	if d := s.Sub(base); d.InNoStates != 3 {
		t.Errorf("Sub below base = %d, want 3", d.InNoStates)
	}
}

func TestParseXfrmStatRejectsGarbage(t *testing.T) {
	for _, in := range []string{"XfrmInError\n", "XfrmInError x\n", "a b c\n", "XfrmInError -1\n"} {
		if _, err := ParseXfrmStat(strings.NewReader(in)); err == nil {
			t.Errorf("%q parsed", in)
		}
	}
}

// TestHostXfrmStat reads the running kernel's counters (the host has
// /proc/net/xfrm_stat even without ESP).
func TestHostXfrmStat(t *testing.T) {
	r := newHostReconciler(t)
	if _, err := r.ReadXfrmStat(); err != nil {
		t.Fatal(err)
	}
}

func FuzzParseXfrmStat(f *testing.F) {
	f.Add(sampleXfrmStat)
	f.Add("")
	f.Add("XfrmInError 18446744073709551615\n\n")
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseXfrmStat(strings.NewReader(in))
		if err != nil {
			return
		}
		_ = fmt.Sprint(s.Sub(s))
	})
}

func FuzzParseAddrMsg(f *testing.F) {
	f.Add([]byte{})
	// ifaddrmsg (AF_INET, /24, index 2) + IFA_LOCAL 10.0.0.1 + IFA_PROTO 246
	f.Add([]byte{2, 24, 0, 0, 2, 0, 0, 0, 8, 0, 2, 0, 10, 0, 0, 1, 5, 0, 11, 0, 246, 0, 0, 0})
	// A truncated attribute (length 2) that makes nl.ParseRouteAttr panic.
	f.Add([]byte{2, 24, 0, 0, 2, 0, 0, 0, 2, 0, 2, 0, 10, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if a, ok := parseAddrMsg(b); ok && a.Prefix.Bits() > a.Prefix.Addr().BitLen() {
			t.Fatalf("prefix %v", a.Prefix)
		}
	})
}

func TestParseAddrMsg(t *testing.T) {
	a, ok := parseAddrMsg([]byte{2, 24, 0, 0, 2, 0, 0, 0, 8, 0, 2, 0, 10, 0, 0, 1, 5, 0, 11, 0, 246, 0, 0, 0})
	if !ok || a.Prefix != pfx("10.0.0.1/24") || a.Proto != 246 || a.LinkIndex != 2 {
		t.Errorf("parsed %+v, %v", a, ok)
	}
	if _, ok := parseAddrMsg([]byte{2, 40, 0, 0, 2, 0, 0, 0, 8, 0, 2, 0, 10, 0, 0, 1}); ok {
		t.Error("a /40 IPv4 address parsed")
	}
}
