//go:debug rsa1024min=0

package dkim

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/gosendmail/gosendmail/pkg/mailerr"
)

// keyNames is the KeyTable names lookup picks for author.
func keyNames(tbl *Tables, author string) []string {
	var out []string
	for _, e := range tbl.lookup(author) {
		out = append(out, e.keyName)
	}
	return out
}

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, s string
		want       bool
	}{
		{"*@example.com", "ann@example.com", true},
		{"*@example.com", "ann@sub.example.com", false},
		{"*@example.com", "ann@example.com.evil", false},
		{"*@*.example.com", "ann@sub.example.com", true},
		{"*@*.example.com", "ann@example.com", false},
		{"*", "", true},
		{"*", "anything@at.all", true},
		{"ann@example.com", "ann@example.com", true},
		{"ann@example.com", "bob@example.com", false},
		{"a*b*c", "aXXbYYc", true},
		{"a*b*c", "aXXbYY", false},
		{"**", "x", true},
		{"", "", true},
		{"", "x", false},
		{"x", "", false},
		// '.' and other regexp characters mean themselves.
		{"*@example.com", "ann@exampleXcom", false},
		{"ann+*@example.com", "ann+list@example.com", true},
		{"[a]@example.com", "[a]@example.com", true},
	} {
		if got := match(c.pattern, c.s); got != c.want {
			t.Errorf("match(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
}

// A pattern that would make a backtracking matcher exponential.
func TestMatchIsNotExponential(t *testing.T) {
	pattern := strings.Repeat("*a", 30) + "b"
	s := strings.Repeat("a", 5000)
	if match(pattern, s) {
		t.Fatal("matched")
	}
}

func TestExactKeysOrder(t *testing.T) {
	got := exactKeys("ann@mail.example.com")
	want := []string{
		"ann@mail.example.com", "mail.example.com",
		"ann@.example.com", "ann@.com",
		".example.com", ".com",
		"ann@*", "*",
	}
	if !slices.Equal(got, want) {
		t.Errorf("exactKeys = %q\nwant %q", got, want)
	}
}

func TestExactLookup(t *testing.T) {
	k := pemPKCS1(testRSA(t, 1024))
	s := newSetup(t, map[string][]byte{"k.private": k},
		[]string{
			"# names to keys",
			"addr   example.com:addr:$DIR/k.private",
			"dom    example.com:dom:$DIR/k.private",
			"sub    example.org:sub:$DIR/k.private  # trailing comment",
			"local  example.net:local:$DIR/k.private",
			"any    example.net:any:$DIR/k.private",
		},
		[]string{
			"boss@example.com   addr",
			"",
			"EXAMPLE.com        dom",
			".example.org       sub",
			"postmaster@*       local",
			"*                  any",
		})
	tbl := s.load(t, false)
	for author, want := range map[string]string{
		"boss@example.com":       "addr",
		"Boss@Example.COM":       "addr", // case does not matter
		"ann@example.com":        "dom",
		"ann@mail.example.org":   "sub",
		"ann@a.b.example.org":    "sub",
		"ann@example.org":        "any", // ".example.org" is for subdomains only
		"postmaster@example.org": "local",
		"someone@elsewhere.test": "any",
	} {
		if got := keyNames(tbl, author); !slices.Equal(got, []string{want}) {
			t.Errorf("lookup(%s) = %q, want %q", author, got, want)
		}
	}
}

func TestExactLookupNoMatch(t *testing.T) {
	k := pemPKCS1(testRSA(t, 1024))
	s := newSetup(t, map[string][]byte{"k.private": k},
		[]string{"dom example.com:dom:$DIR/k.private"},
		[]string{"example.com dom"})
	tbl := s.load(t, false)
	if got := tbl.lookup("ann@example.org"); got != nil {
		t.Errorf("lookup = %v, want nothing", got)
	}
	// Without refile:, '*' in a key is not a wildcard.
	s = newSetup(t, map[string][]byte{"k.private": k},
		[]string{"dom example.com:dom:$DIR/k.private"},
		[]string{"*@example.com dom"})
	tbl = s.load(t, false)
	if got := tbl.lookup("ann@example.com"); got != nil {
		t.Errorf("lookup = %v, want nothing: *@example.com is a literal key without refile:", got)
	}
}

func TestRefileFirstMatchWins(t *testing.T) {
	k := pemPKCS1(testRSA(t, 1024))
	s := newSetup(t, map[string][]byte{"k.private": k},
		[]string{
			"special  example.com:special:$DIR/k.private",
			"dom      example.com:dom:$DIR/k.private",
			"subs     example.com:subs:$DIR/k.private",
			"default  example.net:default:$DIR/k.private",
		},
		[]string{
			"boss@example.com   special",
			"*@example.com      dom",
			"*@*.example.com    subs",
			"*                  default",
			"ann@example.org    never", // after "*": never reached, but still reported
		})
	tbl, errs := s.loadErrs(true)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "line 5: key never is not in the KeyTable") {
		t.Errorf("errors = %v, want one about line 5", errs)
	}
	for author, want := range map[string]string{
		"boss@example.com":     "special",
		"BOSS@EXAMPLE.COM":     "special",
		"ann@example.com":      "dom",
		"ann@mail.example.com": "subs",
		"ann@example.org":      "default",
	} {
		if got := keyNames(tbl, author); !slices.Equal(got, []string{want}) {
			t.Errorf("lookup(%s) = %q, want %q", author, got, want)
		}
	}
}

func TestSeveralKeysForOneDomain(t *testing.T) {
	rsaK, edK := testRSA(t, 2048), testEd(t)
	s := newSetup(t,
		map[string][]byte{"rsa.private": pemPKCS1(rsaK), "ed.private": pemPKCS8(t, edK)},
		[]string{
			"rsa._domainkey.example.com  example.com:rsa:$DIR/rsa.private",
			"ed._domainkey.example.com   example.com:ed:$DIR/ed.private",
			"default                     relay.example:default:$DIR/rsa.private",
		},
		[]string{
			"*@example.com  rsa._domainkey.example.com",
			"*@example.com  ed._domainkey.example.com",
			"*@example.com  rsa._domainkey.example.com", // the same key twice signs once
			"*              default",
		})
	tbl := s.load(t, true)
	if got := keyNames(tbl, "ann@example.com"); len(got) != 3 {
		t.Fatalf("lookup = %q, want the three example.com lines", got)
	}
	// The catch-all is not added to example.com's mail.
	msg := signed(t, tbl, message("ann@example.com"))
	if n := bytes.Count(msg, []byte("DKIM-Signature:")); n != 2 {
		t.Fatalf("%d signatures, want 2:\n%s", n, msg)
	}
	dns := fakeDNS{
		"rsa._domainkey.example.com":       mustRecord(t, rsaK),
		"ed._domainkey.example.com":        mustRecord(t, edK),
		"default._domainkey.relay.example": mustRecord(t, rsaK),
	}
	if got := verify(t, msg, dns); len(got) != 2 {
		t.Errorf("verified %v, want two signatures", got)
	}
	if !bytes.Contains(msg, []byte("a=rsa-sha256")) || !bytes.Contains(msg, []byte("a=ed25519-sha256")) {
		t.Errorf("want one rsa-sha256 and one ed25519-sha256 signature:\n%s", msg)
	}
	// Everyone else gets the catch-all only.
	msg = signed(t, tbl, message("ann@other.example"))
	if n := bytes.Count(msg, []byte("DKIM-Signature:")); n != 1 || !bytes.Contains(msg, []byte("d=relay.example")) {
		t.Errorf("catch-all signing:\n%s", msg)
	}
	verify(t, msg, dns)
}

func TestSeveralKeysExactTable(t *testing.T) {
	rsaK, edK := testRSA(t, 1024), testEd(t)
	s := newSetup(t,
		map[string][]byte{"rsa.private": pemPKCS1(rsaK), "ed.private": pemPKCS8(t, edK)},
		[]string{
			"rsa  example.com:rsa:$DIR/rsa.private",
			"ed   example.com:ed:$DIR/ed.private",
		},
		[]string{
			"example.com  rsa",
			"example.com  ed",
		})
	tbl := s.load(t, false)
	msg := signed(t, tbl, message("ann@example.com"))
	got := verify(t, msg, fakeDNS{
		"rsa._domainkey.example.com": mustRecord(t, rsaK),
		"ed._domainkey.example.com":  mustRecord(t, edK),
	})
	if len(got) != 2 {
		t.Errorf("verified %v, want two signatures", got)
	}
}

func TestSeveralDomains(t *testing.T) {
	a, b := testRSA(t, 1024), testRSA(t, 2048)
	s := newSetup(t,
		map[string][]byte{"a/mail.private": pemPKCS1(a), "b/mail.private": pemPKCS8(t, b)},
		[]string{
			"mail._domainkey.a.example  a.example:mail:$DIR/a/mail.private",
			"mail._domainkey.b.example  b.example:mail:$DIR/b/mail.private",
		},
		[]string{
			"*@a.example  mail._domainkey.a.example",
			"*@b.example  mail._domainkey.b.example",
		})
	tbl := s.load(t, true)
	dns := fakeDNS{
		"mail._domainkey.a.example": mustRecord(t, a),
		"mail._domainkey.b.example": mustRecord(t, b),
	}
	for _, d := range []string{"a.example", "b.example"} {
		msg := signed(t, tbl, message("ann@"+d))
		if got := verify(t, msg, dns); !slices.Equal(got, []string{d}) {
			t.Errorf("%s: verified %v", d, got)
		}
	}
}

func TestNoKeyApplies(t *testing.T) {
	k := pemPKCS1(testRSA(t, 1024))
	s := newSetup(t, map[string][]byte{"k.private": k},
		[]string{"dom example.com:dom:$DIR/k.private"},
		[]string{"*@example.com dom"})
	tbl := s.load(t, true)
	sig, err := tbl.SignMessage(bytes.NewReader(message("ann@example.org")))
	if sig != nil || err != nil {
		t.Errorf("SignMessage = %q, %v; want nil, nil", sig, err)
	}
	sig, err = tbl.Sign(bytes.NewReader(message("ann@example.org")), "ann@example.org")
	if sig != nil || err != nil {
		t.Errorf("Sign = %q, %v; want nil, nil", sig, err)
	}
	if tbl.Applies("ann@example.org") || !tbl.Applies("ann@example.com") {
		t.Error("Applies is wrong")
	}
}

func TestNoTables(t *testing.T) {
	tbl, errs := LoadTables("", "")
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	sig, err := tbl.SignMessage(bytes.NewReader(message("ann@example.com")))
	if sig != nil || err != nil {
		t.Errorf("SignMessage = %q, %v; want nil, nil", sig, err)
	}
	var none *Tables
	if sig, err := none.Sign(strings.NewReader("x"), "ann@example.com"); sig != nil || err != nil {
		t.Errorf("nil Tables: Sign = %q, %v", sig, err)
	}
}

// wantTemporary checks that err is the temporary configuration error that
// keeps a message in the queue.
func wantTemporary(t *testing.T, err error, contains string) {
	t.Helper()
	var me *mailerr.Error
	if !errors.As(err, &me) {
		t.Fatalf("error %v (%T) is not a *mailerr.Error", err, err)
	}
	if !me.Temporary || me.Code != 451 || me.Exit != mailerr.ExTempFail {
		t.Errorf("error %v: code %d temporary %v exit %d, want 451, temporary, 75", err, me.Code, me.Temporary, me.Exit)
	}
	if !strings.Contains(err.Error(), contains) {
		t.Errorf("error %q does not mention %q", err, contains)
	}
}

func TestBrokenKeyFailsSigning(t *testing.T) {
	good := testRSA(t, 1024)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	small := testRSA(t, 512)
	ecDER, _ := x509.MarshalECPrivateKey(ec)
	encrypted := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY",
		Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"},
		Bytes:   []byte("junk")})
	keys := map[string][]byte{
		"good.private":      pemPKCS1(good),
		"garbage.private":   []byte("this is not a key\n"),
		"truncated.private": pemPKCS1(good)[:300],
		"small.private":     pemPKCS1(small),
		"ec.private":        pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}),
		"enc.private":       encrypted,
		"empty.private":     nil,
	}
	cases := []struct {
		domain, file, reason string
	}{
		{"missing.example", "$DIR/missing.private", "no such file or directory"},
		{"garbage.example", "$DIR/garbage.private", "not a private key"},
		{"truncated.example", "$DIR/truncated.private", "no PEM private key block"},
		{"small.example", "$DIR/small.private", "512 bits is too weak"},
		{"ec.example", "$DIR/ec.private", "ECDSA key cannot sign DKIM"},
		{"enc.example", "$DIR/enc.private", "encrypted"},
		{"empty.example", "$DIR/empty.private", "empty"},
		{"dir.example", "$DIR", "not a regular file"},
	}
	var keyLines, signLines []string
	for _, c := range cases {
		keyLines = append(keyLines, fmt.Sprintf("%s %s:mail:%s", c.domain, c.domain, c.file))
		signLines = append(signLines, fmt.Sprintf("*@%s %s", c.domain, c.domain))
	}
	keyLines = append(keyLines, "good good.example:mail:$DIR/good.private")
	signLines = append(signLines, "*@good.example good")
	s := newSetup(t, keys, keyLines, signLines)
	tbl, errs := s.loadErrs(true)
	if len(errs) != len(cases) {
		t.Errorf("%d errors, want %d:\n%v", len(errs), len(cases), errs)
	}
	for i, c := range cases {
		if i >= len(errs) {
			break
		}
		// FILE: line N: key NAME: PATH: reason
		want := fmt.Sprintf("%s: line %d: key %s: ", s.keyTable, i+1, c.domain)
		if msg := errs[i].Error(); !strings.HasPrefix(msg, want) || !strings.Contains(msg, c.reason) {
			t.Errorf("error %q, want %q...%q", msg, want, c.reason)
		}
		_, err := tbl.SignMessage(bytes.NewReader(message("ann@" + c.domain)))
		wantTemporary(t, err, c.reason)
	}
	// The good key still signs.
	if sig, err := tbl.SignMessage(bytes.NewReader(message("ann@good.example"))); err != nil || sig == nil {
		t.Errorf("good key: %q, %v", sig, err)
	}
}

