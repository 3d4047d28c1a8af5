package test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"mime"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"

	"github.com/gosendmail/gosendmail/pkg/dns/dnstest"
	"github.com/gosendmail/gosendmail/pkg/mailerr"
	"github.com/gosendmail/gosendmail/pkg/transport/smtp"
)

// How a fake MX (faultMX) behaves. Raw TCP, so it can misbehave in ways a
// real SMTP server library will not.
const (
	fmOK       = "ok"        // plain SMTP that accepts everything
	fmSilent   = "silent"    // accepts the connection, never greets
	fmGarbage  = "garbage"   // answers with something that is not SMTP (HTTP)
	fmSSH      = "ssh"       // an SSH banner: "SSH-" reads as the start of a multi-line reply
	fmBadTLS   = "badtls"    // offers STARTTLS and answers the handshake with junk; fine in plain text
	fmHangData = "hang-data" // 354, then neither reads nor answers
	fmHangDot  = "hang-dot"  // reads the message, never answers the final dot
	fmDropData = "drop-data" // closes the connection in the middle of DATA
	fmRcpt4xx  = "rcpt-4xx"  // RCPT: 451 (greylisting)
	fmRcpt5xx  = "rcpt-5xx"  // RCPT: 550
	fmData5xx  = "data-5xx"  // the final dot: 554
)

// faultMX is a fake remote MX on a raw TCP listener.
type faultMX struct {
	mode string
	ln   net.Listener
	quit chan struct{} // closed when the test ends

	mu    sync.Mutex
	conns []net.Conn
	tls   int // STARTTLS commands answered
	msgs  []sinkMsg
}

// startFaultMXes listens on each of ips with the given modes, all on one
// port (the daemon's remote_port is one for every host), and returns the
// port. An empty mode leaves the address without a listener: connection
// refused.
func startFaultMXes(t *testing.T, modes map[string]string) (int, map[string]*faultMX) {
	t.Helper()
	var ips []string
	for ip, mode := range modes {
		if mode != "" {
			ips = append(ips, ip)
		}
	}
	for try := 0; try < 50; try++ {
		lns := map[string]net.Listener{}
		first, err := net.Listen("tcp", ips[0]+":0")
		must(t, err)
		lns[ips[0]] = first
		port := first.Addr().(*net.TCPAddr).Port
		ok := true
		for _, ip := range ips[1:] {
			ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
			if err != nil {
				ok = false
				break
			}
			lns[ip] = ln
		}
		if !ok {
			for _, ln := range lns {
				ln.Close()
			}
			continue
		}
		out := map[string]*faultMX{}
		for ip, ln := range lns {
			m := &faultMX{mode: modes[ip], ln: ln, quit: make(chan struct{})}
			go m.serve()
			t.Cleanup(m.close)
			out[ip] = m
		}
		return port, out
	}
	t.Fatal("no port free on every fake MX address")
	return 0, nil
}

func (m *faultMX) serve() {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			return
		}
		m.mu.Lock()
		m.conns = append(m.conns, c)
		m.mu.Unlock()
		go m.handle(c)
	}
}

func (m *faultMX) close() {
	m.ln.Close()
	close(m.quit)
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.conns {
		c.Close()
	}
}

