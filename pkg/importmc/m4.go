package importmc

import (
	"strings"
	"unicode/utf8"
)

// call is one macro call (or bare macro word) at the top level of the file.
type call struct {
	name    string
	args    []string // one level of quotes removed; nil for a bare word
	paren   bool     // written with parentheses
	line    int      // line of the macro's name
	discard bool     // inside divert(-1): m4 throws the text around it away
}

// String is the call in canonical form for messages and comments:
// every argument quoted, on one line, shortened if long.
func (c call) String() string {
	if !c.paren {
		return c.name
	}
	var b strings.Builder
	b.WriteString(c.name)
	b.WriteByte('(')
	for i, a := range c.args {
		if i > 0 {
			b.WriteString(", ")
		}
		if a = oneLine(a); a != "" {
			b.WriteString("`" + a + "'")
		}
	}
	b.WriteByte(')')
	return shorten(b.String(), 200)
}

// arg returns argument i with blanks trimmed, "" if there is none.
func (c call) arg(i int) string {
	if i < len(c.args) {
		return strings.TrimSpace(c.args[i])
	}
	return ""
}

// oneLine collapses runs of white space (newlines included) into one
// space and replaces other control characters, so that text fits on one
// line of a message or a TOML comment.
func oneLine(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	space := false
	for _, r := range strings.TrimSpace(s) {
		switch {
		case r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f' || r == '\v':
			space = true
			continue
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029':
			r = '?'
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// shorten cuts s to at most n runes, marking the cut.
func shorten(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-3]) + "..."
}

func isNameStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isNameChar(c byte) bool { return isNameStart(c) || c >= '0' && c <= '9' }

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v' }

// sections are bare macros after which text is raw sendmail.cf content.
var sections = map[string]string{
	"LOCAL_CONFIG":       "raw sendmail.cf configuration lines",
	"LOCAL_RULESETS":     "raw sendmail.cf rule sets",
	"LOCAL_NET_CONFIG":   "raw sendmail.cf rules",
	"LOCAL_RULE_0":       "raw sendmail.cf rules",
	"LOCAL_RULE_1":       "raw sendmail.cf rules",
	"LOCAL_RULE_2":       "raw sendmail.cf rules",
	"LOCAL_RULE_3":       "raw sendmail.cf rules",
	"LOCAL_SRV_FEATURES": "raw sendmail.cf rules",
	"LOCAL_TRY_TLS":      "raw sendmail.cf rules",
	"LOCAL_TLS_CLIENT":   "raw sendmail.cf rules",
	"LOCAL_TLS_SERVER":   "raw sendmail.cf rules",
	"LOCAL_TLS_RCPT":     "raw sendmail.cf rules",
	"LOCAL_STARTTLS":     "raw sendmail.cf rules",
	"LOCAL_CHECK_RELAY":  "raw sendmail.cf rules",
	"MAILER_DEFINITIONS": "raw sendmail.cf mailer definitions",
	"SITECONFIG":         "UUCP site configuration",
}

// m4Builtins are m4's own macros; import-mc evaluates only define,
// undefine, divert, dnl and (by not reading it) include.
var m4Builtins = map[string]bool{
	"changecom": true, "changequote": true, "changeword": true, "debugfile": true,
	"debugmode": true, "decr": true, "defn": true, "divnum": true, "dumpdef": true,
	"errprint": true, "esyscmd": true, "eval": true, "format": true, "ifdef": true,
	"ifelse": true, "incr": true, "index": true, "indir": true, "builtin": true,
	"len": true, "m4exit": true, "m4wrap": true, "maketemp": true, "mkstemp": true,
	"patsubst": true, "popdef": true, "pushdef": true, "regexp": true, "shift": true,
	"substr": true, "syscmd": true, "sysval": true, "traceoff": true, "traceon": true,
	"translit": true, "undivert": true, "__file__": true, "__line__": true,
}

// topMacros are the macros a file's lines begin with. One of them called
// inside another macro's arguments on a later line almost always means a
// missing ')' or quote above: the parser reports it there rather than
// swallowing the rest of the file, as m4 would.
var topMacros = map[string]bool{
	"define": true, "undefine": true, "include": true, "sinclude": true,
	"FEATURE": true, "DAEMON_OPTIONS": true, "CLIENT_OPTIONS": true,
	"INPUT_MAIL_FILTER": true, "MAIL_FILTER": true, "MAILER": true,
	"OSTYPE": true, "DOMAIN": true, "VERSIONID": true, "MASQUERADE_AS": true,
	"MASQUERADE_DOMAIN": true, "EXPOSED_USER": true, "LOCAL_DOMAIN": true,
	"RELAY_DOMAIN": true, "RELAY_DOMAIN_FILE": true,
}

// builtinValues are the cf.m4 macros that .mc files use in paths, with
// the values they have on Debian (and with _USE_ETC_MAIL_ elsewhere).
var builtinValues = map[string]string{
	"MAIL_SETTINGS_DIR": "/etc/mail/",
	"DATABASE_MAP_TYPE": "hash",
}

// expand rescans s as m4 rescans a macro's value when it is used: one level
// of quotes is removed, and a name that lookup knows (not followed by '(')
// is replaced by its value, itself rescanned. It fails on nesting deeper
// than 8 or a result longer than 64 KiB (a definition that refers to
// itself).
func expand(s string, lookup func(string) (string, bool)) (string, bool) {
	var b strings.Builder
	ok := expandInto(&b, s, lookup, 0)
	return b.String(), ok
}

func expandInto(b *strings.Builder, s string, lookup func(string) (string, bool), depth int) bool {
	if depth > 8 {
		return false
	}
	for i := 0; i < len(s); {
		if b.Len() > 1<<16 {
			return false
		}
		c := s[i]
		switch {
		case c == '`':
			j, d := i+1, 1
			for ; j < len(s); j++ {
				if s[j] == '`' {
					d++
				} else if s[j] == '\'' {
					if d--; d == 0 {
						break
					}
				}
			}
			if j >= len(s) {
				b.WriteString(s[i:])
				return true
			}
			b.WriteString(s[i+1 : j])
			i = j + 1
		case isNameStart(c):
			j := i
			for j < len(s) && isNameChar(s[j]) {
				j++
			}
			w := s[i:j]
			if v, ok := lookup(w); ok && (j >= len(s) || s[j] != '(') {
				if !expandInto(b, v, lookup, depth+1) {
					return false
				}
			} else {
				b.WriteString(w)
			}
			i = j
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.Len() <= 1<<16
}

// parser reads the m4 subset of a .mc file into calls, reporting syntax
// errors and text that is not inside a macro call.
type parser struct {
	src     []byte
	pos     int
	line    int
	file    string
	calls   []call
	items   []Item
	discard bool              // after divert(-1)
	defs    map[string]string // define()d names, for unquoted uses in arguments
	used    map[string]bool   // defined names that were substituted somewhere

	raw     []byte // text of the current line outside macro calls
	rawLine int

	section     string // open LOCAL_CONFIG-like section
	sectionLine int
	sectionItem int // index in items of the section's item; -1 before its first text
}

func parse(file string, src []byte) *parser {
	p := &parser{src: src, line: 1, file: file, defs: map[string]string{}, used: map[string]bool{}, sectionItem: -1}
	p.run()
	return p
}

func (p *parser) errorf(line int, what, why string) {
	p.items = append(p.items, Item{File: p.file, Line: line, Kind: Error, What: what, Why: why})
}

func (p *parser) lookup(name string) (string, bool) {
	if v, ok := p.defs[name]; ok {
		p.used[name] = true
		return v, true
	}
	v, ok := builtinValues[name]
	return v, ok
}

func (p *parser) run() {
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == '\n':
			p.endLine()
			p.line++
			p.pos++
		case isBlank(c):
			p.pos++
		case c == '#':
			p.skipComment()
		case c == '`':
			start, line := p.pos, p.line
			s, ok := p.quoted()
			if !ok {
				p.errorf(line, "", "unbalanced quote: the ` here has no closing '; the rest of the line is skipped")
				p.recover(start, line)
				continue
			}
			p.addRaw(oneLine(s))
		case c == '\'':
			if !p.discard {
				p.errorf(p.line, "", "unbalanced quote: ' without an opening `")
			}
			p.addRaw("'")
			p.pos++
		case isNameStart(c):
			p.word()
		default:
			p.addRaw(string(c))
			p.pos++
		}
	}
	p.endLine()
}

// lineText is the source line from start, for messages.
func (p *parser) lineText(start int) string {
	end := start
	for end < len(p.src) && p.src[end] != '\n' {
		end++
	}
	return shorten(oneLine(string(p.src[start:end])), 120)
}

// recover resumes reading on the line after the one where a broken
// construct started.
func (p *parser) recover(start, line int) {
	p.raw = p.raw[:0]
	i := start
	for i < len(p.src) && p.src[i] != '\n' {
		i++
	}
	if i < len(p.src) {
		i++
	}
	p.pos, p.line = i, line+1
}

// skipComment skips from '#' to the end of the line (not the newline).
func (p *parser) skipComment() {
	for p.pos < len(p.src) && p.src[p.pos] != '\n' {
		p.pos++
	}
}

// skipDnl skips what dnl deletes: the rest of the line and its newline.
func (p *parser) skipDnl() {
	p.skipComment()
	if p.pos < len(p.src) {
		p.endLine()
		p.line++
		p.pos++
	}
}

// quoted reads a quoted string starting at p.pos ('`') and returns its
// contents with the outer quotes removed; false if it never closes.
func (p *parser) quoted() (string, bool) {
	depth, line := 0, p.line
	start := p.pos + 1
	for i := p.pos; i < len(p.src); i++ {
		switch p.src[i] {
		case '`':
			depth++
		case '\'':
			depth--
			if depth == 0 {
				p.pos = i + 1
				p.line = line
				return string(p.src[start:i]), true
			}
		case '\n':
			line++
		}
	}
	return "", false
}

func (p *parser) readName() string {
	start := p.pos
	for p.pos < len(p.src) && isNameChar(p.src[p.pos]) {
		p.pos++
	}
	return string(p.src[start:p.pos])
}

func (p *parser) word() {
	start, line := p.pos, p.line
	name := p.readName()
	if name == "dnl" {
		p.skipDnl()
		return
	}
	if p.pos < len(p.src) && p.src[p.pos] == '(' {
		args, ok, why := p.args(name, line)
		if !ok {
			p.errorf(line, p.lineText(start), why)
			if why == nestedCall {
				// Resume at the call found inside: it starts a new line.
				return
			}
			p.recover(start, line)
			return
		}
		p.macro(call{name: name, args: args, paren: true, line: line, discard: p.discard})
		return
	}
	if _, ok := sections[name]; ok || name == "divert" {
		p.macro(call{name: name, line: line, discard: p.discard})
		return
	}
	if _, ok := p.defs[name]; ok && !p.discard {
		p.macro(call{name: name, line: line, discard: p.discard})
		return
	}
	p.addRaw(name)
}

const nestedCall = "missing ')' or quote: a macro call starts inside its arguments on a later line; the call is skipped"

// args reads a parenthesized argument list starting at p.pos ('(').
func (p *parser) args(outer string, outerLine int) ([]string, bool, string) {
	p.pos++
	var args []string
	var cur strings.Builder
	depth, atStart := 0, true
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if atStart && (isBlank(c) || c == '\n') {
			if c == '\n' {
				p.line++
			}
			p.pos++
			continue
		}
		switch {
		case c == '`':
			line := p.line
			s, ok := p.quoted()
			if !ok {
				p.line = line
				return nil, false, "unbalanced quote: a ` in the arguments has no closing '; the call is skipped"
			}
			cur.WriteString(s)
			atStart = false
		case c == '#':
			p.skipComment()
		case isNameStart(c):
			wstart, wline := p.pos, p.line
			w := p.readName()
			if w == "dnl" {
				p.skipComment()
				if p.pos < len(p.src) {
					p.line++
					p.pos++
				}
				continue
			}
			paren := p.pos < len(p.src) && p.src[p.pos] == '('
			if paren && topMacros[w] && wline > outerLine && !m4Builtins[outer] {
				p.pos, p.line = wstart, wline
				return nil, false, nestedCall
			}
			if v, ok := p.lookup(w); ok && !paren {
				if x, ok := expand(v, p.lookup); ok {
					cur.WriteString(x)
				} else {
					cur.WriteString(w)
				}
			} else {
				cur.WriteString(w)
			}
			atStart = false
		case c == '(':
			depth++
			cur.WriteByte(c)
			p.pos++
			atStart = false
		case c == ')':
			p.pos++
			if depth == 0 {
				return append(args, cur.String()), true, ""
			}
			depth--
			cur.WriteByte(c)
		case c == ',' && depth == 0:
			args = append(args, cur.String())
			cur.Reset()
			atStart = true
			p.pos++
		case c == '\'':
			p.errorf(p.line, "", "unbalanced quote: ' without an opening ` in the arguments of "+outer)
			cur.WriteByte(c)
			p.pos++
			atStart = false
		default:
			if c == '\n' {
				p.line++
			}
			cur.WriteByte(c)
			p.pos++
			atStart = false
		}
		if len(args) > 1000 || cur.Len() > 1<<20 {
			return nil, false, "too many or too long arguments; the call is skipped"
		}
	}
	return nil, false, "missing ')': the arguments run to the end of the file; the call is skipped"
}

