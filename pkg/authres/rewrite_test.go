package authres

import (
	"bytes"
	"strings"
	"testing"
)

func TestStripOurs(t *testing.T) {
	head := "Received: from a by b\r\n" +
		"Authentication-Results: test.example; dkim=pass header.d=bank.example\r\n" +
		"Authentication-Results: other.example; spf=pass\r\n" +
		"authentication-results :\r\n\t (a comment) TEST.EXAMPLE;\r\n\tdmarc=pass\r\n" +
		"Authentication-Results: \"test.example\"; spf=pass\r\n" +
		"Authentication-Results: test.example.org; spf=pass\r\n" +
		"ARC-Authentication-Results: i=1; test.example; dkim=pass\r\n" +
		"Subject: hi\r\n" +
		"\r\n"
	body := "Authentication-Results: test.example; dkim=pass\r\nstays in the body\r\n"
	got := string(StripOurs([]byte(head+body), "test.example"))
	want := "Received: from a by b\r\n" +
		"Authentication-Results: other.example; spf=pass\r\n" +
		"Authentication-Results: test.example.org; spf=pass\r\n" +
		"ARC-Authentication-Results: i=1; test.example; dkim=pass\r\n" +
		"Subject: hi\r\n" +
		"\r\n" + body
	if got != want {
		t.Errorf("StripOurs:\n%s\nwant:\n%s", got, want)
	}
}

func TestRewrite(t *testing.T) {
	msg := "Authentication-Results: " + testHost + "; dkim=pass\r\n" +
		"From: a@example.com\r\n\r\nbody\r\n"
	newHeader := "Authentication-Results: " + testHost + ";\r\n\tspf=none\r\n"
	var out bytes.Buffer
	if err := Rewrite(&out, strings.NewReader(msg), testHost, newHeader); err != nil {
		t.Fatal(err)
	}
	want := newHeader + "From: a@example.com\r\n\r\nbody\r\n"
	if out.String() != want {
		t.Errorf("Rewrite:\n%q\nwant\n%q", out.String(), want)
	}

	// A message that is all header, ending on a field of ours.
	out.Reset()
	if err := Rewrite(&out, strings.NewReader("From: a@example.com\r\nAuthentication-Results: "+testHost+"; x=y"), testHost, ""); err != nil {
		t.Fatal(err)
	}
	if out.String() != "From: a@example.com\r\n" {
		t.Errorf("all header: %q", out.String())
	}

	// A field too long to hold is dropped, not passed on unexamined.
	long := "Authentication-Results: (" + strings.Repeat("x", maxField) + ") " + testHost + "; dkim=pass\r\n"
	out.Reset()
	if err := Rewrite(&out, strings.NewReader(long+"From: a@example.com\r\n\r\nbody\r\n"), testHost, ""); err != nil {
		t.Fatal(err)
	}
	if out.String() != "From: a@example.com\r\n\r\nbody\r\n" {
		t.Errorf("long field kept: %.80q", out.String())
	}
}

func TestHeaderInjection(t *testing.T) {
	e := newEnv(t)
	res := e.checkFrom("127.0.0.2", "evil\r\nX-Injected: yes", "a\"b\r\nX-Injected: yes@example.com", message("ann@example.com"))
	if strings.Contains(res.Header, "\r\nX-Injected") {
		t.Errorf("client text broke the header:\n%s", res.Header)
	}
	checkParses(t, res.Header)
}
