package dns_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/gosendmail/gosendmail/pkg/dns"
	"github.com/gosendmail/gosendmail/pkg/dns/dnstest"
	"github.com/gosendmail/gosendmail/pkg/mailerr"
)

// newClient returns a test server and a client asking it. The timeout is
// short so tests of silence stay fast, and long enough for a loaded CI
// machine to answer on loopback.
func newClient(t *testing.T) (*dnstest.Server, *dns.Client) {
	t.Helper()
	srv := dnstest.NewServer(t)
	return srv, dns.New(srv.Addr(), 300*time.Millisecond)
}

func kindOf(t *testing.T, err error) dns.Kind {
	t.Helper()
	var e *dns.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *dns.Error", err, err)
	}
	return e.Kind
}

func TestMX(t *testing.T) {
	srv, c := newClient(t)
	srv.MX("Example.COM", 10, "MX1.example.com")
	srv.MX("example.com", 20, "mx2.example.com.")

	mxs, err := c.MX(context.Background(), "example.com")
	if err != nil {
		t.Fatal(err)
	}
	want := []dns.MX{{Host: "mx1.example.com.", Pref: 10}, {Host: "mx2.example.com.", Pref: 20}}
	if !slices.Equal(mxs, want) {
		t.Errorf("MX = %v, want %v", mxs, want)
	}
}

// NXDOMAIN and NODATA are both "not found" and both permanent, but they are
// different answers: only NODATA lets the MX walk fall back to the address.
func TestNXDomainAndNoData(t *testing.T) {
	srv, c := newClient(t)
	srv.A("host.example.com", "192.0.2.1")
	ctx := context.Background()

	_, err := c.MX(ctx, "nx.example.com")
	if k := kindOf(t, err); k != dns.NXDomain {
		t.Errorf("MX of a missing name: kind %v, want NXDomain", k)
	}
	_, err2 := c.MX(ctx, "host.example.com")
	if k := kindOf(t, err2); k != dns.NoData {
		t.Errorf("MX of a name with only A: kind %v, want NoData", k)
	}
	for _, err := range []error{err, err2} {
		if !dns.IsNotFound(err) || dns.IsTemporary(err) || mailerr.IsTemporary(err) {
			t.Errorf("%v: IsNotFound %v, IsTemporary %v, mailerr.IsTemporary %v; want true, false, false",
				err, dns.IsNotFound(err), dns.IsTemporary(err), mailerr.IsTemporary(err))
		}
		if code, enh := mailerr.SMTPCode(err); code != 550 || enh != "5.1.2" {
			t.Errorf("%v: SMTPCode %d %s, want 550 5.1.2", err, code, enh)
		}
		if got := mailerr.ExitCode(err); got != mailerr.ExNoHost {
			t.Errorf("%v: ExitCode %d, want %d", err, got, mailerr.ExNoHost)
		}
	}
	var e *dns.Error
	errors.As(err, &e)
	if e.Name != "nx.example.com" || e.Type != "MX" || e.Server != srv.Addr() {
		t.Errorf("error fields = %+v", e)
	}
}

func TestServFail(t *testing.T) {
	srv, c := newClient(t)
	srv.MX("example.com", 10, "mx.example.com")
	srv.ServFail("example.com")

	_, err := c.MX(context.Background(), "example.com")
	if k := kindOf(t, err); k != dns.Temporary {
		t.Fatalf("kind %v, want Temporary", k)
	}
	if !dns.IsTemporary(err) || dns.IsNotFound(err) || !mailerr.IsTemporary(err) {
		t.Errorf("%v: not reported as temporary", err)
	}
	if code, enh := mailerr.SMTPCode(err); code != 451 || enh != "4.4.3" {
		t.Errorf("SMTPCode %d %s, want 451 4.4.3", code, enh)
	}
	if !strings.Contains(err.Error(), "SERVFAIL") {
		t.Errorf("error %q does not name SERVFAIL", err)
	}
	// SERVFAIL is an answer: asking the same server again at once would
	// only get it again. The queue retries later.
	if n := len(srv.Queries()); n != 1 {
		t.Errorf("%d queries, want 1", n)
	}
}

func TestTimeoutRetriesOnce(t *testing.T) {
	srv := dnstest.NewServer(t)
	srv.Timeout("slow.example.com")
	c := dns.New(srv.Addr(), 100*time.Millisecond)

	start := time.Now()
	_, err := c.IP(context.Background(), "slow.example.com", "inet")
	elapsed := time.Since(start)
	if k := kindOf(t, err); k != dns.Temporary {
		t.Fatalf("kind %v, want Temporary", k)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("cause of %v is not a timeout", err)
	}
	if elapsed > 2*time.Second {
		t.Errorf("took %v; the timeout is 100ms per try", elapsed)
	}
	if n := len(srv.Queries()); n != 2 {
		t.Errorf("%d queries, want 2 (one retry)", n)
	}
}

