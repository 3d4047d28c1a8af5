package dkim

import (
	"bufio"
	"crypto"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// maxLine bounds one table line. A KeyTable line may carry a whole key as
// base64 DER (about 3 KB for RSA-4096); nothing legitimate comes near this.
const maxLine = 64 << 10

// TableError is one problem in a table or in a key it names: the file, the
// line (0 when the problem is the file as a whole) and what is wrong.
type TableError struct {
	File string
	Line int
	Msg  string
}

func (e *TableError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s: line %d: %s", e.File, e.Line, e.Msg)
	}
	return e.File + ": " + e.Msg
}

// Tables is a loaded KeyTable and SigningTable. It is safe for concurrent
// use and never changes once loaded, except for a cache of keys whose file
// name depends on the author's domain; a reload builds new Tables.
type Tables struct {
	keyFile  string // the KeyTable's file name, for messages
	signFile string
	keyBad   bool // the KeyTable could not be read (whole or in part)
	// signBad says why the SigningTable could not be read (whole or in
	// part): then nobody can tell which mail must be signed, so all of it
	// waits rather than leaving unsigned.
	signBad error

	keys        []*keyEntry // KeyTable lines in file order
	keyPatterns bool        // KeyTable was refile:: names are patterns
	keyIndex    map[string]*keyEntry

	entries  []*signEntry // SigningTable lines in file order
	patterns bool         // SigningTable was refile:
	exact    map[string][]*signEntry

	mu   sync.Mutex
	lazy map[string]crypto.Signer // keys of "%" paths, by expanded path
}

// keyEntry is one KeyTable line.
type keyEntry struct {
	line     int
	name     string // lower case
	domain   string // d=, lower case; "%" is the author's domain
	selector string
	path     string // key file, absolute; contains "%" when per-domain; "" for inline keys
	signer   crypto.Signer
	err      error // why the line or its key cannot be used; nil if fine
}

// signEntry is one SigningTable line. A line that could not be parsed
// still matches (if its key could be read), so that the authors it was
// meant for get an error rather than unsigned mail.
type signEntry struct {
	line     int
	key      string // the pattern or exact key, lower case
	keyName  string // KeyTable name, lower case; "%" is the author's domain
	identity string // i=, "" for none; may contain "%"
	err      error
}

// LoadTables reads the KeyTable and the SigningTable (paths as in the
// configuration, with an optional "file:" or "refile:" prefix) and every
// key file they name. Both empty means no signing: the Tables sign nothing.
//
// The Tables are returned even when there are problems: each bad line and
// each key that is missing, unreadable or malformed is one error in the
// slice (a *TableError naming the file, line and reason), and the authors
// such a line applies to get an error from Sign instead of unsigned mail.
// A caller reloading the files may prefer to keep its previous Tables when
// the slice is not empty.
func LoadTables(keyTable, signingTable string) (*Tables, []error) {
	t := &Tables{
		keyIndex: make(map[string]*keyEntry),
		exact:    make(map[string][]*signEntry),
		lazy:     make(map[string]crypto.Signer),
	}
	if keyTable == "" && signingTable == "" {
		return t, nil
	}
	var errs []error
	if keyTable == "" {
		errs = append(errs, errors.New("dkim: signing_table is set but key_table is not: the SigningTable names keys that only a KeyTable can hold"))
	}
	if signingTable == "" {
		t.signBad = errors.New("dkim: key_table is set but signing_table is not: no key is used until a SigningTable says for which authors")
		errs = append(errs, t.signBad)
	}
	if keyTable != "" {
		errs = append(errs, t.loadKeyTable(keyTable)...)
	}
	if signingTable != "" {
		errs = append(errs, t.loadSigningTable(signingTable)...)
	}
	errs = append(errs, t.preload()...)
	return t, errs
}

// dataset splits an opendkim dataset specification into the file and
// whether it holds patterns. Only flat files are supported; naming the
// other types keeps the error readable for someone pasting opendkim.conf.
func dataset(spec string) (path string, patterns bool, err error) {
	if p, ok := strings.CutPrefix(spec, "refile:"); ok {
		return p, true, nil
	}
	if p, ok := strings.CutPrefix(spec, "file:"); ok {
		return p, false, nil
	}
	for _, kind := range []string{"db:", "dsn:", "ldap:", "ldaps:", "ldapi:", "lua:", "memcache:", "mdb:", "erlang:", "csl:", "socket:", "redis:"} {
		if strings.HasPrefix(spec, kind) {
			return "", false, fmt.Errorf("dkim: %s: opendkim dataset type %q is not supported: use a flat file (optionally refile:)", spec, strings.TrimSuffix(kind, ":"))
		}
	}
	if strings.HasSuffix(spec, ".db") {
		return "", false, fmt.Errorf("dkim: %s: Berkeley DB tables are not supported: use the flat file it was made from", spec)
	}
	return spec, false, nil
}

// tableLine is one non-blank line of a table: the key, then the value.
type tableLine struct {
	n          int
	key, value string
}