// macro records a call and applies what the reader itself must know:
// divert, definitions (for later unquoted uses) and raw-text sections.
func (p *parser) macro(c call) {
	p.endSection()
	switch c.name {
	case "divert":
		p.discard = c.arg(0) == "-1" || strings.HasPrefix(c.arg(0), "-")
		return
	case "define":
		if len(c.args) > 0 && c.arg(0) != "" {
			v := ""
			if len(c.args) > 1 {
				v = c.args[1]
			}
			p.defs[c.arg(0)] = v
		}
	case "undefine":
		for i := range c.args {
			delete(p.defs, c.arg(i))
		}
	case "include":
		// cf.m4 ends in divert(0): Red Hat's .mc starts with divert(-1)
		// and relies on it.
		if a := c.arg(0); strings.HasSuffix(a, "/m4/cf.m4") || a == "cf.m4" {
			p.discard = false
		}
	case "changequote", "changecom":
		p.errorf(c.line, c.String(), c.name+" is not supported: the rest of the file is read with the standard ` ' quotes and # comments, and may be misread")
		return
	}
	if _, ok := sections[c.name]; ok && !c.paren {
		p.section, p.sectionLine, p.sectionItem = c.name, c.line, -1
	}
	p.calls = append(p.calls, c)
}

func (p *parser) endSection() {
	p.section, p.sectionItem = "", -1
}

