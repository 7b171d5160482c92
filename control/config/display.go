package config

import (
	"bufio"
	"io"
	"strings"
)

// secretTrailer follows every line that holds a secret, as on the vendor CLI.
const secretTrailer = " ## SECRET-DATA"

// WriteHierarchical writes the tree in canonical hierarchical form: four
// spaces per level, leaves ending in ';', lists as [ a b ], inactive
// statements tagged `inactive:`, secrets in $9$ form with a SECRET-DATA
// trailer. Parsing the output gives the same tree.
func (t *Tree) WriteHierarchical(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	var line []byte
	for _, n := range t.root.kids {
		line = writeHier(bw, n, 0, line, "")
	}
	return bw.Flush()
}

// String returns the hierarchical form.
func (t *Tree) String() string {
	var b strings.Builder
	_ = t.WriteHierarchical(&b)
	return b.String()
}

func appendIndent(b []byte, depth int) []byte {
	for i := 0; i < depth; i++ {
		b = append(b, "    "...)
	}
	return b
}

// appendHead appends the keyword and identifiers of n.
func appendHead(b []byte, n *node) []byte {
	b = appendKeyword(b, n.kw)
	if n.sp == nil {
		return b
	}
	if n.sp.named {
		b = append(b, ' ')
		b = append(b, quote(n.name)...)
	}
	if n.sp.kw2 != "" {
		b = append(b, ' ')
		b = append(b, n.sp.kw2...)
		b = append(b, ' ')
		b = append(b, quote(n.name2())...)
	}
	return b
}

// appendLeafValue appends the value part of a leaf: ` v` or ` [ a b ]`.
func appendLeafValue(b []byte, n *node) []byte {
	if n.sp.list && len(n.vals) != 1 {
		b = append(b, " ["...)
		for _, v := range n.vals {
			b = append(b, ' ')
			b = append(b, quote(v.s)...)
		}
		return append(b, " ]"...)
	}
	for _, v := range n.vals {
		b = append(b, ' ')
		if n.sp.secret {
			b = append(b, '"')
			b = append(b, v.s...) // $9$ strings need no escaping
			b = append(b, '"')
			continue
		}
		b = append(b, quote(v.s)...)
	}
	return b
}

// compactChild returns the only child of a compact container when n is
// written on one line (`route P next-hop X;`), and nil otherwise.
func compactChild(n *node) *node {
	if n.sp == nil || !n.sp.compact || len(n.kids) != 1 {
		return nil
	}
	k := n.kids[0]
	if k.inactive() || k.sp == nil || len(k.kids) > 0 || k.sp.kind == kContainer && k.sp.named || k.x != nil && len(k.x.comments) > 0 {
		return nil
	}
	return k
}

// writeBlock ends the line in b with " {", writes n's children one level
// deeper and the closing brace at depth; it returns the buffer for reuse.
func writeBlock(w *bufio.Writer, n *node, depth int, b []byte) []byte {
	b = append(b, " {\n"...)
	_, _ = w.Write(b)
	for _, k := range n.kids {
		b = writeHier(w, k, depth+1, b, "")
	}
	b = appendIndent(b[:0], depth)
	b = append(b, "}\n"...)
	_, _ = w.Write(b)
	return b
}