func TestWorldReadableKeyRefused(t *testing.T) {
	k := pemPKCS1(testRSA(t, 1024))
	s := newSetup(t, nil,
		[]string{"dom example.com:dom:$DIR/k.private"},
		[]string{"*@example.com dom"})
	writeFile(t, s.dir, "k.private", 0o644, k)
	tbl, errs := s.loadErrs(true)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "every user may read") {
		t.Fatalf("errors = %v", errs)
	}
	_, err := tbl.SignMessage(bytes.NewReader(message("ann@example.com")))
	wantTemporary(t, err, "chmod o-rwx")
}

func TestBadLines(t *testing.T) {
	k := pemPKCS1(testRSA(t, 1024))
	s := newSetup(t, map[string][]byte{"k.private": k},
		[]string{
			"good   example.com:good:$DIR/k.private",
			"lonely",
			"short  example.com:nofile",
			"baddom exa_mple.com:sel:$DIR/k.private",
			"badsel example.com:-sel:$DIR/k.private",
			"good   example.com:again:$DIR/k.private",
			"inline example.com:sel:notbase64!",
		},
		[]string{
			"*@good.example   good",
			"*@nokey.example",
			"*@ghost.example  ghost",
			"*@lonely.example lonely",
			"*@sig.example    good:ann@elsewhere.example",
		})
	tbl, errs := s.loadErrs(true)
	want := []string{
		s.keyTable + ": line 2: key lonely: want",
		s.keyTable + ": line 3: key short: want",
		s.keyTable + `: line 4: key baddom: "exa_mple.com" is not a domain name`,
		s.keyTable + `: line 5: key badsel: "-sel" is not a valid selector`,
		s.keyTable + ": line 6: key good is already defined at line 1",
		s.keyTable + ": line 7: key inline: the third field is neither a path",
		s.signTable + ": line 2: *@nokey.example: no KeyTable name",
		s.signTable + ": line 3: key ghost is not in the KeyTable",
		s.signTable + ": line 5: signer ann@elsewhere.example is not within the signing domain example.com",
	}
	if len(errs) != len(want) {
		t.Errorf("got %d errors, want %d:", len(errs), len(want))
		for _, e := range errs {
			t.Log(e)
		}
	}
	for i, w := range want {
		if i < len(errs) && !strings.HasPrefix(errs[i].Error(), w) {
			t.Errorf("error %d = %q\nwant prefix %q", i, errs[i], w)
		}
	}
	// Lines that are wrong still claim their authors: no unsigned mail.
	for _, author := range []string{"ann@nokey.example", "ann@ghost.example", "ann@lonely.example"} {
		_, err := tbl.SignMessage(bytes.NewReader(message(author)))
		wantTemporary(t, err, "")
	}
	// The out-of-domain signer is left out, the message still signed.
	msg := signed(t, tbl, message("ann@sig.example"))
	if tags := sigTags(t, msg); len(tags) != 1 || tags[0]["i"] != "" {
		t.Errorf("i= outside d= was kept:\n%s", msg)
	}
}

