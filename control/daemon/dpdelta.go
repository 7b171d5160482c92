package daemon

import (
	"context"
	"fmt"

	"github.com/bpfvpn/bpfvpn/control/config"
	"github.com/bpfvpn/bpfvpn/control/dataplane"
)

// dpDelta is the data plane's state for policy-only commits: the pair
// writer that rewrites only the changed zone pairs' tables, and the spec
// computed by the last CheckPolicies (Apply of the same Config reuses it).
type dpDelta struct {
	pw         dataplane.PairWriter
	checkedCfg *config.Config
	checked    *dataplane.Spec
}

// CheckPolicies implements PolicyChecker.
func (c *dataplaneComponent) CheckPolicies(ctx context.Context, cfg *config.Config, changed []config.PolicyRef) error {
	spec, _, err := dataplane.FromConfig(cfg)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.delta.checkedCfg, c.delta.checked = cfg, spec
	c.mu.Unlock()
	return nil
}

// ApplyPolicies implements PolicyApplier: only the zone pairs whose
// policies differ from what the inactive generation holds are written, then
// the generation is switched. Before the first attach it is Apply.
func (c *dataplaneComponent) ApplyPolicies(ctx context.Context, cfg *config.Config, changed []config.PolicyRef) error {
	c.mu.Lock()
	attached := c.set != nil
	spec := c.delta.checked
	if c.delta.checkedCfg != cfg {
		spec = nil
	}
	c.delta.checkedCfg, c.delta.checked = nil, nil
	c.mu.Unlock()
	if !attached {
		return c.Apply(ctx, cfg)
	}
	if spec == nil {
		var err error
		if spec, _, err = dataplane.FromConfig(cfg); err != nil {
			return err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	index, st, err := c.delta.pw.Write(c.set, spec)
	if err != nil {
		return fmt.Errorf("update policy tables: %w", err)
	}
	c.index = index
	c.log.Debug("policy tables updated", "generation", st.Gen, "whole", st.Whole, "pairs-written", st.PairsWritten, "pairs-kept", st.PairsKept)
	return nil
}

var (
	_ PolicyApplier = (*dataplaneComponent)(nil)
	_ PolicyChecker = (*dataplaneComponent)(nil)
)
