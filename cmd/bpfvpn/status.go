package main

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/spf13/cobra"

	"github.com/bpfvpn/bpfvpn/control/dataplane"
)

func newStatusCommand() *cobra.Command {
	var instance string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the attached eBPF data plane: interfaces, program ids, maps and counters",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireRoot(); err != nil {
				return err
			}
			inst, err := instanceName(instance)
			if err != nil {
				return err
			}
			st, err := dataplane.ReadStatus(inst)
			if err != nil {
				return withExitCode(exitFailure, err)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			fmt.Fprintf(out, "Instance: %s (%s)\nPolicy generation: %d\n\nAttached:\n", st.Instance, st.Dir, st.Generation)
			fmt.Fprintf(out, "  %-14s %-11s %-7s %s\n", "Interface", "Hook", "Mode", "Program ID")
			for _, a := range st.Attachments {
				fmt.Fprintf(out, "  %-14s %-11s %-7s %d\n", a.Ifname, a.Hook, a.Mode, a.ProgID)
			}
			fmt.Fprintf(out, "\nMaps:\n  %-14s %6s %9s %9s\n", "Name", "ID", "Entries", "Max")
			for _, m := range st.Maps {
				e := fmt.Sprint(m.Entries)
				if m.Entries < 0 {
					e = "array"
				}
				fmt.Fprintf(out, "  %-14s %6d %9s %9d\n", m.Name, m.ID, e, m.Max)
			}
			fmt.Fprintf(out, "\nZones:\n  %-12s %12s %14s %10s %10s %10s\n", "Zone", "Packets in", "Bytes in", "To host", "Dropped", "Out")
			var zn []string
			for z := range st.Zones {
				zn = append(zn, z)
			}
			sort.Strings(zn)
			for _, z := range zn {
				s := st.Zones[z]
				fmt.Fprintf(out, "  %-12s %12d %14d %10d %10d %10d\n", z, s.RxPkts, s.RxBytes, s.HostPkts, s.Drops, s.TxPkts)
			}
			fmt.Fprintf(out, "\nPolicies (generation %d):\n  %-12s %-12s %-24s %-7s %10s\n", st.Generation, "From zone", "To zone", "Policy", "Action", "Hits")
			for _, p := range st.Policies {
				fmt.Fprintf(out, "  %-12s %-12s %-24s %-7s %10d\n", p.From, p.To, p.Name, p.Action, p.Hits)
			}
			fmt.Fprintf(out, "\nCounters:\n")
			var cn []string
			for c := range st.Counters {
				cn = append(cn, c)
			}
			sort.Strings(cn)
			for _, c := range cn {
				if v := st.Counters[c]; v != 0 {
					fmt.Fprintf(out, "  %-28s %d\n", c, v)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&instance, "instance", "", "pin directory name (default: the network namespace's name)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func init() {
	commandRegistrars = append(commandRegistrars, func(root *cobra.Command) {
		root.AddCommand(newStatusCommand())
	})
}