func TestContextCancelled(t *testing.T) {
	srv, c := newClient(t)
	srv.A("host.example.com", "192.0.2.1")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.IP(ctx, "host.example.com", "inet")
	if !dns.IsTemporary(err) || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled lookup: %v, want a temporary error wrapping context.Canceled", err)
	}
}

func TestCNAME(t *testing.T) {
	srv, c := newClient(t)
	srv.CNAME("www.example.com", "web.example.net")
	srv.CNAME("web.example.net", "host.example.org")
	srv.A("host.example.org", "192.0.2.7")
	srv.MX("alias.example.com", 0, "ignored.example.com") // not at the alias target
	srv.CNAME("mail.example.com", "real.example.org")
	srv.MX("real.example.org", 5, "mx.example.org")
	srv.CNAME("dangling.example.com", "nx.example.org")
	srv.CNAME("loop1.example.com", "loop2.example.com")
	srv.CNAME("loop2.example.com", "loop1.example.com")
	ctx := context.Background()

	ips, err := c.IP(ctx, "www.example.com", "inet")
	if err != nil || len(ips) != 1 || ips[0] != netip.MustParseAddr("192.0.2.7") {
		t.Errorf("IP via two CNAMEs = %v, %v", ips, err)
	}
	mxs, err := c.MX(ctx, "mail.example.com")
	if err != nil || len(mxs) != 1 || mxs[0].Host != "mx.example.org." {
		t.Errorf("MX via CNAME = %v, %v", mxs, err)
	}
	if _, err := c.IP(ctx, "dangling.example.com", "inet"); kindOf(t, err) != dns.NXDomain {
		t.Errorf("CNAME to a missing name: %v, want NXDomain", err)
	}
	if _, err := c.IP(ctx, "loop1.example.com", "inet"); kindOf(t, err) != dns.Temporary ||
		!strings.Contains(err.Error(), "CNAME chain") {
		t.Errorf("CNAME loop: %v, want a temporary CNAME chain error", err)
	}
}

// rawServer serves UDP on loopback with handler, for answers dnstest would
// never give.
func rawServer(t *testing.T, handler mdns.HandlerFunc) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &mdns.Server{PacketConn: pc, Handler: handler, NotifyStartedFunc: func() { close(started) }}
	done := make(chan struct{})
	go func() { srv.ActivateAndServe(); close(done) }()
	<-started
	t.Cleanup(func() { srv.Shutdown(); <-done })
	return pc.LocalAddr().String()
}

// An authoritative server answers a CNAME to a target outside its zone
// with the CNAME alone; the client must ask again for the target.
func TestCNAMENotChasedByServer(t *testing.T) {
	addr := rawServer(t, func(w mdns.ResponseWriter, req *mdns.Msg) {
		m := new(mdns.Msg)
		m.SetReply(req)
		q := req.Question[0]
		hdr := mdns.RR_Header{Name: q.Name, Class: mdns.ClassINET, Ttl: 60}
		switch strings.ToLower(q.Name) {
		case "alias.example.com.":
			hdr.Rrtype = mdns.TypeCNAME
			m.Answer = append(m.Answer, &mdns.CNAME{Hdr: hdr, Target: "target.example.net."})
		case "target.example.net.":
			if q.Qtype == mdns.TypeAAAA {
				hdr.Rrtype = mdns.TypeAAAA
				m.Answer = append(m.Answer, &mdns.AAAA{Hdr: hdr, AAAA: net.ParseIP("2001:db8::25")})
			}
		default:
			m.Rcode = mdns.RcodeNameError
		}
		w.WriteMsg(m)
	})
	c := dns.New(addr, time.Second)
	ips, err := c.IP(context.Background(), "alias.example.com", "inet6")
	if err != nil || len(ips) != 1 || ips[0] != netip.MustParseAddr("2001:db8::25") {
		t.Errorf("IP = %v, %v; want 2001:db8::25", ips, err)
	}
	_, err = c.IP(context.Background(), "alias.example.com", "inet")
	if kindOf(t, err) != dns.NoData {
		t.Errorf("A of alias to AAAA-only target: %v, want NoData", err)
	}
}

