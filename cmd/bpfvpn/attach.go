package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/bpfvpn/bpfvpn/control/config"
	"github.com/bpfvpn/bpfvpn/control/dataplane"
	"github.com/bpfvpn/bpfvpn/loader"
)

// Exit codes of attach / detach / status.
const (
	exitFailure   = 1
	exitUsage     = 2
	exitNotRoot   = 4
	exitBadConfig = 5
	exitNoIface   = 6
)

func requireRoot() error {
	if os.Geteuid() != 0 {
		return withExitCode(exitNotRoot, errors.New("must run as root (loading BPF programs and attaching them needs CAP_BPF and CAP_NET_ADMIN)"))
	}
	return nil
}

func instanceName(flag string) (string, error) {
	if flag != "" {
		if err := loader.ValidInstance(flag); err != nil {
			return "", withExitCode(exitUsage, fmt.Errorf("--instance: %w", err))
		}
		return flag, nil
	}
	n, err := loader.DefaultInstance()
	if err != nil {
		return "", withExitCode(exitFailure, fmt.Errorf("name the instance after the network namespace: %w", err))
	}
	return n, nil
}

func newAttachCommand() *cobra.Command {
	var cfgFile, instance string
	var sessions uint32
	cmd := &cobra.Command{
		Use:   "attach IFACE... --config FILE",
		Short: "Attach the eBPF data plane to interfaces and program it from a configuration",
		Long: `attach loads the XDP and tc programs (or reuses the pinned ones), programs the
maps from the security and interfaces parts of the configuration, attaches XDP
to zone interfaces and tc to st0 units, pins everything under
/sys/fs/bpf/bpfvpn/<instance>/ and exits. Running it again with a changed
configuration updates the maps in place without detaching.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cfgFile == "" {
				return withExitCode(exitUsage, errors.New("--config FILE is required"))
			}
			if err := requireRoot(); err != nil {
				return err
			}
			inst, err := instanceName(instance)
			if err != nil {
				return err
			}
			cfg, diags, err := config.Load(cfgFile)
			if err != nil {
				return withExitCode(exitBadConfig, fmt.Errorf("read configuration: %w", err))
			}
			printDiagnostics(cmd.ErrOrStderr(), diags)
			if diags.HasErrors() {
				return withExitCode(exitBadConfig, errors.New("invalid configuration: nothing attached"))
			}
			spec, warns, err := dataplane.FromConfig(cfg)
			for _, w := range warns {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", w)
			}
			if err != nil {
				return withExitCode(exitBadConfig, fmt.Errorf("invalid configuration: %w; nothing attached", err))
			}
			for _, n := range args {
				if _, err := dataplane.NetlinkResolver(n); err != nil {
					return withExitCode(exitNoIface, fmt.Errorf("%w; nothing attached", err))
				}
			}
			res, err := dataplane.Attach(dataplane.AttachOptions{Instance: inst, Interfaces: args, Spec: spec, SessionMax: sessions})
			if err != nil {
				code := exitFailure
				if errors.Is(err, dataplane.ErrNotInSpec) {
					code = exitBadConfig
				}
				return withExitCode(code, err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "instance %s (%s), policy generation %d\n", inst, res.Dir, res.Compiled.Gen)
			for _, a := range res.Attachments {
				fmt.Fprintf(out, "  %-12s %-10s %s\n", a.Ifname, a.Hook, a.Mode)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&cfgFile, "config", "", "configuration file (set or hierarchical form)")
	cmd.Flags().StringVar(&instance, "instance", "", "pin directory name (default: the network namespace's name, \"default\" in the initial one)")
	cmd.Flags().Uint32Var(&sessions, "max-sessions", 0, "size of the session table on first load (default 262144)")
	return cmd
}

func init() {
	commandRegistrars = append(commandRegistrars, func(root *cobra.Command) {
		root.AddCommand(newAttachCommand())
	})
}
