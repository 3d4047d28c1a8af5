package safeio

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestCommitAndAbort(t *testing.T) {
	dir := t.TempDir()
	final := filepath.Join(dir, "qfX")
	err := WriteFile(filepath.Join(dir, "tfX"), final, 0o600, func(w io.Writer) error {
		_, err := io.WriteString(w, "hello\n")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(final)
	if string(b) != "hello\n" {
		t.Fatalf("content %q", b)
	}
	a, err := Create(filepath.Join(dir, "tfX"), final, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	a.Write([]byte("other"))
	a.Abort()
	b, _ = os.ReadFile(final)
	if string(b) != "hello\n" {
		t.Fatalf("abort changed the file: %q", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "tfX")); !os.IsNotExist(err) {
		t.Fatal("temporary file left behind")
	}
}

func TestCreateExclusive(t *testing.T) {
	dir := t.TempDir()
	a, err := Create(filepath.Join(dir, "tf1"), filepath.Join(dir, "qf1"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Abort()
	if _, err := Create(filepath.Join(dir, "tf1"), filepath.Join(dir, "qf1"), 0o600); err == nil {
		t.Fatal("second writer with the same temporary name must fail")
	}
	if _, err := Create(filepath.Join(dir, "sub", "tf1"), filepath.Join(dir, "qf1"), 0o600); err == nil {
		t.Fatal("temporary file in another directory must be refused")
	}
}
