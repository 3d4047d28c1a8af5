package local

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestMboxFormat(t *testing.T) {
	a := newAgent(t)
	acct := testAccount(t)
	msg1 := "Subject: hi\r\nFrom: Alice <alice@example.org>\r\n\r\nFrom the start\r\n>From quoted\r\n>>From twice\r\nFromage\r\nnot From here\r\n"
	msg2 := "Subject: bounce\r\n\r\nno final newline"
	if err := a.Deliver(context.Background(), mboxRequest(acct, "alice@example.org", msg1)); err != nil {
		t.Fatal(err)
	}
	if err := a.Deliver(context.Background(), mboxRequest(acct, "", msg2)); err != nil {
		t.Fatal(err)
	}
	want := "From alice@example.org Sun Nov 29 07:45:00 2026\n" +
		"Return-Path: <alice@example.org>\n" +
		"Subject: hi\n" +
		"From: Alice <alice@example.org>\n" +
		"\n" +
		">From the start\n" +
		">>From quoted\n" +
		">>>From twice\n" +
		"Fromage\n" +
		"not From here\n" +
		"\n" +
		"From MAILER-DAEMON Sun Nov 29 07:45:00 2026\n" +
		"Return-Path: <>\n" +
		"Subject: bounce\n" +
		"\n" +
		"no final newline\n" +
		"\n"
	path := spoolFile(a, "alice")
	if got := readFile(t, path); got != want {
		t.Errorf("mbox is\n%q\nwant\n%q", got, want)
	}
	if _, err := os.Lstat(path + ".lock"); !os.IsNotExist(err) {
		t.Error("dot-lock left behind")
	}

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if !isRoot() {
		if fi.Mode().Perm() != 0o600 || int(st.Uid) != os.Getuid() {
			t.Errorf("new mailbox %v uid %d, want 0600 and ours", fi.Mode(), st.Uid)
		}
		return
	}
	wantGID := acct.GID
	if g, err := user.LookupGroup("mail"); err == nil {
		wantGID, _ = strconv.Atoi(g.Gid)
	}
	if fi.Mode().Perm() != 0o660 || int(st.Uid) != acct.UID || int(st.Gid) != wantGID {
		t.Errorf("new mailbox %v %d:%d, want 0660 %d:%d", fi.Mode(), st.Uid, st.Gid, acct.UID, wantGID)
	}
}

