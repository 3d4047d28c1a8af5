package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// smtpEnv is an env with a running daemon, local domain test.example,
// virtual domain virt.example and relay_from 127.0.0.1/32.
func smtpEnv(t *testing.T, extra string) (*env, *daemon) {
	e := newEnv(t)
	os.WriteFile(e.path("etc/local-host-names"), []byte("test.example\nvirt.example\nother.example\n"), 0o644)
	os.WriteFile(e.path("etc/aliases"), []byte("postmaster: root\nsales: root\nlist: root, alice@example.net\n"), 0o644)
	os.WriteFile(e.path("etc/virtusertable"), []byte(`info@virt.example        root
joe@virt.example         joe.remote@example.net
bob+*@virt.example       root
gone@virt.example        error:nouser 550 No such user here
blocked@virt.example     error:5.7.0:550 Address invalid
@other.example           %1@example.net
`), 0o644)
	cfg := "relay_from = [\"127.0.0.1/32\"]\n" + extra
	if !strings.Contains(extra, "[limits]") {
		cfg += "\n[limits]\ngreet_pause = \"100ms\"\n"
	}
	// relay_from is already in the base config through the default; the
	// base file has none, so appending it here is fine.
	return e, startDaemon(t, e, cfg)
}

// TestLocalAndRelayPolicy: a foreign client may send only to local
// recipients; localhost may relay anywhere.
func TestLocalAndRelayPolicy(t *testing.T) {
	e, d := smtpEnv(t, "")
	mta := d.addrs["MTA"]
	cases := []struct {
		rcpt string
		code int
		text string
	}{
		{"root@test.example", 250, ""},
		{"ROOT@Test.Example", 250, ""},
		{"postmaster@test.example", 250, ""},
		{"sales+news@test.example", 250, ""},
		{"nosuchuser@test.example", 550, "5.1.1 <nosuchuser@test.example>... User unknown"},
		{"info@virt.example", 250, ""},
		{"joe@virt.example", 250, ""},
		{"bob+anything@virt.example", 250, ""},
		{"bob+@virt.example", 250, ""},
		{"bob@virt.example", 550, "User unknown"},
		{"gone@virt.example", 550, "No such user here"},
		{"blocked@virt.example", 550, "5.7.0"},
		{"anyone@other.example", 250, ""},
		{"someone@example.net", 550, "5.7.1 <someone@example.net>... Relaying denied. Proper authentication required."},
	}
	cl := greet(t, foreignIP, mta)
	cl.must("MAIL FROM:<sender@example.org>", 250)
	for _, tc := range cases {
		code, text := cl.cmd("RCPT TO:<" + tc.rcpt + ">")
		if code != tc.code || !strings.Contains(text, tc.text) {
			t.Errorf("RCPT %s: %d %q, want %d %q", tc.rcpt, code, text, tc.code, tc.text)
		}
	}
	// Localhost relays anywhere.
	lc := greet(t, localIP, mta)
	lc.must("MAIL FROM:<www-data@test.example>", 250)
	lc.must("RCPT TO:<someone@example.net>", 250)
	lc.must("RCPT TO:<nosuchuser@test.example>", 550)
	lc.must("DATA", 354)
	lc.send("Subject: relayed\r\n\r\nhello\r\n.\r\n")
	text := lc.expect(250)
	id := strings.Fields(text)[1]
	qf, err := os.ReadFile(e.path("spool/mqueue/qf" + id))
	if err != nil {
		t.Fatalf("250 %q but no qf: %v", text, err)
	}
	if !strings.Contains(string(qf), " someone@example.net ") {
		t.Fatalf("qf:\n%s", qf)
	}
	df, _ := os.ReadFile(e.path("spool/mqueue/df" + id))
	if !strings.HasPrefix(string(df), "Received: from client.example ([127.0.0.1])\r\n\tby test.example (gosendmail ") ||
		!strings.Contains(string(df), " with ESMTP id "+id+"\r\n\tfor <someone@example.net>;\r\n\t") {
		t.Fatalf("Received header:\n%s", df)
	}
}

