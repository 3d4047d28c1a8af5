package aliases

import (
	"bufio"
	"io"
	"strings"
)

// foldAt is the width past which Format moves the next target to a
// continuation line, so that what it writes stays readable.
const foldAt = 78

// Format writes m in the alias file format, one entry per alias in the
// order the names first appeared. Parse reads the output back to the same
// aliases (the statistics may differ: they count the text as written).
func (m *Map) Format(w io.Writer) error {
	if m == nil {
		return nil
	}
	bw := bufio.NewWriter(w)
	for _, name := range m.order {
		var b strings.Builder
		if plainName(name) {
			b.WriteString(name)
		} else {
			b.WriteString(quote(name))
		}
		b.WriteString(":")
		col := b.Len()
		for i, t := range m.entries[name].targets {
			s := formatTarget(t)
			switch {
			case i == 0:
				b.WriteString(" ")
			// A continuation line whose first non-blank byte is '#' would
			// be a comment, so such a target stays on the line before.
			case col+2+len(s) > foldAt && s[0] != '#':
				b.WriteString(",\n\t")
				col = 8
			default:
				b.WriteString(", ")
			}
			b.WriteString(s)
			col += 2 + len(s)
		}
		for _, line := range strings.Split(b.String(), "\n") {
			writeLine(bw, line)
		}
	}
	return bw.Flush()
}

// writeLine writes one line, cut with backslash continuations into pieces
// of at most MaxLine bytes so that Parse takes it back whatever its length.
func writeLine(bw *bufio.Writer, line string) {
	for len(line) > MaxLine {
		bw.WriteString(line[:MaxLine-1])
		bw.WriteString("\\\n")
		line = line[MaxLine-1:]
	}
	bw.WriteString(line)
	bw.WriteString("\n")
}

func formatTarget(t Target) string {
	switch t.Kind {
	case File:
		if plainValue(t.Value) {
			return t.Value
		}
		return quote(t.Value)
	case Pipe:
		return quote("|" + t.Value)
	case Include:
		if plainValue(t.Value) {
			return ":include:" + t.Value
		}
		return quote(":include:" + t.Value)
	}
	if t.NoAlias {
		return `\` + t.Value
	}
	return t.Value
}
