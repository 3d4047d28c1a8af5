package authres

import (
	"context"
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
	return txt, dns.NetError(err, name)
}

func (n netResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	mx, err := n.r.LookupMX(ctx, name)
	return mx, dns.NetError(err, name)
}

func (n netResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	ips, err := n.r.LookupIPAddr(ctx, host)
	return ips, dns.NetError(err, host)
}

func (n netResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	names, err := n.r.LookupAddr(ctx, addr)
	return names, dns.NetError(err, addr)
}

// txtFunc is LookupTXT in the shape go-msgauth wants, bound to ctx.
func (n netResolver) txtFunc(ctx context.Context) func(string) ([]string, error) {
	return func(name string) ([]string, error) {
		return n.LookupTXT(ctx, name)
	}
}
