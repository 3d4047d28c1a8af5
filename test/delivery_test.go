package test

import (
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/gosendmail/gosendmail/pkg/dns/dnstest"
)

// sinkMX is a fake remote MX on loopback built on go-smtp.
type sinkMX struct {
	mu    sync.Mutex
	msgs  []sinkMsg
	fail  map[string]*smtp.SMTPError // by recipient
	down  bool
	helos []string
}

type sinkMsg struct {
	from  string
	rcpts []string
	data  string
}

type sinkSession struct {
	mx   *sinkMX
	from string
	to   []string
}

func (m *sinkMX) NewSession(c *smtp.Conn) (smtp.Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.helos = append(m.helos, c.Hostname())
	if m.down {
		return nil, &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
	}
	return &sinkSession{mx: m}, nil
}
func (s *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	s.mx.mu.Lock()
	down := s.mx.down
	s.mx.mu.Unlock()
	if down { // also for sessions opened before it went down
		return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
	}
	s.from = from
	return nil
}
func (s *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.mx.mu.Lock()
	defer s.mx.mu.Unlock()
	if e := s.mx.fail[to]; e != nil {
		return e
	}
	s.to = append(s.to, to)
	return nil
}
func (s *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.mx.mu.Lock()
	s.mx.msgs = append(s.mx.msgs, sinkMsg{s.from, s.to, string(b)})
	s.mx.mu.Unlock()
	return nil
}
func (s *sinkSession) Reset()        { s.from, s.to = "", nil }
func (s *sinkSession) Logout() error { return nil }

func (m *sinkMX) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.msgs)
}