func TestLineTooLong(t *testing.T) {
	s := newSetup(t, nil, []string{"k example.com:s:" + strings.Repeat("A", maxLine+10)}, []string{"* k"})
	_, errs := s.loadErrs(true)
	if len(errs) == 0 || !strings.Contains(errs[0].Error(), "line 1: line longer than") {
		t.Errorf("errors = %v", errs)
	}
}

func TestMissingTables(t *testing.T) {
	dir := t.TempDir()
	tbl, errs := LoadTables(dir+"/KeyTable", "refile:"+dir+"/SigningTable")
	if len(errs) != 2 {
		t.Fatalf("errors = %v", errs)
	}
	for _, err := range errs {
		if !strings.Contains(err.Error(), "no such file or directory") {
			t.Errorf("error %q", err)
		}
	}
	// Without a SigningTable nobody can tell which mail must be signed:
	// all of it waits.
	for _, author := range []string{"ann@example.com", "bob@anything.example"} {
		_, err := tbl.SignMessage(bytes.NewReader(message(author)))
		wantTemporary(t, err, "SigningTable: no such file")
		_, err = tbl.Sign(bytes.NewReader(message(author)), author)
		wantTemporary(t, err, "SigningTable: no such file")
		if !tbl.Applies(author) {
			t.Errorf("Applies(%s) = false", author)
		}
	}

	// One table without the other is a mistake.
	_, errs = LoadTables("", "refile:"+dir+"/SigningTable")
	if len(errs) == 0 || !strings.Contains(errs[0].Error(), "key_table is not") {
		t.Errorf("errors = %v", errs)
	}
	k := writeFile(t, dir, "KeyTable", 0o644, nil)
	tbl, errs = LoadTables(k, "")
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "signing_table is not") {
		t.Errorf("errors = %v", errs)
	}
	_, err := tbl.SignMessage(bytes.NewReader(message("ann@example.com")))
	wantTemporary(t, err, "signing_table is not")
}

