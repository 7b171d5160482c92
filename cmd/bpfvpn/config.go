package main

import "github.com/spf13/cobra"

func init() {
	commandRegistrars = append(commandRegistrars, func(root *cobra.Command) {
		root.AddCommand(pendingCommand("config", "Check and display configuration files", "the configuration language"))
	})
}
