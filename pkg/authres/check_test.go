package authres

import (
	"bytes"
	"strings"
	"testing"
	"time"

	msgauthres "github.com/emersion/go-msgauth/authres"
)

func TestSPF(t *testing.T) {
	e := newEnv(t)
	e.dns.TXT("pass.example", "v=spf1 ip4:127.0.0.2 -all")
	e.dns.TXT("fail.example", "v=spf1 ip4:192.0.2.1 -all")
	e.dns.TXT("soft.example", "v=spf1 ip4:192.0.2.1 ~all")
	e.dns.TXT("neutral.example", "v=spf1 ?all")
	e.dns.TXT("broken.example", "v=spf1 ip4:not-an-address -all")
	e.dns.ServFail("servfail.example")
	e.dns.TXT("mail.example.com", "v=spf1 ip4:127.0.0.2 -all")

	for _, c := range []struct {
		from, want string
	}{
		{"ann@pass.example", "pass"},
		{"ann@fail.example", "fail"},
		{"ann@soft.example", "softfail"},
		{"ann@neutral.example", "neutral"},
		{"ann@none.example", "none"},
		{"ann@broken.example", "permerror"},
		{"ann@servfail.example", "temperror"},
		// The null sender is checked as postmaster@HELO.
		{"", "pass"},
	} {
		t.Run(c.want+"/"+c.from, func(t *testing.T) {
			res := e.check(c.from, message("ann@example.org"))
			if res.SPF != c.want {
				t.Errorf("spf = %q, want %q\n%s", res.SPF, c.want, res.Header)
			}
			if res.SPFHelo != "pass" {
				t.Errorf("spf of the HELO = %q, want pass", res.SPFHelo)
			}
			if !strings.Contains(res.Header, "spf="+c.want+" ") {
				t.Errorf("header lacks spf=%s:\n%s", c.want, res.Header)
			}
		})
	}

	t.Run("helo", func(t *testing.T) {
		res := e.checkFrom("127.0.0.2", "other.example", "ann@pass.example", message("ann@pass.example"))
		if res.SPF != "pass" || res.SPFHelo != "none" {
			t.Errorf("spf %q, helo %q; want pass, none", res.SPF, res.SPFHelo)
		}
		res = e.checkFrom("127.0.0.3", "mail.example.com", "ann@pass.example", message("ann@pass.example"))
		if res.SPF != "fail" || res.SPFHelo != "fail" {
			t.Errorf("spf %q, helo %q; want fail, fail", res.SPF, res.SPFHelo)
		}
		if !strings.Contains(res.Header, "smtp.helo=mail.example.com") {
			t.Errorf("header lacks smtp.helo:\n%s", res.Header)
		}
		res = e.checkFrom("127.0.0.2", "[127.0.0.2]", "ann@pass.example", message("ann@pass.example"))
		if res.SPFHelo != "none" {
			t.Errorf("helo address literal: %q, want none", res.SPFHelo)
		}
	})

	t.Run("spf aligns for dmarc", func(t *testing.T) {
		e.dns.TXT("_dmarc.pass.example", "v=DMARC1; p=reject")
		res := e.check("bounce@pass.example", message("ann@pass.example"))
		if res.DMARC != "pass" || res.Reject {
			t.Errorf("dmarc %q reject %v, want pass\n%s", res.DMARC, res.Reject, res.Header)
		}
	})
}

func TestDKIMOurSigner(t *testing.T) {
	e := newEnv(t)
	e.dns.TXT("_dmarc.example.com", "v=DMARC1; p=reject")
	msg := e.signOurs(message("ann@example.com"), "example.com", "sel1", true)
	res := e.check("ann@unrelated.example", msg)
	if len(res.DKIM) != 1 || res.DKIM[0].Result != "pass" {
		t.Fatalf("dkim %+v, want one pass\n%s", res.DKIM, res.Header)
	}
	d := res.DKIM[0]
	if d.Domain != "example.com" || d.Selector != "sel1" || len(d.B) != 8 {
		t.Errorf("dkim result %+v", d)
	}
	if res.DMARC != "pass" || res.DMARCPolicy != "reject" || res.Reject {
		t.Errorf("dmarc %q policy %q reject %v", res.DMARC, res.DMARCPolicy, res.Reject)
	}
	for _, want := range []string{
		"Authentication-Results: " + testHost + ";\r\n\t",
		"dkim=pass header.d=example.com header.s=sel1 header.b=" + d.B,
		"dmarc=pass (p=reject) header.from=example.com\r\n",
	} {
		if !strings.Contains(res.Header, want) {
			t.Errorf("header lacks %q:\n%s", want, res.Header)
		}
	}
	checkParses(t, res.Header)
}

