package authres

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	msgdkim "github.com/emersion/go-msgauth/dkim"

	ourdkim "github.com/gosendmail/gosendmail/pkg/dkim"
	"github.com/gosendmail/gosendmail/pkg/dns"
	"github.com/gosendmail/gosendmail/pkg/dns/dnstest"
)

const testHost = "mx.test.example"

// env is one test's world: a loopback DNS server only the test fills,
// and a Checker asking it.
type env struct {
	t   *testing.T
	dns *dnstest.Server
	c   *Checker
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := dnstest.NewServer(t)
	return &env{t: t, dns: srv, c: &Checker{
		Hostname: testHost,
		Resolver: dns.New(srv.Addr(), time.Second),
		Timeout:  10 * time.Second,
	}}
}

// check runs the Checker on msg from 127.0.0.2, HELO mail.example.com.
func (e *env) check(mailFrom string, msg []byte) *Result {
	e.t.Helper()
	return e.checkFrom("127.0.0.2", "mail.example.com", mailFrom, msg)
}

func (e *env) checkFrom(ip, helo, mailFrom string, msg []byte) *Result {
	e.t.Helper()
	res, err := e.c.Check(context.Background(), Input{
		ClientIP: netip.MustParseAddr(ip),
		Helo:     helo,
		MailFrom: mailFrom,
		Message:  bytes.NewReader(msg),
	})
	if err != nil {
		e.t.Fatalf("Check: %v", err)
	}
	return res
}

// message is a small CRLF message from from.
func message(from string) []byte {
	return []byte("From: Ann <" + from + ">\r\n" +
		"To: bob@test.example\r\n" +
		"Subject: hello\r\n" +
		"Date: Mon, 2 Mar 2026 10:00:00 +0000\r\n" +
		"Message-ID: <1@example.com>\r\n" +
		"\r\n" +
		"Hello Bob,\r\nthis is the body.\r\n")
}

// signOurs signs msg with pkg/dkim (the signer our queue runner uses),
// with a fresh Ed25519 key for domain and selector, published in the
// test DNS unless publish is false.
func (e *env) signOurs(msg []byte, domain, selector string, publish bool) []byte {
	e.t.Helper()
	dir := e.t.TempDir()
	keyFile, _, plain, err := ourdkim.Keygen(domain, selector, 0, true, filepath.Join(dir, "keys"))
	if err != nil {
		e.t.Fatal(err)
	}
	name := selector + "._domainkey." + domain
	kt := filepath.Join(dir, "KeyTable")
	st := filepath.Join(dir, "SigningTable")
	writeTestFile(e.t, kt, name+" "+domain+":"+selector+":"+keyFile+"\n")
	writeTestFile(e.t, st, "* "+name+"\n")
	tbl, errs := ourdkim.LoadTables(kt, st)
	if len(errs) > 0 {
		e.t.Fatalf("LoadTables: %v", errs)
	}
	sig, err := tbl.SignMessage(bytes.NewReader(msg))
	if err != nil || len(sig) == 0 {
		e.t.Fatalf("SignMessage: %q, %v", sig, err)
	}
	if publish {
		e.dns.TXT(name, plain)
	}
	return append(sig, msg...)
}

// signMsgauth signs msg with go-msgauth under a fresh Ed25519 key,
// published for domain and selector; expires, if not zero, becomes x=.
func (e *env) signMsgauth(msg []byte, domain, selector string, expires time.Time) []byte {
	e.t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		e.t.Fatal(err)
	}
	e.dns.TXT(selector+"._domainkey."+domain, "v=DKIM1; k=ed25519; p="+base64.StdEncoding.EncodeToString(pub))
	var out bytes.Buffer
	opts := &msgdkim.SignOptions{
		Domain:     domain,
		Selector:   selector,
		Signer:     crypto.Signer(priv),
		Expiration: expires,
	}
	if err := msgdkim.Sign(&out, bytes.NewReader(msg), opts); err != nil {
		e.t.Fatal(err)
	}
	return out.Bytes()
}

// signDkimpy signs msg with dkimpy (an independent implementation) under
// an RSA key made by our Keygen and published in the test DNS.
func (e *env) signDkimpy(msg []byte, domain, selector string) []byte {
	e.t.Helper()
	py := "/usr/bin/python3"
	if exec.Command(py, "-c", "import dkim").Run() != nil {
		e.t.Skip("dkimpy is not installed: apt-get install python3-dkim (.ci/run installs it)")
	}
	dir := e.t.TempDir()
	keyFile, _, plain, err := ourdkim.Keygen(domain, selector, 1024, false, filepath.Join(dir, "keys"))
	if err != nil {
		e.t.Fatal(err)
	}
	e.dns.TXT(selector+"._domainkey."+domain, plain)
	msgFile := filepath.Join(dir, "msg.eml")
	writeTestFile(e.t, msgFile, string(msg))
	const script = `
import sys, dkim
msg = open(sys.argv[1], "rb").read()
key = open(sys.argv[2], "rb").read()
sig = dkim.sign(msg, sys.argv[3].encode(), sys.argv[4].encode(), key,
                include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
sys.stdout.buffer.write(sig)
`
	out, err := exec.Command(py, "-c", script, msgFile, keyFile, selector, domain).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		e.t.Fatalf("dkimpy: %v\n%s", err, stderr)
	}
	if !strings.HasPrefix(string(out), "DKIM-Signature:") {
		e.t.Fatalf("dkimpy wrote %q", out)
	}
	return append(out, msg...)
}

func writeTestFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}
