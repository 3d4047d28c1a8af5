package test

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosendmail/gosendmail/pkg/dkim/dkimpy"

	gm "github.com/emersion/go-milter"

	"github.com/gosendmail/gosendmail/pkg/control"
	"github.com/gosendmail/gosendmail/pkg/dkim"
	"github.com/gosendmail/gosendmail/pkg/milter/miltertest"
	"github.com/gosendmail/gosendmail/pkg/spool"
)

// milterBase is the configuration of the milter tests before their
// [[milter]] tables: 127.0.0.1 relays, remote mail is deferred at once
// (no DNS answers), so queued messages stay where the test can read them.
const milterBase = "relay_from = [\"127.0.0.1/32\"]\n[limits]\ngreet_pause = \"0s\"\n[delivery]\ndns_server = \"127.0.0.1:9\"\nretry_min = \"1s\"\nretry_max = \"1h\"\n"

// milterConf is one [[milter]] table with short timeouts.
func milterConf(name, socket, mode string) string {
	return fmt.Sprintf("[[milter]]\nname = %q\nsocket = %q\non_failure = %q\ntimeout_connect = \"2s\"\ntimeout_send = \"2s\"\ntimeout_read = \"1s\"\ntimeout_eom = \"5s\"\n",
		name, socket, mode)
}

func milterEnv(t *testing.T, milters ...string) (*env, *daemon) {
	t.Helper()
	e := newEnv(t)
	os.WriteFile(e.path("etc/local-host-names"), []byte("test.example\n"), 0o644)
	return e, startDaemon(t, e, milterBase+strings.Join(milters, ""))
}

// milterReconfigure replaces the [[milter]] tables and reloads the daemon.
func milterReconfigure(t *testing.T, e *env, d *daemon, milters ...string) {
	t.Helper()
	before := strings.Count(d.log(), "reloaded ")
	must(t, os.WriteFile(e.cfg, []byte(testConfig(e.root)+milterBase+strings.Join(milters, "")), 0o644))
	d.cmd.Process.Signal(sighup)
	waitFor(t, "the reload", func() bool { return strings.Count(d.log(), "reloaded ") > before })
}

// queueIDOf reads the queue ID from a "250 2.0.0 <ID> Message accepted" reply.
func queueIDOf(t *testing.T, text string) string {
	t.Helper()
	f := strings.Fields(text)
	if len(f) < 2 || !spool.ValidID(f[1]) {
		t.Fatalf("no queue ID in %q", text)
	}
	return f[1]
}

const milterMsg = "From: Alice <alice@example.org>\r\nTo: bob@dest.example\r\nSubject: hello\r\nX-Remove-Me: yes\r\n" +
	"Message-ID: <every@example.org>\r\n\r\nOriginal body\r\n"