func TestDKIMDkimpy(t *testing.T) {
	e := newEnv(t)
	e.dns.TXT("_dmarc.example.net", "v=DMARC1; p=quarantine; adkim=s")
	msg := e.signDkimpy(message("ann@example.net"), "example.net", "py")
	res := e.check("", msg)
	if len(res.DKIM) != 1 || res.DKIM[0].Result != "pass" {
		t.Fatalf("dkim %+v, want one pass\n%s\n%s", res.DKIM, res.Header, msg)
	}
	if res.DMARC != "pass" || res.DMARCPolicy != "quarantine" {
		t.Errorf("dmarc %q policy %q", res.DMARC, res.DMARCPolicy)
	}
}

func TestDKIMFailures(t *testing.T) {
	e := newEnv(t)
	e.dns.TXT("_dmarc.example.com", "v=DMARC1; p=reject")

	t.Run("body tampered", func(t *testing.T) {
		msg := e.signOurs(message("ann@example.com"), "example.com", "tamper", true)
		msg = bytes.Replace(msg, []byte("Hello Bob"), []byte("Hello Eve"), 1)
		res := e.check("ann@example.com", msg)
		if len(res.DKIM) != 1 || res.DKIM[0].Result != "fail" {
			t.Fatalf("dkim %+v, want fail", res.DKIM)
		}
		if res.DMARC != "fail" || !res.Reject {
			t.Errorf("dmarc %q reject %v, want fail, reject", res.DMARC, res.Reject)
		}
		if !strings.Contains(res.Header, "dkim=fail reason=") {
			t.Errorf("header:\n%s", res.Header)
		}
		checkParses(t, res.Header)
	})

	t.Run("expired", func(t *testing.T) {
		msg := e.signMsgauth(message("ann@example.com"), "example.com", "old", time.Now().Add(-time.Hour))
		res := e.check("ann@example.com", msg)
		if len(res.DKIM) != 1 || res.DKIM[0].Result != "permerror" || !strings.Contains(res.DKIM[0].Reason, "expired") {
			t.Fatalf("dkim %+v, want permerror (expired)", res.DKIM)
		}
		if res.DMARC != "fail" {
			t.Errorf("dmarc %q, want fail", res.DMARC)
		}
	})

	t.Run("not expired", func(t *testing.T) {
		msg := e.signMsgauth(message("ann@example.com"), "example.com", "fresh", time.Now().Add(time.Hour))
		res := e.check("ann@example.com", msg)
		if len(res.DKIM) != 1 || res.DKIM[0].Result != "pass" {
			t.Fatalf("dkim %+v, want pass", res.DKIM)
		}
	})

	t.Run("key not published", func(t *testing.T) {
		// RFC 6376 section 6.1.2: no key record is PERMFAIL.
		msg := e.signOurs(message("ann@example.com"), "example.com", "gone", false)
		res := e.check("ann@example.com", msg)
		if len(res.DKIM) != 1 || res.DKIM[0].Result != "permerror" {
			t.Fatalf("dkim %+v, want permerror", res.DKIM)
		}
	})

	t.Run("key lookup fails", func(t *testing.T) {
		msg := e.signOurs(message("ann@example.com"), "example.com", "flaky", false)
		e.dns.ServFail("flaky._domainkey.example.com")
		res := e.check("ann@example.com", msg)
		if len(res.DKIM) != 1 || res.DKIM[0].Result != "temperror" {
			t.Fatalf("dkim %+v, want temperror", res.DKIM)
		}
	})

	t.Run("misaligned", func(t *testing.T) {
		// A good signature of another domain: DKIM passes, DMARC does not.
		msg := e.signOurs(message("ann@example.com"), "other.example", "sel", true)
		res := e.check("ann@other.example", msg)
		if len(res.DKIM) != 1 || res.DKIM[0].Result != "pass" || res.DKIM[0].Domain != "other.example" {
			t.Fatalf("dkim %+v, want pass for other.example", res.DKIM)
		}
		if res.DMARC != "fail" || res.DMARCPolicy != "reject" || !res.Reject {
			t.Errorf("dmarc %q policy %q reject %v, want fail, reject", res.DMARC, res.DMARCPolicy, res.Reject)
		}
	})

	t.Run("two signatures, one good", func(t *testing.T) {
		msg := e.signOurs(message("ann@example.com"), "other.example", "sel2", true)
		msg = e.signMsgauth(msg, "example.com", "second", time.Time{})
		res := e.check("ann@example.com", msg)
		if len(res.DKIM) != 2 || res.DKIM[0].Domain != "example.com" || res.DKIM[0].Result != "pass" ||
			res.DKIM[1].Domain != "other.example" || res.DKIM[1].Result != "pass" {
			t.Fatalf("dkim %+v", res.DKIM)
		}
		if res.DMARC != "pass" {
			t.Errorf("dmarc %q, want pass", res.DMARC)
		}
		checkParses(t, res.Header)
	})

	t.Run("unsigned", func(t *testing.T) {
		res := e.check("ann@example.com", message("ann@example.com"))
		if len(res.DKIM) != 0 || !strings.Contains(res.Header, "dkim=none") {
			t.Errorf("dkim %+v\n%s", res.DKIM, res.Header)
		}
	})
}

