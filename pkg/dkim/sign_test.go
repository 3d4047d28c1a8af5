package dkim

import (
	"bytes"
	"crypto"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gosendmail/gosendmail/pkg/mailerr"
)

// oneKey is tables with a single key signing all of example.com.
func oneKey(t *testing.T, k crypto.Signer, selector string) *Tables {
	t.Helper()
	s := newSetup(t, map[string][]byte{"k.private": pemPKCS8(t, k)},
		[]string{selector + " example.com:" + selector + ":$DIR/k.private"},
		[]string{"*@example.com " + selector})
	return s.load(t, true)
}

func TestSignVerifies(t *testing.T) {
	for _, c := range []struct {
		name string
		key  crypto.Signer
		alg  string
	}{
		{"rsa-1024", testRSA(t, 1024), "rsa-sha256"},
		{"rsa-2048", testRSA(t, 2048), "rsa-sha256"},
		{"ed25519", testEd(t), "ed25519-sha256"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tbl := oneKey(t, c.key, "sel")
			msg := signed(t, tbl, message("ann@example.com"))
			dns := fakeDNS{"sel._domainkey.example.com": mustRecord(t, c.key)}
			if got := verify(t, msg, dns); !slices.Equal(got, []string{"example.com"}) {
				t.Fatalf("verified %v", got)
			}
			tags := sigTags(t, msg)[0]
			if tags["a"] != c.alg || tags["c"] != "relaxed/relaxed" || tags["d"] != "example.com" || tags["s"] != "sel" {
				t.Errorf("tags %v", tags)
			}
			if _, ok := tags["l"]; ok {
				t.Error("l= makes appended text pass; we never set it")
			}

			// Relaxed canonicalization survives re-folding and spacing...
			refolded := bytes.Replace(msg, []byte("Subject: DKIM test"), []byte("Subject:   DKIM\r\n   test"), 1)
			verify(t, refolded, dns)
			// ...but not a changed word, nor an added From.
			for name, bad := range map[string][]byte{
				"subject":     bytes.Replace(msg, []byte("DKIM test"), []byte("DKIM tests"), 1),
				"body":        bytes.Replace(msg, []byte("Hello Bob"), []byte("Hello Eve"), 1),
				"second From": bytes.Replace(msg, []byte("To: bob"), []byte("From: eve@evil.example\r\nTo: bob"), 1),
			} {
				if errs := verifyErrs(t, bad, dns); len(errs) == 0 {
					t.Errorf("%s: a tampered message still verifies", name)
				}
			}
		})
	}
}

func TestSignHeaderSet(t *testing.T) {
	tbl := oneKey(t, testEd(t), "sel")
	msg := message("ann@example.com",
		"Cc: carl@foreign.example",
		"To: dora@foreign.example",
		"Reply-To: list@example.com",
		"In-Reply-To: <a@b>",
		"References: <a@b>",
		"Content-Transfer-Encoding: 8bit",
		"List-Unsubscribe: <https://example.com/u>",
		"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
		"X-Mailer: not signed",
		"Received: from somewhere",
	)
	out := signed(t, tbl, msg)
	h := strings.Split(sigTags(t, out)[0]["h"], ":")
	want := []string{
		"from", "from", "reply-to", "to", "to", "cc", "subject", "date", "message-id",
		"in-reply-to", "references", "mime-version", "content-type",
		"content-transfer-encoding", "list-unsubscribe", "list-unsubscribe-post",
	}
	for i := range h {
		h[i] = strings.ToLower(h[i])
	}
	if !slices.Equal(h, want) {
		t.Errorf("h=%s\nwant %s", strings.Join(h, ":"), strings.Join(want, ":"))
	}
	verify(t, out, fakeDNS{"sel._domainkey.example.com": mustRecord(t, testEd(t))})
}

