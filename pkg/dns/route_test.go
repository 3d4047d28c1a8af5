package dns_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gosendmail/gosendmail/pkg/dns"
	"github.com/gosendmail/gosendmail/pkg/dns/dnstest"
	"github.com/gosendmail/gosendmail/pkg/mailerr"
)

func names(hosts []dns.Host) string {
	var s []string
	for _, h := range hosts {
		s = append(s, h.Name)
	}
	return strings.Join(s, " ")
}

// checkMailErr checks that err is a *mailerr.Error with the given codes and
// text, wrapping a *dns.Error of kind k.
func checkMailErr(t *testing.T, err error, code int, enhanced string, temporary bool, text string, k dns.Kind) {
	t.Helper()
	var me *mailerr.Error
	if !errors.As(err, &me) {
		t.Fatalf("error %v (%T) is not a *mailerr.Error", err, err)
	}
	if me.Code != code || me.Enhanced != enhanced || me.Temporary != temporary || me.Msg != text {
		t.Errorf("error = %d %s temporary=%v %q, want %d %s temporary=%v %q",
			me.Code, me.Enhanced, me.Temporary, me.Msg, code, enhanced, temporary, text)
	}
	if mailerr.IsTemporary(err) != temporary {
		t.Errorf("mailerr.IsTemporary(%v) = %v", err, !temporary)
	}
	if got := kindOf(t, err); got != k {
		t.Errorf("kind %v, want %v", got, k)
	}
}

