package config

import "strings"

// word is a value with the position it was read at.
type word struct {
	s string
	p pos
}

// nodeKey identifies a child among its siblings (keyword, name, second name).
type nodeKey struct{ kw, name, name2 string }

// indexThreshold is the number of children above which a node keeps a map
// from key to child; below it a linear scan is cheaper than a map.
const indexThreshold = 16

// node is one statement of the configuration tree. Children keep their
// configuration order (policy order matters). A node without spec is an
// unknown statement: kw is its first word and vals the rest.
type node struct {
	kw     string
	name   string
	vals   []word
	kids   []*node
	parent *node
	sp     *spec
	p      pos
	x      *nodeExtra // nil for most nodes; keeps node at 112 bytes
}

// nodeExtra holds the fields few nodes need.
type nodeExtra struct {
	name2    string // second identifier (from-zone A to-zone B)
	inactive bool
	dflt     bool   // filled in from the defaults table, not configured
	note     string // shown as a trailing ## comment (FillDefaults)
	// comments are the /* */ comments written before the statement in
	// hierarchical form, displayed again before it.
	comments []string
	// valSet holds the values of a long list leaf (appendValues).
	valSet map[string]struct{}
	// hierFile is 1+the file index of the hierarchical block that defined the
	// node, so that a second definition in a hierarchical file is caught.
	hierFile uint32
	// index (built above indexThreshold children) maps idxKey to a child;
	// children whose idxKey is taken by a sibling are kept in overflow.
	index    map[string]*node
	overflow []*node
}

func (n *node) extra() *nodeExtra {
	if n.x == nil {
		n.x = &nodeExtra{}
	}
	return n.x
}

func (n *node) name2() string {
	if n.x == nil {
		return ""
	}
	return n.x.name2
}

func (n *node) inactive() bool { return n.x != nil && n.x.inactive }
func (n *node) dflt() bool     { return n.x != nil && n.x.dflt }

func (n *node) setInactive(v bool) {
	if v || n.x != nil {
		n.extra().inactive = v
	}
}

func (n *node) key() nodeKey { return nodeKey{n.kw, n.name, n.name2()} }

// idxKey is the string a child is indexed by: its name (with the second
// name, if any), or its keyword when it has no name.
func idxKey(k nodeKey) string {
	switch {
	case k.name2 != "":
		return k.name + "\x00" + k.name2
	case k.name != "":
		return k.name
	}
	return k.kw
}

func (n *node) find(k nodeKey) *node {
	if n.x != nil && n.x.index != nil {
		if c := n.x.index[idxKey(k)]; c != nil && c.kw == k.kw && c.name == k.name && c.name2() == k.name2 {
			return c
		}
		for _, c := range n.x.overflow {
			if c.kw == k.kw && c.name == k.name && c.name2() == k.name2 {
				return c
			}
		}
		return nil
	}
	for _, c := range n.kids {
		if c.kw == k.kw && c.name == k.name && c.name2() == k.name2 {
			return c
		}
	}
	return nil
}

func (n *node) indexChild(c *node) {
	key := idxKey(c.key())
	if _, taken := n.x.index[key]; taken {
		n.x.overflow = append(n.x.overflow, c)
		return
	}
	n.x.index[key] = c
}

// ord is the canonical position class of n among its siblings: the order of
// the schema, unknown statements last.
func (n *node) ord() int {
	if n.sp == nil {
		return 1 << 30
	}
	return n.sp.ord
}

// add inserts c after the last sibling of the same or an earlier schema
// position, so that siblings of different kinds are in canonical (schema)
// order while statements of one kind keep the order they were written in.
func (n *node) add(c *node) {
	c.parent = n
	at := len(n.kids)
	for co := c.ord(); at > 0 && n.kids[at-1].ord() > co; at-- {
	}
	n.kids = append(n.kids, c)
	if at < len(n.kids)-1 {
		copy(n.kids[at+1:], n.kids[at:len(n.kids)-1])
		n.kids[at] = c
	}
	if n.x != nil && n.x.index != nil {
		n.indexChild(c)
	} else if len(n.kids) > indexThreshold {
		n.extra().index = make(map[string]*node, 2*len(n.kids))
		for _, k := range n.kids {
			n.indexChild(k)
		}
	}
}

