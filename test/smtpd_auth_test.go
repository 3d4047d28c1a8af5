package test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"golang.org/x/crypto/bcrypt"
)

// writeCert writes a self-signed certificate for test.example.
func writeCert(t *testing.T, e *env) (certFile, keyFile string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test.example"},
		DNSNames: []string{"test.example"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	must(t, err)
	certFile, keyFile = e.path("etc/cert.pem"), e.path("etc/key.pem")
	must(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	must(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600))
	return
}

// authEnv runs a daemon with STARTTLS, an smtps listener and AUTH on the
// submission listeners; user alice has password "secret".
func authEnv(t *testing.T, submissionAuth string, privacy string) (*env, *daemon) {
	e := newEnv(t)
	cert, key := writeCert(t, e)
	hash, _ := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	must(t, os.WriteFile(e.path("etc/users"), []byte("# SMTP AUTH users\nalice:"+string(hash)+"\n"), 0o600))
	// Replace the inline listeners of the base config.
	base, _ := os.ReadFile(e.cfg)
	var kept []string
	for _, l := range strings.Split(string(base), "\n") {
		if !strings.HasPrefix(l, "listen = ") {
			kept = append(kept, l)
		}
	}
	must(t, os.WriteFile(e.cfg, []byte(strings.Join(kept, "\n")), 0o644))
	extra := `relay_from = ["127.0.0.1/32"]
` + privacy + `
listen = [{name = "MTA", address = "127.0.0.1:0"}, {name = "submission", address = "127.0.0.1:0", mode = "submission", auth = "` + submissionAuth + `"}, {name = "smtps", address = "127.0.0.1:0", mode = "smtps", auth = "` + submissionAuth + `"}]
[tls]
cert_file = "` + cert + `"
key_file = "` + key + `"
[auth]
users_file = "` + e.path("etc/users") + `"
[limits]
greet_pause = "0s"
`
	return e, startDaemon(t, e, extra)
}

// foreignClient connects from 127.0.0.2: plain, with STARTTLS, or with
// implicit TLS.
func foreignClient(t *testing.T, addr, mode string) *smtp.Client {
	t.Helper()
	dl := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(foreignIP)}, Timeout: 5 * time.Second}
	conn, err := dl.Dial("tcp", addr)
	must(t, err)
	tc := &tls.Config{InsecureSkipVerify: true, ServerName: "test.example"}
	var c *smtp.Client
	switch mode {
	case "implicit":
		c = smtp.NewClient(tls.Client(conn, tc))
	case "starttls":
		c, err = smtp.NewClientStartTLS(conn, tc)
		must(t, err)
	default:
		c = smtp.NewClient(conn)
	}
	t.Cleanup(func() { c.Close() })
	must(t, c.Hello("client.example"))
	return c
}

// STARTTLS is offered, AUTH only after it; an authenticated foreign
// client may relay; a failed AUTH grants nothing and is logged for
// fail2ban's sendmail-auth filter.
func TestStartTLSAndAuth(t *testing.T) {
	e, d := authEnv(t, "optional", "")
	plain := foreignClient(t, d.addrs["submission"], "plain")
	if ok, _ := plain.Extension("STARTTLS"); !ok {
		t.Fatal("STARTTLS not offered")
	}
	if ok, _ := plain.Extension("AUTH"); ok {
		t.Fatal("AUTH offered before TLS")
	}
	if ok, _ := plain.Extension("DSN"); ok {
		t.Fatal("DSN offered while privacy has noreceipts")
	}
	if ok, _ := plain.Extension("CHUNKING"); ok {
		t.Fatal("CHUNKING offered (BDAT is refused)")
	}
	c := foreignClient(t, d.addrs["submission"], "starttls")
	if ok, mechs := c.Extension("AUTH"); !ok || !strings.Contains(mechs, "PLAIN") || !strings.Contains(mechs, "LOGIN") {
		t.Fatalf("AUTH after TLS: %v %q", ok, mechs)
	}
	if err := c.Auth(sasl.NewPlainClient("", "alice", "wrong")); err == nil {
		t.Fatal("wrong password accepted")
	}
	// STARTTLS without AUTH relays nothing.
	must(t, c.Mail("alice@test.example", nil))
	if err := c.Rcpt("friend@example.net", nil); err == nil {
		t.Fatal("relayed after STARTTLS without AUTH")
	}
	must(t, c.Reset())
	must(t, c.Auth(sasl.NewPlainClient("", "alice", "secret")))
	must(t, c.Mail("alice@test.example", nil))
	must(t, c.Rcpt("friend@example.net", nil))
	w, err := c.Data()
	must(t, err)
	w.Write([]byte("Subject: authenticated\r\n\r\nhi\r\n"))
	must(t, w.Close())
	c.Quit()
	if e.qfCount() != 1 {
		t.Fatalf("%d messages queued", e.qfCount())
	}
	df, _ := os.ReadFile(globOne(t, e.path("spool/mqueue/df*")))
	if !strings.Contains(string(df), "with ESMTPSA id ") || !strings.Contains(string(df), "(version=TLS 1.3 cipher=") {
		t.Fatalf("Received header lacks TLS/AUTH:\n%s", df)
	}
	waitLog(t, d, "AUTH failure (PLAIN): authentication failure (-13) SASL(-13): authentication failure: checkpass failed, user=alice, relay=[127.0.0.2]")
	if _, err := exec.LookPath("fail2ban-regex"); err == nil {
		line := ""
		for _, l := range strings.Split(d.log(), "\n") {
			if strings.Contains(l, "AUTH failure") {
				line = l
			}
		}
		f := e.path("auth.log")
		os.WriteFile(f, []byte(line+"\n"), 0o644)
		out, _ := exec.Command("fail2ban-regex", f, "/etc/fail2ban/filter.d/sendmail-auth.conf").CombinedOutput()
		if !strings.Contains(string(out), "Failregex: 1 total") {
			t.Errorf("sendmail-auth does not match %q:\n%s", line, out)
		}
	}
}

// auth = "required": no MAIL without AUTH; LOGIN works on implicit TLS.
func TestAuthRequiredAndSMTPS(t *testing.T) {
	_, d := authEnv(t, "required", `privacy = ["goaway"]`)
	c := foreignClient(t, d.addrs["submission"], "plain")
	if ok, _ := c.Extension("DSN"); !ok {
		t.Error("DSN not offered without noreceipts")
	}
	if err := c.Mail("alice@test.example", nil); err == nil || !strings.Contains(err.Error(), "530") {
		t.Fatalf("MAIL without AUTH: %v", err)
	}
	s := foreignClient(t, d.addrs["smtps"], "implicit")
	must(t, s.Auth(sasl.NewLoginClient("alice", "secret")))
	must(t, s.Mail("alice@test.example", nil))
	must(t, s.Rcpt("friend@example.net", nil))
	s.Quit()
}

func globOne(t *testing.T, pattern string) string {
	m, _ := filepath.Glob(pattern)
	if len(m) != 1 {
		t.Fatalf("%s: %v", pattern, m)
	}
	return m[0]
}
