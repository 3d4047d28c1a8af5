package maps

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// Route is where a mailertable sends mail for a domain.
type Route struct {
	// Mailer is the sendmail mailer name, lowercased: smtp, esmtp,
	// smtp8, dsmtp or relay (all SMTP to Host), local, error, or discard
	// (sendmail's built-in mailer that accepts and drops the mail).
	Mailer string
	// Host is the next hop: a host name, or an IP address when NoMX
	// (brackets in the table). %1 and %2 are already substituted.
	Host string
	// Port is the TCP port, 0 for the default (25).
	Port int
	// NoMX is set when the host was in brackets: connect to its address
	// records, do not look up MX.
	NoMX bool
	// Error is set for the error mailer: the recipient is refused.
	Error *Reject
	// LocalUser is the user of "local:user"; "" with Mailer "local"
	// means the recipient's own local part ("local:").
	LocalUser string
	// Key is the key that matched ("example.org", ".example.org" or
	// "."), for the log.
	Key string
}

// smtpMailers are the mailers that take a host; all are SMTP for us.
var smtpMailers = map[string]bool{"smtp": true, "esmtp": true, "smtp8": true, "dsmtp": true, "relay": true}

// Mailertable is a parsed mailertable (FEATURE(mailertable)). A nil
// *Mailertable is an empty table.
type Mailertable struct {
	entries map[string]Route
}

// LoadMailertable reads the mailertable at path; a missing file is an
// empty table. See ParseMailertable for what comes back.
func LoadMailertable(path string) (*Mailertable, error) {
	f, err := openSource(path)
	if err != nil {
		return &Mailertable{}, err
	}
	defer f.Close()
	return ParseMailertable(path, f)
}

// ParseMailertable reads a mailertable source; name is used in error
// messages. It always returns a usable table holding the good lines; the
// error joins one *LineError per bad line (see Problems).
func ParseMailertable(name string, r io.Reader) (*Mailertable, error) {
	entries, err := ReadSource(name, r)
	errs := Problems(err)
	m := &Mailertable{entries: make(map[string]Route, len(entries))}
	seen := newDups(name)
	for _, e := range entries {
		key := e.Key
		if key != "." {
			key = strings.TrimSuffix(key, ".")
		}
		if key == "" || strings.ContainsAny(key, "@/\\\"") || strings.Contains(key, "..") {
			errs = append(errs, lineErr(name, e, "key %q is not a host name, .domain or \".\"", e.Key))
			continue
		}
		rt, perr := parseRoute(e.Value)
		if perr != nil {
			errs = append(errs, lineErr(name, e, "%v", perr))
			continue
		}
		if key[0] != '.' && strings.Contains(rt.Host, "%") {
			// %1 is what a wildcard matched; an exact key has none,
			// and the host would come out empty or mangled.
			errs = append(errs, lineErr(name, e, "%%1 and %%2 need a .domain or \".\" key, not %q", key))
			continue
		}
		if seen.first(key, e.Line, &errs) {
			m.entries[key] = rt
		}
	}
	return m, errors.Join(errs...)
}

// parseRoute reads a mailertable value: mailer:host, with these forms
// (MailerToTriple in proto.m4, plus a port):
//
//	esmtp:mx.example.org      SMTP to the MX hosts of mx.example.org
//	smtp:[10.0.0.5]           brackets: to that address, no MX lookup
//	smtp:[10.0.0.5]:2525      ... on port 2525 (ours: sendmail needs
//	esmtp:mail.example:587     a separate mailer definition for a port)
//	esmtp:[IPv6:2001:db8::1]  an IPv6 address needs brackets
//	relay:smart.example       the relay mailer (SMTP here too)
//	local:user, local:        local delivery to user, or to the recipient
//	error:5.1.1:550 text      refuse (see parseMapError)
//	smart.example             no mailer: the relay mailer
//
// A list of hosts (sendmail's "esmtp:a:b") is not supported.
func parseRoute(v string) (Route, error) {
	mailer, host, found := strings.Cut(v, ":")
	if !found || strings.HasPrefix(v, "[") {
		mailer, host = "relay", v
	}
	mailer = lowerASCII(mailer)
	switch {
	case mailer == "error":
		rej, err := parseMapError(host)
		if err != nil {
			return Route{}, err
		}
		return Route{Mailer: "error", Error: rej}, nil
	case mailer == "local":
		// "local:user@host" delivers to user: sendmail ignores the
		// host (CanonLocal).
		user, _, _ := strings.Cut(host, "@")
		user = strings.TrimSpace(user)
		if hasUnquotedSpace(user) {
			return Route{}, fmt.Errorf("local user %q has blanks in it", user)
		}
		return Route{Mailer: "local", LocalUser: user}, nil
	case mailer == "discard":
		// "discard:" and "discard:discard" alike: the host is ignored.
		return Route{Mailer: "discard"}, nil
	case !smtpMailers[mailer]:
		return Route{}, fmt.Errorf("unknown mailer %q (want smtp, esmtp, smtp8, dsmtp, relay, local, error or discard)", mailer)
	}
	rt := Route{Mailer: mailer}
	host = strings.TrimSpace(host)
	if strings.HasPrefix(host, "[") {
		end := strings.IndexByte(host, ']')
		if end < 0 {
			return Route{}, fmt.Errorf("%q: missing ']'", host)
		}
		rt.Host, rt.NoMX, host = host[1:end], true, host[end+1:]
		if inner, ok := cutPrefixFold(rt.Host, "ipv6:"); ok {
			rt.Host = inner
		}
		if host != "" && host[0] != ':' {
			return Route{}, fmt.Errorf("unexpected %q after ']'", host)
		}
		host = strings.TrimPrefix(host, ":")
		if host == "" && strings.HasSuffix(v, ":") {
			return Route{}, errors.New("empty port")
		}
	} else {
		h, port, found := strings.Cut(host, ":")
		rt.Host, host = h, port
		if found && host == "" {
			return Route{}, errors.New("empty port")
		}
	}
	if host != "" {
		if !isDigits(host) {
			return Route{}, fmt.Errorf("%q is not a port (a list of hosts a:b is not supported)", host)
		}
		p, err := strconv.Atoi(host)
		if err != nil || p < 1 || p > 65535 {
			return Route{}, fmt.Errorf("port %s out of range", host)
		}
		rt.Port = p
	}
	rt.Host = strings.TrimSuffix(rt.Host, ".")
	if err := checkHost(rt.Host, rt.NoMX); err != nil {
		return Route{}, err
	}
	return rt, nil
}

