package aliases

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/mail"
	"os"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/gosendmail/gosendmail/pkg/maps"
)

// Load reads the alias file at path. When the file cannot be opened the map
// is nil and the only error is the *fs.PathError from opening it.
func Load(path string) (*Map, []error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, []error{err}
	}
	defer f.Close()
	return Parse(path, f)
}

// Parse reads an alias file from r; name is the file name used in messages.
// It returns the aliases that parsed (never a nil map) and one *LineError
// per bad line, warnings included (see IsWarning). An entry with any error
// is left out of the map whole: half a mailing list is worse than none. A
// read error ends parsing and is returned as an *fs.PathError.
func Parse(name string, r io.Reader) (*Map, []error) {
	p := &parser{file: name}
	m := &Map{entries: make(map[string]*entry)}
	var cur *joined // the entry being gathered
	orphan := false // in a run of continuation lines that follow no entry
	flush := func() {
		if cur == nil {
			return
		}
		if name, e, ok := p.entry(cur); ok {
			if _, dup := m.entries[name]; dup {
				// sendmail's wording; the last definition wins there too.
				p.errs = append(p.errs, &LineError{File: p.file, Line: cur.first(), Msg: "duplicate alias name " + name, Warning: true})
			} else {
				m.order = append(m.order, name)
			}
			m.entries[name] = e
		}
		cur = nil
	}
	err := p.readJoined(r, func(j *joined) {
		rest := bytes.TrimLeft(j.text, " \t")
		switch {
		case len(rest) == 0 || rest[0] == '#':
			// Blank or comment: skipped without ending the entry.
			return
		case j.text[0] == ' ' || j.text[0] == '\t':
			if cur != nil {
				cur.join(j)
				return
			}
			if !orphan && !j.long {
				p.errorf(j.first(), "line starts with a space or tab but there is no alias before it to continue")
			}
			orphan = true
			return
		}
		flush()
		orphan = false
		cur = j
	})
	flush()
	if err != nil {
		p.errs = append(p.errs, readError(name, err))
	}
	return m, p.errs
}

// ParseInclude reads a file named by an :include: target: any number of
// comma-separated targets on each line, '#' comments and blank lines
// allowed, a trailing backslash joining lines as in the alias file. It
// returns the good targets and one *LineError per bad one, so a single bad
// member does not stop delivery to the rest of a list.
func ParseInclude(name string, r io.Reader) ([]Target, []error) {
	p := &parser{file: name}
	var out []Target
	err := p.readJoined(r, func(j *joined) {
		rest := bytes.TrimLeft(j.text, " \t")
		if j.long || len(rest) == 0 || rest[0] == '#' {
			return
		}
		if !p.checkBytes(j) {
			return
		}
		ts, _ := p.targets(j, 0)
		out = append(out, ts...)
	})
	if err != nil {
		p.errs = append(p.errs, readError(name, err))
	}
	return out, p.errs
}

func readError(name string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return err
	}
	return &fs.PathError{Op: "read", Path: name, Err: err}
}

type parser struct {
	file string
	errs []error
}

