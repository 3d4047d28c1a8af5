package smtpd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gosendmail/gosendmail/pkg/config"
	"github.com/gosendmail/gosendmail/pkg/envelope"
	"github.com/gosendmail/gosendmail/pkg/mailerr"
	"github.com/gosendmail/gosendmail/pkg/maillog"
	"github.com/gosendmail/gosendmail/pkg/spool"
)

// The fuzzed server's world: one local domain with two users, a
// virtusertable error entry, no access entries and no relay domains.
const (
	fuzzDomain  = "test.example"
	fuzzGone    = "gone@" + fuzzDomain // virtusertable error: entry
	fuzzMaxSize = 8 << 10
	fuzzTimeout = 3 * time.Second
)

type fuzzTables struct{}

func (fuzzTables) LocalDomain(d string) bool  { return strings.EqualFold(d, fuzzDomain) }
func (fuzzTables) RelayDomain(string) bool    { return false }
func (fuzzTables) Connect(netip.Addr) Answer  { return Answer{} }
func (fuzzTables) From(string) Answer         { return Answer{} }
func (fuzzTables) To(string, bool) Answer     { return Answer{} }
func (fuzzTables) LocalUser(name string) bool { return name == "root" || name == "postmaster" }
func (fuzzTables) Virtual(addr string) (string, bool, *mailerr.Error) {
	if strings.EqualFold(addr, fuzzGone) {
		return "", true, mailerr.SMTP(550, "5.1.6", "User has moved; no forwarding address")
	}
	return "", false, nil
}

// fuzzConfig parses a configuration as the daemon would, so that the
// relay networks are set up. local chooses whether the loopback client is
// in relay_from.
func fuzzConfig(tb testing.TB, local bool) *config.Config {
	relay := "[]"
	if local {
		relay = `["127.0.0.0/8", "::1/128"]`
	}
	text := fmt.Sprintf("hostname = %q\nmax_message_size = %d\nrelay_from = %s\n[limits]\nmax_bad_commands = 5\n",
		fuzzDomain, fuzzMaxSize, relay)
	cfg, err := config.Parse("fuzz.toml", []byte(text))
	if err != nil {
		tb.Fatal(err)
	}
	if got := cfg.RelayAllowed(netip.MustParseAddr("127.0.0.1")); got != local {
		tb.Fatalf("RelayAllowed(127.0.0.1) = %v, want %v", got, local)
	}
	return cfg
}

