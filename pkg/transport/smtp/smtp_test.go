package smtp

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/gosendmail/gosendmail/pkg/dns"
	"github.com/gosendmail/gosendmail/pkg/dns/dnstest"
	"github.com/gosendmail/gosendmail/pkg/mailerr"
)

func TestWireReader(t *testing.T) {
	long := strings.Repeat("x", 1200)
	cases := map[string]string{
		"a\r\nb\r\n":  "a\r\nb\r\n",
		"a\nb\n":      "a\r\nb\r\n",
		"a\rb\r":      "a\r\nb\r\n",
		"a\r\r\nb":    "a\r\n\r\nb",
		"\n.\n":       "\r\n.\r\n",
		long + "\r\n": long[:998] + "\r\n " + long[998:] + "\r\n",
	}
	for in, want := range cases {
		got, err := io.ReadAll(&wireReader{r: bufio.NewReader(strings.NewReader(in))})
		if err != nil || string(got) != want {
			t.Errorf("%q: got %q, want %q", in[:min(len(in), 20)], got, want)
		}
	}
}

// fakeMX is a go-smtp server that records what it receives and fails on
// command when told to.
type fakeMX struct {
	mu       sync.Mutex
	msgs     []string
	rcpts    []string
	helo     string
	sessions int
	conns    []*smtp.Conn
	failRcpt map[string]*smtp.SMTPError
	failData *smtp.SMTPError
}

type fakeSession struct {
	mx *fakeMX
	c  *smtp.Conn
}

func (m *fakeMX) NewSession(c *smtp.Conn) (smtp.Session, error) {
	m.mu.Lock()
	m.helo = c.Hostname()
	m.sessions++
	m.conns = append(m.conns, c)
	m.mu.Unlock()
	return &fakeSession{mx: m, c: c}, nil
}
func (s *fakeSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *fakeSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if e := s.mx.failRcpt[to]; e != nil {
		return e
	}
	s.mx.mu.Lock()
	s.mx.rcpts = append(s.mx.rcpts, to)
	s.mx.mu.Unlock()
	return nil
}
func (s *fakeSession) Data(r io.Reader) error {
	b, _ := io.ReadAll(r)
	if s.mx.failData != nil {
		return s.mx.failData
	}
	s.mx.mu.Lock()
	s.mx.msgs = append(s.mx.msgs, string(b))
	s.mx.mu.Unlock()
	return nil
}
func (s *fakeSession) Reset()        {}
func (s *fakeSession) Logout() error { return nil }

func startMX(t *testing.T, ip string, port int, mx *fakeMX) int {
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	srv := smtp.NewServer(mx)
	srv.Domain = "mx.example"
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

func itoa(i int) string { return strconv.Itoa(i) }

func client(t *testing.T, d *dnstest.Server, port int) *Client {
	r := dns.New(d.Addr(), 2*time.Second)
	return &Client{Hostname: "out.test.example", Port: port, Family: "inet", DNS: r, IP: r.IP}
}

func body(s string) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(s)), nil }
}