func TestKeyTableUnreadable(t *testing.T) {
	s := newSetup(t, nil, nil, []string{"*@example.com mail"})
	tbl, errs := LoadTables(s.dir+"/nope", "refile:"+s.signTable)
	if len(errs) != 2 || !strings.Contains(errs[1].Error(), "the KeyTable "+s.dir+"/nope could not be read") {
		t.Errorf("errors = %v", errs)
	}
	_, err := tbl.SignMessage(bytes.NewReader(message("ann@example.com")))
	wantTemporary(t, err, "could not be read")
}

func TestUnsupportedDataset(t *testing.T) {
	for _, spec := range []string{"db:/etc/opendkim/kt.db", "dsn:mysql://u@h/db", "ldap://h/", "/etc/opendkim/KeyTable.db", "csl:a=b"} {
		_, errs := LoadTables(spec, "refile:/nonexistent")
		if len(errs) == 0 || !strings.Contains(errs[0].Error(), "not supported") {
			t.Errorf("%s: errors = %v", spec, errs)
		}
	}
}

func TestFilePrefixAndRefileKeyTable(t *testing.T) {
	k := testRSA(t, 1024)
	s := newSetup(t, map[string][]byte{"k.private": pemPKCS1(k)},
		[]string{"mail._domainkey.* example.com:mail:$DIR/k.private"},
		[]string{"example.com mail._domainkey.example.com"})
	tbl, errs := LoadTables("refile:"+s.keyTable, "file:"+s.signTable)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	msg := signed(t, tbl, message("ann@example.com"))
	verify(t, msg, fakeDNS{"mail._domainkey.example.com": mustRecord(t, k)})
}

