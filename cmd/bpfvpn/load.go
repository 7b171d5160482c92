package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/bpfvpn/bpfvpn/control/daemon"
)

func init() {
	commandRegistrars = append(commandRegistrars, func(root *cobra.Command) {
		root.AddCommand(newLoadCommand())
	})
}

// newLoadCommand is the vendor's configuration-mode `load` followed by
// `commit`: `load set` applies set/delete/… lines to the active
// configuration, `load merge` merges statements into it, `load override`
// replaces it (as `bpfvpn commit FILE`).
func newLoadCommand() *cobra.Command {
	load := &cobra.Command{
		Use:   "load set|merge|override FILE|-",
		Short: "Change the running configuration by set commands or statements, and commit",
		Long: `As 'load set terminal' / 'load merge' / 'load override' followed by 'commit' on
an SRX: the daemon applies FILE (or standard input with '-') to its active
configuration, validates the result, applies it all or nothing and keeps the
whole resulting configuration as rollback 0.

  load set FILE|-       set, delete, deactivate, activate and insert lines
  load merge FILE|-     statements (either form) merged into the configuration
  load override FILE|-  FILE is the whole new configuration (= bpfvpn commit FILE)

A change that touches only security policies is validated and applied
incrementally: only those policies are checked and only their zone pairs'
tables are rewritten in the data plane; established sessions are re-checked
and keep flowing when still permitted. Errors carry FILE:LINE:COL ('-:3:17'
for standard input) and change nothing. --check validates only.`,
	}
	for _, mode := range []string{daemon.LoadSet, daemon.LoadMerge, daemon.LoadOverride} {
		var socket, comment string
		var check bool
		c := &cobra.Command{
			Use:   mode + " FILE|-",
			Short: "load " + mode + " FILE (or - for standard input) and commit",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return runLoad(cmd, socket, mode, args[0], comment, check)
			},
		}
		c.Flags().StringVar(&socket, "socket", "", "daemon control socket `PATH`")
		c.Flags().StringVarP(&comment, "comment", "m", "", "commit comment")
		c.Flags().BoolVar(&check, "check", false, "validate against the running configuration only (commit check)")
		load.AddCommand(c)
	}
	return load
}

func runLoad(cmd *cobra.Command, socket, mode, file, comment string, checkOnly bool) error {
	var text []byte
	var err error
	if file == "-" {
		text, err = io.ReadAll(cmd.InOrStdin())
	} else {
		text, err = os.ReadFile(file)
	}
	if err != nil {
		return fmt.Errorf("load %s: %w", mode, err)
	}
	verb := daemon.VerbCommit
	if checkOnly {
		verb = daemon.VerbCommitCheck
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), commitTimeout)
	defer cancel()
	if mode == daemon.LoadOverride {
		mode = ""
	}
	resp, err := callDaemon(ctx, socket, verb, daemon.CommitRequest{Name: file, Text: string(text), Comment: comment, Load: mode})
	return printCommitResult(cmd.OutOrStdout(), cmd.ErrOrStderr(), resp, err, checkOnly)
}
