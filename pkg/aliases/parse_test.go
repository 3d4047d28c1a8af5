package aliases

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

func addr(v string) Target    { return Target{Kind: Address, Value: v} }
func noalias(v string) Target { return Target{Kind: Address, Value: v, NoAlias: true} }
func file(v string) Target    { return Target{Kind: File, Value: v} }
func pipe(v string) Target    { return Target{Kind: Pipe, Value: v} }
func include(v string) Target { return Target{Kind: Include, Value: v} }

func TestParseGood(t *testing.T) {
	tests := []struct {
		name string
		in   string
		key  string
		want []Target
	}{
		{"simple", "postmaster: root\n", "postmaster", []Target{addr("root")}},
		{"case folded", "MAILER-DAEMON: postmaster\n", "mailer-daemon", []Target{addr("postmaster")}},
		{"no space after colon", "a:b\n", "a", []Target{addr("b")}},
		{"space before colon", "a : b\n", "a", []Target{addr("b")}},
		{"remote", "a: bob@example.org\n", "a", []Target{addr("bob@example.org")}},
		{"domain literal", "a: bob@[192.0.2.1]\n", "a", []Target{addr("bob@[192.0.2.1]")}},
		{"list", "a: b, c ,d\n", "a", []Target{addr("b"), addr("c"), addr("d")}},
		{"trailing comma", "a: b, c,\n", "a", []Target{addr("b"), addr("c")}},
		{"empty items", "a: b,, c\n", "a", []Target{addr("b"), addr("c")}},
		{"quoted name", "\"My Name\": x\n", "my name", []Target{addr("x")}},
		{"quoted name with colon", "\"a:b\": x\n", "a:b", []Target{addr("x")}},
		{"quoted name escape", `"a\"b": x` + "\n", `a"b`, []Target{addr("x")}},
		{"utf8 name", "jürgen: j\n", "jürgen", []Target{addr("j")}},
		{"noalias", "root: \\root, admin\n", "root", []Target{noalias("root"), addr("admin")}},
		{"noalias quoted", "a: \\\"john smith\"\n", "a", []Target{noalias(`"john smith"`)}},
		{"file", "a: /var/mail/archive\n", "a", []Target{file("/var/mail/archive")}},
		{"quoted file", "a: \"/var/mail/my archive\"\n", "a", []Target{file("/var/mail/my archive")}},
		{"pipe", "a: |/usr/bin/procmail\n", "a", []Target{pipe("/usr/bin/procmail")}},
		{"quoted pipe", "a: \"|/usr/bin/vacation -a x, y\"\n", "a", []Target{pipe("/usr/bin/vacation -a x, y")}},
		{"quoted pipe blanks", "a: \"| cmd \"\n", "a", []Target{pipe("cmd")}},
		{"include", "a: :include:/etc/mail/a.list\n", "a", []Target{include("/etc/mail/a.list")}},
		{"include space", "a: :include: /etc/mail/a.list\n", "a", []Target{include("/etc/mail/a.list")}},
		{"include upper", "a: :INCLUDE:/x\n", "a", []Target{include("/x")}},
		{"quoted include", "a: \":include:/my lists/a\"\n", "a", []Target{include("/my lists/a")}},
		{"quoted local part", "a: \"john smith\"@example.org\n", "a", []Target{addr(`"john smith"@example.org`)}},
		{"quoted comma", "a: \"x,y\"@example.org, z\n", "a", []Target{addr(`"x,y"@example.org`), addr("z")}},
		{"tab continuation", "a: b,\n\tc\n", "a", []Target{addr("b"), addr("c")}},
		{"space continuation", "a: b,\n   c,\n d\n", "a", []Target{addr("b"), addr("c"), addr("d")}},
		{"comment inside entry", "a: b,\n# c,\n  d\n", "a", []Target{addr("b"), addr("d")}},
		{"indented comment", "a: b,\n  # c,\n  d\n", "a", []Target{addr("b"), addr("d")}},
		{"blank inside entry", "a: b,\n\n  d\n", "a", []Target{addr("b"), addr("d")}},
		{"backslash continuation", "a: b, \\\nc\n", "a", []Target{addr("b"), addr("c")}},
		{"backslash inside a word", "a: bo\\\nb\n", "a", []Target{addr("bob")}},
		{"backslash at EOF", "a: b\\", "a", []Target{addr("b")}},
		{"crlf", "a: b,\r\n c\r\n", "a", []Target{addr("b"), addr("c")}},
		{"no final newline", "a: b", "a", []Target{addr("b")}},
		{"hash in target", "a: #b\n", "a", []Target{addr("#b")}},
		{"owner", "owner-list: list-request\n", "owner-list", []Target{addr("list-request")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, errs := Parse("aliases", strings.NewReader(tt.in))
			if len(errs) > 0 {
				t.Fatalf("errors: %v", errs)
			}
			got, ok := m.Lookup(tt.key)
			if !ok {
				t.Fatalf("no alias %q", tt.key)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if m.Len() != 1 {
				t.Errorf("Len = %d, want 1", m.Len())
			}
		})
	}
}

func TestParseBad(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // the whole error messages, in order
	}{
		{"missing colon", "a b\n", []string{"f: line 1: missing colon after the alias name"}},
		{"empty name", ": b\n", []string{"f: line 1: missing alias name before the colon"}},
		{"empty quoted name", "\"\": b\n", []string{"f: line 1: empty alias name"}},
		{"name with spaces", "my name: b\n", []string{`f: line 1: alias name "my name" has spaces: put it in double quotes`}},
		{"name with domain", "a@example.org: b\n", []string{`f: line 1: alias name "a@example.org" is not a local name: leave out the @domain`}},
		{"name is a file", "/x: b\n", []string{`f: line 1: alias name "/x" cannot start with "/"`}},
		{"name bad char", "a<b: c\n", []string{`f: line 1: bad character '<' in alias name "a<b"`}},
		{"text after quoted name", "\"a\"b: c\n", []string{`f: line 1: bad alias name "a"b: text after the closing quote`}},
		{"empty value", "a:\n", []string{"f: line 1: missing value for alias a"}},
		{"blank value", "a:  ,  \n", []string{"f: line 1: missing value for alias a"}},
		{"unbalanced in value", "a: \"|cmd\n", []string{"f: line 1: unbalanced quotes"}},
		{"unbalanced on continuation", "a: b,\n  \"c\n", []string{"f: line 2: unbalanced quotes"}},
		{"unbalanced in name", "\"a: b\n", []string{"f: line 1: unbalanced quotes"}},
		{"display name", "a: Some Name <x@example.org>\n", []string{`f: line 1: bad address "Some Name <x@example.org>": display names and <> are not allowed in aliases`}},
		{"quoted display name", "a: \"Some Name\" <x@example.org>\n", []string{`f: line 1: bad address "\"Some Name\" <x@example.org>": display names and <> are not allowed in aliases`}},
		{"angle addr", "a: <x@example.org>\n", []string{`f: line 1: bad address "<x@example.org>": display names and <> are not allowed in aliases`}},
		{"comment in address", "a: x@example.org(me)\n", []string{`f: line 1: bad address "x@example.org(me)": (comments) are not allowed in aliases`}},
		{"group", "a: g:x@y;\n", []string{`f: line 1: bad address "g:x@y;"`}},
		{"bad address", "a: x..y\n", []string{`f: line 1: bad address "x..y"`}},
		{"no local part", "a: @example.org\n", []string{`f: line 1: bad address "@example.org"`}},
		{"lone backslash", "a: \\\n", []string{"f: line 1: missing value for alias a"}},
		{"backslash space", "a: \\ , b\n", []string{"f: line 1: missing address after the backslash"}},
		{"backslash pipe", "a: \\|cmd\n", []string{`f: line 1: "\\|cmd": a backslash can only stand before an address`}},
		{"empty pipe", "a: |\n", []string{`f: line 1: "|": no command after the |`}},
		{"unquoted pipe args", "a: |/bin/cmd arg\n", []string{`f: line 1: "|/bin/cmd arg": put a pipe target with spaces, quotes or backslashes in double quotes`}},
		{"relative include", "a: :include:lists/a\n", []string{`f: line 1: ":include:lists/a": the file to include must be an absolute path`}},
		{"empty include", "a: :include:\n", []string{`f: line 1: ":include:": the file to include must be an absolute path`}},
		{"orphan continuation", "  a: b\n\tc\nd: e\n", []string{"f: line 1: line starts with a space or tab but there is no alias before it to continue"}},
		{"nul", "a: b\x00c\n", []string{"f: line 1: NUL byte"}},
		{"control", "a: b\x01c\n", []string{"f: line 1: control character 0x01"}},
		{"lone cr", "a: b\rc\n", []string{"f: line 1: control character 0x0d"}},
		{"del", "a: b\x7f\n", []string{"f: line 1: control character 0x7f"}},
		{"invalid utf8", "a: b\xff\n", []string{"f: line 1: invalid UTF-8"}},
		{"control on continuation", "a: b,\n c\x02\n", []string{"f: line 2: control character 0x02"}},
		{"two bad targets", "a: x y,\n <z>\n", []string{
			`f: line 1: bad address "x y": spaces must be inside double quotes`,
			`f: line 2: bad address "<z>": display names and <> are not allowed in aliases`,
		}},
		{"bad name and bad target", "a b: <c>\n", []string{
			`f: line 1: alias name "a b" has spaces: put it in double quotes`,
			`f: line 1: bad address "<c>": display names and <> are not allowed in aliases`,
		}},
		{"all reported", "a b\nok: x\n: y\nc:\n", []string{
			"f: line 1: missing colon after the alias name",
			"f: line 3: missing alias name before the colon",
			"f: line 4: missing value for alias c",
		}},
		{"duplicate", "a: b\nA: c\n", []string{"f: line 2: Warning: duplicate alias name a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := Parse("f", strings.NewReader(tt.in))
			var got []string
			for _, err := range errs {
				got = append(got, err.Error())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestBadEntryLeftOut(t *testing.T) {
	m, errs := Parse("f", strings.NewReader("a: b, <c>\nd: e\n"))
	if len(errs) != 1 {
		t.Fatalf("errors: %v", errs)
	}
	if _, ok := m.Lookup("a"); ok {
		t.Error("an entry with a bad target is in the map")
	}
	if _, ok := m.Lookup("d"); !ok {
		t.Error("the good entry after a bad one is missing")
	}
}

func TestDuplicateLastWins(t *testing.T) {
	m, errs := Parse("f", strings.NewReader("a: b\nA: c\n"))
	if len(errs) != 1 || !IsWarning(errs[0]) {
		t.Fatalf("errors: %v, want one warning", errs)
	}
	got, _ := m.Lookup("a")
	if !reflect.DeepEqual(got, []Target{addr("c")}) {
		t.Errorf("got %v, want the last definition", got)
	}
	if n, _, _ := m.Stats(); n != 1 || m.Len() != 1 {
		t.Errorf("Stats n = %d, Len = %d, want 1", n, m.Len())
	}
}

func TestLongLines(t *testing.T) {
	long := strings.Repeat("x", MaxLine-len("a: "))
	in := "a: " + long + "\n" + // exactly MaxLine: fine
		"b: " + long + "y\n" + // one byte too many
		"  c,\n" + // continues the bad entry: no more noise
		"# " + strings.Repeat("z", MaxLine) + "\\\n" + // a long comment that continues
		"d: e\n" + // ... onto this line
		"f: g\n"
	m, errs := Parse("f", strings.NewReader(in))
	want := []string{
		"f: line 2: line longer than 65536 bytes",
		"f: line 4: line longer than 65536 bytes",
	}
	var got []string
	for _, err := range errs {
		got = append(got, err.Error())
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("errors:\n got %q\nwant %q", got, want)
	}
	for name, want := range map[string]bool{"a": true, "b": false, "d": false, "f": true} {
		if _, ok := m.Lookup(name); ok != want {
			t.Errorf("Lookup(%q) found = %v, want %v", name, ok, want)
		}
	}
}

func TestReadError(t *testing.T) {
	boom := errors.New("boom")
	_, errs := Parse("f", iotest.ErrReader(boom))
	var pe *fs.PathError
	if len(errs) != 1 || !errors.As(errs[0], &pe) || pe.Path != "f" || !errors.Is(errs[0], boom) {
		t.Errorf("errors = %v, want one *fs.PathError for f wrapping boom", errs)
	}
}

func TestLookupReturnsCopy(t *testing.T) {
	m, _ := Parse("f", strings.NewReader("a: b\n"))
	got, _ := m.Lookup("A")
	got[0].Value = "changed"
	if again, _ := m.Lookup("a"); again[0].Value != "b" {
		t.Error("changing Lookup's result changed the map")
	}
	var nilMap *Map
	if _, ok := nilMap.Lookup("a"); ok || nilMap.Len() != 0 {
		t.Error("a nil map is not empty")
	}
}

func TestStats(t *testing.T) {
	// Counted as sendmail counts: the right-hand side from its first
	// non-blank byte, continuation lines with their leading blanks and
	// without line breaks; total adds the names.
	in := "postmaster: root\n" + // rhs "root": 4, name 10
		"staff: alice,\n\tbob \n" + // rhs "alice,\tbob ": 11, name 5
		"\"my list\": x, \\\ny\n" + // rhs "x, y": 4, name 7
		"# comment\n"
	m, errs := Parse("f", strings.NewReader(in))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	n, longest, total := m.Stats()
	if n != 3 || longest != 11 || total != 4+10+11+5+4+7 {
		t.Errorf("Stats = %d, %d, %d; want 3, 11, 41", n, longest, total)
	}
}

func TestOwner(t *testing.T) {
	m, errs := Parse("f", strings.NewReader(
		"team: a, b\nowner-team: alice@example.org\n"+
			"big: a\nOwner-Big: x, y\n"+
			"prog: a\nowner-prog: \"|/bin/owner\"\n"))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for _, tt := range []struct {
		list, want string
		ok         bool
	}{
		{"team", "alice@example.org", true},
		{"TEAM", "alice@example.org", true},
		{"big", "owner-big", true},
		{"prog", "owner-prog", true},
		{"nobody", "", false},
	} {
		got, ok := m.Owner(tt.list)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Owner(%q) = %q, %v; want %q, %v", tt.list, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseInclude(t *testing.T) {
	in := "# members\nalice, bob@example.org\n\n  carol\n\"|/bin/x y\", /tmp/f\n<bad>, dave\n"
	got, errs := ParseInclude("list", strings.NewReader(in))
	want := []Target{addr("alice"), addr("bob@example.org"), addr("carol"), pipe("/bin/x y"), file("/tmp/f"), addr("dave")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("targets:\n got %+v\nwant %+v", got, want)
	}
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "list: line 6: bad address \"<bad>\"") {
		t.Errorf("errors = %v", errs)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "aliases")
	if err := os.WriteFile(p, []byte("a: b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if m, errs := Load(p); len(errs) > 0 || m.Len() != 1 {
		t.Errorf("Load = %v, %v", m, errs)
	}
	m, errs := Load(filepath.Join(dir, "missing"))
	if m != nil || len(errs) != 1 || !errors.Is(errs[0], fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, %v", m, errs)
	}
}
