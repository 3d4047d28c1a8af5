package spool

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestIDShape(t *testing.T) {
	tm := time.Date(2019, 3, 2, 15, 39, 32, 0, time.UTC)
	if got := FormatID(tm, 61, 10569); got != "x22FdW11010569" {
		t.Fatalf("FormatID = %q", got)
	}
	// The example from CONTRACT.md: x22FdWV1010569 is 2019-03-02 15:39:32.
	got, ok := IDTime("x22FdWV1010569", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if !ok || !got.Equal(tm) {
		t.Fatalf("IDTime = %v %v", got, ok)
	}
	seen := map[string]bool{}
	for i := 0; i < 3000; i++ {
		id := NewID(time.Now())
		if !ValidID(id) || len(id) != IDLen {
			t.Fatalf("bad id %q", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
	}
	for _, bad := range []string{"", "../../etc/pas", "x22FdWV101056a", "x22FdWV10105699", "y22FdWV1010569"} {
		if ValidID(bad) {
			t.Errorf("ValidID(%q)", bad)
		}
	}
}

func sample() *Envelope {
	return &Envelope{
		Created: time.Unix(1795664940, 0), Priority: 30512, Sender: "www-data@example.org",
		UID: 33, User: "www-data", BodyType: "8BITMIME", Status: "Deferred: Connection refused by mx.example.net.",
		Rcpts: []Recipient{
			{Addr: "x@example.net", State: Pending, Notify: "FAILURE", Done: []string{"mbox:root", "pipe:nobody:/usr/bin/x y"}},
			{Addr: "Y Two <y2@example.net>", State: Sent},
			{Addr: "100%\r\nevil@example.net", State: Failed, Reason: "550 5.1.1 no"},
		},
	}
}

func TestQfRoundTrip(t *testing.T) {
	e := sample()
	data := e.Marshal()
	if bytes.Count(data, []byte("\n")) != 16 {
		t.Fatalf("unexpected layout:\n%s", data)
	}
	got, err := Unmarshal("x", data)
	if err != nil {
		t.Fatal(err)
	}
	got.ID = ""
	if !bytes.Equal(got.Marshal(), data) {
		t.Fatalf("round trip differs:\n%s\n%s", got.Marshal(), data)
	}
	if got.Rcpts[2].Addr != "100%\r\nevil@example.net" {
		t.Fatalf("escaping lost data: %q", got.Rcpts[2].Addr)
	}
}

func TestQfStrict(t *testing.T) {
	good := string(sample().Marshal())
	bad := []string{
		"",
		strings.Replace(good, "V1\n", "V2\n", 1),
		good[:len(good)-1], // no final newline
		good + "S x\n",     // data after trailer
		strings.Replace(good, "T1795664940\n", "", 1),      // missing T and wrong trailer
		strings.Replace(good, "Swww-data", "Swww data", 1), // raw space: length differs too
		strings.Replace(good, "P30512\n", "X30512\n", 1),
	}
	for i, b := range bad {
		if _, err := Unmarshal("x", []byte(b)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("case %d: got %v, want ErrCorrupt", i, err)
		}
	}
}

func TestCreateReadRemove(t *testing.T) {
	q := Open(t.TempDir())
	e := sample()
	if err := q.Create(e, strings.NewReader("Subject: x\r\n\r\nbody\r\n")); err != nil {
		t.Fatal(err)
	}
	if !ValidID(e.ID) {
		t.Fatalf("id %q", e.ID)
	}
	got, err := q.Read(e.ID)
	if err != nil || got.Sender != e.Sender {
		t.Fatalf("read: %v %+v", err, got)
	}
	if q.Size(e.ID) != 20 {
		t.Fatalf("size %d", q.Size(e.ID))
	}
	unlock, err := q.Lock(e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !q.Locked(e.ID) {
		t.Fatal("Locked should see the lock")
	}
	if _, err := q.Lock(e.ID); !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: %v", err)
	}
	unlock()
	got.Hold = "spam?"
	if err := q.Update(got); err != nil {
		t.Fatal(err)
	}
	envs, errs := q.Scan()
	if len(envs) != 1 || len(errs) != 0 || envs[0].Hold != "spam?" {
		t.Fatalf("scan: %v %v", envs, errs)
	}
	if err := q.Remove(e.ID); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(q.Dir); len(ents) != 0 {
		t.Fatalf("left behind: %v", ents)
	}
	if _, err := q.Read(e.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("read after remove: %v", err)
	}
}

func TestCorruptSetAside(t *testing.T) {
	q := Open(t.TempDir())
	e := sample()
	if err := q.Create(e, strings.NewReader("x\r\n")); err != nil {
		t.Fatal(err)
	}
	other := sample()
	if err := q.Create(other, strings.NewReader("y\r\n")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(q.Dir, "qf"+e.ID), []byte("V1\ngarbage\n"), 0o600)
	envs, errs := q.Scan()
	if len(envs) != 1 || len(errs) != 1 || !strings.Contains(errs[0].Error(), "Qf"+e.ID) {
		t.Fatalf("scan: %v %v", envs, errs)
	}
	if _, err := os.Stat(filepath.Join(q.Dir, "Qf"+e.ID)); err != nil {
		t.Fatal("corrupt file not set aside")
	}
}

// Deleting the files by hand, df first as "rm *ID" does, makes the message
// disappear for readers at once.
func TestHandDelete(t *testing.T) {
	q := Open(t.TempDir())
	e := sample()
	q.Create(e, strings.NewReader("x\r\n"))
	os.Remove(q.DataPath(e.ID))
	if envs, errs := q.Scan(); len(envs) != 0 || len(errs) != 0 {
		t.Fatalf("half-deleted message visible: %v %v", envs, errs)
	}
}

func FuzzUnmarshal(f *testing.F) {
	f.Add(sample().Marshal())
	f.Add([]byte("V1\nT1\nS\nU-1 \nRP   a \n.25\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Unmarshal("x", data)
		if err != nil {
			return
		}
		// Whatever parses must write back to something that parses the same.
		e2, err := Unmarshal("x", e.Marshal())
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if !bytes.Equal(e.Marshal(), e2.Marshal()) {
			t.Fatal("not stable")
		}
	})
}

// A qf that sendmail 8 left in the same directory is not ours to set
// aside: it waits, untouched, for mailq import.
func TestSendmailQfLeftAlone(t *testing.T) {
	dir := t.TempDir()
	q := Open(dir)
	id := "x22FdWV1010569"
	qf := "V8\nT1551541172\nSroot\nRPFD:rcpt@example.org\nH?F?From: root\n.\n"
	os.WriteFile(filepath.Join(dir, "qf"+id), []byte(qf), 0o600)
	os.WriteFile(filepath.Join(dir, "df"+id), []byte("body\n"), 0o600)
	if _, err := q.Read(id); !errors.Is(err, ErrSendmail) {
		t.Fatalf("Read: %v, want ErrSendmail", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "qf"+id)); err != nil || string(b) != qf {
		t.Fatalf("the sendmail qf was touched: %q %v", b, err)
	}
	if n := q.CleanTemp(0); n != 0 {
		t.Fatalf("CleanTemp removed %d files", n)
	}
}

func TestMark8Bit(t *testing.T) {
	for in, want := range map[string]string{"plain ascii\r\n": "", "caf\xc3\xa9\r\n": "8BITMIME"} {
		env := &Envelope{}
		if b, _ := io.ReadAll(Mark8Bit(strings.NewReader(in), env)); string(b) != in || env.BodyType != want {
			t.Errorf("%q: %q, body type %q, want %q", in, b, env.BodyType, want)
		}
	}
	env := &Envelope{BodyType: "7BIT"}
	io.ReadAll(Mark8Bit(strings.NewReader("caf\xc3\xa9"), env))
	if env.BodyType != "7BIT" {
		t.Errorf("a named body type was changed to %q", env.BodyType)
	}
}
