package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/bpfvpn/bpfvpn/control/dataplane"
)

func newDetachCommand() *cobra.Command {
	var instance string
	cmd := &cobra.Command{
		Use:   "detach IFACE...",
		Short: "Detach the eBPF data plane from interfaces",
		Long: `detach removes bpfvpn's XDP and tc hooks from the interfaces; when no interface
of the instance is left attached, its pinned maps and programs are removed.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireRoot(); err != nil {
				return err
			}
			inst, err := instanceName(instance)
			if err != nil {
				return err
			}
			n, err := dataplane.Detach(inst, args)
			fmt.Fprintf(cmd.OutOrStdout(), "instance %s: %d hooks removed\n", inst, n)
			if err != nil {
				return withExitCode(exitFailure, err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&instance, "instance", "", "pin directory name (default: the network namespace's name)")
	return cmd
}

func init() {
	commandRegistrars = append(commandRegistrars, func(root *cobra.Command) {
		root.AddCommand(newDetachCommand())
	})
}
