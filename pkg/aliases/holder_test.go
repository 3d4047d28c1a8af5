package aliases

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestHolder(t *testing.T) {
	var h Holder
	if h.Get() == nil || h.Get().Len() != 0 {
		t.Fatal("a new Holder does not hold an empty map")
	}
	var warnings []string
	h.Warn = func(err error) { warnings = append(warnings, err.Error()) }

	p := filepath.Join(t.TempDir(), "aliases")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a: b\n")
	if err := h.Reload(p); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.Get().Lookup("a"); !ok {
		t.Fatal("the good file was not taken into use")
	}

	// A bad line keeps the last good map, and every bad line is reported.
	write("a: c\nx y\n: z\n")
	err := h.Reload(p)
	if err == nil {
		t.Fatal("Reload took a file with bad lines")
	}
	if lines := strings.Split(err.Error(), "\n"); len(lines) != 2 || !strings.Contains(lines[0], "line 2") || !strings.Contains(lines[1], "line 3") {
		t.Errorf("error = %q, want one line per bad line", err)
	}
	if ts, _ := h.Get().Lookup("a"); ts[0].Value != "b" {
		t.Errorf("the map in force changed to %v", ts)
	}

	// A missing file too.
	os.Remove(p)
	if err := h.Reload(p); err == nil {
		t.Fatal("Reload of a missing file succeeded")
	}
	if h.Get().Len() != 1 {
		t.Error("the map in force was lost")
	}

	// Warnings alone do not stop a reload; they go to Warn.
	write("a: d\na: e\n")
	if err := h.Reload(p); err != nil {
		t.Fatal(err)
	}
	if ts, _ := h.Get().Lookup("a"); ts[0].Value != "e" {
		t.Errorf("got %v after a reload with a duplicate", ts)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "duplicate alias name a") {
		t.Errorf("warnings = %q", warnings)
	}
}

func TestHolderConcurrent(t *testing.T) {
	var h Holder
	p := filepath.Join(t.TempDir(), "aliases")
	os.WriteFile(p, []byte("a: b\n"), 0o644)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				h.Reload(p)
				h.Get().Lookup("a")
			}
		})
	}
	wg.Wait()
}