// syncBuffer collects the mail log; goroutines of go-smtp may still write
// while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fuzzSeeds are client inputs worth starting from.
func fuzzSeeds() []string {
	const (
		hello = "EHLO client.example\r\n"
		env   = "MAIL FROM:<alice@client.example>\r\nRCPT TO:<root@" + fuzzDomain + ">\r\n"
		msg   = "From: alice@client.example\r\nTo: root@" + fuzzDomain + "\r\nSubject: hi\r\nMessage-ID: <1@client.example>\r\n\r\nbody\r\n"
		smug  = "MAIL FROM:<admin@" + fuzzDomain + ">\r\nRCPT TO:<postmaster@" + fuzzDomain + ">\r\nDATA\r\nFrom: admin@" + fuzzDomain + "\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\n"
	)
	seeds := []string{
		// A plain session, and one with HELO.
		hello + env + "DATA\r\n" + msg + ".\r\nQUIT\r\n",
		"HELO client.example\r\n" + env + "DATA\r\n" + msg + ".\r\n",
		// Two recipients, null sender, dot-stuffing, empty message.
		hello + "MAIL FROM:<>\r\nRCPT TO:<root@" + fuzzDomain + ">\r\nRCPT TO:<postmaster>\r\nDATA\r\n..leading dot\r\n.\r\n",
		hello + env + "DATA\r\n.\r\n",
		// Pipelining past the end of DATA.
		hello + env + "DATA\r\n" + msg + ".\r\n" + env + "DATA\r\n" + msg + ".\r\nQUIT\r\n",
		// Relay attempts.
		hello + "MAIL FROM:<spam@client.example>\r\nRCPT TO:<victim@example.net>\r\nRCPT TO:<victim%example.net@" + fuzzDomain + ">\r\n" +
			"RCPT TO:<\"victim@example.net\">\r\nRCPT TO:<\"victim@example.net\"@" + fuzzDomain + ">\r\nRCPT TO:<victim!example.net@" + fuzzDomain + ">\r\n" +
			"RCPT TO:<@" + fuzzDomain + ":victim@example.net>\r\nRCPT TO:<victim@[192.0.2.1]>\r\nRCPT TO:<victim@example.net.>\r\nDATA\r\n" + msg + ".\r\n",
		hello + "MAIL FROM:<a@client.example>\r\nRCPT TO:<ROOT@TEST.EXAMPLE.>\r\nRCPT TO:<root+tag@" + fuzzDomain + ">\r\nRCPT TO:<\"root\"@" + fuzzDomain + ">\r\nRCPT TO:<" + fuzzGone + ">\r\nDATA\r\n" + msg + ".\r\n",
		// Too many bad commands.
		hello + "MAIL FROM:<a@client.example>\r\n" + strings.Repeat("RCPT TO:<x@example.net>\r\n", 7) + "RCPT TO:<root@" + fuzzDomain + ">\r\nDATA\r\n" + msg + ".\r\n",
		// AUTH without TLS, STARTTLS without a certificate.
		hello + "AUTH PLAIN AHJvb3QAc2VjcmV0\r\nAUTH LOGIN\r\ncm9vdA==\r\nc2VjcmV0\r\nMAIL FROM:<a@client.example> AUTH=<>\r\nRCPT TO:<victim@example.net>\r\nDATA\r\n" + msg + ".\r\n",
		hello + "STARTTLS\r\n" + env + "DATA\r\n" + msg + ".\r\n",
		// CHUNKING.
		hello + env + fmt.Sprintf("BDAT %d\r\n%sBDAT 0 LAST\r\nQUIT\r\n", len(msg), msg),
		hello + env + fmt.Sprintf("BDAT %d LAST\r\n%s", len(msg), msg),
		hello + env + "BDAT 12\r\nbare\nLF\x00NUL\rBDAT 0 LAST\r\n",
		hello + env + "BDAT 3\r\nabc",
		hello + env + "BDAT 100000 LAST\r\n",
		// VRFY, EXPN, ETRN and friends.
		hello + "VRFY root\r\nEXPN postmaster\r\nETRN " + fuzzDomain + "\r\nHELP\r\nNOOP\r\nVERB\r\nRSET\r\nTURN\r\nQUIT\r\n",
		// DSN and other parameters.
		"EHLO client.example\r\nMAIL FROM:<a@client.example> RET=HDRS ENVID=x+2By SIZE=100 BODY=8BITMIME SMTPUTF8\r\n" +
			"RCPT TO:<root@" + fuzzDomain + "> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;root@" + fuzzDomain + "\r\nDATA\r\n" + msg + ".\r\n",
		// NUL in commands.
		"EHLO client\x00.example\r\nMAIL FROM:<a\x00@client.example>\r\nRCPT TO:<root\x00@" + fuzzDomain + ">\r\n" + env + "DATA\x00\r\n",
		// Long lines.
		"EHLO " + strings.Repeat("a", 3000) + "\r\n" + env + "DATA\r\n" + strings.Repeat("x", 1500) + "\r\n.\r\n",
		hello + env + "DATA\r\n" + strings.Repeat("y", fuzzMaxSize+10) + "\r\n.\r\n",
		// Garbage.
		"\xff\xfe\x00\x01\r\r\n\n\x1b[0m\x7f",
		"\r\n\r\n\n\n\r\r",
		"",
		"QUIT\r\n",
	}
	// SMTP smuggling: a fake end of data, then a second transaction.
	for _, end := range []string{"\n.\n", "\r.\r", "\r.\n", "\n.\r", "\n.\r\n", "\r\n.\n", "\r.\r\n", "\r\n.\r", "\r\n\x00.\r\n"} {
		seeds = append(seeds, hello+env+"DATA\r\nSubject: x\r\n\r\nbody"+end+smug+"QUIT\r\n")
		seeds = append(seeds, hello+env+"DATA\r\nSubject: x\r\n\r\nbody"+end+smug)
	}
	return seeds
}

