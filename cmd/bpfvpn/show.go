package main

import "github.com/spf13/cobra"

func init() {
	commandRegistrars = append(commandRegistrars, func(root *cobra.Command) {
		root.AddCommand(pendingCommand("show", "Show operational state (SRX-style show commands)", "the gateway daemon"))
	})
}
