package safeio

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"golang.org/x/sys/unix"
)

func ino(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

// newPool is NewPool with no rest: spares are reused at once.
func newPool(t *testing.T, dir string, max int) *Pool {
	t.Helper()
	p, err := NewPool(dir, "rf", 0o600, max)
	if err != nil {
		t.Fatal(err)
	}
	p.rest = 0
	return p
}

func write(t *testing.T, p *Pool, final, content string, replace bool) {
	t.Helper()
	a, err := p.Create(final)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	if replace {
		err = a.Replace()
	} else {
		err = a.Install()
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestPoolReusesInodes(t *testing.T) {
	dir := t.TempDir()
	p := newPool(t, dir, 4)
	a := filepath.Join(dir, "dfA")
	write(t, p, a, "a long first message body", false)
	first := ino(t, a)
	if err := p.Recycle(a); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(a); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("recycled file still at its name: %v", err)
	}
	if p.Spares() != 1 {
		t.Fatalf("spares = %d, want 1", p.Spares())
	}
	// Trim empties the spares: no old message lingers under their names.
	p.Trim()
	if p.Spares() != 1 {
		t.Fatalf("spares after Trim = %d, want 1", p.Spares())
	}
	for _, n := range names(t, dir) {
		if fi, _ := os.Stat(filepath.Join(dir, n)); fi.Size() != 0 {
			t.Fatalf("spare %s holds %d bytes", n, fi.Size())
		}
	}
	b := filepath.Join(dir, "dfB")
	write(t, p, b, "short", false)
	if ino(t, b) != first {
		t.Fatal("the new file did not reuse the spare inode")
	}
	got, _ := os.ReadFile(b)
	if string(got) != "short" {
		t.Fatalf("content %q", got)
	}
	if fi, _ := os.Stat(b); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
}

func TestPoolInstallNeverReplaces(t *testing.T) {
	dir := t.TempDir()
	p := newPool(t, dir, 4)
	final := filepath.Join(dir, "qfX")
	os.WriteFile(final, []byte("theirs"), 0o600)
	a, err := p.Create(final)
	if err != nil {
		t.Fatal(err)
	}
	a.Write([]byte("ours"))
	if err := a.Install(); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Install over an existing file: %v, want ErrExist", err)
	}
	got, _ := os.ReadFile(final)
	if string(got) != "theirs" {
		t.Fatalf("existing file changed to %q", got)
	}
	// The spare went back to the pool, emptied.
	if p.Spares() != 1 {
		t.Fatalf("spares = %d", p.Spares())
	}
}

func TestPoolReplaceKeepsOldInode(t *testing.T) {
	dir := t.TempDir()
	p := newPool(t, dir, 4)
	final := filepath.Join(dir, "qfX")
	write(t, p, final, "version one, longer", false)
	old := ino(t, final)
	write(t, p, final, "version two", true)
	got, _ := os.ReadFile(final)
	if string(got) != "version two" {
		t.Fatalf("content %q", got)
	}
	if p.Spares() != 1 {
		t.Fatalf("the replaced file is not a spare: spares = %d", p.Spares())
	}
	// A third version reuses the first one's inode, truncated.
	write(t, p, final, "3", true)
	if ino(t, final) != old {
		t.Fatal("the replaced inode was not reused")
	}
	got, _ = os.ReadFile(final)
	if string(got) != "3" {
		t.Fatalf("content %q: the recycled file was not cut to length", got)
	}
}

func TestPoolAbortAndLimit(t *testing.T) {
	dir := t.TempDir()
	p := newPool(t, dir, 1)
	a, err := p.Create(filepath.Join(dir, "dfA"))
	if err != nil {
		t.Fatal(err)
	}
	a.Write([]byte("half a message"))
	a.Abort()
	if p.Spares() != 1 {
		t.Fatalf("aborted file not kept: spares = %d", p.Spares())
	}
	for _, n := range []string{"x1", "x2"} {
		write(t, p, filepath.Join(dir, n), "data", false)
	}
	p.Recycle(filepath.Join(dir, "x1"))
	p.Recycle(filepath.Join(dir, "x2"))
	if p.Spares() != 1 {
		t.Fatalf("spares = %d, want the limit 1", p.Spares())
	}
	if got := names(t, dir); len(got) != 1 {
		t.Fatalf("files left: %v, want one spare", got)
	}
	if err := p.Recycle(filepath.Join(dir, "missing")); err != nil {
		t.Fatalf("recycling a missing file: %v", err)
	}
	if _, err := p.Create(filepath.Join(t.TempDir(), "elsewhere")); err == nil {
		t.Fatal("a file outside the pool's directory was accepted")
	}
}

func TestNewPoolAdoptsSpares(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "rf7"), []byte("stale bytes of a crash"), 0o600)
	os.WriteFile(filepath.Join(dir, "rf9"), nil, 0o600)
	os.WriteFile(filepath.Join(dir, "rf12"), nil, 0o600)
	os.WriteFile(filepath.Join(dir, "rf012"), []byte("not ours"), 0o600)
	os.Symlink("/etc/passwd", filepath.Join(dir, "rf3"))
	os.WriteFile(filepath.Join(dir, "qfKEEP"), []byte("a message"), 0o600)
	p := newPool(t, dir, 2)
	if p.Spares() != 2 {
		t.Fatalf("spares = %d, want 2", p.Spares())
	}
	got := names(t, dir)
	if len(got) != 4 { // two spares, rf012, qfKEEP
		t.Fatalf("files: %v", got)
	}
	for _, n := range got {
		fi, err := os.Lstat(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		if n != "qfKEEP" && n != "rf012" && fi.Size() != 0 {
			t.Fatalf("adopted spare %s not emptied", n)
		}
	}
	if b, _ := os.ReadFile("/etc/passwd"); len(b) == 0 {
		t.Fatal("a symlinked spare truncated its target")
	}
	// New names never collide with the adopted ones.
	write(t, p, filepath.Join(dir, "a"), "1", false)
	write(t, p, filepath.Join(dir, "b"), "2", false)
	write(t, p, filepath.Join(dir, "c"), "3", false)
	if _, err := os.Stat(filepath.Join(dir, "rf13")); err == nil {
		t.Fatal("rf13 should have been renamed into place")
	}
}