func (m *faultMX) handle(c net.Conn) {
	defer c.Close()
	// A safety net only: the tests close every connection at the end.
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	switch m.mode {
	case fmSilent:
		io.Copy(io.Discard, c)
		return
	case fmGarbage:
		c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Type: text/html\r\n\r\n\x00\xff\xfe\x15\x03\x03<html>\r\n"))
		io.Copy(io.Discard, c)
		return
	case fmSSH:
		c.Write([]byte("SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13.5\r\n"))
		io.Copy(io.Discard, c)
		return
	}
	r := bufio.NewReader(c)
	say := func(s string) { c.Write([]byte(s + "\r\n")) }
	say("220 mx.fault.example ESMTP")
	var from string
	var rcpts []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			ext := "250-mx.fault.example\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
			if m.mode == fmBadTLS {
				ext += "250-STARTTLS\r\n"
			}
			c.Write([]byte(ext + "250 ENHANCEDSTATUSCODES\r\n"))
		case "HELO":
			say("250 mx.fault.example")
		case "STARTTLS":
			if m.mode != fmBadTLS {
				say("502 5.5.1 Not offered")
				continue
			}
			m.mu.Lock()
			m.tls++
			m.mu.Unlock()
			say("220 2.0.0 Ready to start TLS")
			c.Write([]byte("this is no TLS server hello\r\n"))
			return
		case "MAIL":
			from = arg
			say("250 2.1.0 Ok")
		case "RCPT":
			switch m.mode {
			case fmRcpt4xx:
				say("451 4.7.1 Greylisted, please try again later")
			case fmRcpt5xx:
				say("550 5.1.1 No such user here")
			default:
				_, addr, _ := strings.Cut(arg, ":")
				addr, _, _ = strings.Cut(addr, " ")
				rcpts = append(rcpts, strings.Trim(addr, "<>"))
				say("250 2.1.5 Ok")
			}
		case "DATA":
			say("354 End data with <CR><LF>.<CR><LF>")
			switch m.mode {
			case fmHangData:
				// Neither read nor answer, until the test ends.
				<-m.quit
				return
			case fmDropData:
				buf := make([]byte, 16)
				io.ReadFull(r, buf)
				return
			}
			data, err := faultReadData(r)
			if err != nil {
				return
			}
			switch m.mode {
			case fmHangDot:
				io.Copy(io.Discard, r)
				return
			case fmData5xx:
				say("554 5.6.0 Message content rejected")
			default:
				m.mu.Lock()
				m.msgs = append(m.msgs, sinkMsg{from: from, rcpts: rcpts, data: data})
				m.mu.Unlock()
				say("250 2.0.0 Ok: queued")
			}
			from, rcpts = "", nil
		case "RSET":
			from, rcpts = "", nil
			say("250 2.0.0 Ok")
		case "NOOP":
			say("250 2.0.0 Ok")
		case "QUIT":
			say("221 2.0.0 Bye")
			return
		default:
			say("502 5.5.2 Command not recognized")
		}
	}
}

// faultReadData reads DATA up to the lone dot and undoes dot-stuffing.
func faultReadData(r *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		if line == ".\r\n" {
			return b.String(), nil
		}
		b.WriteString(strings.TrimPrefix(line, "."))
	}
}

// Where a message must end.
const (
	faultDelivered = "delivered" // at the fake MX (or the backup MX)
	faultDeferred  = "deferred"  // in the queue, with the reason in mailq
	faultBounced   = "bounced"   // a DSN in the sender's local mailbox
	faultInFlight  = "in flight" // still being tried: the MX hangs longer than the test
)

// faultCase is one destination domain, how its MX or its DNS misbehaves,
// and what must become of a message to it.
type faultCase struct {
	domain string
	mode   string // the MX's behaviour; "" = nothing listens (connection refused)
	dns    string // "servfail", "timeout" (for the domain), "a-servfail" (for its MX host)
	backup bool   // a second MX, of lower preference, that works
	end    string
	want   string // the mailq reason (deferred), the DSN diagnostic (bounced); {ip} is the MX's address
}

