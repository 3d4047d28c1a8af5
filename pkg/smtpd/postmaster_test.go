package smtpd

import (
	"strings"
	"testing"
)

func TestPostmasterRewrite(t *testing.T) {
	g := &guard{hostname: func() string { return "mx.test.example" }}
	for _, tc := range []struct{ in, out, held string }{
		{"RCPT TO:<postmaster>\r\n", "RCPT TO:<postmaster@mx.test.example>\r\n", ""},
		{"rcpt to: <PostMaster> NOTIFY=NEVER\r\n", "rcpt to: <PostMaster@mx.test.example> NOTIFY=NEVER\r\n", ""},
		{"RCPT TO:<postmaster@other.example>\r\n", "RCPT TO:<postmaster@other.example>\r\n", ""},
		{"RCPT TO:<postmasters>\r\n", "RCPT TO:<postmasters>\r\n", ""},
		{"MAIL FROM:<a@b>\r\nRCPT TO:<postmaster>\r\nDATA\r\n", "MAIL FROM:<a@b>\r\nRCPT TO:<postmaster@mx.test.example>\r\nDATA\r\n", ""},
		// After DATA comes message text, never changed.
		{"DATA\r\nRCPT TO:<postmaster>\r\n", "DATA\r\nRCPT TO:<postmaster>\r\n", ""},
		// A piece that may become the command is held; others are not.
		{"NOOP\r\nRCPT TO:<post", "NOOP\r\n", "RCPT TO:<post"},
		{"RSET\r\nRS", "RSET\r\nRS", ""},
		{"RCPT TO:<alice@example.org", "RCPT TO:<alice@example.org", ""},
	} {
		c := &conn{g: g}
		buf, _ := c.rewriteCommands([]byte(tc.in))
		if string(buf) != tc.out || string(c.partial) != tc.held {
			t.Errorf("%q: got %q held %q, want %q held %q", tc.in, buf, c.partial, tc.out, tc.held)
		}
	}
	// The held piece joins the next chunk.
	c := &conn{g: g}
	c.rewriteCommands([]byte("RCPT TO:<post"))
	buf, _ := c.rewriteCommands([]byte("master>\r\nQUIT\r\n"))
	if string(buf) != "RCPT TO:<postmaster@mx.test.example>\r\nQUIT\r\n" || len(c.partial) != 0 {
		t.Errorf("joined: %q, held %q", buf, c.partial)
	}
	// A long line is never held.
	if mayBePostmaster([]byte("RCPT TO:" + strings.Repeat(" ", 100))) {
		t.Error("a long line was held")
	}
}

func TestBadGreetingLoses(t *testing.T) {
	g := &guard{hostname: func() string { return "mx.test.example" }}
	for in, out := range map[string]string{
		"EHLO a\x00b.example\r\n":           "EHLO\r\n",
		"helo x\x1b[31m\r\n":                "helo\r\n",
		"EHLO client.example\r\n":           "EHLO client.example\r\n",
		"MAIL FROM:<a@b>\r\nEHLO a\x7f\r\n": "MAIL FROM:<a@b>\r\nEHLO\r\n",
	} {
		c := &conn{g: g}
		if buf, _ := c.rewriteCommands([]byte(in)); string(buf) != out {
			t.Errorf("%q: got %q, want %q", in, buf, out)
		}
	}
}
