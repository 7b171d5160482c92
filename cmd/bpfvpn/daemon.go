package main

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/bpfvpn/bpfvpn/control/daemon"
	"github.com/bpfvpn/bpfvpn/control/daemon/commitlog"
)

func init() {
	commandRegistrars = append(commandRegistrars, func(root *cobra.Command) {
		root.AddCommand(newDaemonCommand())
	})
}

func newLogger(w io.Writer, format string) (*slog.Logger, error) {
	switch format {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, nil)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

func newDaemonCommand() *cobra.Command {
	var opts daemon.Options
	var logFormat string
	cmd := &cobra.Command{
		Use:   "daemon --config FILE",
		Short: "Run the gateway daemon in the foreground",
		Long: `Run the bpfvpn gateway in the foreground: apply the configuration (st0 tunnel
interfaces, addresses, routes, data plane, one IKE session per VPN) and keep
it applied. Logs go to stderr. With $NOTIFY_SOCKET set (systemd Type=notify)
the daemon reports READY=1 once it serves its control socket.

Signals: SIGHUP re-reads and commits the configuration file (as 'bpfvpn
commit' does: all or nothing); SIGTERM and SIGINT stop the daemon and leave
tunnels, SAs and the pinned data plane in place, so established traffic keeps
flowing and the next daemon adopts them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.ConfigPath == "" {
				return withExitCode(2, fmt.Errorf("daemon: --config FILE is required"))
			}
			log, err := newLogger(cmd.ErrOrStderr(), logFormat)
			if err != nil {
				return withExitCode(2, err)
			}
			opts.Logger = log
			d, err := daemon.New(opts)
			if err != nil {
				return err
			}
			return d.RunUntilSignal(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.ConfigPath, "config", "", "configuration `FILE` (set or hierarchical form)")
	f.StringVar(&opts.SocketPath, "socket", "", "control socket `PATH` (default $BPFVPN_SOCKET or /run/bpfvpn/bpfvpn.sock)")
	f.StringVar(&opts.MetricsAddr, "metrics-addr", "", "serve Prometheus metrics on `ADDR` (host:port)")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	var dataplane bool
	f.BoolVar(&dataplane, "dataplane", true, "attach the eBPF data plane (zones, policies, MSS, SPI filter) to the zone interfaces")
	cmd.PreRun = func(*cobra.Command, []string) { opts.NoDataplane = !dataplane }
	f.StringVar(&opts.Instance, "instance", "", "data plane pin directory under /sys/fs/bpf/bpfvpn (default: the network namespace's name)")
	f.StringVar(&opts.CommitDir, "commit-dir", commitlog.DefaultDir, "where the last committed configurations are kept")
	f.IntVar(&opts.CommitKeep, "commit-keep", commitlog.DefaultKeep, "how many committed configurations to keep")
	return cmd
}
