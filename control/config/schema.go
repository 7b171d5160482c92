package config

// The schema tells the parser how to read words: which keywords open
// containers, which take an identifier, which are leaves with a value. It is
// what lets one path walker read both `set a b c` lines and hierarchical
// statements, and what makes displays canonical. Statements the schema does
// not know are kept verbatim as unknown nodes.

type specKind uint8

const (
	kContainer specKind = iota // keyword [NAME [kw2 NAME2]] { … }
	kLeaf                      // keyword [NAME] VALUE;  or keyword [ V1 V2 ];  for lists
	kFlag                      // keyword;
)

// spec describes one statement of the schema.
type spec struct {
	kw       string // keyword; "" for a wildcard whose keyword is any word (interface names, services)
	kind     specKind
	named    bool   // the keyword is followed by an identifier (proposal NAME)
	kw2      string // a second keyword and identifier belong to the same statement (from-zone A to-zone B)
	list     bool   // a leaf holding several values: [ a b ]; set appends
	secret   bool   // a leaf whose value is a $9$ secret
	compact  bool   // displayed on one line when its only child is a leaf or flag
	unique   bool   // a hierarchical block may define it only once (policy names in a zone pair)
	inline   bool   // displayed as a prefix of each child (`family inet { … }`), as the vendor does
	presence bool   // an unnamed container that means something when empty (`then permit;`)
	children []*spec
	byKw     map[string]*spec
	wild     *spec
	ord      int // position among the parent's children: the canonical order
}

func (s *spec) lookup(word string) *spec {
	if c, ok := s.byKw[word]; ok {
		return c
	}
	return s.wild
}

func (s *spec) index() *spec {
	s.byKw = make(map[string]*spec, len(s.children))
	for i, c := range s.children {
		c.ord = i
		if c.kw == "" {
			s.wild = c
		} else {
			s.byKw[c.kw] = c
		}
		c.index()
	}
	return s
}

func cont(kw string, ch ...*spec) *spec { return &spec{kw: kw, kind: kContainer, children: ch} }
func named(kw string, ch ...*spec) *spec {
	return &spec{kw: kw, kind: kContainer, named: true, children: ch}
}
func leaf(kw string) *spec      { return &spec{kw: kw, kind: kLeaf} }
func list(kw string) *spec      { return &spec{kw: kw, kind: kLeaf, list: true} }
func flag(kw string) *spec      { return &spec{kw: kw, kind: kFlag} }
func namedLeaf(kw string) *spec { return &spec{kw: kw, kind: kLeaf, named: true} }
func wild(ch ...*spec) *spec    { return &spec{kind: kContainer, children: ch} }
func wildLeaf() *spec           { return &spec{kind: kLeaf} }

func (s *spec) withCompact() *spec { s.compact = true; return s }
func (s *spec) withSecret() *spec  { s.secret = true; return s }
func (s *spec) withUnique() *spec  { s.unique = true; return s }
func (s *spec) withInline() *spec  { s.inline = true; return s }

// withPresence marks an unnamed container whose mere presence configures
// something, so that deleting its last child keeps it.
func (s *spec) withPresence() *spec { s.presence = true; return s }
func (s *spec) withKey2(kw string) *spec {
	s.kw2 = kw
	return s
}

// schema is the root of the statements bpfvpn understands.
var schema = buildSchema()

