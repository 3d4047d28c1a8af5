package mailq

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gosendmail/gosendmail/pkg/control"
	"github.com/gosendmail/gosendmail/pkg/maildrop"
	"github.com/gosendmail/gosendmail/pkg/spool"
)

func (f *fixture) logText() string {
	b, _ := os.ReadFile(f.log)
	return string(b)
}

func (f *fixture) queued(id string) bool {
	_, err := f.q.Read(id)
	return err == nil
}

func TestRemove(t *testing.T) {
	f := newFixture(t)
	unlock := f.standard()
	defer unlock()
	me := currentUser(t)

	out, errs, code := f.run("remove", "6AQ3n0LQ012206", "6AQ3mMWM011603")
	if code != 0 || errs != "" || out != "6AQ3n0LQ012206: removed\n6AQ3mMWM011603: removed\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if f.queued("6AQ3n0LQ012206") {
		t.Error("MTA message still queued")
	}
	if _, err := os.Stat(filepath.Join(f.msp, "6AQ3mMWM011603")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("drop file still there: %v", err)
	}
	log := f.logText()
	for _, want := range []string{"sendmail[", "6AQ3n0LQ012206: removed by " + me + "\n", "6AQ3mMWM011603: removed by " + me + "\n"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}

	// Locked, unknown, malformed: each its own line and code; the first
	// failure sets the status, the good ID is still done.
	out, errs, code = f.run("remove", "6AQ3o5aa012300", "6AQ3n0LQ099999", "../../etc/passwd", "6AQ3mNAA011700")
	if code != 75 || out != "6AQ3mNAA011700: removed\n" {
		t.Errorf("exit %d, stdout %q", code, out)
	}
	wantErr := "mailq: 6AQ3o5aa012300: " + spool.ErrLocked.Error() + "\n" +
		"mailq: 6AQ3n0LQ099999: not in the queue\n" +
		"mailq: ../../etc/passwd: not a queue ID\n"
	if errs != wantErr {
		t.Errorf("stderr:\n%s\nwant:\n%s", errs, wantErr)
	}
	if !f.queued("6AQ3o5aa012300") {
		t.Error("locked message was removed")
	}
	for _, c := range []struct {
		id   string
		code int
	}{{"6AQ3n0LQ099999", 69}, {"nonsense", 64}, {"6AQ3o5aa012300", 75}} {
		if _, _, code := f.run("remove", c.id); code != c.code {
			t.Errorf("remove %s: exit %d, want %d", c.id, code, c.code)
		}
	}
}

func TestRemoveSelections(t *testing.T) {
	f := newFixture(t)
	defer f.standard()()
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"remove"}, "give queue IDs"},
		{[]string{"remove", "--all"}, "--yes"},
		{[]string{"remove", "--all", "--sender", "a@b"}, "cannot be combined"},
		{[]string{"remove", "6AQ3n0LQ012206", "--sender", "a@b"}, "not both"},
	} {
		out, errs, code := f.run(c.args...)
		if code != 64 || out != "" || !strings.Contains(errs, c.msg) || strings.Count(errs, "\n") != 1 {
			t.Errorf("%q: exit %d, stderr %q", c.args, code, errs)
		}
	}
	if !f.queued("6AQ3n0LQ012206") {
		t.Fatal("a refused remove removed something")
	}

	// "<>" is the null sender; case and brackets do not matter.
	out, _, code := f.run("remove", "--sender", "<>")
	if code != 0 || out != "6AQ3n0xR012208: removed\n" {
		t.Errorf("--sender <>: exit %d, %q", code, out)
	}
	out, _, code = f.run("remove", "--recipient", "<X@EXAMPLE.NET>")
	if code != 0 || out != "6AQ3n0LQ012206: removed\n" {
		t.Errorf("--recipient: exit %d, %q", code, out)
	}
	// Substrings do not match; "@domain" does.
	out, errs, code := f.run("remove", "--recipient", "example.com")
	if code != 0 || out != "" || !strings.Contains(errs, "no message") {
		t.Errorf("--recipient substring: exit %d, %q %q", code, out, errs)
	}
	out, _, code = f.run("remove", "--sender", "@Example.org")
	if code != 0 || out != "6AQ3mMWM011603: removed\n" {
		t.Errorf("--sender @domain: exit %d, %q", code, out)
	}
	// The locked message stays and says so.
	out, errs, code = f.run("remove", "--all", "--yes")
	if code != 75 || out != "6AQ3mNAA011700: removed\n" || !strings.Contains(errs, "6AQ3o5aa012300: "+spool.ErrLocked.Error()) {
		t.Errorf("--all: exit %d, %q %q", code, out, errs)
	}
}

