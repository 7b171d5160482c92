package topology

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"testing"
	"time"
)

// goroutineDumpPath is where a test daemon writes its goroutines (grouped
// by stack, with counts) on SIGUSR1.
func goroutineDumpPath(pid int) string {
	return fmt.Sprintf("%s/bpfvpn-topology-goroutines-%d.txt", os.TempDir(), pid)
}

// dumpGoroutinesOnSignal runs in a test daemon: a scale test that finds the
// daemon not answering asks it what its goroutines are waiting for.
func dumpGoroutinesOnSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGUSR1)
	for range ch {
		path := goroutineDumpPath(os.Getpid())
		f, err := os.Create(path + ".tmp")
		if err != nil {
			continue
		}
		pprof.Lookup("goroutine").WriteTo(f, 1)
		f.Close()
		os.Rename(path+".tmp", path)
	}
}

// logGoroutines asks the daemon pid for its goroutines and logs the
// largest groups (at most lines lines).
func logGoroutines(t *testing.T, name string, pid, lines int) {
	path := goroutineDumpPath(pid)
	os.Remove(path)
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Logf("%s: no goroutine dump", name)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	defer os.Remove(path)
	var b strings.Builder
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 0; sc.Scan() && n < lines; n++ {
		b.WriteString(sc.Text() + "\n")
	}
	t.Logf("%s goroutines:\n%s", name, b.String())
}

// ProfileEnv makes the scale tests profile both daemons' CPU while the
// tunnels come up and while a commit removes them, and log the profiles.
const ProfileEnv = "BPFVPN_SCALE_PROFILE"

func cpuProfilePath(pid int) string {
	return fmt.Sprintf("%s/bpfvpn-topology-cpu-%d.prof", os.TempDir(), pid)
}

// profileCPUOnSignal runs in a test daemon: SIGUSR2 records a CPU profile
// for cpuProfileTime.
func profileCPUOnSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGUSR2)
	for range ch {
		path := cpuProfilePath(os.Getpid())
		f, err := os.Create(path + ".tmp")
		if err != nil {
			continue
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			continue
		}
		time.Sleep(cpuProfileTime)
		pprof.StopCPUProfile()
		f.Close()
		os.Rename(path+".tmp", path)
	}
}

const cpuProfileTime = 20 * time.Second

// logCPUProfile profiles the daemon pid for cpuProfileTime and logs the
// profile base64-encoded on one line starting with "CPUPROFILE name " (the
// guest cannot build go tool pprof in time; decode it on the host).
func logCPUProfile(t *testing.T, name string, pid int) {
	path := cpuProfilePath(pid)
	os.Remove(path)
	if err := syscall.Kill(pid, syscall.SIGUSR2); err != nil {
		return
	}
	deadline := time.Now().Add(cpuProfileTime + 30*time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Logf("%s: no CPU profile", name)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	defer os.Remove(path)
	data, err := os.ReadFile(path)
	if err != nil {
		return
	}
	t.Logf("CPUPROFILE %s %s", name, base64.StdEncoding.EncodeToString(data))
}

func heapProfilePath(pid int) string {
	return fmt.Sprintf("%s/bpfvpn-topology-heap-%d.prof", os.TempDir(), pid)
}

// heapProfileOnSignal runs in a test daemon: SIGWINCH writes a heap
// profile (in-use memory after a GC).
func heapProfileOnSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGWINCH)
	for range ch {
		path := heapProfilePath(os.Getpid())
		f, err := os.Create(path + ".tmp")
		if err != nil {
			continue
		}
		runtime.GC()
		pprof.Lookup("heap").WriteTo(f, 0)
		f.Close()
		os.Rename(path+".tmp", path)
	}
}

// logHeapProfile logs the daemon pid's heap profile base64-encoded on one
// line starting with "HEAPPROFILE name ".
func logHeapProfile(t *testing.T, name string, pid int) {
	path := heapProfilePath(pid)
	os.Remove(path)
	if err := syscall.Kill(pid, syscall.SIGWINCH); err != nil {
		return
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Logf("%s: no heap profile", name)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	defer os.Remove(path)
	data, err := os.ReadFile(path)
	if err != nil {
		return
	}
	t.Logf("HEAPPROFILE %s %s", name, base64.StdEncoding.EncodeToString(data))
}
