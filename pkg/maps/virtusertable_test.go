package maps

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseMapError(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // Reply(), or "!" + part of the error
	}{
		{"nouser 550 No such user here", "550 5.1.1 No such user here"},
		{"nouser", "550 5.1.1 User unknown"},
		{"NOUSER:550 go away", "550 5.1.1 go away"},
		{`nouser "550 quoted text"`, "550 5.1.1 quoted text"},
		{"nouser 450 try later", "450 4.1.1 try later"},
		{"nohost", "550 5.1.2 Host unknown"},
		{"tempfail", "450 4.0.0 Deferred"},
		{"unavailable 554 closed", "554 5.0.0 closed"},
		{"5.7.0:550 Address invalid", "550 5.7.0 Address invalid"},
		{"4.2.2:450 mailbox full", "450 4.2.2 mailbox full"},
		{`5.7.0:"550 Address invalid"`, "550 5.7.0 Address invalid"},
		{"5.7.0:Address invalid", "550 5.7.0 Address invalid"},
		{"4.2.2:mailbox full", "450 4.2.2 mailbox full"},
		{"550 Go away", "550 5.0.0 Go away"},
		{"450 later", "450 4.0.0 later"},
		{"550 5.7.1 Go away", "550 5.7.1 Go away"},
		{`"550 Go away"`, "550 5.0.0 Go away"},
		{"5.1.1:550", "550 5.1.1"},
		{"", "!needs a status"},
		{"Mailbox closed", "!needs a status"},
		{"nouserr 550 typo", "!needs a status"},
		{"5.7.0:450 mismatch", "!disagree"},
		{"4.2.2:550 mismatch", "!disagree"},
		{"5.7.0:250 ok", "!not a refusal"},
		{"250 ok", "!not a refusal"},
		{"5.7:550 short", "!bad status"},
		{"5.7.0 550 no colon", "!followed by a colon"},
		{"5.7.0:550 5.7.1 two", "!two statuses"},
		{"2.0.0:550 x", "!disagree"},
	} {
		r, err := parseMapError(tc.in)
		if strings.HasPrefix(tc.want, "!") {
			if err == nil || !strings.Contains(err.Error(), tc.want[1:]) {
				t.Errorf("%q: got %v, %v; want error with %q", tc.in, r, err, tc.want[1:])
			}
			continue
		}
		if err != nil || r.Reply() != tc.want {
			t.Errorf("%q: got %v %v, want %q", tc.in, r, err, tc.want)
		}
	}
}

// The example of cf/README (FEATURE virtusertable) and REFERENCE.md §3.
const virtExample = `# cf/README
info@foo.com	foo-info
info@bar.com	bar-info
joe@bar.com	error:nouser 550 No such user here
jax@bar.com	error:5.7.0:550 Address invalid
@baz.org	jane@example.net
@foo.org	%1@example.com
old+*@foo.org	new+%2@example.com
gen+*@foo.org	%2@example.com
+*@foo.org	%1%3@example.com
X++@foo.org	Z%3@example.com
@bar.org	%1%3
full@ex.org	error:4.2.2:450 mailbox full
literal+tag@ex.org	tagged
key@ex.org	%0
`

func TestVirtusertableLookup(t *testing.T) {
	v, err := ParseVirtusertable("virtusertable", strings.NewReader(virtExample))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addr, target, reply, key string
	}{
		{"info@foo.com", "foo-info", "", "info@foo.com"},
		{"INFO@Foo.COM", "foo-info", "", "info@foo.com"},
		{"info@foo.com.", "foo-info", "", "info@foo.com"},
		{"info@bar.com", "bar-info", "", "info@bar.com"},
		{"joe@bar.com", "", "550 5.1.1 No such user here", "joe@bar.com"},
		{"jax@bar.com", "", "550 5.7.0 Address invalid", "jax@bar.com"},
		{"full@ex.org", "", "450 4.2.2 mailbox full", "full@ex.org"},
		{"anyone@baz.org", "jane@example.net", "", "@baz.org"},
		{"someone@foo.org", "someone@example.com", "", "@foo.org"},
		{"Someone@foo.org", "Someone@example.com", "", "@foo.org"},
		{"old+x@foo.org", "new+x@example.com", "", "old+*@foo.org"},
		{"old+@foo.org", "new+@example.com", "", "old+*@foo.org"},
		{"old@foo.org", "old@example.com", "", "@foo.org"},
		{"gen+Abc@foo.org", "Abc@example.com", "", "gen+*@foo.org"},
		{"x+y@foo.org", "Z+y@example.com", "", "x++@foo.org"},
		{"x+@foo.org", "x+@example.com", "", "+*@foo.org"}, // ++ needs a detail
		{"someone+tag@foo.org", "someone+tag@example.com", "", "+*@foo.org"},
		{"a@bar.org", "a", "", "@bar.org"},
		{"a+b@bar.org", "a+b", "", "@bar.org"},
		{"literal+tag@ex.org", "tagged", "", "literal+tag@ex.org"},
		{"key@ex.org", "key@ex.org", "", "key@ex.org"},
		{"+lead@foo.org", "+lead@example.com", "", "@foo.org"}, // '+' first is not a detail
	} {
		r, ok := v.Lookup(tc.addr)
		if !ok {
			t.Errorf("%s: no match", tc.addr)
			continue
		}
		reply := ""
		if r.Error != nil {
			reply = r.Error.Reply()
		}
		if r.Target != tc.target || reply != tc.reply || r.Key != tc.key {
			t.Errorf("%s: got %q %q key %q, want %q %q key %q", tc.addr, r.Target, reply, r.Key, tc.target, tc.reply, tc.key)
		}
	}
	for _, addr := range []string{"nobody@unknown.org", "info@foo.com.evil", "noat", "@foo.org", "x@", ""} {
		if r, ok := v.Lookup(addr); ok {
			t.Errorf("%q matched %+v", addr, r)
		}
	}
	if got, want := v.Domains(), []string{"bar.com", "bar.org", "baz.org", "ex.org", "foo.com", "foo.org"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Domains = %v", got)
	}
	if r, _ := v.Lookup("info@foo.com"); !r.Local() {
		t.Error("foo-info is a local user")
	}
	if r, _ := v.Lookup("anyone@baz.org"); r.Local() {
		t.Error("jane@example.net is not local")
	}
}

