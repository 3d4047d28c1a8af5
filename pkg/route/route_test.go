package route

import (
	"strconv"
	"strings"
	"testing"

	"github.com/gosendmail/gosendmail/pkg/aliases"
	"github.com/gosendmail/gosendmail/pkg/maps"
)

func tables(t *testing.T) *Tables {
	am, errs := aliases.Parse("aliases", strings.NewReader(`postmaster: root
sales: root
list: root, alice@example.net, "|/usr/bin/archive --list", /var/archive/list
loop1: loop2
loop2: loop1
bob: \bob, bob@elsewhere.example
team: :include:/etc/mail/team
`))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	vt, err := maps.ParseVirtusertable("vt", strings.NewReader(`info@virt.example root
joe@virt.example joe.remote@example.net
gone@virt.example error:nouser 550 No such user here
@catch.example %1@example.net
`))
	if err != nil {
		t.Fatal(err)
	}
	mt, err := maps.ParseMailertable("mt", strings.NewReader(`inside.example smtp:[10.0.0.5]:2525
.corp.example relay:gw.corp.example
dead.example error:5.1.2:550 Host is gone
void.example discard:
`))
	if err != nil {
		t.Fatal(err)
	}
	return &Tables{
		Hostname:    "mx.test.example",
		LocalDomain: func(d string) bool { return d == "test.example" || d == "virt.example" || d == "catch.example" },
		Virtual:     vt.Lookup,
		Aliases:     func() *aliases.Map { return am },
		Include: func(path string) ([]aliases.Target, error) {
			return []aliases.Target{{Kind: aliases.Address, Value: "root"}, {Kind: aliases.Address, Value: "carol@example.org"}}, nil
		},
		UserExists:  func(n string) bool { return n == "root" || n == "bob" || n == "www-data" },
		ProgramUser: "nobody",
		Mailertable: mt.Lookup,
	}
}

func TestResolve(t *testing.T) {
	tb := tables(t)
	cases := map[string][]string{
		"root":                    {"root... deliverable: mailer local, user root"},
		"ROOT@Test.Example":       {"ROOT@Test.Example... deliverable: mailer local, user root"},
		"postmaster@test.example": {"postmaster@test.example... deliverable: mailer local, user root"},
		"sales+news@test.example": {"sales+news@test.example... deliverable: mailer local, user root"},
		"www-data+x@test.example": {"www-data+x@test.example... deliverable: mailer local, user www-data"},
		"nobody@test.example":     {"nobody@test.example... User unknown"},
		"info@virt.example":       {"info@virt.example... deliverable: mailer local, user root"},
		"joe@virt.example":        {"joe@virt.example... deliverable: mailer esmtp, host example.net., user joe.remote@example.net"},
		"gone@virt.example":       {"gone@virt.example... No such user here"},
		"x.y@catch.example":       {"x.y@catch.example... deliverable: mailer esmtp, host example.net., user x.y@example.net"},
		"someone@example.net":     {"someone@example.net... deliverable: mailer esmtp, host example.net., user someone@example.net"},
		"a@inside.example":        {"a@inside.example... deliverable: mailer esmtp, host [10.0.0.5], user a@inside.example"},
		"a@b.corp.example":        {"a@b.corp.example... deliverable: mailer esmtp, host gw.corp.example, user a@b.corp.example"},
		"a@dead.example":          {"a@dead.example... Host is gone"},
		"a@void.example":          {"a@void.example... deliverable: mailer discard, user a@void.example"},
		"a@[192.0.2.1]":           {"a@[192.0.2.1]... deliverable: mailer esmtp, host [192.0.2.1], user a@[192.0.2.1]"},
		"loop1":                   {"loop1... aliasing loop: no delivery possible"},
		"bob":                     {"bob... deliverable: mailer local, user bob", "bob... deliverable: mailer esmtp, host elsewhere.example., user bob@elsewhere.example"},
		"team":                    {"team... deliverable: mailer local, user root", "team... deliverable: mailer esmtp, host example.org., user carol@example.org"},
		"list": {
			"list... deliverable: mailer local, user root",
			"list... deliverable: mailer esmtp, host example.net., user alice@example.net",
			"list... deliverable: mailer prog, user \"|/usr/bin/archive --list\"",
			"list... deliverable: mailer *file*, user /var/archive/list",
		},
	}
	for addr, want := range cases {
		var got []string
		for _, tg := range tb.Resolve(addr) {
			got = append(got, Describe(addr, tg))
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s:\n got  %q\n want %q", addr, got, want)
		}
	}
	for _, tg := range tb.Resolve("list") {
		if (tg.Kind == Pipe || tg.Kind == File) && tg.User != "nobody" {
			t.Errorf("%v runs as %q", tg.Kind, tg.User)
		}
	}
	tb.SmartHost = "[relay.example.net]:587"
	got := tb.Resolve("x@example.org")
	if len(got) != 1 || got[0].Host != "relay.example.net" || got[0].Port != 587 || !got[0].NoMX {
		t.Errorf("smart host: %+v", got)
	}
}

func TestParseHost(t *testing.T) {
	for in, want := range map[string]string{"h.example": "h.example 0 false", "[h.example]": "h.example 0 true", "h.example:25": "h.example 25 false", "[10.0.0.1]:2525": "10.0.0.1 2525 true"} {
		h, p, n, err := ParseHost(in)
		got := strings.Join([]string{h, itoa(p), map[bool]string{true: "true", false: "false"}[n]}, " ")
		if err != nil || got != want {
			t.Errorf("%s: %q %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "[h", "h:x", "h:0"} {
		if _, _, _, err := ParseHost(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