// The queue holds CRLF, but a message with bare LF line ends must give a
// signature that verifies once the transport has made them CRLF.
func TestSignLFMessage(t *testing.T) {
	k := testRSA(t, 1024)
	tbl := oneKey(t, k, "sel")
	crlf := message("ann@example.com")
	lf := bytes.ReplaceAll(crlf, []byte("\r\n"), []byte("\n"))
	sig, err := tbl.SignMessage(bytes.NewReader(lf))
	if err != nil || sig == nil {
		t.Fatalf("SignMessage: %q, %v", sig, err)
	}
	if !bytes.HasSuffix(sig, []byte("\r\n")) {
		t.Error("signature fields must end in CRLF")
	}
	verify(t, append(sig, crlf...), fakeDNS{"sel._domainkey.example.com": mustRecord(t, k)})
}

func TestSignHeaderOnlyMessage(t *testing.T) {
	k := testEd(t)
	tbl := oneKey(t, k, "sel")
	dns := fakeDNS{"sel._domainkey.example.com": mustRecord(t, k)}
	for name, msg := range map[string]string{
		"no body":           "From: ann@example.com\r\nSubject: x\r\n\r\n",
		"no empty line":     "From: ann@example.com\r\nSubject: x\r\n",
		"no final line end": "From: ann@example.com\r\nSubject: x",
	} {
		sig, err := tbl.SignMessage(strings.NewReader(msg))
		if err != nil || sig == nil {
			t.Fatalf("%s: SignMessage: %q, %v", name, sig, err)
		}
		// What the transport sends: the header completed with its end.
		sent := msg
		if !strings.HasSuffix(sent, "\r\n") {
			sent += "\r\n"
		}
		if !strings.HasSuffix(sent, "\r\n\r\n") {
			sent += "\r\n"
		}
		verify(t, append(sig, sent...), dns)
	}
}

func TestSignWithAuthorGiven(t *testing.T) {
	k := testRSA(t, 1024)
	tbl := oneKey(t, k, "sel")
	msg := message("ann@example.com")
	sig, err := tbl.Sign(bytes.NewReader(msg), "ann@example.com")
	if err != nil || sig == nil {
		t.Fatalf("Sign: %q, %v", sig, err)
	}
	verify(t, append(sig, msg...), fakeDNS{"sel._domainkey.example.com": mustRecord(t, k)})
}

func TestSignLargeBodyStreams(t *testing.T) {
	k := testEd(t)
	tbl := oneKey(t, k, "sel")
	head := message("ann@example.com")
	body := bytes.Repeat([]byte("0123456789 abcdefghijklmnopqrstuvwxyz 0123456789 abcdefghijklmnop\r\n"), 100000)
	msg := append(head, body...)
	verify(t, signed(t, tbl, msg), fakeDNS{"sel._domainkey.example.com": mustRecord(t, k)})
}

func TestSignHeaderTooLarge(t *testing.T) {
	tbl := oneKey(t, testEd(t), "sel")
	var b strings.Builder
	b.WriteString("From: ann@example.com\r\n")
	for b.Len() <= maxHeader {
		b.WriteString("X-Filler: " + strings.Repeat("x", 900) + "\r\n")
	}
	b.WriteString("\r\nbody\r\n")
	_, err := tbl.Sign(strings.NewReader(b.String()), "ann@example.com")
	var me *mailerr.Error
	if !errors.As(err, &me) || me.Temporary || me.Code != 554 {
		t.Errorf("err = %v, want a permanent 554", err)
	}
}

// failingReader returns data, then an I/O error.
type failingReader struct{ data io.Reader }

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.data.Read(p)
	if err == io.EOF {
		return n, errors.New("disk on fire")
	}
	return n, err
}

func TestSignReadErrorIsTemporary(t *testing.T) {
	tbl := oneKey(t, testRSA(t, 1024), "sel")
	for name, msg := range map[string][]byte{
		"in body":   message("ann@example.com"),
		"in header": []byte("From: ann@example.com\r\nSubject: x\r\n"),
	} {
		_, err := tbl.Sign(&failingReader{bytes.NewReader(msg)}, "ann@example.com")
		var me *mailerr.Error
		if !errors.As(err, &me) || !me.Temporary || !strings.Contains(err.Error(), "disk on fire") {
			t.Errorf("%s: err = %v, want a temporary error with the cause", name, err)
		}
	}
}

