package importmc

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gosendmail/gosendmail/pkg/config"
)

// FuzzImportMC runs the m4 reader and the translation over any .mc and
// opendkim.conf and checks that it never panics, that every report line
// is one line that names the file, and that output, whenever there is
// some, loads with config.Load as the daemon would read it.
func FuzzImportMC(f *testing.F) {
	for _, dir := range []string{"debian", "user", "singlekey"} {
		mc, err := os.ReadFile(filepath.Join("testdata", dir, "sendmail.mc"))
		if err != nil {
			f.Fatal(err)
		}
		conf, _ := os.ReadFile(filepath.Join("testdata", dir, "opendkim.conf"))
		f.Add(mc, conf)
	}
	path := filepath.Join(f.TempDir(), "gosendmail.toml")
	f.Fuzz(func(t *testing.T, mc, conf []byte) {
		res, err := Convert(mc, Options{
			Source:       "/etc/mail/sendmail.mc",
			OpenDKIMConf: "/etc/opendkim.conf",
			ReadFile:     func(string) ([]byte, error) { return conf, nil },
			Now:          fixedNow,
		})
		if err != nil {
			if !errors.Is(err, ErrNotMC) {
				t.Fatalf("unexpected error: %v", err)
			}
			return
		}
		for _, it := range res.Items {
			s := it.String()
			if strings.ContainsAny(s, "\n\r") || !strings.HasPrefix(s, it.File) || it.Line < 0 {
				t.Fatalf("bad report line %q", s)
			}
		}
		if len(res.TOML) == 0 {
			return
		}
		if err := os.WriteFile(path, res.TOML, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := config.Load(path, true); err != nil {
			t.Fatalf("output does not load: %v\n%s", err, res.TOML)
		}
	})
}
