package dsn

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// maxLine is RFC 5322 §2.1.1's limit on a line, CRLF not counted. Longer
// lines are refused by some servers, so nothing in a report exceeds it.
const maxLine = 998

// foldWidth is where header fields are folded when they can be.
const foldWidth = 78

// interval formats d the way sendmail words its timeouts: "4 hours",
// "5 days", "1 day, 12 hours". Units that are zero are left out.
func interval(d time.Duration) string {
	d = d.Truncate(time.Second)
	if d <= 0 {
		return "0 seconds"
	}
	units := []struct {
		name string
		size time.Duration
	}{
		{"week", 7 * 24 * time.Hour},
		{"day", 24 * time.Hour},
		{"hour", time.Hour},
		{"minute", time.Minute},
		{"second", time.Second},
	}
	var parts []string
	for _, u := range units {
		n := d / u.size
		if n == 0 {
			continue
		}
		d -= n * u.size
		p := strconv.FormatInt(int64(n), 10) + " " + u.name
		if n != 1 {
			p += "s"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ")
}

// validStatus reports whether s is an RFC 3463 status code a report may
// carry: class 2, 4 or 5, then a subject and a detail of 1-3 digits.
func validStatus(s string) bool {
	f := strings.Split(s, ".")
	if len(f) != 3 || len(f[0]) != 1 || (f[0] != "2" && f[0] != "4" && f[0] != "5") {
		return false
	}
	for _, p := range f[1:] {
		if len(p) < 1 || len(p) > 3 {
			return false
		}
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return false
			}
		}
	}
	return true
}

// smtpCode returns the reply code a text starts with ("550 ...", "421-...",
// "250"), or 0 when it does not look like an SMTP reply.
func smtpCode(s string) int {
	if len(s) < 3 || s[0] < '2' || s[0] > '5' || s[1] < '0' || s[1] > '5' || s[2] < '0' || s[2] > '9' {
		return 0
	}
	if len(s) > 3 && s[3] != ' ' && s[3] != '-' {
		return 0
	}
	n, _ := strconv.Atoi(s[:3])
	return n
}

// statusFrom finds the status of a recipient that has none: the enhanced
// code of the reply when it carries one of the same class, else the reply
// code's class, else what the action implies.
func statusFrom(diag string, a Action) string {
	l := lines(diag)
	if len(l) > 0 {
		last := l[len(l)-1]
		if code := smtpCode(last); code != 0 {
			class := strconv.Itoa(code / 100)
			if len(last) > 4 {
				word, _, _ := strings.Cut(last[4:], " ")
				if validStatus(word) && word[:1] == class {
					return word
				}
			}
			if class != "3" {
				return class + ".0.0"
			}
		}
	}
	switch a {
	case Failed:
		return "5.0.0"
	case Delayed:
		return "4.0.0"
	}
	return "2.0.0"
}

// cleanToken keeps the characters a host name or queue ID may have, for
// use in the boundary and the Message-ID.
func cleanToken(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' {
			b.WriteByte(c)
		}
	}
	return strings.Trim(b.String(), ".")
}

// textLine makes s safe as one line of text or a header value: controls
// go (a TAB becomes a space), bytes that are not UTF-8 become '?'. UTF-8
// stays, for the addresses of RFC 6531 mail.
func textLine(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteByte('?')
		case r == '\t':
			b.WriteByte(' ')
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
		default:
			b.WriteString(s[:n])
		}
		s = s[n:]
	}
	return strings.TrimSpace(b.String())
}

// headerText is textLine for a header value.
func headerText(s string) string { return textLine(s) }

// lines splits a reply into its lines, each made safe by textLine, empty
// ones dropped. Any of CRLF, LF or CR ends a line.
func lines(s string) []string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = textLine(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// dsText makes s a US-ASCII report field value: controls go, anything
// beyond ASCII becomes '?'.
func dsText(s string) string {
	s = textLine(s)
	var b strings.Builder
	for _, r := range s {
		if r >= 0x80 {
			b.WriteByte('?')
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// xtextNonASCII makes an address or ENVID a US-ASCII report field value
// without losing it: controls go, and each byte beyond ASCII is written
// as "+HH", the xtext escape of RFC 3461 §4 in which ORCPT and ENVID
// travel over SMTP.
func xtextNonASCII(s string) string {
	s = textLine(s)
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x80 {
			fmt.Fprintf(&b, "+%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// has8bit reports whether s has a byte beyond ASCII.
func has8bit(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return true
		}
	}
	return false
}

// foldField formats "Name: value" CRLF-terminated, folded at spaces to keep
// lines near foldWidth. value must already be one line (see textLine).
// Runs of spaces collapse to one. A word too long for any line is broken
// with CRLF and a space, which adds a space to the value: only a value
// nobody can read (900 octets without a space) is changed so.
func foldField(name, value string) string {
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte(':')
	n := len(name) + 1 // length of the current line
	first := true
	for _, w := range strings.Fields(value) {
		if !first && n+1+len(w) > foldWidth {
			b.WriteString("\r\n")
			n = 0
		}
		first = false
		for n+1+len(w) > maxLine {
			cut := runeCut(w, maxLine-n-1)
			if cut == 0 {
				b.WriteString("\r\n")
				n = 0
				continue
			}
			b.WriteByte(' ')
			b.WriteString(w[:cut])
			b.WriteString("\r\n")
			n = 0
			w = w[cut:]
		}
		b.WriteByte(' ')
		b.WriteString(w)
		n += 1 + len(w)
	}
	b.WriteString("\r\n")
	return b.String()
}

// runeCut returns the largest i <= n that does not split a UTF-8 sequence
// of s, backing off at most 3 bytes (further back, s is not UTF-8 anyway).
func runeCut(s string, n int) int {
	if n >= len(s) {
		return len(s)
	}
	if n <= 0 {
		return 0
	}
	for i := n; i > n-4 && i > 0; i-- {
		if !utf8.RuneStart(s[i]) {
			continue
		}
		return i
	}
	return n
}

// crlfText turns LF-ended text into CRLF-ended text whose lines respect
// maxLine, with the same line repair as the original gets.
func crlfText(s string) string {
	var b strings.Builder
	lr := newLineReader(strings.NewReader(s))
	for {
		l, err := lr.next()
		if err != nil {
			break // a strings.Reader fails only at its end
		}
		b.Write(l)
		b.WriteString("\r\n")
	}
	return b.String()
}