// checkHost accepts a host name (letters, digits, '-', '_', '.', and the
// %1 and %2 of wildcard entries) or, in brackets, an IP address.
func checkHost(h string, bracketed bool) error {
	if h == "" {
		return errors.New("no host after the mailer")
	}
	if bracketed {
		if _, err := netip.ParseAddr(h); err == nil {
			return nil
		}
	}
	if strings.Contains(h, ":") {
		return fmt.Errorf("%q: an IPv6 address goes in brackets, e.g. esmtp:[IPv6:2001:db8::1]", h)
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '%' || c >= 0x80
		if !ok {
			return fmt.Errorf("%q is not a host name", h)
		}
		if c == '%' && (i+1 == len(h) || h[i+1] != '1' && h[i+1] != '2') {
			return fmt.Errorf("%q: only %%1 and %%2 may follow %%", h)
		}
	}
	return nil
}

// Len is the number of entries.
func (m *Mailertable) Len() int {
	if m == nil {
		return 0
	}
	return len(m.entries)
}

// Lookup finds the route for domain in sendmail's order: the domain
// itself, then ".parent" for each parent, most specific first, then ".":
// for a.b.example.org, a.b.example.org, .b.example.org, .example.org,
// .org, ".". A key "example.org" (no dot) matches only that host. Case and
// a trailing dot are ignored. A domain literal ([192.0.2.1]) is never
// looked up: sendmail sends to it before the mailertable.
//
// For a ".parent" or "." match, %1 in the host or local user is the part
// of domain left of the match ("a.b" for .example.org) and %2 its last
// label ("b"), as in proto.m4's Mailertable ruleset.
func (m *Mailertable) Lookup(domain string) (Route, bool) {
	if m == nil || len(m.entries) == 0 {
		return Route{}, false
	}
	d := strings.TrimSuffix(lowerASCII(domain), ".")
	if d == "" || d[0] == '.' || d[0] == '[' || strings.Contains(d, "..") {
		return Route{}, false
	}
	if rt, ok := m.entries[d]; ok {
		rt.Key = d
		return expandRoute(rt, "", ""), true
	}
	for i := 0; i < len(d); i++ {
		if d[i] != '.' {
			continue
		}
		if rt, ok := m.entries[d[i:]]; ok {
			rt.Key = d[i:]
			return expandRoute(rt, d[:i], lastLabel(d[:i])), true
		}
	}
	if rt, ok := m.entries["."]; ok {
		rt.Key = "."
		return expandRoute(rt, d, lastLabel(d)), true
	}
	return Route{}, false
}

func lastLabel(s string) string {
	return s[strings.LastIndexByte(s, '.')+1:]
}

// expandRoute substitutes %1 and %2 of wildcard entries.
func expandRoute(rt Route, p1, p2 string) Route {
	if strings.Contains(rt.Host, "%") {
		rt.Host = substitute(rt.Host, "", []string{p1, p2})
	}
	if strings.Contains(rt.LocalUser, "%") {
		rt.LocalUser = substitute(rt.LocalUser, "", []string{p1, p2})
	}
	return rt
}