// Every action a filter can take, over SMTP: header edits, a new body,
// recipients added and removed, a new sender and a quarantine, all in the
// queue before the 250; mailq shows the hold and mailq release lifts it.
func TestMilterEveryAction(t *testing.T) {
	m := miltertest.New(miltertest.Behaviour{EOM: func(mod *gm.Modifier) (gm.Response, error) {
		for _, err := range []error{
			mod.AddHeader("X-Filtered", "yes"),
			mod.InsertHeader(0, "X-Top", "first"),
			mod.ChangeHeader(1, "Subject", "[checked] hello"),
			mod.ChangeHeader(1, "X-Remove-Me", ""),
			mod.ReplaceBody([]byte("Replaced body\nsecond line\n")),
			mod.AddRecipient("added@dest.example"),
			mod.DeleteRecipient("gone@dest.example"),
			mod.ChangeFrom("<changed@example.org>"),
			mod.Quarantine("suspicious attachment"),
		} {
			if err != nil {
				return nil, err
			}
		}
		return gm.RespAccept, nil
	}})
	e, d := milterEnv(t, milterConf("test", miltertest.Start(t, m), "tempfail"))
	cl := greet(t, localIP, d.addrs["MTA"])
	cl.must("MAIL FROM:<alice@example.org>", 250)
	cl.must("RCPT TO:<bob@dest.example>", 250)
	cl.must("RCPT TO:<gone@dest.example>", 250)
	cl.must("DATA", 354)
	cl.send(milterMsg + ".\r\n")
	code, text := cl.reply()
	if code != 250 {
		t.Fatalf("%d %s\n%s", code, text, d.log())
	}
	id := queueIDOf(t, text)
	cl.cmd("QUIT")

	q := spool.Open(e.path("spool/mqueue"))
	qenv, err := q.Read(id)
	must(t, err)
	var rcpts []string
	for _, r := range qenv.Rcpts {
		rcpts = append(rcpts, r.Addr)
	}
	if qenv.Sender != "changed@example.org" || strings.Join(rcpts, ",") != "bob@dest.example,added@dest.example" || qenv.Hold != "suspicious attachment" {
		t.Errorf("queued envelope: sender %q, rcpts %v, hold %q", qenv.Sender, rcpts, qenv.Hold)
	}
	df := readFile(q.DataPath(id))
	if !strings.HasPrefix(df, "Received: from client.example ([127.0.0.1])") {
		t.Errorf("df does not start with our Received:\n%s", df)
	}
	i := strings.Index(df, "X-Top:")
	want := "X-Top: first\r\nFrom: Alice <alice@example.org>\r\nTo: bob@dest.example\r\nSubject: [checked] hello\r\n" +
		"Message-ID: <every@example.org>\r\nX-Filtered: yes\r\n\r\nReplaced body\r\nsecond line\r\n"
	if i < 0 || df[i:] != want {
		t.Errorf("df:\n%q\nwant after Received:\n%q", df, want)
	}
	// The hold shows in mailq, and mailq release lifts it.
	out, _, _ := e.run(nil, "mailq")
	if !strings.Contains(out, id+"X") || !strings.Contains(out, "(QUARANTINE: suspicious attachment)") || !strings.Contains(out, "changed@example.org") {
		t.Errorf("mailq:\n%s", out)
	}
	if _, stderr, code := e.run(nil, "mailq", "release", id); code != 0 {
		t.Fatalf("mailq release: %d %s", code, stderr)
	}
	out, _, _ = e.run(nil, "mailq")
	if strings.Contains(out, id+"X") || strings.Contains(out, "QUARANTINE") || !strings.Contains(out, id) {
		t.Errorf("after release, mailq:\n%s", out)
	}
	if qenv, err := q.Read(id); err != nil || qenv.Hold != "" {
		t.Errorf("after release: %v %+v", err, qenv)
	}
	for _, l := range []string{
		id + ": Milter add: header: X-Filtered: yes",
		id + ": Milter insert (0): header: X-Top: first",
		id + ": Milter change: header Subject: from hello to [checked] hello",
		id + ": Milter delete: header X-Remove-Me: yes",
		id + ": Milter message: body replaced",
		id + ": milter=test, quarantine=suspicious attachment",
		id + ": Milter chgfrom: <changed@example.org>",
		id + ": Milter add: rcpt: <added@dest.example>",
		id + ": Milter delete: rcpt <gone@dest.example>, naddrs=1",
		id + ": from=<changed@example.org>, size=",
	} {
		waitLog(t, d, l)
	}
	// The filter was given sendmail's macros.
	ss := m.Sessions()
	if len(ss) == 0 {
		t.Fatal("the filter saw nothing")
	}
	mac := ss[0].Macros
	for _, c := range []struct{ stage, name, want string }{
		{"connect", "j", "test.example"},
		{"connect", "{daemon_name}", "MTA"},
		{"connect", "_", "[127.0.0.1]"},
		{"connect", "{client_addr}", "127.0.0.1"},
		{"mail", "i", id},
		{"mail", "{mail_addr}", "alice@example.org"},
		{"rcpt", "{rcpt_addr}", "gone@dest.example"},
		{"eom", "{msg_id}", "<every@example.org>"},
	} {
		if got := mac[c.stage][c.name]; got != c.want {
			t.Errorf("macro %s at %s: %q, want %q (%v)", c.name, c.stage, got, c.want, mac[c.stage])
		}
	}
	if ss[0].Host != "[127.0.0.1]" || ss[0].Addr != "127.0.0.1" || ss[0].HeloArg != "client.example" {
		t.Errorf("connect: %+v", ss[0])
	}
}

