package aliases

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gosendmail/gosendmail/pkg/control"
	"github.com/gosendmail/gosendmail/pkg/mailerr"
)

// runEnv is a configuration and alias file in a temporary directory. The
// directory name is kept short: a unix socket path has ~100 bytes at most.
type runEnv struct {
	dir, cfg, aliases, socket string
}

func newRunEnv(t *testing.T, aliases string) *runEnv {
	t.Helper()
	dir, err := os.MkdirTemp("", "al")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	e := &runEnv{dir: dir, cfg: filepath.Join(dir, "c.toml"), aliases: filepath.Join(dir, "aliases"), socket: filepath.Join(dir, "s")}
	cfg := fmt.Sprintf("hostname = \"test.example\"\naliases = %q\ncontrol_socket = %q\n", e.aliases, e.socket)
	if err := os.WriteFile(e.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.aliases, []byte(aliases), 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *runEnv) run() (status int, stdout, stderr string) {
	var o, x bytes.Buffer
	status = Run(e.cfg, &o, &x)
	return status, o.String(), x.String()
}

// daemon answers the control socket with resp and records requests.
func (e *runEnv) daemon(t *testing.T, resp control.Response) *[]control.Request {
	t.Helper()
	ln, err := control.Listen(e.socket, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	var got []control.Request
	done := make(chan struct{})
	go func() {
		defer close(done)
		control.Serve(ln, func(_ control.Peer, req control.Request) control.Response {
			got = append(got, req)
			return resp
		})
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return &got
}

func TestRunNoDaemon(t *testing.T) {
	e := newRunEnv(t, "postmaster: root\nstaff: a,\n\tb\n")
	status, stdout, stderr := e.run()
	want := e.aliases + ": 2 aliases, longest 4 bytes, 23 bytes total\n"
	if status != mailerr.ExOK || stdout != want || stderr != "" {
		t.Errorf("Run = %d, %q, %q; want 0, %q, \"\"", status, stdout, stderr, want)
	}
}

func TestRunReload(t *testing.T) {
	e := newRunEnv(t, "postmaster: root\n")
	reqs := e.daemon(t, control.Response{OK: true, Output: "reloaded"})
	status, stdout, stderr := e.run()
	if status != mailerr.ExOK || !strings.HasSuffix(stdout, "1 aliases, longest 4 bytes, 14 bytes total\n") || stderr != "" {
		t.Errorf("Run = %d, %q, %q", status, stdout, stderr)
	}
	if len(*reqs) != 1 || (*reqs)[0].Cmd != "reload" || strings.Join((*reqs)[0].Args, " ") != "aliases" {
		t.Errorf("daemon got %+v, want one reload aliases", *reqs)
	}
}

func TestRunReloadRefused(t *testing.T) {
	e := newRunEnv(t, "postmaster: root\n")
	e.daemon(t, control.Response{Error: "permission denied"})
	status, _, stderr := e.run()
	if status != mailerr.ExTempFail || stderr != "newaliases: the daemon did not reload the aliases: permission denied\n" {
		t.Errorf("Run = %d, %q", status, stderr)
	}
}

func TestRunBadLines(t *testing.T) {
	e := newRunEnv(t, "postmaster: root\nx y\nroot: a\nroot: b\n")
	reqs := e.daemon(t, control.Response{OK: true})
	status, stdout, stderr := e.run()
	want := e.aliases + ": line 2: missing colon after the alias name\n" +
		e.aliases + ": line 4: Warning: duplicate alias name root\n"
	if status != mailerr.ExDataErr || stdout != "" || stderr != want {
		t.Errorf("Run = %d, %q, %q; want 65, \"\", %q", status, stdout, stderr, want)
	}
	if len(*reqs) != 0 {
		t.Error("the daemon was asked to reload a bad file")
	}
}

func TestRunWarningsOnly(t *testing.T) {
	e := newRunEnv(t, "root: a\nroot: b\n")
	status, stdout, stderr := e.run()
	if status != mailerr.ExOK || !strings.Contains(stdout, ": 1 aliases,") || !strings.Contains(stderr, "Warning: duplicate alias name root") {
		t.Errorf("Run = %d, %q, %q", status, stdout, stderr)
	}
}

func TestRunMissingFile(t *testing.T) {
	e := newRunEnv(t, "")
	os.Remove(e.aliases)
	status, stdout, stderr := e.run()
	want := "newaliases: cannot open " + e.aliases + ": No such file or directory\n"
	if status != mailerr.ExOSFile || stdout != "" || stderr != want {
		t.Errorf("Run = %d, %q, %q; want 72, \"\", %q", status, stdout, stderr, want)
	}
}

func TestRunUnreadable(t *testing.T) {
	e := newRunEnv(t, "")
	os.Remove(e.aliases)
	os.Mkdir(e.aliases, 0o755)
	status, _, stderr := e.run()
	want := "newaliases: cannot read " + e.aliases + ": Is a directory\n"
	if status != mailerr.ExIOErr || stderr != want {
		t.Errorf("Run = %d, %q; want 74, %q", status, stderr, want)
	}
}

func TestRunBadConfig(t *testing.T) {
	e := newRunEnv(t, "")
	os.WriteFile(e.cfg, []byte("aliases = \"/x\"\nbogus = 1\n"), 0o644)
	status, stdout, stderr := e.run()
	want := "newaliases: " + e.cfg + ":2: unknown key \"bogus\"\n"
	if status != mailerr.ExConfig || stdout != "" || stderr != want {
		t.Errorf("Run = %d, %q, %q; want 78, \"\", %q", status, stdout, stderr, want)
	}
}
