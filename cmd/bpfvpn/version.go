package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func init() {
	commandRegistrars = append(commandRegistrars, func(root *cobra.Command) {
		root.AddCommand(&cobra.Command{
			Use:   "version",
			Short: "Print the bpfvpn version",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				rev := "unknown"
				if info, ok := debug.ReadBuildInfo(); ok {
					for _, s := range info.Settings {
						if s.Key == "vcs.revision" {
							rev = s.Value
						}
					}
				}
				fmt.Fprintf(cmd.OutOrStdout(), "bpfvpn %s (revision %s, %s, %s/%s)\n",
					version, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
				return nil
			},
		})
	})
}
