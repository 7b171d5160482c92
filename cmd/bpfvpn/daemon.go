package main

import "github.com/spf13/cobra"

func init() {
	commandRegistrars = append(commandRegistrars, func(root *cobra.Command) {
		root.AddCommand(pendingCommand("daemon", "Run the gateway daemon in the foreground", "the gateway daemon"))
	})
}