// What each verdict does to the SMTP dialogue, and that nothing refused
// is queued.
func TestMilterVerdicts(t *testing.T) {
	m := miltertest.New(miltertest.Behaviour{})
	e, d := milterEnv(t, milterConf("test", miltertest.Start(t, m), "tempfail"))
	eom := func(r gm.Response) func(*gm.Modifier) (gm.Response, error) {
		return func(*gm.Modifier) (gm.Response, error) { return r, nil }
	}
	for _, c := range []struct {
		name   string
		b      miltertest.Behaviour
		mail   string // reply to MAIL ("250", or code and text)
		spam   string // reply to RCPT TO:<spam@dest.example>, if asked
		data   string // reply at the end of DATA
		queued bool
		log    string
		nrcpts int
		closes bool // the connection is closed after the reply
	}{
		{name: "mail reject", b: miltertest.Behaviour{Mail: gm.RespReject}, mail: "550 5.7.1 Command rejected",
			log: "Milter: from=<alice@example.org>, reject=550 5.7.1 Command rejected"},
		{name: "mail tempfail", b: miltertest.Behaviour{Mail: gm.RespTempFail}, mail: "451 4.3.2 Please try again later",
			log: "Milter: from=<alice@example.org>, reject=451 4.3.2 Please try again later"},
		{name: "mail reply", b: miltertest.Behaviour{Mail: miltertest.Reply("553 5.7.1 Sender blocked here")}, mail: "553 5.7.1 Sender blocked here"},
		{name: "rcpt reject one", b: miltertest.Behaviour{Rcpt: func(r string) gm.Response {
			if r == "spam@dest.example" {
				return miltertest.Reply("550 5.1.1 <spam@dest.example>... User unknown")
			}
			return nil
		}}, mail: "250", spam: "550 5.1.1 <spam@dest.example>... User unknown", data: "250", queued: true, nrcpts: 1,
			log: "Milter: to=<spam@dest.example>, reject=550 5.1.1 <spam@dest.example>... User unknown"},
		{name: "eom reply", b: miltertest.Behaviour{EOM: eom(miltertest.Reply("550 5.7.1 Spam detected"))}, mail: "250",
			data: "550 5.7.1 Spam detected", log: "Milter: data, reject=550 5.7.1 Spam detected"},
		{name: "eom reject", b: miltertest.Behaviour{EOM: eom(gm.RespReject)}, mail: "250", data: "554 5.7.1 Command rejected"},
		{name: "eom tempfail", b: miltertest.Behaviour{EOM: eom(gm.RespTempFail)}, mail: "250", data: "451 4.3.2 Please try again later"},
		{name: "eom discard", b: miltertest.Behaviour{EOM: eom(gm.RespDiscard)}, mail: "250", data: "250", log: "Milter: data, discard"},
		{name: "mail discard", b: miltertest.Behaviour{Mail: gm.RespDiscard}, mail: "250", data: "250", log: "Milter: from=<alice@example.org>, discard"},
		{name: "connect tempfail", b: miltertest.Behaviour{Connect: gm.RespTempFail}, mail: "451 4.3.2 Please try again later",
			log: "Milter: connect: host=[127.0.0.1], addr=127.0.0.1, temp failing commands"},
		{name: "connect reject", b: miltertest.Behaviour{Connect: gm.RespReject}, mail: "550 5.0.0 Command rejected",
			log: "Milter: connect: host=[127.0.0.1], addr=127.0.0.1, rejecting commands"},
		{name: "helo reply", b: miltertest.Behaviour{Helo: miltertest.Reply("550 5.7.1 Go away")}, mail: "550 5.7.1 Go away",
			log: "Milter: helo=client.example, reject=550 5.7.1 Go away"},
		{name: "accept at mail", b: miltertest.Behaviour{Mail: gm.RespAccept, EOM: eom(gm.RespReject)}, mail: "250", data: "250", queued: true, nrcpts: 1},
		{name: "shutdown", b: miltertest.Behaviour{Mail: miltertest.Reply("421 4.7.0 Going down")}, mail: "421 4.7.0 Going down", closes: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			m.Set(c.b)
			before := e.qfCount()
			cl := greet(t, localIP, d.addrs["MTA"])
			defer cl.cmd("QUIT")
			reply := func(line string) string {
				code, text := cl.cmd(line)
				if code == 250 {
					return "250"
				}
				return strconv.Itoa(code) + " " + text
			}
			if got := reply("MAIL FROM:<alice@example.org> SIZE=300"); got != c.mail {
				t.Fatalf("MAIL: %q, want %q\n%s", got, c.mail, d.log())
			}
			if c.closes && !cl.closed() {
				t.Error("the connection stays open after a 421")
			}
			if c.mail != "250" {
				return
			}
			if got := reply("RCPT TO:<bob@dest.example>"); got != "250" {
				t.Fatalf("RCPT: %q", got)
			}
			if c.spam != "" {
				if got := reply("RCPT TO:<spam@dest.example>"); got != c.spam {
					t.Errorf("RCPT spam: %q, want %q", got, c.spam)
				}
			}
			cl.must("DATA", 354)
			cl.send(milterMsg + ".\r\n")
			code, text := cl.reply()
			got := strconv.Itoa(code) + " " + text
			if code == 250 {
				got = "250"
			}
			if got != c.data {
				t.Errorf("DATA: %q, want %q\n%s", got, c.data, d.log())
			}
			if n := e.qfCount() - before; (n == 1) != c.queued {
				t.Errorf("%d messages queued", n)
			}
			if c.queued {
				env, err := spool.Open(e.path("spool/mqueue")).Read(queueIDOf(t, text))
				if err != nil || len(env.Rcpts) != c.nrcpts {
					t.Errorf("queued: %v %+v", err, env)
				}
			}
			if c.log != "" {
				waitLog(t, d, c.log)
			}
		})
	}
}