// The relay-hack battery: every vector from a foreign client is refused at
// RCPT. (nmap's smtp-open-relay set and more.)
func TestOpenRelayBattery(t *testing.T) {
	_, d := smtpEnv(t, "")
	mta := d.addrs["MTA"]
	vectors := []string{
		"<victim@example.net>",
		"<victim%example.net@test.example>",
		"<victim%example.net@[127.0.0.1]>",
		"<victim!example.net@test.example>",
		"<example.net!victim@test.example>",
		"<\"victim@example.net\"@test.example>",
		"<\"victim%example.net\"@test.example>",
		"<@test.example:victim@example.net>",
		"<@test.example,@other.example:victim@example.net>",
		"<victim@example.net.>",
		"<VICTIM@EXAMPLE.NET>",
		"<victim@example.net@test.example>",
		"<victim\\@example.net@test.example>",
		"<victim@[192.0.2.1]>",
		"<victim@[127.0.0.1]>",
		"<victim@[127.0.0.2]>",
		"<victim@[IPv6:::1]>",
		"<victim@example.net%test.example>",
		"<victim@test.example@example.net>",
		"<victim%example.net%test.example@test.example>",
		"<test.example!example.net!victim@test.example>",
		"<victim@example.net (test.example)>",
		"victim@example.net",
		"<victim@localhost.example.net>",
		"<victim@test.example.example.net>",
		"<\"victim@example.net\">",
		"<victim@example.net\x00@test.example>",
		"<postmaster@example.net>",
	}
	refused := 0
	for _, v := range vectors {
		cl := greet(t, foreignIP, mta)
		cl.must("MAIL FROM:<spammer@example.org>", 250)
		code, text := cl.cmd("RCPT TO:" + v)
		if code < 500 || code > 599 {
			t.Errorf("RCPT TO:%q accepted from a foreign client: %d %s", v, code, text)
			continue
		}
		refused++
		cl.cmd("QUIT")
	}
	if refused < 25 {
		t.Fatalf("only %d vectors refused", refused)
	}
	// Failed AUTH and STARTTLS without AUTH grant nothing either.
	cl := greet(t, foreignIP, mta)
	if code, _ := cl.cmd("AUTH PLAIN AHVzZXIAcGFzcw=="); code < 500 {
		t.Errorf("AUTH without TLS: %d", code)
	}
	cl.must("MAIL FROM:<spammer@example.org>", 250)
	cl.must("RCPT TO:<victim@example.net>", 550)
}

// VRFY discloses nothing, EXPN and ETRN are refused, and the refusals are
// logged as sendmail does.
func TestVrfyExpnEtrn(t *testing.T) {
	_, d := smtpEnv(t, "")
	cl := greet(t, foreignIP, d.addrs["MTA"])
	if code, text := cl.cmd("VRFY root"); code != 252 || strings.Contains(text, "root") {
		t.Errorf("VRFY: %d %q", code, text)
	}
	if code, _ := cl.cmd("EXPN postmaster"); code != 502 {
		t.Errorf("EXPN: %d", code)
	}
	if code, _ := cl.cmd("ETRN test.example"); code < 500 {
		t.Errorf("ETRN: %d", code)
	}
	cl.cmd("QUIT")
	waitLog(t, d, "[127.0.0.2]: vrfy root [rejected]")
	waitLog(t, d, "[127.0.0.2]: expn postmaster [rejected]")
}

func waitLog(t *testing.T, d *daemon, want string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if strings.Contains(d.log(), want) {
			return
		}
	}
	t.Fatalf("log lacks %q:\n%s", want, d.log())
}

