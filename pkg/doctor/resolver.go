package doctor

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/gosendmail/gosendmail/pkg/dns"
)

// Resolver is what the checks ask DNS; *dns.Client has it. Its errors
// should be *dns.Error, so that "no such record" (a finding) is told from
// "no answer" (a DNS problem).
type Resolver interface {
	MX(ctx context.Context, domain string) ([]dns.MX, error)
	IP(ctx context.Context, host, family string) ([]netip.Addr, error)
	TXT(ctx context.Context, name string) ([]string, error)
	PTR(ctx context.Context, ip netip.Addr) ([]string, error)
}

var _ Resolver = (*dns.Client)(nil)

// cache asks every question once: the checks look at the same names from
// several sides (the host name's address for the host, PTR and SPF checks),
// and one answer for all of them keeps the report consistent. It is safe
// for concurrent use (dkim.Check asks in parallel).
type cache struct {
	r  Resolver
	mu sync.Mutex
	m  map[string]*entry
}

type entry struct {
	once sync.Once
	v    any
	err  error
}

func newCache(r Resolver) *cache { return &cache{r: r, m: make(map[string]*entry)} }

func cached[T any](c *cache, key string, f func() (T, error)) (T, error) {
	c.mu.Lock()
	e := c.m[key]
	if e == nil {
		e = &entry{}
		c.m[key] = e
	}
	c.mu.Unlock()
	e.once.Do(func() { e.v, e.err = f() })
	v, _ := e.v.(T)
	return v, e.err
}

// canon is a name as a cache key: lower case, no trailing dot.
func canon(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) }

func (c *cache) MX(ctx context.Context, domain string) ([]dns.MX, error) {
	return cached(c, "MX "+canon(domain), func() ([]dns.MX, error) { return c.r.MX(ctx, canon(domain)+".") })
}

func (c *cache) IP(ctx context.Context, host, family string) ([]netip.Addr, error) {
	return cached(c, "IP/"+family+" "+canon(host), func() ([]netip.Addr, error) { return c.r.IP(ctx, canon(host)+".", family) })
}

func (c *cache) TXT(ctx context.Context, name string) ([]string, error) {
	return cached(c, "TXT "+canon(name), func() ([]string, error) { return c.r.TXT(ctx, canon(name)+".") })
}

func (c *cache) PTR(ctx context.Context, ip netip.Addr) ([]string, error) {
	ip = ip.Unmap()
	return cached(c, "PTR "+ip.String(), func() ([]string, error) { return c.r.PTR(ctx, ip) })
}

// LookupTXT is TXT in the shape pkg/dkim's Check wants; it understands
// *dns.Error.
func (c *cache) LookupTXT(ctx context.Context, name string) ([]string, error) {
	return c.TXT(ctx, name)
}

// netResolver gives blitiri's spf the errors it understands: it tells
// "not found" from "try again" only by asserting *net.DNSError (not
// errors.As), so a *dns.Error would read as a permanent failure of unknown
// kind. pkg/authres has the same adapter for its checks; it is not
// exported there.
type netResolver struct{ c *cache }

func (n netResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	txt, err := n.c.TXT(ctx, name)
	return txt, dns.NetError(err, name)
}

func (n netResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	mxs, err := n.c.MX(ctx, name)
	if err != nil {
		return nil, dns.NetError(err, name)
	}
	out := make([]*net.MX, len(mxs))
	for i, mx := range mxs {
		out[i] = &net.MX{Host: mx.Host, Pref: mx.Pref}
	}
	return out, nil
}

func (n netResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	ips, err := n.c.IP(ctx, host, "any")
	if err != nil {
		return nil, dns.NetError(err, host)
	}
	out := make([]net.IPAddr, len(ips))
	for i, ip := range ips {
		out[i] = net.IPAddr{IP: ip.AsSlice()}
	}
	return out, nil
}

func (n netResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return nil, &net.DNSError{Err: "not an IP address", Name: addr, IsNotFound: true}
	}
	names, err := n.c.PTR(ctx, ip)
	return names, dns.NetError(err, addr)
}

// kindOf is the dns.Kind of a lookup error; Temporary for errors that
// are not *dns.Error.
func kindOf(err error) dns.Kind {
	var e *dns.Error
	if errors.As(err, &e) {
		return e.Kind
	}
	if dns.IsNotFound(err) {
		return dns.NXDomain
	}
	return dns.Temporary
}

// unreachable says whether err means the DNS server itself gave no answer
// (silence, a refused or failed connection), as opposed to an answer that
// said something went wrong (SERVFAIL, NXDOMAIN...).
func unreachable(err error) bool {
	if err == nil || kindOf(err) != dns.Temporary {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded)
}

// dnsProblem is a lookup error in a form for the detail column.
func dnsProblem(err error) string {
	var e *dns.Error
	if errors.As(err, &e) {
		s := e.Kind.String()
		if e.Err != nil {
			s += ": " + e.Err.Error()
		}
		return s
	}
	return err.Error()
}
