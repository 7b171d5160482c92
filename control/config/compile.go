package config

import (
	"net/netip"
	"strconv"
	"strings"
)

// compiler turns a tree into a Config, reporting every problem it finds.
type compiler struct {
	d   *diagSink
	cfg *Config

	ifmap  map[string]string
	ifaces map[string]*Interface
	units  map[string]*Unit
	zones  map[string]*Zone

	zoneOfUnit  map[string]*Zone
	unitZonePos map[string]pos

	globalBook   map[string][]netip.Prefix
	zoneBooks    map[string]map[string][]netip.Prefix // by zone name
	apps         map[string]*Application
	appSets      map[string]*ApplicationSet
	ikeProposals map[string]*IKEProposal
	ikePolicies  map[string]*IKEPolicy
	gateways     map[string]*IKEGateway
	ipsecProps   map[string]*IPsecProposal
	ipsecPols    map[string]*IPsecPolicy
	vpns         map[string]*VPN
	vpnNodes     map[*VPN]*node
}

// Compile validates the tree and builds the typed model. Warnings and errors
// come back together; the Config is nil when there is any error.
func (t *Tree) Compile() (*Config, Diagnostics) {
	d := &diagSink{files: t.files}
	cfg := t.compile(d)
	if d.list.HasErrors() {
		return nil, d.list
	}
	return cfg, d.list
}

func (t *Tree) compile(d *diagSink) *Config {
	c := &compiler{
		d:            d,
		cfg:          &Config{DefaultsVersion: DefaultsVersion, Policies: Policies{Default: ActionDeny}},
		ifmap:        map[string]string{},
		ifaces:       map[string]*Interface{},
		units:        map[string]*Unit{},
		zones:        map[string]*Zone{},
		zoneOfUnit:   map[string]*Zone{},
		unitZonePos:  map[string]pos{},
		zoneBooks:    map[string]map[string][]netip.Prefix{},
		apps:         map[string]*Application{},
		appSets:      map[string]*ApplicationSet{},
		ikeProposals: map[string]*IKEProposal{},
		ikePolicies:  map[string]*IKEPolicy{},
		gateways:     map[string]*IKEGateway{},
		ipsecProps:   map[string]*IPsecProposal{},
		ipsecPols:    map[string]*IPsecPolicy{},
		vpns:         map[string]*VPN{},
		vpnNodes:     map[*VPN]*node{},
	}
	c.warnUnknown(t.root)
	root := t.root
	sec := root.child("security")
	if n := root.child("system"); n != nil {
		c.system(n)
	}
	if n := root.child("interfaces"); n != nil {
		c.interfaces(n)
	}
	if sec != nil {
		if n := sec.child("zones"); n != nil {
			c.zonesNode(n)
		}
		c.addressBooks(sec)
	}
	if n := root.child("applications"); n != nil {
		c.applications(n)
	}
	if sec != nil {
		if n := sec.child("policies"); n != nil {
			c.policies(n)
		}
		if n := sec.child("flow"); n != nil {
			c.flow(n)
		}
		if n := sec.child("ike"); n != nil {
			c.ike(n)
		}
		if n := sec.child("ipsec"); n != nil {
			c.ipsec(n)
		}
	}
	if n := root.child("routing-options"); n != nil {
		c.routingOptions(n)
	}
	c.crossChecks()
	if len(c.cfg.InterfaceMap) == 0 {
		c.cfg.InterfaceMap = nil
	}
	return c.cfg
}

// warnUnknown reports every active statement the schema does not know.
func (c *compiler) warnUnknown(n *node) {
	for _, k := range n.kids {
		if k.inactive() {
			continue
		}
		if k.sp == nil {
			c.d.warnf(k.p, "%s: not supported by bpfvpn, ignored", strings.TrimSpace(k.parent.path()+" "+k.kw))
			continue
		}
		c.warnUnknown(k)
	}
}

// active calls f for each active child of n.
func active(n *node, f func(*node)) {
	for _, k := range n.kids {
		if !k.inactive() && k.sp != nil {
			f(k)
		}
	}
}

func (c *compiler) p(n *node) Pos { return c.d.pos(n.p) }

