package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosendmail/gosendmail/pkg/mailerr"
)

// pipeAccount is who commands run as in tests: nobody when we are root
// (a real unprivileged account), else ourselves.
func pipeAccount(t *testing.T) *Account {
	t.Helper()
	if !isRoot() {
		return &Account{UID: os.Getuid(), GID: os.Getgid(), Home: t.TempDir()}
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody to run commands as:", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &Account{UID: uid, GID: gid, Home: u.HomeDir}
}

func pipeRequest(acct *Account, command, body string) Request {
	return Request{
		QueueID: "x3N8T4Sn012752", Sender: "alice@example.org",
		Recipient: "list+urgent@lists.example.org", OriginalRecipient: "List@Lists.example.org",
		User: "nobody", Account: acct, Target: Target{Kind: Pipe, Command: command},
		Body: strings.NewReader(body), Size: int64(len(body)),
	}
}

// commandError runs command and returns its CommandError (the command
// must fail).
func commandError(t *testing.T, a *Agent, req Request) (*mailerr.Error, *CommandError) {
	t.Helper()
	err := a.Deliver(context.Background(), req)
	var me *mailerr.Error
	var ce *CommandError
	if !errors.As(err, &me) || !errors.As(err, &ce) {
		t.Fatalf("want a command failure, got %v", err)
	}
	return me, ce
}

func TestPipeExitStatus(t *testing.T) {
	a := newAgent(t)
	acct := pipeAccount(t)
	if err := a.Deliver(context.Background(), pipeRequest(acct, "cat >/dev/null", "S: x\r\n\r\nx\r\n")); err != nil {
		t.Fatalf("exit 0: %v", err)
	}
	// A command that ignores its input and succeeds has delivered.
	big := bigMessage("m", 5000)
	if err := a.Deliver(context.Background(), pipeRequest(acct, "exit 0", big)); err != nil {
		t.Fatalf("exit 0 without reading: %v", err)
	}
	cases := []struct {
		command  string
		code     int
		enhanced string
		temp     bool
		text     string
	}{
		{"echo over quota; exit 75", 450, "4.0.0", true, "Deferred"},
		{"echo no such user >&2; exit 67", 550, "5.1.1", false, "User unknown"},
		{"exit 69", 554, "5.0.0", false, "Service unavailable"},
		{"exit 73", 550, "5.0.0", false, "Can't create output"},
		{"exit 77", 550, "5.0.0", false, "Insufficient permission"},
		{"exit 71", 451, "4.0.0", true, "Operating system error"},
		{"exit 42", 554, "5.3.0", false, "unknown mailer error 42"},
		{"exit 1", 554, "5.3.0", false, "unknown mailer error 1"},
		{"kill -TERM $$", 451, "4.3.0", true, "Command died with signal 15"},
	}
	for _, c := range cases {
		me, ce := commandError(t, a, pipeRequest(acct, c.command, "S: x\r\n\r\nx\r\n"))
		if me.Code != c.code || me.Enhanced != c.enhanced || me.Temporary != c.temp || me.Msg != c.text {
			t.Errorf("%q: got %d %s temp=%v %q, want %d %s temp=%v %q", c.command,
				me.Code, me.Enhanced, me.Temporary, me.Msg, c.code, c.enhanced, c.temp, c.text)
		}
		if ce.Status >= 64 && ce.Status <= 78 && me.Exit != ce.Status {
			t.Errorf("%q: sysexits code %d, want %d", c.command, me.Exit, ce.Status)
		}
	}
	_, ce := commandError(t, a, pipeRequest(acct, "echo no such user >&2; exit 67", "x\r\n"))
	if ce.Output != "no such user\n" || !strings.Contains(ce.Error(), "exit status 67: no such user") {
		t.Errorf("output %q, error %q", ce.Output, ce.Error())
	}
}

func TestPipeInputAndOutputLimit(t *testing.T) {
	a := newAgent(t)
	acct := pipeAccount(t)
	msg := "Subject: hi\r\n\r\nFrom the start\r\nbye\r\n"
	_, ce := commandError(t, a, pipeRequest(acct, "cat; exit 64", msg))
	if want := "Return-Path: <alice@example.org>\nSubject: hi\n\nFrom the start\nbye\n"; ce.Output != want {
		t.Errorf("stdin was %q, want %q", ce.Output, want)
	}
	_, ce = commandError(t, a, pipeRequest(acct, "cat; exit 64", bigMessage("m", 100)))
	if len(ce.Output) != maxOutput {
		t.Errorf("kept %d bytes of output, want %d", len(ce.Output), maxOutput)
	}
}

func TestPipeEnvironment(t *testing.T) {
	a := newAgent(t)
	acct := pipeAccount(t)
	req := pipeRequest(acct, "env; exit 64", "x\r\n")
	req.Sender = "evil\n@example.org"
	_, ce := commandError(t, a, req)
	got := strings.Split(strings.TrimSpace(ce.Output), "\n")
	got = slices.DeleteFunc(got, func(s string) bool {
		// Set by the shell itself, not by us.
		return strings.HasPrefix(s, "PWD=") || strings.HasPrefix(s, "SHLVL=") || strings.HasPrefix(s, "_=") || strings.HasPrefix(s, "OLDPWD=")
	})
	slices.Sort(got)
	home := acct.Home
	want := []string{
		"DOMAIN=lists.example.org",
		"EXTENSION=urgent",
		"HOME=" + home,
		"LOCAL=list+urgent",
		"LOGNAME=nobody",
		"ORIGINAL_RECIPIENT=List@Lists.example.org",
		"PATH=/usr/bin:/bin",
		"RECIPIENT=list+urgent@lists.example.org",
		"SENDER=evil_@example.org",
		"SHELL=/bin/sh",
		"USER=nobody",
	}
	if !slices.Equal(got, want) {
		t.Errorf("environment\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestPipeRunsAsAccount(t *testing.T) {
	skipUnlessRoot(t, "only root can run a command as another user")
	a := newAgent(t)
	acct := pipeAccount(t)
	// nobody's home, /nonexistent, cannot be entered: the command runs in /.
	check := fmt.Sprintf(`test "$(id -u)" = %d && test "$(id -g)" = %d && test "$(id -G)" = %d && test "$(pwd)" = / || { id; pwd; exit 77; }`,
		acct.UID, acct.GID, acct.GID)
	if err := a.Deliver(context.Background(), pipeRequest(acct, check, "x\r\n")); err != nil {
		t.Fatal(err)
	}
	// A home the account can enter is the working directory.
	acct2 := &Account{UID: acct.UID, GID: acct.GID, Home: t.TempDir()}
	os.Chmod(filepath.Dir(acct2.Home), 0o755) // t.TempDir's parent is 0700
	os.Chown(acct2.Home, acct.UID, acct.GID)
	if err := a.Deliver(context.Background(), pipeRequest(acct2, `test "$(pwd)" = "$HOME" || exit 77`, "x\r\n")); err != nil {
		t.Fatal(err)
	}
}

func TestPipeRefusesRoot(t *testing.T) {
	a := newAgent(t)
	marker := t.TempDir() + "/ran"
	root := &Account{UID: 0, GID: 0, Home: "/root"}
	e := mailErr(t, a.Deliver(context.Background(), pipeRequest(root, "touch "+marker, "x\r\n")), 451, true)
	if !strings.Contains(e.Msg, "as root refused") {
		t.Errorf("error %q", e.Msg)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Error("the command ran as root")
	}
	if !isRoot() {
		// Nor can an unprivileged daemon run commands as someone else.
		other := &Account{UID: os.Getuid() + 1, GID: os.Getgid()}
		mailErr(t, a.Deliver(context.Background(), pipeRequest(other, "true", "x\r\n")), 451, true)
		return
	}
	a.AllowRoot = true
	if err := a.Deliver(context.Background(), pipeRequest(root, `test "$(id -u)" = 0 || exit 77`, "x\r\n")); err != nil {
		t.Errorf("AllowRoot: %v", err)
	}
}

func TestPipeTimeoutKillsProcessGroup(t *testing.T) {
	a := newAgent(t)
	a.PipeTimeout = 300 * time.Millisecond
	acct := pipeAccount(t)
	start := time.Now()
	me, ce := commandError(t, a, pipeRequest(acct, "sleep 30 & echo $!; wait", "x\r\n"))
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("timeout took %v", took)
	}
	if !me.Temporary || !ce.TimedOut || !strings.Contains(me.Msg, "timed out") {
		t.Errorf("got %v (%+v)", me, ce)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(ce.Output))
	if err != nil {
		t.Fatalf("no pid in %q", ce.Output)
	}
	// The background sleep was in the group and must be gone (or a zombie
	// waiting for a reaper).
	deadline := time.Now().Add(3 * time.Second)
	for {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(stat), ") Z ") {
			break
		}
		if runtime.GOOS != "linux" {
			if syscall.Kill(pid, 0) != nil {
				break
			}
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("child %d of the command survived the timeout", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Descriptors of the daemon never reach a command, even one opened
// without close-on-exec.
func TestPipeNoLeakedDescriptors(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("needs /proc/self/fd:", err)
	}
	fd, err := unix.Open(os.Args[0], unix.O_RDONLY, 0) // no O_CLOEXEC on purpose
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	a := newAgent(t)
	acct := pipeAccount(t)
	cmd := fmt.Sprintf("if test -e /proc/self/fd/%d; then echo leaked; fi; ls /proc/self/fd; exit 64", fd)
	_, ce := commandError(t, a, pipeRequest(acct, cmd, "x\r\n"))
	// ls sees 0-2 and the descriptor of the directory it is reading.
	if fds := strings.Fields(ce.Output); !slices.Equal(fds, []string{"0", "1", "2", "3"}) {
		t.Errorf("descriptors seen by the command: %q", ce.Output)
	}
}

func TestPipeEmptyCommand(t *testing.T) {
	a := newAgent(t)
	mailErr(t, a.Deliver(context.Background(), pipeRequest(pipeAccount(t), "  ", "x\r\n")), 451, true)
}
