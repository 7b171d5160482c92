package labrun

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/bpfvpn/bpfvpn/control/daemon"
)

// RunDaemon runs `daemon` with the flags Up passes (--config, --socket,
// --commit-dir, --dataplane) and returns the process exit code. A test binary
// calls it from TestMain when Options.Env marks it as a gateway, so lab tests
// need no built bpfvpn binary.
func RunDaemon(args []string) int {
	if len(args) == 0 || args[0] != "daemon" {
		fmt.Fprintln(os.Stderr, "test daemon: want daemon …")
		return 2
	}
	fs := flag.NewFlagSet("daemon", flag.ContinueOnError)
	var opts daemon.Options
	fs.StringVar(&opts.ConfigPath, "config", "", "")
	fs.StringVar(&opts.SocketPath, "socket", "", "")
	fs.StringVar(&opts.CommitDir, "commit-dir", "", "")
	dataplane := fs.Bool("dataplane", true, "")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	opts.NoDataplane = !*dataplane
	opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	d, err := daemon.New(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := d.RunUntilSignal(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
