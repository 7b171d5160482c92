package machine

import (
	"os"
	"strings"
	"testing"
)

// The readers find this process and this machine in /proc.
func TestReadsProc(t *testing.T) {
	if CPUModel() == "" {
		t.Error("CPUModel is empty")
	}
	if KernelRelease() == "" {
		t.Error("KernelRelease is empty")
	}
	if f := strings.Fields(LoadAvg()); len(f) != 3 {
		t.Errorf("LoadAvg %q: want three fields", LoadAvg())
	}
	for i := 0; ProcessCPU(os.Getpid()) == 0; i++ {
		if i == 1e9 {
			t.Fatal("ProcessCPU stays 0 while this process spins")
		}
	}
	rss, hwm := ProcessKB(os.Getpid(), "VmRSS"), ProcessKB(os.Getpid(), "VmHWM")
	if rss <= 0 || hwm < rss {
		t.Errorf("VmRSS %d kB, VmHWM %d kB: want 0 < RSS ≤ HWM", rss, hwm)
	}
}

// A process that does not exist reads as zero.
func TestMissingProcess(t *testing.T) {
	if ProcessCPU(-1) != 0 || ProcessKB(-1, "VmRSS") != 0 {
		t.Error("a missing process reads as non-zero")
	}
}
