package test

import (
	"bytes"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// repoRoot is the checkout.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// buildDeb runs `make deb` into a temporary directory and returns the
// package's path. It needs dpkg-deb (Debian's dpkg).
func buildDeb(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dpkg-deb is not installed")
	}
	out := t.TempDir()
	bin := filepath.Join(out, "bin")
	cmd := exec.Command("go", "build", "-trimpath", "-buildmode=pie", "-ldflags", "-s -w", "-o", bin+"/", "./cmd/...")
	cmd.Dir = repoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	cmd = exec.Command("sh", "packaging/build-deb.sh", out)
	cmd.Dir = repoRoot()
	cmd.Env = append(os.Environ(), "BINDIR="+bin, "VERSION=0.1.0-test")
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("build-deb.sh: %v\n%s", err, b)
	}
	deb := strings.TrimSpace(string(b))
	if !strings.HasSuffix(deb, ".deb") {
		t.Fatalf("build-deb.sh printed %q", b)
	}
	return deb
}

// The package: the binaries at the CONTRACT.md paths, the conffile, the
// unit, the man pages; an MTA's Provides/Conflicts/Replaces; lintian
// finds no error; the maintainer scripts pass shellcheck.
func TestDebianPackage(t *testing.T) {
	deb := buildDeb(t)
	contents, err := exec.Command("dpkg-deb", "--contents", deb).Output()
	must(t, err)
	for _, want := range []string{
		"-rwxr-xr-x root/root .* ./usr/sbin/sendmail\n",
		"-rwxr-xr-x root/root .* ./usr/sbin/smtpd\n",
		"-rwxr-xr-x root/root .* ./usr/bin/mailq\n",
		"-rwxr-xr-x root/root .* ./usr/bin/newaliases\n",
		"lrwxrwxrwx root/root .* ./usr/lib/sendmail -> ../sbin/sendmail\n",
		"-rw-r--r-- root/root .* ./etc/mail/gosendmail.toml\n",
		"-rw-r--r-- root/root .* ./lib/systemd/system/gosendmail.service\n",
		"./usr/share/man/man8/sendmail.8.gz\n", "./usr/share/man/man1/mailq.1.gz\n",
		"./usr/share/man/man8/newaliases.8.gz\n", "./usr/share/man/man8/smtpd.8.gz\n",
		"./usr/share/man/man5/gosendmail.toml.5.gz\n",
		"./usr/share/doc/gosendmail/copyright\n",
	} {
		if !matchLine(string(contents), want) {
			t.Errorf("package lacks %q:\n%s", want, contents)
		}
	}
	for field, want := range map[string]string{
		"Package": "gosendmail", "Provides": "mail-transport-agent", "Conflicts": "mail-transport-agent",
		"Replaces": "mail-transport-agent", "Section": "mail",
	} {
		got, err := exec.Command("dpkg-deb", "--field", deb, field).Output()
		must(t, err)
		if strings.TrimSpace(string(got)) != want {
			t.Errorf("%s: %q, want %q", field, got, want)
		}
	}
	ctl := t.TempDir()
	must(t, exec.Command("dpkg-deb", "--control", deb, ctl).Run())
	if b, _ := os.ReadFile(filepath.Join(ctl, "conffiles")); string(b) != "/etc/mail/gosendmail.toml\n" {
		t.Errorf("conffiles: %q", b)
	}
	if _, err := exec.LookPath("shellcheck"); err == nil {
		for _, s := range []string{"postinst", "prerm", "postrm"} {
			if b, err := exec.Command("shellcheck", filepath.Join(ctl, s)).CombinedOutput(); err != nil {
				t.Errorf("shellcheck %s:\n%s", s, b)
			}
		}
	}
	if _, err := exec.LookPath("lintian"); err != nil {
		t.Fatal("lintian is not installed (.ci/run installs it)")
	}
	out, _ := exec.Command("lintian", "--tag-display-limit", "0", deb).CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "E: ") {
			t.Errorf("lintian: %s", line)
		}
	}
}

// matchLine reports whether a line of text ends with want's literal tail
// after the first ".*" (the size and date columns vary).
func matchLine(text, want string) bool {
	head, tail, found := strings.Cut(want, " .* ")
	for _, line := range strings.SplitAfter(text, "\n") {
		if !found && strings.HasSuffix(line, want) {
			return true
		}
		if found && strings.HasPrefix(line, head) && strings.HasSuffix(line, tail) {
			return true
		}
	}
	return false
}

