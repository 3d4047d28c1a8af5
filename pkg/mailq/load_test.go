package mailq

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/gosendmail/gosendmail/pkg/spool"
)

// loadQueued reads files itself for speed; it must agree with spool's
// own Read, Size and Locked.
func TestLoadMatchesSpool(t *testing.T) {
	f := newFixture(t)
	defer f.standard()()
	items, warns, err := LoadMTA(f.mta)
	if err != nil || len(warns) != 0 {
		t.Fatal(err, warns)
	}
	envs, errs := f.q.Scan()
	if len(errs) != 0 || len(envs) != len(items) {
		t.Fatalf("%d envelopes, %d items, %v", len(envs), len(items), errs)
	}
	for i, env := range envs {
		want := FromEnvelope(env, f.q.Size(env.ID), f.q.Locked(env.ID))
		if !reflect.DeepEqual(items[i], want) {
			t.Errorf("item %d:\n got %+v\nwant %+v", i, items[i], want)
		}
	}
}

// A qf whose df is gone is a message being removed by hand ("rm *ID"
// removes df first): skipped, not warned about.
func TestLoadHandRemoval(t *testing.T) {
	f := newFixture(t)
	f.add(&spool.Envelope{ID: "6AQ3n0LQ012206", Created: t0, UID: -1,
		Rcpts: []spool.Recipient{{Addr: "x@example.net", State: spool.Pending}}}, "abc\r\n")
	os.Remove(f.q.DataPath("6AQ3n0LQ012206"))
	items, warns, err := LoadMTA(f.mta)
	if err != nil || len(warns) != 0 || len(items) != 0 {
		t.Errorf("items %v, warns %v, err %v", items, warns, err)
	}
}

// writeQueue fills dir with n deferred messages the fast way (no fsync):
// the files are what spool.Queue.Create writes.
func writeQueue(tb testing.TB, dir string, n int) {
	tb.Helper()
	body := []byte("Subject: x\r\n\r\nhello\r\n")
	for i := 0; i < n; i++ {
		at := t0.Add(time.Duration(i) * time.Second)
		env := &spool.Envelope{ID: spool.NewID(at), Created: at, Sender: "www-data@example.org", UID: 33, User: "www-data",
			Attempts: 1, Priority: 30000 + int64(i), Status: "Deferred: Connection refused by mx.example.net.",
			Rcpts: []spool.Recipient{{Addr: fmt.Sprintf("u%d@example.net", i), State: spool.Pending}}}
		if err := os.WriteFile(filepath.Join(dir, "df"+env.ID), body, 0o600); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "qf"+env.ID), env.Marshal(), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkList100k is the listing of a queue of 100,000 messages, which
// must stay well under 3 s: go test -run NONE -bench List100k ./pkg/mailq/
func BenchmarkList100k(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "mqueue")
	os.Mkdir(dir, 0o755)
	writeQueue(b, dir, 100_000)
	b.ResetTimer()
	for range b.N {
		items, warns, err := LoadMTA(dir)
		if err != nil || len(warns) != 0 || len(items) != 100_000 {
			b.Fatalf("%d items, %v %v", len(items), warns, err)
		}
		if err := Print(io.Discard, nil, &Section{Dir: dir, Items: items}, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