// readTable reads a flat file in opendkim's format: '#' starts a comment,
// the key runs to the first white space and the rest of the line is the
// value.
func readTable(path string) ([]tableLine, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &TableError{File: path, Msg: reason(err)}
	}
	defer f.Close()
	var out []tableLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 4096), maxLine)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		key, value := line, ""
		if i := strings.IndexAny(line, " \t"); i >= 0 {
			key, value = line[:i], line[i+1:]
		}
		out = append(out, tableLine{n: n, key: key, value: strings.TrimSpace(value)})
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return out, &TableError{File: path, Line: n + 1, Msg: fmt.Sprintf("line longer than %d bytes", maxLine)}
		}
		return out, &TableError{File: path, Msg: reason(err)}
	}
	return out, nil
}

// openTable reads a table file. errs holds its problems, the file's own
// first; bad adds one at a line and returns it.
func openTable(path string) (lines []tableLine, errs *[]error, bad func(n int, format string, args ...any) error) {
	errs = new([]error)
	lines, err := readTable(path)
	if err != nil {
		*errs = append(*errs, err)
	}
	return lines, errs, func(n int, format string, args ...any) error {
		e := &TableError{File: path, Line: n, Msg: fmt.Sprintf(format, args...)}
		*errs = append(*errs, e)
		return e
	}
}

func (t *Tables) loadKeyTable(spec string) []error {
	path, patterns, err := dataset(spec)
	if err != nil {
		return []error{err}
	}
	t.keyFile, t.keyPatterns = path, patterns
	lines, errs, bad := openTable(path)
	t.keyBad = len(*errs) > 0
	for _, l := range lines {
		k := &keyEntry{line: l.n, name: strings.ToLower(l.key)}
		if prev, dup := t.keyIndex[k.name]; dup {
			// Keep the first, as a lookup would find it; a second line
			// for the same name is a mistake worth hearing about.
			bad(l.n, "key %s is already defined at line %d; this line is ignored", l.key, prev.line)
			continue
		}
		t.keyIndex[k.name] = k
		t.keys = append(t.keys, k)

		parts := strings.SplitN(l.value, ":", 3)
		if l.value == "" || len(parts) < 3 {
			k.err = bad(l.n, "key %s: want %q after the name, got %q", l.key, "DOMAIN:SELECTOR:KEYFILE", l.value)
			continue
		}
		k.domain = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(parts[0]), "."))
		k.selector = strings.ToLower(strings.TrimSpace(parts[1]))
		keyData := strings.TrimSpace(parts[2])
		switch {
		case k.domain != "%" && !isDomain(k.domain):
			k.err = bad(l.n, "key %s: %q is not a domain name (nor %%, the author's domain)", l.key, parts[0])
			continue
		case !isDomain(k.selector):
			k.err = bad(l.n, "key %s: %q is not a valid selector (RFC 6376 section 3.1: dot-separated labels of letters, digits and hyphens)", l.key, parts[1])
			continue
		case keyData == "":
			k.err = bad(l.n, "key %s: no key file", l.key)
			continue
		}

		if !isPath(keyData) {
			// opendkim takes anything that is not a path as the key itself.
			signer, err := parseKey([]byte(keyData))
			if err != nil {
				k.err = bad(l.n, "key %s: the third field is neither a path (start it with /, ./ or ../) nor a key: %v", l.key, err)
				continue
			}
			k.signer = signer
			continue
		}
		if !filepath.IsAbs(keyData) {
			keyData = filepath.Join(filepath.Dir(path), keyData)
		}
		k.path = filepath.Clean(keyData)
		if strings.Contains(k.path, "%") {
			continue // loaded per author domain; preload tries the domains the SigningTable names
		}
		signer, err := loadKeyFile(k.path)
		if err != nil {
			k.err = bad(l.n, "key %s: %v", l.key, err)
			continue
		}
		k.signer = signer
	}
	return *errs
}

func (t *Tables) loadSigningTable(spec string) []error {
	path, patterns, err := dataset(spec)
	if err != nil {
		t.signBad = err
		return []error{err}
	}
	t.signFile, t.patterns = path, patterns
	lines, errs, bad := openTable(path)
	if len(*errs) > 0 {
		t.signBad = (*errs)[0]
	}
	for _, l := range lines {
		e := &signEntry{line: l.n, key: strings.ToLower(l.key)}
		t.entries = append(t.entries, e)
		if !patterns {
			t.exact[e.key] = append(t.exact[e.key], e)
		}
		name, identity, _ := strings.Cut(l.value, ":")
		e.keyName = strings.ToLower(strings.TrimSpace(name))
		e.identity = strings.TrimSpace(identity)
		if e.keyName == "" {
			e.err = bad(l.n, "%s: no KeyTable name after the pattern", l.key)
			continue
		}
		if e.keyName == "%" {
			continue // the author's domain names the key: checked when signing
		}
		k := t.keyFor(e.keyName)
		if k == nil {
			switch {
			case t.keyFile == "":
				e.err = bad(l.n, "key %s: no KeyTable is configured", name)
			case t.keyBad:
				e.err = bad(l.n, "key %s: not found, the KeyTable %s could not be read", name, t.keyFile)
			default:
				e.err = bad(l.n, "key %s is not in the KeyTable %s", name, t.keyFile)
			}
			continue
		}
		if e.identity != "" && !strings.Contains(e.identity, "%") && k.domain != "%" && !identityWithin(e.identity, k.domain) {
			// opendkim drops such an i= silently; saying so is kinder.
			bad(l.n, "signer %s is not within the signing domain %s (RFC 6376 section 3.5, i=); it will be left out", e.identity, k.domain)
		}
	}
	return *errs
}