// remoteFaultCases: every way a remote end can fail that the daemon must
// survive, one domain each.
var remoteFaultCases = []faultCase{
	{domain: "refused.example", end: faultDeferred, want: "Deferred: Connection refused by mx.refused.example."},
	{domain: "garbage.example", mode: fmGarbage, end: faultDeferred, want: "Deferred: Lost connection with mx.garbage.example."},
	{domain: "drop.example", mode: fmDropData, end: faultDeferred, want: "Deferred: Lost connection with mx.drop.example. [{ip}] while sending message"},
	{domain: "greylist.example", mode: fmRcpt4xx, end: faultDeferred, want: "Deferred: 451 4.7.1 Greylisted, please try again later"},
	{domain: "badtls.example", mode: fmBadTLS, end: faultDelivered},
	{domain: "backup.example", backup: true, end: faultDelivered},
	{domain: "reject.example", mode: fmRcpt5xx, end: faultBounced, want: "550 5.1.1 No such user here"},
	{domain: "content.example", mode: fmData5xx, end: faultBounced, want: "554 5.6.0 Message content rejected"},
	{domain: "servfail.example", dns: "servfail", end: faultDeferred, want: "Deferred: Name server: servfail.example: host name lookup failure"},
	{domain: "dnstimeout.example", dns: "timeout", end: faultDeferred, want: "Deferred: Name server: dnstimeout.example: host name lookup failure"},
	{domain: "aservfail.example", dns: "a-servfail", end: faultDeferred, want: "Deferred: Name server: mx.aservfail.example: host name lookup failure"},
	{domain: "silent.example", mode: fmSilent, end: faultInFlight},
	{domain: "hangdata.example", mode: fmHangData, end: faultInFlight},
	{domain: "hangdot.example", mode: fmHangDot, end: faultInFlight},
}

const faultGoodIP = "127.0.0.49"

func faultIP(i int) string { return "127.0.0." + strconv.Itoa(50+i) }

