package config

import (
	"fmt"
	"sort"
	"strings"
)

// Pos is a position in a configuration file. Line and Col count from 1; Col
// counts bytes. The zero Pos means "no position" (for example a default).
type Pos struct {
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	Col  int    `json:"col,omitempty"`
}

// IsValid reports whether p names a place in a file.
func (p Pos) IsValid() bool { return p.Line > 0 }

// String formats p as FILE:LINE:COL.
func (p Pos) String() string {
	if !p.IsValid() {
		if p.File != "" {
			return p.File
		}
		return "-"
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Severity says whether a Diagnostic prevents the configuration from being used.
type Severity uint8

const (
	// SeverityError makes the configuration unusable: nothing is applied.
	SeverityError Severity = iota
	// SeverityWarning is reported but does not prevent a commit.
	SeverityWarning
)

// Diagnostic is one problem found in a configuration: d.File, d.Line and
// d.Col come from the embedded Pos. Messages never contain secret values.
type Diagnostic struct {
	Pos      `json:"pos"`
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
}

// String formats d as FILE:LINE:COL: message (warnings say "warning: ").
func (d Diagnostic) String() string {
	if d.Severity == SeverityWarning {
		return d.Pos.String() + ": warning: " + d.Message
	}
	return d.Pos.String() + ": " + d.Message
}

// Diagnostics is every error and warning of one parse or validation run, in
// the order they were found.
type Diagnostics []Diagnostic

// Errors returns the diagnostics of severity error.
func (ds Diagnostics) Errors() Diagnostics { return ds.filter(SeverityError) }

// Warnings returns the diagnostics of severity warning.
func (ds Diagnostics) Warnings() Diagnostics { return ds.filter(SeverityWarning) }

// HasErrors reports whether any diagnostic is an error.
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == SeverityError {
			return true
		}
	}
	return false
}

func (ds Diagnostics) filter(s Severity) Diagnostics {
	var out Diagnostics
	for _, d := range ds {
		if d.Severity == s {
			out = append(out, d)
		}
	}
	return out
}

// String returns one diagnostic per line.
func (ds Diagnostics) String() string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// Err returns nil when ds has no errors, and otherwise an error whose text is
// every error diagnostic, one per line.
func (ds Diagnostics) Err() error {
	errs := ds.Errors()
	if len(errs) == 0 {
		return nil
	}
	return &DiagnosticsError{Diagnostics: errs}
}

// DiagnosticsError is the error form of a non-empty list of error diagnostics.
type DiagnosticsError struct{ Diagnostics Diagnostics }

func (e *DiagnosticsError) Error() string {
	return strings.TrimSuffix(e.Diagnostics.String(), "\n")
}

// diagSink collects diagnostics; positions are resolved from the tree's files.
type diagSink struct {
	files []string
	list  Diagnostics
	// limit, when not 0, is the length of list at which parsing gives up.
	limit   int
	stopped bool
}

// full reports (once, with a diagnostic) that the limit is reached.
func (s *diagSink) full() bool {
	if s.limit == 0 || len(s.list) < s.limit {
		return false
	}
	if !s.stopped {
		s.stopped = true
		last := s.list[len(s.list)-1]
		s.list = append(s.list, Diagnostic{Pos: last.Pos, Severity: SeverityError, Message: "too many syntax errors; the rest of the file is not read"})
	}
	return true
}

func (s *diagSink) pos(p pos) Pos {
	if p.line == 0 {
		if int(p.file) < len(s.files) && len(s.files) > 0 {
			return Pos{File: s.files[p.file]}
		}
		return Pos{}
	}
	name := ""
	if int(p.file) < len(s.files) {
		name = s.files[p.file]
	}
	return Pos{File: name, Line: int(p.line), Col: int(p.col)}
}

func (s *diagSink) errorf(p pos, format string, args ...any) {
	s.list = append(s.list, Diagnostic{Pos: s.pos(p), Severity: SeverityError, Message: fmt.Sprintf(format, args...)})
}

func (s *diagSink) warnf(p pos, format string, args ...any) {
	s.list = append(s.list, Diagnostic{Pos: s.pos(p), Severity: SeverityWarning, Message: fmt.Sprintf(format, args...)})
}

// pos is the compact position stored in tree nodes: an index into the tree's
// file table, line and column.
type pos struct {
	line uint32
	col  uint16 // clamped at 65535
	file uint16
}

func (s *diagSink) errorAt(p Pos, format string, args ...any) {
	s.list = append(s.list, Diagnostic{Pos: p, Severity: SeverityError, Message: fmt.Sprintf(format, args...)})
}

func (s *diagSink) warnAt(p Pos, format string, args ...any) {
	s.list = append(s.list, Diagnostic{Pos: p, Severity: SeverityWarning, Message: fmt.Sprintf(format, args...)})
}

// Sort orders ds by file (in the order of files; unknown names last), line
// and column, keeping the order of diagnostics at the same place.
func (ds Diagnostics) Sort(files []string) {
	rank := make(map[string]int, len(files))
	for i, f := range files {
		if _, ok := rank[f]; !ok {
			rank[f] = i
		}
	}
	r := func(f string) int {
		if i, ok := rank[f]; ok {
			return i
		}
		return len(files)
	}
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i].Pos, ds[j].Pos
		if ra, rb := r(a.File), r(b.File); ra != rb {
			return ra < rb
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}
