package test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosendmail/gosendmail/pkg/safeio"
	"github.com/gosendmail/gosendmail/pkg/spool"
)

// The daemon owns queue_dir and recycles its files (safeio.Pool): a new
// message is written into a spare file rf<N> and renamed to df/qf, a
// rewrite of a qf swaps the new file with the old one, and a removed
// message's files become spares again. These tests kill a crashtest
// daemon at every durability step of that life and check what is left.

// crashDaemon is an smtpd that may kill itself at a durability step.
type crashDaemon struct {
	*daemon
	stderr string // its standard error (the crashtest build says where it died)
	exited bool
}

// startCrashDaemon starts dir/smtpd with the env's configuration as it is
// and the extra environment variables, and waits for "starting daemon".
// It reports false, rather than failing the test, when the daemon died
// before that (a crashtest build may be killed during startup).
func startCrashDaemon(t *testing.T, e *env, dir string, environ ...string) (*crashDaemon, bool) {
	t.Helper()
	stderr := e.path("crash.stderr")
	d, up := launchDaemon(t, e, dir, stderr, environ...)
	cd := &crashDaemon{daemon: d, stderr: stderr, exited: !up}
	t.Cleanup(cd.stop)
	if !up && !cd.crashed() {
		t.Fatalf("smtpd exited at startup without a crash:\n%s\n%s", readFile(stderr), d.log())
	}
	return cd, up
}

// poll reports whether the daemon has exited.
func (cd *crashDaemon) poll() bool {
	if !cd.exited {
		select {
		case <-cd.done:
			cd.exited = true
		default:
		}
	}
	return cd.exited
}

// crashed reports whether the crashtest build killed itself.
func (cd *crashDaemon) crashed() bool {
	return strings.Contains(readFile(cd.stderr), "crashtest: killed at step")
}

// crashText is the crashtest build's own line about where it died.
func (cd *crashDaemon) crashText() string {
	for _, l := range strings.Split(readFile(cd.stderr), "\n") {
		if strings.HasPrefix(l, "crashtest: ") {
			return l
		}
	}
	return "no crash"
}

// stop sends SIGTERM and waits (SIGKILL to the group after 10 s).
func (cd *crashDaemon) stop() {
	if cd.poll() {
		return
	}
	cd.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-cd.done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-cd.cmd.Process.Pid, syscall.SIGKILL)
		<-cd.done
		cd.t.Errorf("smtpd did not stop on SIGTERM")
	}
	cd.exited = true
}

// waitUntil polls cond until it holds or the daemon has exited; it
// reports whether cond held.
func (cd *crashDaemon) waitUntil(t *testing.T, what string, cond func() bool) bool {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
		if cd.poll() {
			return false
		}
	}
	t.Fatalf("smtpd neither died nor got to %s", what)
	return false
}

// tryGreet connects from 127.0.0.1 (a relay client) and says EHLO; nil
// when the daemon is not there.
func tryGreet(t *testing.T, addr string) *client {
	dl := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(localIP)}, Timeout: 5 * time.Second}
	c, err := dl.Dial("tcp", addr)
	if err != nil {
		return nil
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(15 * time.Second))
	cl := &client{t: t, c: c, r: bufio.NewReader(c)}
	if code, _ := cl.reply(); code != 220 {
		return nil
	}
	if code, _ := cl.tryCmd("EHLO client.example"); code != 250 {
		return nil
	}
	return cl
}

// tryCmd is cmd that tolerates a dead server: code 0.
func (cl *client) tryCmd(line string) (int, string) {
	if _, err := cl.c.Write([]byte(line + "\r\n")); err != nil {
		return 0, err.Error()
	}
	return cl.reply()
}

// trySend sends one message and returns the last reply, 0 if the
// connection broke.
func (cl *client) trySend(from string, rcpts []string, msg string) (int, string) {
	lines := []string{"MAIL FROM:<" + from + ">"}
	for _, rc := range rcpts {
		lines = append(lines, "RCPT TO:<"+rc+">")
	}
	for _, l := range append(lines, "DATA") {
		want := 250
		if l == "DATA" {
			want = 354
		}
		if code, text := cl.tryCmd(l); code != want {
			return code, text
		}
	}
	if _, err := cl.c.Write([]byte(msg + ".\r\n")); err != nil {
		return 0, err.Error()
	}
	return cl.reply()
}

