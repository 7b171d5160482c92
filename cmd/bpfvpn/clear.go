package main

import "github.com/spf13/cobra"

func init() {
	commandRegistrars = append(commandRegistrars, func(root *cobra.Command) {
		root.AddCommand(opsCommand("clear", "Clear operational state (SRX-style clear commands)", `Clear operational state:

  clear security ipsec statistics [index N]
  clear security ike security-associations [PEER] [index N]
  clear security flow session all
  clear security flow session [source-prefix P] [destination-prefix P]
      [protocol tcp|udp|icmp|N] [source-port N] [destination-port N]
      [session-identifier ID]

Clearing IKE security associations tears the tunnels down; tunnels with
establish-tunnels immediately are negotiated again at once.

Clearing flow sessions needs all or at least one filter; filters combine
with AND and match the initiator's side (the In: line of show security flow
session). It prints "N active sessions cleared". The next packet of a
cleared flow is checked against the policies again, like a first packet;
a TCP packet that is not a SYN is dropped (counter drop-tcp-no-syn), so
cleared TCP connections must be reopened.

Words may be abbreviated to any unique prefix. The command is sent to the
running daemon over its control socket.`))
	})
}