func TestDMARC(t *testing.T) {
	e := newEnv(t)
	e.dns.TXT("_dmarc.none.example", "v=DMARC1; p=none")
	e.dns.TXT("_dmarc.org.example", "v=DMARC1; p=none; sp=reject")
	e.dns.TXT("_dmarc.sample.example", "v=DMARC1; p=reject; pct=50")
	e.dns.TXT("_dmarc.strict.example", "v=DMARC1; p=reject; adkim=s")
	e.dns.TXT("_dmarc.bad.example", "v=DMARC1; p=bogus")
	e.dns.ServFail("_dmarc.flaky.example")

	for _, c := range []struct {
		name, from, signer string
		dmarc, policy      string
		reject             bool
	}{
		{"p=none fail", "ann@none.example", "", "fail", "none", false},
		{"subdomain policy", "ann@sub.org.example", "", "fail", "reject", true},
		{"organizational domain own policy", "ann@org.example", "", "fail", "none", false},
		{"relaxed subdomain signer", "ann@sub.org.example", "org.example", "pass", "reject", false},
		{"strict rejects subdomain signer", "ann@strict.example", "mail.strict.example", "fail", "reject", true},
		{"pct below 100 does not reject", "ann@sample.example", "", "fail", "reject", false},
		{"no policy", "ann@nopolicy.example", "", "none", "", false},
		{"malformed policy", "ann@bad.example", "", "permerror", "", false},
		{"policy lookup fails", "ann@flaky.example", "", "temperror", "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			msg := message(c.from)
			if c.signer != "" {
				msg = e.signMsgauth(msg, c.signer, "s"+strings.ReplaceAll(c.signer, ".", "-"), time.Time{})
			}
			res := e.check("", msg)
			if res.DMARC != c.dmarc || res.DMARCPolicy != c.policy || res.Reject != c.reject {
				t.Errorf("dmarc %q policy %q reject %v, want %q %q %v\n%s",
					res.DMARC, res.DMARCPolicy, res.Reject, c.dmarc, c.policy, c.reject, res.Header)
			}
			checkParses(t, res.Header)
		})
	}

	t.Run("From fields", func(t *testing.T) {
		body := "To: bob@test.example\r\nSubject: x\r\n\r\nbody\r\n"
		for _, c := range []struct{ head, want string }{
			{"", "none"},
			{"From: a@none.example\r\nFrom: b@none.example\r\n", "permerror"},
			{"From: a@none.example, b@none.example\r\n", "permerror"},
			{"From: not an address\r\n", "permerror"},
		} {
			res := e.check("", []byte(c.head+body))
			if res.DMARC != c.want {
				t.Errorf("%q: dmarc %q, want %q", c.head, res.DMARC, c.want)
			}
		}
	})
}

// checkParses has go-msgauth's parser read our header back.
func checkParses(t *testing.T, h string) {
	t.Helper()
	name, value, ok := strings.Cut(h, ":")
	if !ok || name != "Authentication-Results" || !strings.HasSuffix(h, "\r\n") {
		t.Fatalf("not a whole field: %q", h)
	}
	for line := range strings.SplitSeq(strings.TrimSuffix(h, "\r\n"), "\r\n") {
		if len(line) > 998 {
			t.Errorf("line over 998 octets: %q", line)
		}
	}
	unfolded := strings.NewReplacer("\r\n", "").Replace(value)
	id, results, err := msgauthres.Parse(unfolded)
	if err != nil {
		t.Fatalf("go-msgauth cannot parse %q: %v", h, err)
	}
	if id != testHost || len(results) < 3 {
		t.Errorf("parsed id %q, %d results from %q", id, len(results), h)
	}
}