// crashMail is one message of a crash test.
type crashMail struct {
	rcpts []string
	text  string // as sent, CRLF, without the final dot
}

func (m crashMail) discarded() bool { return strings.HasSuffix(m.rcpts[0], "@discard.example") }

// crashMsg builds a message of n body lines marked with tag in every
// line, so that bytes of one message in another's file show.
func crashMsg(tag string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Subject: crash %s\r\nX-Tag: %s\r\n\r\n", tag, tag)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "%s: body line %04d of message %s\r\n", tag, i, tag)
	}
	return b.String()
}

// crashRun is one step of a crash test: an env, the messages that may be
// in its queue, and the IDs of those the client saw accepted.
type crashRun struct {
	t        *testing.T
	e        *env
	mails    map[string]crashMail // by tag
	accepted map[string]string    // tag -> queue ID, for a 250 after DATA
	stale    map[string]uint64    // spares holding bytes before the restart: name -> inode
}

func newCrashRun(t *testing.T, mailertable string) *crashRun {
	e := newEnv(t)
	if mailertable != "" {
		must(t, os.WriteFile(e.path("etc/mailertable"), []byte(mailertable), 0o644))
	}
	// Nothing answers DNS on port 9: remote mail is deferred at once, and
	// no test asks the real DNS.
	f, err := os.OpenFile(e.cfg, os.O_APPEND|os.O_WRONLY, 0)
	must(t, err)
	fmt.Fprint(f, "[delivery]\ndns_server = \"127.0.0.1:9\"\n[limits]\ngreet_pause = \"0s\"\n")
	f.Close()
	return &crashRun{t: t, e: e, mails: map[string]crashMail{}, accepted: map[string]string{}, stale: map[string]uint64{}}
}

func (r *crashRun) queueDir() string { return r.e.path("spool/mqueue") }

// readQf parses qf<id> without touching the queue (spool.Read would set a
// corrupt one aside).
func (r *crashRun) readQf(id string) (*spool.Envelope, error) {
	data, err := os.ReadFile(filepath.Join(r.queueDir(), "qf"+id))
	if err != nil {
		return nil, err
	}
	return spool.Unmarshal(id, data)
}

// deferred reports whether the message's qf records a deferral.
func (r *crashRun) deferred(id string) bool {
	env, err := r.readQf(id)
	return err == nil && strings.HasPrefix(env.Status, "Deferred") && env.Attempts > 0
}

// gone reports whether a message's files have left the queue.
func (r *crashRun) gone(id string) bool {
	_, err1 := os.Lstat(filepath.Join(r.queueDir(), "qf"+id))
	_, err2 := os.Lstat(filepath.Join(r.queueDir(), "df"+id))
	return os.IsNotExist(err1) && os.IsNotExist(err2)
}

// send sends the message tagged tag through cd; alive reports whether
// the daemon survived until the message's fate was on disk (deferred, or
// delivered and removed). A 250 reply is recorded in r.accepted.
func (r *crashRun) send(cd *crashDaemon, tag string) (alive bool) {
	t := r.t
	t.Helper()
	m := r.mails[tag]
	cl := tryGreet(t, cd.addrs["MTA"])
	if cl == nil {
		return false
	}
	code, text := cl.trySend("sender@test.example", m.rcpts, m.text)
	cl.tryCmd("QUIT")
	cl.c.Close()
	if code != 250 {
		// Only a crash may cost the message.
		for deadline := time.Now().Add(10 * time.Second); !cd.poll(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("message %s refused (%d %q) and the daemon still runs", tag, code, text)
			}
		}
		t.Logf("message %s: reply %d %q", tag, code, text)
		return false
	}
	id := ""
	for _, f := range strings.Fields(text) {
		if spool.ValidID(f) {
			id = f
		}
	}
	if id == "" {
		t.Fatalf("no queue ID in %q", text)
	}
	r.accepted[tag] = id
	var ok bool
	if m.discarded() {
		ok = cd.waitUntil(t, "the removal of "+id, func() bool { return r.gone(id) })
	} else {
		ok = cd.waitUntil(t, "the deferral of "+id, func() bool { return r.deferred(id) })
	}
	if !ok {
		return false
	}
	// The directory fsync that ends the write comes after the rename
	// that made it visible: give the daemon time to reach it.
	time.Sleep(50 * time.Millisecond)
	return !cd.poll()
}

