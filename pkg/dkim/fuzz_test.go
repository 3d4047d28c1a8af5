package dkim

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzTables loads arbitrary KeyTable and SigningTable text: no panic,
// every problem a *TableError, and lookups and signing survive whatever
// was loaded.
func FuzzTables(f *testing.F) {
	f.Add("mail._domainkey.example.com example.com:mail:./k.private\n",
		"*@example.com mail._domainkey.example.com\n* default:%\n", "ann@example.com")
	f.Add("a %:s:/nonexistent/%/k\n# comment\n\n", "example.com a\n.example.org %\n", "bob@x.example.org")
	f.Add("k example.com:s:MIIB\tjunk\n", "*@* k:ann@%\n", "@")
	f.Fuzz(func(t *testing.T, keyTable, signTable, author string) {
		dir := t.TempDir()
		kt := filepath.Join(dir, "KeyTable")
		st := filepath.Join(dir, "SigningTable")
		if err := os.WriteFile(kt, []byte(keyTable), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(st, []byte(signTable), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, spec := range []string{st, "refile:" + st} {
			tbl, errs := LoadTables(kt, spec)
			for _, err := range errs {
				if _, ok := err.(*TableError); !ok {
					t.Errorf("error %v is a %T", err, err)
				}
			}
			tbl.Applies(author)
			tbl.Sign(strings.NewReader("From: "+author+"\r\n\r\nbody\r\n"), author)
		}
	})
}

// FuzzParseKeyRecord: DNS text is untrusted.
func FuzzParseKeyRecord(f *testing.F) {
	f.Add("v=DKIM1; h=sha256; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC")
	f.Add("v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
	f.Add("k=rsa; t=y:s; s=email; p=")
	f.Add(";;=;")
	f.Fuzz(func(t *testing.T, s string) {
		rec, err := parseKeyRecord(s)
		if err == nil && !rec.revoked && rec.pub == nil {
			t.Errorf("%q: no error, no key, not revoked", s)
		}
	})
}

// FuzzAuthorOf: headers come from anyone who can send us mail.
func FuzzAuthorOf(f *testing.F) {
	f.Add([]byte("From: Ann <ann@example.com>\r\n\r\n"))
	f.Add([]byte("From: =?utf-8?b?w7Y=?= <a@b>\r\n\r\n"))
	f.Add([]byte("From: Shop <shop@example.com\r\n\r\n"))
	f.Add([]byte("From: a@b, c@d\r\nFrom: e@f\r\n"))
	f.Fuzz(func(t *testing.T, header []byte) {
		author, err := AuthorOf(header)
		if err != nil {
			return
		}
		at := strings.LastIndexByte(author, '@')
		if at <= 0 || at == len(author)-1 {
			t.Errorf("AuthorOf(%q) = %q: not local@domain", header, author)
		}
		if d := author[at+1:]; d != strings.ToLower(d) {
			t.Errorf("AuthorOf(%q) = %q: domain not in lower case", header, author)
		}
	})
}

// FuzzMatch compares the wildcard matcher with the regular expression it
// stands for.
func FuzzMatch(f *testing.F) {
	f.Add("*@example.com", "ann@example.com")
	f.Add("a*b*c", "aXbYc")
	f.Add("**x*", "yyx")
	f.Fuzz(func(t *testing.T, pattern, s string) {
		if len(pattern) > 64 || len(s) > 256 {
			return
		}
		parts := strings.Split(pattern, "*")
		for i, p := range parts {
			parts[i] = regexp.QuoteMeta(p)
		}
		re, err := regexp.Compile(`^(?s:` + strings.Join(parts, ".*") + `)$`)
		if err != nil {
			return
		}
		// The regexp works on runes, the matcher on bytes; they agree on
		// valid UTF-8 only.
		if !utf8.ValidString(pattern) || !utf8.ValidString(s) {
			return
		}
		if got, want := match(pattern, s), re.MatchString(s); got != want {
			t.Errorf("match(%q, %q) = %v, regexp says %v", pattern, s, got, want)
		}
	})
}