// Install, use and purge the package on this machine, as a Debian admin
// would: only where that is safe (root, GOSENDMAIL_DEB_INSTALL_TEST=1,
// which .ci/run sets on its throwaway machine, and no other MTA
// installed).
func TestDebianPackageInstall(t *testing.T) {
	if os.Getenv("GOSENDMAIL_DEB_INSTALL_TEST") != "1" || os.Geteuid() != 0 {
		t.Skip("installs system-wide: set GOSENDMAIL_DEB_INSTALL_TEST=1 on a throwaway machine, as root")
	}
	out, _ := exec.Command("dpkg-query", "-W", "-f", "${db:Status-Abbrev} ${Package} ${Provides}\\n").Output()
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "ii ") && strings.Contains(line, "mail-transport-agent") && !strings.Contains(line, " gosendmail ") {
			t.Skipf("another MTA is installed (%s); not replacing it", line)
		}
	}
	deb := buildDeb(t)
	run := func(name string, args ...string) string {
		t.Helper()
		b, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, b)
		}
		return string(b)
	}
	hadAliases := fileExists("/etc/aliases")
	run("dpkg", "-i", deb)
	purged := false
	t.Cleanup(func() {
		if !purged {
			exec.Command("dpkg", "--purge", "gosendmail").Run()
		}
	})

	dropGid := checkSystemPaths(t, "/usr/sbin/sendmail")
	if !fileExists("/etc/aliases") {
		t.Error("postinst left no /etc/aliases")
	}
	// Every installed path has the owner and mode it should.
	checkInstalledModes(t, dropGid)

	// The installed sendmail queues mail from www-data (PHP's user) while
	// no daemon runs (this machine has no systemd)...
	marker := "installed-" + strconv.Itoa(os.Getpid())
	cmd := exec.Command("/usr/sbin/sendmail", "-t", "-i")
	cmd.Stdin = strings.NewReader("To: root\nSubject: " + marker + "\n\nhello\n")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 33, Gid: 33}}
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sendmail as www-data: %v\n%s", err, b)
	}
	ents, err := os.ReadDir("/var/spool/mqueue-client")
	must(t, err)
	if len(ents) != 1 {
		t.Fatalf("maildrop holds %d files, want 1", len(ents))
	}
	// ...and the installed daemon, started as root with the installed
	// configuration, picks it up and delivers it to root's mbox.
	daemon := exec.Command("/usr/sbin/smtpd", "--config", "/etc/mail/gosendmail.toml")
	var dout bytes.Buffer
	daemon.Stdout, daemon.Stderr = &dout, &dout
	daemon.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	must(t, daemon.Start())
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		daemon.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- daemon.Wait() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			syscall.Kill(-daemon.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	t.Cleanup(stop)
	mbox := "/var/mail/root"
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(readFile(mbox), "Subject: "+marker) {
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("the message never reached %s; the daemon said:\n%s", mbox, dout.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if fi, err := os.Stat(mbox); err == nil {
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != 0 || st.Gid != 8 || fi.Mode().Perm() != 0o660 {
			t.Errorf("%s: %d:%d %v, want root:mail 0660", mbox, st.Uid, st.Gid, fi.Mode().Perm())
		}
	}
	stop()
	run("smtpd", "config") // the conffile parses
	if _, err := exec.LookPath("systemd-analyze"); err == nil {
		// The unit's syntax, its command and its documentation pages.
		if b, err := exec.Command("systemd-analyze", "verify", "/lib/systemd/system/gosendmail.service").CombinedOutput(); err != nil || len(b) > 0 {
			t.Errorf("systemd-analyze verify: %v\n%s", err, b)
		}
	}

	run("dpkg", "--purge", "gosendmail")
	purged = true
	for _, p := range []string{"/var/spool/mqueue", "/var/spool/mqueue-client", "/usr/sbin/sendmail", "/etc/mail/gosendmail.toml"} {
		if fileExists(p) {
			t.Errorf("%s is still there after purge", p)
		}
	}
	if _, err := user.Lookup("gosendmail"); err == nil {
		t.Error("the user gosendmail is still there after purge")
	}
	if out, _ := exec.Command("dpkg-statoverride", "--list", "/usr/sbin/sendmail").Output(); len(out) > 0 {
		t.Errorf("statoverride left: %s", out)
	}
	if hadAliases != fileExists("/etc/aliases") && hadAliases {
		t.Error("purge removed an /etc/aliases that was there before")
	}
}

// checkInstalledModes checks the owner and mode of every path the
// package installed (dpkg -L), as the package and postinst set them.
func checkInstalledModes(t *testing.T, dropGID string) {
	t.Helper()
	out, err := exec.Command("dpkg", "-L", "gosendmail").Output()
	must(t, err)
	exec755 := map[string]bool{"/usr/sbin/smtpd": true, "/usr/bin/mailq": true, "/usr/bin/newaliases": true}
	for _, p := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if p == "/." || p == "" {
			continue
		}
		fi, err := os.Lstat(p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		st := fi.Sys().(*syscall.Stat_t)
		owner := strconv.Itoa(int(st.Uid)) + ":" + strconv.Itoa(int(st.Gid))
		want, wantOwner := os.FileMode(0o644), "0:0"
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			continue // /usr/lib/sendmail
		case fi.IsDir():
			want = os.ModeDir | 0o755
		case p == "/usr/sbin/sendmail":
			want, wantOwner = 0o755|os.ModeSetgid, "0:"+dropGID
		case exec755[p]:
			want = 0o755
		}
		if fi.Mode() != want || owner != wantOwner {
			t.Errorf("%s: %v %s, want %v %s", p, fi.Mode(), owner, want, wantOwner)
		}
	}
}

func fileExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// make install for systems without dpkg: the files at the same paths as
// the package's, and (on a throwaway machine, as root) the same system
// steps as postinst, through packaging/setup-system.sh, undone afterwards.
func TestMakeInstall(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	dest := t.TempDir()
	cmd := exec.Command("make", "install", "DESTDIR="+dest, "PREFIX=/usr")
	cmd.Dir = repoRoot()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, b)
	}
	for _, p := range []string{"usr/sbin/sendmail", "usr/sbin/smtpd", "usr/bin/mailq", "usr/bin/newaliases",
		"etc/mail/gosendmail.toml", "lib/systemd/system/gosendmail.service", "usr/share/man/man8/smtpd.8",
		"usr/share/man/man5/gosendmail.toml.5"} {
		if !fileExists(filepath.Join(dest, p)) {
			t.Errorf("make install did not install /%s", p)
		}
	}
	if l, err := os.Readlink(filepath.Join(dest, "usr/lib/sendmail")); err != nil || l != "../sbin/sendmail" {
		t.Errorf("/usr/lib/sendmail: %q %v", l, err)
	}

	if os.Getenv("GOSENDMAIL_DEB_INSTALL_TEST") != "1" || os.Geteuid() != 0 {
		t.Log("the system steps (setup-system.sh) run only with GOSENDMAIL_DEB_INSTALL_TEST=1, as root")
		return
	}
	if _, err := user.Lookup("gosendmail"); err == nil {
		t.Skip("a gosendmail user exists already; not touching this system")
	}
	for _, d := range []string{"/var/spool/mqueue", "/var/spool/mqueue-client"} {
		if fileExists(d) {
			t.Skipf("%s exists already; not touching this system", d)
		}
	}
	t.Cleanup(func() {
		exec.Command("userdel", "gosendmail").Run()
		exec.Command("groupdel", "gosendmail").Run()
		exec.Command("groupdel", "gosendmail-drop").Run()
		os.RemoveAll("/var/spool/mqueue")
		os.RemoveAll("/var/spool/mqueue-client")
	})
	setup := func() *exec.Cmd {
		c := exec.Command("sh", filepath.Join(repoRoot(), "packaging/setup-system.sh"))
		c.Env = append(os.Environ(), "PREFIX="+filepath.Join(dest, "usr"))
		return c
	}
	if b, err := setup().CombinedOutput(); err != nil {
		t.Fatalf("setup-system.sh: %v\n%s", err, b)
	}
	checkSystemPaths(t, filepath.Join(dest, "usr/sbin/sendmail"))
	// Run again: nothing changes, nothing fails.
	if b, err := setup().CombinedOutput(); err != nil {
		t.Fatalf("setup-system.sh, twice: %v\n%s", err, b)
	}
}

