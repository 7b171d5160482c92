package main

import "github.com/spf13/cobra"

func init() {
	commandRegistrars = append(commandRegistrars, func(root *cobra.Command) {
		root.AddCommand(pendingCommand("clear", "Clear operational state (SRX-style clear commands)", "the gateway daemon"))
	})
}
