package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

const (
	// ednsSize is the UDP payload size we advertise: large enough for any
	// sane MX or TXT (DKIM key) answer, small enough not to fragment. It is
	// the value DNS Flag Day 2020 recommended.
	ednsSize = 1232

	// udpTries is how often a question is sent over UDP before giving up:
	// one retry, because a lost datagram is common and cheap to repeat,
	// while a dead server should not hold the queue runner for long.
	udpTries = 2

	// maxCNAME bounds a CNAME chain, so a loop in someone's zone cannot
	// keep us asking forever.
	maxCNAME = 8

	// DefaultTimeout is the per-attempt timeout when New is given none;
	// glibc's default (resolv.conf "timeout:5").
	DefaultTimeout = 5 * time.Second

	resolvConf = "/etc/resolv.conf"
)

// MX is one mail exchanger record.
type MX struct {
	Host string // fully qualified, lower case, with the trailing dot
	Pref uint16
}

// Client is a stub resolver that asks one recursive server and reports
// NXDOMAIN, NODATA and failures apart. It is safe for concurrent use; it
// keeps no cache and no connections between lookups.
type Client struct {
	server  string
	timeout time.Duration
}

var _ Resolver = (*Client)(nil)

// New returns a client asking server ("host:port"; a bare host gets port
// 53). An empty server means the first nameserver in /etc/resolv.conf,
// read now, or 127.0.0.1:53 if there is none (what the C library does).
// timeout bounds each attempt; 0 means DefaultTimeout. A lookup makes at
// most two UDP attempts and, on a truncated answer, one TCP attempt; the
// context can cut that short.
func New(server string, timeout time.Duration) *Client {
	if server == "" {
		server = systemServer(resolvConf)
	} else if _, _, err := net.SplitHostPort(server); err != nil {
		server = net.JoinHostPort(strings.Trim(server, "[]"), "53")
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Client{server: server, timeout: timeout}
}

// Server is the "host:port" the client asks.
func (c *Client) Server() string { return c.server }

func systemServer(path string) string {
	cfg, err := dns.ClientConfigFromFile(path)
	if err != nil || len(cfg.Servers) == 0 {
		return "127.0.0.1:53"
	}
	port := cfg.Port
	if port == "" {
		port = "53"
	}
	return net.JoinHostPort(cfg.Servers[0], port)
}

// MX returns the MX records of domain in the order the server gave them;
// Route sorts them. A domain without MX records fails with NoData.
func (c *Client) MX(ctx context.Context, domain string) ([]MX, error) {
	rrs, err := c.lookup(ctx, domain, dns.TypeMX)
	if err != nil {
		return nil, err
	}
	out := make([]MX, 0, len(rrs))
	for _, rr := range rrs {
		mx := rr.(*dns.MX)
		out = append(out, MX{Host: dns.CanonicalName(mx.Mx), Pref: mx.Preference})
	}
	return out, nil
}

// IP returns the addresses of host in family "inet" (A records), "inet6"
// (AAAA) or "any" (or ""; AAAA first, then A, each family asked in
// parallel). An address literal is returned as is if its family fits.
// With "any", one family's addresses are enough: the other's failure is
// reported only when neither has any.
func (c *Client) IP(ctx context.Context, host, family string) ([]netip.Addr, error) {
	var want []uint16
	switch family {
	case "", "any":
		want = []uint16{dns.TypeAAAA, dns.TypeA}
	case "inet":
		want = []uint16{dns.TypeA}
	case "inet6":
		want = []uint16{dns.TypeAAAA}
	default:
		return nil, fmt.Errorf("dns: unknown address family %q (want any, inet or inet6)", family)
	}
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		ip = ip.Unmap()
		for _, t := range want {
			if (t == dns.TypeA) == ip.Is4() {
				return []netip.Addr{ip}, nil
			}
		}
		return nil, &Error{Name: host, Type: typeName(want), Kind: NoData,
			Err: fmt.Errorf("address literal is not of family %s", family)}
	}

	addrs := make([][]netip.Addr, len(want))
	errs := make([]error, len(want))
	var wg sync.WaitGroup
	for i, t := range want {
		wg.Go(func() {
			addrs[i], errs[i] = c.addrs(ctx, host, t)
		})
	}
	wg.Wait()

	var out []netip.Addr
	for _, a := range addrs {
		out = append(out, a...)
	}
	if len(out) > 0 {
		return out, nil
	}
	return nil, combine(host, typeName(want), errs)
}

