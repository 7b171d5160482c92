package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/bpfvpn/bpfvpn/control/daemon/labrun"
	"github.com/bpfvpn/bpfvpn/control/lab"
)

func init() {
	commandRegistrars = append(commandRegistrars, func(root *cobra.Command) {
		root.AddCommand(newLabCommand())
	})
}

func newLabCommand() *cobra.Command {
	var opts labrun.Options
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Build the two-site reference lab in network namespaces",
		Long: `The two-site route-based VPN of the reference, on this machine:
Host1 ─ SRX1 ─ Internet ─ SRX2 ─ Host2 as network namespaces (bpfvpn-host1, …),
with a bpfvpn daemon as SRX1 and as SRX2 running the reference configuration.

  bpfvpn lab up       build it, start both gateways, wait for the tunnel,
                      ping Host1 → Host2 and show the verification commands
  bpfvpn lab status   namespaces, daemons and tunnel state
  bpfvpn lab ping     ping Host1 → Host2 across the tunnel
  bpfvpn lab down     stop the gateways and remove everything

Show commands on a gateway: bpfvpn show … --socket /run/bpfvpn/lab/bpfvpn/srx1.sock
The kernel needs ESP and xfrm interfaces (make demo uses a VM when it lacks them).`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&opts.Prefix, "prefix", lab.DefaultPrefix, "namespace name prefix")
	pf.StringVar(&opts.Dir, "dir", "", "state directory (default /run/bpfvpn/lab/<prefix>)")

	var ikeVersion string
	var down, topologyOnly bool
	var timeout time.Duration
	up := &cobra.Command{
		Use:   "up",
		Short: "Build the lab, start both gateways, wait for the tunnel and verify it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch ikeVersion {
			case "v1", "v1-only", "":
				opts.Config.IKEVersion = ""
			case "v2", "v2-only":
				opts.Config.IKEVersion = "v2-only"
			default:
				return withExitCode(2, fmt.Errorf("--ike-version %q: want v1 or v2", ikeVersion))
			}
			if os.Geteuid() != 0 {
				return withExitCode(4, fmt.Errorf("lab up: needs root"))
			}
			opts.TunnelTimeout = timeout
			opts.Out = cmd.OutOrStdout()
			r := labrun.New(opts)
			if topologyOnly {
				return labTopologyOnly(cmd, r, opts)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			err := r.Up(ctx, true)
			if err == nil {
				fmt.Fprintf(cmd.OutOrStdout(), "\nlab is up: gateways' sockets %s and %s\n", r.Socket(lab.SRX1), r.Socket(lab.SRX2))
			}
			if down {
				if derr := r.Down(context.Background()); derr != nil && err == nil {
					err = derr
				}
				if err == nil {
					fmt.Fprintln(cmd.OutOrStdout(), "lab removed")
				}
			}
			return err
		},
	}
	up.Flags().StringVar(&ikeVersion, "ike-version", "v1", "IKE version of the gateways: v1 (the reference) or v2")
	up.Flags().BoolVar(&down, "down", false, "remove the lab again after the verification")
	up.Flags().DurationVar(&timeout, "timeout", 60*time.Second, "how long to wait for the tunnel")
	up.Flags().BoolVar(&topologyOnly, "topology-only", false, "only build the namespaces (gateways addressed) and write the configurations; start no daemon")
	up.Flags().StringVar(&opts.Dir, "config-dir", "", "alias of --dir")
	up.Flags().MarkHidden("config-dir")

	var asJSON bool
	status := &cobra.Command{
		Use:   "status",
		Short: "Show the lab's namespaces, daemons and tunnels",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r := labrun.New(opts)
			st, err := r.Lab().Status()
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			lab.WriteStatus(w, st)
			running := r.Running()
			fmt.Fprintln(w)
			for _, gw := range labrun.Gateways {
				pid, ok := running[gw]
				if !ok {
					fmt.Fprintf(w, "%s: daemon not running\n", gw)
					continue
				}
				ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
				ds, err := r.Status(ctx, gw)
				cancel()
				if err != nil {
					fmt.Fprintf(w, "%s: daemon pid %d: %v\n", gw, pid, err)
					continue
				}
				fmt.Fprintf(w, "%s: daemon pid %d, socket %s\n", gw, pid, r.Socket(gw))
				for _, t := range ds.Tunnels {
					fmt.Fprintf(w, "  %s %s IKEv%d %s\n", t.VPN, t.Interface, t.Version, t.State)
				}
			}
			if !lab.Complete(st) {
				return withExitCode(1, fmt.Errorf("lab is not (completely) up"))
			}
			return nil
		},
	}

	status.Flags().BoolVar(&asJSON, "json", false, "print the topology's state as JSON")

	var count int
	ping := &cobra.Command{
		Use:   "ping [FROM-NODE [ADDRESS]]",
		Short: "Ping across the lab (default: Host1 to Host2 through the tunnel)",
		Args:  cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			from, dst := lab.Host1, labrun.Host2Addr
			if len(args) > 0 {
				from = args[0]
			}
			if len(args) > 1 {
				a, err := netip.ParseAddr(args[1])
				if err != nil {
					return withExitCode(2, fmt.Errorf("lab ping: %w", err))
				}
				dst = a
			}
			opts.Out = cmd.OutOrStdout()
			return labrun.New(opts).PingFrom(cmd.Context(), from, dst, count)
		},
	}
	ping.Flags().IntVarP(&count, "count", "c", 3, "echo requests to send")

	var cfgVersion string
	configCmd := &cobra.Command{
		Use:   "config srx1|srx2",
		Short: "Print a gateway's configuration (reference §3 with the interface map)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			text, err := lab.Config(args[0], lab.ConfigOptions{IKEVersion: cfgVersion})
			if err != nil {
				return withExitCode(2, err)
			}
			fmt.Fprint(c.OutOrStdout(), text)
			return nil
		},
	}
	configCmd.Flags().StringVar(&cfgVersion, "ike-version", "", "add `ike gateway IKE-GW version V`")

	downCmd := &cobra.Command{
		Use:   "down",
		Short: "Stop the gateways and remove the lab",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if os.Geteuid() != 0 {
				return withExitCode(4, fmt.Errorf("lab down: needs root"))
			}
			if err := labrun.New(opts).Down(cmd.Context()); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "lab removed")
			return nil
		},
	}
	cmd.AddCommand(up, status, ping, downCmd, configCmd)
	return cmd
}

// labTopologyOnly builds the namespaces with addressed gateways and writes
// the configurations, without daemons.
func labTopologyOnly(cmd *cobra.Command, r *labrun.Run, opts labrun.Options) error {
	l := r.Lab()
	l.UnaddressedGateways = false
	if err := l.Up(); err != nil {
		return err
	}
	if err := r.WriteConfigs(); err != nil {
		return err
	}
	for _, gw := range labrun.Gateways {
		fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n", r.ConfigPath(gw))
	}
	st, err := l.Status()
	if err != nil {
		return err
	}
	lab.WriteStatus(cmd.OutOrStdout(), st)
	return nil
}
