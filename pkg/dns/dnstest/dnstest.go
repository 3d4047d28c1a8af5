// Package dnstest runs a real DNS server on loopback for tests, so code
// under test (and daemons started by integration tests, through the
// [delivery] dns_server key) talks DNS over the wire exactly as in
// production, and never leaks a query to the real DNS.
//
// The server knows only what the test tells it. A name with no records
// answers NXDOMAIN; a name with records of other types answers NODATA
// (NOERROR, empty answer). A CNAME is chased within the server's own data,
// as a recursive resolver would. Failure modes are set per name: SERVFAIL,
// silence (a timeout for the client), or a truncated UDP answer that sends
// the client to TCP. UDP answers also respect the client's EDNS0 buffer
// size (512 bytes without EDNS0) and are truncated when they do not fit.
//
// Setters may be called at any time, also while a daemon is asking; they
// call t.Fatal on bad input, so call them from the test's goroutine.
package dnstest

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const ttl = 300

// Query is one question the server received.
type Query struct {
	Name string // lower case, with the trailing dot
	Type string // "MX", "A"...
	Net  string // "udp" or "tcp"
}

// Server is a loopback DNS server answering from records set by the test.
type Server struct {
	t    testing.TB
	addr string

	mu       sync.Mutex
	records  map[string][]dns.RR // by owner name, canonical form
	servfail map[string]bool
	silent   map[string]bool
	truncate map[string]bool
	queries  []Query
}

// NewServer starts a server on 127.0.0.1, UDP and TCP on the same port,
// and stops it when the test ends.
func NewServer(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		t:        t,
		records:  make(map[string][]dns.RR),
		servfail: make(map[string]bool),
		silent:   make(map[string]bool),
		truncate: make(map[string]bool),
	}
	pc, ln, err := listen()
	if err != nil {
		t.Fatalf("dnstest: %v", err)
	}
	s.addr = pc.LocalAddr().String()

	started := make(chan struct{}, 2)
	notify := func() { started <- struct{}{} }
	servers := []*dns.Server{
		{PacketConn: pc, Handler: s, NotifyStartedFunc: notify},
		{Listener: ln, Handler: s, NotifyStartedFunc: notify},
	}
	done := make(chan error, len(servers))
	for _, srv := range servers {
		go func() { done <- srv.ActivateAndServe() }()
	}
	for range servers {
		select {
		case <-started:
		case err := <-done:
			// Closing the sockets makes the other server return too.
			pc.Close()
			ln.Close()
			t.Fatalf("dnstest: serving: %v", err)
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, srv := range servers {
			srv.ShutdownContext(ctx)
		}
		for range servers {
			<-done
		}
	})
	return s
}

// listen binds UDP on a free loopback port, then TCP on the same port. The
// kernel picks the UDP port; if TCP happens to be taken there, try another.
func listen() (net.PacketConn, net.Listener, error) {
	var err error
	for range 20 {
		var pc net.PacketConn
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		var ln net.Listener
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
	}
	return nil, nil, fmt.Errorf("no loopback port free for both UDP and TCP: %v", err)
}

// Addr is the server's "host:port", for dns.New or the dns_server key.
func (s *Server) Addr() string { return s.addr }

// MX adds an MX record: domain's mail goes to host at preference pref.
func (s *Server) MX(domain string, pref uint16, host string) {
	s.t.Helper()
	s.add(&dns.MX{Hdr: s.hdr(domain, dns.TypeMX), Preference: pref, Mx: dns.Fqdn(host)})
}

// NullMX makes domain publish "MX 0 ." (RFC 7505): it accepts no mail.
func (s *Server) NullMX(domain string) {
	s.t.Helper()
	s.add(&dns.MX{Hdr: s.hdr(domain, dns.TypeMX), Preference: 0, Mx: "."})
}

// A adds an IPv4 address for host.
func (s *Server) A(host, ip string) {
	s.t.Helper()
	a := s.parseIP(ip)
	if !a.Is4() {
		s.t.Fatalf("dnstest: A %s: %q is not an IPv4 address", host, ip)
	}
	s.add(&dns.A{Hdr: s.hdr(host, dns.TypeA), A: a.AsSlice()})
}

// AAAA adds an IPv6 address for host.
func (s *Server) AAAA(host, ip string) {
	s.t.Helper()
	a := s.parseIP(ip)
	if !a.Is6() || a.Is4In6() {
		s.t.Fatalf("dnstest: AAAA %s: %q is not an IPv6 address", host, ip)
	}
	s.add(&dns.AAAA{Hdr: s.hdr(host, dns.TypeAAAA), AAAA: a.AsSlice()})
}

// CNAME makes name an alias of target.
func (s *Server) CNAME(name, target string) {
	s.t.Helper()
	s.add(&dns.CNAME{Hdr: s.hdr(name, dns.TypeCNAME), Target: dns.Fqdn(target)})
}

