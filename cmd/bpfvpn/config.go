package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/bpfvpn/bpfvpn/control/config"
)

func init() {
	commandRegistrars = append(commandRegistrars, func(root *cobra.Command) {
		group := &cobra.Command{
			Use:   "config",
			Short: "Check and display configuration files",
		}
		group.AddCommand(configCheckCommand(), configShowCommand())
		root.AddCommand(group)
	})
}

// errReported is returned after the diagnostics were printed: exit code 1
// without another message.
var errReported = withExitCode(1, errors.New(""))

// loadTree reads the files (or standard input for "-") into one tree.
func loadTree(cmd *cobra.Command, args []string) (*config.Tree, config.Diagnostics, error) {
	tree := config.NewTree()
	var diags config.Diagnostics
	for _, name := range args {
		var data []byte
		var err error
		if name == "-" {
			data, err = io.ReadAll(cmd.InOrStdin())
		} else {
			data, err = os.ReadFile(name)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("load configuration: %w", err)
		}
		diags = append(diags, tree.Parse(name, data)...)
	}
	return tree, diags, nil
}

// loadAndCompile returns the tree, the model (nil on errors) and every
// diagnostic sorted by position.
func loadAndCompile(cmd *cobra.Command, args []string) (*config.Tree, *config.Config, config.Diagnostics, error) {
	tree, diags, err := loadTree(cmd, args)
	if err != nil {
		return nil, nil, nil, err
	}
	cfg, more := tree.Compile()
	diags = append(diags, more...)
	diags.Sort(tree.Files())
	return tree, cfg, diags, nil
}

func printDiagnostics(w io.Writer, diags config.Diagnostics) {
	for _, d := range diags {
		fmt.Fprintln(w, d.String())
	}
}

func configCheckCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "check FILE...",
		Short: "Validate configuration files (set or hierarchical form, merged in order)",
		Long: `Validate configuration files. Every problem is printed on stderr as
FILE:LINE:COL: message. Exit status 0 (with "configuration check succeeds")
when there is no error, 1 otherwise. Warnings do not fail the check.
FILE "-" is standard input.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, _, diags, err := loadAndCompile(cmd, args)
			if err != nil {
				return withExitCode(1, err)
			}
			printDiagnostics(cmd.ErrOrStderr(), diags)
			if diags.HasErrors() {
				return errReported
			}
			fmt.Fprintln(cmd.OutOrStdout(), "configuration check succeeds")
			return nil
		},
	}
}

func configShowCommand() *cobra.Command {
	var display string
	var defaults bool
	cmd := &cobra.Command{
		Use:   "show FILE...",
		Short: "Display configuration files in canonical form",
		Long: `Display configuration files merged in order. --display selects the
canonical hierarchical text (default), set commands that parse back to the
same tree, or the JSON of the typed model. --defaults fills in every default
so that the algorithms bpfvpn will propose are visible. Secrets are shown
only in $9$ form (text) or redacted (json). FILE "-" is standard input.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if display != "" && display != "set" && display != "json" && display != "hierarchical" {
				return withExitCode(2, fmt.Errorf("--display %q: want set, json or hierarchical", display))
			}
			tree, cfg, diags, err := loadAndCompile(cmd, args)
			if err != nil {
				return withExitCode(1, err)
			}
			printDiagnostics(cmd.ErrOrStderr(), diags)
			if diags.HasErrors() {
				return errReported
			}
			if defaults {
				tree.FillDefaults()
			}
			out := cmd.OutOrStdout()
			switch display {
			case "set":
				return tree.WriteSet(out)
			case "json":
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				enc.SetEscapeHTML(false)
				return enc.Encode(cfg)
			default:
				return tree.WriteHierarchical(out)
			}
		},
	}
	cmd.Flags().StringVar(&display, "display", "", "output form: set or json (default hierarchical)")
	cmd.Flags().BoolVar(&defaults, "defaults", false, "fill in every default value")
	return cmd
}