func (p *parser) addRaw(s string) {
	if len(p.raw) == 0 {
		p.rawLine = p.line
	}
	p.raw = append(p.raw, s...)
	p.raw = append(p.raw, ' ')
	if len(p.raw) > 4096 {
		p.raw = p.raw[:4096]
	}
}

// endLine reports the text outside macro calls on the line just read.
func (p *parser) endLine() {
	text := oneLine(string(p.raw))
	p.raw = p.raw[:0]
	if text == "" || p.discard {
		return
	}
	if p.section != "" {
		if p.sectionItem < 0 {
			p.items = append(p.items, Item{File: p.file, Line: p.sectionLine, Kind: NotTranslated, What: p.section})
			p.sectionItem = len(p.items) - 1
		}
		it := &p.items[p.sectionItem]
		it.lastLine = p.rawLine
		it.Why = sectionWhy(p.section, p.sectionLine, it.lastLine)
		return
	}
	p.items = append(p.items, Item{File: p.file, Line: p.rawLine, Kind: NotTranslated, What: shorten(text, 120),
		Why: "text outside a macro call: m4 copies it into sendmail.cf as it is, and gosendmail has no equivalent"})
}

func sectionWhy(name string, first, last int) string {
	lines := "line " + itoa(last)
	if last > first+1 {
		lines = "lines " + itoa(first+1) + "-" + itoa(last)
	}
	return sections[name] + " (" + lines + ") have no gosendmail equivalent"
}
