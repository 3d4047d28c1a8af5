package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// dropGID is the drop group of the setgid tests: a numeric gid with no
// name, so the tests change nothing in /etc/group.
const dropGID = 64901

// nobody is the unprivileged caller (www-data's stand-in).
const nobody = 65534

// The setgid test binary is built once, with its built-in configuration
// path pointing at setgidCfg, which each test rewrites for its own root.
var (
	setgidOnce sync.Once
	setgidCfg  string
	setgidErr  error
)

// setgidEnv installs a setgid sendmail as Debian would: binary
// root:drop 2755, maildrop_dir owned by the daemon's user with group drop
// and mode 0730, and a configuration at the built-in default path (a
// configuration the caller names would drop the privilege).
func setgidEnv(t *testing.T) (*env, string) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root to install a setgid binary and switch users")
	}
	e := newEnv(t)
	setgidOnce.Do(func() {
		dir := filepath.Join(filepath.Dir(binDir), "setgid")
		os.MkdirAll(dir, 0o755)
		setgidCfg = filepath.Join(dir, "gosendmail.toml")
		_, file, _, _ := runtime.Caller(0)
		cmd := exec.Command("go", "build", "-o", dir+"/sendmail",
			"-ldflags", "-X github.com/gosendmail/gosendmail/pkg/config.DefaultPath="+setgidCfg, "./cmd/sendmail")
		cmd.Dir = filepath.Dir(filepath.Dir(file))
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			setgidErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if setgidErr != nil {
		t.Fatal(setgidErr)
	}
	// The built-in default path now holds this test's configuration.
	must(t, os.WriteFile(setgidCfg, []byte(testConfig(e.root)), 0o644))
	sbin := e.path("sbin")
	os.MkdirAll(sbin, 0o755)
	data, err := os.ReadFile(filepath.Join(filepath.Dir(setgidCfg), "sendmail"))
	must(t, err)
	must(t, os.WriteFile(sbin+"/sendmail", data, 0o755))
	bin := sbin + "/sendmail"
	must(t, os.Chown(bin, 0, dropGID))
	must(t, os.Chmod(bin, 0o755|os.ModeSetgid))
	md := e.path("spool/mqueue-client")
	must(t, os.Chown(md, 0, dropGID))
	must(t, os.Chmod(md, 0o730))
	return e, bin
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// asNobody runs bin as uid/gid 65534 with no supplementary groups.
func asNobody(t *testing.T, stdin []byte, env []string, bin string, args ...string) (string, string, int) {
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}}}
	return runCmd(t, cmd, stdin, env...)
}

const phpMsg = "To: alice@example.org\r\nSubject: from PHP\r\nFrom: shop@example.org\n\nOrder confirmed.\n"

// www-data (here nobody) submits through the setgid binary: the drop file
// is its own, in a directory it can neither list nor read.
func TestUnprivilegedSubmission(t *testing.T) {
	e, bin := setgidEnv(t)
	_, stderr, code := asNobody(t, []byte(phpMsg), nil, bin, "-t", "-i", "-fshop@example.org")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	names := e.drops()
	if len(names) != 1 {
		t.Fatalf("drop files: %v", names)
	}
	fi, err := os.Stat(filepath.Join(e.path("spool/mqueue-client"), names[0]))
	must(t, err)
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != nobody || st.Gid != dropGID {
		t.Fatalf("drop file owned by %d:%d, want %d:%d", st.Uid, st.Gid, nobody, dropGID)
	}
	d, msg := e.readDrop()
	if d.UID != nobody {
		t.Fatalf("submitter uid %d", d.UID)
	}
	for _, want := range []string{
		"Received: (from nobody@localhost)\r\n",
		"X-Authentication-Warning: test.example: nobody set sender to shop@example.org using -f\r\n",
	} {
		if !strings.Contains(string(msg), want) {
			t.Errorf("missing %q in\n%s", want, msg)
		}
	}
	// The caller cannot read back or list the spool.
	_, _, code = asNobody(t, nil, nil, "/bin/ls", e.path("spool/mqueue-client"))
	if code == 0 {
		t.Fatal("nobody could list maildrop_dir")
	}
}

