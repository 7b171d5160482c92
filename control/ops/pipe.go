package ops

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// PipeKind is an output filter after "|".
type PipeKind int

const (
	PipeDisplayJSON PipeKind = iota // | display json
	PipeNoMore                      // | no-more (output is never paged)
	PipeMatch                       // | match REGEX
	PipeExcept                      // | except REGEX
	PipeCount                       // | count
	PipeLast                        // | last N
)

// Pipe is one parsed output filter.
type Pipe struct {
	Kind    PipeKind
	Pattern *regexp.Regexp // match, except
	N       int            // last
}

type pipeSpec struct {
	word, help, value string
	kind              PipeKind
	sub               []pipeSpec
}

var pipeSpecs = []pipeSpec{
	{word: "count", help: "Count occurrences", kind: PipeCount},
	{word: "display", help: "Show additional kinds of information", sub: []pipeSpec{
		{word: "json", help: "Show output as JSON", kind: PipeDisplayJSON},
	}},
	{word: "except", help: "Show only text that does not match a pattern", value: "pattern", kind: PipeExcept},
	{word: "last", help: "Display end of output only", value: "number", kind: PipeLast},
	{word: "match", help: "Show only text that matches a pattern", value: "pattern", kind: PipeMatch},
	{word: "no-more", help: "Don't paginate output", kind: PipeNoMore},
}

func pipeCompletions(specs []pipeSpec) []Completion {
	out := make([]Completion, 0, len(specs))
	for _, s := range specs {
		out = append(out, Completion{Word: s.word, Help: s.help})
	}
	return out
}

// parsePipe parses the words of one pipe segment; errAt reports an error at
// word j of the segment.
func parsePipe(words []string, errAt func(j int, msg string, comps []Completion) error) (Pipe, error) {
	specs := pipeSpecs
	for j := 0; ; j++ {
		if j >= len(words) {
			return Pipe{}, errAt(j, "syntax error, expecting <command>.", pipeCompletions(specs))
		}
		hits := match(words[j], specs, func(s pipeSpec) []string { return []string{s.word} })
		switch {
		case len(hits) == 0:
			return Pipe{}, errAt(j, "syntax error, expecting <command>.", pipeCompletions(specs))
		case len(hits) > 1:
			return Pipe{}, errAt(j, fmt.Sprintf("'%s' is ambiguous.", words[j]), pipeCompletions(hits))
		}
		s := hits[0]
		if s.sub != nil {
			specs = s.sub
			continue
		}
		p := Pipe{Kind: s.kind}
		rest := words[j+1:]
		if s.value == "" {
			if len(rest) > 0 {
				return Pipe{}, errAt(j+1, "syntax error.", nil)
			}
			return p, nil
		}
		if len(rest) == 0 {
			return Pipe{}, errAt(j+1, fmt.Sprintf("syntax error, expecting <%s>.", s.value), nil)
		}
		arg := strings.Join(rest, " ")
		switch s.value {
		case "number":
			n, err := strconv.Atoi(arg)
			if err != nil || n < 1 || len(rest) > 1 {
				return Pipe{}, errAt(j+1, "syntax error, expecting <number>.", nil)
			}
			p.N = n
		case "pattern":
			re, err := regexp.Compile(arg)
			if err != nil {
				return Pipe{}, errAt(j+1, "syntax error, expecting <pattern>.", nil)
			}
			p.Pattern = re
		}
		return p, nil
	}
}

// apply runs the filter over the lines of out.
func (p Pipe) apply(out string) string {
	lines := strings.SplitAfter(out, "\n")
	if n := len(lines); n > 0 && lines[n-1] == "" {
		lines = lines[:n-1]
	}
	var b strings.Builder
	switch p.Kind {
	case PipeMatch, PipeExcept:
		for _, l := range lines {
			if p.Pattern.MatchString(strings.TrimSuffix(l, "\n")) == (p.Kind == PipeMatch) {
				b.WriteString(l)
			}
		}
	case PipeCount:
		fmt.Fprintf(&b, "Count: %d lines\n", len(lines))
	case PipeLast:
		if len(lines) > p.N {
			lines = lines[len(lines)-p.N:]
		}
		for _, l := range lines {
			b.WriteString(l)
		}
	default:
		return out
	}
	return b.String()
}
