package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/bpfvpn/bpfvpn/control/lab"
	"github.com/spf13/cobra"
	"github.com/vishvananda/netns"
)

func init() {
	commandRegistrars = append(commandRegistrars, func(root *cobra.Command) {
		root.AddCommand(newLabCommand())
	})
}

// newLabCommand is `bpfvpn lab`: the two-site topology of the reference in
// network namespaces, and the gateway configurations for it.
func newLabCommand() *cobra.Command {
	var prefix string
	l := func() *lab.Lab { return lab.New(prefix) }
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Build the two-site reference lab in network namespaces",
		Long: `The lab is the topology of the route-based VPN guide in five network
namespaces: host1 - srx1 - internet - srx2 - host2, with the guide's addresses.
"lab up" builds it and writes the SRX1 and SRX2 configurations; "lab down"
removes it. Namespaces are named <prefix><node> (bpfvpn-host1, ...).`,
	}
	cmd.PersistentFlags().StringVar(&prefix, "prefix", lab.DefaultPrefix, "namespace name prefix")

	var configDir, ikeVersion string
	var unaddressed bool
	up := &cobra.Command{
		Use:   "up",
		Short: "Build the topology (idempotent) and write srx1.conf and srx2.conf",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if os.Geteuid() != 0 {
				return withExitCode(4, fmt.Errorf("lab up: needs root"))
			}
			x := l()
			x.UnaddressedGateways = unaddressed
			if err := x.Up(); err != nil {
				return err
			}
			if configDir != "" {
				if err := os.MkdirAll(configDir, 0o700); err != nil {
					return fmt.Errorf("lab up: %w", err)
				}
				for _, gw := range []string{lab.SRX1, lab.SRX2} {
					text, err := lab.Config(gw, lab.ConfigOptions{IKEVersion: ikeVersion})
					if err != nil {
						return err
					}
					p := filepath.Join(configDir, gw+".conf")
					// The file holds the pre-shared key.
					if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
						return fmt.Errorf("lab up: %w", err)
					}
					fmt.Fprintf(c.OutOrStdout(), "wrote %s\n", p)
				}
			}
			st, err := x.Status()
			if err != nil {
				return err
			}
			lab.WriteStatus(c.OutOrStdout(), st)
			return nil
		},
	}
	up.Flags().StringVar(&configDir, "config-dir", "/run/bpfvpn/lab", "where to write srx1.conf and srx2.conf (\"\" for nowhere)")
	up.Flags().StringVar(&ikeVersion, "ike-version", "", "write `ike gateway IKE-GW version V` (v1-only or v2-only)")
	up.Flags().BoolVar(&unaddressed, "unaddressed-gateways", false, "leave the gateways' interfaces without addresses (the daemon applies them)")

	down := &cobra.Command{
		Use:   "down",
		Short: "Remove the lab's namespaces (also after a partial up)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if os.Geteuid() != 0 {
				return withExitCode(4, fmt.Errorf("lab down: needs root"))
			}
			return l().Down()
		},
	}

	var asJSON bool
	status := &cobra.Command{
		Use:   "status",
		Short: "Show which nodes exist and their interfaces",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			st, err := l().Status()
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(c.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			lab.WriteStatus(c.OutOrStdout(), st)
			if !lab.Complete(st) {
				return withExitCode(1, fmt.Errorf("lab status: the lab is not (completely) up"))
			}
			return nil
		},
	}
	status.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	var count int
	ping := &cobra.Command{
		Use:   "ping [FROM-NODE [ADDRESS]]",
		Short: "Ping from a node (default: host1 to Host2, 10.100.22.2)",
		Args:  cobra.MaximumNArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			from, dst := lab.Host1, netip.MustParseAddr("10.100.22.2")
			if len(args) > 0 {
				from = args[0]
			}
			if len(args) > 1 {
				a, err := netip.ParseAddr(args[1])
				if err != nil {
					return withExitCode(2, fmt.Errorf("lab ping: %w", err))
				}
				dst = a
			}
			ns, err := netns.GetFromName(l().Namespace(from))
			if err != nil {
				return fmt.Errorf("lab ping: node %s: %w", from, err)
			}
			defer ns.Close()
			st, err := lab.Ping(ns, dst, count, 200*time.Millisecond, 2*time.Second)
			fmt.Fprintf(c.OutOrStdout(), "%s -> %s: %s\n", from, dst, st)
			return err
		},
	}
	ping.Flags().IntVarP(&count, "count", "c", 5, "echo requests to send")

	var cfgVersion string
	config := &cobra.Command{
		Use:   "config srx1|srx2",
		Short: "Print a gateway's configuration (reference §3 with the interface map)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			text, err := lab.Config(args[0], lab.ConfigOptions{IKEVersion: cfgVersion})
			if err != nil {
				return withExitCode(2, err)
			}
			fmt.Fprint(c.OutOrStdout(), text)
			return nil
		},
	}
	config.Flags().StringVar(&cfgVersion, "ike-version", "", "add `ike gateway IKE-GW version V`")

	cmd.AddCommand(up, down, status, ping, config)
	return cmd
}
