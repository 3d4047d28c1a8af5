// Package route decides, for one envelope recipient, where mail goes. It
// is pure: every table is a function the caller supplies, so sendmail -bv
// and the queue runner share it and tests need no files.
//
// The order, as sendmail's:
//
//  1. A recipient in a local domain (local-host-names, the hostname, or no
//     domain at all): virtusertable (user+detail@dom, user@dom, @dom; an
//     error: entry refuses), whose target is routed again; then the local
//     part in the aliases (with "+detail" falling back to the user),
//     expanded recursively (addresses, |program, /file, :include:); a
//     "\user" target and a name that is no alias is an account in the
//     passwd database, else "User unknown".
//  2. Any other domain: mailertable (host.dom, .dom, ., with error:,
//     local: and discard: targets), else smart_host, else the domain's MX records
//     (resolved later, by the SMTP transport).
//
// Expansion stops at loops (a name met twice on one path) and at depth
// MaxDepth; every final target appears once.
package route

import (
	"fmt"
	"strings"

	"github.com/gosendmail/gosendmail/pkg/aliases"
	"github.com/gosendmail/gosendmail/pkg/envelope"
	"github.com/gosendmail/gosendmail/pkg/mailerr"
	"github.com/gosendmail/gosendmail/pkg/maps"
)

// MaxDepth bounds alias and virtusertable expansion.
const MaxDepth = 20

// Kind is how a target is delivered.
type Kind int

// Target kinds.
const (
	Mailbox Kind = iota // a local user's mailbox
	Pipe                // |command
	File                // /path
	Remote              // SMTP to another host
	Error               // refused: Err says why
	Discard             // accepted and dropped (mailertable discard:)
)

func (k Kind) String() string {
	return [...]string{"local", "prog", "file", "esmtp", "error", "discard"}[k]
}

// Target is one place a recipient's mail goes.
type Target struct {
	Kind    Kind
	Addr    string // the final address (Remote), or the original recipient
	User    string // Mailbox: the account; Pipe, File: run as this user
	Command string // Pipe
	Path    string // File
	Domain  string // Remote: the destination domain
	Host    string // Remote: a mailertable or smart host; "" = MX of Domain
	Port    int    // Remote: 0 = the configured remote_port
	NoMX    bool   // Remote: Host is used as is ([brackets])
	Err     *mailerr.Error
}

// Key identifies a target for de-duplication.
func (t Target) Key() string {
	switch t.Kind {
	case Mailbox:
		return "mbox:" + t.User
	case Pipe:
		return "pipe:" + t.User + ":" + t.Command
	case File:
		return "file:" + t.User + ":" + t.Path
	case Remote:
		return "smtp:" + strings.ToLower(t.Addr)
	case Discard:
		return "discard:" + strings.ToLower(t.Addr)
	}
	return "error:" + t.Addr
}

// Tables are what routing consults.
type Tables struct {
	Hostname    string
	LocalDomain func(domain string) bool
	Virtual     func(addr string) (maps.Result, bool)
	Aliases     func() *aliases.Map
	// Include reads an :include: file's targets.
	Include func(path string) ([]aliases.Target, error)
	// UserExists reports whether name is an account.
	UserExists func(name string) bool
	// ProgramUser is who runs |program and /file targets of the aliases:
	// never root (the alias file's owner when that is not root).
	ProgramUser string
	Mailertable func(domain string) (maps.Route, bool)
	SmartHost   string // "host", "[host]", "host:port", "[host]:port"
}

// Resolve routes one recipient.
func (t *Tables) Resolve(addr string) []Target {
	r := &resolver{t: t, seen: map[string]bool{}, out: map[string]bool{}}
	r.address(addr, addr, 0, false)
	if len(r.targets) == 0 {
		// Every branch looped back on itself.
		r.fail(addr, mailerr.SMTP(554, "5.4.6", "<%s>... aliasing loop: no delivery possible", addr))
	}
	return r.targets
}

type resolver struct {
	t       *Tables
	seen    map[string]bool // names on the current path (loops)
	out     map[string]bool // target keys already emitted
	targets []Target
}

func (r *resolver) emit(t Target) {
	if k := t.Key(); !r.out[k] {
		r.out[k] = true
		r.targets = append(r.targets, t)
	}
}