// checkSystemPaths checks what postinst and setup-system.sh make: the
// gosendmail user and gosendmail-drop group, the spool and the maildrop
// with their owners and modes, and sendmail (at sendmailPath) setgid to
// the drop group. It returns that group's id.
func checkSystemPaths(t *testing.T, sendmailPath string) (dropGid string) {
	t.Helper()
	u, err := user.Lookup("gosendmail")
	must(t, err)
	g, err := user.LookupGroup("gosendmail-drop")
	must(t, err)
	for _, c := range []struct {
		path         string
		owner, group string
		mode         os.FileMode
	}{
		{"/var/spool/mqueue", u.Uid, u.Gid, os.ModeDir | 0o700},
		{"/var/spool/mqueue-client", u.Uid, g.Gid, os.ModeDir | 0o730},
		{sendmailPath, "0", g.Gid, 0o755 | os.ModeSetgid},
	} {
		fi, err := os.Stat(c.path)
		must(t, err)
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode() != c.mode || strconv.Itoa(int(st.Uid)) != c.owner || strconv.Itoa(int(st.Gid)) != c.group {
			t.Errorf("%s: %v %d:%d, want %v %s:%s", c.path, fi.Mode(), st.Uid, st.Gid, c.mode, c.owner, c.group)
		}
	}
	return g.Gid
}
