package envelope

import (
	"strings"
	"testing"
)

// FuzzCheckMailbox feeds CheckMailbox and ParseSender any text (a -f
// value, an argv recipient, an address out of a To: header) and checks
// what they accept:
//
//   - within the RFC 5321 limits, without control bytes or brackets left;
//   - accepted again, unchanged (CheckMailbox is idempotent);
//   - split by Local and Domain back into itself;
//   - qualified by Qualify into an address that is still accepted and has
//     the domain given;
//   - for ParseSender, without white space or a leading '-'.
func FuzzCheckMailbox(f *testing.F) {
	f.Add("user@example.org")
	f.Add("<\"john smith\"@[IPv6:2001:db8::1]>")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := CheckMailbox(s)
		if err == nil {
			checkAccepted(t, s, a)
		} else if _, ok := err.(*Error); !ok {
			t.Fatalf("CheckMailbox(%q): error of type %T", s, err)
		}

		snd, err := ParseSender(s)
		switch {
		case err != nil:
			if _, ok := err.(*Error); !ok {
				t.Fatalf("ParseSender(%q): error of type %T", s, err)
			}
		case snd == "":
			if s != "" && s != "<>" {
				t.Fatalf("ParseSender(%q) = null sender", s)
			}
		default:
			if strings.ContainsAny(snd, " \t") || strings.HasPrefix(snd, "-") {
				t.Fatalf("ParseSender(%q) = %q: white space or leading dash", s, snd)
			}
			if snd != a {
				t.Fatalf("ParseSender(%q) = %q, CheckMailbox gives %q", s, snd, a)
			}
		}
	})
}

func checkAccepted(t *testing.T, in, a string) {
	t.Helper()
	if a == "" || len(a) > MaxAddressLen || hasControl(a) {
		t.Fatalf("CheckMailbox(%q) = %q: empty, too long or with control bytes", in, a)
	}
	if a != in && "<"+a+">" != in {
		t.Fatalf("CheckMailbox(%q) = %q: not the input without its brackets", in, a)
	}
	if again, err := CheckMailbox(a); err != nil || again != a {
		t.Fatalf("CheckMailbox(%q) = %q, %v; not idempotent", a, again, err)
	}
	local, domain := Local(a), Domain(a)
	if len(local) > maxLocalLen || len(domain) > maxDomainLen {
		t.Fatalf("%q: local part %q or domain %q too long", a, local, domain)
	}
	switch {
	case domain == "" && local != a:
		t.Fatalf("%q: no domain but local part %q", a, local)
	case domain != "" && local+"@"+domain != a:
		t.Fatalf("%q: split into %q and %q", a, local, domain)
	}
	q := Qualify(a, "host.example")
	if domain != "" && q != a {
		t.Fatalf("Qualify(%q) = %q: changed an address with a domain", a, q)
	}
	if Domain(q) == "" {
		t.Fatalf("Qualify(%q) = %q: no domain", a, q)
	}
	if _, err := CheckMailbox(q); err != nil {
		t.Fatalf("Qualify(%q) = %q, refused: %v", a, q, err)
	}
}

// FuzzListRoundTrip writes header address lists from parts that
// CheckMailbox accepts and checks that ParseList reads the same addresses
// back, in order, in the three shapes mail programs write: bare, with a
// quoted display name, and as a group.
func FuzzListRoundTrip(f *testing.F) {
	f.Add("a@example.org", "b", "Ann Example", "list")
	f.Fuzz(func(t *testing.T, a1, a2, name, group string) {
		var addrs []string
		for _, a := range []string{a1, a2} {
			// A bare entry ends at a comma, semicolon or comment, and a
			// quoted local part may hold anything: keep to plain ones.
			// ParseList trims Unicode white space (U+00A0 and others)
			// around an entry, which CheckMailbox takes as any other
			// non-ASCII byte: leave such edges out too.
			if c, err := CheckMailbox(a); err == nil && c == a && !strings.ContainsAny(a, "\",;()<>:") && strings.TrimSpace(a) == a {
				addrs = append(addrs, a)
			}
		}
		if len(addrs) == 0 {
			return
		}
		quotedName := `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(name) + `"`
		var bare, named []string
		for _, a := range addrs {
			bare = append(bare, a)
			named = append(named, quotedName+" <"+a+">")
		}
		check := func(v string, wantName bool) {
			got := ParseList(v)
			if len(got) != len(addrs) {
				t.Fatalf("ParseList(%q) = %q, want addresses %q", v, got, addrs)
			}
			for i, m := range got {
				if m.Addr != addrs[i] {
					t.Fatalf("ParseList(%q) = %q, want addresses %q", v, got, addrs)
				}
				if wantName && !hasControl(name) && m.Name != strings.TrimSpace(name) && m.Name != name {
					t.Fatalf("ParseList(%q): name %q, want %q", v, m.Name, name)
				}
			}
		}
		check(strings.Join(bare, ", "), false)
		check(strings.Join(named, ", "), true)
		if g := strings.TrimSpace(group); g != "" && !strings.ContainsAny(g, "\",;:()<>@\\") {
			check(g+": "+strings.Join(bare, ", ")+";", false)
		}
	})
}
