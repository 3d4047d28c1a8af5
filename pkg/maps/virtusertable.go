package maps

import (
	"errors"
	"io"
	"slices"
	"strings"
)

// Virtusertable maps virtual addresses to targets (FEATURE(virtusertable)).
// A nil *Virtusertable is an empty table.
type Virtusertable struct {
	entries map[string]virtEntry // by lowercased LHS
	domains []string
}

type virtEntry struct {
	target string // RHS as written, before %n substitution
	reject *Reject
}

// Result is what a virtual address resolves to.
type Result struct {
	// Target is the new address (x@y) or local user (x), with %0-%9
	// substituted; empty when Error is set.
	Target string
	// Error is set for error: entries: the recipient is refused.
	Error *Reject
	// Key is the left-hand side that matched, e.g. "+*@example.com", for
	// the log.
	Key string
}

// Local reports whether the target is a local user (no @domain): it goes
// through aliases and local delivery on this host.
func (r Result) Local() bool {
	return r.Error == nil && r.Target != "" && !strings.Contains(r.Target, "@")
}

// LoadVirtusertable reads the virtusertable at path; a missing file is an
// empty table. See ParseVirtusertable for what comes back.
func LoadVirtusertable(path string) (*Virtusertable, error) {
	f, err := openSource(path)
	if err != nil {
		return &Virtusertable{}, err
	}
	defer f.Close()
	return ParseVirtusertable(path, f)
}

// ParseVirtusertable reads a virtusertable source; name is used in error
// messages. It always returns a usable table holding the good lines; the
// error joins one *LineError per bad line (see Problems).
func ParseVirtusertable(name string, r io.Reader) (*Virtusertable, error) {
	entries, err := ReadSource(name, r)
	errs := Problems(err)
	v := &Virtusertable{entries: make(map[string]virtEntry, len(entries))}
	seen := newDups(name)
	doms := map[string]bool{}
	for _, e := range entries {
		at := strings.LastIndexByte(e.Key, '@')
		if at < 0 {
			errs = append(errs, lineErr(name, e, "left-hand side %q has no @domain (want user@domain, user+*@domain or @domain)", e.Key))
			continue
		}
		dom := strings.TrimSuffix(e.Key[at+1:], ".")
		if dom == "" {
			errs = append(errs, lineErr(name, e, "left-hand side %q has no domain after @", e.Key))
			continue
		}
		key := e.Key[:at+1] + dom
		var ve virtEntry
		if rest, ok := cutPrefixFold(e.Value, "error:"); ok {
			rej, perr := parseMapError(rest)
			if perr != nil {
				errs = append(errs, lineErr(name, e, "%v", perr))
				continue
			}
			ve.reject = rej
		} else {
			if hasUnquotedSpace(e.Value) {
				errs = append(errs, lineErr(name, e, "right-hand side %q is more than one address", e.Value))
				continue
			}
			ve.target = e.Value
		}
		if !seen.first(key, e.Line, &errs) {
			continue
		}
		v.entries[key] = ve
		doms[dom] = true
	}
	for d := range doms {
		v.domains = append(v.domains, d)
	}
	slices.Sort(v.domains)
	return v, errors.Join(errs...)
}

// Len is the number of entries.
func (v *Virtusertable) Len() int {
	if v == nil {
		return 0
	}
	return len(v.entries)
}

// Domains lists the domains of the left-hand sides, lowercased and
// sorted. Sendmail consults the table only for domains in {w} or
// {VirtHost}; callers use this list to treat them as local.
func (v *Virtusertable) Domains() []string {
	if v == nil {
		return nil
	}
	return slices.Clone(v.domains)
}

// Lookup finds the entry for addr (local@domain) in sendmail's order
// (proto.m4, ruleset 0). For user+detail@dom:
//
//	user+detail@dom   %1 = user+detail
//	user++@dom        only if detail is not empty; %1 user, %2 detail, %3 +detail
//	user+*@dom        same arguments
//	user@dom          same arguments
//	++@dom            only if detail is not empty
//	+*@dom
//	@dom
//
// and for user@dom (no '+'): user@dom, then @dom, with %1 = user. The
// detail starts after the first '+' that is not the first character.
// Matching ignores case; the arguments keep the case of addr. %0 is the
// key looked up. A trailing dot on the domain is ignored.
//
// Lookup does not check that the domain is virtual or local, and does not
// resolve the target again; both are the router's job.
func (v *Virtusertable) Lookup(addr string) (Result, bool) {
	if v == nil || len(v.entries) == 0 {
		return Result{}, false
	}
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 {
		return Result{}, false
	}
	local, dom := addr[:at], strings.TrimSuffix(addr[at+1:], ".")
	if dom == "" {
		return Result{}, false
	}
	try := func(key string, args ...string) (Result, bool) {
		e, ok := v.entries[lowerASCII(key)]
		if !ok {
			return Result{}, false
		}
		if e.reject != nil {
			return Result{Error: e.reject, Key: lowerASCII(key)}, true
		}
		return Result{Target: substitute(e.target, key, args), Key: lowerASCII(key)}, true
	}
	if r, ok := try(local+"@"+dom, local); ok {
		return r, true
	}
	user, detail, plussed := splitDetail(local)
	if !plussed {
		return try("@"+dom, local)
	}
	args := []string{user, detail, "+" + detail}
	keys := []string{user + "++@", user + "+*@", user + "@", "++@", "+*@", "@"}
	for _, k := range keys {
		if detail == "" && strings.HasSuffix(k, "++@") {
			continue // "+" needs a non-empty detail; "*" takes an empty one
		}
		if r, ok := try(k+dom, args...); ok {
			return r, true
		}
	}
	return Result{}, false
}

// substitute expands %0 (the key) and %1-%9 (args; empty when missing) as
// sendmail's map_rewrite does; a '%' before anything else stays.
func substitute(s, key string, args []string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' || i+1 == len(s) || s[i+1] < '0' || s[i+1] > '9' {
			b.WriteByte(c)
			continue
		}
		i++
		switch n := int(s[i] - '0'); {
		case n == 0:
			b.WriteString(key)
		case n <= len(args):
			b.WriteString(args[n-1])
		}
	}
	return b.String()
}

// cutPrefixFold is strings.CutPrefix ignoring ASCII case.
func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && lowerASCII(s[:len(prefix)]) == prefix {
		return s[len(prefix):], true
	}
	return s, false
}

// hasUnquotedSpace reports blanks outside double quotes: `"john doe"@x`
// is one address, `a@x b@y` is two, which a virtusertable cannot hold.
func hasUnquotedSpace(s string) bool {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			quoted = !quoted
		case ' ', '\t':
			if !quoted {
				return true
			}
		}
	}
	return false
}