func TestDeliverMXWalkAndResults(t *testing.T) {
	d := dnstest.NewServer(t)
	good := &fakeMX{failRcpt: map[string]*smtp.SMTPError{
		"nouser@dest.example": {Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"},
		"full@dest.example":   {Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "mailbox full"},
	}}
	port := startMX(t, "127.0.0.11", 0, good)
	// The preferred MX refuses connections (nothing listens on .10).
	d.MX("dest.example", 10, "mx1.dest.example")
	d.MX("dest.example", 20, "mx2.dest.example")
	d.A("mx1.dest.example", "127.0.0.10")
	d.A("mx2.dest.example", "127.0.0.11")
	c := client(t, d, port)
	res := c.Deliver(context.Background(), &Request{
		Domain: "dest.example", Sender: "a@test.example",
		Rcpts: []string{"ok@dest.example", "nouser@dest.example", "full@dest.example"},
		Body:  body("Subject: hi\r\n\r\nline\n.\nbare\r\n"),
	})
	if res[0].Err != nil || !strings.Contains(res[0].Relay, "mx2.dest.example. [127.0.0.11]") {
		t.Errorf("ok: %+v", res[0])
	}
	if e := res[1].Err; e == nil || mailerr.IsTemporary(e) || !strings.Contains(e.Error(), "550 5.1.1 no such user") {
		t.Errorf("nouser: %+v", res[1])
	}
	if e := res[2].Err; e == nil || !mailerr.IsTemporary(e) {
		t.Errorf("full: %+v", res[2])
	}
	if len(good.msgs) != 1 || good.msgs[0] != "Subject: hi\r\n\r\nline\r\n.\r\nbare\r\n" {
		t.Errorf("received %q", good.msgs)
	}
	if good.helo != "out.test.example" {
		t.Errorf("EHLO %q", good.helo)
	}
}

func TestDeliverFailures(t *testing.T) {
	d := dnstest.NewServer(t)
	rejecting := &fakeMX{failData: &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "spam"}}
	port := startMX(t, "127.0.0.12", 0, rejecting)
	d.MX("spam.example", 10, "mx.spam.example")
	d.A("mx.spam.example", "127.0.0.12")
	d.MX("down.example", 10, "mx.down.example")
	d.A("mx.down.example", "127.0.0.13")
	d.NullMX("null.example")
	d.ServFail("broken.example")
	c := client(t, d, port)
	cases := []struct {
		domain    string
		temporary bool
		text      string
	}{
		{"spam.example", false, "554 5.7.1 spam"},
		{"down.example", true, "Connection refused by mx.down.example."},
		{"null.example", false, ""},
		{"nxdomain.example", false, "host not found"},
		{"broken.example", true, ""},
	}
	for _, tc := range cases {
		res := c.Deliver(context.Background(), &Request{Domain: tc.domain, Rcpts: []string{"x@" + tc.domain}, Body: body("a\r\n")})
		e := res[0].Err
		if e == nil || mailerr.IsTemporary(e) != tc.temporary || !strings.Contains(e.Error(), tc.text) {
			t.Errorf("%s: %v (temporary %v)", tc.domain, e, mailerr.IsTemporary(e))
		}
	}
}

// A dead IPv6 path costs FallbackDelay, not a connect timeout.
func TestHappyEyeballs(t *testing.T) {
	mx := &fakeMX{}
	d := dnstest.NewServer(t)
	port := startMX(t, "127.0.0.14", 0, mx)
	d.MX("dual.example", 10, "mx.dual.example")
	d.A("mx.dual.example", "127.0.0.14")
	d.AAAA("mx.dual.example", "2001:db8::1") // unreachable here
	c := client(t, d, port)
	c.Family = "any"
	c.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if strings.HasPrefix(addr, "[2001:db8::1]") {
			<-ctx.Done() // a black hole
			return nil, errors.New("timeout")
		}
		var dl net.Dialer
		return dl.DialContext(ctx, network, addr)
	}
	start := time.Now()
	res := c.Deliver(context.Background(), &Request{Domain: "dual.example", Rcpts: []string{"x@dual.example"}, Body: body("a\r\n")})
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("took %v", el)
	}
	c.Family = "inet"
	c.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if strings.Contains(addr, "2001:db8") {
			t.Errorf("inet tried IPv6: %s", addr)
		}
		var dl net.Dialer
		return dl.DialContext(ctx, network, addr)
	}
	c.Deliver(context.Background(), &Request{Domain: "dual.example", Rcpts: []string{"x@dual.example"}, Body: body("a\r\n")})
}

// rawMX answers with a script: it greets, accepts EHLO/MAIL/RCPT, and on
// DATA does what misbehave says.
func rawMX(t *testing.T, ip string, misbehave string) int {
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				r := bufio.NewReader(c)
				io.WriteString(c, "220 raw.example ESMTP\r\n")
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					switch verb := strings.ToUpper(strings.Fields(line + " x")[0]); verb {
					case "EHLO", "HELO":
						io.WriteString(c, "250 raw.example\r\n")
					case "DATA":
						io.WriteString(c, "354 go ahead\r\n")
						switch misbehave {
						case "drop":
							r.ReadString('\n') // one line of the message, then hang up
							return
						case "hang":
							time.Sleep(5 * time.Second)
							return
						case "garbage":
							for {
								l, err := r.ReadString('\n')
								if err != nil || l == ".\r\n" {
									break
								}
							}
							io.WriteString(c, "this is not SMTP\r\n")
							return
						}
					case "QUIT":
						io.WriteString(c, "221 bye\r\n")
						return
					default:
						io.WriteString(c, "250 ok\r\n")
					}
				}
			}(c)
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// A server that drops the connection mid-DATA, hangs in DATA, or answers
// garbage: the recipients are deferred (temporary), never lost or bounced.
func TestDeliverMisbehavingServers(t *testing.T) {
	for i, mode := range []string{"drop", "hang", "garbage"} {
		ip := "127.0.0." + strconv.Itoa(30+i)
		d := dnstest.NewServer(t)
		port := rawMX(t, ip, mode)
		d.MX("bad.example", 10, "mx.bad.example")
		d.A("mx.bad.example", ip)
		c := client(t, d, port)
		c.CommandTimeout, c.DataTimeout = time.Second, time.Second
		start := time.Now()
		res := c.Deliver(context.Background(), &Request{Domain: "bad.example", Sender: "a@test.example",
			Rcpts: []string{"x@bad.example"}, Body: body("Subject: x\r\n\r\n" + strings.Repeat("line\r\n", 1000))})
		if e := res[0].Err; e == nil || !mailerr.IsTemporary(e) {
			t.Errorf("%s: %v", mode, e)
		}
		if el := time.Since(start); el > 4*time.Second {
			t.Errorf("%s: took %v", mode, el)
		}
	}
}

