package test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

// Message lines are limited to 1 MiB (pkg/smtpd maxLine): a 1 MB header
// line is accepted, queued as sent and relayed folded into lines of at
// most 998 octets (CRLF SP, as Postfix does); a longer line refuses the
// message with a permanent 552 5.6.0, nothing is queued, go-smtp closes
// the connection, and the daemon goes on serving.
func TestFaultHostileLongLines(t *testing.T) {
	mx := &sinkMX{}
	e, d, _ := deliveryEnv(t, mx)
	long := "X-Long: " + strings.Repeat("0123456789abcdef", 1000000/16)
	cl := greet(t, localIP, d.addrs["MTA"])
	cl.must("MAIL FROM:<root@test.example>", 250)
	cl.must("RCPT TO:<long@dest.example>", 250)
	cl.must("DATA", 354)
	// Written from another goroutine (the server answers before it has
	// read it all); a write error shows as a wrong reply below.
	go cl.c.Write([]byte(long + "\r\nSubject: one long line\r\n\r\nbody\r\n.\r\n"))
	cl.expect(250)
	waitFor(t, "the long line relayed", func() bool { return mx.count() == 1 })
	mx.mu.Lock()
	data := mx.msgs[0].data
	mx.mu.Unlock()
	for _, l := range strings.Split(data, "\r\n") {
		if len(l) > 998 {
			t.Fatalf("a line of %d octets went out", len(l))
		}
	}
	if !strings.Contains(strings.ReplaceAll(data, "\r\n ", ""), "\r\n"+long+"\r\nSubject: one long line\r\n") {
		t.Errorf("the long line did not arrive whole once unfolded")
	}

	// Over the limit, from a relay client and from a foreign one.
	for _, c := range []struct{ ip, rcpt string }{{localIP, "toolong@dest.example"}, {foreignIP, "root@test.example"}} {
		cl := greet(t, c.ip, d.addrs["MTA"])
		cl.must("MAIL FROM:<root@test.example>", 250)
		cl.must("RCPT TO:<"+c.rcpt+">", 250)
		cl.must("DATA", 354)
		go cl.c.Write([]byte("X-Long: " + strings.Repeat("x", 2<<20) + "\r\nSubject: too long\r\n\r\nbody\r\n.\r\n"))
		if code, text := cl.reply(); code != 552 || !strings.HasPrefix(text, "5.6.0 ") {
			t.Errorf("from %s: a 2 MiB line: %d %s", c.ip, code, text)
		}
		if !cl.closed() {
			t.Errorf("from %s: the connection stays open after the refusal", c.ip)
		}
	}
	if n := e.qfCount(); n != 0 {
		t.Errorf("%d messages queued", n)
	}
	if strings.Contains(d.log(), "cannot queue") {
		t.Errorf("a long line is logged as a queue failure:\n%s", d.log())
	}
	// Still serving.
	cl = greet(t, localIP, d.addrs["MTA"])
	cl.must("MAIL FROM:<root@test.example>", 250)
	cl.must("RCPT TO:<after@dest.example>", 250)
	cl.must("DATA", 354)
	cl.send("Subject: after\r\n\r\nbody\r\n.\r\n")
	cl.expect(250)
	waitFor(t, "the next message relayed", func() bool { return mx.count() == 2 })
}

// 10,000 recipients in one transaction: the first max_recipients (1000 by
// default) get 250, every one after 452 4.5.3, the session stays usable,
// and the 1000 accepted recipients get the message in one transaction.
func TestFaultHostileRecipients(t *testing.T) {
	mx := &sinkMX{}
	e, d, _ := deliveryEnv(t, mx)
	cl := greet(t, localIP, d.addrs["MTA"])
	cl.must("MAIL FROM:<root@test.example>", 250)
	const n, max = 10000, 1000
	// Pipelined (PIPELINING is offered): written while the replies are read.
	go func() {
		var b strings.Builder
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "RCPT TO:<r%d@dest.example>\r\n", i)
		}
		cl.c.Write([]byte(b.String()))
	}()
	for i := 0; i < n; i++ {
		code, text := cl.reply()
		want := 250
		if i >= max {
			want = 452
		}
		if code != want || want == 452 && !strings.HasPrefix(text, "4.5.3 ") {
			t.Fatalf("recipient %d: %d %s, want %d", i+1, code, text, want)
		}
	}
	cl.must("DATA", 354)
	cl.send("Subject: many\r\n\r\nbody\r\n.\r\n")
	cl.expect(250)
	cl.must("QUIT", 221)
	waitFor(t, "the delivery", func() bool { return e.qfCount() == 0 && mx.count() >= 1 })
	mx.mu.Lock()
	defer mx.mu.Unlock()
	if len(mx.msgs) != 1 {
		t.Fatalf("%d transactions at the MX", len(mx.msgs))
	}
	rcpts := mx.msgs[0].rcpts
	if len(rcpts) != max {
		t.Fatalf("%d recipients delivered, want %d", len(rcpts), max)
	}
	for i, r := range rcpts {
		if r != "r"+strconv.Itoa(i)+"@dest.example" {
			t.Fatalf("recipient %d is %s", i, r)
		}
	}
}