func (n *node) remove(c *node) {
	for i, k := range n.kids {
		if k == c {
			n.kids = append(n.kids[:i:i], n.kids[i+1:]...)
			break
		}
	}
	if n.x != nil && n.x.index != nil {
		key := idxKey(c.key())
		if n.x.index[key] == c {
			delete(n.x.index, key)
		}
		for i, k := range n.x.overflow {
			if k == c {
				n.x.overflow = append(n.x.overflow[:i:i], n.x.overflow[i+1:]...)
				break
			}
		}
	}
	c.parent = nil
}

// moveRelative moves child c right before or after sibling ref.
func (n *node) moveRelative(c, ref *node, after bool) {
	if c == ref {
		return
	}
	kids := make([]*node, 0, len(n.kids))
	for _, k := range n.kids {
		if k == c {
			continue
		}
		if k == ref && !after {
			kids = append(kids, c)
		}
		kids = append(kids, k)
		if k == ref && after {
			kids = append(kids, c)
		}
	}
	n.kids = kids
}

// child returns the first active child with keyword kw.
func (n *node) child(kw string) *node {
	for _, c := range n.kids {
		if c.kw == kw && !c.inactive() {
			return c
		}
	}
	return nil
}

// val returns the first value of the node, or "".
func (n *node) val() string {
	if len(n.vals) == 0 {
		return ""
	}
	return n.vals[0].s
}

// path returns the statement path of n for messages, e.g.
// "security ike gateway IKE-GW".
func (n *node) path() string {
	var parts []string
	for x := n; x != nil && x.parent != nil; x = x.parent {
		s := x.kw
		if x.name != "" {
			s += " " + x.name
		}
		if x.sp != nil && x.sp.kw2 != "" {
			s += " " + x.sp.kw2 + " " + x.name2()
		}
		parts = append(parts, s)
	}
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return strings.Join(parts, " ")
}

// Tree is a parsed configuration: every statement of every file, in order,
// with positions, including inactive and unknown statements.
type Tree struct {
	root  *node
	files []string
	// nodes and words are allocation slabs: large configurations have
	// millions of statements, and one allocation per statement would
	// dominate parsing and garbage collection.
	nodes []node
	words []word
	kids  []*node
	// edit is the open Edit whose changes are journaled (nil outside
	// Tree.Edit).
	edit *Edit
}

// addChild adds c below parent; a first child gets room for four from the
// slab, which is enough for most containers.
func (t *Tree) addChild(parent, c *node) {
	if parent.kids == nil {
		if len(t.kids) < 4 {
			t.kids = make([]*node, 4*slabSize)
		}
		parent.kids = t.kids[0:0:4]
		t.kids = t.kids[4:]
	}
	parent.add(c)
}

const slabSize = 1024

// newNode returns a zeroed node from the slab.
func (t *Tree) newNode() *node {
	if len(t.nodes) == 0 {
		t.nodes = make([]node, slabSize)
	}
	n := &t.nodes[0]
	t.nodes = t.nodes[1:]
	return n
}

// oneWord returns a one-element word slice (capacity 1, so appends copy).
func (t *Tree) oneWord(w word) []word {
	if len(t.words) == 0 {
		t.words = make([]word, slabSize)
	}
	s := t.words[0:1:1]
	t.words = t.words[1:]
	s[0] = w
	return s
}

// NewTree returns an empty configuration tree.
func NewTree() *Tree {
	return &Tree{root: &node{sp: schema}}
}

func (t *Tree) fileIndex(name string) uint16 {
	t.files = append(t.files, name)
	if len(t.files) > 0xffff {
		return 0xffff
	}
	return uint16(len(t.files) - 1)
}
