package dns

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// Resolver is what routing needs from DNS. *net.Resolver satisfies it, and
// so does *Client, which also tells NXDOMAIN from NODATA.
type Resolver interface {
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

var _ Resolver = (*net.Resolver)(nil)

// Host is one host to try for a domain, in order.
type Host struct {
	Name string // fully qualified, lower case, with the trailing dot
	Pref uint16
}

// Route returns the hosts to try, in order, for mail to domain: the MX walk
// of RFC 5321 section 5.1, with null MX (RFC 7505). See the package doc for
// the rules and the errors. Every error is a *mailerr.Error wrapping an
// *Error, so both mailerr's helpers and errors.As(err, **dns.Error) work.
//
// self, if not nil, reports whether a host name (as in Host.Name) is this
// host; MatchNames builds one. Hosts at or above our own preference are
// dropped; if nothing better than us is left, Route fails with MXLoop.
func Route(ctx context.Context, domain string, r Resolver, self func(name string) bool) ([]Host, error) {
	name := strings.ToLower(strings.TrimSuffix(domain, "."))
	if _, ok := dns.IsDomainName(name); !ok || name == "" || strings.HasPrefix(name, "[") {
		return nil, (&Error{Name: domain, Type: "MX", Kind: NXDomain, Err: errors.New("not a valid domain name")}).mailError()
	}
	// The trailing dot keeps *net.Resolver from trying resolv.conf's search
	// list: "example" must not become "example.corp.local".
	fqdn := name + "."

	mxs, err := r.LookupMX(ctx, fqdn)
	if err != nil {
		e := asError(err, name, "MX")
		if e.Kind == Temporary || (e.Kind == NXDomain && isOurs(err)) {
			return nil, e.mailError()
		}
		// NODATA, or a resolver that cannot tell NODATA from NXDOMAIN: the
		// address lookup of the implicit MX decides.
		return implicitMX(ctx, name, fqdn, r, self)
	}

	hosts := make([]Host, 0, len(mxs))
	nulls := 0
	for _, mx := range mxs {
		if mx == nil {
			continue
		}
		h := dns.CanonicalName(mx.Host)
		if h == "." {
			nulls++
			continue
		}
		hosts = append(hosts, Host{Name: h, Pref: mx.Pref})
	}
	if len(hosts) == 0 {
		if nulls > 0 {
			return nil, (&Error{Name: name, Type: "MX", Kind: NullMX}).mailError()
		}
		// An empty answer without an error (a fake resolver might give
		// one) means the same as NODATA.
		return implicitMX(ctx, name, fqdn, r, self)
	}

	hosts = order(hosts)
	if self != nil {
		return dropSelf(name, hosts, self)
	}
	return hosts, nil
}

// isOurs reports whether err came from our Client, whose NXDomain is
// certain; *net.Resolver's "not found" may be NODATA.
func isOurs(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

// implicitMX is RFC 5321 section 5.1's fallback: no MX records, so the
// domain itself is the one host, at preference 0, if it has an address.
func implicitMX(ctx context.Context, name, fqdn string, r Resolver, self func(string) bool) ([]Host, error) {
	addrs, err := r.LookupIPAddr(ctx, fqdn)
	if err != nil {
		return nil, asError(err, name, "A/AAAA").mailError()
	}
	if len(addrs) == 0 {
		return nil, (&Error{Name: name, Type: "A/AAAA", Kind: NoData}).mailError()
	}
	if self != nil && self(fqdn) {
		return nil, (&Error{Name: name, Type: "A/AAAA", Kind: MXLoop,
			Err: errors.New("no MX records and the domain itself is this host")}).mailError()
	}
	return []Host{{Name: fqdn, Pref: 0}}, nil
}

// order sorts hosts by preference and shuffles those of equal preference
// (RFC 5321 section 5.1), keeping each host once at its best preference.
func order(hosts []Host) []Host {
	// Shuffle first, then sort stably: the sort keeps the random order
	// within each preference.
	rand.Shuffle(len(hosts), func(i, j int) { hosts[i], hosts[j] = hosts[j], hosts[i] })
	slices.SortStableFunc(hosts, func(a, b Host) int { return cmp.Compare(a.Pref, b.Pref) })
	seen := make(map[string]bool, len(hosts))
	out := hosts[:0]
	for _, h := range hosts {
		if !seen[h.Name] {
			seen[h.Name] = true
			out = append(out, h)
		}
	}
	return out
}

// dropSelf removes this host and every host not better than it: they would
// relay the mail back to us or to each other (RFC 5321 section 5.1).
func dropSelf(domain string, hosts []Host, self func(string) bool) ([]Host, error) {
	me := -1
	for i, h := range hosts {
		if self(h.Name) {
			me = i
			break // hosts are sorted: the first match is our best preference
		}
	}
	if me < 0 {
		return hosts, nil
	}
	best, us := hosts[me].Pref, hosts[me].Name
	kept := slices.DeleteFunc(hosts, func(h Host) bool { return h.Pref >= best })
	if len(kept) == 0 {
		return nil, (&Error{Name: domain, Type: "MX", Kind: MXLoop,
			Err: fmt.Errorf("this host (%s) is the best MX", strings.TrimSuffix(us, "."))}).mailError()
	}
	return kept, nil
}

// MatchNames returns a self function for Route that matches any of names
// (this host's name and aliases), ignoring case and a trailing dot.
func MatchNames(names ...string) func(name string) bool {
	set := make(map[string]bool, len(names))
	for _, n := range names {
		set[dns.CanonicalName(n)] = true
	}
	return func(name string) bool { return set[dns.CanonicalName(name)] }
}
