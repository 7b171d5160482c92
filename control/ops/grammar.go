package ops

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// option is a word accepted after a command in any order, at most once:
// a flag (detail), a keyword with a value (index N), or a free positional
// argument (an interface name).
type option struct {
	word       string
	help       string
	value      string // placeholder of the value ("number"), "" for flags
	positional bool   // matches any word that is not another option
	// valid, when set, accepts (nil) or rejects the word of a positional
	// option or the value of a keyword option; its error names the word.
	valid func(word string) error
	// alone: the option takes no other option with it (all).
	alone bool
}

// node is a keyword of the command tree. A node with run is a command; its
// options follow it. A node may not have both children and options.
type node struct {
	word     string
	aliases  []string
	help     string
	children []*node
	options  []option
	// needsOption: the command is incomplete without at least one option.
	needsOption bool
	run         runFunc
}

func (n *node) names() []string { return append([]string{n.word}, n.aliases...) }

// Invocation is a parsed command: the keyword path and its options.
type Invocation struct {
	Path    []string          // canonical keywords, e.g. show security ike security-associations
	Options map[string]string // option word → value ("" for flags)
	JSON    bool              // | display json (or --json)
	Pipes   []Pipe            // output filters in order
	cmd     *node
}

// Has reports whether the flag or option word was given.
func (inv Invocation) Has(word string) bool { _, ok := inv.Options[word]; return ok }

// Index returns the value of `index N`, or AllIndexes.
func (inv Invocation) Index() uint32 {
	v, ok := inv.Options["index"]
	if !ok {
		return AllIndexes
	}
	n, _ := strconv.ParseUint(v, 10, 32)
	return uint32(n)
}

// Completion is one possible word at a position, with its help text.
type Completion struct {
	Word string `json:"word"`
	Help string `json:"help"`
}

// SyntaxError is a command the grammar rejects. Its message repeats the
// command line with a caret under the offending word, the vendor's error
// line, and the words that would have been accepted.
type SyntaxError struct {
	Line        string       // the command as typed, words joined by spaces
	Pos         int          // byte offset of the caret in Line
	Message     string       // "syntax error, expecting <command>." or "'x' is ambiguous."
	Completions []Completion // the hint
}

func (e *SyntaxError) Error() string {
	var b strings.Builder
	b.WriteString(e.Line)
	b.WriteString("\n")
	b.WriteString(strings.Repeat(" ", e.Pos))
	b.WriteString("^\n")
	b.WriteString(e.Message)
	if len(e.Completions) > 0 {
		b.WriteString("\nPossible completions:")
		for _, c := range e.Completions {
			fmt.Fprintf(&b, "\n  %-20s %s", c.Word, c.Help)
		}
	}
	return b.String()
}

// match resolves word among candidate names with Junos abbreviation rules:
// an exact name wins, otherwise the word must be a prefix of exactly one.
func match[T any](word string, items []T, names func(T) []string) (hits []T) {
	for _, it := range items {
		for _, n := range names(it) {
			if n == word {
				return []T{it}
			}
		}
	}
	for _, it := range items {
		for _, n := range names(it) {
			if strings.HasPrefix(n, word) {
				hits = append(hits, it)
				break
			}
		}
	}
	return hits
}

// Parse resolves the words of a command (starting with show or clear) and
// its pipes. It does not run anything.
func Parse(words []string) (Invocation, error) {
	words = splitPipes(words)
	line, offsets := joinWords(words)
	cmdWords, pipeGroups := cutPipes(words)
	errAt := func(i int, msg string, comps []Completion) error {
		pos := len(line)
		if i < len(offsets) {
			pos = offsets[i]
		} else if len(line) > 0 {
			pos = len(line) + 1
		}
		return &SyntaxError{Line: line, Pos: pos, Message: msg, Completions: comps}
	}

	inv := Invocation{Options: map[string]string{}}
	cur := root
	i := 0
	for ; i < len(cmdWords) && cur.run == nil; i++ {
		hits := match(cmdWords[i], cur.children, (*node).names)
		switch len(hits) {
		case 0:
			return inv, errAt(i, "syntax error, expecting <command>.", nodeCompletions(cur.children))
		case 1:
			cur = hits[0]
			inv.Path = append(inv.Path, cur.word)
		default:
			return inv, errAt(i, fmt.Sprintf("'%s' is ambiguous.", cmdWords[i]), nodeCompletions(hits))
		}
	}
	if cur.run == nil {
		return inv, errAt(i, "syntax error, expecting <command>.", nodeCompletions(cur.children))
	}
	inv.cmd = cur
	for ; i < len(cmdWords); i++ {
		avail := remainingOptions(cur.options, inv.Options)
		hits := match(cmdWords[i], avail, func(o option) []string {
			if o.positional {
				return nil
			}
			return []string{o.word}
		})
		if len(hits) == 0 {
			if p, ok := positional(avail); ok && (p.valid == nil || p.valid(cmdWords[i]) == nil) {
				inv.Options[p.word] = cmdWords[i]
				continue
			}
		}
		switch {
		case len(hits) == 0:
			return inv, errAt(i, "syntax error.", optionCompletions(avail))
		case len(hits) > 1:
			return inv, errAt(i, fmt.Sprintf("'%s' is ambiguous.", cmdWords[i]), optionCompletions(hits))
		}
		o := hits[0]
		if o.value == "" {
			inv.Options[o.word] = ""
			continue
		}
		i++
		if i >= len(cmdWords) {
			return inv, errAt(i, fmt.Sprintf("syntax error, expecting <%s>.", o.value), nil)
		}
		if o.valid != nil {
			if err := o.valid(cmdWords[i]); err != nil {
				return inv, errAt(i, fmt.Sprintf("syntax error, expecting <%s>: %v.", o.value, err), nil)
			}
		}
		inv.Options[o.word] = cmdWords[i]
	}
	if cur.needsOption && len(inv.Options) == 0 {
		return inv, errAt(len(cmdWords), "syntax error, expecting <command>.", optionCompletions(cur.options))
	}
	base := len(cmdWords)
	for _, g := range pipeGroups {
		base++ // the "|" word
		p, err := parsePipe(g, func(j int, msg string, comps []Completion) error {
			return errAt(base+j, msg, comps)
		})
		if err != nil {
			return inv, err
		}
		base += len(g)
		switch p.Kind {
		case PipeDisplayJSON:
			inv.JSON = true
		case PipeNoMore:
		default:
			inv.Pipes = append(inv.Pipes, p)
		}
	}
	return inv, nil
}

