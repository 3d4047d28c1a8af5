package authres

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// FuzzRewrite feeds Rewrite any message: it must not fail or panic, must
// leave the body (all after the first blank line) untouched, must remove
// every field of ours and must keep a header without any as it is.
func FuzzRewrite(f *testing.F) {
	f.Add([]byte("From: a@b\r\n\r\nbody\r\n"))
	f.Add([]byte("Authentication-Results: test.example; dkim=pass\r\nFrom: a@b\r\n\r\nbody"))
	f.Add([]byte("Authentication-Results:\r\n (c) test.example;\r\n\tspf=pass\nSubject: x\n\nAuthentication-Results: test.example\n"))
	f.Add([]byte("Authentication-Results: \"test.\\example\"; none"))
	f.Add([]byte("\r\n\r\n"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		const id = "test.example"
		var out bytes.Buffer
		if err := Rewrite(&out, bytes.NewReader(msg), id, "X: new\r\n"); err != nil {
			t.Fatal(err)
		}
		got, ok := bytes.CutPrefix(out.Bytes(), []byte("X: new\r\n"))
		if !ok {
			t.Fatalf("new header not first: %q", out.Bytes())
		}
		if !bytes.Equal(got, StripOurs(msg, id)) {
			t.Fatalf("Rewrite and StripOurs disagree on %q", msg)
		}
		inHead, inBody := split(msg)
		outHead, outBody := split(got)
		if !bytes.Equal(inBody, outBody) {
			t.Fatalf("body changed:\n%q\n%q", inBody, outBody)
		}
		if len(outHead) > len(inHead) {
			t.Fatalf("header grew:\n%q\n%q", inHead, outHead)
		}
		if !strings.Contains(strings.ToLower(string(inHead)), "authentication-results") && !bytes.Equal(inHead, outHead) {
			t.Fatalf("header without results changed:\n%q\n%q", inHead, outHead)
		}
		for _, fl := range fields(outHead) {
			if strings.EqualFold(fl.name, fieldName) && claims([]byte(fl.name+":"+fl.value), id) {
				t.Fatalf("field of ours left: %q in %q", fl.value, outHead)
			}
		}
	})
}

// split cuts a message after the blank line that ends its header.
func split(msg []byte) (head, body []byte) {
	off := 0
	for line := range bytes.Lines(msg) {
		off += len(line)
		if string(line) == "\r\n" || string(line) == "\n" {
			return msg[:off], msg[off:]
		}
	}
	return msg, nil
}

// fuzzResolver answers every TXT lookup from the fuzzer's records: the
// DMARC record for _dmarc names, the DKIM key for _domainkey names and
// the SPF record for the rest; every A/AAAA lookup with the client's
// address and every MX lookup with one host. Nothing goes to the network.
type fuzzResolver struct {
	spf, dkim, dmarc string
}

