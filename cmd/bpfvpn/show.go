package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/bpfvpn/bpfvpn/control/api"
	"github.com/bpfvpn/bpfvpn/control/ops"
	"github.com/spf13/cobra"
)

// Exit codes of the operational commands (show, clear).
const (
	exitFailed     = 1 // the daemon could not carry out the command
	exitSyntax     = 2 // the command words were rejected
	exitNotRunning = 3 // no daemon answers on the socket
	exitPermission = 4 // the caller may not use the socket (not root)
)

func init() {
	commandRegistrars = append(commandRegistrars, func(root *cobra.Command) {
		root.AddCommand(opsCommand("show", "Show operational state (SRX-style show commands)", `Show operational state, with the output layouts of SRX devices:

  show security ike security-associations [PEER] [index N] [detail]
  show security ipsec security-associations [index N] [detail]
  show security ipsec statistics [index N]
  show security policies [hit-count]
  show security flow session [summary]
  show security zones
  show interfaces [st0|st0.N] [terse]
  show route

Words may be abbreviated to any unique prefix (show sec ike sa). Append
"| display json" (quote the "|" for the shell) or pass --json for JSON;
"| match RE", "| except RE", "| count" and "| last N" filter the output.
The command is sent to the running daemon over its control socket.`))
	})
}

// opsCommand builds the show or clear command: its words are checked
// against the grammar locally, then run by the daemon over the socket.
func opsCommand(verb, short, long string) *cobra.Command {
	var asJSON bool
	var socket string
	cmd := &cobra.Command{
		Use:   verb + " WORD...",
		Short: short,
		Long:  long,
		RunE: func(cmd *cobra.Command, args []string) error {
			words := append([]string{verb}, args...)
			return runOps(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), api.SocketPath(socket), words, asJSON)
		},
		ValidArgsFunction: func(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			var out []cobra.Completion
			for _, c := range ops.Complete(append(append([]string{verb}, args...), toComplete)) {
				out = append(out, cobra.CompletionWithDesc(c.Word, c.Help))
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print JSON (same as "| display json")`)
	cmd.Flags().StringVar(&socket, "socket", "", "control socket of the daemon (default $"+api.SocketEnv+" or "+api.DefaultSocketPath+")")
	return cmd
}

// runOps checks words against the grammar, sends them to the daemon at
// socket and prints the answer. Errors carry the exit code.
func runOps(ctx context.Context, stdout, stderr io.Writer, socket string, words []string, asJSON bool) error {
	if _, err := ops.Parse(words); err != nil {
		return syntaxFailure(stderr, err.Error())
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	out, err := api.NewClient(socket).Op(ctx, words, asJSON)
	if err != nil {
		var (
			notRunning *api.NotRunningError
			denied     *api.PermissionError
			remote     *api.Error
		)
		switch {
		case errors.As(err, &notRunning):
			return withExitCode(exitNotRunning, err)
		case errors.As(err, &denied):
			return withExitCode(exitPermission, err)
		case errors.As(err, &remote) && remote.Code == api.CodeSyntax:
			return syntaxFailure(stderr, remote.Message)
		}
		return withExitCode(exitFailed, err)
	}
	if _, err := io.WriteString(stdout, out); err != nil {
		return withExitCode(exitFailed, fmt.Errorf("write output: %w", err))
	}
	return nil
}

// syntaxFailure prints a vendor-style syntax error as is (its caret line
// must stay aligned with the command line it repeats) and exits with
// exitSyntax.
func syntaxFailure(stderr io.Writer, msg string) error {
	fmt.Fprintln(stderr, msg)
	return withExitCode(exitSyntax, errors.New(""))
}
