package test

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"

	msgdkim "github.com/emersion/go-msgauth/dkim"

	"github.com/gosendmail/gosendmail/pkg/dkim"
	"github.com/gosendmail/gosendmail/pkg/dns/dnstest"
)

// Mail that leaves is signed with the author domain's key (verified with
// go-msgauth against the published record); local mail is not; a broken
// key keeps the mail queued with the reason, and it goes out signed once
// the key is fixed.
func TestDKIMSigningEndToEnd(t *testing.T) {
	mx := &sinkMX{}
	e := newEnv(t)
	os.WriteFile(e.path("etc/local-host-names"), []byte("test.example\n"), 0o644)
	keys := e.path("etc/keys")
	must(t, os.MkdirAll(keys, 0o755))
	keyFile, _, record, err := dkim.Keygen("test.example", "sel2026", 2048, false, keys)
	must(t, err)
	os.WriteFile(e.path("etc/KeyTable"), []byte("sel2026._domainkey.test.example test.example:sel2026:"+keyFile+"\n"), 0o644)
	os.WriteFile(e.path("etc/SigningTable"), []byte("*@test.example sel2026._domainkey.test.example\n"), 0o644)
	dsrv := dnstest.NewServer(t)
	port := startSink(t, "127.0.0.23", 0, mx)
	dsrv.MX("dest.example", 10, "mx.dest.example")
	dsrv.A("mx.dest.example", "127.0.0.23")
	extra := "relay_from = [\"127.0.0.1/32\"]\n[delivery]\ndns_server = \"" + dsrv.Addr() + "\"\nremote_port = " + strconv.Itoa(port) +
		"\nclient_family = \"inet\"\nretry_min = \"1s\"\nretry_max = \"1s\"\n[dkim]\nkey_table = \"" + e.path("etc/KeyTable") +
		"\"\nsigning_table = \"refile:" + e.path("etc/SigningTable") + "\"\n[limits]\ngreet_pause = \"0s\"\n"
	d := startDaemon(t, e, extra)
	send := func(to, subject string) {
		cl := greet(t, localIP, d.addrs["MTA"])
		cl.must("MAIL FROM:<alice@test.example>", 250)
		cl.must("RCPT TO:<"+to+">", 250)
		cl.must("DATA", 354)
		cl.send("From: Alice <alice@test.example>\r\nTo: <" + to + ">\r\nSubject: " + subject + "\r\nDate: Sun, 29 Nov 2026 08:00:00 +0000\r\nMessage-ID: <" + subject + "@test.example>\r\n\r\nHello.\r\n.\r\n")
		if code, text := cl.reply(); code != 250 {
			t.Fatalf("%s: %d %s\n%s", subject, code, text, d.log())
		}
		cl.cmd("QUIT")
	}
	lookup := func(domain string) ([]string, error) {
		if domain == "sel2026._domainkey.test.example" {
			return []string{record}, nil
		}
		return nil, os.ErrNotExist
	}
	send("bob@dest.example", "signed")
	waitFor(t, "remote delivery", func() bool { return mx.count() == 1 })
	mx.mu.Lock()
	data := mx.msgs[0].data
	mx.mu.Unlock()
	if !strings.HasPrefix(data, "DKIM-Signature: ") {
		t.Fatalf("not signed:\n%s", data)
	}
	vs, err := msgdkim.VerifyWithOptions(bytes.NewReader([]byte(data)), &msgdkim.VerifyOptions{LookupTXT: lookup})
	if err != nil || len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != "test.example" {
		t.Fatalf("verification: %v %+v", err, vs)
	}
	// Local mail is not signed.
	send("root@test.example", "local")
	waitFor(t, "local delivery", func() bool { return strings.Contains(readFile(e.path("spool/mail/root")), "Subject: local") })
	if strings.Contains(readFile(e.path("spool/mail/root")), "DKIM-Signature") {
		t.Fatal("local mail was signed")
	}
	// Break the key: the mail waits, mailq says why.
	must(t, os.WriteFile(keyFile, []byte("not a key\n"), 0o600))
	d.cmd.Process.Signal(sighup)
	waitLog(t, d, "DKIM: ")
	// A client submitting such mail is told to try later...
	cl := greet(t, localIP, d.addrs["MTA"])
	cl.must("MAIL FROM:<alice@test.example>", 250)
	cl.must("RCPT TO:<dave@dest.example>", 250)
	cl.must("DATA", 354)
	cl.send("From: alice@test.example\r\nSubject: try later\r\n\r\nx\r\n.\r\n")
	if code, text := cl.reply(); code != 451 || !strings.Contains(text, "4.3.2 Please try again later") {
		t.Errorf("broken key at SMTP time: %d %s", code, text)
	}
	// ...and mail already queued (here, from the maildrop) waits.
	stdin := []byte("From: alice@test.example\nTo: carol@dest.example\nSubject: waits\n\nx\n")
	if _, stderr, code := e.run(stdin, "sendmail", "-t", "-i"); code != 0 {
		t.Fatal(stderr)
	}
	waitFor(t, "the DKIM deferral in mailq", func() bool {
		out, _, _ := e.run(nil, "mailq")
		return strings.Contains(out, "(Deferred: DKIM: ") && strings.Contains(out, "carol@dest.example")
	})
	if mx.count() != 1 {
		t.Fatal("sent unsigned with a broken key")
	}
	// Fix it: the next attempt goes out signed.
	keyFile2, _, record2, err := dkim.Keygen("test.example", "sel2027", 2048, false, keys)
	must(t, err)
	data2, _ := os.ReadFile(keyFile2)
	must(t, os.WriteFile(keyFile, data2, 0o600))
	record = record2
	d.cmd.Process.Signal(sighup)
	e.run(nil, "sendmail", "-q")
	waitFor(t, "delivery after the fix", func() bool { return mx.count() == 2 })
	mx.mu.Lock()
	data = mx.msgs[1].data
	mx.mu.Unlock()
	vs, err = msgdkim.VerifyWithOptions(bytes.NewReader([]byte(data)), &msgdkim.VerifyOptions{LookupTXT: lookup})
	if err != nil || len(vs) != 1 || vs[0].Err != nil {
		t.Fatalf("after the fix: %v %+v", err, vs)
	}
}