// Mail from a foreign client: the inbound checks' Authentication-Results
// field is there for the filters to see, and their changes come with it.
func TestMilterInbound(t *testing.T) {
	m := miltertest.New(miltertest.Behaviour{})
	m.Set(miltertest.Behaviour{EOM: func(mod *gm.Modifier) (gm.Response, error) {
		seen := "no"
		for _, h := range m.LastMsg().Headers {
			if h[0] == "Authentication-Results" && strings.HasPrefix(h[1], "test.example;") {
				seen = "yes"
			}
		}
		return gm.RespAccept, mod.InsertHeader(0, "X-Seen-AR", seen)
	}})
	e, d := milterEnv(t, milterConf("test", miltertest.Start(t, m), "tempfail"))
	cl := greet(t, foreignIP, d.addrs["MTA"])
	cl.must("MAIL FROM:<someone@elsewhere.example>", 250)
	cl.must("RCPT TO:<root@test.example>", 250)
	cl.must("DATA", 354)
	cl.send("From: someone@elsewhere.example\r\nTo: root@test.example\r\nSubject: from outside\r\n\r\nHi.\r\n.\r\n")
	if code, text := cl.reply(); code != 250 {
		t.Fatalf("%d %s\n%s", code, text, d.log())
	}
	cl.cmd("QUIT")
	mbox := e.path("spool/mail/root")
	waitFor(t, "delivery", func() bool { return strings.Contains(readFile(mbox), "Subject: from outside") })
	box := readFile(mbox)
	if !strings.Contains(box, "X-Seen-AR: yes\nAuthentication-Results: test.example;") {
		t.Errorf("mailbox:\n%s", box)
	}
}

// A filter that is down, hangs, speaks garbage, closes half way or is
// too slow gets its on_failure; no session waits beyond the timeouts, and
// nothing is lost: a message is either queued (250) or refused (4xx/5xx).
func TestMilterFailures(t *testing.T) {
	e, d := milterEnv(t)
	for _, c := range []struct {
		name   string
		socket func() string
		mode   string
		mail   string // reply to MAIL
		data   string // reply at the end of DATA (when MAIL was accepted)
		log    []string
	}{
		{"down, tempfail", func() string { return miltertest.ClosedPort(t) }, "tempfail", "451 4.3.2 Please try again later", "",
			[]string{"Milter (f): error connecting to filter: Connection refused", "Milter (f): to error state", "Milter: initialization failed, temp failing commands"}},
		{"down, reject", func() string { return miltertest.ClosedPort(t) }, "reject", "550 5.0.0 Command rejected", "",
			[]string{"Milter: initialization failed, rejecting commands"}},
		{"down, accept", func() string { return miltertest.ClosedPort(t) }, "accept", "250", "250", nil},
		{"hangs, tempfail", func() string { return miltertest.Hang(t) }, "tempfail", "451 4.3.2 Please try again later", "",
			[]string{"Milter (f): timeout before data read, where=negotiate"}},
		{"garbage, tempfail", func() string { return miltertest.Garbage(t) }, "tempfail", "451 4.3.2 Please try again later", "",
			[]string{"milter_read(f): read size 1213486159 out of range, where=negotiate"}},
		{"garbage, accept", func() string { return miltertest.Garbage(t) }, "accept", "250", "250", nil},
		{"closes in the body, tempfail", func() string {
			return miltertest.Start(t, miltertest.New(miltertest.Behaviour{CloseAt: "body"}))
		}, "tempfail", "250", "451 4.3.2 Please try again later", []string{"Milter: data, reject=451 4.3.2 Please try again later"}},
		{"closes in the body, reject", func() string {
			return miltertest.Start(t, miltertest.New(miltertest.Behaviour{CloseAt: "body"}))
		}, "reject", "250", "554 5.7.1 Command rejected", nil},
		{"slow at the end, tempfail", func() string {
			return miltertest.Start(t, miltertest.New(miltertest.Behaviour{Delay: map[string]time.Duration{"eom": 4 * time.Second}}))
		}, "tempfail", "250", "451 4.3.2 Please try again later", []string{"Milter (f): timeout before data read, where=eom"}},
		{"slow at MAIL, accept", func() string {
			return miltertest.Start(t, miltertest.New(miltertest.Behaviour{Delay: map[string]time.Duration{"mail": 4 * time.Second}}))
		}, "accept", "250", "250", []string{"Milter (f): timeout before data read, where=mail"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			milterReconfigure(t, e, d, milterConf("f", c.socket(), c.mode))
			before := e.qfCount()
			start := time.Now()
			cl := greet(t, localIP, d.addrs["MTA"])
			defer cl.cmd("QUIT")
			code, text := cl.cmd("MAIL FROM:<alice@example.org>")
			got := strconv.Itoa(code) + " " + text
			if code == 250 {
				got = "250"
			}
			if got != c.mail {
				t.Fatalf("MAIL: %q, want %q\n%s", got, c.mail, d.log())
			}
			if code == 250 {
				cl.must("RCPT TO:<bob@dest.example>", 250)
				cl.must("DATA", 354)
				cl.send(milterMsg + ".\r\n")
				code, text = cl.reply()
				got = strconv.Itoa(code) + " " + text
				if code == 250 {
					got = "250"
				}
				if got != c.data {
					t.Errorf("DATA: %q, want %q\n%s", got, c.data, d.log())
				}
			}
			if n := e.qfCount() - before; (n == 1) != (code == 250) {
				t.Errorf("reply %d but %d messages queued", code, n)
			}
			if took := time.Since(start); took > 8*time.Second {
				t.Errorf("the session took %v", took)
			}
			for _, l := range c.log {
				waitLog(t, d, l)
			}
		})
	}
}

