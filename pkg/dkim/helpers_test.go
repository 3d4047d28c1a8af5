package dkim

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-message/textproto"
	msgauth "github.com/emersion/go-msgauth/dkim"
)

// Generating RSA keys is slow under -race; each size is made once per run.
var (
	keyMu  sync.Mutex
	rsaKey = map[int]*rsa.PrivateKey{}
	edKey  ed25519.PrivateKey
)

func testRSA(t testing.TB, bits int) *rsa.PrivateKey {
	t.Helper()
	keyMu.Lock()
	defer keyMu.Unlock()
	if k := rsaKey[bits]; k != nil {
		return k
	}
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey[bits] = k
	return k
}

func testEd(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	keyMu.Lock()
	defer keyMu.Unlock()
	if edKey == nil {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		edKey = k
	}
	return edKey
}

// pemPKCS1 and pemPKCS8 are the two shapes key files come in.
func pemPKCS1(k *rsa.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}

func pemPKCS8(t testing.TB, k crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// writeFile writes data to dir/name with mode perm and returns the path.
func writeFile(t testing.TB, dir, name string, perm os.FileMode, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil { // the umask may have cut bits we want
		t.Fatal(err)
	}
	return p
}

// mustRecord is the DNS record text for k's public key.
func mustRecord(t testing.TB, k crypto.Signer) string {
	t.Helper()
	s, err := recordText(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fakeDNS answers TXT lookups from a map, as go-msgauth's LookupTXT wants.
type fakeDNS map[string]string

func (f fakeDNS) lookup(name string) ([]string, error) {
	if txt, ok := f[strings.TrimSuffix(strings.ToLower(name), ".")]; ok {
		return []string{txt}, nil
	}
	return nil, fmt.Errorf("no TXT record for %s", name)
}

// verify checks msg with go-msgauth and returns "d=DOMAIN s=SEL" for each
// signature that passed; a signature that fails fails the test.
func verify(t testing.TB, msg []byte, records fakeDNS) []string {
	t.Helper()
	vs, err := msgauth.VerifyWithOptions(bytes.NewReader(msg), &msgauth.VerifyOptions{LookupTXT: records.lookup})
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	var ok []string
	for _, v := range vs {
		if v.Err != nil {
			t.Errorf("signature d=%s fails: %v", v.Domain, v.Err)
			continue
		}
		ok = append(ok, v.Domain)
	}
	return ok
}

// verifyErr is verify for messages expected to fail: the errors found.
func verifyErrs(t testing.TB, msg []byte, records fakeDNS) []error {
	t.Helper()
	vs, err := msgauth.VerifyWithOptions(bytes.NewReader(msg), &msgauth.VerifyOptions{LookupTXT: records.lookup})
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, v := range vs {
		if v.Err != nil {
			errs = append(errs, v.Err)
		}
	}
	if len(vs) == 0 {
		errs = append(errs, errors.New("no signature"))
	}
	return errs
}

// message is a small CRLF message from author.
func message(author string, extra ...string) []byte {
	var b strings.Builder
	b.WriteString("From: Ann Example <" + author + ">\r\n")
	b.WriteString("To: bob@foreign.example\r\n")
	b.WriteString("Subject: DKIM test\r\n")
	b.WriteString("Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n")
	b.WriteString("Message-ID: <test.1@example.com>\r\n")
	b.WriteString("MIME-Version: 1.0\r\n")
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\n")
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\nHello Bob,\r\n\r\nthis is a   test.  \r\n\r\n\r\n")
	return []byte(b.String())
}

// signed signs msg with tbl for its author and returns the message with
// the signatures prepended.
func signed(t testing.TB, tbl *Tables, msg []byte) []byte {
	t.Helper()
	sig, err := tbl.SignMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatalf("SignMessage: %v", err)
	}
	if sig == nil {
		t.Fatal("SignMessage: no signature")
	}
	return append(sig, msg...)
}

// sigTags parses the tags of each DKIM-Signature field of msg.
func sigTags(t testing.TB, msg []byte) []map[string]string {
	t.Helper()
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(msg)))
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	fields := h.FieldsByKey("DKIM-Signature")
	for fields.Next() {
		tags, _, err := parseTagList(fields.Value())
		if err != nil {
			t.Fatalf("DKIM-Signature %q: %v", fields.Value(), err)
		}
		for k, v := range tags {
			tags[k] = strings.Join(strings.Fields(v), "")
		}
		out = append(out, tags)
	}
	return out
}

// setup is a directory with a KeyTable and a SigningTable written from
// the given lines; keys maps file names to their content (mode 0600).
type setup struct {
	dir                 string
	keyTable, signTable string
}

func newSetup(t testing.TB, keys map[string][]byte, keyLines, signLines []string) *setup {
	t.Helper()
	dir := t.TempDir()
	for name, data := range keys {
		writeFile(t, dir, name, 0o600, data)
	}
	s := &setup{dir: dir}
	expand := func(l string) string { return strings.ReplaceAll(l, "$DIR", dir) }
	var kt, st strings.Builder
	for _, l := range keyLines {
		kt.WriteString(expand(l) + "\n")
	}
	for _, l := range signLines {
		st.WriteString(expand(l) + "\n")
	}
	s.keyTable = writeFile(t, dir, "KeyTable", 0o644, []byte(kt.String()))
	s.signTable = writeFile(t, dir, "SigningTable", 0o644, []byte(st.String()))
	return s
}

// load loads the setup's tables (the SigningTable as refile: if patterns)
// and fails the test on any error.
func (s *setup) load(t testing.TB, patterns bool) *Tables {
	t.Helper()
	tbl, errs := s.loadErrs(patterns)
	for _, err := range errs {
		t.Errorf("LoadTables: %v", err)
	}
	return tbl
}

func (s *setup) loadErrs(patterns bool) (*Tables, []error) {
	st := s.signTable
	if patterns {
		st = "refile:" + st
	}
	return LoadTables(s.keyTable, st)
}