func TestHoldRelease(t *testing.T) {
	f := newFixture(t)
	defer f.standard()()
	me := currentUser(t)

	out, errs, code := f.run("hold", "6AQ3n0LQ012206", "--reason", "looks like spam")
	if code != 0 || out != "6AQ3n0LQ012206: held\n" {
		t.Fatalf("hold: exit %d, %q %q", code, out, errs)
	}
	env, _ := f.q.Read("6AQ3n0LQ012206")
	if env.Hold != "looks like spam" || env.Status == "" {
		t.Errorf("after hold: %+v", env)
	}
	// A held message with a status shows the status; X marks it held.
	list, _, _ := f.run("-Am", "-qI6AQ3n0LQ")
	if !strings.Contains(list, "6AQ3n0LQ012206X       5 Thu Nov 26 03:49 www-data@example.org\n                 (Deferred:") {
		t.Errorf("listing:\n%s", list)
	}
	if list, _, _ := f.run("-Am", "-qQspam"); checkMailqCount(list) != 2 {
		t.Errorf("-qQspam:\n%s", list)
	}

	// Without --reason a held message keeps its reason, another gets one.
	f.run("hold", "6AQ3n0LQ012206")
	if env, _ := f.q.Read("6AQ3n0LQ012206"); env.Hold != "looks like spam" {
		t.Errorf("reason replaced: %q", env.Hold)
	}

	out, errs, code = f.run("release", "6AQ3n0LQ012206", "6AQ3n0xR012208")
	if code != 0 || out != "6AQ3n0LQ012206: released\n6AQ3n0xR012208: released\n" || errs != "" {
		t.Errorf("release: exit %d, %q %q", code, out, errs)
	}
	if env, _ := f.q.Read("6AQ3n0xR012208"); env.Hold != "" {
		t.Errorf("still held: %q", env.Hold)
	}
	out, _, code = f.run("release", "6AQ3n0xR012208")
	if code != 0 || out != "6AQ3n0xR012208: not held\n" {
		t.Errorf("release twice: exit %d, %q", code, out)
	}
	out, _, _ = f.run("hold", "6AQ3n0xR012208")
	if env, _ := f.q.Read("6AQ3n0xR012208"); out != "6AQ3n0xR012208: held\n" || env.Hold != "held by "+me {
		t.Errorf("hold without reason: %q %q", out, env.Hold)
	}

	log := f.logText()
	for _, want := range []string{
		"6AQ3n0LQ012206: held by " + me + ", reason=looks like spam\n",
		"6AQ3n0LQ012206: released by " + me + "\n",
		"6AQ3n0xR012208: released by " + me + "\n",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}

	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"hold", "6AQ3o5aa012300"}, 75, spool.ErrLocked.Error()},
		{[]string{"release", "6AQ3o5aa012300"}, 75, spool.ErrLocked.Error()},
		{[]string{"hold", "6AQ3mMWM011603"}, 69, "still in the maildrop"},
		{[]string{"hold", "6AQ3n0LQ099999"}, 69, "not in the queue"},
		{[]string{"release", "x"}, 64, "not a queue ID"},
		{[]string{"hold", "6AQ3n0LQ012206", "--reason", "two\nlines"}, 64, "one line"},
	} {
		out, errs, code := f.run(c.args...)
		if code != c.code || out != "" || !strings.Contains(errs, c.msg) || strings.Count(errs, "\n") != 1 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", c.args, code, out, errs)
		}
	}
}

