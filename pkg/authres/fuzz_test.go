package authres

import (
	"bytes"
	"strings"
	"testing"
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