// FuzzSession feeds arbitrary client bytes to a real listener (New) with
// our Backend on a loopback socket, then checks:
//
//   - no panic (go-smtp turns one into "421 4.0.0 Internal server error");
//   - every reply line is CRLF-terminated and starts with a code and a
//     space or a dash;
//   - the session ends soon after the client's end of input, and
//     Shutdown returns;
//   - the queue holds exactly the messages answered "250 2.0.0 <ID>
//     Message accepted", each whole: a qf that Queue.Read accepts, its df
//     starting with our Received: header, no more data than
//     max_message_size, no tf/dt/Qf file left;
//   - for a client outside relay_from: only local recipients (nothing
//     relayed), and no NUL, bare CR or bare LF in what was queued.
//
// local puts the client in relay_from; banner makes the client wait for
// the greeting before it talks.
func FuzzSession(f *testing.F) {
	for _, s := range fuzzSeeds() {
		for _, local := range []bool{false, true} {
			for _, banner := range []bool{false, true} {
				f.Add(local, banner, []byte(s))
			}
		}
	}
	cfgs := map[bool]*config.Config{false: fuzzConfig(f, false), true: fuzzConfig(f, true)}
	f.Fuzz(func(t *testing.T, local, banner bool, input []byte) {
		cfg := cfgs[local]
		q := spool.Open(t.TempDir())
		out, logText := fuzzRun(t, cfg, q, banner, input)
		if !t.Failed() {
			accepted := checkReplies(t, out)
			checkQueue(t, cfg, q, !local, accepted)
		}
		if t.Failed() {
			t.Logf("local=%v banner=%v input: %q\nreplies:\n%s\nlog:\n%s", local, banner, input, out, logText)
		}
	})
}

// fuzzRun serves one connection: the client writes input (after the
// banner if banner is set), closes its side for writing and reads until
// the server closes. The server is shut down before it returns, so the
// queue is quiet.
func fuzzRun(t *testing.T, cfg *config.Config, q *spool.Queue, banner bool, input []byte) (out []byte, logText string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logBuf := &syncBuffer{}
	b := &Backend{
		Config:   func() *config.Config { return cfg },
		Tables:   fuzzTables{},
		Queue:    q,
		Log:      maillog.New(logBuf, "sm-mta"),
		Listener: config.Listen{Name: "MTA", Mode: "mta", Auth: "none"},
	}
	srv, err := New(ln, cfg, Options{Backend: b})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	srv.srv.ReadTimeout = fuzzTimeout
	srv.srv.WriteTimeout = fuzzTimeout
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()

	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), fuzzTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		ln.Close() // in case Serve had not registered it yet
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(fuzzTimeout):
			t.Errorf("Serve did not return after Shutdown")
		}
		logText = logBuf.String()
	}()

	c, err := net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(fuzzTimeout))

	var buf bytes.Buffer
	if banner {
		// The greeting is one line.
		p := make([]byte, 512)
		for !bytes.Contains(buf.Bytes(), []byte("\n")) {
			n, err := c.Read(p)
			buf.Write(p[:n])
			if err != nil {
				t.Errorf("reading the greeting: %v", err)
				return buf.Bytes(), ""
			}
		}
	}
	// Write while reading, so that neither side blocks on a full socket
	// buffer.
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		c.Write(input) // the server may hang up first
		c.CloseWrite()
	}()
	_, err = io.Copy(&buf, c)
	<-wrote
	var ne net.Error
	switch {
	case err == nil, errors.Is(err, syscall.ECONNRESET):
		// The server closed (a reset when it hangs up on unread input).
	case errors.As(err, &ne) && ne.Timeout():
		t.Errorf("the session did not end within %v of the client's end of input", fuzzTimeout)
	default:
		t.Errorf("reading replies: %v", err)
	}
	return buf.Bytes(), ""
}

var acceptedRe = regexp.MustCompile(`^250 2\.0\.0 (\S+) Message accepted for delivery$`)