// A reply for a different question (a confused middlebox) is not used.
func TestMismatchedReply(t *testing.T) {
	addr := rawServer(t, func(w mdns.ResponseWriter, req *mdns.Msg) {
		m := new(mdns.Msg)
		m.SetReply(req)
		m.Question[0].Name = "other.example.com."
		m.Answer = append(m.Answer, &mdns.A{
			Hdr: mdns.RR_Header{Name: "other.example.com.", Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 60},
			A:   net.ParseIP("192.0.2.66"),
		})
		w.WriteMsg(m)
	})
	c := dns.New(addr, 200*time.Millisecond)
	ips, err := c.IP(context.Background(), "host.example.com", "inet")
	if err == nil || kindOf(t, err) != dns.Temporary {
		t.Errorf("IP = %v, %v; want a temporary error", ips, err)
	}
}

func TestTruncatedAnswerRetriedOverTCP(t *testing.T) {
	srv, c := newClient(t)
	srv.Truncate("big.example.com")
	srv.TXT("big.example.com", "v=spf1 -all")
	// A record too large for our 1232-byte EDNS0 buffer: the server
	// truncates it on its own, as a real one would.
	key := strings.Repeat("k", 3000)
	srv.TXT("sel._domainkey.example.com", "v=DKIM1; p="+key)
	ctx := context.Background()

	txt, err := c.TXT(ctx, "big.example.com")
	if err != nil || len(txt) != 1 || txt[0] != "v=spf1 -all" {
		t.Fatalf("TXT = %q, %v", txt, err)
	}
	want := []dnstest.Query{
		{Name: "big.example.com.", Type: "TXT", Net: "udp"},
		{Name: "big.example.com.", Type: "TXT", Net: "tcp"},
	}
	if got := srv.Queries(); !slices.Equal(got, want) {
		t.Errorf("queries = %v, want %v", got, want)
	}

	txt, err = c.TXT(ctx, "sel._domainkey.example.com")
	if err != nil || len(txt) != 1 || txt[0] != "v=DKIM1; p="+key {
		t.Errorf("large TXT: %d records, %v", len(txt), err)
	}
	if q := srv.Queries(); q[len(q)-1].Net != "tcp" {
		t.Errorf("large TXT was not fetched over TCP: %v", q)
	}
}

func TestIPFamilies(t *testing.T) {
	srv, c := newClient(t)
	srv.A("dual.example.com", "192.0.2.1")
	srv.A("dual.example.com", "192.0.2.2")
	srv.AAAA("dual.example.com", "2001:db8::1")
	srv.A("v4.example.com", "192.0.2.4")
	srv.AAAA("v6.example.com", "2001:db8::6")
	srv.ServFail("broken6.example.com")
	ctx := context.Background()

	tests := []struct {
		host, family string
		want         string // addresses, space-separated
		kind         dns.Kind
	}{
		{"dual.example.com", "any", "2001:db8::1 192.0.2.1 192.0.2.2", 0},
		{"dual.example.com", "", "2001:db8::1 192.0.2.1 192.0.2.2", 0},
		{"dual.example.com", "inet", "192.0.2.1 192.0.2.2", 0},
		{"dual.example.com", "inet6", "2001:db8::1", 0},
		{"v4.example.com", "any", "192.0.2.4", 0},
		{"v4.example.com", "inet6", "", dns.NoData},
		{"v6.example.com", "inet", "", dns.NoData},
		{"v6.example.com", "any", "2001:db8::6", 0},
		{"nx.example.com", "any", "", dns.NXDomain},
		{"broken6.example.com", "any", "", dns.Temporary},
		{"192.0.2.9", "any", "192.0.2.9", 0},
		{"[2001:db8::9]", "inet6", "2001:db8::9", 0},
		{"192.0.2.9", "inet6", "", dns.NoData},
	}
	for _, tt := range tests {
		ips, err := c.IP(ctx, tt.host, tt.family)
		var got []string
		for _, ip := range ips {
			got = append(got, ip.String())
		}
		if strings.Join(got, " ") != tt.want {
			t.Errorf("IP(%s, %q) = %v, want %s", tt.host, tt.family, got, tt.want)
		}
		if tt.kind == 0 && err != nil {
			t.Errorf("IP(%s, %q): %v", tt.host, tt.family, err)
		}
		if tt.kind != 0 && (err == nil || kindOf(t, err) != tt.kind) {
			t.Errorf("IP(%s, %q): error %v, want kind %v", tt.host, tt.family, err, tt.kind)
		}
	}
	if _, err := c.IP(ctx, "dual.example.com", "ipx"); err == nil {
		t.Error("unknown family accepted")
	}
}

