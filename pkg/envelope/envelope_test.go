package envelope

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseSender(t *testing.T) {
	good := map[string]string{
		"":                               "",
		"<>":                             "",
		"root":                           "root",
		"www-data@example.org":           "www-data@example.org",
		"<a.b+c@example.org>":            "a.b+c@example.org",
		`"x,y"@example.org`:              `"x,y"@example.org`,
		"user@[127.0.0.2]":               "user@[127.0.0.2]",
		"user@[IPv6:2001:db8::1]":        "user@[IPv6:2001:db8::1]",
		"bounce-123=x@lists.example.org": "bounce-123=x@lists.example.org",
	}
	for in, want := range good {
		got, err := ParseSender(in)
		if err != nil || got != want {
			t.Errorf("ParseSender(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	badOnes := []string{
		`"attacker\" -oQ/tmp/ -X/var/www/cache/phpcode.php some"@email.com`,
		`"attacker\`, `attacker\"`, "-oQ/tmp/", "a b@example.org", "a@example.org\r\nRCPT TO:<x>",
		"a\x00@example.org", "<a@example.org", "a@example.org>", "a@@b", "a@", "@example.org",
		"a..b@example.org", ".a@example.org", "a@-example.org", "a@exa mple.org", "a@[300.1.1.1]",
		"a@[IPv6:1.2.3.4]", strings.Repeat("a", 65) + "@example.org", "a@" + strings.Repeat("b.", 200) + "org",
		`"unterminated@example.org`, `a"b@example.org`, "a@b@c", "a(comment)@example.org",
	}
	for _, in := range badOnes {
		if got, err := ParseSender(in); err == nil {
			t.Errorf("ParseSender(%q) = %q, want an error", in, got)
		}
	}
}

func TestParseList(t *testing.T) {
	cases := map[string][]Mailbox{
		"a@example.org":                         {{Addr: "a@example.org"}},
		"a@x.org, B <b@x.org>":                  {{Addr: "a@x.org"}, {Name: "B", Addr: "b@x.org"}},
		`"Doe, John" <jd@x.org>, c@x.org (Cee)`: {{Name: "Doe, John", Addr: "jd@x.org"}, {Addr: "c@x.org"}},
		"undisclosed-recipients:;":              nil,
		"friends: a@x.org, b@x.org;, c@x.org":   {{Addr: "a@x.org"}, {Addr: "b@x.org"}, {Addr: "c@x.org"}},
		"root":                                  {{Addr: "root"}},
		"  ,, root ,":                           {{Addr: "root"}},
		"Y Two <y2@[127.0.0.2]>":                {{Name: "Y Two", Addr: "y2@[127.0.0.2]"}},
		"<@a.example:b@c.example>":              {{Addr: "@a.example:b@c.example"}},
		"x@[IPv6:::1]":                          {{Addr: "x@[IPv6:::1]"}},
		"(nested (comment)) d@x.org":            {{Addr: "d@x.org"}},
	}
	for in, want := range cases {
		if got := ParseList(in); !reflect.DeepEqual(got, want) {
			t.Errorf("ParseList(%q) = %#v, want %#v", in, got, want)
		}
	}
}

func TestQualify(t *testing.T) {
	if Qualify("root", "h.example") != "root@h.example" || Qualify("a@b", "h") != "a@b" || Qualify("", "h") != "" {
		t.Fatal("Qualify")
	}
}

func FuzzParseList(f *testing.F) {
	for _, s := range []string{`"Doe, John" <jd@x.org>, c@x.org (Cee)`, "g: a@b;", "<a@b", `"\`, "((("} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, m := range ParseList(s) {
			if m.Addr == "" {
				t.Fatal("empty address returned")
			}
			CheckMailbox(m.Addr)
		}
		ParseSender(s)
	})
}
