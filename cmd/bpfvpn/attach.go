package main

import "github.com/spf13/cobra"

func init() {
	commandRegistrars = append(commandRegistrars, func(root *cobra.Command) {
		root.AddCommand(pendingCommand("attach", "Attach the eBPF data plane to interfaces", "the eBPF data plane"))
	})
}