// TestVirtusertableOrder takes entries away one by one, most specific
// first, and checks that the next one in sendmail's order answers.
func TestVirtusertableOrder(t *testing.T) {
	order := []string{"u+d@x.org", "u++@x.org", "u+*@x.org", "u@x.org", "++@x.org", "+*@x.org", "@x.org"}
	for i := range order {
		var b strings.Builder
		for j, k := range order[i:] {
			b.WriteString(k + " t" + string(rune('0'+i+j)) + "\n")
		}
		v, err := ParseVirtusertable("vt", strings.NewReader(b.String()))
		if err != nil {
			t.Fatal(err)
		}
		r, ok := v.Lookup("u+d@x.org")
		if !ok || r.Key != order[i] {
			t.Errorf("with %v: got %+v", order[i:], r)
		}
	}
	// Empty detail: the "++" forms are skipped, the "+*" forms match.
	v, _ := ParseVirtusertable("vt", strings.NewReader("u++@x.org a\n++@x.org b\n+*@x.org c\n"))
	if r, _ := v.Lookup("u+@x.org"); r.Key != "+*@x.org" {
		t.Errorf("u+@x.org: %+v", r)
	}
	// No '+': the plus forms are never tried.
	if r, ok := v.Lookup("u@x.org"); ok {
		t.Errorf("u@x.org: %+v", r)
	}
}

func TestVirtusertableArguments(t *testing.T) {
	v, _ := ParseVirtusertable("vt", strings.NewReader("@x.org [%0][%1][%2][%3][%4][%][%x][%%1]\nu@y.org [%0][%1][%2]\n"))
	for addr, want := range map[string]string{
		"User+Det@X.org": "[@X.org][User][Det][+Det][][%][%x][%User]",
		"User@x.org":     "[@x.org][User][][][][%][%x][%User]",
		"u+z@y.org":      "[u@y.org][u][z]",
	} {
		if r, _ := v.Lookup(addr); r.Target != want {
			t.Errorf("%s: %q, want %q", addr, r.Target, want)
		}
	}
}

func TestVirtusertableBadLines(t *testing.T) {
	in := "good@x.org ok\n" +
		"noat value\n" +
		"x@ value\n" +
		"a@x.org error:bogus text\n" +
		"b@x.org error:5.7.0:250 x\n" +
		"c@x.org error:4.2.2:550 x\n" +
		"d@x.org one@a two@b\n" +
		"e@x.org \"john doe\"@example.org\n"
	v, err := ParseVirtusertable("vt", strings.NewReader(in))
	probs := Problems(err)
	if len(probs) != 6 {
		t.Fatalf("%d problems: %v", len(probs), err)
	}
	for i, p := range probs {
		if le := p.(*LineError); le.Line != i+2 {
			t.Errorf("problem %d on line %d: %v", i, le.Line, p)
		}
	}
	if v.Len() != 2 {
		t.Errorf("kept %d", v.Len())
	}
	if r, _ := v.Lookup("e@x.org"); r.Target != `"john doe"@example.org` {
		t.Errorf("quoted local part: %q", r.Target)
	}
}

func TestNilMapsAreEmpty(t *testing.T) {
	var v *Virtusertable
	var a *Access
	var m *Mailertable
	if _, ok := v.Lookup("a@b"); ok || v.Len() != 0 || v.Domains() != nil {
		t.Error("virtusertable")
	}
	if _, ok := a.From("a@b"); ok || a.Len() != 0 {
		t.Error("access")
	}
	if _, ok := m.Lookup("b"); ok || m.Len() != 0 {
		t.Error("mailertable")
	}
}
