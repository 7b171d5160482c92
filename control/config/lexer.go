package config

// tokKind is the kind of a lexical token of either configuration form.
type tokKind uint8

const (
	tEOF     tokKind = iota
	tWord            // a bare word
	tString          // a double-quoted string (text holds the unquoted value)
	tLBrace          // {
	tRBrace          // }
	tLBrack          // [
	tRBrack          // ]
	tSemi            // ;
	tNewline         // end of line (only reported when the lexer is asked to)
	tBad             // a character that cannot start a token, or an unterminated string
	tComment         // a /* */ comment (only reported when the lexer is asked to)
)

// token is one lexical token; text is a substring of the input where
// possible, so lexing allocates only for strings with escapes.
type token struct {
	kind tokKind
	text string
	pos  pos
}

// lexer splits configuration text into tokens. Words are runs of characters
// other than white space and ;{}[]"#(); # starts a comment to the end of the
// line (this also swallows "## SECRET-DATA" trailers) and /* */ a block
// comment. Positions count lines and byte columns from 1.
type lexer struct {
	data     string
	off      int
	line     uint32
	lineOff  int // offset of the first byte of the current line
	file     uint16
	newlines bool // report tNewline tokens (set form)
	comments bool // report /* */ comments as tComment tokens (hierarchical form)
	errMsg   string
}

func newLexer(file uint16, data string, newlines bool) *lexer {
	return &lexer{data: data, line: 1, file: file, newlines: newlines}
}

func (l *lexer) here() pos {
	col := l.off - l.lineOff + 1
	if col > 0xffff {
		col = 0xffff
	}
	return pos{file: l.file, line: l.line, col: uint16(col)}
}

// notWord marks the bytes that end a word.
var notWord = func() (t [256]bool) {
	for _, c := range []byte(" \t\r\n\f\v;{}[]\"#()") {
		t[c] = true
	}
	return t
}()

func isWordByte(c byte) bool { return !notWord[c] }

// next returns the next token. Errors come back as tBad tokens whose text is
// a description (never the offending input, which might be a secret).
func (l *lexer) next() token {
	for l.off < len(l.data) {
		c := l.data[l.off]
		switch {
		case c == '\n':
			p := l.here()
			l.off++
			l.line++
			l.lineOff = l.off
			if l.newlines {
				return token{kind: tNewline, pos: p}
			}
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			l.off++
		case c == '#':
			for l.off < len(l.data) && l.data[l.off] != '\n' {
				l.off++
			}
		case c == '/' && l.off+1 < len(l.data) && l.data[l.off+1] == '*':
			p := l.here()
			l.off += 2
			start := l.off
			closed := false
			for l.off < len(l.data) {
				if l.data[l.off] == '*' && l.off+1 < len(l.data) && l.data[l.off+1] == '/' {
					l.off += 2
					closed = true
					break
				}
				if l.data[l.off] == '\n' {
					l.line++
					l.lineOff = l.off + 1
				}
				l.off++
			}
			if !closed {
				return token{kind: tBad, text: "unterminated /* comment", pos: p}
			}
			if l.comments {
				return token{kind: tComment, text: l.data[start : l.off-2], pos: p}
			}
		default:
			return l.lexToken()
		}
	}
	return token{kind: tEOF, pos: l.here()}
}

func (l *lexer) lexToken() token {
	p := l.here()
	c := l.data[l.off]
	single := func(k tokKind) token {
		l.off++
		return token{kind: k, text: l.data[l.off-1 : l.off], pos: p}
	}
	switch c {
	case '{':
		return single(tLBrace)
	case '}':
		return single(tRBrace)
	case '[':
		return single(tLBrack)
	case ']':
		return single(tRBrack)
	case ';':
		return single(tSemi)
	case '(', ')':
		l.off++
		return token{kind: tBad, text: "unexpected '" + string(c) + "'", pos: p}
	case '"':
		return l.lexString(p)
	}
	start, data := l.off, l.data
	i := start
	for i < len(data) && !notWord[data[i]] {
		i++
	}
	l.off = i
	return token{kind: tWord, text: data[start:i], pos: p}
}

// lexString reads a double-quoted string. \" and \\ are escapes; a newline
// inside quotes is an error.
func (l *lexer) lexString(p pos) token {
	l.off++ // opening quote
	start := l.off
	escaped := false
	for l.off < len(l.data) {
		c := l.data[l.off]
		switch c {
		case '"':
			text := l.data[start:l.off]
			l.off++
			if escaped {
				text = unescape(text)
			}
			return token{kind: tString, text: text, pos: p}
		case '\\':
			escaped = true
			l.off += 2
			continue
		case '\n':
			return token{kind: tBad, text: "newline inside a quoted string", pos: p}
		}
		l.off++
	}
	if l.off > len(l.data) {
		l.off = len(l.data)
	}
	return token{kind: tBad, text: "unterminated quoted string", pos: p}
}

func unescape(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b = append(b, s[i])
	}
	return string(b)
}

// quote returns s as a word if it can be one, and double-quoted otherwise.
func quote(s string) string {
	if s != "" && isPlainWord(s) {
		return s
	}
	b := make([]byte, 0, len(s)+2)
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return string(append(b, '"'))
}

func isPlainWord(s string) bool {
	if len(s) >= 2 && s[0] == '/' && s[1] == '*' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isWordByte(s[i]) {
			return false
		}
	}
	return true
}
