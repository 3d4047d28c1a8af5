package local

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosendmail/gosendmail/pkg/mailerr"
)

// The test binary doubles as the "other program" of the locking tests:
// run with helperEnv set it becomes a helper process instead of a test.
const helperEnv = "GOSENDMAIL_LOCAL_TEST_HELPER"

// helperLines is the body length of the helper's messages: big enough to
// take several write(2) calls, so unlocked writers would interleave.
const helperLines = 2000

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	os.Exit(m.Run())
}

func runHelper(mode string) int {
	switch mode {
	case "lock":
		// Hold a classic POSIX write lock, as mutt or procmail would.
		f, err := os.OpenFile(os.Getenv("H_FILE"), os.O_RDWR, 0)
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
		if err := unix.FcntlFlock(f.Fd(), unix.F_SETLKW, &lk); err != nil {
			fmt.Println("error", err)
			return 1
		}
		fmt.Println("locked")
		hold, _ := time.ParseDuration(os.Getenv("H_HOLD"))
		time.Sleep(hold)
		return 0
	case "deliver":
		if n, _ := strconv.ParseUint(os.Getenv("H_FSIZE"), 10, 64); n > 0 {
			lim := unix.Rlimit{Cur: n, Max: n}
			if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &lim); err != nil {
				fmt.Println("error setrlimit", err)
				return 1
			}
		}
		uid, _ := strconv.Atoi(os.Getenv("H_UID"))
		gid, _ := strconv.Atoi(os.Getenv("H_GID"))
		count, _ := strconv.Atoi(os.Getenv("H_COUNT"))
		if os.Getenv("H_WAIT") != "" {
			// Start when told to, together with the other helpers.
			os.Stdin.Read(make([]byte, 1))
		}
		a := &Agent{SpoolDir: os.Getenv("H_SPOOL"), noDotLock: os.Getenv("H_NODOTLOCK") != "",
			Log: quietLog()}
		for i := range count {
			body := bigMessage(os.Getenv("H_TAG")+"-"+strconv.Itoa(i), helperLines)
			err := a.Deliver(context.Background(), Request{
				Sender: "x@example.org", Recipient: "alice@example.org", User: "alice",
				Account: &Account{UID: uid, GID: gid}, Target: Target{Kind: Mbox},
				Body: strings.NewReader(body), Size: int64(len(body)),
			})
			if err != nil {
				code, enh := mailerr.SMTPCode(err)
				fmt.Printf("err %d %s %v %s\n", code, enh, mailerr.IsTemporary(err), err)
				return 2
			}
		}
		fmt.Println("ok")
		return 0
	}
	return 3
}

// helperProc is a running helper process.
type helperProc struct {
	cmd *exec.Cmd
	out *bufio.Reader // its stdout
	in  io.WriteCloser
}

// helper starts the test binary as a helper process in mode with the
// given environment.
func helper(t *testing.T, mode string, env ...string) *helperProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append(env, helperEnv+"="+mode)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return &helperProc{cmd, bufio.NewReader(out), in}
}

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// testTime is the clock of every test Agent: From_ lines are exact.
var testTime = time.Date(2026, time.November, 29, 7, 45, 0, 0, time.UTC)

// testAccount is the mailbox owner in tests: a uid that is not ours when
// we are root (so chown and the owner checks are real), else ourselves.
func testAccount(t *testing.T) *Account {
	home := t.TempDir()
	if isRoot() {
		if err := os.Chown(home, 4242, 4243); err != nil {
			t.Fatal(err)
		}
		return &Account{UID: 4242, GID: 4243, Home: home}
	}
	return &Account{UID: os.Getuid(), GID: os.Getgid(), Home: home}
}

func newAgent(t *testing.T) *Agent {
	return &Agent{
		SpoolDir:    t.TempDir(),
		Hostname:    "mx.example.org",
		Now:         func() time.Time { return testTime },
		Log:         quietLog(),
		LockTimeout: 10 * time.Second,
	}
}

func mboxRequest(acct *Account, sender, body string) Request {
	return Request{
		QueueID: "x3N8T4Sn012752", Sender: sender, Recipient: "alice@example.org",
		User: "alice", Account: acct, Target: Target{Kind: Mbox},
		Body: strings.NewReader(body), Size: int64(len(body)),
	}
}

// bigMessage is a message of n body lines that all carry tag, so an
// interleaving of two deliveries is visible.
func bigMessage(tag string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Subject: %s\r\n\r\n", tag)
	for i := range n {
		fmt.Fprintf(&b, "%s line %04d ....................................................................\r\n", tag, i)
	}
	return b.String()
}

// mailErr asserts that err is a *mailerr.Error with the given code and
// temporariness.
func mailErr(t *testing.T, err error, code int, temporary bool) *mailerr.Error {
	t.Helper()
	var e *mailerr.Error
	if !errors.As(err, &e) {
		t.Fatalf("want a *mailerr.Error %d, got %v", code, err)
	}
	if e.Code != code || e.Temporary != temporary {
		t.Fatalf("want %d temporary=%v, got %d %s temporary=%v: %v", code, temporary, e.Code, e.Enhanced, e.Temporary, err)
	}
	return e
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkMessages parses an mbox of bigMessage deliveries and checks that
// each is whole and not mixed with another; it returns the tags seen.
func checkMessages(t *testing.T, mbox string, lines int) map[string]bool {
	t.Helper()
	tags := map[string]bool{}
	var tag string
	var n int
	end := func() {
		if tag != "" && n != lines {
			t.Errorf("message %s has %d body lines, want %d", tag, n, lines)
		}
	}
	for _, line := range strings.Split(strings.TrimSuffix(mbox, "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "From "):
			end()
			tag, n = "", 0
		case strings.HasPrefix(line, "Subject: "):
			tag = strings.TrimPrefix(line, "Subject: ")
			if tags[tag] {
				t.Errorf("message %s delivered twice", tag)
			}
			tags[tag] = true
		case strings.HasPrefix(line, "Return-Path: "), line == "":
		default:
			if !strings.HasPrefix(line, tag+" line ") {
				t.Fatalf("line %q inside message %s: deliveries interleaved", line, tag)
			}
			n++
		}
	}
	end()
	return tags
}

func skipUnlessRoot(t *testing.T, why string) {
	t.Helper()
	if !isRoot() {
		t.Skip("needs root: " + why)
	}
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func spoolFile(a *Agent, name string) string { return filepath.Join(a.SpoolDir, name) }
