package maildrop

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzRoundTrip writes a drop file for any envelope values and message
// (the sendmail command copies -f, -N, -V, -R and -B into it as the
// caller typed them) and checks that Open reads back exactly what was
// written; a message that does not end in CRLF must be refused by Commit
// and leave nothing behind.
func FuzzRoundTrip(f *testing.F) {
	f.Add("a b@example.org", true, "8BITMIME", "x+2By", "HDRS", "SUCCESS,DELAY", "r@x", "\x00%", int64(1767225600),
		[]byte("Subject: hi\r\n\r\nbody\r\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, sender string, senderSet bool, bodyType, envID, ret, notify, rcpt1, rcpt2 string, created int64, msg []byte) {
		env := &Envelope{
			Created: time.Unix(created, 0), Sender: sender, SenderSet: senderSet,
			BodyType: bodyType, EnvID: envID, Ret: ret,
		}
		for _, a := range []string{rcpt1, rcpt2} {
			if a != "" {
				env.Rcpts = append(env.Rcpts, Rcpt{Addr: a, Notify: notify})
			}
		}
		w, err := Create(dir, env)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, w.ID)
		defer os.Remove(path)
		if n, err := w.Write(msg); err != nil || n != len(msg) {
			t.Fatalf("Write: %d, %v", n, err)
		}
		err = w.Commit()
		if !bytes.HasSuffix(msg, []byte("\r\n")) {
			if err == nil {
				t.Fatal("Commit took a message that does not end in CRLF")
			}
			if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("refused drop file left behind: %v", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Commit: %v", err)
		}
		d, err := Open(path)
		// (Create replaces a zero time, year 1, with the current time.)
		if env.Created.Unix() < 0 || len(env.Rcpts) == 0 {
			// A negative time or no recipient is not a valid drop file:
			// the reader must say so, not guess.
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open of an invalid envelope %+v: %v", env, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer d.Close()
		want := *env
		if !senderSet {
			want.Sender = ""
		}
		got := d.Envelope
		if got.ID != "" || !got.Created.Equal(want.Created) || got.Sender != want.Sender || got.SenderSet != want.SenderSet ||
			got.BodyType != want.BodyType || got.EnvID != want.EnvID || got.Ret != want.Ret || len(got.Rcpts) != len(want.Rcpts) {
			t.Fatalf("read back %+v, wrote %+v", got, want)
		}
		for i := range got.Rcpts {
			if got.Rcpts[i] != want.Rcpts[i] {
				t.Fatalf("recipient %d read back %+v, wrote %+v", i, got.Rcpts[i], want.Rcpts[i])
			}
		}
		body, err := io.ReadAll(d.Message())
		if err != nil || !bytes.Equal(body, msg) || d.Size != int64(len(msg)) {
			t.Fatalf("message read back %q (size %d, %v), wrote %q", body, d.Size, err, msg)
		}
		if d.UID != os.Getuid() {
			t.Fatalf("UID %d", d.UID)
		}
	})
}
