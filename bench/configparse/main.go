// Command configparse measures how long bpfvpn takes to parse and validate a
// large generated configuration (100,000 security policies and 200,000
// address-book entries by default) and how much memory it needs, next to a
// baseline that only reads the same file and splits it into words.
//
// Each phase runs in a child process of its own so that its maximum
// resident set size (getrusage ru_maxrss) is not mixed with the others:
//
//	go run ./bench/configparse [-policies N] [-addresses N] [-form set|hierarchical|both] [-runs N]
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/bpfvpn/bpfvpn/bench/internal/machine"
	"github.com/bpfvpn/bpfvpn/control/config"
)

const zones = 10

func main() {
	policies := flag.Int("policies", 100000, "number of security policies")
	addresses := flag.Int("addresses", 200000, "number of address-book entries")
	form := flag.String("form", "both", "configuration form: set, hierarchical or both")
	runs := flag.Int("runs", 3, "runs per phase (the median is reported)")
	phase := flag.String("phase", "", "internal: run one phase on -file and print its duration")
	file := flag.String("file", "", "internal: configuration file of -phase")
	cpuprofile := flag.String("cpuprofile", "", "with -phase: write a CPU profile")
	keep := flag.String("keep", "", "write the generated configurations into this directory and keep them")
	flag.Parse()

	if *phase == "generate" {
		if _, _, err := generate(*file, *form, *policies, *addresses); err != nil {
			fatal(err)
		}
		return
	}
	if *phase != "" {
		if *cpuprofile != "" {
			f, err := os.Create(*cpuprofile)
			if err != nil {
				fatal(err)
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				fatal(err)
			}
			code := runPhase(*phase, *file)
			pprof.StopCPUProfile()
			os.Exit(code)
		}
		os.Exit(runPhase(*phase, *file))
	}
	dir := *keep
	if dir == "" {
		d, err := os.MkdirTemp("", "bpfvpn-configparse-")
		if err != nil {
			fatal(err)
		}
		defer os.RemoveAll(d)
		dir = d
	}

	forms := []string{*form}
	if *form == "both" {
		forms = []string{"set", "hierarchical"}
	}
	fmt.Printf("machine: %s, %d CPUs, %s %s/%s\n", machine.CPUModel(), runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Printf("configuration: %d policies, %d address-book entries\n", *policies, *addresses)
	fmt.Printf("load average at start: %s\n", cmp.Or(machine.LoadAvg(), "unknown"))
	defer func() { fmt.Printf("load average at end: %s\n", cmp.Or(machine.LoadAvg(), "unknown")) }()
	for _, f := range forms {
		// Generated in a child: Linux carries a parent's peak RSS into the
		// ru_maxrss of children it forks, so the parent must stay small.
		path := filepath.Join(dir, "config."+f)
		gen := exec.Command(os.Args[0], "-phase", "generate", "-file", path, "-form", f,
			"-policies", fmt.Sprint(*policies), "-addresses", fmt.Sprint(*addresses))
		gen.Stderr = os.Stderr
		if err := gen.Run(); err != nil {
			fatal(fmt.Errorf("generate: %w", err))
		}
		size, lines := fileSize(path), countLines(path)
		fmt.Printf("\nform %s: %d lines, %.1f MB (median of %d runs; CPU includes process start and GC threads)\n", f, lines, float64(size)/1e6, *runs)
		base := measure("baseline", path, *runs)
		parse := measure("parse+validate", path, *runs)
		fmt.Printf("  %-26s wall %6.0f ms  cpu %6.0f ms  max RSS %5.0f MB\n", "baseline (read + split)", ms(base.d), ms(base.cpu), mb(base.rss))
		fmt.Printf("  %-26s wall %6.0f ms  cpu %6.0f ms  max RSS %5.0f MB\n", "parse + validate", ms(parse.d), ms(parse.cpu), mb(parse.rss))
		fmt.Printf("  ratio parse/baseline: wall %.1fx, cpu %.1fx, RSS %.1fx\n", float64(parse.d)/float64(base.d),
			float64(parse.cpu)/float64(base.cpu), float64(parse.rss)/float64(base.rss))
	}
}

type result struct {
	d   time.Duration // wall time of the phase inside the child
	cpu time.Duration // user+system CPU time of the whole child process
	rss int64         // bytes
}

// measure runs a phase in fresh child processes and returns the median time
// and the largest max RSS.
func measure(phase, path string, runs int) result {
	exe, err := os.Executable()
	if err != nil {
		fatal(err)
	}
	var ds, cpus []time.Duration
	var rss int64
	for i := 0; i < runs; i++ {
		cmd := exec.Command(exe, "-phase", phase, "-file", path)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			fatal(fmt.Errorf("phase %s: %w", phase, err))
		}
		d, err := time.ParseDuration(strings.TrimSpace(string(out)))
		if err != nil {
			fatal(fmt.Errorf("phase %s output %q: %w", phase, out, err))
		}
		ds = append(ds, d)
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru.Maxrss*1024 > rss {
			rss = ru.Maxrss * 1024
		}
		cpus = append(cpus, cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime())
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	sort.Slice(cpus, func(i, j int) bool { return cpus[i] < cpus[j] })
	return result{d: ds[len(ds)/2], cpu: cpus[len(cpus)/2], rss: rss}
}

// runPhase is the child: it times one phase and prints the duration.
func runPhase(phase, path string) int {
	start := time.Now()
	switch phase {
	case "baseline":
		data, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		words := 0
		lines := 0
		for line := range bytes.Lines(data) {
			lines++
			words += len(bytes.Fields(line))
		}
		if words == 0 || lines == 0 {
			fmt.Fprintln(os.Stderr, "empty file")
			return 1
		}
	case "parse+validate":
		cfg, diags, err := config.Load(path)
		if err != nil || cfg == nil {
			fmt.Fprintf(os.Stderr, "load: %v\n%s", err, diags.Errors())
			return 1
		}
		n := 0
		for _, c := range cfg.Policies.Contexts {
			n += len(c.Policies)
		}
		if n == 0 {
			fmt.Fprintln(os.Stderr, "no policies")
			return 1
		}
	default:
		fmt.Fprintln(os.Stderr, "unknown phase", phase)
		return 2
	}
	fmt.Println(time.Since(start))
	return 0
}

// generate writes the configuration: zones z0..z9 on eth0..eth9, a global
// address book of distinct /32 and /24 prefixes with address sets, and
// policies spread over the 90 inter-zone pairs.
func generate(path, form string, policies, addresses int) (int64, int, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	lines := 0
	tree := config.NewTree()
	var b strings.Builder
	emit := func(format string, args ...any) {
		fmt.Fprintf(&b, format, args...)
		b.WriteByte('\n')
		lines++
	}
	for z := 0; z < zones; z++ {
		emit("set interfaces eth%d unit 0 family inet address 192.168.%d.1/24", z, z)
		emit("set security zones security-zone z%d interfaces eth%d.0", z, z)
		emit("set security zones security-zone z%d host-inbound-traffic system-services ping", z)
	}
	emit("set applications application app-8080 protocol tcp destination-port 8080-8090")
	sets := addresses / 100
	for i := 0; i < addresses-sets; i++ {
		emit("set security address-book global address a%d 10.%d.%d.%d/32", i, i>>16, (i>>8)&255, i&255)
	}
	for s := 0; s < sets; s++ {
		for k := 0; k < 3; k++ {
			emit("set security address-book global address-set s%d address a%d", s, (s*7+k*13)%(addresses-sets))
		}
	}
	apps := []string{"any", "junos-http", "junos-https", "app-8080"}
	actions := []string{"permit", "deny", "permit", "reject"}
	for p := 0; p < policies; p++ {
		pair := p % (zones * (zones - 1))
		from := pair / (zones - 1)
		to := pair % (zones - 1)
		if to >= from {
			to++
		}
		prefix := fmt.Sprintf("set security policies from-zone z%d to-zone z%d policy p%d", from, to, p)
		src := fmt.Sprintf("a%d", (p*31)%(addresses-sets))
		if p%5 == 0 {
			src = fmt.Sprintf("s%d", p%sets)
		}
		emit("%s match source-address %s", prefix, src)
		emit("%s match destination-address a%d", prefix, (p*17+5)%(addresses-sets))
		emit("%s match application %s", prefix, apps[p%len(apps)])
		emit("%s then %s", prefix, actions[p%len(actions)])
		if b.Len() > 1<<20 {
			if err := flush(form, tree, w, &b); err != nil {
				return 0, 0, err
			}
		}
	}
	if err := flush(form, tree, w, &b); err != nil {
		return 0, 0, err
	}
	if form == "hierarchical" {
		if err := tree.WriteHierarchical(w); err != nil {
			return 0, 0, err
		}
	}
	if err := w.Flush(); err != nil {
		return 0, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	return st.Size(), lines, f.Close()
}

// flush writes set lines directly, or collects them into the tree for the
// hierarchical form.
func flush(form string, tree *config.Tree, w *bufio.Writer, b *strings.Builder) error {
	defer b.Reset()
	if form == "set" {
		_, err := w.WriteString(b.String())
		return err
	}
	if d := tree.Parse("generated", []byte(b.String())); d.HasErrors() {
		return fmt.Errorf("generated configuration: %s", d.Errors())
	}
	return nil
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		fatal(err)
	}
	return st.Size()
}

func countLines(path string) int {
	data, _ := os.ReadFile(path)
	return bytes.Count(data, []byte("\n"))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func mb(b int64) float64         { return float64(b) / 1e6 }

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "configparse:", err)
	os.Exit(1)
}
