package test

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"
)

// fuzzInventory lists the parsers of untrusted bytes and the fuzz targets
// that cover them, by package directory. make fuzz runs whatever targets
// exist; this list makes a removed or renamed one noticed.
var fuzzInventory = map[string][]string{
	// SMTP clients.
	"pkg/smtpd": {"FuzzSession"},
	// Addresses from -f, argv and headers.
	"pkg/envelope": {"FuzzParseList", "FuzzCheckMailbox", "FuzzListRoundTrip"},
	// Messages from local programs, and sendmail -t.
	"pkg/sendmail": {"FuzzMessage", "FuzzExtractRecipients"},
	// Drop files, written by any local user through setgid sendmail.
	"pkg/maildrop": {"FuzzOpen", "FuzzRoundTrip"},
	// qf files.
	"pkg/spool": {"FuzzUnmarshal", "FuzzMarshal", "FuzzEscape"},
	// /etc/aliases and :include: files (a list owner's).
	"pkg/aliases": {"FuzzParse", "FuzzParseInclude"},
	// Class files, virtusertable, access, mailertable.
	"pkg/maps": {"FuzzClass", "FuzzVirtusertable", "FuzzAccess", "FuzzMailertable"},
	// KeyTable and SigningTable, DKIM key records from DNS, From: fields.
	"pkg/dkim": {"FuzzTables", "FuzzParseKeyRecord", "FuzzAuthorOf"},
	// gosendmail.toml.
	"pkg/config": {"FuzzParse"},
	// Bounces: the original message and the remote server's reply.
	"pkg/dsn": {"FuzzBuild"},
	// Requests on the control socket, from any local user.
	"pkg/control": {"FuzzRequest"},
	// Authentication-Results fields in received mail; SPF, DKIM and
	// DMARC records in DNS.
	"pkg/authres": {"FuzzRewrite", "FuzzCheck"},
	// Messages written into mailboxes.
	"pkg/transport/local": {"FuzzCopyMessage"},
	// sendmail 8's queue files, taken in by mailq import.
	"pkg/sendmailq": {"FuzzParseQf"},
	// sendmail.mc and opendkim.conf, read by smtpd import-mc.
	"pkg/importmc": {"FuzzImportMC"},
	// What a milter answers (another program, maybe broken), and the
	// message header it is given.
	"pkg/milter": {"FuzzFilterSession"},
}

var fuzzFuncRe = regexp.MustCompile(`(?m)^func (Fuzz\w*)\(\w+ \*testing\.F\)`)

// fuzzTargets finds every fuzz target under root/pkg by scanning the test
// files: package directory (relative, slash-separated) to target names.
func fuzzTargets(t *testing.T, root string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	err := filepath.WalkDir(filepath.Join(root, "pkg"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "testdata" {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		for _, m := range fuzzFuncRe.FindAllSubmatch(src, -1) {
			out[rel] = append(out[rel], string(m[1]))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// fuzzRepoRoot is the repository this file is in.
func fuzzRepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// TestFuzzInventory checks that every parser of untrusted bytes still has
// its fuzz targets, that every fuzz target has a committed seed corpus
// (testdata/fuzz/<target>/, read by plain go test too), and that no
// corpus is left over from a target that is gone.
func TestFuzzInventory(t *testing.T) {
	root := fuzzRepoRoot()
	found := fuzzTargets(t, root)

	var dirs []string
	for dir := range fuzzInventory {
		dirs = append(dirs, dir)
	}
	sort.Strings(dirs)
	for _, dir := range dirs {
		have := map[string]bool{}
		for _, name := range found[dir] {
			have[name] = true
		}
		for _, want := range fuzzInventory[dir] {
			if !have[want] {
				t.Errorf("%s: fuzz target %s is missing (the package parses untrusted input; see fuzzInventory)", dir, want)
			}
		}
	}

	total := 0
	for dir, names := range found {
		seen := map[string]bool{}
		for _, name := range names {
			seen[name] = true
			n := checkFuzzCorpus(t, filepath.Join(root, dir, "testdata", "fuzz", name), dir+" "+name)
			total += n
		}
		// A corpus without its target is dead weight, or a sign the
		// target was renamed and lost its seeds.
		ents, err := os.ReadDir(filepath.Join(root, dir, "testdata", "fuzz"))
		if err != nil && !os.IsNotExist(err) {
			t.Error(err)
		}
		for _, e := range ents {
			if !seen[e.Name()] {
				t.Errorf("%s/testdata/fuzz/%s: corpus of no fuzz target", dir, e.Name())
			}
		}
	}
	if len(found) == 0 || total == 0 {
		t.Fatalf("no fuzz targets or corpus found under %s/pkg", root)
	}
}

// checkFuzzCorpus checks one target's corpus directory and returns how many
// entries it holds: at least one, each in the format go test reads, and
// small.
func checkFuzzCorpus(t *testing.T, dir, what string) int {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Errorf("%s: no committed corpus: %v", what, err)
		return 0
	}
	n := 0
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if !e.Type().IsRegular() {
			t.Errorf("%s: %s is not a regular file", what, p)
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Error(err)
			continue
		}
		if !bytes.HasPrefix(b, []byte("go test fuzz v1\n")) {
			t.Errorf("%s: %s is not a \"go test fuzz v1\" file", what, p)
		}
		if len(b) > 16<<10 {
			t.Errorf("%s: %s is %d bytes; keep the committed corpus small", what, p, len(b))
		}
		n++
	}
	if n == 0 {
		t.Errorf("%s: corpus directory %s is empty", what, dir)
	}
	return n
}
