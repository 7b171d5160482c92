// Command vmboot measures how long the VM runner takes from starting qemu
// to starting a command in the guest (and to qemu's exit), for each Debian
// kernel, against running the same command directly on the host. It prints
// Markdown rows for bench/RESULTS.md.
//
//	go run ./bench/vmboot -n 5 -kernel all
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/bpfvpn/bpfvpn/bench/internal/machine"
	"github.com/bpfvpn/bpfvpn/vm"
)

func main() {
	n := flag.Int("n", 5, "boots per kernel")
	kernel := flag.String("kernel", "all", "6.1, 6.12 or all")
	flag.Parse()
	if err := run(*n, *kernel); err != nil {
		fmt.Fprintln(os.Stderr, "vmboot:", err)
		os.Exit(1)
	}
}

type stats struct{ min, median, max time.Duration }

func summarize(d []time.Duration) stats {
	s := slices.Clone(d)
	slices.Sort(s)
	return stats{s[0], s[len(s)/2], s[len(s)-1]}
}

func (s stats) String() string {
	if s.max < time.Second {
		ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
		return fmt.Sprintf("%.2f ms (min %.2f, max %.2f)", ms(s.median), ms(s.min), ms(s.max))
	}
	return fmt.Sprintf("%.2f s (min %.2f, max %.2f)", s.median.Seconds(), s.min.Seconds(), s.max.Seconds())
}

func run(n int, kernel string) error {
	series, err := vm.LookupSeries(kernel)
	if err != nil {
		return err
	}
	ctx := context.Background()
	dir, err := os.Getwd()
	if err != nil {
		return err
	}
	argv := []string{"true"}

	// The same command on the host, from process start to exit.
	var host []time.Duration
	for i := 0; i < n; i++ {
		start := time.Now()
		if err := exec.Command(argv[0], argv[1:]...).Run(); err != nil {
			return fmt.Errorf("host %s: %w", argv[0], err)
		}
		host = append(host, time.Since(start))
	}
	hostStats := summarize(host)

	fmt.Printf("machine: %s\n\n", describeMachine())
	fmt.Println("| date (UTC) | kernel | boot → command, median of", n, "| boot → exit (qemu gone), median | host `true` median | VM/host (exit) | load avg before |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for _, s := range series {
		k, err := vm.FetchKernel(ctx, s, os.Stderr)
		if err != nil {
			return err
		}
		load := cmp.Or(machine.LoadAvg(), "?")
		var boot, total []time.Duration
		for i := 0; i < n; i++ {
			res, err := vm.Run(ctx, vm.Config{
				Kernel:    k,
				RunScript: vm.CommandScript(dir, vm.GuestEnviron(), argv),
				Binds:     vm.BindsFor(dir),
				Timeout:   5 * time.Minute,
			})
			if err != nil {
				return fmt.Errorf("boot %s: %w", s.Name, err)
			}
			if res.ExitCode != 0 {
				return fmt.Errorf("boot %s: %s exited %d", s.Name, argv[0], res.ExitCode)
			}
			boot = append(boot, res.BootToCommand)
			total = append(total, res.Total)
			fmt.Fprintf(os.Stderr, "vmboot: %s run %d: command after %.2fs, exit after %.2fs\n",
				s.Name, i+1, res.BootToCommand.Seconds(), res.Total.Seconds())
		}
		bs, ts := summarize(boot), summarize(total)
		fmt.Printf("| %s | %s (%s) | %s | %s | %s | %.0f× | %s |\n",
			time.Now().UTC().Format("2006-01-02 15:04"), s.Name, k.Release, bs, ts, hostStats,
			float64(ts.median)/float64(hostStats.median), load)
	}
	return nil
}

func describeMachine() string {
	qemu, _ := exec.Command("qemu-system-x86_64", "--version").Output()
	qv, _, _ := strings.Cut(string(qemu), "\n")
	return fmt.Sprintf("nproc %d, %s, host kernel %s, %s, accel %s",
		runtime.NumCPU(), machine.CPUModel(), machine.KernelRelease(), strings.TrimSpace(qv), vm.DefaultAccel)
}
