package main

import "github.com/spf13/cobra"

func init() {
	commandRegistrars = append(commandRegistrars, func(root *cobra.Command) {
		root.AddCommand(pendingCommand("detach", "Detach the eBPF data plane from interfaces", "the eBPF data plane"))
	})
}
