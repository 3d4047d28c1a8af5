package maps

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// recorder collects what a Watched reports.
type recorder struct {
	mu      sync.Mutex
	errs    []string
	reloads int
}

func (r *recorder) opts(interval time.Duration) WatchOptions {
	return WatchOptions{
		Interval: interval,
		OnError: func(err error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.errs = append(r.errs, err.Error())
		},
		OnReload: func(string) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.reloads++
		},
	}
}

// take returns and forgets the errors so far.
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.errs
	r.errs = nil
	return e
}

var age atomic.Int64

// writeOld writes a file whose mtime lies in the past, so that a check
// takes it at first sight; each write gets its own mtime.
func writeOld(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour - time.Duration(age.Add(1))*time.Second)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
}

func target(w *Watched[*Virtusertable], addr string) string {
	r, ok := w.Get().Lookup(addr)
	if !ok {
		return "-"
	}
	return r.Target
}

func TestWatchReloadsAChangedFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "virtusertable")
	writeOld(t, p, "a@x.org one\n")
	var rec recorder
	w := WatchVirtusertable(p, rec.opts(-1))
	if got := target(w, "a@x.org"); got != "one" || rec.reloads != 0 || len(rec.take()) != 0 {
		t.Fatalf("first load: %q, %d reloads", got, rec.reloads)
	}
	w.Check()
	if rec.reloads != 0 {
		t.Error("reloaded an unchanged file")
	}
	writeOld(t, p, "a@x.org two\n")
	w.Check()
	if got := target(w, "a@x.org"); got != "two" || rec.reloads != 1 {
		t.Fatalf("after edit: %q, %d reloads", got, rec.reloads)
	}
	// Same size, same mtime, new inode: a file renamed into place.
	tmp := p + ".new"
	writeOld(t, tmp, "a@x.org six\n")
	fi, _ := os.Stat(p)
	os.Chtimes(tmp, fi.ModTime(), fi.ModTime())
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	w.Check()
	if got := target(w, "a@x.org"); got != "six" {
		t.Fatalf("after rename: %q", got)
	}
	if w.Path() != p {
		t.Error(w.Path())
	}
}

func TestWatchKeepsLastGoodVersion(t *testing.T) {
	p := filepath.Join(t.TempDir(), "virtusertable")
	writeOld(t, p, "a@x.org one\n")
	var rec recorder
	w := WatchVirtusertable(p, rec.opts(-1))
	writeOld(t, p, "a@x.org two\nnoat value\nb@x.org error:bogus\n")
	w.Check()
	if got := target(w, "a@x.org"); got != "one" {
		t.Fatalf("bad edit took effect: %q", got)
	}
	errs := rec.take()
	if len(errs) != 3 ||
		!strings.HasPrefix(errs[0], p+": line 2: ") ||
		!strings.HasPrefix(errs[1], p+": line 3: ") ||
		!strings.Contains(errs[2], "not reloaded") || !strings.Contains(errs[2], "stays in force") {
		t.Fatalf("reported %q", errs)
	}
	w.Check()
	if errs := rec.take(); len(errs) != 0 {
		t.Errorf("reported again: %q", errs)
	}
	writeOld(t, p, "a@x.org three\n")
	w.Check()
	if got := target(w, "a@x.org"); got != "three" || rec.reloads != 1 {
		t.Fatalf("fixed file: %q, %d reloads", got, rec.reloads)
	}
}

func TestWatchFirstLoadWithErrors(t *testing.T) {
	p := filepath.Join(t.TempDir(), "access")
	writeOld(t, p, "Connect:10 RELAY\nConnect:11 BOGUS\n")
	var rec recorder
	w := WatchAccess(p, rec.opts(-1))
	if act, ok := w.Get().Connect(netip.MustParseAddr("10.0.0.1"), ""); !ok || act.Kind != ActionRelay {
		t.Error("the good line is not in force")
	}
	errs := rec.take()
	if len(errs) != 2 || !strings.HasPrefix(errs[0], p+": line 2: unknown value") || !strings.Contains(errs[1], "left out") {
		t.Errorf("reported %q", errs)
	}
}

func TestWatchWarningsDoNotBlock(t *testing.T) {
	p := filepath.Join(t.TempDir(), "mailertable")
	writeOld(t, p, "x.example esmtp:a\n")
	var rec recorder
	w := WatchMailertable(p, rec.opts(-1))
	writeOld(t, p, "x.example esmtp:b\nX.example esmtp:c\n")
	w.Check()
	if r, _ := w.Get().Lookup("x.example"); r.Host != "b" {
		t.Errorf("host %q", r.Host)
	}
	if errs := rec.take(); len(errs) != 1 || !strings.Contains(errs[0], "Warning: duplicate key") {
		t.Errorf("reported %q", errs)
	}
}

