package dkim

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gosendmail/gosendmail/pkg/dns"
	"github.com/gosendmail/gosendmail/pkg/dns/dnstest"
	"github.com/gosendmail/gosendmail/pkg/mailerr"
)

func TestCheck(t *testing.T) {
	rsaK, other, edK := testRSA(t, 2048), testRSA(t, 1024), testEd(t)
	keys := map[string][]byte{
		"rsa.private":   pemPKCS1(rsaK),
		"other.private": pemPKCS1(other),
		"ed.private":    pemPKCS8(t, edK),
	}
	s := newSetup(t, keys,
		[]string{
			"ok        ok.example:mail:$DIR/rsa.private",
			"ed        ok.example:ed:$DIR/ed.private",
			"missing   missing.example:mail:$DIR/rsa.private",
			"mismatch  mismatch.example:mail:$DIR/rsa.private",
			"garbage   garbage.example:mail:$DIR/rsa.private",
			"revoked   revoked.example:mail:$DIR/rsa.private",
			"wrongtype wrongtype.example:mail:$DIR/rsa.private",
			"servfail  servfail.example:mail:$DIR/rsa.private",
			"broken    broken.example:mail:$DIR/nonexistent.private",
			"pkcs1     pkcs1.example:mail:$DIR/rsa.private",
			"testing   testing.example:mail:$DIR/rsa.private",
			"shared    %:mail:$DIR/other.private",
		},
		[]string{
			"*@ok.example   ok",
			"*@ok.example   ed",
			"*@a.example    shared",
			"*@b.example    shared",
			"*              shared",
		})
	tbl, errs := s.loadErrs(true)
	if len(errs) != 1 { // the missing key file
		t.Fatalf("errors = %v", errs)
	}

	srv := dnstest.NewServer(t)
	srv.TXT("mail._domainkey.ok.example", mustRecord(t, rsaK))
	srv.TXT("ed._domainkey.ok.example", mustRecord(t, edK))
	srv.TXT("mail._domainkey.mismatch.example", mustRecord(t, other))
	srv.TXT("mail._domainkey.garbage.example", "v=DKIM1; k=rsa; p=!!!notbase64")
	srv.TXT("mail._domainkey.garbage.example", "google-site-verification=abc")
	srv.TXT("mail._domainkey.revoked.example", "v=DKIM1; k=rsa; p=")
	srv.TXT("mail._domainkey.wrongtype.example", mustRecord(t, edK))
	srv.ServFail("mail._domainkey.servfail.example")
	srv.TXT("mail._domainkey.broken.example", mustRecord(t, rsaK))
	pkcs1 := base64.StdEncoding.EncodeToString(x509.MarshalPKCS1PublicKey(&rsaK.PublicKey))
	srv.TXT("mail._domainkey.pkcs1.example", "k=rsa; p="+pkcs1)
	srv.TXT("mail._domainkey.testing.example", "v=DKIM1; t=y; "+strings.TrimPrefix(mustRecord(t, rsaK), "v=DKIM1; "))
	srv.TXT("mail._domainkey.a.example", mustRecord(t, other))
	srv.TXT("mail._domainkey.b.example", "v=DKIM1; h=sha1; "+strings.TrimPrefix(mustRecord(t, other), "v=DKIM1; h=sha256; "))

	results := Check(context.Background(), dns.New(srv.Addr(), time.Second), tbl)
	want := []struct {
		domain, selector string
		status           Status
		detail           string
	}{
		{"ok.example", "mail", StatusOK, "rsa 2048-bit key published at mail._domainkey.ok.example and matches"},
		{"ok.example", "ed", StatusOK, "ed25519 key published"},
		{"missing.example", "mail", StatusMissing, "no TXT record at mail._domainkey.missing.example"},
		{"mismatch.example", "mail", StatusMismatch, "a different rsa 1024-bit key"},
		{"garbage.example", "mail", StatusUnparsable, "p= is not valid base64"},
		{"revoked.example", "mail", StatusMismatch, "revoked"},
		{"wrongtype.example", "mail", StatusMismatch, "k=ed25519 key but the private key is rsa 2048-bit"},
		{"servfail.example", "mail", StatusError, "SERVFAIL"},
		{"broken.example", "mail", StatusError, "nonexistent.private: no such file"},
		{"pkcs1.example", "mail", StatusOK, "matches"},
		{"testing.example", "mail", StatusOK, "t=y"},
		{"a.example", "mail", StatusOK, "rsa 1024-bit key published at mail._domainkey.a.example"},
		{"b.example", "mail", StatusUnparsable, "h=sha1 excludes sha256"},
	}
	if len(results) != len(want) {
		for _, r := range results {
			t.Logf("%+v", r)
		}
		t.Fatalf("%d results, want %d", len(results), len(want))
	}
	for i, w := range want {
		r := results[i]
		if r.Domain != w.domain || r.Selector != w.selector || r.Status != w.status || !strings.Contains(r.Detail, w.detail) {
			t.Errorf("result %d = %s %s %s: %s\nwant     %s %s %s: ...%s...", i, r.Domain, r.Selector, r.Status, r.Detail, w.domain, w.selector, w.status, w.detail)
		}
	}
	if !results[7].Temporary || results[8].Temporary {
		t.Errorf("Temporary: servfail %v (want true), broken key %v (want false)", results[7].Temporary, results[8].Temporary)
	}
}