func (r *resolver) fail(orig string, e *mailerr.Error) {
	r.emit(Target{Kind: Error, Addr: orig, Err: e})
}

// Split returns the local part and the lowercased domain (no trailing
// dot) of an address; the domain is "" for a bare user name. The split is
// envelope's: at the last '@' outside a quoted local part.
func Split(addr string) (local, domain string) {
	return envelope.Local(addr), strings.TrimSuffix(strings.ToLower(envelope.Domain(addr)), ".")
}

func (r *resolver) isLocal(domain string) bool {
	if domain == "" || domain == strings.ToLower(r.t.Hostname) || domain == "localhost" {
		return true
	}
	return !strings.HasPrefix(domain, "[") && r.t.LocalDomain != nil && r.t.LocalDomain(domain)
}

func (r *resolver) address(addr, orig string, depth int, noAlias bool) {
	if depth > MaxDepth {
		r.fail(orig, mailerr.SMTP(554, "5.4.6", "<%s>... aliasing/forwarding loop broken (%d aliases deep; %d max)", orig, depth, MaxDepth))
		return
	}
	key := strings.ToLower(addr)
	if r.seen[key] {
		// A loop: the name expands to itself. sendmail drops the looping
		// branch; a name that is its own alias delivers locally below.
		return
	}
	r.seen[key] = true
	defer delete(r.seen, key)

	local, domain := Split(addr)
	if !r.isLocal(domain) {
		r.remote(addr, orig, domain, depth)
		return
	}
	if domain != "" && r.t.Virtual != nil && !noAlias {
		if res, ok := r.t.Virtual(addr); ok {
			if res.Error != nil {
				r.fail(orig, mailerr.SMTP(res.Error.Code, res.Error.Enhanced, "<%s>... %s", orig, res.Error.Text))
				return
			}
			target := res.Target
			if !strings.Contains(target, "@") {
				target += "@" + r.t.Hostname
			}
			if strings.EqualFold(target, addr) {
				r.user(Unquote(local), orig, depth, true)
				return
			}
			r.address(target, orig, depth+1, false)
			return
		}
	}
	r.user(Unquote(local), orig, depth, noAlias)
}

// user routes a local name: aliases first, then the account.
func (r *resolver) user(name, orig string, depth int, noAlias bool) {
	name = strings.ToLower(name)
	if !noAlias && r.t.Aliases != nil {
		m := r.t.Aliases()
		targets, ok := m.Lookup(name)
		if !ok {
			if base, _, cut := strings.Cut(name, "+"); cut && base != "" {
				targets, ok = m.Lookup(base)
			}
		}
		if ok {
			key := "alias:" + name
			if r.seen[key] {
				return
			}
			r.seen[key] = true
			defer delete(r.seen, key)
			r.aliasTargets(targets, name, orig, depth)
			return
		}
	}
	if base, _, cut := strings.Cut(name, "+"); cut && base != "" && (r.t.UserExists == nil || !r.t.UserExists(name)) {
		name = base
	}
	if r.t.UserExists != nil && r.t.UserExists(name) {
		r.emit(Target{Kind: Mailbox, Addr: orig, User: name})
		return
	}
	r.fail(orig, mailerr.SMTP(550, "5.1.1", "<%s>... User unknown", orig))
}

func (r *resolver) aliasTargets(targets []aliases.Target, name, orig string, depth int) {
	for _, at := range targets {
		switch at.Kind {
		case aliases.Address:
			v := at.Value
			if strings.EqualFold(v, name) || at.NoAlias {
				// "\user" or a name aliased to itself: the account.
				r.user(strings.TrimPrefix(v, "\\"), orig, depth+1, true)
				continue
			}
			r.address(v, orig, depth+1, false)
		case aliases.Pipe:
			r.emit(Target{Kind: Pipe, Addr: orig, User: r.t.ProgramUser, Command: at.Value})
		case aliases.File:
			r.emit(Target{Kind: File, Addr: orig, User: r.t.ProgramUser, Path: at.Value})
		case aliases.Include:
			if r.t.Include == nil {
				r.fail(orig, mailerr.SMTP(451, "4.3.0", "<%s>... cannot read :include:%s", orig, at.Value))
				continue
			}
			inc, err := r.t.Include(at.Value)
			if err != nil {
				r.fail(orig, mailerr.SMTP(451, "4.3.0", "<%s>... cannot read :include:%s: %v", orig, at.Value, err))
				continue
			}
			r.aliasTargets(inc, name, orig, depth+1)
		}
	}
}