// remainingOptions are the options that may still follow the used ones:
// none after an option that stands alone, and those only first.
func remainingOptions(all []option, used map[string]string) []option {
	for _, o := range all {
		if _, ok := used[o.word]; ok && o.alone {
			return nil
		}
	}
	var out []option
	for _, o := range all {
		if _, ok := used[o.word]; !ok && !(o.alone && len(used) > 0) {
			out = append(out, o)
		}
	}
	return out
}

func positional(opts []option) (option, bool) {
	for _, o := range opts {
		if o.positional {
			return o, true
		}
	}
	return option{}, false
}

func nodeCompletions(nodes []*node) []Completion {
	out := make([]Completion, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, Completion{Word: n.word, Help: n.help})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Word < out[j].Word })
	return out
}

func optionCompletions(opts []option) []Completion {
	out := make([]Completion, 0, len(opts))
	for _, o := range opts {
		w := o.word
		if o.positional {
			w = "<" + o.word + ">"
		}
		out = append(out, Completion{Word: w, Help: o.help})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Word < out[j].Word })
	return out
}

// splitPipes separates a leading "|" glued to a word ("|display").
func splitPipes(words []string) []string {
	out := make([]string, 0, len(words))
	for _, w := range words {
		if rest, ok := strings.CutPrefix(w, "|"); ok && rest != "" {
			out = append(out, "|", rest)
			continue
		}
		out = append(out, w)
	}
	return out
}

func cutPipes(words []string) (cmd []string, pipes [][]string) {
	i := slices.Index(words, "|")
	if i < 0 {
		return words, nil
	}
	var cur []string
	for _, w := range words[i+1:] {
		if w == "|" {
			pipes = append(pipes, cur)
			cur = nil
			continue
		}
		cur = append(cur, w)
	}
	return words[:i], append(pipes, cur)
}

func joinWords(words []string) (string, []int) {
	var b strings.Builder
	offsets := make([]int, len(words))
	for i, w := range words {
		if i > 0 {
			b.WriteByte(' ')
		}
		offsets[i] = b.Len()
		b.WriteString(w)
	}
	return b.String(), offsets
}

// Complete returns the words that may follow words (the last of which may
// be a partial word), for shell completion.
func Complete(words []string) []Completion {
	if len(words) == 0 {
		return nodeCompletions(root.children)
	}
	prefix := words[len(words)-1]
	done := words[:len(words)-1]
	cur := root
	i := 0
	for ; i < len(done) && cur.run == nil; i++ {
		hits := match(done[i], cur.children, (*node).names)
		if len(hits) != 1 {
			return nil
		}
		cur = hits[0]
	}
	var comps []Completion
	if cur.run == nil {
		comps = nodeCompletions(cur.children)
	} else {
		used := map[string]string{}
		for ; i < len(done); i++ {
			hits := match(done[i], remainingOptions(cur.options, used), func(o option) []string {
				if o.positional {
					return nil
				}
				return []string{o.word}
			})
			if len(hits) != 1 {
				if p, ok := positional(remainingOptions(cur.options, used)); ok {
					used[p.word] = done[i]
				}
				continue
			}
			used[hits[0].word] = ""
			if hits[0].value != "" {
				i++ // skip the value
			}
		}
		comps = optionCompletions(remainingOptions(cur.options, used))
	}
	var out []Completion
	for _, c := range comps {
		// Placeholders (<peer-address>) are hints, not words to complete.
		if strings.HasPrefix(c.Word, prefix) && !strings.HasPrefix(c.Word, "<") {
			out = append(out, c)
		}
	}
	return out
}