// MX hosts that refuse, time out, hang in DATA, drop mid-message, answer
// garbage or offer broken TLS; DNS that fails or says nothing: every
// message ends delivered, deferred with a reason in mailq, or bounced with
// a DSN to the sender; none is lost, none waits without a reason. Messages
// stuck on a host that hangs are cut off by a stop, kept with a reason, and
// delivered after a restart once the domain's MX works.
func TestFaultRemote(t *testing.T) {
	t.Parallel() // most of its time is waiting for DNS timeouts
	cases := remoteFaultCases
	e := newEnv(t)
	os.WriteFile(e.path("etc/local-host-names"), []byte("test.example\n"), 0o644)
	dsrv := dnstest.NewServer(t)
	modes := map[string]string{faultGoodIP: fmOK}
	for i, c := range cases {
		if c.dns == "" {
			modes[faultIP(i)] = c.mode
		}
	}
	port, mxs := startFaultMXes(t, modes)
	dsrv.A("mx.good.example", faultGoodIP)
	for i, c := range cases {
		mx := "mx." + c.domain
		switch c.dns {
		case "servfail":
			dsrv.ServFail(c.domain)
		case "timeout":
			dsrv.Timeout(c.domain)
		case "a-servfail":
			dsrv.MX(c.domain, 10, mx)
			dsrv.ServFail(mx)
		default:
			dsrv.MX(c.domain, 10, mx)
			dsrv.A(mx, faultIP(i))
		}
		if c.backup {
			dsrv.MX(c.domain, 20, "mx.good.example")
		}
	}
	extra := "relay_from = [\"127.0.0.1/32\"]\n[delivery]\ndns_server = \"" + dsrv.Addr() + "\"\nremote_port = " + strconv.Itoa(port) +
		"\nclient_family = \"inet\"\nretry_min = \"1s\"\nretry_max = \"2s\"\n[limits]\ngreet_pause = \"0s\"\n"
	d := startDaemon(t, e, extra)

	cl := greet(t, localIP, d.addrs["MTA"])
	for _, c := range cases {
		cl.must("MAIL FROM:<root@test.example>", 250)
		cl.must("RCPT TO:<user@"+c.domain+">", 250)
		cl.must("DATA", 354)
		cl.send("Subject: fault " + c.domain + "\r\nMessage-ID: <" + c.domain + "@test.example>\r\n\r\nbody\r\n.\r\n")
		cl.expect(250)
	}
	cl.must("QUIT", 221)

	mxOf := func(i int) *faultMX {
		if cases[i].backup {
			return mxs[faultGoodIP]
		}
		return mxs[faultIP(i)]
	}
	delivered := func(m *faultMX, rcpt string) int {
		m.mu.Lock()
		defer m.mu.Unlock()
		n := 0
		for _, msg := range m.msgs {
			for _, r := range msg.rcpts {
				if r == rcpt {
					n++
				}
			}
		}
		return n
	}
	// settled says what is not yet as it must be.
	settled := func(q map[string]faultQEntry, bounces map[string]faultDSN) []string {
		var bad []string
		for i, c := range cases {
			rcpt := "user@" + c.domain
			ent, queued := q[rcpt]
			switch c.end {
			case faultDelivered:
				if queued || delivered(mxOf(i), rcpt) != 1 {
					bad = append(bad, fmt.Sprintf("%s: not delivered (queued %v: %+v)", c.domain, queued, ent))
				}
			case faultBounced:
				if _, ok := bounces[rcpt]; queued || !ok {
					bad = append(bad, fmt.Sprintf("%s: not bounced (queued %v: %+v)", c.domain, queued, ent))
				}
			case faultDeferred:
				if want := strings.ReplaceAll(c.want, "{ip}", faultIP(i)); !queued || !strings.Contains(ent.reason, want) {
					bad = append(bad, fmt.Sprintf("%s: not deferred with %q (queued %v: %+v)", c.domain, want, queued, ent))
				}
			case faultInFlight:
				if !queued || ent.mark != '*' {
					bad = append(bad, fmt.Sprintf("%s: not being delivered (queued %v: %+v)", c.domain, queued, ent))
				}
			}
		}
		return bad
	}
	var q map[string]faultQEntry
	var out string
	var bounces map[string]faultDSN
	var bad []string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		out, q = faultMailq(t, e)
		bounces = faultBounces(t, e)
		if bad = settled(q, bounces); len(bad) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(bad) > 0 {
		t.Fatalf("after 30 s:\n%s\nmailq:\n%s\nlog:\n%s", strings.Join(bad, "\n"), out, d.log())
	}
	// Nothing else is queued (a DSN waiting, a message without a reason).
	want := 0
	for _, c := range cases {
		if c.end == faultDeferred || c.end == faultInFlight {
			want++
		}
	}
	if len(q) != want {
		t.Errorf("%d messages queued, want %d:\n%s", len(q), want, out)
	}
	// Broken TLS: one STARTTLS, then the message in plain text.
	for i, c := range cases {
		if c.mode == fmBadTLS {
			m := mxs[faultIP(i)]
			m.mu.Lock()
			if m.tls != 1 {
				t.Errorf("%s: %d STARTTLS", c.domain, m.tls)
			}
			m.mu.Unlock()
		}
	}
	// The bounces: well-formed reports, with the remote's words.
	for _, c := range cases {
		if c.end != faultBounced {
			continue
		}
		b := bounces["user@"+c.domain]
		if b.fields.Get("Action") != "failed" || !strings.HasPrefix(b.fields.Get("Status"), "5.") ||
			!strings.Contains(b.fields.Get("Diagnostic-Code"), c.want) || !strings.Contains(b.fields.Get("Remote-MTA"), "mx."+c.domain) {
			t.Errorf("%s: bounce fields %v", c.domain, b.fields.Map())
		}
		if b.origType != "message/rfc822" || !strings.Contains(b.orig, "Subject: fault "+c.domain) {
			t.Errorf("%s: bounce returns %s:\n%s", c.domain, b.origType, b.orig)
		}
	}

	// A stop does not wait for hosts that hang: it cuts their sessions,
	// and every message stays queued with a reason.
	t0 := time.Now()
	d.stop()
	if took := time.Since(t0); took > 10*time.Second {
		t.Errorf("the daemon took %v to stop", took)
	}
	out, q = faultMailq(t, e)
	t.Logf("stopped after %v; mailq:\n%s", time.Since(t0).Round(time.Millisecond), out)
	if len(q) != want {
		t.Errorf("after the stop, %d messages queued, want %d:\n%s", len(q), want, out)
	}
	for rcpt, ent := range q {
		if ent.mark == '*' || !strings.HasPrefix(ent.reason, "Deferred: ") {
			t.Errorf("after the stop, %s is queued as %+v", rcpt, ent)
		}
	}

	// Every domain's MX works again: after a restart everything queued is
	// delivered, exactly once.
	for _, c := range cases {
		if c.end != faultDeferred && c.end != faultInFlight {
			continue
		}
		dsrv.Remove(c.domain)
		dsrv.Remove("mx." + c.domain)
		dsrv.MX(c.domain, 10, "mx.good.example")
	}
	startDaemon(t, e, "")
	waitFor(t, "an empty queue after the restart", func() bool { return e.qfCount() == 0 })
	for _, c := range cases {
		if c.end != faultDeferred && c.end != faultInFlight {
			continue
		}
		if n := delivered(mxs[faultGoodIP], "user@"+c.domain); n != 1 {
			t.Errorf("%s: delivered %d times after the restart", c.domain, n)
		}
	}
	if n := len(faultMbox(e.path("spool/mail/root"))); n != 2 {
		t.Errorf("root got %d messages, want the 2 bounces", n)
	}
}

