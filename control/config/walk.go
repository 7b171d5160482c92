package config

import (
	"strings"

	"github.com/bpfvpn/bpfvpn/control/config/secret"
)

// walkMode says what the path walker does with statements that do not exist.
type walkMode uint8

const (
	walkCreate walkMode = iota // create missing statements (set, hierarchical)
	walkLookup                 // only find (delete, activate, deactivate, insert)
)

// walkResult is where a walk ended.
type walkResult struct {
	last    *node // the last statement named by the words
	cur     *node // the innermost container the words reached
	created bool  // last was created by this walk
	ok      bool
	// delVals are the values named after the last leaf in lookup mode (delete
	// of single values from a list).
	delVals []word
}

// walk interprets words as a statement path below ctx: containers descend,
// leaves and flags stay at their container so that further words name
// siblings (`route P next-hop X preference 5`). From the first word the
// schema does not know, the remaining words become a chain of unknown
// statements (walkUnknown).
func (t *Tree) walk(ctx *node, ws []token, mode walkMode, d *diagSink) walkResult {
	return t.walkTrail(ctx, ws, mode, d, nil, 0)
}

// trailStep records that the first end words of a set line lead to the
// container n; consecutive set lines that share those words resume there.
type trailStep struct {
	end int
	n   *node
}

// walkTrail is walk that appends each container it descends into to trail,
// with word counts offset by base.
func (t *Tree) walkTrail(ctx *node, ws []token, mode walkMode, d *diagSink, trail *[]trailStep, base int) walkResult {
	res := walkResult{last: ctx, cur: ctx}
	cur := ctx
	i := 0
	for i < len(ws) {
		w := ws[i]
		if w.kind != tWord && w.kind != tString {
			d.errorf(w.pos, "syntax error: unexpected '%s'", w.text)
			return res
		}
		var sp *spec
		if cur.sp != nil {
			sp = cur.sp.lookup(w.text)
		}
		if sp == nil {
			return t.walkUnknown(cur, ws[i:], mode, d, res)
		}
		i++
		kw := sp.kw
		if kw == "" {
			kw = w.text
		}
		k := nodeKey{kw: kw}
		if sp.named {
			if i >= len(ws) || (ws[i].kind != tWord && ws[i].kind != tString) {
				d.errorf(w.pos, "syntax error: %s needs a name", kw)
				return res
			}
			k.name = ws[i].text
			i++
		}
		if sp.kw2 != "" {
			if i+1 >= len(ws) || ws[i].text != sp.kw2 || ws[i].kind != tWord {
				d.errorf(w.pos, "syntax error: %s %s needs %s NAME", kw, k.name, sp.kw2)
				return res
			}
			k.name2 = ws[i+1].text
			i += 2
		}
		var vals []word
		if sp.kind == kLeaf {
			var ok bool
			vals, i, ok = t.leafValues(sp, kw, w, ws, i, mode, d)
			if !ok {
				return res
			}
			if sp.secret && i < len(ws) {
				// Likely an unquoted secret with spaces: refuse it whole,
				// and never echo or keep any part of it.
				d.errorf(w.pos, "syntax error: unexpected words after the %s value (quote a secret that contains spaces)", kw)
				return res
			}
		}
		c := cur.find(k)
		created := false
		if c == nil {
			if mode == walkLookup {
				d.warnf(ws[0].pos, "statement not found: %s", tokenText(ws))
				return res
			}
			c = t.newNode()
			c.kw, c.name, c.sp, c.p = kw, k.name, sp, w.pos
			if k.name2 != "" {
				c.extra().name2 = k.name2
			}
			t.addChildUndoable(cur, c)
			created = true
		}
		if sp.kind == kLeaf {
			if mode == walkLookup {
				res.delVals = vals
			} else if sp.list {
				t.saveVals(c)
				c.appendValues(vals)
			} else if len(vals) > 0 {
				t.saveVals(c)
				c.vals = vals
				c.p = w.pos
			}
		}
		res.last, res.created = c, created
		if sp.kind == kContainer {
			cur = c
			res.cur = c
			if trail != nil {
				*trail = append(*trail, trailStep{end: base + i, n: c})
			}
		}
	}
	res.ok = true
	return res
}