// Mail from the sendmail command goes through the filters at pickup:
// changes are queued, a rejection comes back to the submitter as a
// bounce, a tempfail leaves the drop file until the filter agrees.
func TestMilterPickup(t *testing.T) {
	m := miltertest.New(miltertest.Behaviour{EOM: func(mod *gm.Modifier) (gm.Response, error) {
		return gm.RespAccept, mod.AddHeader("X-Pickup-Filter", "checked")
	}})
	e, d := milterEnv(t, milterConf("test", miltertest.Start(t, m), "tempfail"))
	mbox := e.path("spool/mail/root")
	submit := func(subject string) {
		t.Helper()
		if _, stderr, code := e.run([]byte("To: root\nSubject: "+subject+"\n\nhello\n"), "sendmail", "-t", "-i"); code != 0 {
			t.Fatalf("sendmail: %d %s", code, stderr)
		}
	}
	submit("first")
	waitFor(t, "local delivery of the filtered message", func() bool {
		return strings.Contains(readFile(mbox), "Subject: first")
	})
	if box := readFile(mbox); !strings.Contains(box, "X-Pickup-Filter: checked") {
		t.Errorf("mailbox:\n%s", box)
	}
	var seen *miltertest.Session
	for _, s := range m.Sessions() {
		for _, msg := range s.Msgs {
			for _, h := range msg.Headers {
				if h[0] == "Subject" && h[1] == "first" {
					seen = &s
				}
			}
		}
	}
	if seen == nil {
		t.Fatal("the filter did not see the message")
	}
	if seen.Host != "localhost" || seen.Addr != "127.0.0.1" || seen.HeloArg != "test.example" ||
		seen.Macros["connect"]["_"] != "root@localhost [127.0.0.1]" || seen.Macros["connect"]["{daemon_name}"] != "pickup" ||
		seen.Macros["mail"]["i"] == "" || seen.Msgs[0].From != "root@test.example" {
		t.Errorf("the filter saw %+v, msg %+v", seen, seen.Msgs[0])
	}

	// Rejected: the submitter gets the filter's reason back.
	m.Set(miltertest.Behaviour{EOM: func(*gm.Modifier) (gm.Response, error) {
		return miltertest.Reply("550 5.7.1 Local policy forbids this"), nil
	}})
	submit("refused")
	waitFor(t, "the bounce", func() bool { return strings.Contains(readFile(mbox), "Local policy forbids this") })
	waitLog(t, d, ": DSN: 550 5.7.1 Local policy forbids this")
	if len(e.drops()) != 0 {
		t.Errorf("refused mail left in the maildrop: %v", e.drops())
	}

	// One recipient refused: it is bounced, the other delivered.
	m.Set(miltertest.Behaviour{Rcpt: func(r string) gm.Response {
		if r == "carol@dest.example" {
			return miltertest.Reply("550 5.7.1 No mail to carol from here")
		}
		return nil
	}})
	if _, stderr, code := e.run([]byte("To: root, carol@dest.example\nSubject: half\n\nhello\n"), "sendmail", "-t", "-i"); code != 0 {
		t.Fatalf("sendmail: %d %s", code, stderr)
	}
	waitFor(t, "delivery and bounce", func() bool {
		box := readFile(mbox)
		// Twice: the message itself, and the copy the bounce returns.
		return strings.Count(box, "Subject: half") >= 2 && strings.Contains(box, "No mail to carol from here")
	})
	waitLog(t, d, "Milter: to=<carol@dest.example>, reject=550 5.7.1 No mail to carol from here")

	// Tempfailed: the drop file waits (mailq shows it) until the filter
	// accepts.
	m.Set(miltertest.Behaviour{Mail: gm.RespTempFail})
	submit("later")
	waitLog(t, d, "pickup: deferred by the filters (451 4.3.2 Please try again later)")
	if len(e.drops()) != 1 {
		t.Fatalf("drops: %v", e.drops())
	}
	if out, _, _ := e.run(nil, "mailq"); !strings.Contains(out, e.drops()[0]) {
		t.Errorf("mailq:\n%s", out)
	}
	m.Set(miltertest.Behaviour{})
	sock := shortSocketPath(e.root)
	waitFor(t, "delivery after the filter agrees", func() bool {
		control.Call(sock, control.Request{Cmd: "pickup"}, time.Second)
		time.Sleep(200 * time.Millisecond)
		return strings.Contains(readFile(mbox), "Subject: later")
	})
	if len(e.drops()) != 0 {
		t.Errorf("drops left: %v", e.drops())
	}
}