// faultQEntry is one message as mailq lists it.
type faultQEntry struct {
	id     string
	mark   byte
	sender string
	reason string
	rcpts  []string
}

// faultMailq runs the mailq binary and returns its output and the entries by
// recipient.
func faultMailq(t *testing.T, e *env) (string, map[string]faultQEntry) {
	t.Helper()
	out, stderr, code := e.run(nil, "mailq")
	if code != 0 {
		t.Fatalf("mailq: exit %d: %s\n%s", code, stderr, out)
	}
	var ents []*faultQEntry
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "\t\t\t\t\t "):
			if len(ents) > 0 {
				ents[len(ents)-1].rcpts = append(ents[len(ents)-1].rcpts, strings.TrimPrefix(line, "\t\t\t\t\t "))
			}
		case strings.HasPrefix(line, strings.Repeat(" ", 17)+"("):
			if len(ents) > 0 {
				ents[len(ents)-1].reason = strings.TrimSuffix(strings.TrimSpace(line)[1:], ")")
			}
		case len(line) > 15 && line[0] != '\t' && line[0] != '-' && !strings.Contains(line, "Queue status") && !strings.HasSuffix(line, "is empty"):
			f := strings.Fields(line[15:])
			ent := &faultQEntry{id: line[:14], mark: line[14]}
			if len(f) > 0 {
				ent.sender = f[len(f)-1]
			}
			ents = append(ents, ent)
		}
	}
	byRcpt := map[string]faultQEntry{}
	for _, ent := range ents {
		for _, r := range ent.rcpts {
			byRcpt[r] = *ent
		}
		if len(ent.rcpts) == 0 {
			byRcpt["(none) "+ent.id] = *ent
		}
	}
	return out, byRcpt
}

// faultMbox splits an mbox into its messages, without the From_ lines.
func faultMbox(path string) []string {
	var msgs []string
	var cur strings.Builder
	started := false
	for _, line := range strings.SplitAfter(readFile(path), "\n") {
		if strings.HasPrefix(line, "From ") {
			if started {
				msgs = append(msgs, cur.String())
			}
			cur.Reset()
			started = true
			continue
		}
		cur.WriteString(line)
	}
	if started {
		msgs = append(msgs, cur.String())
	}
	return msgs
}

// faultDSN is one recipient of a parsed delivery status notification.
type faultDSN struct {
	fields   textproto.Header // the per-recipient fields
	origType string           // message/rfc822 or text/rfc822-headers
	orig     string           // the returned original
	raw      string           // the whole report
}

// faultBounces parses the failure reports in root's mailbox, by final
// recipient; a report that does not parse fails the test.
func faultBounces(t *testing.T, e *env) map[string]faultDSN {
	t.Helper()
	out := map[string]faultDSN{}
	for _, raw := range faultMbox(e.path("spool/mail/root")) {
		if !strings.Contains(raw, "multipart/report") {
			continue
		}
		rcpts, err := parseFaultDSN(raw)
		if err != nil {
			t.Fatalf("a report in root's mailbox does not parse: %v\n%s", err, raw)
		}
		for _, r := range rcpts {
			addr := strings.TrimSpace(r.fields.Get("Final-Recipient"))
			addr = strings.TrimSpace(strings.TrimPrefix(strings.ToLower(addr), "rfc822;"))
			out[addr] = r
		}
	}
	return out
}

