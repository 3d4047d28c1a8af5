package maps

import (
	"os"
	"path/filepath"
	"testing"
)

func TestReadClass(t *testing.T) {
	p := filepath.Join(t.TempDir(), "trusted-users")
	os.WriteFile(p, []byte("# comment\nroot  www-data # web\n\n  smmsp\n"), 0o644)
	c, err := ReadClass(p)
	if err != nil || !c.Has("www-data") || !c.Has("smmsp") || c.Has("#") || c.Has("web") || len(c) != 3 {
		t.Fatalf("%v %v", c, err)
	}
	if c, err := ReadClass(p + ".missing"); err != nil || len(c) != 0 {
		t.Fatal("missing file must be an empty class")
	}
	if !(Class{"Example.ORG": true}).HasFold("example.org") {
		t.Fatal("HasFold")
	}
}