func TestPoolRest(t *testing.T) {
	dir := t.TempDir()
	p, err := NewPool(dir, "rf", 0o600, 4)
	if err != nil {
		t.Fatal(err)
	}
	a := filepath.Join(dir, "qfA")
	write(t, p, a, "envelope", false)
	old := ino(t, a)
	p.Recycle(a)
	// A reader that opened qfA just before may still be reading it: the
	// spare is not reused before it has rested.
	b := filepath.Join(dir, "qfB")
	write(t, p, b, "other", false)
	if ino(t, b) == old {
		t.Fatal("a spare was reused before its rest")
	}
	p.rest = 0
	c := filepath.Join(dir, "qfC")
	write(t, p, c, "third", false)
	if ino(t, c) != old {
		t.Fatal("a rested spare was not reused")
	}
}

func TestPoolEmptiesBigSpares(t *testing.T) {
	dir := t.TempDir()
	p := newPool(t, dir, 4)
	big := filepath.Join(dir, "dfBig")
	small := filepath.Join(dir, "dfSmall")
	write(t, p, big, string(make([]byte, BigSpare+1)), false)
	write(t, p, small, "small", false)
	p.Recycle(big)
	p.Recycle(small)
	var sizes []int64
	for _, n := range names(t, dir) {
		fi, _ := os.Stat(filepath.Join(dir, n))
		sizes = append(sizes, fi.Size())
	}
	sort.Slice(sizes, func(i, j int) bool { return sizes[i] < sizes[j] })
	if len(sizes) != 2 || sizes[0] != 0 || sizes[1] != 5 {
		t.Fatalf("spare sizes %v, want [0 5]: a big file must free its space at once", sizes)
	}
}