func TestPercent(t *testing.T) {
	shared := testRSA(t, 1024)
	a, b := testRSA(t, 2048), testEd(t)
	s := newSetup(t,
		map[string][]byte{
			"shared.private":              pemPKCS1(shared),
			"keys/a.example/mail.private": pemPKCS8(t, a),
			"keys/b.example/mail.private": pemPKCS8(t, b),
		},
		[]string{
			"shared    %:mail:./shared.private", // relative to the KeyTable
			"perdomain %:mail:$DIR/keys/%/mail.private",
			"named.example named.example:mail:$DIR/shared.private",
		},
		[]string{
			"*@shared1.example  shared:%",
			"*@shared2.example  shared:news@%",
			"*@a.example        perdomain",
			"*@b.example        perdomain",
			"*@named.example    %",
			"*@c.example        perdomain",
			"*@*                perdomain",
		})
	tbl, errs := s.loadErrs(true)
	// c.example is named outright, and has no key file: reported at load.
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "key perdomain for c.example") || !strings.Contains(errs[0].Error(), "keys/c.example/mail.private") {
		t.Fatalf("errors = %v", errs)
	}
	dns := fakeDNS{
		"mail._domainkey.shared1.example": mustRecord(t, shared),
		"mail._domainkey.shared2.example": mustRecord(t, shared),
		"mail._domainkey.a.example":       mustRecord(t, a),
		"mail._domainkey.b.example":       mustRecord(t, b),
		"mail._domainkey.named.example":   mustRecord(t, shared),
	}
	for _, d := range []string{"shared1.example", "shared2.example", "a.example", "b.example", "named.example"} {
		msg := signed(t, tbl, message("ann@"+d))
		if got := verify(t, msg, dns); !slices.Equal(got, []string{d}) {
			t.Errorf("%s: verified %v", d, got)
		}
		if d == "shared2.example" && sigTags(t, msg)[0]["i"] != "news@shared2.example" {
			t.Errorf("no i= from %%:\n%s", msg)
		}
	}
	_, err := tbl.SignMessage(bytes.NewReader(message("ann@c.example")))
	wantTemporary(t, err, "keys/c.example/mail.private")

	// A domain only the wildcard reaches is loaded when mail comes; once
	// its file is there, no reload is needed.
	_, err = tbl.SignMessage(bytes.NewReader(message("ann@late.example")))
	wantTemporary(t, err, "keys/late.example/mail.private")
	writeFile(t, s.dir, "keys/late.example/mail.private", 0o600, pemPKCS8(t, a))
	msg := signed(t, tbl, message("ann@late.example"))
	verify(t, msg, fakeDNS{"mail._domainkey.late.example": mustRecord(t, a)})
}

