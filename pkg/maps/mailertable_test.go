package maps

import (
	"reflect"
	"strings"
	"testing"
)

const mailertableExample = `# CONTRACT.md's example and cf/README's forms
example.org		smtp:[10.0.0.5]:2525
.example.org		esmtp:[mx.internal]
a.b.example.net		relay:smart.example
.b.example.net		esmtp:host.example:587
.net			smtp8:outbound.example.
local.example		local:postmaster
luser.example		local:
lhost.example		local:keeper@elsewhere.example
bad.example		error:5.1.1:550 No such domain here
nouser.example		ERROR:nouser:550 go away
.sub.example		esmtp:%1.inner.example
.lab.example		local:%2
plain.example		smart.example
brackets.example	[192.0.2.1]:26
v6.example		esmtp:[IPv6:2001:DB8::1]:25
v6b.example		dsmtp:[2001:db8::2]
void.example		discard:
void2.example		DISCARD:discard
.			esmtp:[smarthost.example]
`

func TestMailertableLookup(t *testing.T) {
	m, err := ParseMailertable("mailertable", strings.NewReader(mailertableExample))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dom  string
		want Route
	}{
		{"example.org", Route{Mailer: "smtp", Host: "10.0.0.5", Port: 2525, NoMX: true, Key: "example.org"}},
		{"EXAMPLE.ORG.", Route{Mailer: "smtp", Host: "10.0.0.5", Port: 2525, NoMX: true, Key: "example.org"}},
		{"a.example.org", Route{Mailer: "esmtp", Host: "mx.internal", NoMX: true, Key: ".example.org"}},
		{"x.y.example.org", Route{Mailer: "esmtp", Host: "mx.internal", NoMX: true, Key: ".example.org"}},
		{"a.b.example.net", Route{Mailer: "relay", Host: "smart.example", Key: "a.b.example.net"}},
		{"x.a.b.example.net", Route{Mailer: "esmtp", Host: "host.example", Port: 587, Key: ".b.example.net"}},
		{"c.example.net", Route{Mailer: "smtp8", Host: "outbound.example", Key: ".net"}},
		{"b.example.net", Route{Mailer: "smtp8", Host: "outbound.example", Key: ".net"}}, // .b.example.net is for hosts below it
		{"local.example", Route{Mailer: "local", LocalUser: "postmaster", Key: "local.example"}},
		{"luser.example", Route{Mailer: "local", Key: "luser.example"}},
		{"lhost.example", Route{Mailer: "local", LocalUser: "keeper", Key: "lhost.example"}},
		{"bad.example", Route{Mailer: "error", Error: &Reject{550, "5.1.1", "No such domain here"}, Key: "bad.example"}},
		{"nouser.example", Route{Mailer: "error", Error: &Reject{550, "5.1.1", "go away"}, Key: "nouser.example"}},
		{"x.y.sub.example", Route{Mailer: "esmtp", Host: "x.y.inner.example", Key: ".sub.example"}},
		{"m1.lab.example", Route{Mailer: "local", LocalUser: "m1", Key: ".lab.example"}},
		{"a.m2.lab.example", Route{Mailer: "local", LocalUser: "m2", Key: ".lab.example"}},
		{"plain.example", Route{Mailer: "relay", Host: "smart.example", Key: "plain.example"}},
		{"brackets.example", Route{Mailer: "relay", Host: "192.0.2.1", Port: 26, NoMX: true, Key: "brackets.example"}},
		{"v6.example", Route{Mailer: "esmtp", Host: "2001:DB8::1", Port: 25, NoMX: true, Key: "v6.example"}},
		{"v6b.example", Route{Mailer: "dsmtp", Host: "2001:db8::2", NoMX: true, Key: "v6b.example"}},
		{"void.example", Route{Mailer: "discard", Key: "void.example"}},
		{"void2.example", Route{Mailer: "discard", Key: "void2.example"}},
		{"elsewhere.com", Route{Mailer: "esmtp", Host: "smarthost.example", NoMX: true, Key: "."}},
		{"sub.example", Route{Mailer: "esmtp", Host: "smarthost.example", NoMX: true, Key: "."}},
	} {
		got, ok := m.Lookup(tc.dom)
		if !ok || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %+v (err %+v), want %+v", tc.dom, got, got.Error, tc.want)
		}
	}
	for _, dom := range []string{"[192.0.2.1]", "", "."} {
		if r, ok := m.Lookup(dom); ok {
			t.Errorf("%q matched %+v", dom, r)
		}
	}
	noDefault, _ := ParseMailertable("mt", strings.NewReader(".example.org smtp:x\n"))
	if _, ok := noDefault.Lookup("example.com"); ok {
		t.Error("matched without a default")
	}
	if _, ok := noDefault.Lookup("example.org"); ok {
		t.Error(".example.org matched example.org itself")
	}
}

func TestMailertableBadLines(t *testing.T) {
	in := "ok.example esmtp:host\n" +
		"a.example esmtp:\n" + // 2
		"b.example foo:bar\n" + // 3
		"c.example esmtp:a:b\n" + // 4
		"d.example esmtp:[10.0.0.1\n" + // 5
		"e.example esmtp:h:99999\n" + // 6
		"f.example esmtp:2001:db8::1\n" + // 7
		"g.example error:bogus\n" + // 8
		"user@h.example smtp:x\n" + // 9
		"i.example esmtp:host name\n" + // 10
		"j.example esmtp:[10.0.0.1]x\n" + // 11
		"k.example esmtp:[10.0.0.1]:\n" + // 12
		"l.example esmtp:h:\n" + // 13
		"m.example esmtp:bad%host\n" + // 14
		"n.example local:two users\n" + // 15
		"o..example esmtp:x\n" + // 16
		"p.example esmtp:[]\n" // 17
	m, err := ParseMailertable("mailertable", strings.NewReader(in))
	probs := Problems(err)
	if len(probs) != 16 {
		t.Fatalf("%d problems: %v", len(probs), err)
	}
	for i, p := range probs {
		if le := p.(*LineError); le.Line != i+2 {
			t.Errorf("problem %d on line %d: %v", i, le.Line, p)
		}
	}
	if m.Len() != 1 {
		t.Errorf("kept %d", m.Len())
	}
}