// SMTP smuggling: only CRLF.CRLF ends DATA; a bare CR or LF from a
// foreign client refuses the message; nothing is queued.
func TestSmuggling(t *testing.T) {
	e, d := smtpEnv(t, "")
	mta := d.addrs["MTA"]
	endings := []string{"\n.\n", "\r.\r", "\r.\n", "\n.\r", "\n.\r\n", "\r\n.\n", "\r.\r\n", "\r\n.\r", "\r\n\x00.\r\n"}
	for _, end := range endings {
		cl := greet(t, foreignIP, mta)
		cl.must("MAIL FROM:<a@example.org>", 250)
		cl.must("RCPT TO:<root@test.example>", 250)
		cl.must("DATA", 354)
		// The would-be smuggled message follows the fake ending.
		cl.send("Subject: first\r\n\r\nbody" + end + "MAIL FROM:<evil@example.org>\r\nRCPT TO:<root@test.example>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\n")
		code, text := cl.reply()
		if code == 250 {
			t.Errorf("ending %q: message accepted: %s", end, text)
		}
		if code != 554 && code != 421 && code != 0 {
			t.Errorf("ending %q: reply %d %s, want 554 or 421", end, code, text)
		}
	}
	if n := e.qfCount(); n != 0 {
		t.Fatalf("%d messages queued", n)
	}
	// From localhost, bare LF is tolerated (stored as sent; the client side
	// normalizes at transmission), and only CRLF.CRLF ends the data.
	cl := greet(t, localIP, mta)
	cl.must("MAIL FROM:<a@example.org>", 250)
	cl.must("RCPT TO:<root@test.example>", 250)
	cl.must("DATA", 354)
	cl.send("Subject: local\r\n\r\nline\n.\nstill data\r\n.\r\n")
	cl.expect(250)
	// Queued, or already delivered to root's mailbox: one message, whole.
	waitFor(t, "the local message", func() bool {
		return e.qfCount() == 1 || strings.Contains(readFile(e.path("spool/mail/root")), "still data")
	})
}

// An unauthenticated client that pipelines past the end of DATA, or talks
// before the banner, is refused.
func TestPipeliningAndPregreet(t *testing.T) {
	e, d := smtpEnv(t, "")
	mta := d.addrs["MTA"]
	cl := greet(t, foreignIP, mta)
	cl.must("MAIL FROM:<a@example.org>", 250)
	cl.must("RCPT TO:<root@test.example>", 250)
	cl.must("DATA", 354)
	cl.send("Subject: x\r\n\r\nbody\r\n.\r\nMAIL FROM:<b@example.org>\r\nRCPT TO:<root@test.example>\r\n")
	if code, text := cl.reply(); code != 554 {
		t.Errorf("pipelining past DATA: %d %s", code, text)
	}
	if e.qfCount() != 0 {
		t.Fatal("message queued")
	}
	// Talking first.
	pc := dialFrom(t, foreignIP, mta)
	pc.send("EHLO early.example\r\n")
	if code, text := pc.reply(); code != 554 {
		t.Errorf("pre-greeting: %d %s", code, text)
	}
	waitLog(t, d, "rejecting commands from [127.0.0.2] due to pre-greeting traffic after 0 seconds")
	// PIPELINING within the rules is fine: MAIL and RCPT in one write.
	ok := greet(t, foreignIP, mta)
	ok.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<root@test.example>\r\nDATA\r\n")
	ok.expect(250)
	ok.expect(250)
	ok.expect(354)
	ok.send("Subject: ok\r\n\r\nfine\r\n.\r\n")
	ok.expect(250)
}