// A mailbox damaged by another program (no final newline) still gets a
// From_ line at the start of a line.
func TestMboxMissingFinalNewline(t *testing.T) {
	a := newAgent(t)
	acct := testAccount(t)
	path := spoolFile(a, "alice")
	mustWrite(t, path, "From x Sun Nov 29 07:45:00 2026\n\ntruncated")
	os.Chown(path, acct.UID, acct.GID)
	if err := a.Deliver(context.Background(), mboxRequest(acct, "b@example.org", "S: 1\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, path); !strings.Contains(got, "truncated\nFrom b@example.org ") {
		t.Errorf("got %q", got)
	}
}

// testConcurrent delivers 20 big messages to one mailbox at once, through
// one Agent or, with perAgent, through an Agent each: Agents do not share
// their queue of turns, so then only the file locks keep them apart.
func testConcurrent(t *testing.T, noDotLock, perAgent bool) {
	a := newAgent(t)
	a.noDotLock = noDotLock
	a.LockTimeout = time.Minute // a loaded test machine is slow
	acct := testAccount(t)
	const n, lines = 20, 2000 // ~180 KB each: several write(2) calls
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := range n {
		agent := a
		if perAgent {
			agent = &Agent{SpoolDir: a.SpoolDir, Now: a.Now, Log: a.Log, LockTimeout: a.LockTimeout, noDotLock: noDotLock}
		}
		wg.Go(func() {
			req := mboxRequest(acct, "x@example.org", bigMessage(fmt.Sprintf("m%02d", i), lines))
			<-start // all at once, for the most contention
			errs <- agent.Deliver(context.Background(), req)
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if tags := checkMessages(t, readFile(t, spoolFile(a, "alice")), lines); len(tags) != n {
		t.Errorf("%d messages in the mailbox, want %d", len(tags), n)
	}
}

func TestMboxConcurrentGoroutines(t *testing.T) { testConcurrent(t, false, false) }

// Goroutines of one process with their own Agents and no dot-lock (spool
// directory not writable): the fcntl lock alone must keep them apart.
func TestMboxConcurrentAgentsFcntlOnly(t *testing.T) { testConcurrent(t, true, true) }

// Dot-locks alone keep Agents apart too.
func TestMboxConcurrentAgentsDotLock(t *testing.T) { testConcurrent(t, false, true) }

func TestMboxConcurrentProcesses(t *testing.T) {
	for _, noDot := range []string{"", "1"} {
		a := newAgent(t)
		acct := testAccount(t)
		const procs, each = 3, 4
		var hs []*helperProc
		for p := range procs {
			hs = append(hs, helper(t, "deliver", "H_SPOOL="+a.SpoolDir, "H_UID="+strconv.Itoa(acct.UID),
				"H_GID="+strconv.Itoa(acct.GID), "H_COUNT="+strconv.Itoa(each), fmt.Sprintf("H_TAG=p%d", p),
				"H_NODOTLOCK="+noDot, "H_WAIT=1"))
		}
		for _, h := range hs {
			h.in.Write([]byte{'\n'})
		}
		for _, h := range hs {
			if line, _ := h.out.ReadString('\n'); line != "ok\n" {
				t.Fatalf("helper: %q", line)
			}
			h.cmd.Wait()
		}
		if tags := checkMessages(t, readFile(t, spoolFile(a, "alice")), helperLines); len(tags) != procs*each {
			t.Errorf("%d messages, want %d", len(tags), procs*each)
		}
	}
}

// holdLock makes a helper process take a classic fcntl lock on path, as
// mutt would, for hold; it returns once the lock is held.
func holdLock(t *testing.T, path string, hold time.Duration) {
	t.Helper()
	h := helper(t, "lock", "H_FILE="+path, "H_HOLD="+hold.String())
	if line, _ := h.out.ReadString('\n'); line != "locked\n" {
		t.Fatalf("lock helper: %q", line)
	}
}

func TestMboxWaitsForFcntlLock(t *testing.T) {
	a := newAgent(t)
	acct := testAccount(t)
	ctx := context.Background()
	if err := a.Deliver(ctx, mboxRequest(acct, "first@example.org", "S: 1\r\n\r\n1\r\n")); err != nil {
		t.Fatal(err)
	}
	path := spoolFile(a, "alice")
	holdLock(t, path, 700*time.Millisecond)
	start := time.Now()
	if err := a.Deliver(ctx, mboxRequest(acct, "second@example.org", "S: 2\r\n\r\n2\r\n")); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 400*time.Millisecond {
		t.Errorf("delivery took %v: it did not wait for the other program's lock", waited)
	}
	if got := readFile(t, path); !strings.Contains(got, "From second@example.org") {
		t.Errorf("second message missing: %q", got)
	}
}

func TestMboxLockTimeout(t *testing.T) {
	a := newAgent(t)
	acct := testAccount(t)
	ctx := context.Background()
	if err := a.Deliver(ctx, mboxRequest(acct, "first@example.org", "S: 1\r\n\r\n1\r\n")); err != nil {
		t.Fatal(err)
	}
	path := spoolFile(a, "alice")
	before := readFile(t, path)
	holdLock(t, path, time.Minute)
	a.LockTimeout = 300 * time.Millisecond
	err := a.Deliver(ctx, mboxRequest(acct, "second@example.org", "S: 2\r\n\r\n2\r\n"))
	e := mailErr(t, err, 450, true)
	if e.Enhanced != "4.2.0" || !strings.Contains(e.Msg, "locked") {
		t.Errorf("error %q", err)
	}
	if readFile(t, path) != before {
		t.Error("mailbox changed without the lock")
	}
	if _, err := os.Lstat(path + ".lock"); !os.IsNotExist(err) {
		t.Error("our dot-lock was left behind after the timeout")
	}

	// The caller's context ends the wait too.
	a.LockTimeout = time.Minute
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	mailErr(t, a.Deliver(cctx, mboxRequest(acct, "third@example.org", "S: 3\r\n\r\n3\r\n")), 451, true)
}

func TestMboxDotLock(t *testing.T) {
	a := newAgent(t)
	acct := testAccount(t)
	ctx := context.Background()
	path := spoolFile(a, "alice")
	lock := path + ".lock"

	// A fresh lock is waited for.
	mustWrite(t, lock, "")
	go func() {
		time.Sleep(400 * time.Millisecond)
		os.Remove(lock)
	}()
	start := time.Now()
	if err := a.Deliver(ctx, mboxRequest(acct, "a@example.org", "S: 1\r\n\r\n1\r\n")); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Errorf("delivered after %v, before the dot-lock was released", waited)
	}

	// A fresh lock that stays makes the delivery fail temporarily, and
	// is not ours to remove.
	mustWrite(t, lock, "")
	a.LockTimeout = 300 * time.Millisecond
	e := mailErr(t, a.Deliver(ctx, mboxRequest(acct, "b@example.org", "S: 2\r\n\r\n2\r\n")), 450, true)
	if !strings.Contains(e.Msg, "dot-lock") {
		t.Errorf("error %q does not name the dot-lock", e.Msg)
	}
	if _, err := os.Lstat(lock); err != nil {
		t.Error("another program's fresh dot-lock was removed")
	}

	// A lock untouched for longer than StaleLock is broken.
	old := time.Now().Add(-10 * time.Minute)
	if err := os.Chtimes(lock, old, old); err != nil {
		t.Fatal(err)
	}
	// (LockTimeout is still 300ms: had the lock been waited for, this
	// would fail.)
	if err := a.Deliver(ctx, mboxRequest(acct, "c@example.org", "S: 3\r\n\r\n3\r\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(lock); !os.IsNotExist(err) {
		t.Error("stale dot-lock still there")
	}
	if got := readFile(t, path); strings.Contains(got, "From b@") || !strings.Contains(got, "From c@") {
		t.Errorf("mailbox %q", got)
	}
}

func TestMboxRefusesUnsafeMailboxes(t *testing.T) {
	acct := testAccount(t)
	cases := []struct {
		name   string
		setup  func(t *testing.T, path string) (victim string)
		reason string
		root   bool
	}{
		{"symlink", func(t *testing.T, path string) string {
			victim := filepath.Join(t.TempDir(), "victim")
			mustWrite(t, victim, "secret\n")
			os.Chown(victim, acct.UID, acct.GID)
			if err := os.Symlink(victim, path); err != nil {
				t.Fatal(err)
			}
			return victim
		}, "symbolic link", false},
		{"dangling symlink", func(t *testing.T, path string) string {
			victim := filepath.Join(t.TempDir(), "created-by-mta")
			if err := os.Symlink(victim, path); err != nil {
				t.Fatal(err)
			}
			return victim
		}, "symbolic link", false},
		{"hard link", func(t *testing.T, path string) string {
			victim := filepath.Join(filepath.Dir(path), "victim")
			mustWrite(t, victim, "secret\n")
			os.Chown(victim, acct.UID, acct.GID)
			if err := os.Link(victim, path); err != nil {
				t.Fatal(err)
			}
			return victim
		}, "2 hard links", false},
		{"fifo", func(t *testing.T, path string) string {
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
			return ""
		}, "not a regular file", false},
		{"directory", func(t *testing.T, path string) string {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
			return ""
		}, "not a regular file", false},
		{"owned by another user", func(t *testing.T, path string) string {
			mustWrite(t, path, "")
			if err := os.Chown(path, acct.UID+1, acct.GID); err != nil {
				t.Fatal(err)
			}
			return path
		}, "owned by uid", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.root {
				skipUnlessRoot(t, "only root can give a file to another user")
			}
			a := newAgent(t)
			path := spoolFile(a, "alice")
			victim := c.setup(t, path)
			var before string
			if victim != "" {
				b, _ := os.ReadFile(victim)
				before = string(b)
			}
			e := mailErr(t, a.Deliver(context.Background(), mboxRequest(acct, "evil@example.org", "S: x\r\n\r\nx\r\n")), 450, true)
			if !strings.Contains(e.Msg, c.reason) || !strings.Contains(e.Msg, path) {
				t.Errorf("error %q does not say %q about %s", e.Msg, c.reason, path)
			}
			if victim != "" {
				b, _ := os.ReadFile(victim)
				if string(b) != before {
					t.Errorf("%s was written through: %q", victim, b)
				}
			}
		})
	}
}

// A write that fails half-way (here: the file size limit) leaves the
// mailbox exactly as it was. Run in a helper process: RLIMIT_FSIZE would
// hit the test binary's own files too.
func TestMboxRollbackOnWriteError(t *testing.T) {
	a := newAgent(t)
	acct := testAccount(t)
	path := spoolFile(a, "alice")
	orig := "From old@example.org Sun Nov 29 07:45:00 2026\nSubject: old\n\nold message\n\n"
	mustWrite(t, path, orig)
	if err := os.Chown(path, acct.UID, acct.GID); err != nil && isRoot() {
		t.Fatal(err)
	}
	h := helper(t, "deliver", "H_SPOOL="+a.SpoolDir, "H_UID="+strconv.Itoa(acct.UID),
		"H_GID="+strconv.Itoa(acct.GID), "H_COUNT=1", "H_TAG=big",
		"H_FSIZE="+strconv.Itoa(len(orig)+10000))
	line, _ := h.out.ReadString('\n')
	if !strings.HasPrefix(line, "err 452 4.2.2 true Mailbox full") {
		t.Fatalf("helper said %q, want a temporary 452 4.2.2", line)
	}
	if got := readFile(t, path); got != orig {
		t.Errorf("mailbox not restored: %d bytes, want %d", len(got), len(orig))
	}
}

func TestMboxErrors(t *testing.T) {
	ctx := context.Background()
	acct := testAccount(t)

	a := newAgent(t)
	a.Lookup = func(string) (*Account, error) { return LookupAccount("no-such-user-gosendmail-test") }
	req := mboxRequest(nil, "a@example.org", "S: x\r\n\r\nx\r\n")
	e := mailErr(t, a.Deliver(ctx, req), 550, false)
	if e.Enhanced != "5.1.1" || e.Msg != "User unknown" {
		t.Errorf("unknown user: %v", e)
	}

	for _, name := range []string{"", "..", "a/b", "x\ny"} {
		req := mboxRequest(acct, "a@example.org", "x\r\n")
		req.User = name
		mailErr(t, a.Deliver(ctx, req), 550, false)
	}

	a = newAgent(t)
	a.SpoolDir = filepath.Join(a.SpoolDir, "missing")
	mailErr(t, a.Deliver(ctx, mboxRequest(acct, "a@example.org", "x\r\n")), 451, true)

	a.SpoolDir = ""
	mailErr(t, a.Deliver(ctx, mboxRequest(acct, "a@example.org", "x\r\n")), 451, true)
}

func TestLookupAccount(t *testing.T) {
	u, err := user.Current()
	if err != nil {
		t.Skip("no current user in the user database:", err)
	}
	acct, err := LookupAccount(u.Username)
	if err != nil {
		t.Fatal(err)
	}
	if strconv.Itoa(acct.UID) != u.Uid || acct.Home != u.HomeDir {
		t.Errorf("got %+v for %+v", acct, u)
	}
	_, err = LookupAccount("no-such-user-gosendmail-test")
	mailErr(t, err, 550, false)
}

// Debian's /var/mail is 2775 root:mail: a daemon outside group mail
// cannot create dot-locks there, and delivers with fcntl locking alone.
func TestMboxUnwritableSpoolDir(t *testing.T) {
	if isRoot() {
		t.Skip("root can create files in any directory; run the tests as a normal user to cover this")
	}
	a := newAgent(t)
	acct := testAccount(t)
	path := spoolFile(a, "alice")
	mustWrite(t, path, "")
	if err := os.Chmod(a.SpoolDir, 0o555); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(a.SpoolDir, 0o755)
	for range 2 {
		if err := a.Deliver(context.Background(), mboxRequest(acct, "a@example.org", "S: x\r\n\r\nx\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	if got := readFile(t, path); strings.Count(got, "From a@example.org ") != 2 {
		t.Errorf("mailbox %q", got)
	}
}

// Deliveries that race to create a new mailbox all succeed, and no
// temporary name is left behind.
func TestMboxConcurrentCreation(t *testing.T) {
	for range 5 {
		a := newAgent(t)
		acct := testAccount(t)
		const n = 8
		errs := make(chan error, n)
		start := make(chan struct{})
		for range n {
			agent := &Agent{SpoolDir: a.SpoolDir, Now: a.Now, Log: a.Log, noDotLock: true}
			go func() {
				<-start
				errs <- agent.Deliver(context.Background(), mboxRequest(acct, "a@example.org", "S: x\r\n\r\nx\r\n"))
			}()
		}
		close(start)
		for range n {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		if ents, _ := os.ReadDir(a.SpoolDir); len(ents) != 1 {
			t.Errorf("spool holds %v, want only the mailbox", ents)
		}
	}
}
