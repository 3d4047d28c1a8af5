package test

import (
	"os"
	"strings"
	"testing"
	"time"
)

// RFC 5321 4.5.1: RCPT TO:<postmaster> without a domain is accepted from
// anyone and reaches the postmaster alias, also when the line arrives in
// pieces; "postmaster" as a part of message text is left alone.
func TestRcptPostmasterWithoutDomain(t *testing.T) {
	e := newEnv(t)
	os.WriteFile(e.path("etc/local-host-names"), []byte("test.example\n"), 0o644)
	d := startDaemon(t, e, "relay_from = [\"127.0.0.1/32\"]\n[limits]\ngreet_pause = \"0s\"\n")
	for _, from := range []string{localIP, foreignIP} {
		cl := greet(t, from, d.addrs["MTA"])
		cl.must("MAIL FROM:<someone@example.org>", 250)
		cl.must("RCPT TO:<Postmaster>", 250)
		cl.must("RSET", 250)
		cl.must("MAIL FROM:<someone@example.org>", 250)
		// The same command split over two writes.
		cl.send("RCPT TO: <postma")
		time.Sleep(100 * time.Millisecond)
		cl.send("ster>\r\n")
		cl.expect(250)
		cl.must("DATA", 354)
		cl.send("Subject: to the postmaster\r\n\r\nRCPT TO:<postmaster>\r\n.\r\n")
		cl.expect(250)
		cl.must("QUIT", 221)
	}
	mbox := e.path("spool/mail/root")
	waitFor(t, "delivery to the postmaster", func() bool {
		b, _ := os.ReadFile(mbox)
		return strings.Count(string(b), "Subject: to the postmaster") == 2
	})
	b, _ := os.ReadFile(mbox)
	if !strings.Contains(string(b), "\nRCPT TO:<postmaster>\n") || strings.Contains(string(b), "RCPT TO:<postmaster@") {
		t.Errorf("the message text was changed:\n%s", b)
	}
	// Other local parts without a domain are still refused.
	cl := greet(t, foreignIP, d.addrs["MTA"])
	cl.must("MAIL FROM:<someone@example.org>", 250)
	if code, _ := cl.cmd("RCPT TO:<root>"); code < 500 {
		t.Errorf("RCPT TO:<root> from a foreign client: %d", code)
	}
}
