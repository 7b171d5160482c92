package maps

import (
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"testing"

	"github.com/bpfvpn/bpfvpn/loader"
)

// TestLimitsMatchBPF keeps the Go mirrors of bpf/common.h's limits exact.
func TestLimitsMatchBPF(t *testing.T) {
	src, err := os.ReadFile("../bpf/common.h")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"MAX_ZONES": MaxZones, "MAX_POLICIES": MaxPolicies, "POLICY_WORDS": PolicyWords,
		"SUMMARY_WORDS": SummaryWords, "NUM_GENERATIONS": NumGenerations}
	for name, v := range want {
		m := regexp.MustCompile(`#define ` + name + `\s+(\d+)`).FindSubmatch(src)
		if m == nil {
			t.Errorf("%s not defined in bpf/common.h", name)
			continue
		}
		if c, _ := strconv.Atoi(string(m[1])); c != v {
			t.Errorf("%s: C %d, Go %d", name, c, v)
		}
	}
	if SummaryWords*64 < PolicyWords {
		t.Error("summary words cannot cover every policy word")
	}
}

func TestCounterNamesComplete(t *testing.T) {
	for id := CounterID(0); id < loader.BpfvpnCounterIdCNT_MAX; id++ {
		if CounterNames[id] == "" {
			t.Errorf("counter %d has no name", id)
		}
	}
}

func TestAddrWords(t *testing.T) {
	for _, s := range []string{"10.1.2.3", "2001:db8::1"} {
		a := netip.MustParseAddr(s)
		f := uint8(AFInet6)
		if a.Is4() {
			f = AFInet
		}
		if got := WordsAddr(f, AddrWords(a)); got != a {
			t.Errorf("%s round trip: %s", s, got)
		}
	}
	w := AddrWords(netip.MustParseAddr("10.0.0.1"))
	b := [4]byte{}
	for i := range b {
		b[i] = byte(w[0] >> (8 * i)) // memory order on little-endian hosts
	}
	if b != [4]byte{10, 0, 0, 1} {
		t.Errorf("IPv4 word %#x is not in network byte order in memory", w[0])
	}
	if k := spiKey(0x11223344); byte(k) != 0x11 {
		t.Errorf("SPI key %#x is not network order in memory", k)
	}
}
