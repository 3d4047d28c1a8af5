package maildrop

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, dir string, env *Envelope, msg string) string {
	t.Helper()
	w, err := Create(dir, env)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, msg)
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, w.ID)
}

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	env := &Envelope{Sender: "a b@example.org", SenderSet: true, BodyType: "8BITMIME",
		Rcpts: []Rcpt{{Addr: "x@example.net"}, {Addr: "-weird@example.net", Notify: "NEVER"}}}
	msg := "Subject: hi\r\n\r\nbody\r\n.\r\n"
	p := write(t, dir, env, msg)
	d, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	got, _ := io.ReadAll(d.Message())
	if string(got) != msg || d.Sender != env.Sender || !d.SenderSet || len(d.Rcpts) != 2 || d.Rcpts[1].Notify != "NEVER" || d.UID != os.Getuid() {
		t.Fatalf("got %+v %q", d.Envelope, got)
	}
	ents, errs := List(dir)
	if len(ents) != 1 || len(errs) != 0 || ents[0].Size != int64(len(msg)) {
		t.Fatalf("list: %v %v", ents, errs)
	}
	ents[0].Close()
}

func TestIncompleteAndHostile(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(dir, &Envelope{Rcpts: []Rcpt{{Addr: "x"}}})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Subject: x\r\n\r\nhalf")
	if _, err := Open(filepath.Join(dir, w.ID)); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("unfinished file: %v", err)
	}
	if err := w.Commit(); err == nil {
		t.Fatal("a message not ending in CRLF must not commit")
	}
	if _, err := os.Stat(filepath.Join(dir, w.ID)); !os.IsNotExist(err) {
		t.Fatal("aborted file left behind")
	}

	good := write(t, dir, &Envelope{Rcpts: []Rcpt{{Addr: "x"}}}, "A: b\r\n\r\nc\r\n")
	data, _ := os.ReadFile(good)
	bad := map[string]string{
		"truncated":   string(data[:len(data)-4]) + "\n",
		"extra":       string(data) + "x\n",
		"version":     strings.Replace(string(data), "VD1", "VD9", 1),
		"raw control": strings.Replace(string(data), "R x\n", "R x\x01\n", 1),
		"no rcpt":     strings.Replace(string(data), "R x\n", "", 1),
	}
	for name, content := range bad {
		p := filepath.Join(dir, "bad")
		os.WriteFile(p, []byte(content), 0o744)
		os.Chmod(p, 0o744)
		if _, err := Open(p); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v", name, err)
		}
	}
	link := filepath.Join(dir, "link")
	os.Symlink(good, link)
	if _, err := Open(link); !errors.Is(err, ErrCorrupt) {
		t.Errorf("symlink: %v", err)
	}
	hard := filepath.Join(dir, "hard")
	os.Link(good, hard)
	if _, err := Open(hard); !errors.Is(err, ErrCorrupt) {
		t.Errorf("hard link: %v", err)
	}
}

func FuzzOpen(f *testing.F) {
	f.Add([]byte("VD1\nT1\nSa@b\nR x@y\nD\nA: b\r\n\r\nc\r\n.11\n"))
	f.Add([]byte("VD1\nT1\nR%20 x\nD\n\r\n.2\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "x")
		os.Remove(p)
		if err := os.WriteFile(p, data, 0o744); err != nil {
			t.Skip()
		}
		os.Chmod(p, 0o744)
		d, err := Open(p)
		if err != nil {
			return
		}
		defer d.Close()
		msg, err := io.ReadAll(d.Message())
		if err != nil || int64(len(msg)) != d.Size || d.Size > int64(len(data)) {
			t.Fatalf("message window wrong: %v %d %d", err, len(msg), d.Size)
		}
	})
}