// NUL in a command is 500; the session ends after max_bad_commands
// refusals with 421.
func TestBadCommands(t *testing.T) {
	_, d := smtpEnv(t, "[limits]\ngreet_pause = \"0s\"\nmax_bad_commands = 3\n")
	cl := greet(t, foreignIP, d.addrs["MTA"])
	if code, _ := cl.cmd("MAIL FROM:<a\x00b@example.org>"); code != 500 && code != 501 {
		t.Errorf("NUL in MAIL: %d", code)
	}
	cl.must("MAIL FROM:<a@example.org>", 250)
	cl.must("MAIL FROM:<b@example.org>", 503) // sender already specified
	cl.send("BDAT 3 LAST\r\nabc")
	if code, text := cl.reply(); code != 502 {
		t.Errorf("BDAT: %d %s", code, text)
	}
	cl.must("RCPT TO:<x@example.net>", 550)
	cl.must("RCPT TO:<y@example.net>", 550)
	if code, text := cl.cmd("RCPT TO:<z@example.net>"); code != 421 {
		t.Errorf("third refusal: %d %s", code, text)
	}
	if !cl.closed() {
		t.Error("connection still open after 421")
	}
	waitLog(t, d, "[127.0.0.2]: possible SMTP attack: command=rcpt, count=3")
}

// SIZE is enforced while reading: 552 5.3.4, nothing queued.
func TestSizeLimit(t *testing.T) {
	e, d := smtpEnv(t, "max_message_size = 2000\n")
	cl := greet(t, localIP, d.addrs["MTA"])
	if code, _ := cl.cmd("MAIL FROM:<a@example.org> SIZE=5000"); code != 552 {
		t.Errorf("MAIL SIZE=5000: %d", code)
	}
	cl.must("MAIL FROM:<a@example.org>", 250)
	cl.must("RCPT TO:<root@test.example>", 250)
	cl.must("DATA", 354)
	cl.send("Subject: big\r\n\r\n" + strings.Repeat("0123456789012345678901234567890123456789\r\n", 100) + ".\r\n")
	if code, text := cl.reply(); code != 552 || !strings.HasPrefix(text, "5.3.4") {
		t.Errorf("oversized DATA: %d %s", code, text)
	}
	if e.qfCount() != 0 {
		t.Fatal("oversized message queued")
	}
}

// Connections over the per-IP limit get 421; relay_from is exempt.
func TestConnectionLimits(t *testing.T) {
	_, d := smtpEnv(t, "[limits]\ngreet_pause = \"0s\"\nmax_connections_per_ip = 2\n")
	mta := d.addrs["MTA"]
	a := dialFrom(t, foreignIP, mta)
	a.expect(220)
	b := dialFrom(t, foreignIP, mta)
	b.expect(220)
	c := dialFrom(t, foreignIP, mta)
	if code, text := c.reply(); code != 421 {
		t.Errorf("third connection: %d %s", code, text)
	}
	for i := 0; i < 4; i++ {
		l := dialFrom(t, localIP, mta)
		l.expect(220)
	}
	waitLog(t, d, "ruleset=check_relay, arg1=[127.0.0.2], relay=[127.0.0.2], reject=421 4.3.2 Too many open connections.")
}

// SIGTERM lets a transaction in DATA finish (250, and the message is in
// the queue), and leaves no partial file.
func TestShutdownFinishesTransactions(t *testing.T) {
	e, d := smtpEnv(t, "")
	cl := greet(t, localIP, d.addrs["MTA"])
	idle := greet(t, localIP, d.addrs["MTA"])
	cl.must("MAIL FROM:<a@example.org>", 250)
	cl.must("RCPT TO:<root@test.example>", 250)
	cl.must("DATA", 354)
	cl.send("Subject: in flight\r\n\r\nfirst half\r\n")
	time.Sleep(200 * time.Millisecond)
	d.cmd.Process.Signal(os.Interrupt)
	time.Sleep(300 * time.Millisecond)
	cl.send("second half\r\n.\r\n")
	if code, text := cl.reply(); code != 250 {
		t.Fatalf("in-flight message: %d %s", code, text)
	}
	if !idle.closed() {
		t.Error("idle session still open")
	}
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		t.Fatal("daemon did not stop")
	}
	// The message is in the queue, or already delivered by the runner.
	if e.qfCount() != 1 && !strings.Contains(readFile(e.path("spool/mail/root")), "second half") {
		t.Fatalf("the message is neither queued nor delivered")
	}
	left, _ := filepath.Glob(e.path("spool/mqueue/tf*"))
	dt, _ := filepath.Glob(e.path("spool/mqueue/dt*"))
	left = append(left, dt...)
	if len(left) != 0 {
		t.Fatalf("partial files: %v", left)
	}
}