// Root and trusted users draw no X-Authentication-Warning; neither does a
// user naming their own address.
func TestTrustedSender(t *testing.T) {
	e, bin := setgidEnv(t)
	_, stderr, code := asNobody(t, []byte(phpMsg), nil, bin, "-t", "-i", "-f", "nobody@test.example")
	if code != 0 {
		t.Fatal(stderr)
	}
	_, msg := e.readDrop()
	if strings.Contains(string(msg), "X-Authentication-Warning") {
		t.Fatal("warning for the caller's own address")
	}
	os.Remove(filepath.Join(e.path("spool/mqueue-client"), e.drops()[0]))
	os.WriteFile(e.path("etc/trusted-users"), []byte("# web shop\nnobody\n"), 0o644)
	_, stderr, code = asNobody(t, []byte(phpMsg), nil, bin, "-t", "-i", "-f", "shop@example.org")
	if code != 0 {
		t.Fatal(stderr)
	}
	_, msg = e.readDrop()
	if strings.Contains(string(msg), "X-Authentication-Warning") {
		t.Fatal("warning for a trusted user")
	}
}

// A non-root caller who names a configuration (-C or GOSENDMAIL_CONFIG)
// loses the drop group before the file is read, so it can no longer write
// maildrop_dir: it runs as a plain user.
func TestNamedConfigDropsGroup(t *testing.T) {
	e, bin := setgidEnv(t)
	// A configuration readable only by the drop group: after the drop, the
	// caller cannot read it.
	private := e.path("etc/private.toml")
	must(t, os.WriteFile(private, []byte(testConfig(e.root)), 0o640))
	must(t, os.Chown(private, 0, dropGID))
	for _, tc := range []struct {
		args []string
		env  []string
	}{
		{[]string{"-C", private, "-t"}, nil},
		{[]string{"-t"}, []string{"GOSENDMAIL_CONFIG=" + private}},
	} {
		_, stderr, code := asNobody(t, []byte(phpMsg), tc.env, bin, tc.args...)
		if code != 78 || !strings.Contains(stderr, "permission denied") {
			t.Errorf("%v %v: exit %d, %q; want 78 and permission denied", tc.args, tc.env, code, stderr)
		}
	}
	// A readable named config: the plain user cannot write maildrop_dir.
	_, stderr, code := asNobody(t, []byte(phpMsg), nil, bin, "-C", e.cfg, "-t")
	if code != 77 || !strings.Contains(stderr, "permission denied") {
		t.Errorf("-C readable config: exit %d, %q; want 77", code, stderr)
	}
	if d := e.drops(); len(d) != 0 {
		t.Fatalf("written without the group: %v", d)
	}
}

// Options that name files or directories are root's alone: refused with
// 77 for anyone else, writing nothing.
func TestPrivilegedOptionsRefused(t *testing.T) {
	e, bin := setgidEnv(t)
	for _, args := range [][]string{
		{"-oQ/tmp", "-t"},
		{"-O", "QueueDirectory=/tmp", "-t"},
		{"-oA/tmp/aliases", "-t"},
		{"-O", "AliasFile=/tmp/aliases", "-t"},
		{"-O", "PidFile=/tmp/x.pid", "-t"},
		{"-D", "/tmp/debug.out", "-t"},
	} {
		_, stderr, code := asNobody(t, []byte(phpMsg), nil, bin, args...)
		if code != 77 || !strings.Contains(stderr, "only root may name files or directories") {
			t.Errorf("%v: exit %d, %q", args, code, stderr)
		}
	}
	_, stderr, code := asNobody(t, []byte(phpMsg), nil, bin, "-X", "/tmp/x.log", "-t")
	if code != 64 {
		t.Errorf("-X: exit %d %q", code, stderr)
	}
	if d := e.drops(); len(d) != 0 {
		t.Fatalf("drop files: %v", d)
	}
	for _, p := range []string{"/tmp/x.log", "/tmp/debug.out", "/tmp/x.pid"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s was created", p)
		}
	}
}

// sendmail -bs by an unprivileged user writes through the setgid group too.
func TestUnprivilegedBS(t *testing.T) {
	e, bin := setgidEnv(t)
	conv := "EHLO app.example\r\nMAIL FROM:<shop@example.org>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\nSubject: bs\r\n\r\nhi\r\n.\r\nQUIT\r\n"
	out, stderr, code := asNobody(t, []byte(conv), nil, bin, "-bs")
	if code != 0 || !strings.Contains(out, "Message accepted for delivery") {
		t.Fatalf("exit %d: %s %s", code, out, stderr)
	}
	d, _ := e.readDrop()
	if d.UID != nobody || d.Sender != "shop@example.org" {
		t.Fatalf("%+v", d)
	}
}