func TestShow(t *testing.T) {
	f := newFixture(t)
	defer f.standard()()
	f.add(&spool.Envelope{ID: "6AQ3p0AA012400", Created: t0, LastAttempt: t0.Add(time.Hour), Attempts: 2, Priority: 90000,
		Sender: "a@example.org", UID: -1, Client: "mx.example.org [192.0.2.7]", BodyType: "8BITMIME", EnvID: "e1", Ret: "HDRS",
		Status: "Deferred: 451 try later",
		Rcpts: []spool.Recipient{{Addr: "p@example.net", State: spool.Pending, Reason: "451 try later"},
			{Addr: "s@example.net", State: spool.Sent}, {Addr: "f@example.net", State: spool.Failed, Reason: "550 no"}}},
		"Subject: hello\r\nX-Evil: \x1b[31mred\r\n\tfolded\r\n\r\nBody: not a header\r\n")
	out, errs, code := f.run("show", "6AQ3p0AA012400")
	want := "Queue ID:     6AQ3p0AA012400\n" +
		"Queue:        " + f.mta + " (deferred)\n" +
		"Sender:       <a@example.org>\n" +
		"Arrival:      2026-11-26 03:49:00 +0000\n" +
		"Size:         65 bytes\n" +
		"Priority:     90000\n" +
		"Attempts:     2\n" +
		"Last attempt: 2026-11-26 04:49:00 +0000\n" +
		"Status:       Deferred: 451 try later\n" +
		"Client:       mx.example.org [192.0.2.7]\n" +
		"Body type:    8BITMIME\n" +
		"DSN ENVID:    e1\n" +
		"DSN RET:      HDRS\n" +
		"Recipients:\n" +
		"  pending  p@example.net (451 try later)\n" +
		"  sent     s@example.net\n" +
		"  failed   f@example.net (550 no)\n" +
		"\n" +
		"Subject: hello\n" +
		"X-Evil: ?[31mred\n" +
		"\tfolded\n"
	if code != 0 || errs != "" || out != want {
		t.Errorf("exit %d, stderr %q, got:\n%s\nwant:\n%s", code, errs, out, want)
	}

	out, _, code = f.run("show", "6AQ3o5aa012300")
	if code != 0 || !strings.Contains(out, "Locked:       yes, being delivered\n") {
		t.Errorf("locked: exit %d\n%s", code, out)
	}
	out, _, code = f.run("show", "6AQ3n0xR012208")
	if code != 0 || !strings.Contains(out, "Held:         spam run\n") || !strings.Contains(out, "Sender:       <>\n") {
		t.Errorf("held: exit %d\n%s", code, out)
	}
	out, _, code = f.run("show", "6AQ3mNAA011700")
	me := currentUser(t)
	if code != 0 || !strings.Contains(out, "Queue:        "+f.msp+" (maildrop)\n") ||
		!strings.Contains(out, "Submitted by: "+me) || !strings.HasSuffix(out, "\nx\n") {
		t.Errorf("drop file: exit %d\n%s", code, out)
	}
	for _, c := range []struct {
		id   string
		code int
	}{{"6AQ3n0LQ099999", 69}, {"bad/id", 64}} {
		if _, errs, code := f.run("show", c.id); code != c.code || strings.Count(errs, "\n") != 1 {
			t.Errorf("show %s: exit %d, %q", c.id, code, errs)
		}
	}
}

// A drop file still being written is neither listed nor removable.
func TestIncompleteDrop(t *testing.T) {
	f := newFixture(t)
	w, err := maildrop.Create(f.msp, &maildrop.Envelope{Rcpts: []maildrop.Rcpt{{Addr: "a@example.com"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	out, _, _ := f.run("-Ac")
	if !strings.Contains(out, "is empty") {
		t.Errorf("listing:\n%s", out)
	}
	_, errs, code := f.run("remove", w.ID)
	if code != 75 || !strings.Contains(errs, "still being submitted") {
		t.Errorf("remove: exit %d, %q", code, errs)
	}
}

func TestFlush(t *testing.T) {
	f := newFixture(t)
	sock := filepath.Join(filepath.Dir(f.cfg), "control")

	_, errs, code := f.run("flush")
	if code != 69 || errs != "mailq: cannot flush: no queue runner ("+control.ErrNoDaemon.Error()+")\n" {
		t.Errorf("no daemon: exit %d, %q", code, errs)
	}
	if _, errs, code := f.run("flush", "nope"); code != 64 || !strings.Contains(errs, "not a queue ID") {
		t.Errorf("bad ID: exit %d, %q", code, errs)
	}

	// A daemon that records the request and gives the answer set.
	var mu sync.Mutex
	var got control.Request
	answer := control.Response{Error: `unknown command "flush"`}
	setAnswer := func(r control.Response) {
		mu.Lock()
		answer = r
		mu.Unlock()
	}
	ln, err := control.Listen(sock, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go control.Serve(ln, func(_ control.Peer, req control.Request) control.Response {
		mu.Lock()
		defer mu.Unlock()
		got = req
		return answer
	})
	_, errs, code = f.run("flush", "6AQ3n0LQ012206")
	if code != 69 || errs != "mailq: cannot flush: no queue runner (the daemon says: unknown command \"flush\")\n" {
		t.Errorf("unsupported: exit %d, %q", code, errs)
	}
	mu.Lock()
	if got.Cmd != "flush" || len(got.Args) != 1 || got.Args[0] != "6AQ3n0LQ012206" {
		t.Errorf("request %+v", got)
	}
	mu.Unlock()

	setAnswer(control.Response{OK: true})
	out, _, code := f.run("flush", "6AQ3n0LQ012206")
	if code != 0 || out != "6AQ3n0LQ012206: flush requested\n" {
		t.Errorf("ok: exit %d, %q", code, out)
	}
	setAnswer(control.Response{OK: true, Output: "queue run started, 3 messages\n"})
	out, _, code = f.run("flush")
	if code != 0 || out != "queue run started, 3 messages\n" {
		t.Errorf("ok with output: exit %d, %q", code, out)
	}
}