// The log the daemon wrote matches fail2ban's stock sendmail filters for
// each rejection kind.
func TestFail2banFilters(t *testing.T) {
	if _, err := exec.LookPath("fail2ban-regex"); err != nil {
		t.Skip("fail2ban-regex not installed (Debian package fail2ban; .ci/run installs it)")
	}
	e, d := smtpEnv(t, "[limits]\ngreet_pause = \"300ms\"\nmax_connections_per_ip = 1\n")
	mta := d.addrs["MTA"]
	cl := greet(t, foreignIP, mta)
	cl.must("MAIL FROM:<a@example.org>", 250)
	cl.must("RCPT TO:<victim@example.net>", 550)  // relaying denied
	cl.must("RCPT TO:<nosuch@test.example>", 550) // user unknown
	cl.must("RCPT TO:<gone@virt.example>", 550)   // virtusertable error
	cl.cmd("VRFY root")
	over := dialFrom(t, foreignIP, mta) // over the per-IP limit
	over.reply()
	cl.cmd("QUIT")
	cl.closed() // the one connection this client may have is free again
	early := dialFrom(t, foreignIP, mta)
	early.send("EHLO x\r\n")
	early.reply()
	if !early.closed() { // its slot is free before it is closed
		t.Fatal("the server kept a client that talked before the greeting")
	}
	idle := greet(t, foreignIP, mta) // no MAIL
	idle.cmd("QUIT")
	waitLog(t, d, "pre-greeting traffic")
	d.stop()

	cases := []struct{ filter, want string }{
		{"sendmail-reject", "Relaying denied"},
		{"sendmail-reject", "User unknown"},
		{"sendmail-reject", "]: <gone@virt.example>... No such user here"},
		{"sendmail-reject", "vrfy root [rejected]"},
		{"sendmail-reject", "Too many open connections."},
		{"sendmail-reject", "pre-greeting traffic"},
	}
	logData := d.log()
	for _, tc := range cases {
		var line string
		for _, l := range strings.Split(logData, "\n") {
			if strings.Contains(l, tc.want) {
				line = l
				break
			}
		}
		if line == "" {
			t.Errorf("no log line with %q", tc.want)
			continue
		}
		f := e.path("one.log")
		os.WriteFile(f, []byte(line+"\n"), 0o644)
		out, err := exec.Command("fail2ban-regex", f, "/etc/fail2ban/filter.d/"+tc.filter+".conf").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Failregex: 1 total") {
			t.Errorf("%s does not match %q:\n%s", tc.filter, line, out)
		}
	}
	// The aggressive mode also counts clients that never sent MAIL.
	var idleLine string
	for _, l := range strings.Split(logData, "\n") {
		if strings.Contains(l, "did not issue MAIL") {
			idleLine = l
		}
	}
	f := e.path("idle.log")
	os.WriteFile(f, []byte(idleLine+"\n"), 0o644)
	out, _ := exec.Command("fail2ban-regex", f, "/etc/fail2ban/filter.d/sendmail-reject.conf[mode=aggressive]").CombinedOutput()
	if !strings.Contains(string(out), "Failregex: 1 total") {
		t.Errorf("did-not-issue line %q not matched:\n%s", idleLine, out)
	}
	_ = fmt.Sprint
}

