package config

import "strings"

// Edit is a delta (set, delete, deactivate, activate and insert lines, or a
// hierarchical text merged as `load merge` does) applied to a tree in place.
// Every change it makes is journaled, so Undo restores the tree exactly;
// compiling the edited tree with CompileDelta re-validates only what the
// edit touched when that is possible.
type Edit struct {
	t     *Tree
	undo  []func()
	files int
	done  bool
	// Policies are the security policies the edit named, in order, without
	// repetitions.
	Policies []PolicyRef
	// Wide is true when the edit named a statement other than a single
	// security policy (a zone, an address book, an application, a whole
	// zone pair, an interface …): such a statement can be referenced from
	// anywhere, so the whole tree is validated again.
	Wide bool
	seen map[PolicyRef]bool
}

// PolicyRef names one security policy.
type PolicyRef struct{ From, To, Name string }

// Edit applies text (set-form lines, or hierarchical statements merged into
// the tree) under the file name name and returns the edit with its syntax
// problems. On syntax errors the tree is already restored and the Edit is
// nil. Diagnostics carry name:line:col positions.
func (t *Tree) Edit(name string, data []byte) (*Edit, Diagnostics) {
	e := &Edit{t: t, files: len(t.files), seen: map[PolicyRef]bool{}}
	t.edit = e
	diags := t.parseText(name, string(data))
	t.edit = nil
	diags.Sort(t.files)
	if diags.HasErrors() {
		e.Undo()
		return nil, diags
	}
	return e, diags
}

// Undo restores the tree to what it was before the edit. It is a no-op the
// second time.
func (e *Edit) Undo() {
	if e.done {
		return
	}
	e.done = true
	for i := len(e.undo) - 1; i >= 0; i-- {
		e.undo[i]()
	}
	e.undo = nil
	e.t.files = e.t.files[:e.files]
}

// Keep makes the edit permanent: Undo no longer restores anything.
func (e *Edit) Keep() { e.done, e.undo = true, nil }

// undoable records the inverse of a change while an edit is open.
func (t *Tree) undoable(f func()) {
	if t.edit != nil {
		t.edit.undo = append(t.edit.undo, f)
	}
}

// touchHier notes a hierarchical statement of an edit: always wide.
func (t *Tree) touchHier() {
	if t.edit != nil {
		t.edit.Wide = true
	}
}

// touchSet classifies one set-form line of an edit: a line below
// `security policies from-zone A to-zone B policy P` touches that policy
// only; anything else is wide.
func (t *Tree) touchSet(args []token) {
	e := t.edit
	if e == nil {
		return
	}
	w := func(i int) string {
		if i < len(args) && (args[i].kind == tWord || args[i].kind == tString) {
			return args[i].text
		}
		return ""
	}
	if w(0) != "security" || w(1) != "policies" || w(2) != "from-zone" || w(3) == "" ||
		w(4) != "to-zone" || w(5) == "" || w(6) != "policy" || w(7) == "" {
		e.Wide = true
		return
	}
	r := PolicyRef{From: w(3), To: w(5), Name: w(7)}
	if !e.seen[r] {
		e.seen[r] = true
		e.Policies = append(e.Policies, r)
	}
}

// insertAt puts c back at position i of n's children (the inverse of
// remove).
func (n *node) insertAt(i int, c *node) {
	c.parent = n
	if i > len(n.kids) {
		i = len(n.kids)
	}
	n.kids = append(n.kids, nil)
	copy(n.kids[i+1:], n.kids[i:])
	n.kids[i] = c
	if n.x != nil && n.x.index != nil {
		n.indexChild(c)
	}
}

// indexOf returns the position of c among n's children, or -1.
func (n *node) indexOf(c *node) int {
	for i, k := range n.kids {
		if k == c {
			return i
		}
	}
	return -1
}

// removeUndoable removes c from n, journaling its place.
func (t *Tree) removeUndoable(n, c *node) {
	if t.edit != nil {
		i := n.indexOf(c)
		t.undoable(func() { n.insertAt(i, c) })
	}
	n.remove(c)
}

// addChildUndoable adds c below parent, journaling it.
func (t *Tree) addChildUndoable(parent, c *node) {
	t.addChild(parent, c)
	t.undoable(func() { parent.remove(c) })
}

// saveVals journals n's values (and position) before a change.
func (t *Tree) saveVals(n *node) {
	if t.edit == nil {
		return
	}
	vals, p := n.vals, n.p
	t.undoable(func() {
		n.vals, n.p = vals, p
		if n.x != nil {
			n.x.valSet = nil // rebuilt on the next append
		}
	})
}

// setInactiveUndoable journals n's inactive flag before changing it.
func (t *Tree) setInactiveUndoable(n *node, v bool) {
	if t.edit != nil {
		old := n.inactive()
		t.undoable(func() { n.setInactive(old) })
	}
	n.setInactive(v)
}

// saveKids journals the order of n's children before a move.
func (t *Tree) saveKids(n *node) {
	if t.edit == nil {
		return
	}
	kids := n.kids
	t.undoable(func() { n.kids = kids })
}

// saveExtra journals the comments and hierarchical-file mark of n.
func (t *Tree) saveExtra(n *node) {
	if t.edit == nil {
		return
	}
	var comments []string
	var hf uint32
	had := n.x != nil
	if had {
		comments, hf = n.x.comments, n.x.hierFile
	}
	t.undoable(func() {
		if n.x != nil {
			n.x.comments, n.x.hierFile = comments, hf
		}
	})
}

// String describes the edit for logs.
func (e *Edit) String() string {
	if e.Wide {
		return "wide edit"
	}
	var b strings.Builder
	for i, p := range e.Policies {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(p.From + "→" + p.To + " " + p.Name)
	}
	return b.String()
}
