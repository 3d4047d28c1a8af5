package local

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

func maildirRequest(acct *Account, path, body string) Request {
	return Request{
		QueueID: "x3N8T4Sn012752", Sender: "alice@example.org", Recipient: "bob@example.org",
		User: "bob", Account: acct, Target: Target{Kind: Maildir, Path: path},
		Body: strings.NewReader(body), Size: int64(len(body)),
	}
}

func TestMaildir(t *testing.T) {
	a := newAgent(t)
	a.Hostname = "mx/1:example"
	acct := testAccount(t)
	ctx := context.Background()
	msg := "Subject: hi\r\n\r\nFrom the start\r\nbye\r\n"
	for range 2 {
		if err := a.Deliver(ctx, maildirRequest(acct, "", msg)); err != nil {
			t.Fatal(err)
		}
	}
	md := filepath.Join(acct.Home, "Maildir")
	ents, err := os.ReadDir(filepath.Join(md, "new"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 2 {
		t.Fatalf("%d files in new/, want 2", len(ents))
	}
	name := regexp.MustCompile(`^\d+\.\d+_\d+\.mx\\0571\\072example$`)
	want := "Return-Path: <alice@example.org>\nSubject: hi\n\nFrom the start\nbye\n"
	for _, e := range ents {
		if !name.MatchString(e.Name()) {
			t.Errorf("file name %q", e.Name())
		}
		p := filepath.Join(md, "new", e.Name())
		if got := readFile(t, p); got != want {
			t.Errorf("%s is %q, want %q", e.Name(), got, want)
		}
		checkOwner(t, p, acct, 0o600)
	}
	for _, sub := range []string{"", "tmp", "new", "cur"} {
		checkOwner(t, filepath.Join(md, sub), acct, 0o700|os.ModeDir)
	}
	if ents, _ := os.ReadDir(filepath.Join(md, "tmp")); len(ents) != 0 {
		t.Errorf("tmp/ not empty: %v", ents)
	}
}

// checkOwner checks mode, and as root the owner, of path; a nil acct
// means us.
func checkOwner(t *testing.T, path string, acct *Account, mode os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&(os.ModeType|os.ModePerm) != mode {
		t.Errorf("%s has mode %v, want %v", path, fi.Mode(), mode)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if acct == nil {
		if int(st.Uid) != os.Geteuid() {
			t.Errorf("%s owned by uid %d, want ours", path, st.Uid)
		}
		return
	}
	if isRoot() && (int(st.Uid) != acct.UID || int(st.Gid) != acct.GID) {
		t.Errorf("%s owned by %d:%d, want %d:%d", path, st.Uid, st.Gid, acct.UID, acct.GID)
	}
}

func TestMaildirConfiguredPath(t *testing.T) {
	a := newAgent(t)
	acct := testAccount(t)
	md := filepath.Join(acct.Home, "mail", "inbox")
	if err := os.Mkdir(filepath.Dir(md), 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chown(filepath.Dir(md), acct.UID, acct.GID)
	if err := a.Deliver(context.Background(), maildirRequest(acct, md, "S: x\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Join(md, "new")); len(ents) != 1 {
		t.Errorf("%d files in new/, want 1", len(ents))
	}
}

func TestMaildirRefusesSymlinks(t *testing.T) {
	acct := testAccount(t)
	elsewhere := t.TempDir()
	for _, link := range []string{"", "new"} {
		t.Run("link at "+link, func(t *testing.T) {
			a := newAgent(t)
			acct := *acct
			acct.Home = t.TempDir()
			os.Chown(acct.Home, acct.UID, acct.GID)
			md := filepath.Join(acct.Home, "Maildir")
			if link == "" {
				os.Symlink(elsewhere, md)
			} else {
				for _, d := range []string{md, md + "/tmp", md + "/cur"} {
					os.Mkdir(d, 0o700)
					os.Chown(d, acct.UID, acct.GID)
				}
				os.Symlink(elsewhere, filepath.Join(md, link))
			}
			e := mailErr(t, a.Deliver(context.Background(), maildirRequest(&acct, "", "x\r\n")), 450, true)
			if !strings.Contains(e.Msg, "symbolic link") {
				t.Errorf("error %q", e.Msg)
			}
			if ents, _ := os.ReadDir(elsewhere); len(ents) != 0 {
				t.Errorf("wrote through the link: %v", ents)
			}
		})
	}
}

func TestMaildirRefusesForeignDirectory(t *testing.T) {
	skipUnlessRoot(t, "only root can give a directory to another user")
	a := newAgent(t)
	acct := testAccount(t)
	md := filepath.Join(acct.Home, "Maildir")
	if err := os.Mkdir(md, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chown(md, acct.UID+1, acct.GID)
	e := mailErr(t, a.Deliver(context.Background(), maildirRequest(acct, "", "x\r\n")), 450, true)
	if !strings.Contains(e.Msg, "owned by uid") {
		t.Errorf("error %q", e.Msg)
	}

	// Nor is a Maildir created where the user could not create it.
	acct.Home = t.TempDir() // root's, 0700
	e = mailErr(t, a.Deliver(context.Background(), maildirRequest(acct, "", "x\r\n")), 451, true)
	if _, err := os.Lstat(filepath.Join(acct.Home, "Maildir")); !os.IsNotExist(err) {
		t.Errorf("Maildir created in a directory the user cannot write (%v)", e)
	}
}

func TestMaildirNoHome(t *testing.T) {
	a := newAgent(t)
	acct := testAccount(t)
	acct.Home = ""
	mailErr(t, a.Deliver(context.Background(), maildirRequest(acct, "", "x\r\n")), 451, true)
}

// Deliveries that race to create a new Maildir all succeed: none sees a
// directory before it has its owner.
func TestMaildirConcurrentCreation(t *testing.T) {
	acct := testAccount(t)
	const n = 10
	errs := make(chan error, n)
	start := make(chan struct{})
	for range n {
		a := newAgent(t) // separate Agents: nothing shared in memory
		go func() {
			<-start
			errs <- a.Deliver(context.Background(), maildirRequest(acct, "", "S: x\r\n\r\nx\r\n"))
		}()
	}
	close(start)
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(acct.Home, "Maildir", "new")); len(ents) != n {
		t.Errorf("%d messages in new/, want %d", len(ents), n)
	}
	if ents, _ := os.ReadDir(acct.Home); len(ents) != 1 {
		t.Errorf("temporary entries left in the home directory: %v", ents)
	}
}
