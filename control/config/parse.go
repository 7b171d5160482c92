package config

import "strings"

// Format is one of the two textual forms of a configuration.
type Format uint8

const (
	// FormatHierarchical is the brace form: `security { ike { … } }`.
	FormatHierarchical Format = iota
	// FormatSet is the line form: `set security ike …`.
	FormatSet
)

var setCommands = map[string]bool{"set": true, "delete": true, "deactivate": true, "activate": true, "insert": true}

// DetectFormat returns FormatSet when the first line with a statement starts
// with a set-form command (set, delete, deactivate, activate, insert) and
// holds no ';' or braces, and FormatHierarchical otherwise.
func DetectFormat(data []byte) Format {
	return detectFormat(string(data))
}

func detectFormat(text string) Format {
	lx := newLexer(0, text, true)
	tok := lx.next()
	for tok.kind == tNewline {
		tok = lx.next()
	}
	if tok.kind != tWord || !setCommands[tok.text] {
		return FormatHierarchical
	}
	// A statement named like a command (`set;`, `delete { … }`) is
	// hierarchical: set lines never hold ';' or braces.
	for tok = lx.next(); tok.kind != tNewline && tok.kind != tEOF; tok = lx.next() {
		if tok.kind == tSemi || tok.kind == tLBrace || tok.kind == tRBrace {
			return FormatHierarchical
		}
	}
	return FormatSet
}

// Parse reads one configuration file (either form, detected) into the tree,
// after the statements already there, and returns the syntax problems.
func (t *Tree) Parse(name string, data []byte) Diagnostics {
	return t.parseText(name, string(data))
}

// parseText parses text; the tree keeps substrings of it (no copy).
func (t *Tree) parseText(name, text string) Diagnostics {
	d := &diagSink{}
	t.parse(name, text, d)
	return d.list
}

// maxSyntaxErrors stops reading a file that is clearly not a configuration.
const maxSyntaxErrors = 100

func (t *Tree) parse(name, text string, d *diagSink) {
	f := t.fileIndex(name)
	d.files = t.files
	d.limit = len(d.list) + maxSyntaxErrors
	if detectFormat(text) == FormatSet {
		t.parseSet(f, text, d)
	} else {
		t.parseHier(f, text, d)
	}
	d.limit = 0
}

// setState remembers the previous set line so that the next one, which
// usually shares its leading words, resumes at the deepest common container
// instead of looking every word up again.
type setState struct {
	prev  []token
	trail []trailStep
}

func (s *setState) reset() {
	s.prev = s.prev[:0]
	s.trail = s.trail[:0]
}

// parseSet reads set-form lines.
func (t *Tree) parseSet(f uint16, text string, d *diagSink) {
	lx := newLexer(f, text, true)
	st := &setState{}
	var line []token
	for {
		if d.full() {
			return
		}
		tok := lx.next()
		switch tok.kind {
		case tNewline, tEOF:
			if len(line) > 0 {
				t.setLine(line, d, st)
				line = line[:0]
			}
			if tok.kind == tEOF {
				return
			}
		case tBad:
			d.errorf(tok.pos, "syntax error: %s", tok.text)
			// Skip the rest of the line.
			for tok.kind != tNewline && tok.kind != tEOF {
				tok = lx.next()
			}
			line = line[:0]
			if tok.kind == tEOF {
				return
			}
		default:
			line = append(line, tok)
		}
	}
}