// preload loads the per-domain key files ("%" in the path) for every domain
// the SigningTable names outright, so a missing one is reported at start
// like any other key. Domains only a wildcard reaches are loaded on first use.
func (t *Tables) preload() []error {
	var errs []error
	for _, k := range t.keys {
		if k.err != nil || !strings.Contains(k.path, "%") {
			continue
		}
		for _, d := range t.domainsFor(k) {
			if _, err := t.lazyKey(k, d); err != nil {
				errs = append(errs, &TableError{File: t.keyFile, Line: k.line, Msg: fmt.Sprintf("key %s for %s: %v", k.name, d, err)})
			}
		}
	}
	return errs
}

// domainsFor lists the domains that SigningTable lines naming k spell out:
// "*@example.com", "user@example.com" or "example.com". Patterns that leave
// the domain open ("*", "*@*.example.com") name none.
func (t *Tables) domainsFor(k *keyEntry) []string {
	var out []string
	seen := make(map[string]bool)
	for _, e := range t.entries {
		if e.err != nil || e.keyName == "%" || t.keyFor(e.keyName) != k {
			continue
		}
		d := literalDomain(e.key)
		if d != "" && !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// literalDomain is the one domain a SigningTable key can match, or "".
func literalDomain(key string) string {
	d := key
	if i := strings.LastIndexByte(key, '@'); i >= 0 {
		d = key[i+1:]
	}
	if strings.Contains(d, "*") || strings.HasPrefix(d, ".") || !isDomain(d) {
		return ""
	}
	return d
}

// keyFor finds a KeyTable entry by name: exactly, or by the first matching
// pattern when the KeyTable was given as refile:.
func (t *Tables) keyFor(name string) *keyEntry {
	if !t.keyPatterns {
		return t.keyIndex[name]
	}
	for _, k := range t.keys {
		if match(k.name, name) {
			return k
		}
	}
	return nil
}

// lookup returns the SigningTable lines that apply to author: those with
// the first key (pattern) that matches, in file order. nil if none does.
func (t *Tables) lookup(author string) []*signEntry {
	addr := strings.ToLower(author)
	if t.patterns {
		for i, e := range t.entries {
			if !match(e.key, addr) {
				continue
			}
			var out []*signEntry
			for _, f := range t.entries[i:] {
				if f.key == e.key {
					out = append(out, f)
				}
			}
			return out
		}
		return nil
	}
	for _, k := range exactKeys(addr) {
		if es := t.exact[k]; len(es) > 0 {
			return es
		}
	}
	return nil
}

// exactKeys lists the keys tried for addr in a non-pattern SigningTable, in
// opendkim's order (see the package documentation).
func exactKeys(addr string) []string {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return []string{addr, "*"}
	}
	local, domain := addr[:at], addr[at+1:]
	keys := []string{addr, domain}
	var parents []string
	for d := domain; ; {
		i := strings.IndexByte(d, '.')
		if i < 0 {
			break
		}
		d = d[i+1:]
		if d == "" {
			break
		}
		parents = append(parents, d)
	}
	for _, p := range parents {
		keys = append(keys, local+"@."+p)
	}
	for _, p := range parents {
		keys = append(keys, "."+p)
	}
	return append(keys, local+"@*", "*")
}

// match reports whether s matches pattern, in which '*' stands for any run
// of bytes and every other byte for itself. Both are lower case already.
// It backtracks only to the last star, so it runs in O(len(pattern) *
// len(s)) at worst: a hostile pattern cannot make it slow.
func match(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && pattern[p] == s[i]:
			p++
			i++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// isPath tells a key file name from a key written into the KeyTable, by
// opendkim's rule.
func isPath(s string) bool {
	return strings.HasPrefix(s, "/") || strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../")
}

// isDomain reports whether s is a domain name as DKIM's d= and s= need it
// (RFC 6376 section 3.5 and 3.1, by way of RFC 5321's sub-domain): labels
// of ASCII letters, digits and inner hyphens, joined by dots. It is also
// what makes "%" safe to put into a file name: no '/', no "..".
func isDomain(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// identityWithin reports whether the i= identity belongs to the signing
// domain or one of its subdomains (RFC 6376 section 3.5).
func identityWithin(identity, domain string) bool {
	at := strings.LastIndexByte(identity, '@')
	if at < 0 {
		return false
	}
	d := strings.ToLower(identity[at+1:])
	return d == domain || strings.HasSuffix(d, "."+domain)
}

// reason is err without the path an *os.PathError repeats, for messages
// that name the file themselves.
func reason(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