// leafValues reads the value(s) of a leaf starting at ws[i].
func (t *Tree) leafValues(sp *spec, kw string, kwTok token, ws []token, i int, mode walkMode, d *diagSink) ([]word, int, bool) {
	if i >= len(ws) {
		if mode == walkLookup {
			return nil, i, true
		}
		d.errorf(kwTok.pos, "syntax error: %s needs a value", kw)
		return nil, i, false
	}
	if ws[i].kind == tLBrack {
		if !sp.list {
			d.errorf(ws[i].pos, "syntax error: %s takes a single value, not a list", kw)
			return nil, i, false
		}
		var vals []word
		j := i + 1
		for ; j < len(ws) && ws[j].kind != tRBrack; j++ {
			if ws[j].kind != tWord && ws[j].kind != tString {
				d.errorf(ws[j].pos, "syntax error: unexpected '%s' in list", ws[j].text)
				return nil, j, false
			}
			vals = append(vals, word{ws[j].text, ws[j].pos})
		}
		if j >= len(ws) {
			d.errorf(ws[i].pos, "syntax error: missing ']'")
			return nil, j, false
		}
		return vals, j + 1, true
	}
	if ws[i].kind != tWord && ws[i].kind != tString {
		d.errorf(ws[i].pos, "syntax error: %s needs a value", kw)
		return nil, i, false
	}
	v := word{ws[i].text, ws[i].pos}
	if sp.secret && mode == walkCreate && !secret.IsEncoded(v.s) {
		if strings.HasPrefix(v.s, secret.Prefix) {
			d.warnf(v.p, "%s starts with $9$ but is not a valid $9$ string; it is taken as the plain key", kw)
		}
		v.s = secret.Encode([]byte(v.s))
	}
	return t.oneWord(v), i + 1, true
}

// appendValues adds the values of a list leaf that it does not hold yet.
// Long lists keep a set of their values so that adding stays O(1).
func (n *node) appendValues(add []word) {
	if len(n.vals)+len(add) <= 64 && (n.x == nil || n.x.valSet == nil) {
		for _, a := range add {
			dup := false
			for _, h := range n.vals {
				if h.s == a.s {
					dup = true
					break
				}
			}
			if !dup {
				n.vals = append(n.vals, a)
			}
		}
		return
	}
	x := n.extra()
	if x.valSet == nil {
		x.valSet = make(map[string]struct{}, 2*(len(n.vals)+len(add)))
		for _, h := range n.vals {
			x.valSet[h.s] = struct{}{}
		}
	}
	for _, a := range add {
		if _, dup := x.valSet[a.s]; !dup {
			x.valSet[a.s] = struct{}{}
			n.vals = append(n.vals, a)
		}
	}
}

// walkUnknown keeps a statement the schema does not know as a chain of
// one-word nodes (`a b c` is a → b → c), so that statements sharing leading
// words share nodes in both forms and set-form display reads back to the
// same tree. List brackets are dropped.
func (t *Tree) walkUnknown(cur *node, ws []token, mode walkMode, d *diagSink, res walkResult) walkResult {
	n := cur
	for _, w := range ws {
		if w.kind != tWord && w.kind != tString {
			continue
		}
		c := n.find(nodeKey{kw: w.text})
		if c == nil {
			if mode == walkLookup {
				d.warnf(ws[0].pos, "statement not found: %s", strings.TrimSpace(cur.path()+" "+tokenText(ws)))
				return res
			}
			c = t.newNode()
			c.kw, c.p = w.text, w.pos
			t.addChildUndoable(n, c)
			res.created = true
		}
		n = c
	}
	res.last, res.cur, res.ok = n, n, true
	return res
}

// tokenText joins the words of toks for messages; it stops after a secret
// keyword so that a secret value is never repeated.
func tokenText(toks []token) string {
	var b strings.Builder
	for i, t := range toks {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(truncate(t.text))
		if t.text == "ascii-text" || t.text == "hexadecimal" {
			break
		}
	}
	return b.String()
}