func (t *Tree) setLine(line []token, d *diagSink, st *setState) {
	cmd := line[0]
	if cmd.kind != tWord || !setCommands[cmd.text] {
		d.errorf(cmd.pos, "syntax error: unknown command %q (want set, delete, deactivate, activate or insert)", truncate(cmd.text))
		return
	}
	args := line[1:]
	if len(args) == 0 {
		d.errorf(cmd.pos, "syntax error: %s needs a statement", cmd.text)
		return
	}
	for _, a := range args {
		if a.kind == tLBrace || a.kind == tRBrace || a.kind == tSemi {
			d.errorf(a.pos, "syntax error: unexpected '%s' in a %s line", a.text, cmd.text)
			return
		}
	}
	if cmd.text != "set" {
		st.reset()
	}
	t.touchSet(args)
	switch cmd.text {
	case "set":
		t.setWalk(args, d, st)
	case "delete":
		r := t.walk(t.root, args, walkLookup, d)
		if r.ok && r.last != t.root {
			t.deleteNode(r.last, r.delVals)
		}
	case "deactivate", "activate":
		r := t.walk(t.root, args, walkLookup, d)
		if r.ok && r.last != t.root {
			t.setInactiveUndoable(r.last, cmd.text == "deactivate")
		}
	case "insert":
		t.insertLine(cmd, args, d)
	}
}

// setWalk walks a set line, resuming from the deepest container the
// previous line reached through the same leading words.
func (t *Tree) setWalk(args []token, d *diagSink, st *setState) {
	common := 0
	for common < len(args) && common < len(st.prev) &&
		args[common].kind == st.prev[common].kind && args[common].text == st.prev[common].text {
		common++
	}
	start, from := 0, t.root
	keep := 0
	for i, s := range st.trail {
		if s.end > common {
			break
		}
		start, from, keep = s.end, s.n, i+1
	}
	st.trail = st.trail[:keep]
	errs := len(d.list)
	t.walkTrail(from, args[start:], walkCreate, d, &st.trail, start)
	if len(d.list) != errs {
		st.reset() // a failed line may have stopped anywhere
		return
	}
	st.prev = append(st.prev[:0], args...)
}

func (t *Tree) deleteNode(n *node, vals []word) {
	if n.sp != nil && n.sp.kind == kLeaf && n.sp.list && len(vals) > 0 {
		t.saveVals(n)
		kept := n.vals[:0:0]
		for _, v := range n.vals {
			drop := false
			for _, x := range vals {
				if x.s == v.s {
					drop = true
				}
			}
			if !drop {
				kept = append(kept, v)
			}
		}
		n.vals = kept
		if n.x != nil {
			n.x.valSet = nil // rebuilt on the next append
		}
		if len(kept) > 0 {
			return
		}
	}
	p := n.parent
	t.removeUndoable(p, n)
	// Containers that only structure the tree vanish with their last child.
	for p != t.root && len(p.kids) == 0 && p.sp != nil && p.sp.kind == kContainer && !p.sp.named &&
		p.sp.kw != "" && !p.sp.presence && !p.inactive() && (p.x == nil || len(p.x.comments) == 0) {
		up := p.parent
		t.removeUndoable(up, p)
		p = up
	}
}

// insertLine handles `insert PATH before|after KEYWORD NAME`.
func (t *Tree) insertLine(cmd token, args []token, d *diagSink) {
	at := -1
	for i := len(args) - 1; i >= 0; i-- {
		if args[i].kind == tWord && (args[i].text == "before" || args[i].text == "after") {
			at = i
			break
		}
	}
	if at <= 0 || at == len(args)-1 {
		d.errorf(cmd.pos, "syntax error: insert needs PATH before|after STATEMENT")
		return
	}
	r := t.walk(t.root, args[:at], walkLookup, d)
	if !r.ok || r.last == t.root {
		return
	}
	n := r.last
	parent := n.parent
	// The reference is read relative to the parent, in lookup mode.
	rr := t.walk(parent, args[at+1:], walkLookup, d)
	if !rr.ok || rr.last == parent {
		return
	}
	if rr.last.parent != parent {
		d.errorf(args[at+1].pos, "syntax error: insert reference is not a sibling of the inserted statement")
		return
	}
	t.saveKids(parent)
	parent.moveRelative(n, rr.last, args[at].text == "after")
}

// maxDepth bounds the nesting of hierarchical blocks (real configurations
// stay below 20) so that displays and checks never recurse without bound.
const maxDepth = 64

