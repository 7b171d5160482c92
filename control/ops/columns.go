package ops

import "strings"

// columns lays out one line of a table whose fields start at fixed tab stops,
// the way Junos prints its tables: each field starts at its stop, or one
// space after the previous field when that one overflowed. Trailing blanks
// are trimmed.
func columns(stops []int, fields ...string) string {
	var b strings.Builder
	for i, f := range fields {
		if i > 0 {
			pad := 1
			if i < len(stops) && stops[i]-b.Len() > pad {
				pad = stops[i] - b.Len()
			}
			if f == "" && allEmpty(fields[i:]) {
				break
			}
			b.WriteString(strings.Repeat(" ", pad))
		}
		b.WriteString(f)
	}
	return strings.TrimRight(b.String(), " ")
}

func allEmpty(fields []string) bool {
	for _, f := range fields {
		if f != "" {
			return false
		}
	}
	return true
}