func TestRouteOrderAndShuffle(t *testing.T) {
	srv, c := newClient(t)
	srv.MX("example.com", 20, "c.example.com")
	srv.MX("example.com", 10, "a.example.com")
	srv.MX("example.com", 10, "b.example.com")
	srv.MX("example.com", 5, "first.example.com")
	srv.MX("example.com", 30, "A.example.com") // a duplicate at a worse preference

	seen := map[string]bool{}
	for range 50 {
		hosts, err := dns.Route(context.Background(), "example.com", c, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := names(hosts)
		switch got {
		case "first.example.com. a.example.com. b.example.com. c.example.com.",
			"first.example.com. b.example.com. a.example.com. c.example.com.":
		default:
			t.Fatalf("Route = %s", got)
		}
		if hosts[1].Pref != 10 || hosts[3].Pref != 20 {
			t.Fatalf("preferences = %v", hosts)
		}
		seen[got] = true
		if len(seen) == 2 {
			break
		}
	}
	// Each try picks an order with probability 1/2: both are seen within
	// 50 tries except with probability 2^-49.
	if len(seen) != 2 {
		t.Errorf("hosts of equal preference were never shuffled: only %v", seen)
	}
}

func TestRouteImplicitMX(t *testing.T) {
	srv, c := newClient(t)
	srv.A("v4.example.com", "192.0.2.1")
	srv.AAAA("v6.example.com", "2001:db8::1")
	srv.CNAME("alias.example.com", "v4.example.com")
	ctx := context.Background()

	for _, domain := range []string{"v4.example.com", "V6.Example.Com.", "alias.example.com"} {
		hosts, err := dns.Route(ctx, domain, c, nil)
		want := []dns.Host{{Name: strings.ToLower(strings.TrimSuffix(domain, ".")) + ".", Pref: 0}}
		if err != nil || !slices.Equal(hosts, want) {
			t.Errorf("Route(%s) = %v, %v; want %v", domain, hosts, err, want)
		}
	}
}

func TestRouteHostUnknown(t *testing.T) {
	srv, c := newClient(t)
	srv.TXT("noaddr.example.com", "v=spf1 -all")
	ctx := context.Background()

	_, err := dns.Route(ctx, "nx.example.com", c, nil)
	checkMailErr(t, err, 550, "5.1.2", false, "Host unknown (Name server: nx.example.com: host not found)", dns.NXDomain)
	if got := mailerr.ExitCode(err); got != mailerr.ExNoHost {
		t.Errorf("ExitCode %d, want EX_NOHOST", got)
	}
	// NXDOMAIN for MX settles it: no address lookup follows.
	if q := srv.Queries(); len(q) != 1 || q[0].Type != "MX" {
		t.Errorf("queries = %v, want the MX query only", q)
	}

	// The domain exists but has neither MX nor address.
	_, err = dns.Route(ctx, "noaddr.example.com", c, nil)
	checkMailErr(t, err, 550, "5.1.2", false, "Host unknown (Name server: noaddr.example.com: no data known)", dns.NoData)

	_, err = dns.Route(ctx, "bad..name", c, nil)
	checkMailErr(t, err, 550, "5.1.2", false, "Host unknown (Name server: bad..name: host not found)", dns.NXDomain)
}

func TestRouteNullMX(t *testing.T) {
	srv, c := newClient(t)
	srv.NullMX("nomail.example.com")
	srv.A("nomail.example.com", "192.0.2.1") // a web server: must not get mail
	srv.NullMX("mixed.example.com")
	srv.MX("mixed.example.com", 10, "mx.example.com")
	ctx := context.Background()

	_, err := dns.Route(ctx, "nomail.example.com", c, nil)
	checkMailErr(t, err, 556, "5.1.10", false, "Domain does not accept mail (Name server: nomail.example.com: null MX)", dns.NullMX)
	for _, q := range srv.Queries() {
		if q.Type != "MX" {
			t.Errorf("null MX domain was looked up further: %v", q)
		}
	}

	hosts, err := dns.Route(ctx, "mixed.example.com", c, nil)
	if err != nil || names(hosts) != "mx.example.com." {
		t.Errorf("null MX among real ones: %v, %v; want mx.example.com.", hosts, err)
	}
}

func TestRouteTemporary(t *testing.T) {
	srv := dnstest.NewServer(t)
	c := dns.New(srv.Addr(), 100*time.Millisecond)
	srv.ServFail("servfail.example.com")
	srv.Timeout("slow.example.com")
	srv.CNAME("noaddr.example.com", "broken.example.net") // MX: NODATA via the alias...
	srv.ServFail("broken.example.net")                    // ...and its address fails
	ctx := context.Background()

	for _, domain := range []string{"servfail.example.com", "slow.example.com"} {
		_, err := dns.Route(ctx, domain, c, nil)
		checkMailErr(t, err, 451, "4.4.3", true, "Name server: "+domain+": host name lookup failure", dns.Temporary)
		if code, enh := mailerr.SMTPCode(err); code != 451 || enh != "4.4.3" {
			t.Errorf("SMTPCode = %d %s", code, enh)
		}
	}
	_, err := dns.Route(ctx, "noaddr.example.com", c, nil)
	if !mailerr.IsTemporary(err) || !dns.IsTemporary(err) {
		t.Errorf("Route with a failing alias target: %v, want temporary", err)
	}
}

func TestRouteSelf(t *testing.T) {
	srv, c := newClient(t)
	srv.MX("backup.example.com", 10, "primary.example.com")
	srv.MX("backup.example.com", 20, "ME.example.org") // us, as the backup MX
	srv.MX("backup.example.com", 20, "peer.example.com")
	srv.MX("backup.example.com", 30, "last.example.com")
	srv.MX("loop.example.com", 10, "me.example.org")
	srv.MX("loop.example.com", 20, "other.example.com")
	srv.A("me.example.org", "192.0.2.25") // implicit MX is us
	srv.MX("elsewhere.example.com", 10, "mx.example.com")
	self := dns.MatchNames("me.example.org.", "localhost")
	ctx := context.Background()

	hosts, err := dns.Route(ctx, "backup.example.com", c, self)
	if err != nil || !slices.Equal(hosts, []dns.Host{{Name: "primary.example.com.", Pref: 10}}) {
		t.Errorf("Route as backup MX = %v, %v; want primary only", hosts, err)
	}
	hosts, err = dns.Route(ctx, "elsewhere.example.com", c, self)
	if err != nil || names(hosts) != "mx.example.com." {
		t.Errorf("Route elsewhere = %v, %v", hosts, err)
	}

	for _, domain := range []string{"loop.example.com", "me.example.org"} {
		_, err = dns.Route(ctx, domain, c, self)
		checkMailErr(t, err, 554, "5.4.6", false, domain+" config error: mail loops back to me (MX problem?)", dns.MXLoop)
		if got := mailerr.ExitCode(err); got != mailerr.ExConfig {
			t.Errorf("ExitCode %d, want EX_CONFIG", got)
		}
	}
}

func TestMatchNames(t *testing.T) {
	self := dns.MatchNames("Mail.Example.com", "mx.example.com.")
	for name, want := range map[string]bool{
		"mail.example.com.": true, "MAIL.EXAMPLE.COM": true, "mx.example.com": true,
		"example.com.": false, "mail.example.com.evil.": false,
	} {
		if self(name) != want {
			t.Errorf("self(%q) = %v", name, !want)
		}
	}
}

// Route works with the standard library's resolver too (the Resolver
// seam): it cannot tell NXDOMAIN from NODATA, and the address lookup then
// decides.
func TestRouteWithNetResolver(t *testing.T) {
	srv := dnstest.NewServer(t)
	srv.MX("example.com", 10, "mx2.example.com")
	srv.MX("example.com", 5, "mx1.example.com")
	srv.A("implicit.example.com", "192.0.2.1")
	srv.NullMX("nomail.example.com")
	srv.ServFail("servfail.example.com")
	r := &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, srv.Addr())
		},
	}
	ctx := context.Background()

	if hosts, err := dns.Route(ctx, "example.com", r, nil); err != nil || names(hosts) != "mx1.example.com. mx2.example.com." {
		t.Errorf("MX = %v, %v", hosts, err)
	}
	if hosts, err := dns.Route(ctx, "implicit.example.com", r, nil); err != nil || names(hosts) != "implicit.example.com." {
		t.Errorf("implicit MX = %v, %v", hosts, err)
	}
	_, err := dns.Route(ctx, "nx.example.com", r, nil)
	if code, enh := mailerr.SMTPCode(err); code != 550 || enh != "5.1.2" || mailerr.IsTemporary(err) {
		t.Errorf("NXDOMAIN: %v (%d %s)", err, code, enh)
	}
	_, err = dns.Route(ctx, "nomail.example.com", r, nil)
	if code, enh := mailerr.SMTPCode(err); code != 556 || enh != "5.1.10" {
		t.Errorf("null MX: %v (%d %s)", err, code, enh)
	}
	_, err = dns.Route(ctx, "servfail.example.com", r, nil)
	if !mailerr.IsTemporary(err) {
		t.Errorf("SERVFAIL: %v, want temporary", err)
	}
	// Only the rooted names were asked: no search domain was appended.
	asked := []string{"example.com.", "implicit.example.com.", "nx.example.com.", "nomail.example.com.", "servfail.example.com."}
	for _, q := range srv.Queries() {
		if !slices.Contains(asked, q.Name) {
			t.Errorf("unexpected query %v", q)
		}
	}
}