// NUL in a command is refused (MAIL is in TestBadCommands); NUL in the
// message from a foreign client refuses the message (554 5.5.2, as bare CR
// and LF are) and nothing is queued; a NUL in the EHLO name never reaches
// a header of a stored message.
func TestFaultHostileNUL(t *testing.T) {
	e, d := smtpEnv(t, "[limits]\ngreet_pause = \"0s\"\n")
	mta := d.addrs["MTA"]
	for _, cmd := range []string{"RCPT TO:<root@test.example\x00>", "RCPT TO:<root\x00@test.example>", "RC\x00PT TO:<root@test.example>", "\x00", "NOOP\x00", "RSET\x00"} {
		// A session each: go-smtp ends one after three syntax errors.
		cl := greet(t, foreignIP, mta)
		cl.must("MAIL FROM:<a@example.org>", 250)
		if code, text := cl.cmd(cmd); code != 500 && code != 501 {
			t.Errorf("%q: %d %s", cmd, code, text)
		}
		cl.must("RCPT TO:<root@test.example>", 250)
		cl.must("QUIT", 221)
	}
	cl := greet(t, foreignIP, mta)
	cl.must("MAIL FROM:<a@example.org>", 250)
	cl.must("RCPT TO:<root@test.example>", 250)
	cl.must("DATA", 354)
	cl.send("Subject: nul\r\n\r\nbo\x00dy\r\nmore\r\n.\r\n")
	if code, text := cl.reply(); code != 554 || !strings.HasPrefix(text, "5.5.2 ") {
		t.Errorf("NUL in the data: %d %s", code, text)
	}
	// In the header too.
	cl = greet(t, foreignIP, mta)
	cl.must("MAIL FROM:<a@example.org>", 250)
	cl.must("RCPT TO:<root@test.example>", 250)
	cl.must("DATA", 354)
	cl.send("Subject: n\x00ul\r\n\r\nbody\r\n.\r\n")
	if code, text := cl.reply(); code != 554 {
		t.Errorf("NUL in the header: %d %s", code, text)
	}
	if n := e.qfCount(); n != 0 {
		t.Fatalf("%d messages queued", n)
	}

	// The EHLO name: refused (501), as HELO with a control byte is.
	cl = dialFrom(t, foreignIP, mta)
	cl.expect(220)
	code, text := cl.cmd("EHLO evil\x00.example")
	if code != 501 {
		t.Errorf("EHLO with NUL: %d %s, want 501", code, text)
	}
	if code == 250 {
		cl.must("MAIL FROM:<a@example.org>", 250)
		cl.must("RCPT TO:<root@test.example>", 250)
		cl.must("DATA", 354)
		cl.send("Subject: helo nul\r\n\r\nbody\r\n.\r\n")
		cl.expect(250)
		mbox := e.path("spool/mail/root")
		waitFor(t, "the message", func() bool { return strings.Contains(readFile(mbox), "helo nul") })
		if strings.Contains(readFile(mbox), "\x00") {
			t.Errorf("a NUL reached the mailbox:\n%q", readFile(mbox))
		}
	} else if code < 500 {
		t.Errorf("EHLO with NUL: %d %s", code, text)
	}
	if strings.Contains(d.log(), "\x00") {
		t.Errorf("a NUL reached the log")
	}
}