// checkReplies checks the shape of every reply line and returns the queue
// IDs of the messages the server said it accepted.
func checkReplies(t *testing.T, out []byte) map[string]bool {
	accepted := map[string]bool{}
	if len(out) == 0 {
		t.Errorf("no reply at all (not even the greeting)")
		return accepted
	}
	if !bytes.HasSuffix(out, []byte("\r\n")) {
		t.Errorf("output does not end with CRLF")
	}
	// Lines end at LF, as a client reads them; each must end with CR.
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	for i, l := range lines {
		if !strings.HasSuffix(l, "\r") {
			t.Errorf("reply line %d does not end with CRLF: %q", i, l)
		}
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	if !strings.HasPrefix(lines[0], "220") {
		t.Errorf("first reply %q is not a greeting", lines[0])
	}
	for i, l := range lines {
		if !wellFormedReply(l) {
			t.Errorf("reply line %d is malformed: %q", i, l)
		}
		if strings.HasPrefix(l, "421 4.0.0 Internal server error") {
			t.Errorf("the server panicked (reply %q)", l)
		}
		if m := acceptedRe.FindStringSubmatch(l); m != nil && spool.ValidID(m[1]) {
			if accepted[m[1]] {
				t.Errorf("queue ID %s accepted twice", m[1])
			}
			accepted[m[1]] = true
		}
	}
	return accepted
}

// wellFormedReply: three digits (2xx to 5xx), then a space or a dash.
// (A bare CR inside the text is let through: go-smtp echoes an unknown
// four-byte verb as it came, and a CR without LF ends no line.)
func wellFormedReply(l string) bool {
	if len(l) < 4 || l[0] < '2' || l[0] > '5' || l[1] < '0' || l[1] > '9' || l[2] < '0' || l[2] > '9' {
		return false
	}
	return l[3] == ' ' || l[3] == '-'
}

// checkQueue checks that the queue holds exactly the accepted messages,
// each whole, and, for a client that may not relay (strict), only local
// recipients and clean line endings.
func checkQueue(t *testing.T, cfg *config.Config, q *spool.Queue, strict bool, accepted map[string]bool) {
	names := settledQueue(t, q)
	queued := map[string]bool{}
	for _, name := range names {
		id := name[2:]
		switch name[:2] {
		case "qf":
			queued[id] = true
		case "df":
		default:
			t.Errorf("unexpected file %s left in the queue", name)
		}
		if !spool.ValidID(id) {
			t.Errorf("file %s is not named after a queue ID", name)
		}
	}
	for _, name := range names {
		if id := name[2:]; strings.HasPrefix(name, "df") && !queued[id] {
			t.Errorf("df%s has no qf", id)
		}
	}
	for id := range queued {
		if !accepted[id] {
			t.Errorf("message %s is in the queue but its acceptance was never answered", id)
		}
		checkMessage(t, cfg, q, id, strict)
	}
	for id := range accepted {
		if !queued[id] {
			t.Errorf("message %s was accepted but is not in the queue", id)
		}
	}
}

// settledQueue lists the queue once no write is in progress: no
// temporary file, and a qf for every df. A BDAT transfer cut short is
// aborted by a goroutine of go-smtp that may still be running after
// Shutdown, so give it a moment.
func settledQueue(t *testing.T, q *spool.Queue) []string {
	deadline := time.Now().Add(fuzzTimeout)
	for {
		ents, err := os.ReadDir(q.Dir)
		if err != nil {
			t.Fatal(err)
		}
		var names, busy []string
		have := map[string]bool{}
		for _, e := range ents {
			have[e.Name()] = true
		}
		for _, e := range ents {
			n := e.Name()
			names = append(names, n)
			switch {
			case strings.HasPrefix(n, "tf"), strings.HasPrefix(n, "dt"):
				busy = append(busy, n)
			case strings.HasPrefix(n, "df") && !have["qf"+n[2:]]:
				busy = append(busy, n+" (no qf)")
			}
		}
		if len(busy) == 0 {
			return names
		}
		if time.Now().After(deadline) {
			t.Errorf("queue writes still unfinished %v after the server stopped: %v", fuzzTimeout, busy)
			return names
		}
		time.Sleep(time.Millisecond)
	}
}

func checkMessage(t *testing.T, cfg *config.Config, q *spool.Queue, id string, strict bool) {
	env, err := q.Read(id)
	if err != nil {
		t.Errorf("queue.Read(%s): %v", id, err)
		return
	}
	df, err := os.ReadFile(q.DataPath(id))
	if err != nil {
		t.Errorf("message %s: %v", id, err)
		return
	}
	if env.ID != id {
		t.Errorf("qf%s holds ID %q", id, env.ID)
	}
	if env.Sender != "" {
		if _, err := envelope.CheckMailbox(env.Sender); err != nil {
			t.Errorf("message %s: bad sender queued: %v", id, err)
		}
	}
	if len(env.Rcpts) == 0 {
		t.Errorf("message %s has no recipient", id)
	}
	if max := cfg.Limits.MaxRecipients; len(env.Rcpts) > max {
		t.Errorf("message %s has %d recipients, more than max_recipients %d", id, len(env.Rcpts), max)
	}
	for _, r := range env.Rcpts {
		if r.State != spool.Pending {
			t.Errorf("message %s: recipient %q queued in state %c", id, r.Addr, r.State)
		}
		if _, err := envelope.CheckMailbox(r.Addr); err != nil {
			t.Errorf("message %s: bad recipient queued: %v", id, err)
		}
		if strings.EqualFold(r.Addr, fuzzGone) {
			t.Errorf("message %s: recipient %q has a virtusertable error entry", id, r.Addr)
		}
		if d := strings.TrimSuffix(strings.ToLower(envelope.Domain(r.Addr)), "."); strict && d != "" && d != fuzzDomain {
			t.Errorf("message %s: relayed for a client not in relay_from: recipient %q (domain %q)", id, r.Addr, d)
		}
	}

	// The Received: header we add, then the client's data.
	hdrEnd := receivedEnd(df)
	if hdrEnd < 0 || !bytes.HasPrefix(df, []byte("Received: from ")) {
		t.Errorf("message %s does not start with our Received: header: %q", id, truncate(df, 300))
		return
	}
	hdr, data := df[:hdrEnd], df[hdrEnd:]
	if !bytes.Contains(hdr, []byte("by "+cfg.Hostname+" ")) || !bytes.Contains(hdr, []byte(" id "+id)) {
		t.Errorf("message %s: Received: header does not name the host and the ID: %q", id, hdr)
	}
	if len(data) > int(cfg.MaxMessageSize) {
		t.Errorf("message %s: %d bytes of data queued, more than max_message_size %d", id, len(data), cfg.MaxMessageSize)
	}
	if strict {
		if i, what := badByte(hdr); i >= 0 {
			t.Errorf("message %s: %s at offset %d of the Received: header: %q", id, what, i, hdr)
		}
		if i, what := badByte(data); i >= 0 {
			t.Errorf("message %s from a client not in relay_from: %s at offset %d of the data: %q", id, what, i, around(data, i))
		}
	}
}

// receivedEnd returns the length of the first header field of df (lines
// continued by a tab), or -1.
func receivedEnd(df []byte) int {
	for i := 0; ; {
		j := bytes.Index(df[i:], []byte("\r\n"))
		if j < 0 {
			return -1
		}
		i += j + 2
		if i >= len(df) || df[i] != '\t' {
			return i
		}
	}
}

// badByte finds a NUL, a CR not followed by LF or an LF not preceded by
// CR.
func badByte(p []byte) (int, string) {
	for i, c := range p {
		switch {
		case c == 0:
			return i, "NUL"
		case c == '\r' && (i+1 >= len(p) || p[i+1] != '\n'):
			return i, "bare CR"
		case c == '\n' && (i == 0 || p[i-1] != '\r'):
			return i, "bare LF"
		}
	}
	return -1, ""
}

func around(p []byte, i int) []byte {
	lo, hi := max(i-40, 0), min(i+40, len(p))
	return p[lo:hi]
}

func truncate(p []byte, n int) []byte {
	if len(p) > n {
		return p[:n]
	}
	return p
}
