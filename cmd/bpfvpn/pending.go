package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// pendingCommand returns a command group that is declared in the CLI but whose
// implementation has not landed yet. It fails with exit code 3 and says which
// capability is missing, so scripts never mistake it for success.
func pendingCommand(use, short, capability string) *cobra.Command {
	return &cobra.Command{
		Use:                use,
		Short:              short + " (not available yet)",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withExitCode(3, fmt.Errorf("%s: not available yet: %s", cmd.CommandPath(), capability))
		},
	}
}
