package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/bpfvpn/bpfvpn/control/api"
	"github.com/bpfvpn/bpfvpn/control/daemon"
	"github.com/bpfvpn/bpfvpn/control/daemon/commitlog"
)

func init() {
	commandRegistrars = append(commandRegistrars, func(root *cobra.Command) {
		root.AddCommand(newCommitCommand(), newRollbackCommand())
	})
}

// commitTimeout bounds one commit request: a commit that brings up new
// tunnels does not wait for them, so this is generous.
const commitTimeout = 2 * time.Minute

func callDaemon(ctx context.Context, socket, verb string, args any) (api.Response, error) {
	var raw json.RawMessage
	if args != nil {
		data, err := json.Marshal(args)
		if err != nil {
			return api.Response{}, err
		}
		raw = data
	}
	return api.NewClient(api.SocketPath(socket)).Do(ctx, api.Request{Verb: verb, Args: raw})
}

// printCommitResult prints the outcome of a commit, check or rollback in the
// vendor's words and returns the exit error.
func printCommitResult(out, errOut io.Writer, resp api.Response, err error, checkOnly bool) error {
	var res daemon.CommitResult
	if len(resp.Result) > 0 {
		if jerr := json.Unmarshal(resp.Result, &res); jerr != nil {
			return fmt.Errorf("decode daemon answer: %w", jerr)
		}
	}
	for _, d := range res.Diagnostics {
		fmt.Fprintln(errOut, d)
	}
	if err != nil {
		var ae *api.Error
		if errors.As(err, &ae) && ae.Code == daemon.CodeInvalid {
			fmt.Fprintln(errOut, "error: configuration check-out failed")
			return withExitCode(1, errors.New(""))
		}
		return err
	}
	for _, c := range res.Changes {
		fmt.Fprintln(out, c)
	}
	switch {
	case checkOnly:
		fmt.Fprintln(out, "configuration check succeeds")
	case res.Unchanged:
		fmt.Fprintln(out, "commit complete (configuration unchanged)")
	default:
		fmt.Fprintln(out, "commit complete")
	}
	return nil
}

func newCommitCommand() *cobra.Command {
	var socket, comment string
	commit := &cobra.Command{
		Use:   "commit FILE",
		Short: "Validate a configuration and apply it to the running daemon, all or nothing",
		Long: `Send FILE to the running daemon, which validates it, checks it against the
running state, applies the difference (untouched tunnels keep running) and
keeps it as rollback 0. If anything fails, the previous configuration stays
active. 'bpfvpn commit check FILE' only validates.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCommit(cmd, socket, args[0], comment, false)
		},
	}
	commit.Flags().StringVar(&socket, "socket", "", "daemon control socket `PATH`")
	commit.Flags().StringVarP(&comment, "comment", "m", "", "commit comment")
	check := &cobra.Command{
		Use:   "check FILE",
		Short: "Validate a configuration against the running daemon without applying it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCommit(cmd, socket, args[0], "", true)
		},
	}
	check.Flags().StringVar(&socket, "socket", "", "daemon control socket `PATH`")
	commit.AddCommand(check)
	return commit
}

func runCommit(cmd *cobra.Command, socket, file, comment string, checkOnly bool) error {
	text, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	verb := daemon.VerbCommit
	if checkOnly {
		verb = daemon.VerbCommitCheck
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), commitTimeout)
	defer cancel()
	resp, err := callDaemon(ctx, socket, verb, daemon.CommitRequest{Name: file, Text: string(text), Comment: comment})
	return printCommitResult(cmd.OutOrStdout(), cmd.ErrOrStderr(), resp, err, checkOnly)
}

func newRollbackCommand() *cobra.Command {
	var socket, comment string
	cmd := &cobra.Command{
		Use:   "rollback [N]",
		Short: "Commit stored configuration N again (without N: list the stored ones)",
		Long: `The daemon keeps the last committed configurations: 0 is the active one,
1 the one before, and so on. 'bpfvpn rollback N' commits number N again
(all or nothing, as 'bpfvpn commit'); 'bpfvpn rollback' lists them.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), commitTimeout)
			defer cancel()
			if len(args) == 0 {
				resp, err := callDaemon(ctx, socket, daemon.VerbCommits, nil)
				if err != nil {
					return err
				}
				var list []commitlog.Entry
				if err := json.Unmarshal(resp.Result, &list); err != nil {
					return fmt.Errorf("decode daemon answer: %w", err)
				}
				for _, e := range list {
					fmt.Fprintf(cmd.OutOrStdout(), "%d   %s by bpfvpn via %s", e.Index, e.Time.Local().Format("2006-01-02 15:04:05 MST"), e.Source)
					if e.Comment != "" {
						fmt.Fprintf(cmd.OutOrStdout(), "  (%s)", e.Comment)
					}
					fmt.Fprintln(cmd.OutOrStdout())
				}
				return nil
			}
			n, err := strconv.Atoi(args[0])
			if err != nil || n < 0 {
				return withExitCode(2, fmt.Errorf("rollback: %q is not a commit number", args[0]))
			}
			resp, err := callDaemon(ctx, socket, daemon.VerbRollback, daemon.RollbackRequest{N: n, Comment: comment})
			return printCommitResult(cmd.OutOrStdout(), cmd.ErrOrStderr(), resp, err, false)
		},
	}
	cmd.Flags().StringVar(&socket, "socket", "", "daemon control socket `PATH`")
	cmd.Flags().StringVarP(&comment, "comment", "m", "", "commit comment")
	return cmd
}