func (r *resolver) remote(addr, orig, domain string, depth int) {
	t := Target{Kind: Remote, Addr: addr, Domain: domain}
	if r.t.Mailertable != nil && !strings.HasPrefix(domain, "[") {
		if rt, ok := r.t.Mailertable(domain); ok {
			switch {
			case rt.Error != nil:
				r.fail(orig, mailerr.SMTP(rt.Error.Code, rt.Error.Enhanced, "<%s>... %s", orig, rt.Error.Text))
				return
			case rt.Mailer == "local":
				user := rt.LocalUser
				if user == "" {
					user, _ = Split(addr)
				}
				r.user(Unquote(user), orig, depth+1, false)
				return
			case rt.Mailer == "discard":
				r.emit(Target{Kind: Discard, Addr: addr, Domain: domain})
				return
			}
			t.Host, t.Port, t.NoMX = rt.Host, rt.Port, rt.NoMX
			r.emit(t)
			return
		}
	}
	if strings.HasPrefix(domain, "[") {
		t.Host, t.NoMX = strings.Trim(domain, "[]"), true
	} else if r.t.SmartHost != "" {
		h, port, nomx, err := ParseHost(r.t.SmartHost)
		if err != nil {
			r.fail(orig, mailerr.SMTP(451, "4.3.5", "smart_host %q: %v", r.t.SmartHost, err))
			return
		}
		t.Host, t.Port, t.NoMX = h, port, nomx
	}
	r.emit(t)
}

// ParseHost reads "host", "[host]", "host:port" or "[host]:port";
// brackets mean no MX lookup.
func ParseHost(s string) (host string, port int, noMX bool, err error) {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", 0, false, fmt.Errorf("unbalanced brackets")
		}
		host, noMX, s = s[1:end], true, s[end+1:]
	} else if i := strings.LastIndexByte(s, ':'); i >= 0 && !strings.Contains(s[:i], ":") {
		host, s = s[:i], s[i:]
	} else {
		host, s = s, ""
	}
	if strings.HasPrefix(s, ":") {
		if _, err := fmt.Sscanf(s[1:], "%d", &port); err != nil || port <= 0 || port > 65535 {
			return "", 0, false, fmt.Errorf("bad port %q", s[1:])
		}
	} else if s != "" {
		return "", 0, false, fmt.Errorf("unexpected %q", s)
	}
	if host == "" {
		return "", 0, false, fmt.Errorf("empty host")
	}
	return host, port, noMX, nil
}

// Unquote removes the quotes of a quoted local part.
func Unquote(l string) string {
	if len(l) >= 2 && l[0] == '"' && l[len(l)-1] == '"' {
		l = l[1 : len(l)-1]
		l = strings.ReplaceAll(l, `\"`, `"`)
		l = strings.ReplaceAll(l, `\\`, `\`)
	}
	return l
}

// Describe is sendmail -bv's line for a target.
func Describe(orig string, t Target) string {
	switch t.Kind {
	case Mailbox:
		return fmt.Sprintf("%s... deliverable: mailer local, user %s", orig, t.User)
	case Pipe:
		return fmt.Sprintf("%s... deliverable: mailer prog, user \"|%s\"", orig, t.Command)
	case File:
		return fmt.Sprintf("%s... deliverable: mailer *file*, user %s", orig, t.Path)
	case Remote:
		host := t.Host
		if host == "" {
			host = t.Domain + "."
		}
		if t.NoMX {
			host = "[" + host + "]"
		}
		return fmt.Sprintf("%s... deliverable: mailer esmtp, host %s, user %s", orig, host, t.Addr)
	case Discard:
		return fmt.Sprintf("%s... deliverable: mailer discard, user %s", orig, t.Addr)
	}
	return orig + "... " + strings.TrimPrefix(t.Err.Msg, "<"+orig+">... ")
}