// identify returns the tag of the message a df holds whole: the daemon's
// Received field, then exactly the message as sent.
func (r *crashRun) identify(df []byte) (string, bool) {
	for tag, m := range r.mails {
		if !bytes.HasSuffix(df, []byte(m.text)) {
			continue
		}
		head := string(df[:len(df)-len(m.text)])
		if !strings.HasPrefix(head, "Received: ") || !strings.HasSuffix(head, "\r\n") {
			return "", false
		}
		for _, l := range strings.Split(strings.TrimSuffix(head, "\r\n"), "\r\n")[1:] {
			if l == "" || l[0] != ' ' && l[0] != '\t' {
				return "", false // another field: not our Received alone
			}
		}
		return tag, true
	}
	return "", false
}

// check verifies the queue directory: no corrupt qf, every qf with a df
// holding its own message whole, every accepted message queued (or, for
// the discard mailer, delivered). Spare files may hold stale bytes; after
// a restart (restarted) every spare that held some before it and is still
// the same file must have been emptied (NewPool).
func (r *crashRun) check(restarted bool) {
	t := r.t
	t.Helper()
	ents, err := os.ReadDir(r.queueDir())
	must(t, err)
	names := map[string]bool{}
	for _, d := range ents {
		names[d.Name()] = true
	}
	queued := map[string]string{} // tag -> ID
	emptied := 0
	for _, d := range ents {
		name := d.Name()
		path := filepath.Join(r.queueDir(), name)
		switch {
		case strings.HasPrefix(name, "Qf"):
			b, _ := os.ReadFile(path)
			t.Errorf("corrupt qf set aside: %s (%d bytes): %q", name, len(b), trunc(b))
		case strings.HasPrefix(name, "qf") && spool.ValidID(name[2:]):
			id := name[2:]
			qf, _ := os.ReadFile(path)
			env, err := spool.Unmarshal(id, qf)
			if err != nil {
				t.Errorf("corrupt %s: %v\n%q", name, err, trunc(qf))
				continue
			}
			df, err := os.ReadFile(filepath.Join(r.queueDir(), "df"+id))
			if err != nil {
				t.Errorf("%s parses but its df: %v", name, err)
				continue
			}
			tag, ok := r.identify(df)
			if !ok {
				t.Errorf("df%s (%d bytes) is not one whole message of this test: %q", id, len(df), trunc(df))
				continue
			}
			var addrs []string
			for _, rc := range env.Rcpts {
				addrs = append(addrs, rc.Addr)
			}
			if strings.Join(addrs, " ") != strings.Join(r.mails[tag].rcpts, " ") {
				t.Errorf("qf%s is for %v but df%s holds message %s (for %v)", id, addrs, id, tag, r.mails[tag].rcpts)
			}
			if other, dup := queued[tag]; dup {
				t.Errorf("message %s queued twice: %s and %s", tag, other, id)
			}
			queued[tag] = id
		case strings.HasPrefix(name, "df") && spool.ValidID(name[2:]):
			if !names["qf"+name[2:]] && !restarted {
				t.Logf("%s has no qf (its writer died before the commit point)", name)
			}
		case strings.HasPrefix(name, "rf"):
			var st syscall.Stat_t
			if syscall.Lstat(path, &st) != nil {
				continue
			}
			ino, was := r.stale[name]
			switch {
			case !restarted && st.Size > 0:
				r.stale[name] = st.Ino
			case restarted && was && ino == st.Ino && st.Size > 0:
				b, _ := os.ReadFile(path)
				t.Errorf("spare %s still holds %d stale bytes after a restart: %q", name, st.Size, trunc(b))
			case restarted && was && ino == st.Ino:
				emptied++
			}
		case strings.HasPrefix(name, "tf"):
			t.Errorf("%s: a temporary qf, though the daemon recycles", name)
		}
	}
	if !restarted && len(r.stale) > 0 {
		t.Logf("%d spares hold stale bytes (allowed until a restart)", len(r.stale))
	}
	if restarted && emptied > 0 {
		t.Logf("the restart emptied %d of them", emptied)
	}
	log := readFile(r.e.path("maillog"))
	for tag, id := range r.accepted {
		q, ok := queued[tag]
		switch {
		case ok && q != id:
			t.Errorf("message %s accepted as %s but queued as %s", tag, id, q)
		case ok:
		case r.mails[tag].discarded() && sentInLog(log, id):
		default:
			t.Errorf("message %s (%s) accepted with 250 but lost", tag, id)
		}
	}
}