// TXT adds a TXT record for name. Text longer than 255 bytes is split into
// several strings, as a zone file would hold a DKIM key.
func (s *Server) TXT(name, text string) {
	s.t.Helper()
	var parts []string
	for len(text) > 255 {
		parts = append(parts, text[:255])
		text = text[255:]
	}
	parts = append(parts, text)
	s.add(&dns.TXT{Hdr: s.hdr(name, dns.TypeTXT), Txt: parts})
}

// PTR makes ip point back to name.
func (s *Server) PTR(ip, name string) {
	s.t.Helper()
	arpa, err := dns.ReverseAddr(s.parseIP(ip).String())
	if err != nil {
		s.t.Fatalf("dnstest: PTR %s: %v", ip, err)
	}
	s.add(&dns.PTR{Hdr: s.hdr(arpa, dns.TypePTR), Ptr: dns.Fqdn(name)})
}

// ServFail makes every question about name fail with SERVFAIL.
func (s *Server) ServFail(name string) { s.set(s.servfail, name) }

// Timeout makes the server ignore every question about name, over UDP and
// TCP, so the client times out.
func (s *Server) Timeout(name string) { s.set(s.silent, name) }

// Truncate makes UDP answers about name empty with the TC bit set, so the
// client must ask again over TCP, where the real answer is given.
func (s *Server) Truncate(name string) { s.set(s.truncate, name) }

// Remove forgets name's records and failure modes: it answers NXDOMAIN
// again. A test can make a name fail, then Remove it and add records, to
// see a retry succeed.
func (s *Server) Remove(name string) {
	key := dns.CanonicalName(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.records, key)
	delete(s.servfail, key)
	delete(s.silent, key)
	delete(s.truncate, key)
}

// Queries returns the questions received so far, oldest first.
func (s *Server) Queries() []Query {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.queries)
}

func (s *Server) hdr(name string, rrtype uint16) dns.RR_Header {
	s.t.Helper()
	fq := dns.CanonicalName(name)
	if _, ok := dns.IsDomainName(fq); !ok {
		s.t.Fatalf("dnstest: %q is not a domain name", name)
	}
	return dns.RR_Header{Name: fq, Rrtype: rrtype, Class: dns.ClassINET, Ttl: ttl}
}

func (s *Server) parseIP(ip string) netip.Addr {
	s.t.Helper()
	a, err := netip.ParseAddr(ip)
	if err != nil {
		s.t.Fatalf("dnstest: %v", err)
	}
	return a
}

func (s *Server) add(rr dns.RR) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := rr.Header().Name
	s.records[name] = append(s.records[name], rr)
}

func (s *Server) set(m map[string]bool, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m[dns.CanonicalName(name)] = true
}

// ServeDNS answers one query; it implements dns.Handler.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	if len(req.Question) != 1 || req.Opcode != dns.OpcodeQuery {
		m.SetRcode(req, dns.RcodeNotImplemented)
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := dns.CanonicalName(q.Name)
	network := w.RemoteAddr().Network()
	m.SetReply(req)
	m.RecursionAvailable = true

	s.mu.Lock()
	s.queries = append(s.queries, Query{Name: name, Type: dns.TypeToString[q.Qtype], Net: network})
	silent := s.silent[name]
	switch {
	case silent:
	case network == "udp" && s.truncate[name]:
		m.Truncated = true
	default:
		s.answer(m, name, q.Qtype)
	}
	s.mu.Unlock()
	if silent {
		return
	}

	// Answer EDNS0 with EDNS0 and keep UDP answers within the client's
	// buffer, as a real server must (RFC 6891 section 7).
	size := dns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil {
		size = int(opt.UDPSize())
		m.SetEdns0(dns.DefaultMsgSize, false)
	}
	if network == "udp" {
		m.Truncate(size)
	}
	w.WriteMsg(m)
}

// answer fills m with name's records of type qtype, chasing CNAMEs through
// the server's own data. Called with s.mu held.
func (s *Server) answer(m *dns.Msg, name string, qtype uint16) {
	for range 16 {
		if s.servfail[name] {
			m.Rcode = dns.RcodeServerFailure
			m.Answer = nil
			return
		}
		rrs, ok := s.records[name]
		if !ok {
			m.Rcode = dns.RcodeNameError
			return
		}
		var target string
		found := false
		for _, rr := range rrs {
			switch h := rr.Header(); {
			case h.Rrtype == qtype:
				m.Answer = append(m.Answer, dns.Copy(rr))
				found = true
			case h.Rrtype == dns.TypeCNAME:
				target = dns.CanonicalName(rr.(*dns.CNAME).Target)
				m.Answer = append(m.Answer, dns.Copy(rr))
			}
		}
		if found || target == "" {
			return // the records, or NODATA
		}
		name = target
	}
}
