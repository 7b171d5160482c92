package config

// CompileDelta compiles the tree after edit e, given prev, the Config the
// tree compiled to before the edit. When the edit touched only security
// policies, only those are validated and compiled again: every other part of
// prev (zones, address books, applications, interfaces, VPNs, the untouched
// policies) is reused as it is, shared with prev (read-only). A wide edit,
// or a nil prev, compiles the whole tree (Compile). The Config is nil when
// the diagnostics hold an error; prev is never modified.
func (t *Tree) CompileDelta(prev *Config, e *Edit) (*Config, Diagnostics) {
	if prev == nil || e == nil || e.Wide {
		return t.Compile()
	}
	d := &diagSink{files: t.files}
	c := &compiler{d: d, cfg: prev, zones: map[string]*Zone{}, apps: map[string]*Application{}, appSets: map[string]*ApplicationSet{}}
	for _, z := range prev.Zones {
		c.zones[z.Name] = z
	}
	for _, a := range prev.Applications {
		c.apps[a.Name] = a
	}
	for _, s := range prev.ApplicationSets {
		c.appSets[s.Name] = s
	}
	type pairKey struct{ from, to string }
	touched := map[pairKey]*nameSet{}
	for _, r := range e.Policies {
		k := pairKey{r.From, r.To}
		if touched[k] == nil {
			touched[k] = &nameSet{}
		}
		touched[k].add(r.Name)
	}
	old := map[pairKey]*PolicyContext{}
	for _, pc := range prev.Policies.Contexts {
		old[pairKey{pc.From, pc.To}] = pc
	}
	next := *prev
	next.Policies.Contexts = nil
	var pairs []*node
	if sec := t.root.child("security"); sec != nil {
		if pol := sec.child("policies"); pol != nil {
			active(pol, func(fz *node) {
				if fz.kw == "from-zone" {
					pairs = append(pairs, fz)
				}
			})
		}
	}
	for _, fz := range pairs {
		k := pairKey{fz.name, fz.name2()}
		names := touched[k]
		prevCtx := old[k]
		if names == nil && prevCtx != nil {
			next.Policies.Contexts = append(next.Policies.Contexts, prevCtx)
			continue
		}
		if prevCtx == nil {
			// A new zone pair: compile it whole (it holds only what the
			// edit added).
			next.Policies.Contexts = append(next.Policies.Contexts, c.policyContext(fz))
			continue
		}
		ctx, ok := c.policyContextDelta(fz, prevCtx, names)
		if !ok {
			// The untouched policies are not where prev has them: the
			// edit was not what it said. Validate everything.
			return t.Compile()
		}
		next.Policies.Contexts = append(next.Policies.Contexts, ctx)
	}
	d.list.Sort(t.files)
	if d.list.HasErrors() {
		return nil, d.list
	}
	return &next, d.list
}

// policyContextDelta rebuilds a zone pair whose policies named in touched
// changed: those are compiled again, the others are taken from prev, which
// must hold them in the same relative order (ok is false otherwise).
func (c *compiler) policyContextDelta(fz *node, prev *PolicyContext, touched *nameSet) (*PolicyContext, bool) {
	ctx := &PolicyContext{From: prev.From, To: prev.To, Pos: prev.Pos}
	from, to := c.zones[fz.name], c.zones[fz.name2()]
	ctx.Policies = make([]*Policy, 0, len(fz.kids))
	a := &policyAlloc{}
	j := 0
	ok := true
	active(fz, func(pn *node) {
		if pn.kw != "policy" || !ok {
			return
		}
		if touched.has(pn.name) {
			c.warnUnknown(pn)
			if p := c.policy(pn, from, to, a); p != nil {
				ctx.Policies = append(ctx.Policies, p)
			}
			return
		}
		for j < len(prev.Policies) && touched.has(prev.Policies[j].Name) {
			j++
		}
		if j >= len(prev.Policies) || prev.Policies[j].Name != pn.name {
			ok = false
			return
		}
		ctx.Policies = append(ctx.Policies, prev.Policies[j])
		j++
	})
	for j < len(prev.Policies) && touched.has(prev.Policies[j].Name) {
		j++
	}
	// Every untouched policy of prev must still be there.
	return ctx, ok && j == len(prev.Policies)
}

// nameSet is a set of the few names a delta touches: compared as strings
// while small, so that scanning 100,000 policies hashes none of them.
type nameSet struct {
	list []string
	m    map[string]bool
}

func (s *nameSet) add(n string) {
	if s.has(n) {
		return
	}
	s.list = append(s.list, n)
	if len(s.list) > 8 {
		if s.m == nil {
			s.m = map[string]bool{}
			for _, x := range s.list {
				s.m[x] = true
			}
		}
		s.m[n] = true
	}
}

func (s *nameSet) has(n string) bool {
	if s.m != nil {
		return s.m[n]
	}
	for _, x := range s.list {
		if x == n {
			return true
		}
	}
	return false
}