// The access map: Connect: REJECT, From: REJECT and ERROR:, To: RELAY and
// REJECT, Connect: RELAY; and map files reload by themselves.
func TestAccessMap(t *testing.T) {
	e := newEnv(t)
	os.WriteFile(e.path("etc/access"), []byte(`# test access map
From:spammer@example.org	REJECT
From:bad.example	ERROR:5.7.1:550 We do not take mail from you
To:partner.example	RELAY
To:blocked@example.net	REJECT
`), 0o644)
	d := startDaemon(t, e, "relay_from = [\"127.0.0.1/32\"]\n[limits]\ngreet_pause = \"0s\"\n")
	mta := d.addrs["MTA"]
	cl := greet(t, foreignIP, mta)
	if code, text := cl.cmd("MAIL FROM:<spammer@example.org>"); code != 550 || !strings.Contains(text, "Access denied") {
		t.Errorf("From REJECT: %d %s", code, text)
	}
	if code, text := cl.cmd("MAIL FROM:<x@mail.bad.example>"); code != 550 || !strings.Contains(text, "We do not take mail from you") {
		t.Errorf("From ERROR: %d %s", code, text)
	}
	cl.must("MAIL FROM:<friend@example.org>", 250)
	cl.must("RCPT TO:<someone@partner.example>", 250)
	cl.must("RCPT TO:<someone@sub.partner.example>", 250)
	cl.must("RCPT TO:<other@example.net>", 550)
	lc := greet(t, localIP, mta)
	lc.must("MAIL FROM:<a@test.example>", 250)
	if code, _ := lc.cmd("RCPT TO:<blocked@example.net>"); code != 550 {
		t.Errorf("To REJECT from localhost: %d", code)
	}
	// Edit the map: Connect: 127.0.0.2 REJECT takes effect without a restart.
	time.Sleep(1100 * time.Millisecond) // a new mtime
	os.WriteFile(e.path("etc/access"), []byte("Connect:127.0.0.2\tREJECT\nConnect:127.0.0.3\tRELAY\n"), 0o644)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := dialFrom(t, foreignIP, mta)
		c.expect(220)
		code, _ := c.cmd("EHLO client.example")
		if code == 550 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Connect: REJECT not in force after 10s (EHLO %d)", code)
		}
		time.Sleep(200 * time.Millisecond)
	}
	rc := greet(t, "127.0.0.3", mta)
	rc.must("MAIL FROM:<a@example.org>", 250)
	rc.must("RCPT TO:<anyone@example.net>", 250)
	waitLog(t, d, "ruleset=check_relay, arg1=[127.0.0.2], relay=[127.0.0.2], reject=550 5.7.1 Access denied")
}

// Mail from a foreign client gets one Authentication-Results field of ours
// (SPF of MAIL FROM and HELO, DKIM, DMARC); a forged one claiming our
// authserv-id is removed; the message is accepted whatever the results.
func TestAuthenticationResults(t *testing.T) {
	e, d := smtpEnv(t, "")
	cl := greet(t, foreignIP, d.addrs["MTA"])
	cl.must("MAIL FROM:<someone@example.org>", 250)
	cl.must("RCPT TO:<root@test.example>", 250)
	cl.must("DATA", 354)
	cl.send("Authentication-Results: test.example; dkim=pass header.d=bank.example\r\nAuthentication-Results: other.example; spf=pass\r\nFrom: someone@example.org\r\nSubject: checked\r\n\r\nbody\r\n.\r\n")
	cl.expect(250)
	var msg string
	waitFor(t, "the message", func() bool {
		msg = readFile(e.path("spool/mail/root"))
		if msg == "" {
			if m, _ := filepath.Glob(e.path("spool/mqueue/df*")); len(m) == 1 {
				msg = readFile(m[0])
			}
		}
		return strings.Contains(msg, "Subject: checked")
	})
	if strings.Contains(msg, "bank.example") {
		t.Errorf("forged Authentication-Results kept:\n%s", msg)
	}
	for _, want := range []string{"Authentication-Results: test.example;", "smtp.mailfrom=someone@example.org", "smtp.helo=client.example", "dmarc=", "Authentication-Results: other.example; spf=pass"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
}
