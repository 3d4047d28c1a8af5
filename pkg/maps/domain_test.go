package maps

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestDomainIn(t *testing.T) {
	// relay-domains as in REFERENCE.md §3, and a local-host-names.
	relay, _ := ParseClass("relay-domains", strings.NewReader("Example.COM\n128.32\nIPv6:2002:c0a8:02c7\n[UNIX:localhost]\n"))
	local, _ := ParseClass("local-host-names", strings.NewReader("localhost\nmail.example.org # this host\n"))
	for _, tc := range []struct {
		c    Class
		dom  string
		subs bool
		want bool
	}{
		{relay, "example.com", true, true},
		{relay, "EXAMPLE.com.", true, true},
		{relay, "mail.example.com", true, true},
		{relay, "a.b.example.com", true, true},
		{relay, "mail.example.com", false, false},
		{relay, "badexample.com", true, false},
		{relay, "com", true, false},
		{relay, "", true, false},
		{local, "mail.example.org", false, true},
		{local, "Mail.Example.Org", false, true},
		{local, "x.mail.example.org", false, false},
		{local, "example.org", true, false},
		{local, "LOCALHOST", false, true},
	} {
		if got := DomainIn(tc.c, tc.dom, tc.subs); got != tc.want {
			t.Errorf("DomainIn(%v, %q, %v) = %v", tc.c, tc.dom, tc.subs, got)
		}
	}
	for ip, want := range map[string]bool{
		"128.32.1.2": true, "128.33.1.2": false, "128.3.21.1": false,
		"2002:c0a8:2c7::9": true, "2002:c0a8:2c8::9": false, "::ffff:128.32.0.1": true,
	} {
		if got := AddrIn(relay, netip.MustParseAddr(ip)); got != want {
			t.Errorf("AddrIn(%s) = %v", ip, got)
		}
	}
	if AddrIn(relay, netip.Addr{}) {
		t.Error("invalid address matched")
	}
}

func TestAddrKeys(t *testing.T) {
	if got, want := addrKeys(netip.MustParseAddr("192.0.2.7")), []string{"192.0.2.7", "192.0.2", "192.0", "192"}; !reflect.DeepEqual(got, want) {
		t.Errorf("%v", got)
	}
	got := addrKeys(netip.MustParseAddr("2001:db8::1"))
	want := []string{"ipv6:2001:db8:0:0:0:0:0:1", "ipv6:2001:db8:0:0:0:0:0", "ipv6:2001:db8:0:0:0:0",
		"ipv6:2001:db8:0:0:0", "ipv6:2001:db8:0:0", "ipv6:2001:db8:0", "ipv6:2001:db8", "ipv6:2001"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%v", got)
	}
	if got := bracketKeys(netip.MustParseAddr("10.1.2.3")); got[0] != "[10.1.2.3]" || got[3] != "[10]" {
		t.Errorf("%v", got)
	}
}

func TestNormIPv6(t *testing.T) {
	for in, want := range map[string]string{
		"2002:c0a8:02c7":       "2002:c0a8:2c7",
		"2002:C0A8:0000":       "2002:c0a8:0",
		"2002:c0a8:51d2::23f4": "2002:c0a8:51d2:0:0:0:0:23f4",
		"::1":                  "0:0:0:0:0:0:0:1",
		"::ffff:1.2.3.4":       "0:0:0:0:0:ffff:102:304",
		"1:2:3:4:5:6:7:8":      "1:2:3:4:5:6:7:8",
		"zzzz":                 "!",
		"1:2:3:4:5:6:7:8:9":    "!",
		"12345":                "!",
		"":                     "!",
		"1::2::3":              "!",
		"1.2.3.4":              "!",
		"fe80::1%eth0":         "!",
	} {
		got, ok := normIPv6(in)
		if want == "!" {
			if ok {
				t.Errorf("%q: accepted as %q", in, got)
			}
			continue
		}
		if !ok || got != want {
			t.Errorf("%q: %q %v, want %q", in, got, ok, want)
		}
	}
}

func TestDomainKeys(t *testing.T) {
	for in, want := range map[string][]string{
		"a.b.example": {"a.b.example", "b.example", "example"},
		"tld":         {"tld"},
		"[1.2.3.4]":   {"[1.2.3.4]"},
		"odd.":        {"odd."},
	} {
		if got := domainKeys(in); !reflect.DeepEqual(got, want) {
			t.Errorf("%q: %v", in, got)
		}
	}
}
