package aliases

import (
	"bufio"
	"bytes"
	"reflect"
	"strings"
	"testing"
)

var fuzzSeeds = []string{
	"postmaster: root\nMAILER-DAEMON: postmaster\n",
	"# comment\n\"my name\": x, \"y z\"@example.org\n",
	"staff: a,\n\tb, \\\nc\n  # off\n d\n",
	"pager: \"|/usr/bin/page -u, now\", |/bin/true\narchive: /var/mail/a, \"/var/mail/b c\"\n",
	"team: :include:/etc/mail/team, \":include:/my lists/x\"\nowner-team: team-request\n",
	"root: \\root, \\\"x y\"\n",
	"a: #b\n\"#c\": d\n\"|e\": f\n",
	"a: b\nA: c\n",
	"  orphan\nx y: z\n: w\nv:\n\"u: t\nbad: <x@y>, (c), a@b@c\n",
	"a: b\r\n c\r\n\x00\x01\xff\n",
}

func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, _ := Parse("fuzz", bytes.NewReader(data))
		var out bytes.Buffer
		if err := m.Format(&out); err != nil {
			t.Fatal(err)
		}
		m2, errs := Parse("formatted", bytes.NewReader(out.Bytes()))
		if len(errs) > 0 {
			t.Fatalf("formatted map does not parse cleanly: %v\n%s", errs, out.Bytes())
		}
		if !sameAliases(m, m2) {
			t.Fatalf("formatted map differs\ninput:\n%q\nformatted:\n%s", data, out.Bytes())
		}
		var again bytes.Buffer
		m2.Format(&again)
		if !bytes.Equal(out.Bytes(), again.Bytes()) {
			t.Fatalf("Format is not stable:\n%s\n---\n%s", out.Bytes(), again.Bytes())
		}
		// Include files use the same target syntax; they must not panic.
		ParseInclude("fuzz", bytes.NewReader(data))
	})
}

// sameAliases compares names, order and targets; not the statistics, which
// count the text as written.
func sameAliases(a, b *Map) bool {
	if !reflect.DeepEqual(a.order, b.order) || len(a.entries) != len(b.entries) {
		return false
	}
	for name, e := range a.entries {
		e2, ok := b.entries[name]
		if !ok || !reflect.DeepEqual(e.targets, e2.targets) {
			return false
		}
	}
	return true
}

func TestFormat(t *testing.T) {
	in := "Postmaster: root\n" +
		"\"My List\": \\me, a@example.org,\n  \"|/bin/x y\", /tmp/f, \"/tmp/g h\", :include:/l, \":include:/m n\"\n" +
		"\"#hash\": #b\n"
	m, errs := Parse("f", strings.NewReader(in))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var b strings.Builder
	if err := m.Format(&b); err != nil {
		t.Fatal(err)
	}
	want := "postmaster: root\n" +
		"\"my list\": \\me, a@example.org, \"|/bin/x y\", /tmp/f, \"/tmp/g h\", :include:/l,\n\t\":include:/m n\"\n" +
		"\"#hash\": #b\n"
	if b.String() != want {
		t.Errorf("Format:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestFormatVeryLong(t *testing.T) {
	// One target longer than a line may be: Format must cut it with
	// backslash continuations and Parse must join it back.
	long := "/" + strings.Repeat("d", 2*MaxLine)
	in := "a: \\\n"
	for rest := long; rest != ""; {
		n := min(len(rest), MaxLine-1)
		in += rest[:n] + "\\\n"
		rest = rest[n:]
	}
	m, errs := Parse("f", strings.NewReader(in))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var b bytes.Buffer
	m.Format(&b)
	for _, line := range strings.Split(b.String(), "\n") {
		if len(line) > MaxLine {
			t.Fatalf("Format wrote a line of %d bytes", len(line))
		}
	}
	m2, errs := Parse("g", &b)
	if len(errs) > 0 || !sameAliases(m, m2) {
		t.Fatalf("round trip failed: %v", errs)
	}
}

// FuzzParseInclude reads any :include: file (a list member may maintain
// it) and checks that every problem is a *LineError on a line the file
// has, that the targets are well formed, and that the targets written
// back in the file's syntax, on one line, read back the same.
func FuzzParseInclude(f *testing.F) {
	f.Add([]byte("alice, bob@example.org\n# comment\n\\carol, \"|/bin/x y\", /var/mail/f, :include:/etc/l\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ts, errs := ParseInclude("fuzz", bytes.NewReader(data))
		lines := bytes.Count(data, []byte("\n")) + 1
		for _, err := range errs {
			le, ok := err.(*LineError)
			if !ok {
				t.Fatalf("problem of type %T: %v", err, err)
			}
			if le.Line < 1 || le.Line > lines || le.Warning || le.File != "fuzz" {
				t.Fatalf("problem %+v in a file of %d lines", le, lines)
			}
		}
		if len(ts) == 0 {
			return
		}
		// A line starting with '#' is a comment: lead with a plain target.
		parts := []string{"first"}
		for _, tg := range ts {
			if tg.Kind < Address || tg.Kind > Include || tg.Value == "" || tg.NoAlias && tg.Kind != Address {
				t.Fatalf("bad target %+v", tg)
			}
			if (tg.Kind == File || tg.Kind == Include) && !strings.HasPrefix(tg.Value, "/") {
				t.Fatalf("%s target %q is not an absolute path", tg.Kind, tg.Value)
			}
			parts = append(parts, formatTarget(tg))
		}
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		writeLine(w, strings.Join(parts, ", "))
		w.Flush()
		ts2, errs := ParseInclude("formatted", &out)
		if len(errs) > 0 {
			t.Fatalf("formatted targets %q do not parse cleanly: %v", parts, errs)
		}
		if !reflect.DeepEqual(ts2[1:], ts) {
			t.Fatalf("targets %+v written as %q read back as %+v", ts, parts, ts2[1:])
		}
	})
}
