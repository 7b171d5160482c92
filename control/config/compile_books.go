package config

import (
	"net/netip"
)

// bookBuild is an address book being compiled.
type bookBuild struct {
	book  *AddressBook
	names map[string][]netip.Prefix
	sets  map[string]*node
}

func (c *compiler) addressBooks(sec *node) {
	var firstShared *node // first `security address-book` book
	if ab := sec.child("address-book"); ab != nil {
		active(ab, func(bn *node) {
			if firstShared == nil {
				firstShared = bn
			}
			b := c.book(bn, bn.kw, "")
			if bn.kw == "global" {
				if a := bn.child("attach"); a != nil {
					c.d.errorf(a.p, "address-book global cannot be attached to a zone")
				}
				c.globalBook = b.names
				return
			}
			if a := bn.child("attach"); a != nil {
				if z := a.child("zone"); z != nil {
					for _, w := range z.vals {
						if c.zones[w.s] == nil {
							c.d.errorf(w.p, "address-book %s: undefined zone %s", bn.kw, w.s)
							continue
						}
						b.book.AttachZones = append(b.book.AttachZones, w.s)
						c.mergeZoneBook(w.s, b.names)
					}
				}
			}
		})
	}
	if zs := sec.child("zones"); zs != nil {
		active(zs, func(zn *node) {
			bn := zn.child("address-book")
			if bn == nil || zn.kw != "security-zone" {
				return
			}
			if firstShared != nil {
				c.d.errorf(bn.p, "zone %s: zone address books cannot be mixed with global or named address books (security address-book at line %d)", zn.name, firstShared.p.line)
				return
			}
			b := c.book(bn, zn.name, zn.name)
			c.mergeZoneBook(zn.name, b.names)
		})
	}
	for _, z := range c.cfg.Zones {
		z.Book = &ResolvedBook{own: c.zoneBooks[z.Name], global: c.globalBook}
	}
}

func (c *compiler) mergeZoneBook(zone string, names map[string][]netip.Prefix) {
	have := c.zoneBooks[zone]
	if have == nil {
		c.zoneBooks[zone] = names
		return
	}
	merged := make(map[string][]netip.Prefix, len(have)+len(names))
	for k, v := range have {
		merged[k] = v
	}
	for k, v := range names {
		merged[k] = v
	}
	c.zoneBooks[zone] = merged
}

// book compiles one address book: addresses first, then sets (which may
// refer to addresses and sets of the same book).
func (c *compiler) book(bn *node, name, zone string) *bookBuild {
	b := &bookBuild{book: &AddressBook{Name: name, Zone: zone, Pos: c.p(bn)}, sets: map[string]*node{}}
	c.cfg.AddressBooks = append(c.cfg.AddressBooks, b.book)
	n := 0
	for _, k := range bn.kids {
		if k.kw == "address" {
			n++
		}
	}
	b.names = make(map[string][]netip.Prefix, n)
	backing := make([]netip.Prefix, 0, n)
	addrs := make([]Address, 0, n)
	b.book.Addresses = make([]*Address, 0, n)
	active(bn, func(k *node) {
		switch k.kw {
		case "address":
			if len(k.vals) == 0 {
				c.d.errorf(k.p, "address %s needs a prefix", k.name)
				return
			}
			p, ok := c.parseNetPrefix("address", k.name, k.vals[0])
			if !ok {
				return
			}
			if _, dup := b.names[k.name]; dup {
				c.d.errorf(k.p, "address-book %s: duplicate address %s", name, k.name)
				return
			}
			if _, pre := anyAddresses[k.name]; pre {
				c.d.errorf(k.p, "address-book %s: %s is predefined", name, k.name)
				return
			}
			backing = append(backing, p)
			addrs = append(addrs, Address{Name: k.name, Prefix: p, Pos: c.p(k)})
			b.book.Addresses = append(b.book.Addresses, &addrs[len(addrs)-1])
			b.names[k.name] = backing[len(backing)-1 : len(backing) : len(backing)]
		case "address-set":
			if _, dup := b.names[k.name]; dup {
				c.d.errorf(k.p, "address-book %s: address-set %s has the name of an address", name, k.name)
				return
			}
			b.sets[k.name] = k
		}
	})
	// Sets in configuration order, each expanded once (cycles are errors).
	state := map[string]uint8{} // 1 visiting, 2 done
	var expand func(k *node) []netip.Prefix
	expand = func(k *node) []netip.Prefix {
		switch state[k.name] {
		case 1:
			c.d.errorf(k.p, "address-set %s contains itself", k.name)
			return nil
		case 2:
			return b.names[k.name]
		}
		state[k.name] = 1
		set := &AddressSet{Name: k.name, Pos: c.p(k)}
		active(k, func(m *node) {
			switch m.kw {
			case "address":
				set.Addresses = append(set.Addresses, m.name)
				p, ok := b.names[m.name]
				if _, isSet := b.sets[m.name]; !ok || isSet {
					c.d.errorf(m.p, "address-set %s: undefined address %s in address-book %s", k.name, m.name, name)
					return
				}
				set.Prefixes = append(set.Prefixes, p...)
			case "address-set":
				set.Sets = append(set.Sets, m.name)
				sub, ok := b.sets[m.name]
				if !ok {
					c.d.errorf(m.p, "address-set %s: undefined address-set %s in address-book %s", k.name, m.name, name)
					return
				}
				set.Prefixes = append(set.Prefixes, expand(sub)...)
			}
		})
		state[k.name] = 2
		set.Prefixes = dedupePrefixes(set.Prefixes)
		b.names[k.name] = set.Prefixes
		b.book.Sets = append(b.book.Sets, set)
		return set.Prefixes
	}
	active(bn, func(k *node) {
		if k.kw == "address-set" && b.sets[k.name] == k {
			expand(k)
		}
	})
	return b
}

// dedupePrefixes removes repeated prefixes, keeping first occurrences in
// order; linear in the length of ps.
func dedupePrefixes(ps []netip.Prefix) []netip.Prefix {
	if len(ps) < 2 {
		return ps
	}
	out := ps[:0]
	if len(ps) <= 16 {
		for _, p := range ps {
			dup := false
			for _, q := range out {
				if p == q {
					dup = true
					break
				}
			}
			if !dup {
				out = append(out, p)
			}
		}
		return out
	}
	seen := make(map[netip.Prefix]struct{}, len(ps))
	for _, p := range ps {
		if _, dup := seen[p]; !dup {
			seen[p] = struct{}{}
			out = append(out, p)
		}
	}
	return out
}
