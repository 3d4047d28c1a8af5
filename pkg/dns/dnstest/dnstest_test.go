package dnstest_test

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/gosendmail/gosendmail/pkg/dns/dnstest"
)

func exchange(addr, network, name string, qtype uint16) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	r, _, err := c.Exchange(q, addr)
	return r, err
}

func ask(t *testing.T, addr, network, name string, qtype uint16) *dns.Msg {
	t.Helper()
	r, err := exchange(addr, network, name, qtype)
	if err != nil {
		t.Fatalf("%s %s over %s: %v", name, dns.TypeToString[qtype], network, err)
	}
	return r
}

func TestAnswers(t *testing.T) {
	srv := dnstest.NewServer(t)
	srv.MX("example.com", 10, "mx.example.com")
	srv.A("mx.example.com", "192.0.2.1")
	srv.ServFail("broken.example.com")

	for _, network := range []string{"udp", "tcp"} {
		r := ask(t, srv.Addr(), network, "example.com", dns.TypeMX)
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || r.Answer[0].(*dns.MX).Mx != "mx.example.com." {
			t.Errorf("%s: MX answer = %v", network, r)
		}
		if r := ask(t, srv.Addr(), network, "example.com", dns.TypeA); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
			t.Errorf("%s: A of an MX-only name = %v, want NODATA", network, r)
		}
		if r := ask(t, srv.Addr(), network, "unknown.example.com", dns.TypeA); r.Rcode != dns.RcodeNameError {
			t.Errorf("%s: unknown name: rcode %s, want NXDOMAIN", network, dns.RcodeToString[r.Rcode])
		}
		if r := ask(t, srv.Addr(), network, "broken.example.com", dns.TypeA); r.Rcode != dns.RcodeServerFailure {
			t.Errorf("%s: rcode %s, want SERVFAIL", network, dns.RcodeToString[r.Rcode])
		}
	}
}

func TestRemove(t *testing.T) {
	srv := dnstest.NewServer(t)
	srv.ServFail("flaky.example.com")
	srv.Remove("flaky.example.com")
	if r := ask(t, srv.Addr(), "udp", "flaky.example.com", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Errorf("after Remove: rcode %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
	}
	srv.A("flaky.example.com", "192.0.2.3")
	if r := ask(t, srv.Addr(), "udp", "flaky.example.com", dns.TypeA); len(r.Answer) != 1 {
		t.Errorf("after re-adding: %v", r)
	}
}

// Without EDNS0 a UDP answer must fit in 512 bytes; with it, in the
// advertised buffer. Over TCP it is whole.
func TestUDPSizeLimit(t *testing.T) {
	srv := dnstest.NewServer(t)
	for i := range 40 {
		srv.A("many.example.com", net.IPv4(192, 0, 2, byte(i)).String())
	}
	if r := ask(t, srv.Addr(), "udp", "many.example.com", dns.TypeA); !r.Truncated || len(r.Answer) >= 40 {
		t.Errorf("UDP without EDNS0: truncated %v, %d answers", r.Truncated, len(r.Answer))
	}
	q := new(dns.Msg)
	q.SetQuestion("many.example.com.", dns.TypeA)
	q.SetEdns0(1232, false)
	r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(q, srv.Addr())
	if err != nil || r.Truncated || len(r.Answer) != 40 || r.IsEdns0() == nil {
		t.Errorf("UDP with EDNS0: %v, truncated %v", err, r != nil && r.Truncated)
	}
	if r := ask(t, srv.Addr(), "tcp", "many.example.com", dns.TypeA); r.Truncated || len(r.Answer) != 40 {
		t.Errorf("TCP: truncated %v, %d answers", r.Truncated, len(r.Answer))
	}
}

// Setters run while queries are answered (a daemon asking while the test
// changes the data); the race detector checks the locking.
func TestConcurrentUse(t *testing.T) {
	srv := dnstest.NewServer(t)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for range 20 {
				// t.Fatal must not be called off the test goroutine.
				if _, err := exchange(srv.Addr(), "udp", "busy.example.com", dns.TypeA); err != nil {
					t.Error(err)
					return
				}
			}
		})
		srv.A("busy.example.com", net.IPv4(192, 0, 2, byte(i)).String())
	}
	wg.Wait()
	if n := len(srv.Queries()); n != 80 {
		t.Errorf("%d queries recorded, want 80", n)
	}
}

func TestStopsAtCleanup(t *testing.T) {
	var addr string
	t.Run("server", func(t *testing.T) {
		addr = dnstest.NewServer(t).Addr()
	})
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("server at %s still accepts connections after its test ended", addr)
	}
}