// sentInLog reports whether the log has id delivered.
func sentInLog(log, id string) bool {
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, id+": to=") && strings.Contains(l, "stat=Sent") {
			return true
		}
	}
	return false
}

// spareFiles maps the spare files in dir to their inode and size.
func spareFiles(t *testing.T, dir string) map[string][2]int64 {
	m, _ := filepath.Glob(filepath.Join(dir, "rf*"))
	out := map[string][2]int64{}
	for _, p := range m {
		var st syscall.Stat_t
		if syscall.Lstat(p, &st) == nil {
			out[filepath.Base(p)] = [2]int64{int64(st.Ino), st.Size}
		}
	}
	return out
}

func trunc(b []byte) []byte {
	if len(b) > 300 {
		return append(b[:150:150], append([]byte(" ... "), b[len(b)-150:]...)...)
	}
	return b
}

// restart runs the normal daemon on the env until it has dealt with the
// queue (every message deferred again or delivered), stops it, and checks.
func (r *crashRun) restart() {
	t := r.t
	t.Helper()
	d := startDaemon(t, r.e, "")
	waitFor(t, "the restarted daemon to settle", func() bool {
		ids, err := spool.Open(r.queueDir()).IDs()
		if err != nil {
			return false
		}
		for _, id := range ids {
			env, err := r.readQf(id)
			if err == nil && !r.deferred(id) && env.Pending() != nil {
				return false
			}
		}
		return true
	})
	d.stop()
	r.check(true)
}

// crashSteps runs one step of a crash test after another, each in a new
// env, with the crashtest daemon killed at that step (run reports whether
// it was), until a run goes through without a crash.
func crashSteps(t *testing.T, max int, run func(t *testing.T, step int) (crashed bool)) {
	start := time.Now()
	for step := 1; step <= max; step++ {
		completed := false
		if !t.Run(fmt.Sprint("step", step), func(t *testing.T) { completed = !run(t, step) }) {
			return // the step's failure says it all
		}
		if completed {
			t.Logf("%d steps, the last without a crash, in %v", step, time.Since(start).Round(time.Millisecond))
			return
		}
	}
	t.Fatalf("the daemon still crashed at step %d", max)
}

// Kill the daemon at each durability step while it receives a message
// and defers it (Create: df and qf through spare files; Update: a new qf
// swapped with the old). Whatever the step: a message the client saw
// accepted is queued whole, no qf is corrupt, no df holds bytes of
// anything but its own message, and after a restart the spares that held
// stale bytes are empty.
func TestCrashDuringQueueWrite(t *testing.T) {
	crashSteps(t, 40, func(t *testing.T, step int) bool {
		r := newCrashRun(t, "")
		r.mails["new"] = crashMail{rcpts: []string{"someone@remote.example"}, text: crashMsg("new", 150)}
		cd, up := startCrashDaemon(t, r.e, crashDir, fmt.Sprintf("GOSENDMAIL_CRASH_AT=%d", step))
		if up {
			r.send(cd, "new")
		}
		cd.stop()
		crashed := cd.crashed()
		t.Logf("%s; accepted %v", cd.crashText(), r.accepted)
		r.check(false)
		r.restart()
		if !crashed && len(r.accepted) != 1 {
			t.Fatal("no crash, yet the message was not accepted")
		}
		return crashed
	})
}