// Messages to the same host reuse one session.
func TestConnectionReuse(t *testing.T) {
	mx := &fakeMX{}
	d := dnstest.NewServer(t)
	port := startMX(t, "127.0.0.40", 0, mx)
	d.MX("reuse.example", 10, "mx.reuse.example")
	d.A("mx.reuse.example", "127.0.0.40")
	c := client(t, d, port)
	first := 0
	for i := 0; i < 3; i++ {
		if i == 1 {
			mx.mu.Lock()
			first = mx.sessions // the first delivery may probe STARTTLS first
			mx.mu.Unlock()
		}
		res := c.Deliver(context.Background(), &Request{Domain: "reuse.example", Sender: "a@test.example",
			Rcpts: []string{"x@reuse.example"}, Body: body("Subject: " + strconv.Itoa(i) + "\r\n\r\nx\r\n")})
		if res[0].Err != nil {
			t.Fatal(res[0].Err)
		}
	}
	mx.mu.Lock()
	defer mx.mu.Unlock()
	if len(mx.msgs) != 3 || mx.sessions != first {
		t.Fatalf("%d messages; %d sessions after the first, %d at the end: want no new session", len(mx.msgs), first, mx.sessions)
	}
}

// A kept session the server has closed meanwhile costs nothing but a new
// one: the message is not deferred.
func TestConnectionReuseAfterServerClosed(t *testing.T) {
	mx := &fakeMX{}
	d := dnstest.NewServer(t)
	port := startMX(t, "127.0.0.41", 0, mx)
	d.MX("gone.example", 10, "mx.gone.example")
	d.A("mx.gone.example", "127.0.0.41")
	c := client(t, d, port)
	send := func(i int) {
		t.Helper()
		res := c.Deliver(context.Background(), &Request{Domain: "gone.example", Sender: "a@test.example",
			Rcpts: []string{"x@gone.example"}, Body: body("Subject: " + strconv.Itoa(i) + "\r\n\r\nx\r\n")})
		if res[0].Err != nil {
			t.Fatalf("message %d: %v", i, res[0].Err)
		}
	}
	send(0)
	mx.mu.Lock()
	for _, conn := range mx.conns {
		conn.Close()
	}
	before := mx.sessions
	mx.mu.Unlock()
	time.Sleep(50 * time.Millisecond)
	send(1)
	mx.mu.Lock()
	defer mx.mu.Unlock()
	if len(mx.msgs) != 2 || mx.sessions <= before {
		t.Fatalf("%d messages, %d sessions (was %d): want both delivered, the second on a new session", len(mx.msgs), mx.sessions, before)
	}
}

// Kept sessions belong to a host, an address and a port: two mailertable
// routes to one host on two ports each reach their own server.
func TestConnectionReuseKeepsPortsApart(t *testing.T) {
	a, b := &fakeMX{}, &fakeMX{}
	d := dnstest.NewServer(t)
	portA := startMX(t, "127.0.0.42", 0, a)
	portB := startMX(t, "127.0.0.42", 0, b)
	c := client(t, d, 25)
	for i, port := range []int{portA, portB, portA, portB} {
		res := c.Deliver(context.Background(), &Request{Domain: "ports.example", Host: "127.0.0.42", NoMX: true, Port: port,
			Sender: "a@test.example", Rcpts: []string{"x@ports.example"}, Body: body("Subject: " + strconv.Itoa(i) + "\r\n\r\nx\r\n")})
		if res[0].Err != nil {
			t.Fatalf("message %d: %v", i, res[0].Err)
		}
	}
	a.mu.Lock()
	b.mu.Lock()
	defer a.mu.Unlock()
	defer b.mu.Unlock()
	if len(a.msgs) != 2 || len(b.msgs) != 2 {
		t.Fatalf("port A got %d messages, port B %d: want 2 each", len(a.msgs), len(b.msgs))
	}
}