func TestTXTAndPTR(t *testing.T) {
	srv, c := newClient(t)
	srv.TXT("example.com", "v=spf1 mx -all")
	srv.PTR("192.0.2.1", "Mail.Example.com")
	srv.PTR("2001:db8::1", "mail6.example.com")
	ctx := context.Background()

	if txt, err := c.TXT(ctx, "example.com"); err != nil || !slices.Equal(txt, []string{"v=spf1 mx -all"}) {
		t.Errorf("TXT = %q, %v", txt, err)
	}
	if names, err := c.PTR(ctx, netip.MustParseAddr("192.0.2.1")); err != nil || !slices.Equal(names, []string{"mail.example.com."}) {
		t.Errorf("PTR v4 = %q, %v", names, err)
	}
	if names, err := c.PTR(ctx, netip.MustParseAddr("2001:db8::1")); err != nil || !slices.Equal(names, []string{"mail6.example.com."}) {
		t.Errorf("PTR v6 = %q, %v", names, err)
	}
	if _, err := c.PTR(ctx, netip.MustParseAddr("192.0.2.2")); kindOf(t, err) != dns.NXDomain {
		t.Errorf("PTR of unknown address: %v, want NXDomain", err)
	}
}

// The net.Resolver-shaped methods let *Client stand wherever a Resolver is
// wanted.
func TestResolverMethods(t *testing.T) {
	srv, c := newClient(t)
	srv.MX("example.com", 10, "mx.example.com")
	srv.A("mx.example.com", "192.0.2.25")
	srv.AAAA("mx.example.com", "2001:db8::25")
	srv.TXT("example.com", "hello")
	srv.PTR("192.0.2.25", "mx.example.com")
	var r dns.Resolver = c
	ctx := context.Background()

	mxs, err := r.LookupMX(ctx, "example.com")
	if err != nil || len(mxs) != 1 || *mxs[0] != (net.MX{Host: "mx.example.com.", Pref: 10}) {
		t.Errorf("LookupMX = %v, %v", mxs, err)
	}
	addrs, err := r.LookupIPAddr(ctx, "mx.example.com")
	if err != nil || len(addrs) != 2 || addrs[0].String() != "2001:db8::25" || addrs[1].String() != "192.0.2.25" {
		t.Errorf("LookupIPAddr = %v, %v", addrs, err)
	}
	if txt, err := r.LookupTXT(ctx, "example.com"); err != nil || !slices.Equal(txt, []string{"hello"}) {
		t.Errorf("LookupTXT = %q, %v", txt, err)
	}
	if names, err := r.LookupAddr(ctx, "192.0.2.25"); err != nil || !slices.Equal(names, []string{"mx.example.com."}) {
		t.Errorf("LookupAddr = %q, %v", names, err)
	}
	if _, err := r.LookupAddr(ctx, "not-an-ip"); err == nil {
		t.Error("LookupAddr accepted a non-address")
	}
}

func TestNewServerAddress(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.53":      "192.0.2.53:53",
		"192.0.2.53:5353": "192.0.2.53:5353",
		"2001:db8::53":    "[2001:db8::53]:53",
		"[2001:db8::53]":  "[2001:db8::53]:53",
		"[::1]:5353":      "[::1]:5353",
	} {
		if got := dns.New(in, 0).Server(); got != want {
			t.Errorf("New(%q).Server() = %q, want %q", in, got, want)
		}
	}
}

func TestSystemServer(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(conf, []byte("# comment\nsearch corp.example\nnameserver 192.0.2.53\nnameserver 192.0.2.54\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := dns.SystemServer(conf); got != "192.0.2.53:53" {
		t.Errorf("SystemServer = %q, want the first nameserver", got)
	}
	if got := dns.SystemServer(filepath.Join(dir, "missing")); got != "127.0.0.1:53" {
		t.Errorf("SystemServer of a missing file = %q, want 127.0.0.1:53", got)
	}
}

func TestInvalidName(t *testing.T) {
	srv, c := newClient(t)
	for _, name := range []string{"", "a..b", strings.Repeat("x", 64) + ".example.com"} {
		if _, err := c.MX(context.Background(), name); kindOf(t, err) != dns.NXDomain {
			t.Errorf("MX(%q): %v, want NXDomain", name, err)
		}
	}
	if q := srv.Queries(); len(q) != 0 {
		t.Errorf("invalid names were sent to the server: %v", q)
	}
}
