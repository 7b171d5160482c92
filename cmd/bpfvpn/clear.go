package main

import "github.com/spf13/cobra"

func init() {
	commandRegistrars = append(commandRegistrars, func(root *cobra.Command) {
		root.AddCommand(opsCommand("clear", "Clear operational state (SRX-style clear commands)", `Clear operational state:

  clear security ipsec statistics [index N]
  clear security ike security-associations [PEER] [index N]

Clearing IKE security associations tears the tunnels down; tunnels with
establish-tunnels immediately are negotiated again at once. Words may be
abbreviated to any unique prefix. The command is sent to the running daemon
over its control socket.`))
	})
}
