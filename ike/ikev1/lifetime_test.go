package ikev1

import (
	"testing"
	"time"

	"github.com/bpfvpn/bpfvpn/ike/ikev1/isakmp"
)

func TestSALife(t *testing.T) {
	secs := func(nums lifeAttrs, n uint32) []isakmp.Attribute {
		return []isakmp.Attribute{isakmp.BasicAttr(nums.typ, isakmp.LifeSeconds), isakmp.UintAttr(nums.duration, n)}
	}
	kb := func(nums lifeAttrs, n uint32) []isakmp.Attribute {
		return []isakmp.Attribute{isakmp.BasicAttr(nums.typ, isakmp.LifeKilobytes), isakmp.UintAttr(nums.duration, n)}
	}
	cat := func(as ...[]isakmp.Attribute) (out []isakmp.Attribute) {
		for _, a := range as {
			out = append(out, a...)
		}
		return out
	}
	for _, c := range []struct {
		name   string
		nums   lifeAttrs
		attrs  []isakmp.Attribute
		secs   time.Duration
		kb     uint64
		others int // attributes not taken
	}{
		{"phase 1 seconds", phase1Life, secs(phase1Life, 28800), 28800 * time.Second, 0, 0},
		{"phase 2 seconds and kilobytes", phase2Life, cat(secs(phase2Life, 3600), kb(phase2Life, 5000)), time.Hour, 5000, 0},
		{"kilobytes first", phase2Life, cat(kb(phase2Life, 7), secs(phase2Life, 60)), time.Minute, 7, 0},
		{"duration without type", phase2Life, []isakmp.Attribute{isakmp.UintAttr(isakmp.AttrSALifeDuration, 60)}, 0, 0, 0},
		{"unknown type", phase1Life, []isakmp.Attribute{isakmp.BasicAttr(isakmp.AttrLifeType, 9), isakmp.UintAttr(isakmp.AttrLifeDuration, 60)}, 0, 0, 0},
		{"other numbering left alone", phase1Life, secs(phase2Life, 60), 0, 0, 2},
		{"huge duration clamped", phase2Life, []isakmp.Attribute{isakmp.BasicAttr(isakmp.AttrSALifeType, isakmp.LifeSeconds),
			{Type: isakmp.AttrSALifeDuration, Data: []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}}, (1 << 31) * time.Second, 0, 0},
	} {
		var l saLife
		others := 0
		for _, a := range c.attrs {
			v, err := a.Uint()
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if !l.take(c.nums, a, v) {
				others++
			}
		}
		if l.secs != c.secs || l.kb != c.kb || others != c.others {
			t.Errorf("%s: secs %v kb %d others %d, want %v %d %d", c.name, l.secs, l.kb, others, c.secs, c.kb, c.others)
		}
	}
	// Both decoders use it: a phase-1 transform and an ESP transform.
	a, err := parsePhase1Transform(phase1SA([]Phase1Proposal{{Encryption: aesCBC(128), Hash: HashSHA1, Group: 14, Lifetime: 600 * time.Second}}).Proposals[0].Transforms[0])
	if err != nil || a.lifetime != 600*time.Second {
		t.Fatalf("phase-1 transform lifetime %v %v", a.lifetime, err)
	}
	e, err := parseESPTransform(espSA([]Phase2Proposal{{Encryption: aesGCM(128), Lifetime: 900 * time.Second, LifeKilobytes: 42}}, 0x1234, isakmp.EncapTunnel, 0).Proposals[0].Transforms[0])
	if err != nil || e.lifeSecs != 900*time.Second || e.lifeKB != 42 {
		t.Fatalf("ESP transform lifetimes %v %d %v", e.lifeSecs, e.lifeKB, err)
	}
}