// writeHier writes n at depth; prefix holds the keywords of inline parents
// (`family `) that are written on the child's line.
func writeHier(w *bufio.Writer, n *node, depth int, b []byte, prefix string) []byte {
	if n.x != nil {
		for _, c := range n.x.comments {
			b = appendIndent(b[:0], depth)
			b = append(b, "/*"...)
			b = append(b, c...)
			b = append(b, "*/\n"...)
			_, _ = w.Write(b)
		}
	}
	if n.sp != nil && n.sp.inline && !n.inactive() && len(n.kids) > 0 && (n.x == nil || len(n.x.comments) == 0) {
		for _, k := range n.kids {
			b = writeHier(w, k, depth, b, prefix+n.kw+" ")
		}
		return b
	}
	b = appendIndent(b[:0], depth)
	if n.sp == nil {
		// An unknown chain a → b → c is written `a b c`; the chain stops
		// where a node branches, carries comments, or is inactive (an
		// inactive last node takes the tag, which reads back onto it).
		last := n
		for !last.inactive() && len(last.kids) == 1 {
			k := last.kids[0]
			if k.sp != nil || (k.x != nil && len(k.x.comments) > 0) || (k.inactive() && len(k.kids) > 0) {
				break
			}
			last = k
		}
		if n.inactive() || last.inactive() {
			b = append(b, "inactive: "...)
		}
		b = append(b, prefix...)
		for x := n; ; x = x.kids[0] {
			if x != n {
				b = append(b, ' ')
			}
			b = appendKeyword(b, x.kw)
			if x == last {
				break
			}
		}
		n = last
		if len(n.kids) == 0 {
			b = append(b, ";\n"...)
			_, _ = w.Write(b)
			return b
		}
		return writeBlock(w, n, depth, b)
	}
	if n.inactive() {
		b = append(b, "inactive: "...)
	}
	b = append(b, prefix...)
	b = appendHead(b, n)
	secretLine := false
	switch {
	case n.sp != nil && n.sp.kind == kLeaf:
		b = appendLeafValue(b, n)
		secretLine = n.sp.secret
	case len(n.kids) == 0:
	case compactChild(n) != nil:
		k := compactChild(n)
		b = append(b, ' ')
		b = appendHead(b, k)
		if k.sp.kind == kLeaf {
			b = appendLeafValue(b, k)
			secretLine = k.sp.secret
		}
	default:
		return writeBlock(w, n, depth, b)
	}
	b = append(b, ';')
	if secretLine {
		b = append(b, secretTrailer...)
	} else if n.dflt() {
		b = append(b, " ## default"...)
	} else if n.x != nil && n.x.note != "" {
		b = append(b, " ## "...)
		b = append(b, n.x.note...)
	}
	b = append(b, '\n')
	_, _ = w.Write(b)
	return b
}

// WriteSet writes the tree as set commands, one statement per line, in tree
// order; inactive statements are followed by a deactivate line. Parsing the
// output gives the same tree (unknown hierarchical containers come back as
// flat unknown statements).
func (t *Tree) WriteSet(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	path := make([]byte, 0, 256)
	var line []byte
	for _, n := range t.root.kids {
		line = writeSet(bw, n, path, line)
	}
	return bw.Flush()
}

func writeSet(w *bufio.Writer, n *node, path, b []byte) []byte {
	if len(path) > 0 {
		path = append(path, ' ')
	}
	path = appendHead(path, n)
	emit := func(extra []byte, secretLine bool) {
		b = append(b[:0], "set "...)
		b = append(b, path...)
		b = append(b, extra...)
		if secretLine {
			b = append(b, secretTrailer...)
		}
		b = append(b, '\n')
		_, _ = w.Write(b)
	}
	switch {
	case n.sp != nil && n.sp.kind == kLeaf:
		if n.sp.list {
			for _, v := range n.vals {
				emit(append([]byte{' '}, quote(v.s)...), false)
			}
		} else {
			emit(appendLeafValue(nil, n), n.sp.secret)
		}
	case len(n.kids) == 0:
		emit(nil, false)
	default:
		for _, k := range n.kids {
			b = writeSet(w, k, path, b)
		}
	}
	if n.inactive() {
		b = append(b[:0], "deactivate "...)
		b = append(b, path...)
		b = append(b, '\n')
		_, _ = w.Write(b)
	}
	return b
}

// appendKeyword appends a statement keyword, quoted when it would not read
// back as the same keyword (a word ending in ':' would read as a tag).
func appendKeyword(b []byte, kw string) []byte {
	if len(kw) > 0 && kw[len(kw)-1] == ':' {
		return append(b, `"`+kw+`"`...)
	}
	return append(b, quote(kw)...)
}
