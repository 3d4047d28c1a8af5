package local

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func fileRequest(acct *Account, path, body string) Request {
	return Request{
		QueueID: "x3N8T4Sn012752", Sender: "alice@example.org", Recipient: "archive@example.org",
		User: "archiver", Account: acct, Target: Target{Kind: File, Path: path},
		Body: strings.NewReader(body), Size: int64(len(body)),
	}
}

// userDir is a directory the account may create files in.
func userDir(t *testing.T, acct *Account) string {
	dir := t.TempDir()
	os.Chown(dir, acct.UID, acct.GID)
	return dir
}

func TestFileTarget(t *testing.T) {
	a := newAgent(t)
	acct := testAccount(t)
	path := filepath.Join(userDir(t, acct), "archive")
	ctx := context.Background()
	for range 2 {
		if err := a.Deliver(ctx, fileRequest(acct, path, "Subject: x\r\n\r\nFrom here\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	one := "From alice@example.org Sun Nov 29 07:45:00 2026\nReturn-Path: <alice@example.org>\nSubject: x\n\n>From here\n\n"
	if got := readFile(t, path); got != one+one {
		t.Errorf("file is %q", got)
	}
	if isRoot() {
		checkOwner(t, path, acct, 0o600)
	} else {
		checkOwner(t, path, nil, 0o600)
	}
	if _, err := os.Lstat(path + ".lock"); !os.IsNotExist(err) {
		t.Error("dot-lock left behind")
	}
}

func TestFileTargetRefusals(t *testing.T) {
	ctx := context.Background()
	acct := testAccount(t)
	a := newAgent(t)
	dir := userDir(t, acct)

	victim := filepath.Join(t.TempDir(), "victim")
	mustWrite(t, victim, "x")
	link := filepath.Join(dir, "link")
	os.Symlink(victim, link)
	e := mailErr(t, a.Deliver(ctx, fileRequest(acct, link, "y\r\n")), 450, true)
	if !strings.Contains(e.Msg, "symbolic link") || readFile(t, victim) != "x" {
		t.Errorf("symlinked file target: %v", e)
	}

	for _, p := range []string{"relative", "/a/../etc/passwd", "/"} {
		mailErr(t, a.Deliver(ctx, fileRequest(acct, p, "y\r\n")), 451, true)
	}

	// Never as root by default, whoever we are.
	root := &Account{UID: 0, GID: 0, Home: "/root"}
	p := filepath.Join(dir, "as-root")
	e = mailErr(t, a.Deliver(ctx, fileRequest(root, p, "y\r\n")), 451, true)
	if !strings.Contains(e.Msg, "as root refused") {
		t.Errorf("error %q", e.Msg)
	}
	if _, err := os.Lstat(p); !os.IsNotExist(err) {
		t.Error("file created as root")
	}

	// /dev/null swallows mail, as in sendmail.
	if err := a.Deliver(ctx, fileRequest(acct, "/dev/null", "y\r\n")); err != nil {
		t.Error(err)
	}
}

func TestFileTargetAsUserWhenRoot(t *testing.T) {
	skipUnlessRoot(t, "root must stand in for the user's permissions")
	ctx := context.Background()
	acct := testAccount(t)
	a := newAgent(t)

	// A directory the user cannot write: no file is created there.
	p := filepath.Join(t.TempDir(), "x")
	mailErr(t, a.Deliver(ctx, fileRequest(acct, p, "y\r\n")), 451, true)
	if _, err := os.Lstat(p); !os.IsNotExist(err) {
		t.Error("file created where the user may not create files")
	}

	// Someone else's file is not written.
	p = filepath.Join(userDir(t, acct), "other")
	mustWrite(t, p, "")
	mailErr(t, a.Deliver(ctx, fileRequest(acct, p, "y\r\n")), 450, true)

	// AllowRoot permits root's own files.
	a.AllowRoot = true
	if err := a.Deliver(ctx, fileRequest(&Account{UID: 0, GID: 0}, p, "y\r\n")); err != nil {
		t.Error(err)
	}
}
