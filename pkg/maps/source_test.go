package maps

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestReadSource(t *testing.T) {
	in := "# comment\n" +
		"\n" +
		"   \t\n" +
		"  # indented comment\n" +
		"Joe@Bar.COM\terror:nouser 550 No such user here\n" +
		"  spaced   value with  inner  spaces  \t\n" +
		"crlf@x.org target\r\n" +
		"tabbed\t\t\tTarget#notacomment\n" +
		"last no-newline"
	got, err := ReadSource("f", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{5, "joe@bar.com", "error:nouser 550 No such user here"},
		{6, "spaced", "value with  inner  spaces"},
		{7, "crlf@x.org", "target"},
		{8, "tabbed", "Target#notacomment"},
		{9, "last", "no-newline"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestReadSourceBadLines(t *testing.T) {
	long := strings.Repeat("k", MaxKey+1)
	in := "good1 v\n" +
		"novalue\n" + // 2
		"nul v\x00x\n" + // 3
		"ctl v\x01x\n" + // 4
		long + " v\n" + // 5
		"huge " + strings.Repeat("v", MaxLine) + "\n" + // 6
		"cr in\rmiddle\n" + // 7
		"del v\x7f\n" + // 8
		"good2 v\n" + // 9
		strings.Repeat("k", MaxKey) + " fits\n" + // 10
		"exact " + strings.Repeat("v", MaxLine-len("exact ")) + "\r\n" // 11
	got, err := ReadSource("/etc/mail/x", strings.NewReader(in))
	var keys []string
	for _, e := range got {
		keys = append(keys, e.Key[:min(len(e.Key), 5)])
	}
	if !reflect.DeepEqual(keys, []string{"good1", "good2", "kkkkk", "exact"}) {
		t.Errorf("kept %v", keys)
	}
	probs := Problems(err)
	wantLines := []int{2, 3, 4, 5, 6, 7, 8}
	if len(probs) != len(wantLines) {
		t.Fatalf("%d problems, want %d: %v", len(probs), len(wantLines), err)
	}
	for i, p := range probs {
		var le *LineError
		if !errors.As(p, &le) || le.Line != wantLines[i] || le.File != "/etc/mail/x" || le.Warning {
			t.Errorf("problem %d: %v", i, p)
		}
		if !strings.HasPrefix(p.Error(), "/etc/mail/x: line ") {
			t.Errorf("message shape: %q", p.Error())
		}
	}
	for i, frag := range []string{"no value", "NUL", "0x01", "key longer", "line longer", "0x0d", "0x7f"} {
		if !strings.Contains(probs[i].Error(), frag) {
			t.Errorf("problem %d = %q, want %q in it", i, probs[i], frag)
		}
	}
}

func TestReadSourceLongLineThenMore(t *testing.T) {
	// A line far longer than the buffer must not swallow the next one.
	in := "a " + strings.Repeat("x", 3*MaxLine) + "\nb v\n"
	got, err := ReadSource("f", strings.NewReader(in))
	if len(got) != 1 || got[0].Key != "b" || got[0].Line != 2 || len(Problems(err)) != 1 {
		t.Fatalf("%+v %v", got, err)
	}
}

func TestMissingFileIsEmpty(t *testing.T) {
	p := filepath.Join(t.TempDir(), "none")
	v, err := LoadVirtusertable(p)
	if err != nil || v.Len() != 0 {
		t.Errorf("virtusertable: %v %v", v, err)
	}
	a, err := LoadAccess(p)
	if err != nil || a.Len() != 0 {
		t.Errorf("access: %v %v", a, err)
	}
	m, err := LoadMailertable(p)
	if err != nil || m.Len() != 0 {
		t.Errorf("mailertable: %v %v", m, err)
	}
}

func TestDuplicateKeyIsWarningFirstWins(t *testing.T) {
	v, err := ParseVirtusertable("vt", strings.NewReader("a@x.org one\nA@X.org two\n"))
	probs := Problems(err)
	if len(probs) != 1 || !IsWarning(probs[0]) || fatal(err) {
		t.Fatalf("%v", err)
	}
	if want := "vt: line 2: Warning: duplicate key \"a@x.org\" (line 1 wins)"; probs[0].Error() != want {
		t.Errorf("%q", probs[0])
	}
	if r, _ := v.Lookup("a@x.org"); r.Target != "one" {
		t.Errorf("got %q", r.Target)
	}
}

func TestLowerASCII(t *testing.T) {
	for in, want := range map[string]string{"": "", "abc": "abc", "AbC@X.ORG": "abc@x.org", "É\xffZ": "É\xffz"} {
		if got := lowerASCII(in); got != want {
			t.Errorf("%q: %q", in, got)
		}
	}
}