// num parses the leaf value of n as an integer in [lo, hi].
func (c *compiler) num(n *node, lo, hi int) (int, bool) {
	v := n.val()
	x, err := strconv.Atoi(v)
	if err != nil {
		c.d.errorf(n.vals[0].p, "%s: %q is not a number", n.kw, truncate(v))
		return 0, false
	}
	if x < lo || x > hi {
		c.d.errorf(n.vals[0].p, "%s %d out of range %d..%d", n.kw, x, lo, hi)
		return 0, false
	}
	return x, true
}

// enum checks that the leaf value of n is one of allowed.
func (c *compiler) enum(n *node, allowed ...string) (string, bool) {
	v := n.val()
	if oneOf(v, allowed) {
		return v, true
	}
	c.d.errorf(n.vals[0].p, "%s: invalid value %q (want %s)", n.kw, truncate(v), strings.Join(allowed, ", "))
	return "", false
}

// valPos returns the position of the first value of n, or n's.
func valPos(n *node) pos {
	if len(n.vals) > 0 {
		return n.vals[0].p
	}
	return n.p
}

func (c *compiler) parseAddr(n *node, w word) (netip.Addr, bool) {
	a, err := netip.ParseAddr(w.s)
	if err != nil || a.Zone() != "" {
		c.d.errorf(w.p, "%s: %q is not an IP address", n.kw, truncate(w.s))
		return netip.Addr{}, false
	}
	return a, true
}

// parseNetPrefix parses a network prefix (host bits zero). A bare address is
// a host prefix. Messages start with "kw name" ("address Host1-Net").
func (c *compiler) parseNetPrefix(kw, name string, w word) (netip.Prefix, bool) {
	s := w.s
	var p netip.Prefix
	var err error
	if strings.IndexByte(s, '/') < 0 {
		var a netip.Addr
		a, err = netip.ParseAddr(s)
		if err == nil {
			p = netip.PrefixFrom(a, a.BitLen())
		}
	} else {
		p, err = netip.ParsePrefix(s)
	}
	what := func() string { return strings.TrimSpace(kw + " " + name) }
	if err != nil || p.Addr().Zone() != "" {
		c.d.errorf(w.p, "%s: %q is not an IP prefix", what(), truncate(s))
		return netip.Prefix{}, false
	}
	if m := p.Masked(); m != p {
		c.d.errorf(w.p, "%s: prefix %s has host bits set (network is %s)", what(), s, m)
		return netip.Prefix{}, false
	}
	return p, true
}

// unitName normalizes an interface reference: "ge-0/0/1" means unit 0.
func unitName(s string) string {
	if i := strings.LastIndexByte(s, '.'); i > 0 && i < len(s)-1 {
		if _, err := strconv.Atoi(s[i+1:]); err == nil {
			return s
		}
	}
	return s + ".0"
}

// linuxName maps a configured interface name to its Linux device name.
func (c *compiler) linuxName(name string) string {
	if l, ok := c.ifmap[name]; ok {
		return l
	}
	return defaultLinuxName(name)
}

// defaultLinuxName makes a vendor name usable on Linux without a map entry:
// '/' and ':' become '-' (ge-0/0/1 → ge-0-0-1).
func defaultLinuxName(name string) string {
	if strings.ContainsAny(name, "/:") {
		return strings.Map(func(r rune) rune {
			if r == '/' || r == ':' {
				return '-'
			}
			return r
		}, name)
	}
	return name
}

func (c *compiler) system(n *node) {
	if m := n.child("interface-map"); m != nil {
		active(m, func(e *node) {
			linux := e.val()
			if !validLinuxName(linux) {
				c.d.errorf(valPos(e), "interface-map: %q is not a valid Linux interface name", truncate(linux))
				return
			}
			if c.cfg.InterfaceMap == nil {
				c.cfg.InterfaceMap = map[string]string{}
			}
			c.ifmap[e.kw] = linux
			c.cfg.InterfaceMap[e.kw] = linux
		})
	}
}

func validLinuxName(s string) bool {
	if s == "" || len(s) > 15 || s == "." || s == ".." {
		return false
	}
	return !strings.ContainsAny(s, "/: \t")
}