// startSink listens on ip, port 0 (or the given port).
func startSink(t *testing.T, ip string, port int, mx *sinkMX) int {
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	must(t, err)
	srv := smtp.NewServer(mx)
	srv.Domain = "sink.example"
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// deliveryEnv: a daemon whose DNS is a loopback server and whose remote
// port is the sink's.
func deliveryEnv(t *testing.T, mx *sinkMX) (*env, *daemon, *dnstest.Server) {
	e := newEnv(t)
	os.WriteFile(e.path("etc/local-host-names"), []byte("test.example\n"), 0o644)
	os.WriteFile(e.path("etc/aliases"), []byte("postmaster: root\nlist: root, friend@dest.example\n"), 0o644)
	d := dnstest.NewServer(t)
	port := startSink(t, "127.0.0.20", 0, mx)
	d.MX("dest.example", 10, "mx.dest.example")
	d.A("mx.dest.example", "127.0.0.20")
	extra := "relay_from = [\"127.0.0.1/32\"]\n[delivery]\ndns_server = \"" + d.Addr() + "\"\nremote_port = " + strconv.Itoa(port) +
		"\nclient_family = \"inet\"\nretry_min = \"1s\"\nretry_max = \"2s\"\n[limits]\ngreet_pause = \"0s\"\n"
	return e, startDaemon(t, e, extra), d
}

// A message to a local user, an alias list and a remote host: local mbox
// delivery, SMTP delivery to the MX, and the queue is empty afterwards.
func TestDeliverLocalAndRemote(t *testing.T) {
	mx := &sinkMX{}
	e, d, _ := deliveryEnv(t, mx)
	cl := greet(t, localIP, d.addrs["MTA"])
	cl.must("MAIL FROM:<sender@test.example>", 250)
	cl.must("RCPT TO:<list@test.example>", 250)
	cl.must("RCPT TO:<other@dest.example>", 250)
	cl.must("DATA", 354)
	cl.send("Subject: deliver me\r\n\r\nFrom the start\r\n.\r\n")
	cl.expect(250)
	waitFor(t, "remote delivery", func() bool { return mx.count() == 1 })
	mx.mu.Lock()
	m := mx.msgs[0]
	mx.mu.Unlock()
	if len(m.rcpts) != 2 || m.from != "sender@test.example" || !strings.Contains(m.data, "Subject: deliver me") {
		t.Fatalf("sink got %+v", m)
	}
	mbox := e.path("spool/mail/root")
	waitFor(t, "local delivery", func() bool { b, _ := os.ReadFile(mbox); return strings.Contains(string(b), "deliver me") })
	b, _ := os.ReadFile(mbox)
	if !strings.HasPrefix(string(b), "From sender@test.example ") || !strings.Contains(string(b), "\n>From the start\n") || strings.Contains(string(b), "\r") {
		t.Fatalf("mbox:\n%s", b)
	}
	waitFor(t, "empty queue", func() bool { return e.qfCount() == 0 })
	if !strings.Contains(d.log(), "mailer=esmtp, pri=") || !strings.Contains(d.log(), "relay=mx.dest.example. [127.0.0.20], dsn=2.0.0, stat=Sent (250 ok)") {
		t.Errorf("log:\n%s", d.log())
	}
}

// 5xx bounces at once with an RFC 3464 report to the sender; 4xx defers
// with the reason in mailq, and a flush delivers once the host is back.
func TestBounceAndDefer(t *testing.T) {
	mx := &sinkMX{fail: map[string]*smtp.SMTPError{
		"nouser@dest.example": {Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user here"},
	}}
	e, d, _ := deliveryEnv(t, mx)
	cl := greet(t, localIP, d.addrs["MTA"])
	cl.must("MAIL FROM:<root@test.example>", 250)
	cl.must("RCPT TO:<nouser@dest.example>", 250)
	cl.must("DATA", 354)
	cl.send("Subject: will bounce\r\n\r\nx\r\n.\r\n")
	cl.expect(250)
	mbox := e.path("spool/mail/root")
	waitFor(t, "bounce in root's mailbox", func() bool { b, _ := os.ReadFile(mbox); return strings.Contains(string(b), "multipart/report") })
	b, _ := os.ReadFile(mbox)
	for _, want := range []string{"From MAILER-DAEMON ", "Mail Delivery Subsystem <MAILER-DAEMON@test.example>", "report-type=delivery-status",
		"Final-Recipient: rfc822; nouser@dest.example", "Action: failed", "Status: 5.1.1", "no such user here", "Subject: will bounce"} {
		if !strings.Contains(strings.ToLower(string(b)), strings.ToLower(want)) {
			t.Errorf("bounce lacks %q:\n%s", want, b)
		}
	}
	// The bounce's from= line gives its real size.
	if m := regexp.MustCompile(`from=<>, size=(\d+),`).FindStringSubmatch(d.log()); m == nil || m[1] == "0" {
		t.Errorf("the DSN's from= line has no size: %v", m)
	}

	// Deferral.
	mx.mu.Lock()
	mx.down = true
	mx.mu.Unlock()
	cl.must("MAIL FROM:<root@test.example>", 250)
	cl.must("RCPT TO:<later@dest.example>", 250)
	cl.must("DATA", 354)
	cl.send("Subject: later\r\n\r\nx\r\n.\r\n")
	cl.expect(250)
	waitFor(t, "deferral in mailq", func() bool {
		out, _, _ := e.run(nil, "mailq")
		return strings.Contains(out, "(Deferred: ") && strings.Contains(out, "later@dest.example")
	})
	mx.mu.Lock()
	mx.down = false
	mx.mu.Unlock()
	out, stderr, code := e.run(nil, "sendmail", "-q")
	if code != 0 {
		t.Fatalf("sendmail -q: %d %s %s", code, out, stderr)
	}
	waitFor(t, "delivery after flush", func() bool { return mx.count() == 1 })
	waitFor(t, "empty queue", func() bool { return e.qfCount() == 0 })
}

// slowSink delays each DATA, so that a kill lands in the middle of a run.
type slowSink struct {
	sinkMX
	delay time.Duration
}

type slowSession struct {
	sinkSession
	delay time.Duration
}

func (m *slowSink) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &slowSession{sinkSession{mx: &m.sinkMX}, m.delay}, nil
}

func (s *slowSession) Data(r io.Reader) error {
	time.Sleep(s.delay)
	return s.sinkSession.Data(r)
}

// kill -9 of the daemon in the middle of a delivery run, then a restart:
// every message accepted before the kill is delivered, none twice except
// those in flight at the kill.
func TestCrashDuringDelivery(t *testing.T) {
	sink := &slowSink{delay: 30 * time.Millisecond}
	e := newEnv(t)
	os.WriteFile(e.path("etc/local-host-names"), []byte("test.example\n"), 0o644)
	dsrv := dnstest.NewServer(t)
	ln, err := net.Listen("tcp", "127.0.0.21:0")
	must(t, err)
	srv := smtp.NewServer(sink)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	dsrv.MX("dest.example", 10, "mx.dest.example")
	dsrv.A("mx.dest.example", "127.0.0.21")
	extra := "relay_from = [\"127.0.0.1/32\"]\n[delivery]\ndns_server = \"" + dsrv.Addr() + "\"\nremote_port = " +
		strconv.Itoa(ln.Addr().(*net.TCPAddr).Port) + "\nclient_family = \"inet\"\nretry_min = \"1s\"\nretry_max = \"2s\"\n[limits]\ngreet_pause = \"0s\"\n"
	d := startDaemon(t, e, extra)
	const n = 60
	cl := greet(t, localIP, d.addrs["MTA"])
	for i := 0; i < n; i++ {
		cl.must("MAIL FROM:<sender@test.example>", 250)
		cl.must("RCPT TO:<r"+strconv.Itoa(i)+"@dest.example>", 250)
		cl.must("DATA", 354)
		cl.send("Subject: crash " + strconv.Itoa(i) + "\r\nX-Seq: " + strconv.Itoa(i) + "\r\n\r\nbody\r\n.\r\n")
		cl.expect(250)
	}
	waitFor(t, "some deliveries", func() bool { return sink.count() >= 10 })
	d.kill()
	before := sink.count()
	d2 := startDaemon(t, e, "")
	_ = d2
	waitFor(t, "an empty queue after the restart", func() bool { return e.qfCount() == 0 })
	seen := map[string]int{}
	sink.mu.Lock()
	for _, m := range sink.msgs {
		i := strings.Index(m.data, "X-Seq: ")
		seq := strings.Fields(m.data[i+7:])[0]
		seen[seq]++
	}
	sink.mu.Unlock()
	dups := 0
	for i := 0; i < n; i++ {
		c := seen[strconv.Itoa(i)]
		if c == 0 {
			t.Errorf("message %d lost", i)
		}
		if c > 1 {
			dups += c - 1
		}
	}
	// At most the messages in flight at the kill (the runner's workers).
	if dups > 20 {
		t.Errorf("%d duplicates", dups)
	}
	t.Logf("%d delivered before the kill, %d duplicates after the restart", before, dups)
}

// After queue_warn the sender gets one delay notice; after queue_return
// the message bounces, with the last reason.
func TestDelayNoticeAndExpiry(t *testing.T) {
	mx := &sinkMX{down: true}
	e := newEnv(t)
	os.WriteFile(e.path("etc/local-host-names"), []byte("test.example\n"), 0o644)
	dsrv := dnstest.NewServer(t)
	port := startSink(t, "127.0.0.22", 0, mx)
	dsrv.MX("dest.example", 10, "mx.dest.example")
	dsrv.A("mx.dest.example", "127.0.0.22")
	extra := "relay_from = [\"127.0.0.1/32\"]\n[delivery]\ndns_server = \"" + dsrv.Addr() + "\"\nremote_port = " + strconv.Itoa(port) +
		"\nclient_family = \"inet\"\nretry_min = \"1s\"\nretry_max = \"1s\"\nqueue_warn = \"2s\"\nqueue_return = \"6s\"\n[limits]\ngreet_pause = \"0s\"\n"
	d := startDaemon(t, e, extra)
	cl := greet(t, localIP, d.addrs["MTA"])
	cl.must("MAIL FROM:<root@test.example>", 250)
	cl.must("RCPT TO:<slow@dest.example>", 250)
	cl.must("DATA", 354)
	cl.send("Subject: patience\r\n\r\nx\r\n.\r\n")
	cl.expect(250)
	mbox := e.path("spool/mail/root")
	waitFor(t, "the delay notice", func() bool { b, _ := os.ReadFile(mbox); return strings.Contains(string(b), "Action: delayed") })
	waitFor(t, "the bounce at expiry", func() bool { b, _ := os.ReadFile(mbox); return strings.Contains(string(b), "Action: failed") })
	b, _ := os.ReadFile(mbox)
	if n := strings.Count(string(b), "Action: delayed"); n != 1 {
		t.Errorf("%d delay notices", n)
	}
	if !strings.Contains(string(b), "try later") {
		t.Errorf("the bounce does not quote the last reason:\n%s", b)
	}
	waitFor(t, "empty queue", func() bool { return e.qfCount() == 0 })
}