func (r fuzzResolver) LookupTXT(_ context.Context, name string) ([]string, error) {
	txt := r.spf
	switch {
	case strings.HasPrefix(name, "_dmarc."):
		txt = r.dmarc
	case strings.Contains(name, "._domainkey."):
		txt = r.dkim
	}
	if txt == "" {
		return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	// Two strings, as a long record comes: the reader must join them.
	return []string{txt[:len(txt)/2], txt[len(txt)/2:]}, nil
}

func (fuzzResolver) LookupMX(_ context.Context, name string) ([]*net.MX, error) {
	return []*net.MX{{Host: "mx." + name, Pref: 10}}, nil
}

func (fuzzResolver) LookupIPAddr(context.Context, string) ([]net.IPAddr, error) {
	return []net.IPAddr{{IP: net.ParseIP("192.0.2.7")}}, nil
}

func (fuzzResolver) LookupAddr(_ context.Context, addr string) ([]string, error) {
	return nil, &net.DNSError{Err: "no such host", Name: addr, IsNotFound: true}
}

var (
	spfResults   = map[string]bool{"none": true, "neutral": true, "pass": true, "fail": true, "softfail": true, "temperror": true, "permerror": true}
	dkimResults  = map[string]bool{"pass": true, "fail": true, "neutral": true, "temperror": true, "permerror": true}
	dmarcResults = map[string]bool{"pass": true, "fail": true, "none": true, "temperror": true, "permerror": true}
)

// FuzzCheck runs SPF, DKIM and DMARC on any message from any client, with
// any SPF, DKIM key and DMARC records in DNS (all of it chosen by
// whoever sends the mail), and checks:
//
//   - Check reads the whole message and fails only if it cannot be read;
//   - every result is one RFC 8601 knows, at most MaxSignatures DKIM
//     results, and Reject only for a DMARC fail under p=reject;
//   - the Authentication-Results field is one field, folded with CRLF
//     TAB, free of other control characters whatever the client sent
//     (so it cannot smuggle a field of its own), and claims our
//     authserv-id, so that StripOurs removes it from a later hop's copy.
func FuzzCheck(f *testing.F) {
	f.Add([]byte("From: a@example.com\r\n\r\nbody\r\n"), "a@example.com", "mail.example.com",
		"v=spf1 ip4:192.0.2.0/24 -all", "v=DKIM1; k=rsa; p=", "v=DMARC1; p=reject", false)
	f.Fuzz(func(t *testing.T, msg []byte, mailFrom, helo, spfTXT, dkimTXT, dmarcTXT string, v6 bool) {
		ip := netip.MustParseAddr("192.0.2.7")
		if v6 {
			ip = netip.MustParseAddr("2001:db8::7")
		}
		c := &Checker{Hostname: "mx.test.example", Resolver: fuzzResolver{spfTXT, dkimTXT, dmarcTXT}, Timeout: 10 * time.Second}
		r := bytes.NewReader(msg)
		res, err := c.Check(context.Background(), Input{ClientIP: ip, Helo: helo, MailFrom: mailFrom, Message: r})
		if err != nil {
			if errors.Is(err, errHeaderTooLong) {
				return
			}
			t.Fatalf("Check: %v", err)
		}
		if r.Len() != 0 {
			t.Fatalf("Check left %d bytes of the message unread", r.Len())
		}
		if !spfResults[res.SPF] || !spfResults[res.SPFHelo] || !dmarcResults[res.DMARC] || len(res.DKIM) > MaxSignatures {
			t.Fatalf("result %+v", res)
		}
		for _, d := range res.DKIM {
			if !dkimResults[d.Result] || len(d.B) > 8 {
				t.Fatalf("DKIM result %+v", d)
			}
		}
		if res.Reject && (res.DMARC != "fail" || res.DMARCPolicy != "reject") {
			t.Fatalf("reject with DMARC %s, policy %s", res.DMARC, res.DMARCPolicy)
		}
		h := res.Header
		if !strings.HasPrefix(h, fieldName+": mx.test.example;") || !strings.HasSuffix(h, "\r\n") {
			t.Fatalf("header %q", h)
		}
		for i, l := range strings.Split(strings.TrimSuffix(h, "\r\n"), "\r\n") {
			if i > 0 && !strings.HasPrefix(l, "\t") {
				t.Fatalf("header line %d does not continue the field: %q", i, l)
			}
			if strings.ContainsFunc(l, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
				t.Fatalf("control character in header line %q", l)
			}
		}
		if fs := fields([]byte(h + "\r\n")); len(fs) != 1 || fs[0].name != fieldName {
			t.Fatalf("header %q is not one field: %+v", h, fs)
		}
		if !claims([]byte(h), "mx.test.example") {
			t.Fatalf("header %q does not claim our authserv-id", h)
		}
		if got := StripOurs([]byte(h+"\r\nbody"), "MX.test.example."); string(got) != "\r\nbody" {
			t.Fatalf("StripOurs left %q of %q", got, h)
		}
	})
}
