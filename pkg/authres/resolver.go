package authres

import (
	"context"
	"errors"
	"net"

	"github.com/gosendmail/gosendmail/pkg/dns"
)

// netResolver hands the libraries the errors they understand. blitiri's
// spf and go-msgauth tell "not found" from "try again" only by asserting
// *net.DNSError (not errors.As), so a *dns.Error from our client would
// read as a permanent failure of unknown kind: a SERVFAIL would become
// permerror and an NXDOMAIN would not count as a void lookup.
type netResolver struct {
	r dns.Resolver
}

var _ dns.Resolver = netResolver{}

func (n netResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	txt, err := n.r.LookupTXT(ctx, name)
	return txt, netError(err, name)
}

func (n netResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	mx, err := n.r.LookupMX(ctx, name)
	return mx, netError(err, name)
}

func (n netResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	ips, err := n.r.LookupIPAddr(ctx, host)
	return ips, netError(err, host)
}

func (n netResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	names, err := n.r.LookupAddr(ctx, addr)
	return names, netError(err, addr)
}

// netError is err as a *net.DNSError. The server's address is left out on
// purpose: error texts end up in the header as reasons, and the recipient
// has no business knowing our resolver.
func netError(err error, name string) error {
	if err == nil {
		return nil
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		return de
	}
	out := &net.DNSError{Err: "lookup failed", Name: name}
	switch {
	case dns.IsNotFound(err):
		out.Err = "no such record"
		out.IsNotFound = true
	case errors.Is(err, context.DeadlineExceeded):
		out.Err = "timeout"
		out.IsTimeout = true
		out.IsTemporary = true
	default:
		// dns.IsTemporary is true for errors it does not know, which is
		// what we want: temperror never loses mail, permerror might.
		out.IsTemporary = dns.IsTemporary(err)
		var e *dns.Error
		if errors.As(err, &e) {
			out.Err = e.Kind.String()
		}
	}
	return out
}

// txtFunc is LookupTXT in the shape go-msgauth wants, bound to ctx.
func (n netResolver) txtFunc(ctx context.Context) func(string) ([]string, error) {
	return func(name string) ([]string, error) {
		return n.LookupTXT(ctx, name)
	}
}