func buildSchema() *spec {
	hostInbound := func() *spec {
		return cont("host-inbound-traffic",
			cont("system-services", wild(flag("except"))),
			cont("protocols", wild(flag("except"))),
		)
	}
	route := func() *spec {
		return named("route",
			list("next-hop"),
			named("qualified-next-hop", leaf("preference"), leaf("metric")),
			leaf("preference"),
			leaf("metric"),
			flag("discard"),
			flag("reject"),
		).withCompact()
	}
	identity := func(kw string) *spec {
		return cont(kw, leaf("inet"), leaf("inet6"), leaf("hostname"), leaf("user-at-hostname"), cont("distinguished-name").withPresence()).withCompact()
	}
	addressSet := func() *spec {
		return named("address-set", named("address"), named("address-set"), leaf("description"))
	}
	address := func() *spec { return namedLeaf("address") }

	root := cont("",
		cont("system",
			cont("interface-map", wildLeaf()),
		),
		cont("interfaces",
			wild(
				leaf("description"),
				flag("disable"),
				leaf("mtu"),
				named("unit",
					leaf("description"),
					flag("disable"),
					flag("multipoint"),
					leaf("vlan-id"),
					cont("family",
						cont("inet",
							named("address", flag("primary"), flag("preferred")),
							leaf("mtu"),
							named("next-hop-tunnel", leaf("ipsec-vpn")).withCompact(),
						).withPresence(),
						cont("inet6",
							named("address", flag("primary"), flag("preferred")),
							leaf("mtu"),
							named("next-hop-tunnel", leaf("ipsec-vpn")).withCompact(),
						).withPresence(),
					).withInline(),
				),
			),
		),
		cont("routing-options",
			cont("static", route()),
			named("rib", cont("static", route())),
		),
		cont("security",
			cont("ike",
				named("proposal",
					leaf("description"),
					leaf("authentication-method"),
					leaf("dh-group"),
					leaf("authentication-algorithm"),
					leaf("encryption-algorithm"),
					leaf("lifetime-seconds"),
				),
				named("policy",
					leaf("description"),
					leaf("mode"),
					list("proposals"),
					leaf("proposal-set"),
					cont("pre-shared-key",
						leaf("ascii-text").withSecret(),
						leaf("hexadecimal").withSecret(),
					).withCompact(),
				),
				named("gateway",
					leaf("description"),
					leaf("ike-policy"),
					list("address"),
					leaf("external-interface"),
					leaf("local-address"),
					leaf("version"),
					cont("dead-peer-detection",
						flag("optimized"),
						flag("probe-idle-tunnel"),
						flag("always-send"),
						leaf("interval"),
						leaf("threshold"),
					).withPresence(),
					cont("nat-traversal", flag("disable")).withCompact(),
					flag("no-nat-traversal"),
					identity("local-identity"),
					identity("remote-identity"),
					flag("general-ikeid"),
				),
			),
			cont("ipsec",
				named("proposal",
					leaf("description"),
					leaf("protocol"),
					leaf("encryption-algorithm"),
					leaf("authentication-algorithm"),
					leaf("lifetime-seconds"),
					leaf("lifetime-kilobytes"),
				),
				named("policy",
					leaf("description"),
					list("proposals"),
					leaf("proposal-set"),
					cont("perfect-forward-secrecy", leaf("keys")),
				),
				named("vpn",
					leaf("description"),
					leaf("bind-interface"),
					cont("ike",
						leaf("gateway"),
						leaf("ipsec-policy"),
						cont("proxy-identity", leaf("local"), leaf("remote"), leaf("service")),
					),
					leaf("establish-tunnels"),
					leaf("df-bit"),
					cont("vpn-monitor",
						flag("optimized"),
						leaf("source-interface"),
						leaf("destination-ip"),
					).withPresence(),
				),
			),
			cont("address-book",
				wild(
					leaf("description"),
					address(),
					addressSet(),
					cont("attach", list("zone")),
				),
			),
			cont("flow",
				cont("tcp-mss",
					cont("ipsec-vpn", leaf("mss")).withPresence(),
					cont("all-tcp", leaf("mss")).withPresence(),
				),
			),
			cont("policies",
				named("from-zone",
					named("policy",
						leaf("description"),
						cont("match",
							list("source-address"),
							list("destination-address"),
							list("application"),
						),
						cont("then",
							cont("permit").withPresence(),
							flag("deny"),
							flag("reject"),
							cont("count").withPresence(),
							cont("log", flag("session-init"), flag("session-close")),
						),
					).withUnique(),
				).withKey2("to-zone"),
				cont("default-policy", flag("permit-all"), flag("deny-all")),
			),
			cont("zones",
				named("security-zone",
					leaf("description"),
					hostInbound(),
					cont("interfaces", wild(hostInbound())),
					cont("address-book", address(), addressSet()),
				),
			),
		),
		cont("applications",
			named("application",
				leaf("description"),
				leaf("protocol"),
				leaf("destination-port"),
				leaf("source-port"),
				leaf("icmp-type"),
				leaf("icmp-code"),
				leaf("icmp6-type"),
				leaf("icmp6-code"),
				leaf("inactivity-timeout"),
			),
			named("application-set",
				leaf("description"),
				named("application"),
				named("application-set"),
			),
		),
	)
	return root.index()
}