// Messages with malformed MIME that the remote refuses (5xx) bounce: the
// report is a well-formed multipart/report however broken the original,
// returns the original as it was queued, and lands in the sender's local
// mailbox.
func TestFaultHostileMIMEBounce(t *testing.T) {
	originals := map[string]string{
		"boundary": "Subject: broken boundaries\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"declared\"\r\n\r\n" +
			"preamble\r\n--other\r\nContent-Type: text/plain\r\n\r\nnot a part\r\n--declared\r\nContent-Type: multipart/alternative; boundary=declared\r\n\r\n" +
			"--declared\r\n--declared--\r\n--declared\r\nno header, no end\r\n",
		"encoding": "Subject: =?utf-8?B?####not base64?= and =?x-unknown?Q?=ZZ?=\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
			"--b\r\nContent-Type: text/plain; charset=x-no-such-charset\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!! this is not base64 @@@@\r\n" +
			"--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nbad =ZZ escape and a soft break =\r\n=\r\n" +
			"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: x-uuencode-ish\r\n\r\nbegin 644 x\r\n--b--\r\n",
		"nocolon": "Subject: a header without colon follows\r\nThis header has no colon\r\nX-After: the no-colon line\r\n\r\nbody\r\n",
		"8bit":    "Subject: \xff\xfe 8-bit \xc3\x28 garbage \x80\r\nX-Raw: \xe9t\xe9\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\xde\xad\xbe\xef\xc0\xc1\xf5\xff\r\nline \x1b[31m with escapes\x7f\r\n",
		"nested":  "Subject: deeply nested\r\nMIME-Version: 1.0\r\n" + faultNested(200),
	}
	fail := map[string]*smtp.SMTPError{}
	for name := range originals {
		fail["bounce-"+name+"@dest.example"] = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Message refused"}
	}
	mx := &sinkMX{fail: fail}
	e, d, _ := deliveryEnv(t, mx)
	cl := greet(t, localIP, d.addrs["MTA"])
	for name, orig := range originals {
		cl.must("MAIL FROM:<root@test.example>", 250)
		cl.must("RCPT TO:<bounce-"+name+"@dest.example>", 250)
		cl.must("DATA", 354)
		cl.send(orig + ".\r\n")
		cl.expect(250)
	}
	var bounces map[string]faultDSN
	waitFor(t, "the bounces", func() bool {
		bounces = faultBounces(t, e)
		return len(bounces) == len(originals)
	})
	waitFor(t, "an empty queue", func() bool { return e.qfCount() == 0 })
	for name, orig := range originals {
		b, ok := bounces["bounce-"+name+"@dest.example"]
		if !ok {
			t.Errorf("%s: no bounce", name)
			continue
		}
		if b.fields.Get("Action") != "failed" || b.fields.Get("Status") != "5.7.1" || !strings.Contains(b.fields.Get("Diagnostic-Code"), "550 5.7.1 Message refused") {
			t.Errorf("%s: fields %v", name, b.fields.Map())
		}
		// The original as queued: our Received field, then the bytes as
		// sent (the mailbox has LF line ends).
		if b.origType != "message/rfc822" || !strings.HasPrefix(b.orig, "Received: ") || !strings.HasSuffix(b.orig, strings.ReplaceAll(orig, "\r\n", "\n")) {
			t.Errorf("%s: the original comes back as %s:\n%q", name, b.origType, b.orig)
		}
	}
	// The reports, and nothing else, are in root's mailbox.
	if n := len(faultMbox(e.path("spool/mail/root"))); n != len(originals) {
		t.Errorf("%d messages in root's mailbox, want %d", n, len(originals))
	}
}

// faultNested is a Content-Type field and body nesting depth
// multipart/mixed parts, none of them closed.
func faultNested(depth int) string {
	var b strings.Builder
	b.WriteString("Content-Type: multipart/mixed; boundary=n0\r\n\r\n")
	for i := 1; i <= depth; i++ {
		fmt.Fprintf(&b, "--n%d\r\nContent-Type: multipart/mixed; boundary=n%d\r\n\r\n", i-1, i)
	}
	b.WriteString("--n" + strconv.Itoa(depth) + "\r\n\r\ninnermost\r\n")
	return b.String()
}