func (c *Client) addrs(ctx context.Context, host string, qtype uint16) ([]netip.Addr, error) {
	rrs, err := c.lookup(ctx, host, qtype)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, 0, len(rrs))
	for _, rr := range rrs {
		var raw net.IP
		switch rr := rr.(type) {
		case *dns.A:
			raw = rr.A
		case *dns.AAAA:
			raw = rr.AAAA
		}
		if ip, ok := netip.AddrFromSlice(raw); ok {
			out = append(out, ip.Unmap())
		}
	}
	return out, nil
}

// combine reports why no family gave an address. A temporary failure wins,
// because the address may well exist; then NODATA, because one answer said
// the name exists.
func combine(host, typ string, errs []error) error {
	var best *Error
	for _, err := range errs {
		e := asError(err, host, typ)
		if best == nil || rank(e.Kind) > rank(best.Kind) {
			best = e
		}
	}
	if len(errs) == 1 {
		return best
	}
	merged := *best
	merged.Type = typ
	return &merged
}

func rank(k Kind) int {
	switch k {
	case Temporary:
		return 3
	case NoData:
		return 2
	}
	return 1
}

func typeName(types []uint16) string {
	names := make([]string, len(types))
	for i, t := range types {
		names[i] = dns.TypeToString[t]
	}
	return strings.Join(names, "/")
}

// TXT returns the TXT records of name, each record's strings joined into
// one, as SPF (RFC 7208 section 3.3) and DKIM (RFC 6376 section 3.6.2.2)
// read them.
func (c *Client) TXT(ctx context.Context, name string) ([]string, error) {
	rrs, err := c.lookup(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		out = append(out, strings.Join(rr.(*dns.TXT).Txt, ""))
	}
	return out, nil
}

// PTR returns the names ip points back to (fully qualified, lower case,
// trailing dot).
func (c *Client) PTR(ctx context.Context, ip netip.Addr) ([]string, error) {
	arpa, err := dns.ReverseAddr(ip.Unmap().String())
	if err != nil {
		return nil, &Error{Name: ip.String(), Type: "PTR", Kind: NXDomain, Err: err}
	}
	rrs, err := c.lookup(ctx, arpa, dns.TypePTR)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		out = append(out, dns.CanonicalName(rr.(*dns.PTR).Ptr))
	}
	return out, nil
}

// LookupMX is MX in the shape of *net.Resolver, for the Resolver interface.
func (c *Client) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	mxs, err := c.MX(ctx, name)
	if err != nil {
		return nil, err
	}
	out := make([]*net.MX, len(mxs))
	for i, mx := range mxs {
		out[i] = &net.MX{Host: mx.Host, Pref: mx.Pref}
	}
	return out, nil
}

// LookupIPAddr is IP(ctx, host, "any") in the shape of *net.Resolver.
func (c *Client) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	ips, err := c.IP(ctx, host, "any")
	if err != nil {
		return nil, err
	}
	out := make([]net.IPAddr, len(ips))
	for i, ip := range ips {
		out[i] = net.IPAddr{IP: ip.AsSlice()}
	}
	return out, nil
}

// LookupTXT is TXT in the shape of *net.Resolver.
func (c *Client) LookupTXT(ctx context.Context, name string) ([]string, error) {
	return c.TXT(ctx, name)
}

// LookupAddr is PTR in the shape of *net.Resolver.
func (c *Client) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return nil, &Error{Name: addr, Type: "PTR", Kind: NXDomain, Err: err}
	}
	return c.PTR(ctx, ip)
}