// parseFaultDSN reads an RFC 3464 report as a MIME reader does
// (github.com/emersion/go-message) and checks its structure: a
// multipart/report of report-type delivery-status with a text/plain part,
// a message/delivery-status part, and the original (message/rfc822 or
// text/rfc822-headers).
func parseFaultDSN(raw string) ([]faultDSN, error) {
	ent, err := message.Read(strings.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("the report: %v", err)
	}
	mt, params, err := ent.Header.ContentType()
	if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
		return nil, fmt.Errorf("Content-Type %q (%v)", ent.Header.Get("Content-Type"), err)
	}
	if ent.Header.Get("Auto-Submitted") == "" || !strings.Contains(ent.Header.Get("From"), "MAILER-DAEMON@") {
		return nil, fmt.Errorf("header %v", ent.Header.Map())
	}
	mr := ent.MultipartReader()
	if mr == nil {
		return nil, fmt.Errorf("not multipart")
	}
	var types []string
	var status, orig []byte
	origType := ""
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("part %d: %v", len(types)+1, err)
		}
		ct, _, err := mime.ParseMediaType(p.Header.Get("Content-Type"))
		if err != nil {
			return nil, fmt.Errorf("part %d: Content-Type %q: %v", len(types)+1, p.Header.Get("Content-Type"), err)
		}
		body, err := io.ReadAll(p.Body)
		if err != nil {
			return nil, fmt.Errorf("part %d (%s): %v", len(types)+1, ct, err)
		}
		types = append(types, ct)
		switch ct {
		case "message/delivery-status":
			status = body
		case "message/rfc822", "text/rfc822-headers":
			origType, orig = ct, body
		}
	}
	if len(types) != 3 || types[0] != "text/plain" || types[1] != "message/delivery-status" || origType == "" {
		return nil, fmt.Errorf("parts %v", types)
	}
	// The delivery-status part: one block of fields for the message, then
	// one per recipient, separated by empty lines.
	br := bufio.NewReader(strings.NewReader(strings.TrimLeft(string(status), "\r\n") + "\r\n\r\n"))
	var blocks []textproto.Header
	for {
		for {
			b, err := br.Peek(1)
			if err != nil || (b[0] != '\r' && b[0] != '\n') {
				break
			}
			br.ReadByte()
		}
		if _, err := br.Peek(1); err != nil {
			break
		}
		h, err := textproto.ReadHeader(br)
		if err != nil {
			return nil, fmt.Errorf("delivery-status: %v", err)
		}
		blocks = append(blocks, h)
	}
	if len(blocks) < 2 || blocks[0].Get("Reporting-MTA") == "" {
		return nil, fmt.Errorf("delivery-status:\n%s", status)
	}
	var out []faultDSN
	for _, h := range blocks[1:] {
		if h.Get("Final-Recipient") == "" || h.Get("Action") == "" || h.Get("Status") == "" {
			return nil, fmt.Errorf("delivery-status block %v", h.Map())
		}
		out = append(out, faultDSN{fields: h, origType: origType, orig: string(orig), raw: raw})
	}
	return out, nil
}

// faultShortConn clamps every deadline the SMTP client sets to max from now,
// as if its timeouts were that short; "no deadline" stays none.
type faultShortConn struct {
	net.Conn
	max time.Duration
}

func (c faultShortConn) clamp(t time.Time) time.Time {
	if lim := time.Now().Add(c.max); !t.IsZero() && t.After(lim) {
		return lim
	}
	return t
}
func (c faultShortConn) SetDeadline(t time.Time) error     { return c.Conn.SetDeadline(c.clamp(t)) }
func (c faultShortConn) SetReadDeadline(t time.Time) error { return c.Conn.SetReadDeadline(c.clamp(t)) }
func (c faultShortConn) SetWriteDeadline(t time.Time) error {
	return c.Conn.SetWriteDeadline(c.clamp(t))
}

