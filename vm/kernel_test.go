package vm

import (
	"reflect"
	"testing"
)

const aptSearchSample = `linux-image-6.1.0-9-amd64-unsigned - Linux 6.1 for 64-bit PCs
linux-image-6.1.0-47-amd64-dbg - Debug symbols for linux-image-6.1.0-47-amd64
linux-image-6.1.0-47-amd64-unsigned - Linux 6.1 for 64-bit PCs
linux-image-6.1.0-47-cloud-amd64-unsigned - Linux 6.1 for x86-64 cloud
linux-image-6.1.0-56-amd64-unsigned - Linux 6.1 for 64-bit PCs
linux-image-6.1.0-56-rt-amd64-unsigned - Linux 6.1 for 64-bit PCs, PREEMPT_RT
linux-image-6.1.0-56-amd64 - Linux 6.1 for 64-bit PCs (signed)
linux-image-6.12.99+deb12-amd64-unsigned - Linux 6.12 for 64-bit PCs
linux-image-6.12.117+deb12-amd64-unsigned - Linux 6.12 for 64-bit PCs
linux-image-6.12.117+deb12-cloud-amd64-unsigned - Linux 6.12 for x86-64 cloud
linux-image-6.12.100+deb12-amd64-unsigned - Linux 6.12 for 64-bit PCs
linux-image-6.12.30+bpo-amd64-unsigned - Linux 6.12 for 64-bit PCs
linux-image-6.12.30+bpo-cloud-amd64-unsigned - Linux 6.12 for x86-64 cloud
linux-image-6.12-amd64 - Linux for 64-bit PCs (meta-package)
`

func TestParseAptSearchPicksNewestGenericUnsigned(t *testing.T) {
	want := map[string][]string{
		"6.1": {"linux-image-6.1.0-56-amd64-unsigned", "linux-image-6.1.0-47-amd64-unsigned", "linux-image-6.1.0-9-amd64-unsigned"},
		"6.12": {"linux-image-6.12.117+deb12-amd64-unsigned", "linux-image-6.12.100+deb12-amd64-unsigned",
			"linux-image-6.12.99+deb12-amd64-unsigned", "linux-image-6.12.30+bpo-amd64-unsigned"},
	}
	for _, s := range SeriesList {
		got := ParseAptSearch([]byte(aptSearchSample), s.Package)
		if !reflect.DeepEqual(got, want[s.Name]) {
			t.Errorf("%s: got %q, want %q", s.Name, got, want[s.Name])
		}
	}
	if got := ParseAptSearch(nil, SeriesList[0].Package); len(got) != 0 {
		t.Errorf("empty apt output gave %q", got)
	}
}

func TestVersionLess(t *testing.T) {
	for _, c := range []struct {
		a, b string
		less bool
	}{
		{"6.1.0-9", "6.1.0-10", true},
		{"6.1.0-10", "6.1.0-9", false},
		{"6.12.99+deb12", "6.12.100+deb12", true},
		{"6.1.0-56", "6.1.0-56", false},
		{"6.1.0", "6.1.0-1", true},
	} {
		if got := versionLess(c.a, c.b); got != c.less {
			t.Errorf("versionLess(%q, %q) = %v, want %v", c.a, c.b, got, c.less)
		}
	}
}

func TestLookupSeries(t *testing.T) {
	all, err := LookupSeries("all")
	if err != nil || len(all) != 2 || all[0].Name != "6.1" || all[1].Name != "6.12" {
		t.Fatalf("all: %v %v", all, err)
	}
	one, err := LookupSeries("6.12")
	if err != nil || len(one) != 1 || one[0].Name != "6.12" {
		t.Fatalf("6.12: %v %v", one, err)
	}
	if _, err := LookupSeries("5.10"); err == nil {
		t.Fatal("5.10 accepted")
	}
}
