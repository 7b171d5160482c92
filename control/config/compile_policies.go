package config

import (
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

var protocolNumbers = map[string]uint8{
	"icmp": protoICMP, "igmp": protoIGMP, "tcp": protoTCP, "udp": protoUDP, "gre": protoGRE,
	"esp": protoESP, "ah": protoAH, "icmp6": protoICMPv6, "ospf": protoOSPF, "pim": protoPIM,
	"vrrp": protoVRRP, "rsvp": protoRSVP, "sctp": 132,
}

var portNames = map[string]uint16{
	"ftp": 21, "ssh": 22, "telnet": 23, "smtp": 25, "domain": 53, "tftp": 69, "http": 80,
	"pop3": 110, "ntp": 123, "imap": 143, "snmp": 161, "bgp": 179, "ldap": 389, "https": 443,
	"syslog": 514,
}

var icmpTypeNames = map[string]int{
	"echo-reply": 0, "unreachable": 3, "redirect": 5, "echo-request": 8, "time-exceeded": 11,
}

func (c *compiler) applications(n *node) {
	active(n, func(k *node) {
		switch k.kw {
		case "application":
			c.application(k)
		case "application-set":
			set := &ApplicationSet{Name: k.name, Pos: c.p(k)}
			if c.checkAppName(k) {
				c.appSets[k.name] = set
				c.cfg.ApplicationSets = append(c.cfg.ApplicationSets, set)
			}
		}
	})
	// Expand sets after every application and set name is known.
	state := map[string]uint8{}
	nodes := map[string]*node{}
	active(n, func(k *node) {
		if k.kw == "application-set" {
			nodes[k.name] = k
		}
	})
	var expand func(k *node) []AppTerm
	expand = func(k *node) []AppTerm {
		set := c.appSets[k.name]
		if set == nil {
			return nil
		}
		switch state[k.name] {
		case 1:
			c.d.errorf(k.p, "application-set %s contains itself", k.name)
			return nil
		case 2:
			return set.Terms
		}
		state[k.name] = 1
		active(k, func(m *node) {
			switch m.kw {
			case "application":
				set.Applications = append(set.Applications, m.name)
				terms, _, ok := c.appTerms(m.name, false)
				if !ok {
					c.d.errorf(m.p, "application-set %s: undefined application %s", k.name, m.name)
					return
				}
				set.Terms = append(set.Terms, terms...)
			case "application-set":
				set.Sets = append(set.Sets, m.name)
				sub, ok := nodes[m.name]
				if !ok {
					c.d.errorf(m.p, "application-set %s: undefined application-set %s", k.name, m.name)
					return
				}
				set.Terms = append(set.Terms, expand(sub)...)
			}
		})
		state[k.name] = 2
		return set.Terms
	}
	for _, set := range c.cfg.ApplicationSets {
		expand(nodes[set.Name])
	}
}

func (c *compiler) checkAppName(k *node) bool {
	if strings.HasPrefix(k.name, "junos-") || k.name == "any" {
		c.d.errorf(k.p, "%s %s: the name is reserved for predefined applications", k.kw, k.name)
		return false
	}
	if c.apps[k.name] != nil || c.appSets[k.name] != nil {
		c.d.errorf(k.p, "%s %s: the name is already used", k.kw, k.name)
		return false
	}
	return true
}

func (c *compiler) application(k *node) {
	if !c.checkAppName(k) {
		return
	}
	app := &Application{Name: k.name, Pos: c.p(k)}
	t := AppTerm{ICMPType: -1, ICMPCode: -1}
	hasProto := false
	var portNode *node
	active(k, func(x *node) {
		switch x.kw {
		case "description":
			app.Description = x.val()
		case "protocol":
			v := x.val()
			if p, ok := protocolNumbers[v]; ok {
				t.Protocol = p
			} else if n, err := strconv.Atoi(v); err == nil && n >= 0 && n <= 255 {
				t.Protocol = uint8(n)
			} else {
				c.d.errorf(valPos(x), "application %s: unknown protocol %q", k.name, truncate(v))
				return
			}
			hasProto = true
		case "destination-port", "source-port":
			r, ok := c.portRange(x)
			if !ok {
				return
			}
			portNode = x
			if x.kw == "destination-port" {
				t.DstPorts = r
			} else {
				t.SrcPorts = r
			}
		case "icmp-type", "icmp6-type":
			t.ICMPType = c.icmpValue(x)
		case "icmp-code", "icmp6-code":
			t.ICMPCode = c.icmpValue(x)
		case "inactivity-timeout":
			app.InactivityTimeout, _ = c.num(x, 4, 86400)
		}
	})
	if !hasProto {
		c.d.errorf(k.p, "application %s: protocol is required", k.name)
	}
	if portNode != nil && t.Protocol != protoTCP && t.Protocol != protoUDP && t.Protocol != 132 {
		c.d.errorf(portNode.p, "application %s: ports need protocol tcp, udp or sctp", k.name)
	}
	app.Terms = []AppTerm{t}
	c.apps[k.name] = app
	c.cfg.Applications = append(c.cfg.Applications, app)
}

func (c *compiler) icmpValue(x *node) int {
	v := x.val()
	if n, ok := icmpTypeNames[v]; ok {
		return n
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 255 {
		c.d.errorf(valPos(x), "%s: invalid value %q (0..255)", x.kw, truncate(v))
		return -1
	}
	return n
}

func (c *compiler) portRange(x *node) (PortRange, bool) {
	v := x.val()
	lo, hi, isRange := strings.Cut(v, "-")
	port := func(s string) (uint16, bool) {
		if p, ok := portNames[s]; ok {
			return p, true
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 65535 {
			return 0, false
		}
		return uint16(n), true
	}
	a, ok1 := port(lo)
	b := a
	ok2 := true
	if isRange {
		b, ok2 = port(hi)
	}
	if !ok1 || !ok2 || b < a {
		c.d.errorf(valPos(x), "%s: invalid port or range %q (PORT or LOW-HIGH, 0..65535)", x.kw, truncate(v))
		return PortRange{}, false
	}
	return PortRange{a, b}, true
}

// appTerms resolves an application or application-set name. any reports
// `any`.
func (c *compiler) appTerms(name string, allowAny bool) (terms []AppTerm, any bool, ok bool) {
	if name == "any" {
		return nil, true, allowAny
	}
	if t, ok := predefinedApplications[name]; ok {
		return t, false, true
	}
	if a := c.apps[name]; a != nil {
		return a.Terms, false, true
	}
	if s := c.appSets[name]; s != nil {
		return s.Terms, false, true
	}
	return nil, false, false
}

func (c *compiler) policies(n *node) {
	if dp := n.child("default-policy"); dp != nil {
		active(dp, func(x *node) {
			if x.kw == "permit-all" {
				c.cfg.Policies.Default = ActionPermit
			} else {
				c.cfg.Policies.Default = ActionDeny
			}
		})
	}
	var ctxs []*node
	total := 0
	active(n, func(fz *node) {
		if fz.kw == "from-zone" {
			ctxs = append(ctxs, fz)
			total += len(fz.kids)
		}
	})
	// Zone pairs are independent once zones, books and applications are
	// compiled, so large configurations compile them on every CPU; the
	// diagnostics are merged back in configuration order.
	results := make([]policyContextResult, len(ctxs))
	workers := runtime.GOMAXPROCS(0)
	if workers > 8 {
		workers = 8
	}
	if total < 4096 || workers < 2 || len(ctxs) < 2 {
		workers = 1
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wc := *c
			wc.d = &diagSink{files: c.d.files}
			for {
				i := int(next.Add(1) - 1)
				if i >= len(ctxs) {
					return
				}
				start := len(wc.d.list)
				results[i].ctx = wc.policyContext(ctxs[i])
				results[i].diags = wc.d.list[start:len(wc.d.list):len(wc.d.list)]
			}
		}()
	}
	wg.Wait()
	for _, r := range results {
		c.cfg.Policies.Contexts = append(c.cfg.Policies.Contexts, r.ctx)
		c.d.list = append(c.d.list, r.diags...)
	}
}

type policyContextResult struct {
	ctx   *PolicyContext
	diags Diagnostics
}

// policyContext compiles one from-zone/to-zone pair. It only reads the
// compiler's maps, so several run at once on copies of the compiler.
func (c *compiler) policyContext(fz *node) *PolicyContext {
	ctx := &PolicyContext{From: fz.name, To: fz.name2(), Pos: c.p(fz)}
	from, to := c.zones[fz.name], c.zones[fz.name2()]
	if from == nil {
		c.d.errorf(fz.p, "policies: undefined zone %s (from-zone)", fz.name)
	}
	if to == nil {
		c.d.errorf(fz.p, "policies: undefined zone %s (to-zone)", fz.name2())
	}
	ctx.Policies = make([]*Policy, 0, len(fz.kids))
	// One allocation for all policies of the pair and one for their names.
	a := &policyAlloc{policies: make([]Policy, 0, len(fz.kids)), names: make([]string, 0, 3*len(fz.kids))}
	active(fz, func(pn *node) {
		if pn.kw != "policy" {
			return
		}
		if p := c.policy(pn, from, to, a); p != nil {
			ctx.Policies = append(ctx.Policies, p)
		}
	})
	return ctx
}

// policyAlloc hands out policies and name slices from shared backing arrays.
type policyAlloc struct {
	policies []Policy
	names    []string
}

func (a *policyAlloc) policy() *Policy {
	if len(a.policies) == cap(a.policies) {
		return &Policy{}
	}
	a.policies = a.policies[:len(a.policies)+1]
	return &a.policies[len(a.policies)-1]
}

// strings returns an empty slice of capacity n from the backing array.
func (a *policyAlloc) strings(n int) []string {
	if cap(a.names)-len(a.names) < n {
		return make([]string, 0, n)
	}
	s := a.names[len(a.names) : len(a.names) : len(a.names)+n]
	a.names = a.names[:len(a.names)+n]
	return s
}

func (c *compiler) policy(pn *node, from, to *Zone, a *policyAlloc) *Policy {
	p := a.policy()
	p.Name, p.Pos = pn.name, c.p(pn)
	m := pn.child("match")
	if m == nil {
		c.d.errorf(pn.p, "policy %s: match is required", pn.name)
		return nil
	}
	var src, dst, app *node
	active(m, func(x *node) {
		switch x.kw {
		case "source-address":
			src = x
		case "destination-address":
			dst = x
		case "application":
			app = x
		}
	})
	for _, req := range []struct {
		n  *node
		kw string
	}{{src, "source-address"}, {dst, "destination-address"}, {app, "application"}} {
		if req.n == nil {
			c.d.errorf(m.p, "policy %s: match %s is required", pn.name, req.kw)
		}
	}
	if src != nil {
		p.SourceAddresses, p.Source = c.policyAddresses(pn, src, from, a)
	}
	if dst != nil {
		p.DestinationAddresses, p.Destination = c.policyAddresses(pn, dst, to, a)
	}
	if app != nil {
		p.Applications = a.strings(len(app.vals))
		for _, w := range app.vals {
			p.Applications = append(p.Applications, w.s)
			terms, any, ok := c.appTerms(w.s, true)
			if !ok {
				c.d.errorf(w.p, "policy %s: undefined application %s", pn.name, w.s)
				continue
			}
			if any {
				p.AnyApplication = true
			}
			if len(app.vals) == 1 {
				p.Terms = terms
			} else {
				p.Terms = append(p.Terms, terms...)
			}
		}
		if p.AnyApplication {
			p.Terms = nil
		}
	}
	then := pn.child("then")
	actions := 0
	if then != nil {
		active(then, func(x *node) {
			switch x.kw {
			case "permit":
				p.Action = ActionPermit
				actions++
			case "deny":
				p.Action = ActionDeny
				actions++
			case "reject":
				p.Action = ActionReject
				actions++
			case "count":
				p.Count = true
			case "log":
				p.LogInit = x.child("session-init") != nil
				p.LogClose = x.child("session-close") != nil
			}
		})
	}
	if actions == 0 {
		c.d.errorf(pn.p, "policy %s: an action is required (then permit, deny or reject)", pn.name)
	} else if actions > 1 {
		c.d.errorf(then.p, "policy %s: only one of permit, deny, reject", pn.name)
	}
	return p
}

// policyAddresses resolves the names of a match leaf in the zone's book.
func (c *compiler) policyAddresses(pn, x *node, z *Zone, a *policyAlloc) ([]string, []netip.Prefix) {
	names := a.strings(len(x.vals))
	var out []netip.Prefix
	var book *ResolvedBook
	if z != nil {
		book = z.Book
	}
	for _, w := range x.vals {
		names = append(names, w.s)
		ps, ok := book.Lookup(w.s)
		if !ok {
			if z == nil {
				continue // the zone error is reported already
			}
			c.d.errorf(w.p, "policy %s: undefined address %s in zone %s (%s)", pn.name, w.s, z.Name, x.kw)
			continue
		}
		if len(x.vals) == 1 {
			out = ps // shared, read-only
		} else {
			out = append(out, ps...)
		}
	}
	if len(x.vals) > 1 {
		out = dedupePrefixes(out)
	}
	return names, out
}

func (c *compiler) flow(n *node) {
	mss := n.child("tcp-mss")
	if mss == nil {
		return
	}
	if v := mss.child("ipsec-vpn"); v != nil {
		c.cfg.Flow.TCPMSSIPsecVPN = Defaults.TCPMSSIPsecVPN
		if m := v.child("mss"); m != nil {
			c.cfg.Flow.TCPMSSIPsecVPN, _ = c.num(m, 64, 65535)
		}
	}
	if v := mss.child("all-tcp"); v != nil {
		if m := v.child("mss"); m != nil {
			c.cfg.Flow.TCPMSSAllTCP, _ = c.num(m, 64, 65535)
		} else {
			c.d.errorf(v.p, "tcp-mss all-tcp needs mss N")
		}
	}
}
