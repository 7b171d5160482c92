package main

import "github.com/spf13/cobra"

func init() {
	commandRegistrars = append(commandRegistrars, func(root *cobra.Command) {
		root.AddCommand(pendingCommand("lab", "Build the two-site reference lab in network namespaces", "the two-site lab"))
	})
}