// The SMTP client's own timeouts, against hosts that never greet, stop
// reading in DATA, or never answer the final dot: each attempt ends with a
// temporary failure naming the host. The daemon has no setting for these
// timeouts (5 and 10 minutes), so the transport is driven directly, with
// every deadline it sets shortened to a second.
func TestFaultRemoteTimeouts(t *testing.T) {
	t.Parallel()
	modes := map[string]string{"127.0.0.44": fmSSH, "127.0.0.45": fmSilent, "127.0.0.46": fmHangData, "127.0.0.47": fmHangDot}
	port, _ := startFaultMXes(t, modes)
	client := directClient(port)
	client.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		var dl net.Dialer
		c, err := dl.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		// A small send buffer, so that a server that stops reading
		// blocks the writer soon, whatever the kernel's autotuning.
		c.(*net.TCPConn).SetWriteBuffer(32 << 10)
		return faultShortConn{c, time.Second}, nil
	}
	small := "Subject: small\r\n\r\nbody\r\n"
	// Larger than what the socket buffers hold while nobody reads.
	big := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("x", 78)+"\r\n", 2<<20/80)
	cases := []struct {
		name, ip, body, want string
	}{
		{"never greets", "127.0.0.45", small, "127.0.0.45"},
		{"an SSH banner", "127.0.0.44", small, "127.0.0.44"},
		{"hangs after 354", "127.0.0.46", small, "127.0.0.46"},
		{"stops reading in DATA", "127.0.0.46", big, "127.0.0.46"},
		{"never answers the dot", "127.0.0.47", small, "127.0.0.47"},
	}
	type outcome struct {
		res  []smtp.Result
		took time.Duration
	}
	done := make([]chan outcome, len(cases))
	for i, c := range cases {
		done[i] = make(chan outcome, 1)
		go func() {
			t0 := time.Now()
			res := client.Deliver(context.Background(), &smtp.Request{
				Domain: "fault.example", Host: c.ip, NoMX: true, Sender: "root@test.example",
				Rcpts: []string{"user@fault.example"}, Size: int64(len(c.body)),
				Body: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(c.body)), nil },
			})
			done[i] <- outcome{res, time.Since(t0)}
		}()
	}
	for i, c := range cases {
		select {
		case o := <-done[i]:
			if len(o.res) != 1 || o.res[0].Err == nil || !mailerr.IsTemporary(o.res[0].Err) || !strings.Contains(o.res[0].Err.Error(), c.want) {
				t.Errorf("%s: %+v", c.name, o.res)
			}
			t.Logf("%s: %v after %v", c.name, o.res[0].Err, o.took.Round(time.Millisecond))
		case <-time.After(20 * time.Second):
			t.Errorf("%s: the delivery attempt does not end", c.name)
		}
	}
}

// directClient is an SMTP transport driven by the test itself: every host
// is its own IP address, on port.
func directClient(port int) *smtp.Client {
	return &smtp.Client{
		Hostname: "test.example",
		Port:     port,
		Family:   "inet",
		IP: func(ctx context.Context, host, family string) ([]netip.Addr, error) {
			ip, err := netip.ParseAddr(host)
			return []netip.Addr{ip}, err
		},
		Self: func(string) bool { return false },
	}
}

// A stop (the runner's context ends) cuts a session that hangs at once;
// without it the daemon's stop would wait for the SMTP timeouts.
func TestFaultRemoteStopCutsHangingSession(t *testing.T) {
	port, _ := startFaultMXes(t, map[string]string{"127.0.0.43": fmHangDot})
	client := directClient(port)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	res := client.Deliver(ctx, &smtp.Request{
		Domain: "fault.example", Host: "127.0.0.43", NoMX: true, Sender: "root@test.example",
		Rcpts: []string{"user@fault.example"},
		Body:  func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("Subject: x\r\n\r\nx\r\n")), nil },
	})
	if took := time.Since(t0); took > 5*time.Second {
		t.Errorf("Deliver returned %v after its context ended", took-300*time.Millisecond)
	}
	if len(res) != 1 || res[0].Err == nil || !mailerr.IsTemporary(res[0].Err) {
		t.Errorf("%+v", res)
	}
}