// Messages to the discard mailer are delivered and removed, so that their
// files become spares, still holding their bytes; then the daemon is
// killed at each step of writing one more such message into recycled
// spares (and recycling its files in turn) and a last, shorter one, which
// is deferred, into spares that held longer files. Whatever the step, the
// checks of TestCrashDuringQueueWrite hold: in particular no df holds
// bytes of another message and no qf is torn by what its spare held.
func TestCrashRecycledRemove(t *testing.T) {
	const mailertable = "discard.example\tdiscard:\n"
	mails := map[string]crashMail{"new": {rcpts: []string{"someone@remote.example"}, text: crashMsg("new", 10)}}
	// old0 is over 16 KiB (a spare the pool may empty at once); old1 and
	// old2 are shorter, with envelopes longer than the last message's, so
	// that a file of theirs reused for it and not cut to length shows.
	for i, n := range []int{450, 200, 150} {
		tag := fmt.Sprint("old", i)
		m := crashMail{text: crashMsg(tag, n)}
		for j := 0; j < 1+20*min(i, 1); j++ {
			m.rcpts = append(m.rcpts, fmt.Sprintf("x-%s-recipient-number-%02d@discard.example", tag, j))
		}
		mails[tag] = m
	}
	// Let a spare rest long enough to be reused (safeio.Pool).
	rest := func() { time.Sleep(safeio.Rest + 100*time.Millisecond) }

	// Once: the normal daemon delivers old0, then old1 in old0's files;
	// its queue is left with their files as spares, which every step
	// starts from.
	tpl := newCrashRun(t, mailertable)
	tpl.mails = mails
	d, _ := startCrashDaemon(t, tpl.e, binDir)
	for _, tag := range []string{"old0", "old1"} {
		if !tpl.send(d, tag) {
			t.Fatalf("the daemon died on %s", tag)
		}
		rest()
	}
	d.stop()
	tpl.check(false)
	left := spareFiles(t, tpl.queueDir())
	if len(left) < 2 || len(tpl.stale) == 0 {
		t.Fatalf("after two removals, spares %v, %d with bytes", left, len(tpl.stale))
	}

	crashSteps(t, 40, func(t *testing.T, step int) bool {
		r := newCrashRun(t, mailertable)
		r.mails = mails
		for name := range left {
			b, err := os.ReadFile(filepath.Join(tpl.queueDir(), name))
			must(t, err)
			must(t, os.WriteFile(filepath.Join(r.queueDir(), name), b, 0o600))
		}

		// The crashtest daemon: old2, then the last one.
		cd, up := startCrashDaemon(t, r.e, crashDir, fmt.Sprintf("GOSENDMAIL_CRASH_AT=%d", step))
		var spares map[string][2]int64
		if up && r.send(cd, "old2") {
			rest()
			spares = spareFiles(t, r.queueDir())
			r.send(cd, "new")
		}
		cd.stop()
		crashed := cd.crashed()
		t.Logf("%s; accepted %v", cd.crashText(), r.accepted)
		r.check(false)
		if id, ok := r.accepted["new"]; ok && !crashed {
			// Which spares the last message went into.
			for _, f := range []string{"df", "qf"} {
				var st syscall.Stat_t
				must(t, syscall.Lstat(filepath.Join(r.queueDir(), f+id), &st))
				from := "a new file"
				for name, v := range spares {
					if v[0] == int64(st.Ino) {
						from = fmt.Sprintf("spare %s, which held %d bytes", name, v[1])
					}
				}
				if from == "a new file" && f == "df" {
					t.Errorf("df%s is none of the spares %v: the test does not exercise recycling", id, spares)
				}
				t.Logf("the last message's %s (%d bytes) is in %s", f, st.Size, from)
			}
		}
		r.restart()
		if !crashed && len(r.accepted) != 2 {
			t.Fatalf("no crash, yet accepted only %v", r.accepted)
		}
		return crashed
	})
}