func (p *parser) errorf(line int, format string, args ...any) {
	p.errs = append(p.errs, &LineError{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// joined is text made of one or more physical lines, with where each of
// them starts so that an error can name the line it is on.
type joined struct {
	text  []byte
	marks []mark
	long  bool // holds a line that was too long (already reported)
}

type mark struct{ off, line int }

func (j *joined) add(line int, text []byte) {
	j.marks = append(j.marks, mark{len(j.text), line})
	j.text = append(j.text, text...)
}

func (j *joined) join(k *joined) {
	for _, mk := range k.marks {
		j.marks = append(j.marks, mark{len(j.text) + mk.off, mk.line})
	}
	j.text = append(j.text, k.text...)
	j.long = j.long || k.long
}

func (j *joined) first() int { return j.marks[0].line }

// lineAt returns the physical line that holds the byte at off.
func (j *joined) lineAt(off int) int {
	i := sort.Search(len(j.marks), func(i int) bool { return j.marks[i].off > off })
	return j.marks[max(i-1, 0)].line
}

// readJoined calls fn with each line of r once backslash continuations are
// joined. A line longer than MaxLine is reported here and handed on with
// only its first byte (enough to tell a comment or a continuation) and long
// set, so that the entry it belongs to is dropped without more noise.
func (p *parser) readJoined(r io.Reader, fn func(*joined)) error {
	br := bufio.NewReaderSize(r, MaxLine+2) // room for a full line and its CR LF
	num := 0
	var cur *joined
	for {
		b, err := br.ReadSlice('\n')
		if len(b) == 0 && err != nil {
			if cur != nil { // the last line ended in a backslash
				fn(cur)
			}
			if err == io.EOF {
				return nil
			}
			return err
		}
		num++
		long := false
		var text []byte
		if errors.Is(err, bufio.ErrBufferFull) {
			long = true
			text = []byte{b[0]}
			// Skip the rest of the line, keeping its end to see whether it
			// continues on the next one.
			tail := append([]byte(nil), b[len(b)-2:]...)
			for errors.Is(err, bufio.ErrBufferFull) {
				b, err = br.ReadSlice('\n')
				tail = append(tail, b...)
				tail = tail[max(len(tail)-3, 0):]
			}
			b = tail
			p.errorf(num, "line longer than %d bytes", MaxLine)
		}
		if err != nil && err != io.EOF {
			return err
		}
		b = bytes.TrimSuffix(b, []byte("\n"))
		// Tolerate CRLF files (edited on Windows); any other CR is an error.
		b = bytes.TrimSuffix(b, []byte("\r"))
		cont := bytes.HasSuffix(b, []byte(`\`))
		if !long {
			text = bytes.Clone(b)
			if len(text) > MaxLine {
				long = true
				p.errorf(num, "line longer than %d bytes", MaxLine)
			}
			if cont {
				text = text[:len(text)-1]
			}
		}
		if cur == nil {
			cur = &joined{}
		}
		cur.add(num, text)
		cur.long = cur.long || long
		if !cont {
			fn(cur)
			cur = nil
		}
	}
}

// checkBytes reports NUL and other control bytes and invalid UTF-8, once
// per physical line. Tabs are blanks, not control bytes.
func (p *parser) checkBytes(j *joined) bool {
	ok := true
	reported := 0
	for off := 0; off < len(j.text); {
		r, size := utf8.DecodeRune(j.text[off:])
		var msg string
		switch {
		case r == utf8.RuneError && size == 1:
			msg = "invalid UTF-8"
		case r == 0:
			msg = "NUL byte"
		case r < 0x20 && r != '\t' || r == 0x7f:
			msg = fmt.Sprintf("control character 0x%02x", r)
		}
		if msg != "" {
			ok = false
			if line := j.lineAt(off); line != reported {
				p.errorf(line, "%s", msg)
				reported = line
			}
		}
		off += size
	}
	return ok
}

// entry parses one alias entry. ok is false when it had errors, all of
// which are reported.
func (p *parser) entry(j *joined) (name string, e *entry, ok bool) {
	if j.long || !p.checkBytes(j) {
		return "", nil, false
	}
	t := j.text
	colon, open := cut(t, 0, ':')
	if colon < 0 {
		if open >= 0 {
			p.errorf(j.lineAt(open), "unbalanced quotes")
		} else {
			p.errorf(j.first(), "missing colon after the alias name")
		}
		return "", nil, false
	}
	name, msg := parseName(string(t[:colon]))
	if msg != "" {
		p.errorf(j.first(), "%s", msg)
	}
	// The targets are checked even after a bad name so that one run shows
	// every mistake.
	targets, tok := p.targets(j, colon+1)
	if msg != "" || !tok {
		return "", nil, false
	}
	if len(targets) == 0 {
		p.errorf(j.first(), "missing value for alias %s", name)
		return "", nil, false
	}
	return name, &entry{targets: targets, rhsLen: len(bytes.TrimLeft(t[colon+1:], " \t"))}, true
}

// targets parses the comma-separated targets in j.text from start on. It
// returns the good ones and whether there were no bad ones.
func (p *parser) targets(j *joined, start int) ([]Target, bool) {
	t := j.text
	var out []Target
	ok := true
	for pos := start; pos <= len(t); {
		end, open := cut(t, pos, ',')
		if end < 0 {
			if open >= 0 {
				p.errorf(j.lineAt(open), "unbalanced quotes")
				return out, false
			}
			end = len(t)
		}
		item := t[pos:end]
		lead := len(item) - len(bytes.TrimLeft(item, " \t"))
		// Empty items (a trailing comma, ",,") are skipped, as sendmail does.
		if s := strings.Trim(string(item), " \t"); s != "" {
			tg, msg := parseTarget(s)
			if msg != "" {
				p.errorf(j.lineAt(pos+lead), "%s", msg)
				ok = false
			} else {
				out = append(out, tg)
			}
		}
		pos = end + 1
	}
	return out, ok
}

// cut returns the index of the first sep in t[from:] that is outside
// double quotes (inside them a backslash escapes the next byte), or -1 and,
// if t ends inside quotes, the index of the quote that opened them.
func cut(t []byte, from int, sep byte) (idx, open int) {
	open = -1
	for i := from; i < len(t); i++ {
		switch c := t[i]; {
		case open >= 0 && c == '\\':
			i++
		case c == '"' && open >= 0:
			open = -1
		case c == '"':
			open = i
		case c == sep && open < 0:
			return i, -1
		}
	}
	return -1, open
}

// unquote returns the content of s if s is exactly one quoted string.
func unquote(s string) (string, bool) {
	if !strings.HasPrefix(s, `"`) {
		return "", false
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
			if i < len(s) {
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), i == len(s)-1
		default:
			b.WriteByte(s[i])
		}
	}
	return "", false
}

// quote is the inverse of unquote.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// parseName checks and folds the text before the colon.
func parseName(s string) (string, string) {
	s = strings.Trim(s, " \t")
	switch {
	case s == "":
		return "", "missing alias name before the colon"
	case s[0] == '"':
		inner, ok := unquote(s)
		if !ok {
			return "", fmt.Sprintf("bad alias name %s: text after the closing quote", s)
		}
		if inner == "" {
			return "", "empty alias name"
		}
		return foldName(inner), ""
	case plainName(s):
		return foldName(s), ""
	case strings.ContainsAny(s, " \t"):
		return "", fmt.Sprintf("alias name %q has spaces: put it in double quotes", s)
	case strings.Contains(s, "@"):
		return "", fmt.Sprintf("alias name %q is not a local name: leave out the @domain", s)
	case s[0] == '|' || s[0] == '/':
		return "", fmt.Sprintf("alias name %q cannot start with %q", s, s[:1])
	}
	i := strings.IndexFunc(s, func(r rune) bool { return !nameRune(r) })
	r, _ := utf8.DecodeRuneInString(s[i:])
	return "", fmt.Sprintf("bad character %q in alias name %q", r, s)
}

// plainName reports whether s may be written as a name without quotes:
// RFC 5322 atext and dots (UTF-8 allowed), not starting with a character
// that would make the line a comment or the name a pipe or file.
func plainName(s string) bool {
	if s == "" || strings.IndexFunc(s, func(r rune) bool { return !nameRune(r) }) >= 0 {
		return false
	}
	return s[0] != '#' && s[0] != '|' && s[0] != '/'
}

func nameRune(r rune) bool {
	return r >= 0x80 ||
		'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' ||
		strings.ContainsRune("!#$%&'*+-/=?^_`{|}~.", r)
}

// parseTarget parses one trimmed, non-empty target. The string is an error
// message, empty when the target is good.
func parseTarget(s string) (Target, string) {
	raw := s
	noAlias := strings.HasPrefix(s, `\`)
	if noAlias {
		s = s[1:]
	}
	quoted := false
	v := s
	if inner, ok := unquote(s); ok {
		quoted, v = true, inner
	}
	var t Target
	switch {
	case strings.HasPrefix(v, "|"):
		t = Target{Kind: Pipe, Value: strings.Trim(v[1:], " \t")}
		if t.Value == "" {
			return t, fmt.Sprintf("%q: no command after the |", raw)
		}
	case strings.HasPrefix(v, "/"):
		t = Target{Kind: File, Value: v}
	case len(v) >= len(":include:") && strings.EqualFold(v[:len(":include:")], ":include:"):
		t = Target{Kind: Include, Value: strings.Trim(v[len(":include:"):], " \t")}
		if !strings.HasPrefix(t.Value, "/") {
			return t, fmt.Sprintf("%q: the file to include must be an absolute path", raw)
		}
	default:
		return parseAddress(raw, s, noAlias)
	}
	if noAlias {
		return t, fmt.Sprintf("%q: a backslash can only stand before an address", raw)
	}
	if !quoted && !plainValue(t.Value) {
		return t, fmt.Sprintf("%q: put a %s target with spaces, quotes or backslashes in double quotes", raw, t.Kind)
	}
	return t, ""
}

// plainValue reports whether a file, pipe or include value may be written
// without quotes.
func plainValue(v string) bool {
	return !strings.ContainsAny(v, " \t\",\\")
}

func parseAddress(raw, s string, noAlias bool) (Target, string) {
	t := Target{Kind: Address, Value: s, NoAlias: noAlias}
	if s == "" {
		return t, "missing address after the backslash"
	}
	// Look at everything outside quotes first, so that the message names
	// the real mistake: "Some Name <x@y>" is a display name more than it
	// is an address with spaces.
	var angle, paren, blank, other, hasAt bool
	inQuotes := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case inQuotes && c == '\\':
			i++
		case c == '"':
			inQuotes = !inQuotes
		case inQuotes:
		case c == '<' || c == '>':
			angle = true
		case c == '(' || c == ')':
			paren = true
		case c == ' ' || c == '\t':
			blank = true
		case c == ':' || c == ';' || c == '\\':
			other = true
		case c == '@':
			hasAt = true
		}
	}
	switch {
	case angle:
		return t, fmt.Sprintf("bad address %q: display names and <> are not allowed in aliases", raw)
	case paren:
		return t, fmt.Sprintf("bad address %q: (comments) are not allowed in aliases", raw)
	case blank:
		return t, fmt.Sprintf("bad address %q: spaces must be inside double quotes", raw)
	case other:
		return t, fmt.Sprintf("bad address %q", raw)
	}
	// A local user has no domain; give it one so that net/mail can check
	// the local part.
	probe := s
	if !hasAt {
		probe += "@localhost"
	}
	if a, err := mail.ParseAddress(probe); err != nil || a.Name != "" {
		return t, fmt.Sprintf("bad address %q", raw)
	}
	return t, ""
}

// Watch keeps the alias file at path parsed and current (maps.Watched):
// the map in force is usable with the errors, bad entries left out and
// reported through opt.OnError.
func Watch(path string, opt maps.WatchOptions) *maps.Watched[*Map] {
	return maps.NewWatched(path, func(name string, r io.Reader) (*Map, error) {
		m, errs := Parse(name, r)
		return m, errors.Join(errs...)
	}, opt)
}
