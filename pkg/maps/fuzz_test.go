package maps

import (
	"bytes"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

// probes are lookups to run on whatever parsed: the keys of the input
// itself (so that entries are found), variants of them, and fixed odd
// ones.
func probes(data []byte) []string {
	out := []string{"", "@", "a@b", "a+b@c", "+@x", "u++@d", "x@[192.0.2.1]", "x@[IPv6:2001:db8::1]", ".", "a.b.c."}
	for _, line := range bytes.Split(data, []byte("\n")) {
		f := strings.Fields(string(line))
		if len(f) == 0 || len(f[0]) > 200 {
			continue
		}
		k := f[0]
		if _, rest, ok := strings.Cut(k, ":"); ok {
			out = append(out, rest)
		}
		out = append(out, k, "u+d"+k, "u@"+k, strings.ReplaceAll(k, "*", "z"))
		if len(out) > 60 {
			break
		}
	}
	return out
}

var probeIPs = []netip.Addr{
	netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("127.0.0.1"),
	netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("::ffff:10.0.0.1"), {},
}

func checkReject(t *testing.T, r *Reject) {
	t.Helper()
	if r == nil {
		return
	}
	if c := r.Code / 100; c != 4 && c != 5 || !isEnhanced(r.Enhanced) || r.Enhanced[0] != byte('0'+c) {
		t.Fatalf("inconsistent refusal %+v", r)
	}
}

func FuzzVirtusertable(f *testing.F) {
	f.Add([]byte(virtExample))
	f.Add([]byte("a@b c\n@d %1%2%3%9%\n+*@e error:nouser\nx++@e error:4.2.2:450 full\n\x00\n" + strings.Repeat("k", 600) + " v\n"))
	f.Add([]byte("u+d@x.org a\nu++@x.org b\nu+*@x.org c\nu@x.org d\n++@x.org e\n+*@x.org f\n@x.org g\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := ParseVirtusertable("fuzz", bytes.NewReader(data))
		if v == nil {
			t.Fatal("nil table")
		}
		for _, p := range Problems(err) {
			if _, ok := p.(*LineError); !ok {
				t.Fatalf("problem of type %T: %v", p, p)
			}
		}
		for _, addr := range probes(data) {
			r, ok := v.Lookup(addr)
			if ok && (r.Key == "" || r.Error != nil && r.Target != "") {
				t.Fatalf("%q: odd result %+v", addr, r)
			}
			checkReject(t, r.Error)
		}
		v.Domains()
	})
}

func FuzzAccess(f *testing.F) {
	f.Add([]byte(accessExample))
	f.Add([]byte("Connect:IPv6:1:2::3 OK\nConnect:[IPv6:::1] SKIP\nFrom:<> REJECT\nTo:u+*@ ERROR:\"450 x\"\nx QUARANTINE:\n"))
	f.Add([]byte("Connect:1 ERROR:5.7.1:550 a\nconnect:1.2 \"550 b\"\nGreetPause: 1\nSpam:x FRIEND\n:x y\nipv6:1 OK\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := ParseAccess("fuzz", bytes.NewReader(data))
		if a == nil {
			t.Fatal("nil map")
		}
		for _, p := range Problems(err) {
			if _, ok := p.(*LineError); !ok {
				t.Fatalf("problem of type %T: %v", p, p)
			}
		}
		check := func(act Action, ok bool) {
			if !ok {
				return
			}
			switch act.Kind {
			case ActionReject, ActionError:
				checkReject(t, &Reject{act.Code, act.Enhanced, act.Text})
			case ActionSkip, 0:
				t.Fatalf("lookup returned %v", act.Kind)
			}
		}
		ps := probes(data)
		ps = ps[:min(len(ps), 24)] // each costs some thirty lookups
		for _, s := range ps {
			check(a.From(s))
			check(a.To(s))
			check(a.ToLocal(s))
			a.RelayTo(s)
			a.Tagged("connect", s)
			for _, ip := range probeIPs {
				check(a.Connect(ip, s))
				a.RelayClient(ip, s)
				a.ClientValue("GreetPause", ip, s)
			}
		}
	})
}

func FuzzMailertable(f *testing.F) {
	f.Add([]byte(mailertableExample))
	f.Add([]byte(". esmtp:[%1.x]:1\n.a local:%2\nb error:nouser\nc esmtp:[IPv6:::1]:65535\nd [x\ne relay:a:b\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMailertable("fuzz", bytes.NewReader(data))
		if m == nil {
			t.Fatal("nil table")
		}
		for _, p := range Problems(err) {
			if _, ok := p.(*LineError); !ok {
				t.Fatalf("problem of type %T: %v", p, p)
			}
		}
		for _, d := range probes(data) {
			r, ok := m.Lookup(d)
			if !ok {
				continue
			}
			checkReject(t, r.Error)
			switch {
			case r.Mailer == "error" && r.Error == nil,
				smtpMailers[r.Mailer] && r.Host == "",
				r.Port < 0 || r.Port > 65535:
				t.Fatalf("%q: bad route %+v", d, r)
			}
		}
	})
}

// FuzzClass reads any class file (local-host-names, relay-domains,
// trusted-users) and checks that it holds exactly the words of its lines
// outside comments, and that each member is then found the ways the
// daemon looks: as written, case aside, as a domain (with its subdomains
// for relay-domains), and, for network entries such as "192.0.2" or
// "IPv6:2001:db8", by an address inside the network.
func FuzzClass(f *testing.F) {
	f.Add([]byte("# local-host-names\nexample.org Example.NET # and\n[192.0.2.1]\n192.0.2\nIPv6:2001:DB8::1\r\nipv6:2001:0db8\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseClass("fuzz", bytes.NewReader(data))
		if c == nil {
			t.Fatal("nil class")
		}
		if err != nil {
			// Only a line too long for the scanner is an error.
			if !strings.Contains(err.Error(), "too long") {
				t.Fatalf("ParseClass: %v", err)
			}
			return
		}
		want := map[string]bool{}
		for _, line := range strings.Split(string(data), "\n") {
			line, _, _ = strings.Cut(line, "#")
			for _, w := range strings.Fields(line) {
				want[w] = true
			}
		}
		if len(c) != len(want) {
			t.Fatalf("class %q, want %q", keys(c), keys(want))
		}
		n := 0
		for w := range want {
			if !c[w] {
				t.Fatalf("class %q lacks %q", keys(c), w)
			}
			if n++; n > 40 {
				continue // enough lookups for one input
			}
			checkMember(t, c, w)
		}
	})
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func checkMember(t *testing.T, c Class, w string) {
	t.Helper()
	if !c.Has(w) || !c.HasFold(upperASCII(w)) || !c.HasFold(lowerASCII(w)) {
		t.Fatalf("%q not found, case aside", w)
	}
	if !strings.HasSuffix(w, ".") {
		if !DomainIn(c, w, false) || !DomainIn(c, upperASCII(w)+".", false) {
			t.Fatalf("domain %q not in its own class", w)
		}
		if !DomainIn(c, "mail."+w, true) {
			t.Fatalf("mail.%s not a subdomain of %q", w, w)
		}
	}
	// Whole leading octets: "192.0.2" takes 192.0.2.7.
	if parts := strings.Split(w, "."); len(parts) <= 4 && canonicalOctets(parts) {
		for len(parts) < 4 {
			parts = append(parts, "7")
		}
		ip := netip.MustParseAddr(strings.Join(parts, "."))
		if !AddrIn(c, ip) || !AddrIn(c, netip.AddrFrom16(ip.As16())) {
			t.Fatalf("%v not in network %q", ip, w)
		}
	}
	// Whole leading 16-bit groups: "IPv6:2001:db8" takes 2001:db8:1:1:...
	if len(w) > 5 && strings.EqualFold(w[:5], "ipv6:") {
		norm, ok := normIPv6(w[5:])
		if !ok {
			return
		}
		g := strings.Split(norm, ":")
		for len(g) < 8 {
			g = append(g, "1")
		}
		ip, err := netip.ParseAddr(strings.Join(g, ":"))
		if err != nil {
			t.Fatalf("%q normalised to %q: %v", w, norm, err)
		}
		if !ip.Is4In6() && !AddrIn(c, ip) {
			t.Fatalf("%v not in network %q", ip, w)
		}
	}
}

// upperASCII: host names fold in ASCII only (Unicode upper case may
// leave a letter's fold orbit, as dotless i does).
func upperASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func canonicalOctets(parts []string) bool {
	for _, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 255 || strconv.Itoa(n) != p {
			return false
		}
	}
	return true
}
