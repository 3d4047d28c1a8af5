package test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/gosendmail/gosendmail/pkg/maildrop"
)

// readDrop returns the envelope and message of the only drop file.
func (e *env) readDrop() (*maildrop.Drop, []byte) {
	e.t.Helper()
	ents, errs := maildrop.List(e.path("spool/mqueue-client"))
	if len(errs) > 0 || len(ents) != 1 {
		e.t.Fatalf("want one drop file, got %d (%v)", len(ents), errs)
	}
	msg, err := io.ReadAll(ents[0].Message())
	ents[0].Close()
	if err != nil {
		e.t.Fatal(err)
	}
	return ents[0].Drop, msg
}

// bodyOf returns what follows the header block.
func bodyOf(msg []byte) []byte {
	_, body, _ := bytes.Cut(msg, []byte("\r\n\r\n"))
	return body
}

func TestMessageShapes(t *testing.T) {
	long := strings.Repeat("x", 5000)
	cases := []struct {
		name string
		in   string
		body string
	}{
		{"lf", "Subject: a\n\none\ntwo\n", "one\r\ntwo\r\n"},
		{"crlf", "Subject: a\r\n\r\none\r\ntwo\r\n", "one\r\ntwo\r\n"},
		{"mixed", "Subject: a\r\n\none\r\ntwo\nthree\r\r\n", "one\r\ntwo\r\nthree\r\n"},
		{"no final newline", "Subject: a\n\none\ntwo", "one\r\ntwo\r\n"},
		{"empty body", "Subject: a\n\n", ""},
		{"empty input", "", ""},
		{"headers only, no blank line", "Subject: a\n", ""},
		{"no header at all", "just text\nmore\n", "just text\r\nmore\r\n"},
		{"8-bit", "Subject: a\n\nGr\xc3\xbc\xc3\x9fe \xff\xfe raw\n", "Gr\xc3\xbc\xc3\x9fe \xff\xfe raw\r\n"},
		{"line over 998 octets kept whole", "Subject: a\n\n" + long + "\nend\n", long + "\r\nend\r\n"},
		{"bare CR inside a line kept", "Subject: a\n\na\rb\n", "a\rb\r\n"},
		{"mbox From_ line dropped", "From someone Sat Jan  1 00:00:00 2000\nSubject: a\n\nb\n", "b\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			_, stderr, code := e.run([]byte(tc.in), "sendmail", "-i", "to@example.net")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			_, msg := e.readDrop()
			if bytes.Contains(msg, []byte("\r\r\n")) {
				t.Fatalf("CR CR LF in %q", msg)
			}
			if got := bodyOf(msg); string(got) != tc.body {
				t.Fatalf("body %q, want %q\nmessage: %q", got, tc.body, msg)
			}
		})
	}
}

// A 50 MB message (the default limit is 50 MiB) is accepted and stored
// byte for byte. (Its memory use is a benchmark figure, not a test: the
// kernel's maxrss of a child started from this large test process counts
// the parent's pages.)
func TestFiftyMegabytes(t *testing.T) {
	e := newEnv(t)
	var in bytes.Buffer
	in.WriteString("To: to@example.net\nSubject: big\n\n")
	line := strings.Repeat("0123456789", 7) + "\n"
	for in.Len() < 50_000_000-len(line) {
		in.WriteString(line)
	}
	want := sha256.Sum256(bodyOf(bytes.ReplaceAll(in.Bytes(), []byte("\n"), []byte("\r\n"))))
	cmd := exec.Command(filepath.Join(binDir, "sendmail"), "-t", "-i")
	_, stderr, code := runCmd(t, cmd, in.Bytes(), "GOSENDMAIL_CONFIG="+e.cfg)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	_, msg := e.readDrop()
	if got := sha256.Sum256(bodyOf(msg)); got != want {
		t.Fatal("body changed")
	}
}

// CR, LF or NUL in any argument is refused before anything is written.
func TestControlBytesInArgs(t *testing.T) {
	e := newEnv(t)
	for _, args := range [][]string{
		{"-t", "-f", "a@example.org\r\nRCPT TO:<x@evil.example>"},
		{"to@example.net\n"},
		{"-F", "Name\nBcc: x@evil.example", "to@example.net"},
		{"-N", "never\r", "to@example.net"},
		{"-L", "tag\n", "to@example.net"},
		{"-V", "id\n", "to@example.net"},
		{"-R", "full\n", "to@example.net"},
	} {
		_, stderr, code := e.run([]byte("Subject: x\n\nb\n"), "sendmail", args...)
		if code != 64 || !strings.Contains(stderr, "CR, LF or NUL in argument") {
			t.Errorf("%q: exit %d, %q", args, code, stderr)
		}
	}
	if d := e.drops(); len(d) != 0 {
		t.Fatalf("drop files written: %v", d)
	}
}

// The submission works with no daemon at all: the drop file waits, and
// exit 0 means it is on disk, complete.
func TestNoDaemonNeeded(t *testing.T) {
	e := newEnv(t)
	if _, err := os.Stat(e.path("control")); err == nil {
		t.Fatal("a control socket exists")
	}
	_, stderr, code := e.run([]byte("To: a@example.net\n\nx\n"), "sendmail", "-t")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	d, _ := e.readDrop()
	if len(d.Rcpts) != 1 {
		t.Fatalf("%+v", d)
	}
}

// Kill sendmail at every durability step of a submission: afterwards the
// spool holds either no message or the whole one, never a torn one.
func TestCrashDuringSubmission(t *testing.T) {
	msg := []byte("To: to@example.net\nSubject: crash\n\n" + strings.Repeat("body line\n", 2000))
	completed := false
	for step := 1; step < 20 && !completed; step++ {
		t.Run(fmt.Sprint("step", step), func(t *testing.T) {
			e := newEnv(t)
			cmd := exec.Command(filepath.Join(crashDir, "sendmail"), "-t", "-i")
			_, stderr, code := runCmd(t, cmd, msg, "GOSENDMAIL_CONFIG="+e.cfg, fmt.Sprintf("GOSENDMAIL_CRASH_AT=%d", step))
			killed := cmd.ProcessState.Sys().(syscall.WaitStatus).Signaled()
			ents, errs := maildrop.List(e.path("spool/mqueue-client"))
			if len(errs) > 0 {
				t.Fatalf("corrupt drop file after kill at step %d: %v", step, errs)
			}
			switch {
			case killed && len(ents) == 0:
				t.Logf("killed at step %d: no message (%s)", step, strings.TrimSpace(stderr))
			case len(ents) == 1:
				got, _ := io.ReadAll(ents[0].Message())
				ents[0].Close()
				if !bytes.HasSuffix(got, []byte(strings.Repeat("body line\r\n", 2000))) {
					t.Fatalf("step %d: message is not whole", step)
				}
				if !killed {
					if code != 0 {
						t.Fatalf("exit %d: %s", code, stderr)
					}
					completed = true
				}
			default:
				t.Fatalf("step %d: killed=%v, %d messages", step, killed, len(ents))
			}
		})
	}
	if !completed {
		t.Fatal("the submission never completed")
	}
}