func TestWatchWaitsForAFreshFileToSettle(t *testing.T) {
	p := filepath.Join(t.TempDir(), "virtusertable")
	writeOld(t, p, "a@x.org one\n")
	var rec recorder
	w := WatchVirtusertable(p, rec.opts(-1))
	if err := os.WriteFile(p, []byte("a@x.org two\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w.Check()
	if got := target(w, "a@x.org"); got != "one" {
		t.Fatalf("took a file that may still be being written: %q", got)
	}
	w.Check()
	if got := target(w, "a@x.org"); got != "two" {
		t.Fatalf("unchanged on the second look, still not taken: %q", got)
	}
}

func TestWatchMissingFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "local-host-names")
	var rec recorder
	w := WatchClass(p, rec.opts(-1))
	if len(w.Get()) != 0 || len(rec.take()) != 0 {
		t.Fatal("missing file is an empty class without complaint")
	}
	writeOld(t, p, "example.org\n")
	w.Check()
	if !w.Get().Has("example.org") {
		t.Fatal("created file not loaded")
	}
	os.Remove(p)
	w.Check()
	if !w.Get().Has("example.org") {
		t.Fatal("a file that vanished for one look was dropped at once (editors rename it away for a moment)")
	}
	w.Check()
	if len(w.Get()) != 0 {
		t.Fatal("a removed file must leave an empty class")
	}
	if errs := rec.take(); len(errs) != 0 {
		t.Errorf("reported %q", errs)
	}
}

func TestWatchUnreadableFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "virtusertable")
	if err := os.Mkdir(p, 0o755); err != nil {
		t.Fatal(err)
	}
	var rec recorder
	w := WatchVirtusertable(p, rec.opts(-1))
	if w.Get() == nil || w.Get().Len() != 0 {
		t.Fatal("an unreadable file starts as an empty, usable map")
	}
	errs := rec.take()
	if len(errs) != 2 || !strings.Contains(errs[0], "not a regular file") || !strings.Contains(errs[1], "empty map") {
		t.Fatalf("reported %q", errs)
	}
	w.Check()
	if errs := rec.take(); len(errs) != 0 {
		t.Errorf("reported again: %q", errs)
	}
	os.Remove(p)
	writeOld(t, p, "a@x.org one\n")
	w.Check()
	if got := target(w, "a@x.org"); got != "one" {
		t.Fatalf("readable now: %q", got)
	}
}

func TestWatchStatErrorKeepsVersion(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sub")
	os.Mkdir(dir, 0o755)
	p := filepath.Join(dir, "virtusertable")
	writeOld(t, p, "a@x.org one\n")
	var rec recorder
	w := WatchVirtusertable(p, rec.opts(-1))
	// Make the path unusable without the file being "missing":
	// a file where its directory was gives ENOTDIR.
	os.RemoveAll(dir)
	writeOld(t, dir, "not a directory\n")
	w.Check()
	w.Check()
	if got := target(w, "a@x.org"); got != "one" {
		t.Fatalf("lost the map: %q", got)
	}
	if errs := rec.take(); len(errs) != 2 || !strings.Contains(errs[1], "stays in force") {
		t.Errorf("reported %q", errs)
	}
}

func TestWatchReloadMethod(t *testing.T) {
	p := filepath.Join(t.TempDir(), "virtusertable")
	writeOld(t, p, "a@x.org one\n")
	var rec recorder
	w := WatchVirtusertable(p, rec.opts(-1))
	writeOld(t, p, "a@x.org two\nbad\n")
	err := w.Reload()
	if err == nil || !strings.Contains(err.Error(), p+": line 2: ") || target(w, "a@x.org") != "one" {
		t.Fatalf("Reload: %v, %q", err, target(w, "a@x.org"))
	}
	w.Check()
	if errs := rec.take(); len(errs) != 0 {
		t.Errorf("Reload's errors went to OnError too: %q", errs)
	}
	writeOld(t, p, "a@x.org three\n")
	if err := w.Reload(); err != nil || target(w, "a@x.org") != "three" {
		t.Fatalf("Reload: %v", err)
	}
}

func TestWatchGetLooksOncePerInterval(t *testing.T) {
	p := filepath.Join(t.TempDir(), "virtusertable")
	writeOld(t, p, "a@x.org one\n")
	var rec recorder
	w := WatchVirtusertable(p, rec.opts(time.Hour))
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	w.now = func() time.Time { return time.Unix(0, clock.Load()) }
	// Written now, not in the past: the clock below makes it old enough.
	os.WriteFile(p, []byte("a@x.org two\n"), 0o644)
	if got := target(w, "a@x.org"); got != "one" {
		t.Fatalf("looked before the interval was up: %q", got)
	}
	clock.Add(int64(2 * time.Hour))
	if got := target(w, "a@x.org"); got != "two" {
		t.Fatalf("did not look after the interval: %q", got)
	}
	os.WriteFile(p, []byte("a@x.org three\n"), 0o644)
	clock.Add(int64(30 * time.Minute))
	if got := target(w, "a@x.org"); got != "two" {
		t.Fatalf("looked again too soon: %q", got)
	}
}

// TestWatchConcurrentReaders runs readers against a file that keeps
// changing; with -race it checks that readers and reloads do not share
// anything unguarded.
func TestWatchConcurrentReaders(t *testing.T) {
	p := filepath.Join(t.TempDir(), "virtusertable")
	writeOld(t, p, "a@x.org t0\n")
	w := WatchVirtusertable(p, WatchOptions{Interval: time.Nanosecond})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if r, ok := w.Get().Lookup("a@x.org"); !ok || !strings.HasPrefix(r.Target, "t") {
					t.Errorf("lookup: %+v %v", r, ok)
					return
				}
			}
		}()
	}
	for i := 1; i <= 50; i++ {
		tmp := p + ".tmp"
		writeOld(t, tmp, "a@x.org t"+strings.Repeat("x", i)+"\n")
		os.Rename(tmp, p)
		w.Check()
	}
	close(stop)
	wg.Wait()
	if got := target(w, "a@x.org"); got != "t"+strings.Repeat("x", 50) {
		t.Errorf("last version not in force: %q", got)
	}
}