// "%" goes into file names: an author domain must not walk out of the
// key directory.
func TestPercentRefusesOddDomains(t *testing.T) {
	s := newSetup(t, nil,
		[]string{"perdomain %:mail:$DIR/keys/%/mail.private"},
		[]string{"* perdomain"})
	writeFile(t, s.dir, "mail.private", 0o600, pemPKCS1(testRSA(t, 1024)))
	tbl := s.load(t, true)
	for _, from := range []string{"ann@..", "ann@[192.0.2.1]", "ann@a/../..", "ann@exa mple.com"} {
		_, err := tbl.Sign(bytes.NewReader(message("x@example.com")), from)
		wantTemporary(t, err, "is not a domain name")
	}
}

func TestInlineKey(t *testing.T) {
	k := testRSA(t, 1024)
	inline := base64.StdEncoding.EncodeToString(x509.MarshalPKCS1PrivateKey(k))
	// A fixed seed: base64 starting with '/' would read as a path.
	ed := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	seed := base64.StdEncoding.EncodeToString(ed.Seed())
	s := newSetup(t, nil,
		[]string{"rsa example.com:rsa:" + inline, "ed example.com:ed:" + seed},
		[]string{"*@example.com rsa", "*@example.com ed"})
	tbl := s.load(t, true)
	msg := signed(t, tbl, message("ann@example.com"))
	got := verify(t, msg, fakeDNS{
		"rsa._domainkey.example.com": mustRecord(t, k),
		"ed._domainkey.example.com":  mustRecord(t, ed),
	})
	if len(got) != 2 {
		t.Errorf("verified %v", got)
	}
}

func TestParseKeyForms(t *testing.T) {
	k := testRSA(t, 1024)
	ed := testEd(t)
	pk8 := pemPKCS8(t, k)
	for name, data := range map[string][]byte{
		"pkcs1 pem":         pemPKCS1(k),
		"pkcs8 pem":         pk8,
		"ed25519 pkcs8 pem": pemPKCS8(t, ed),
		"cert before key":   append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}), pk8...),
		"base64 pkcs1 der":  []byte(base64.StdEncoding.EncodeToString(x509.MarshalPKCS1PrivateKey(k))),
		"ed25519 seed":      []byte(base64.StdEncoding.EncodeToString(ed.Seed()) + "\n"),
		"crlf pem":          bytes.ReplaceAll(pemPKCS1(k), []byte("\n"), []byte("\r\n")),
		"opendkim .private": append([]byte("\n"), pemPKCS1(k)...),
	} {
		if _, err := parseKey(data); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if testing.Short() {
		return
	}
	big := testRSA(t, 4096+8)
	if _, err := parseKey(pemPKCS1(big)); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Errorf("4160-bit key: %v", err)
	}
}