// parseHier reads the hierarchical form.
func (t *Tree) parseHier(f uint16, text string, d *diagSink) {
	lx := newLexer(f, text, false)
	lx.comments = true
	var comments []string // waiting for the statement they precede
	stack := []*node{t.root}
	var open []token // the '{' tokens of the open blocks
	var stmt []token
	for {
		if d.full() {
			return
		}
		tok := lx.next()
		switch tok.kind {
		case tBad:
			d.errorf(tok.pos, "syntax error: %s", tok.text)
			stmt = stmt[:0]
			if strings.HasPrefix(tok.text, "unterminated") {
				return
			}
		case tEOF:
			if len(stmt) > 0 {
				d.errorf(stmt[0].pos, "syntax error: missing ';' or '{' after statement")
			}
			for i := len(open) - 1; i >= 0; i-- {
				d.errorf(open[i].pos, "syntax error: missing '}' for this '{'")
			}
			return
		case tRBrace:
			if len(stmt) > 0 {
				d.errorf(stmt[0].pos, "syntax error: missing ';' after statement")
				stmt = stmt[:0]
			}
			if len(stack) == 1 {
				d.errorf(tok.pos, "syntax error: unexpected '}'")
				continue
			}
			stack = stack[:len(stack)-1]
			open = open[:len(open)-1]
		case tComment:
			comments = append(comments, tok.text)
		case tSemi, tLBrace:
			cur := stack[len(stack)-1]
			n := t.hierStatement(cur, stmt, tok, d)
			stmt = stmt[:0]
			if n != nil && len(comments) > 0 {
				t.saveExtra(n)
				x := n.extra()
				for _, c := range comments {
					if !containsString(x.comments, c) {
						x.comments = append(x.comments, c)
					}
				}
			}
			comments = comments[:0]
			if tok.kind == tLBrace {
				if len(stack) > maxDepth {
					d.errorf(tok.pos, "syntax error: statements nested deeper than %d levels", maxDepth)
					return
				}
				if n == nil {
					// Keep the structure balanced: parse the block into a
					// scratch node that is thrown away.
					n = &node{}
				}
				stack = append(stack, n)
				open = append(open, tok)
			}
		default:
			stmt = append(stmt, tok)
		}
	}
}

// hierStatement applies one hierarchical statement below cur and returns the
// node a following block belongs to (nil on error).
func (t *Tree) hierStatement(cur *node, stmt []token, end token, d *diagSink) *node {
	if len(stmt) == 0 {
		if end.kind == tLBrace {
			d.errorf(end.pos, "syntax error: '{' without a statement")
		} else {
			return nil // a lone ';' is harmless
		}
		return nil
	}
	inactive := false
	for len(stmt) > 0 && stmt[0].kind == tWord && strings.HasSuffix(stmt[0].text, ":") {
		switch stmt[0].text {
		case "inactive:":
			inactive = true
		case "active:", "replace:", "protect:":
		default:
			d.errorf(stmt[0].pos, "syntax error: unknown tag %q", truncate(stmt[0].text))
			return nil
		}
		stmt = stmt[1:]
	}
	if len(stmt) == 0 {
		d.errorf(end.pos, "syntax error: tag without a statement")
		return nil
	}
	t.touchHier()
	r := t.walk(cur, stmt, walkCreate, d)
	if !r.ok {
		return nil
	}
	n := r.last
	if end.kind == tLBrace {
		if n.sp != nil && n.sp.kind != kContainer || n != r.cur {
			d.errorf(stmt[0].pos, "syntax error: %s cannot have a '{' block", n.kw)
			return nil
		}
	}
	if n.sp != nil && n.sp.unique && n.sp.named {
		f := uint32(stmt[0].pos.file) + 1
		if !r.created && n.x != nil && n.x.hierFile == f {
			d.errorf(stmt[0].pos, "duplicate %s %s in %s (first defined at line %d)", n.kw, n.name, n.parent.path(), n.p.line)
		}
		t.saveExtra(n)
		n.extra().hierFile = f
	}
	if inactive {
		t.setInactiveUndoable(n, true)
	}
	return n
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// truncate shortens s for messages.
func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
