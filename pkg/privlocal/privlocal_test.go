package privlocal

import (
	"context"
	"errors"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gosendmail/gosendmail/pkg/aliases"
	"github.com/gosendmail/gosendmail/pkg/mailerr"
	"github.com/gosendmail/gosendmail/pkg/transport/local"
	"golang.org/x/sys/unix"
)

// pair serves s on one end of a socket pair and returns a Client on the
// other, as Start would with a child.
func pair(t *testing.T, s *Setup) *Client {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "sock")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		return c.(*net.UnixConn)
	}
	server := conn(fds[1])
	served := make(chan struct{})
	go func() { Serve(server, s); server.Close(); close(served) }()
	c := newClient(conn(fds[0]))
	t.Cleanup(func() { c.Close(); <-served })
	return c
}

type fixture struct {
	dir, out, me string
	setup        *Setup
	msg          *os.File
}

func newFixture(t *testing.T) *fixture {
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	os.Mkdir(out, 0o777)
	os.Mkdir(filepath.Join(dir, "mail"), 0o755)
	m, errs := aliases.Parse("aliases", strings.NewReader("prog: \"|cat > "+out+"/prog.txt\"\nkeep: "+out+"/kept\nlist: :include:"+dir+"/list.inc\n"))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	os.WriteFile(filepath.Join(dir, "list.inc"), []byte("\"|cat > "+out+"/included.txt\"\n"), 0o644)
	ag := &local.Agent{SpoolDir: filepath.Join(dir, "mail"), Hostname: "test.example", AllowRoot: true}
	msgPath := filepath.Join(dir, "df")
	os.WriteFile(msgPath, []byte("Subject: hello\r\n\r\nbody\r\n"), 0o600)
	msg, err := os.Open(msgPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { msg.Close() })
	return &fixture{dir: dir, out: out, me: u.Username, msg: msg, setup: &Setup{
		Agent:   func() *local.Agent { return ag },
		Aliases: func() *aliases.Map { return m },
		Include: func(p string) ([]aliases.Target, error) {
			b, err := os.ReadFile(p)
			ts, _ := aliases.ParseInclude(p, strings.NewReader(string(b)))
			return ts, err
		},
		ProgramUser: func() string { return u.Username },
	}}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestDeliveriesTheAliasFileAllows(t *testing.T) {
	f := newFixture(t)
	c := pair(t, f.setup)
	for _, req := range []local.Request{
		{QueueID: "q1", Sender: "a@example.org", Recipient: f.me, User: f.me, Target: local.Target{Kind: local.Mbox}},
		{QueueID: "q2", Sender: "a@example.org", Recipient: "prog", User: f.me, Target: local.Target{Kind: local.Pipe, Command: "cat > " + f.out + "/prog.txt"}},
		{QueueID: "q3", Sender: "a@example.org", Recipient: "keep", User: f.me, Target: local.Target{Kind: local.File, Path: f.out + "/kept"}},
		{QueueID: "q4", Sender: "a@example.org", Recipient: "list", User: f.me, Target: local.Target{Kind: local.Pipe, Command: "cat > " + f.out + "/included.txt"}},
	} {
		if err := c.Deliver(ctx(t), req, f.msg); err != nil {
			t.Fatalf("%s: %v", req.QueueID, err)
		}
	}
	for _, p := range []string{filepath.Join(f.dir, "mail", f.me), f.out + "/prog.txt", f.out + "/kept", f.out + "/included.txt"} {
		b, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(b), "Subject: hello\n") {
			t.Errorf("%s: %q %v", p, b, err)
		}
	}
}

// A daemon that was taken over cannot make the child run a command, write
// a file or pick a directory of its choosing, nor run as someone else.
func TestRefusesWhatTheAliasFileDoesNot(t *testing.T) {
	f := newFixture(t)
	c := pair(t, f.setup)
	evil := f.out + "/evil"
	for name, req := range map[string]local.Request{
		"command not in aliases": {User: f.me, Target: local.Target{Kind: local.Pipe, Command: "touch " + evil}},
		"file not in aliases":    {User: f.me, Target: local.Target{Kind: local.File, Path: evil}},
		"program as another user": {User: "nobody-else-" + f.me, Target: local.Target{Kind: local.Pipe,
			Command: "cat > " + f.out + "/prog.txt"}},
		"maildir elsewhere": {User: f.me, Target: local.Target{Kind: local.Maildir, Path: evil}},
		"empty command":     {User: f.me, Target: local.Target{Kind: local.Pipe}},
	} {
		err := c.Deliver(ctx(t), req, f.msg)
		var me *mailerr.Error
		if !errors.As(err, &me) || me.Code != 451 || me.Enhanced != "4.3.5" || !me.Temporary ||
			!strings.Contains(me.Msg, "refused by the local delivery agent") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := os.Stat(evil); err == nil {
		t.Fatal("a refused request left a file")
	}
	// The message must be a regular file.
	r, w, _ := os.Pipe()
	defer r.Close()
	defer w.Close()
	err := c.Deliver(ctx(t), local.Request{User: f.me, Target: local.Target{Kind: local.Mbox}}, r)
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a pipe as the message: %v", err)
	}
}

func TestMalformedRequests(t *testing.T) {
	f := newFixture(t)
	c := pair(t, f.setup)
	// No descriptor with a delivery, an unknown kind, and garbage.
	if err := c.call(ctx(t), request{Op: "deliver", User: f.me, Kind: "mbox"}, nil); err == nil ||
		!strings.Contains(err.Error(), "one message descriptor") {
		t.Errorf("no descriptor: %v", err)
	}
	if err := c.call(ctx(t), request{Op: "deliver", User: f.me, Kind: "nosuch"}, f.msg); err == nil ||
		!strings.Contains(err.Error(), "unknown delivery kind") {
		t.Errorf("unknown kind: %v", err)
	}
	if _, err := c.conn.Write([]byte("{not json")); err != nil {
		t.Fatal(err)
	}
	// The server still answers after garbage.
	if err := c.Deliver(ctx(t), local.Request{QueueID: "ok", Sender: "a@b", Recipient: f.me, User: f.me,
		Target: local.Target{Kind: local.Mbox}}, f.msg); err != nil {
		t.Fatalf("after garbage: %v", err)
	}
}

func TestChildGone(t *testing.T) {
	f := newFixture(t)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	cf := os.NewFile(uintptr(fds[0]), "c")
	cc, _ := net.FileConn(cf)
	cf.Close()
	c := newClient(cc.(*net.UnixConn))
	unix.Close(fds[1]) // the child is gone
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed")
	}
	err = c.Deliver(ctx(t), local.Request{User: f.me, Target: local.Target{Kind: local.Mbox}}, f.msg)
	var me *mailerr.Error
	if !errors.As(err, &me) || !me.Temporary || !strings.Contains(me.Msg, "local delivery unavailable") {
		t.Fatalf("%v", err)
	}
}