// errMismatch is a reply that does not answer our question: a confused or
// spoofing middlebox. miekg/dns checks only the ID.
var errMismatch = errors.New("reply does not match the question")

// lookup returns the records of type qtype owned by name, following CNAMEs
// (RFC 1034 section 3.6.2): those in the answer, and, when the server
// stopped at a CNAME, by asking again for its target.
func (c *Client) lookup(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	display := strings.TrimSuffix(name, ".")
	typ := dns.TypeToString[qtype]
	fail := func(k Kind, err error) *Error {
		return &Error{Name: display, Type: typ, Kind: k, Server: c.server, Err: err}
	}
	target := dns.Fqdn(name)
	if _, ok := dns.IsDomainName(target); !ok || target == "." {
		// No such name can exist; asking would only bother the server.
		return nil, &Error{Name: display, Type: typ, Kind: NXDomain, Err: errors.New("not a valid domain name")}
	}

	links := 0
	for {
		r, err := c.exchange(ctx, target, qtype)
		if err != nil {
			return nil, fail(Temporary, err)
		}
		switch r.Rcode {
		case dns.RcodeSuccess:
		case dns.RcodeNameError:
			// After a CNAME this is about the chain's last name (RFC 6604
			// section 2); either way name has no records.
			return nil, fail(NXDomain, nil)
		default:
			return nil, fail(Temporary, errors.New(dns.RcodeToString[r.Rcode]))
		}
		rrs, last, n := follow(r.Answer, target, qtype)
		links += n
		if links > maxCNAME {
			return nil, fail(Temporary, errors.New("CNAME chain too long"))
		}
		if len(rrs) > 0 {
			return rrs, nil
		}
		if last == target {
			return nil, fail(NoData, nil)
		}
		target = last
	}
}

// follow walks the CNAME chain from name within one answer section and
// returns the records of qtype at its end, the name it ended on and the
// number of links taken. It stops early when the chain loops or runs past
// maxCNAME; lookup reports that.
func follow(answer []dns.RR, name string, qtype uint16) ([]dns.RR, string, int) {
	links := 0
	for {
		var rrs []dns.RR
		next := ""
		for _, rr := range answer {
			h := rr.Header()
			if h.Class != dns.ClassINET || !strings.EqualFold(h.Name, name) {
				continue
			}
			if h.Rrtype == qtype {
				rrs = append(rrs, rr)
			} else if cn, ok := rr.(*dns.CNAME); ok {
				next = cn.Target
			}
		}
		if len(rrs) > 0 || next == "" || links > maxCNAME {
			return rrs, name, links
		}
		name = next
		links++
	}
}

// exchange asks one question: over UDP, once more if no answer came, then
// over TCP if the answer was truncated (RFC 7766 section 5: a truncated
// answer must not be used as if it were complete).
func (c *Client) exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.SetEdns0(ednsSize, false)

	var err error
	for range udpTries {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		q.Id = dns.Id() // a fresh ID, so a late reply to the first try cannot pass as the second's
		var r *dns.Msg
		r, err = c.once(ctx, "udp", q)
		if r != nil && r.Truncated {
			return c.once(ctx, "tcp", q)
		}
		if err == nil {
			return r, nil
		}
	}
	return nil, err
}

// once sends q over network and checks that the reply answers it. A
// truncated UDP reply is returned even if it did not parse, so the caller
// can switch to TCP.
func (c *Client) once(ctx context.Context, network string, q *dns.Msg) (*dns.Msg, error) {
	cl := &dns.Client{Net: network, Timeout: c.timeout, UDPSize: ednsSize}
	r, _, err := cl.ExchangeContext(ctx, q, c.server)
	if err != nil {
		if network == "udp" && r != nil && r.Truncated {
			return r, nil
		}
		return nil, err
	}
	if !r.Response || len(r.Question) != 1 ||
		r.Question[0].Qtype != q.Question[0].Qtype ||
		!strings.EqualFold(r.Question[0].Name, q.Question[0].Name) {
		return nil, errMismatch
	}
	return r, nil
}