func TestSignMessageWithoutAuthor(t *testing.T) {
	s := newSetup(t, map[string][]byte{"k.private": pemPKCS8(t, testEd(t))},
		[]string{"k example.com:k:$DIR/k.private"},
		[]string{"* k"})
	tbl := s.load(t, true)
	for _, msg := range []string{
		"Subject: no author\r\n\r\nbody\r\n",
		"From: undisclosed-recipients:;\r\n\r\nbody\r\n",
		"From: root\r\n\r\nbody\r\n",
	} {
		sig, err := tbl.SignMessage(strings.NewReader(msg))
		if sig != nil || err != nil {
			t.Errorf("%q: SignMessage = %q, %v; want nil, nil", msg, sig, err)
		}
	}
}

func TestAuthorOf(t *testing.T) {
	for _, c := range []struct {
		header, want string
	}{
		{"From: ann@example.com\r\n\r\n", "ann@example.com"},
		{"From: Ann <Ann@Example.COM.>\r\n\r\n", "Ann@example.com"},
		{"Subject: x\r\nfrom: \"Ann, Jr.\" <ann@example.com>\r\n\r\n", "ann@example.com"},
		{"From: =?utf-8?q?J=C3=B6rg?= <jorg@example.com>\r\n\r\n", "jorg@example.com"},
		{"From: =?x-unknown?q?J=F6rg?= <jorg@example.com>\r\n\r\n", "jorg@example.com"},
		{"From: ann@example.com, bob@example.org\r\n\r\n", "ann@example.com"},
		{"From: Ann\r\n <ann@example.com>\r\n\r\n", "ann@example.com"},
		{"From: Example Shop <shop@example.com\r\n\r\n", "shop@example.com"}, // unbalanced, as PHP scripts write it
		{"From: shop@example.com (Example Shop) [web]\r\n\r\n", "shop@example.com"},
		{"From: a@example.com\r\nFrom: b@example.org\r\n\r\n", "a@example.com"},
		{"From: ann@example.com", "ann@example.com"},
	} {
		got, err := AuthorOf([]byte(c.header))
		if err != nil || got != c.want {
			t.Errorf("AuthorOf(%q) = %q, %v; want %q", c.header, got, err, c.want)
		}
	}
	for _, h := range []string{
		"Subject: x\r\n\r\n",
		"From: \r\n\r\n",
		"From: root\r\n\r\n",
		"From: undisclosed-recipients:;\r\n\r\n",
		"From: @example.com\r\n\r\n",
		" bad first line\r\nFrom: ann@example.com\r\n\r\n",
	} {
		if got, err := AuthorOf([]byte(h)); !errors.Is(err, ErrNoAuthor) {
			t.Errorf("AuthorOf(%q) = %q, %v; want ErrNoAuthor", h, got, err)
		}
	}
}

// Tables are shared by every delivery worker: sign from many goroutines at
// once, through fixed keys and through the per-domain ("%") key cache.
func TestSignConcurrently(t *testing.T) {
	rsaK, edK := testRSA(t, 1024), testEd(t)
	s := newSetup(t,
		map[string][]byte{"rsa.private": pemPKCS1(rsaK), "keys/b.example/ed.private": pemPKCS8(t, edK)},
		[]string{
			"rsa  a.example:rsa:$DIR/rsa.private",
			"ed   %:ed:$DIR/keys/%/ed.private",
		},
		[]string{"*@a.example rsa", "*@a.example ed", "*@b.example ed"})
	tbl, errs := s.loadErrs(true)
	if len(errs) != 1 { // keys/a.example/ed.private does not exist
		t.Fatalf("errors = %v", errs)
	}
	dns := fakeDNS{"rsa._domainkey.a.example": mustRecord(t, rsaK), "ed._domainkey.b.example": mustRecord(t, edK)}
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			author := "ann@b.example"
			if i%2 == 0 {
				author = "ann@a.example"
			}
			msg := message(author)
			sig, err := tbl.SignMessage(bytes.NewReader(msg))
			if author == "ann@a.example" {
				if err == nil {
					t.Error("a.example has a broken key and was signed")
				}
				return
			}
			if err != nil {
				t.Error(err)
				return
			}
			// verify may t.Fatal, which only the test's goroutine may call.
			if errs := verifyErrs(t, append(sig, msg...), dns); len(errs) != 0 {
				t.Error(errs)
			}
		})
	}
	wg.Wait()
}
