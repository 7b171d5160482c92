package ike

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

func TestChildSAKeysNeverPrinted(t *testing.T) {
	sa := ChildSA{Name: "vpn1", SPIIn: 1, SPIOut: 2,
		In:  SAKeys{Encryption: Key{0xca, 0xfe, 0xba, 0xbe}, Integrity: Key{0xca, 0xfe}},
		Out: SAKeys{Encryption: Key{0xca, 0xfe, 0xba, 0xbe}}}
	j, err := json.Marshal(sa)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{fmt.Sprintf("%v %+v %#v", sa, sa, sa), string(j)} {
		if strings.Contains(strings.ToLower(out), "cafe") || strings.Contains(out, "yv66") {
			t.Fatalf("key leaked: %s", out)
		}
	}
	sa.Wipe()
	if sa.In.Encryption[0] != 0 || sa.Out.Encryption[3] != 0 {
		t.Fatal("keys not wiped")
	}
}

func TestTrafficSelectorPrefix(t *testing.T) {
	for _, s := range []string{"0.0.0.0/0", "::/0", "10.1.0.0/16", "192.0.2.7/32", "2001:db8::/64"} {
		p := netip.MustParsePrefix(s)
		got, ok := PrefixSelector(p).Prefix()
		if !ok || got != p {
			t.Errorf("%s: got %v %v", s, got, ok)
		}
	}
	ts := TrafficSelector{Start: netip.MustParseAddr("10.0.0.1"), End: netip.MustParseAddr("10.0.0.2")}
	if _, ok := ts.Prefix(); ok {
		t.Error("range 10.0.0.1-2 reported as a prefix")
	}
}
