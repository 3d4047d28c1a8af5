package envelope

import (
	"strings"
)

// Mailbox is one entry of a header address list.
type Mailbox struct {
	Name string // display name as written (unquoted), may be ""
	Addr string // the address inside <>, or the bare address
}

// ParseList splits a header field value (unfolded) or a sendmail argument
// into its addresses: commas separate entries except inside quotes, angle
// brackets and comments; "Name <addr>" yields addr; comments are dropped;
// a group "name: a, b;" yields its members. Entries that come out empty
// are skipped. The addresses are not validated: see CheckMailbox.
func ParseList(v string) []Mailbox {
	var out []Mailbox
	var cur, name strings.Builder
	var angle strings.Builder
	inAngle, sawAngle := false, false
	flush := func() {
		var m Mailbox
		if sawAngle {
			m.Addr = strings.TrimSpace(angle.String())
			m.Name = strings.TrimSpace(name.String())
		} else {
			m.Addr = strings.TrimSpace(cur.String())
		}
		m.Name = unquote(m.Name)
		if m.Addr != "" {
			out = append(out, m)
		}
		cur.Reset()
		name.Reset()
		angle.Reset()
		inAngle, sawAngle = false, false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '"':
			end := quotedEnd(v, i)
			if end < 0 {
				end = len(v) - 1
			}
			q := v[i : end+1]
			switch {
			case inAngle:
				angle.WriteString(q)
			case sawAngle:
			default:
				cur.WriteString(q)
				name.WriteString(q)
			}
			i = end
		case c == '(' && !inAngle:
			depth := 0
			for ; i < len(v); i++ {
				if v[i] == '\\' {
					i++
					continue
				}
				if v[i] == '(' {
					depth++
				} else if v[i] == ')' {
					depth--
					if depth == 0 {
						break
					}
				}
			}
		case c == '<' && !inAngle:
			inAngle, sawAngle = true, true
			angle.Reset()
		case c == '>' && inAngle:
			inAngle = false
		case inAngle:
			angle.WriteByte(c)
		case c == ',' || c == ';':
			flush()
		case c == ':' && !sawAngle && !strings.Contains(cur.String(), "@"):
			// A group's display name ends here; its members follow.
			cur.Reset()
			name.Reset()
		default:
			if !sawAngle {
				cur.WriteByte(c)
				name.WriteByte(c)
			}
		}
	}
	flush()
	return out
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
		s = strings.ReplaceAll(s, `\"`, `"`)
		s = strings.ReplaceAll(s, `\\`, `\`)
	}
	return s
}