// freePort finds a loopback port nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	must(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startProc starts a filter daemon and waits until it listens on port.
func startProc(t *testing.T, name string, port int, wait time.Duration, bin string, args ...string) {
	t.Helper()
	logf, err := os.Create(filepath.Join(t.TempDir(), name+".log"))
	must(t, err)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	must(t, cmd.Start())
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		logf.Close()
	})
	deadline := time.Now().Add(wait)
	for {
		c, err := net.DialTimeout("tcp4", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-done:
			t.Fatalf("%s exited:\n%s", name, readFile(logf.Name()))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not listen after %v:\n%s", name, wait, readFile(logf.Name()))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// findQueued waits for a queued message whose df contains marker and
// returns its df.
func findQueued(t *testing.T, e *env, marker string) []byte {
	t.Helper()
	var data []byte
	waitFor(t, "the queued message "+marker, func() bool {
		dfs, _ := filepath.Glob(e.path("spool/mqueue/df*"))
		for _, f := range dfs {
			if b, err := os.ReadFile(f); err == nil && bytes.Contains(b, []byte(marker)) {
				data = b
				return true
			}
		}
		return false
	})
	return data
}

// OpenDKIM (Debian's package) in signing mode, as a milter: mail through
// gosendmail, over SMTP and from the sendmail command, is queued with its
// signature, and dkimpy verifies it.
func TestMilterOpenDKIM(t *testing.T) {
	const bin = "/usr/sbin/opendkim"
	if _, err := os.Stat(bin); err != nil {
		t.Skip("opendkim is not installed: apt-get install opendkim (.ci/run installs it)")
	}
	dir := t.TempDir()
	keyFile, _, record, err := dkim.Keygen("test.example", "milter", 2048, false, dir)
	must(t, err)
	must(t, os.Chmod(keyFile, 0o600))
	port := freePort(t)
	conf := filepath.Join(dir, "opendkim.conf")
	must(t, os.WriteFile(conf, []byte(fmt.Sprintf(`Syslog no
Mode s
Domain test.example
Selector milter
KeyFile %s
Socket inet:%d@127.0.0.1
Canonicalization relaxed/simple
SignatureAlgorithm rsa-sha256
PidFile %s
`, keyFile, port, filepath.Join(dir, "opendkim.pid"))), 0o644))
	startProc(t, "opendkim", port, 20*time.Second, bin, "-f", "-x", conf)

	e, d := milterEnv(t, milterConf("opendkim", fmt.Sprintf("inet:%d@127.0.0.1", port), "tempfail"))
	records := map[string]string{"milter._domainkey.test.example": record}

	// Two SMTP sessions. opendkim answers "accept" at the end of the
	// message, after which libmilter would ignore SMFIC_QUIT_NC: its
	// connection is not kept.
	for i, subject := range []string{"signed over SMTP", "signed again"} {
		cl := greet(t, localIP, d.addrs["MTA"])
		cl.must("MAIL FROM:<alice@test.example>", 250)
		cl.must("RCPT TO:<bob@dest.example>", 250)
		cl.must("DATA", 354)
		cl.send("From: Alice <alice@test.example>\r\nTo: bob@dest.example\r\nSubject: " + subject + "\r\n" +
			fmt.Sprintf("Date: Sun, 29 Nov 2026 08:00:00 +0000\r\nMessage-ID: <smtp%d@test.example>\r\n\r\nHello,\r\n\r\nsigned by opendkim.\r\n.\r\n", i))
		if code, text := cl.reply(); code != 250 {
			t.Fatalf("%d %s\n%s", code, text, d.log())
		}
		cl.must("QUIT", 221)
		df := findQueued(t, e, "Subject: "+subject)
		if !bytes.Contains(df, []byte("\r\nDKIM-Signature: v=1; a=rsa-sha256; c=relaxed/simple; d=test.example;")) {
			t.Fatalf("not signed:\n%s\n%s", df, d.log())
		}
		if out, ok := dkimpy.Verify(t, df, records); !ok {
			t.Errorf("dkimpy: %s\n%s", out, df)
		}
		if kept := connectionsTo(t, port); len(kept) != 0 {
			t.Errorf("connections to opendkim left open after session %d: %q", i+1, kept)
		}
	}

	stdin := []byte("From: alice@test.example\nTo: carol@dest.example\nSubject: signed at pickup\n\nfrom the sendmail command\n")
	if _, stderr, code := e.run(stdin, "sendmail", "-f", "alice@test.example", "-t", "-i"); code != 0 {
		t.Fatal(stderr)
	}
	df := findQueued(t, e, "Subject: signed at pickup")
	if out, ok := dkimpy.Verify(t, df, records); !ok {
		t.Errorf("dkimpy: %s\n%s\n%s", out, df, d.log())
	}
}

// A libmilter filter that answers "continue" at the end of the message
// (the bench's no-op milter, built here with gcc and Debian's
// libmilter-dev) keeps its connection from one SMTP session to the next:
// libmilter takes SMFIC_QUIT_NC there and starts over with the next
// CONNECT. Every message goes through.
func TestMilterKeptConnection(t *testing.T) {
	if _, err := os.Stat("/usr/include/libmilter/mfapi.h"); err != nil {
		t.Skip("libmilter-dev is not installed (.ci/run installs it)")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "noopmilter")
	if out, err := exec.Command("gcc", "-O2", "-Wall", "-o", bin, "../scripts/bench/noopmilter/noopmilter.c",
		"-lmilter", "-lpthread").CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	port := freePort(t)
	socket := fmt.Sprintf("inet:%d@127.0.0.1", port)
	startProc(t, "noopmilter", port, 10*time.Second, bin, socket, "eom")
	e, d := milterEnv(t, milterConf("noop", socket, "tempfail"))
	var kept []string
	for i := 0; i < 3; i++ {
		cl := greet(t, localIP, d.addrs["MTA"])
		cl.must("MAIL FROM:<alice@example.org>", 250)
		cl.must("RCPT TO:<bob@dest.example>", 250)
		cl.must("DATA", 354)
		cl.send(fmt.Sprintf("From: alice@example.org\r\nTo: bob@dest.example\r\nSubject: kept %d\r\n\r\nHello.\r\n.\r\n", i))
		if code, text := cl.reply(); code != 250 {
			t.Fatalf("message %d: %d %s\n%s", i, code, text, d.log())
		}
		cl.must("QUIT", 221)
		findQueued(t, e, fmt.Sprintf("Subject: kept %d", i))
		kept = append(kept, strings.Join(connectionsTo(t, port), ","))
	}
	if kept[0] == "" || kept[1] != kept[0] || kept[2] != kept[0] {
		t.Errorf("connections to the filter after each session: %q, want one, the same, kept open\n%s", kept, d.log())
	}
	if strings.Contains(d.log(), "Milter (noop)") {
		t.Errorf("the filter failed:\n%s", d.log())
	}
}

// connectionsTo lists the local ends ("127.0.0.1:port", in /proc/net/tcp's
// hex) of the established loopback connections to port, once the set has
// stopped changing (a session's filter connection is let go after its
// QUIT is answered).
func connectionsTo(t *testing.T, port int) []string {
	t.Helper()
	want := fmt.Sprintf(":%04X", port)
	var last []string
	for i := 0; i < 50; i++ {
		time.Sleep(20 * time.Millisecond)
		b, err := os.ReadFile("/proc/net/tcp")
		must(t, err)
		var now []string
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			// sl local_address rem_address st ...; 01 is ESTABLISHED.
			if len(f) > 3 && strings.HasSuffix(f[2], want) && f[3] == "01" {
				now = append(now, f[1])
			}
		}
		sort.Strings(now)
		if i > 0 && strings.Join(now, ",") == strings.Join(last, ",") {
			return now
		}
		last = now
	}
	return last
}

// rspamd (Debian's package) in milter mode (its proxy worker scanning by
// itself): the GTUBE test message is rejected with rspamd's reply, the
// "add header" and "rewrite subject" test patterns mark the message, and
// plain mail goes through.
func TestMilterRspamd(t *testing.T) {
	const bin = "/usr/bin/rspamd"
	if _, err := os.Stat(bin); err != nil {
		t.Skip("rspamd is not installed: apt-get install rspamd (.ci/run installs it)")
	}
	dir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, "db"), 0o755))
	port := freePort(t)
	conf := filepath.Join(dir, "rspamd.conf")
	must(t, os.WriteFile(conf, []byte(fmt.Sprintf(`options {
  pidfile = "%[1]s/rspamd.pid";
  dbdir = "%[1]s/db";
  tempdir = "%[1]s";
  # The GTUBE-like patterns that mark rather than reject (YJS: add header,
  # ZJS: rewrite subject); the reject pattern (XJS) works without.
  enable_test_patterns = true;
}
logging {
  type = "file";
  filename = "%[1]s/rspamd.log";
  level = "error";
}
worker "rspamd_proxy" {
  bind_socket = "127.0.0.1:%[2]d";
  milter = yes;
  timeout = 120s;
  count = 1;
  upstream "local" {
    default = yes;
    self_scan = yes;
  }
}
`, dir, port)), 0o644))
	// The first start on a machine compiles the TLD list into a cache,
	// which takes a minute or more on a busy host.
	startProc(t, "rspamd", port, 4*time.Minute, bin, "-f", "-u", "root", "-g", "root", "-c", conf)

	e, d := milterEnv(t, fmt.Sprintf("[[milter]]\nname = \"rspamd\"\nsocket = \"inet:%d@127.0.0.1\"\ntimeout_read = \"30s\"\n", port))
	send := func(subject, body string) (int, string) {
		t.Helper()
		cl := greet(t, localIP, d.addrs["MTA"])
		defer cl.cmd("QUIT")
		cl.must("MAIL FROM:<alice@example.org>", 250)
		cl.must("RCPT TO:<bob@dest.example>", 250)
		cl.must("DATA", 354)
		cl.send("From: alice@example.org\r\nTo: bob@dest.example\r\nSubject: " + subject + "\r\nDate: Sun, 29 Nov 2026 08:00:00 +0000\r\n" +
			"Message-ID: <" + strings.ReplaceAll(subject, " ", ".") + "@example.org>\r\n\r\n" + body + "\r\n.\r\n")
		return cl.reply()
	}
	const gtube = "JS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
	before := e.qfCount()
	if code, text := send("gtube", "X"+gtube); code != 554 || !strings.Contains(text, "Gtube pattern") {
		t.Errorf("GTUBE: %d %s\n%s", code, text, d.log())
	}
	waitLog(t, d, "Milter: data, reject=554 5.7.1 Gtube pattern")
	if e.qfCount() != before {
		t.Error("the GTUBE message was queued")
	}
	if code, text := send("plain", "Nothing to see."); code != 250 {
		t.Fatalf("plain: %d %s\n%s", code, text, d.log())
	}
	if code, _ := send("marked", "Y"+gtube); code != 250 {
		t.Fatalf("marked: %d", code)
	}
	if df := findQueued(t, e, "<marked@example.org>"); !bytes.Contains(df, []byte("\r\nX-Spam: Yes\r\n")) {
		t.Errorf("not marked:\n%s", df)
	}
	if code, _ := send("rewritten", "Z"+gtube); code != 250 {
		t.Fatalf("rewritten: %d", code)
	}
	if df := findQueued(t, e, "<rewritten@example.org>"); !bytes.Contains(df, []byte("\r\nSubject: *** SPAM *** rewritten\r\n")) {
		t.Errorf("subject not rewritten:\n%s", df)
	}
}