func TestCheckPercentWithoutDomains(t *testing.T) {
	s := newSetup(t, map[string][]byte{"k.private": pemPKCS8(t, testEd(t))},
		[]string{"shared %:mail:$DIR/k.private"},
		[]string{"* shared"})
	tbl := s.load(t, true)
	srv := dnstest.NewServer(t)
	results := Check(context.Background(), dns.New(srv.Addr(), time.Second), tbl)
	if len(results) != 1 || results[0].Status != StatusError || !strings.Contains(results[0].Detail, "nothing to look up") {
		t.Errorf("results = %+v", results)
	}
	if q := srv.Queries(); len(q) != 0 {
		t.Errorf("asked DNS %v", q)
	}
}

func TestRunCheckExitStatus(t *testing.T) {
	k := testEd(t)
	s := newSetup(t, map[string][]byte{"k.private": pemPKCS8(t, k)},
		[]string{"k example.com:mail:$DIR/k.private"},
		[]string{"*@example.com k"})
	tbl := s.load(t, true)
	srv := dnstest.NewServer(t)
	r := dns.New(srv.Addr(), 200*time.Millisecond)

	run := func(loadErrs ...error) (int, string) {
		var out, errOut bytes.Buffer
		err := runCheck(context.Background(), &out, &errOut, r, tbl, loadErrs)
		return mailerr.ExitCode(err), out.String() + errOut.String()
	}
	if code, out := run(); code != mailerr.ExConfig || !strings.Contains(out, "example.com mail: missing: ") {
		t.Errorf("missing: exit %d, output %q", code, out)
	}
	srv.TXT("mail._domainkey.example.com", mustRecord(t, k))
	if code, out := run(); code != 0 || out != "example.com mail: ok: ed25519 key published at mail._domainkey.example.com and matches the private key\n" {
		t.Errorf("ok: exit %d, output %q", code, out)
	}
	if code, out := run(errors.New("KeyTable: line 9: trouble")); code != mailerr.ExConfig || !strings.Contains(out, "line 9: trouble") {
		t.Errorf("load error: exit %d, output %q", code, out)
	}
	srv.Remove("mail._domainkey.example.com")
	srv.Timeout("mail._domainkey.example.com")
	if code, out := run(); code != mailerr.ExTempFail || !strings.Contains(out, "example.com mail: error: ") {
		t.Errorf("timeout: exit %d, output %q", code, out)
	}
}

func TestParseKeyRecord(t *testing.T) {
	ed := mustRecord(t, testEd(t))
	good := []string{
		ed,
		ed + ";",
		"k=ed25519;p=" + strings.SplitN(ed, "p=", 2)[1],
		"v=DKIM1 ; k = ed25519 ; p = " + strings.SplitN(ed, "p=", 2)[1] + " ; n=notes with spaces",
		"v=DKIM1; k=ed25519; p=" + strings.SplitN(ed, "p=", 2)[1][:10] + " \t " + strings.SplitN(ed, "p=", 2)[1][10:],
		"v=DKIM1; p=",
	}
	for _, s := range good {
		if _, err := parseKeyRecord(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	bad := map[string]string{
		"":                                "empty tag",
		"v=DKIM1;; p=abc":                 "empty tag",
		"k=rsa; v=DKIM1; p=":              "v= must be the first",
		"v=DKIM2; p=":                     "not DKIM1",
		"v=DKIM1; k=rsa":                  "no p=",
		"v=DKIM1; p=a; p=b":               "appears twice",
		"v=DKIM1; k=dsa; p=AAAA":          "not a key type",
		"v=DKIM1; k=ed25519; p=AAAA":      "3 bytes",
		"v=DKIM1; k=rsa; p=AAAA":          "not an RSA public key",
		"v=DKIM1; 1k=rsa; p=":             "not a tag name",
		"v=DKIM1; just text":              "not tag=value",
		"google-site-verification=abcdef": "not a tag name",
	}
	for s, want := range bad {
		if _, err := parseKeyRecord(s); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error about %q", s, err, want)
		}
	}
}
